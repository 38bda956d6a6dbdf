/**
 * Formatting cases for the differential test against Go's fmt: a grid of
 * values × verbs × specs, hand-picked edge cases, and a seeded fuzzer.
 */

import { mulberry32 } from "../fixtures/reliability_prng.ts";
import { type FmtArg, GoComplex, GoUint8 } from "../../src/template/_fmt.ts";

/** One call of `fmt.Sprintf`, `fmt.Sprint` or `fmt.Sprintln`. */
export interface FmtCase {
  fn: "printf" | "print" | "println";
  format: string;
  args: FmtArg[];
}

/** An argument as the Go program reads it. */
export interface WireArg {
  t: string;
  v?: unknown;
}

function floatText(v: number): string {
  return Object.is(v, -0) ? "-0" : String(v);
}

/** The JSON form of an argument for tests/go/fmt/main.go. */
export function toWire(arg: FmtArg): WireArg {
  switch (typeof arg) {
    case "string":
      return { t: "string", v: arg };
    case "boolean":
      return { t: "bool", v: arg };
    case "bigint":
      return { t: "int", v: String(arg) };
    case "number":
      return { t: "float64", v: floatText(arg) };
  }
  if (arg === null) return { t: "nil" };
  if (arg instanceof GoUint8) return { t: "uint8", v: arg.uint8 };
  if (arg instanceof GoComplex) {
    return { t: "complex128", v: [floatText(arg.real), floatText(arg.imag)] };
  }
  return { t: "map", v: [...(arg as ReadonlyMap<string, string>)] };
}

/** A readable form of a case for failure messages. */
export function describe(c: FmtCase): string {
  const args = c.args.map((a) => {
    const w = toWire(a);
    return `${w.t}(${JSON.stringify(w.v ?? null)})`;
  });
  return c.fn === "printf"
    ? `Sprintf(${JSON.stringify(c.format)}, ${args.join(", ")})`
    : `S${c.fn}(${args.join(", ")})`;
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/**
 * Strings of runes whose Unicode category is the same in Go 1.19's tables
 * (Unicode 13) and in newer ones, so that `%q` agrees across versions.
 */
export const STRINGS: readonly string[] = [
  "",
  "hi",
  "héllo",
  "世界",
  'a"b',
  "back`tick",
  "tab\there",
  "nl\n",
  "\0\x07\x08\x0c\r\x0b\x1b\x7f",
  "\\",
  "'",
  "\u00ad\u00a0\u0085",
  "\ufeffbom",
  "\u200b\u200d\u2028",
  "😀",
  "\u{10ffff}\u{e0001}",
  "\ue000",
  "\u0378",
  "\ud800",
  "a\udc00b",
  "%d",
  "  padded  ",
  "ǅ\u0301e\u0301",
  "\u{1d49c}\u{1f1e6}",
];

export const INTS: readonly bigint[] = [
  0n,
  1n,
  -1n,
  42n,
  -42n,
  255n,
  0x4e16n,
  0x1f600n,
  0xd800n,
  0x10ffffn,
  0x110000n,
  0x7fn,
  0xadn,
  0x2028n,
  1000000n,
  1000001n,
  -1000001n,
  INT64_MAX,
  INT64_MIN,
];

export const FLOATS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  0.5,
  1.5,
  2.5,
  -2.5,
  0.125,
  3.14159,
  1 / 3,
  100,
  1e6,
  123456,
  1234567,
  1e20,
  1e21,
  1e-4,
  1e-5,
  0.000123456,
  5e-324,
  2.2250738585072014e-308,
  1.7976931348623157e308,
  0.1 + 0.2,
  9.995,
  NaN,
  Infinity,
  -Infinity,
];

const MAPS: readonly ReadonlyMap<string, string>[] = [
  new Map(),
  new Map([["b", "2"], ["a", "1"]]),
  new Map([["é", "x"], ["z", 'q"'], ["\ue000", ""], ["😀", "e"]]),
];

/** Every kind of value a template can pass to `printf`. */
export const VALUES: readonly FmtArg[] = [
  ...STRINGS,
  ...INTS,
  ...FLOATS,
  true,
  false,
  new GoUint8(0),
  new GoUint8(97),
  new GoUint8(255),
  new GoComplex(1, -2),
  new GoComplex(0, 0),
  new GoComplex(NaN, -Infinity),
  new GoComplex(1.5e300, 2.5e-10),
  ...MAPS,
  null,
];

const VERBS = "vTtdboOxXcqUeEfFgGspwz";

/** Specs tried on every value for every verb. */
const SPECS = [
  "",
  "+",
  "-8",
  "#",
  " ",
  "08",
  "8.3",
  ".0",
  "-#12.4",
  "+ 0.2",
  "# ",
];

/** Grid of values × verbs × specs, plus Sprint and Sprintln of value pairs. */
export function gridCases(): FmtCase[] {
  const cases: FmtCase[] = [];
  for (const value of VALUES) {
    for (const verb of VERBS) {
      for (const spec of SPECS) {
        cases.push({ fn: "printf", format: `%${spec}${verb}`, args: [value] });
      }
    }
  }
  for (let i = 0; i < VALUES.length; i += 3) {
    const pair = [VALUES[i] as FmtArg, VALUES[(i * 7 + 5) % VALUES.length]!];
    cases.push({ fn: "print", format: "", args: pair });
    cases.push({ fn: "println", format: "", args: pair });
  }
  return cases;
}

const m = MAPS[1] as ReadonlyMap<string, string>;

/** Hand-picked formats: argument indexes, `*`, malformed directives. */
export const EDGE_CASES: readonly FmtCase[] = [
  ...[
    ["%[2]d %[1]d", [1n, 2n]],
    ["%[2]*[1]d", [12n, 5n]],
    ["%[3]*.[2]*[1]f", [12.0, 2n, 6n]],
    ["%.[2]d", [7n, 3n]],
    ["%[5]d", [1n]],
    ["%[0]d", [1n]],
    ["%[-1]d", [1n]],
    ["%[x]d", [1n]],
    ["%[1", [1n]],
    ["%[]d", [1n]],
    ["%[1]", [1n]],
    ["%[2]d %d", [1n, 2n, 3n]],
    ["%[1]d %d %d", [1n, 2n]],
    ["%d %d %[1]d %d", [1n, 2n]],
    ["%[3]2d", [1n, 2n, 3n]],
    ["%[3].2d", [1n, 2n, 3n]],
    ["%[1]2d", [1n, 2n]],
    ["%*d", [5n, 3n]],
    ["%-*d|", [5n, 3n]],
    ["%*d|", [-5n, 3n]],
    ["%0*d|", [-5n, 3n]],
    ["%*d", ["x", 3n]],
    ["%*d", [1.5, 3n]],
    ["%*d", [new GoUint8(4), 3n]],
    ["%*d", [10000000n, 3n]],
    ["%.*d", [-1n, 3n]],
    ["%.*d", ["x", 3n]],
    ["%.*f", [new GoUint8(2), 3.14159]],
    ["%*", []],
    ["%.*", [1n]],
    ["%*.*d", [8n]],
    ["%", []],
    ["%-", [1n]],
    ["%5", [1n]],
    ["%5.", [1n]],
    ["%.", [1n]],
    ["%.5", [1n]],
    ["%!", [1n]],
    ["%%", []],
    ["%5%|%-5%|%.2%", []],
    ["%%%d", [1n]],
    ["%d%%%d", [1n]],
    ["%é", [1n]],
    ["%😀", [1n]],
    ["%\ud800", [1n]],
    ["%Z", ["x"]],
    ["%1000001d", [1n]],
    ["%.1000001d", [1n]],
    ["%1000000d|", [""]],
    ["%d", []],
    ["%d %s", [1n]],
    ["", [1n, "x", null, true, 2.5]],
    ["x", [m]],
    ["%v", [null, null]],
    ["%s", [m, 1n]],
    ["%w", ["x"]],
    ["%5w", ["x"]],
    ["%w", [m]],
    ["%d", [m]],
    ["%5.1q", [m]],
    ["% x", [m]],
    ["%T %T", [m, null]],
    ["%.3T|%8T|%-8T|", ["x", 1n, null]],
    ["%#v %+v", [m, m]],
    ["%x %X % X %#x %# x", ["héllo", "héllo", "héllo", "héllo", "héllo"]],
    ["%.2x|%8x|%-8x|%08x|%8.1x|", ["héllo", "ab", "ab", "ab", "ab"]],
    ["%8x|%-8x|%.0x|", ["", "", "abc"]],
    ["%#q %#q %#q %#+q %+q", ["a`b", "ok", "tab\t", "é", "é😀"]],
    ["%c|%5c|%-5c|%05c|%c|%c|%c", [
      65n,
      65n,
      65n,
      65n,
      -1n,
      0xd800n,
      0x110000n,
    ]],
    ["%q %q %+q %q %q %q", [39n, 34n, 0x4e16n, 0x7fn, 0xd800n, -5n]],
    ["%U %#U %#U %.6U %#10.6U %-10U| %#U %U", [
      0x41n,
      0x41n,
      0x7fn,
      0x41n,
      0x4e16n,
      0x1n,
      0xd800n,
      -1n,
    ]],
    ["%#.70U", [0x41n]],
    ["%.70d|%70d|%#.70x", [5n, 5n, 5n]],
    ["%b %o %O %#o %#O %#b %#x %#X", [-5n, -8n, -8n, 0n, 0n, 0n, 0n, 0n]],
    ["%+d % d %+ d %05d %-05d %+05d % 05d", [0n, 0n, 0n, -3n, -3n, 3n, 3n]],
    ["%.0d|%5.0d|%-5.0d|%05.0d|%+.0d|", [0n, 0n, 0n, 0n, 0n]],
    ["%x %X %#x %o %b", [
      INT64_MIN,
      INT64_MIN,
      INT64_MIN,
      INT64_MIN,
      INT64_MIN,
    ]],
    ["%e %E %.0e %#.0e %.3e %10.2e|%-10.2e|%010.2e", [
      1234.5678,
      1234.5678,
      15,
      15,
      0,
      -1.5,
      -1.5,
      -1.5,
    ]],
    ["%f %.0f %#.0f %.1f %.2f %.3f %5.1f|%-8.2f|%08.2f|%+.2f|% .2f", [
      0.5,
      2.5,
      2.5,
      0.25,
      1.005,
      1.0005,
      -0.05,
      3.14159,
      -3.14159,
      1.0,
      1.0,
    ]],
    ["%g %G %.3g %.10g %#g %#.3g %#.10g %g %G %.0g %#.0g", [
      1e-7,
      1e-7,
      1234567.0,
      1234567.0,
      1.0,
      1.0,
      123.0,
      1e100,
      1e100,
      123.0,
      123.0,
    ]],
    ["%x %X %.3x %#x %#.1x %#X %.0x %x %x %x", [
      1.0,
      -3.5,
      1.0 / 3,
      1.0,
      1.0,
      1.0,
      1.5,
      0,
      5e-324,
      1.7976931348623157e308,
    ]],
    ["%b %b %b %b %#b %.3b", [1.0, 0, 5e-324, -2.5, 1.0, 1.0]],
    ["%.1100f|%.40x|%.30X|%#.20x|%.120e|%.120g", [
      5e-324,
      1 / 3,
      1 / 3,
      1 / 3,
      1 / 3,
      -1e300,
    ]],
    ["%v %.3v %10v %-10v| %+v %#v %+.2v", [
      0.1,
      3.14159,
      2.5,
      2.5,
      2.5,
      2.5,
      2.5,
    ]],
    ["%05v %05v %-05v| %+5v %05f %+05.1f %0+5.1f", [
      NaN,
      -Infinity,
      Infinity,
      NaN,
      Infinity,
      -1.5,
      1.5,
    ]],
    ["% v % f %+v % +v", [NaN, Infinity, Infinity, NaN]],
    ["%v %.2f %+v %8.1f| %e %#v %x", [
      new GoComplex(1, -2),
      new GoComplex(1, 2),
      new GoComplex(-1, 0),
      new GoComplex(1, 2),
      new GoComplex(0, -0),
      new GoComplex(1.5, 2),
      new GoComplex(3, 0.5),
    ]],
    ["% v| %08.2f| %-8.2f|", [
      new GoComplex(1, 2),
      new GoComplex(-1, 2),
      new GoComplex(1, -2),
    ]],
    ["%d %s %t %c", [new GoComplex(1, 2), new GoComplex(1, 2), true, true]],
    ["%v %d %x %X %#v %#x %c %q %U %08b", [
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(200),
      new GoUint8(5),
    ]],
    ["%#d %#s %+d %08s %.2d %#5x", ["hello", 1.5, "x", true, "hello", true]],
    ["%-08s|%08s|%-8q|%08q|%.1s|%.0s|%.5s|", [
      "ab",
      "ab",
      "ab",
      "ab",
      "世界",
      "abc",
      "😀😀😀😀😀😀",
    ]],
    ["%5s|%-5s|%5.1s|%5s|", ["世界", "😀", "😀😀", "\ud800"]],
    ["%t %5t %-7t| %t %v %#v %08t", [
      true,
      false,
      true,
      "x",
      false,
      true,
      true,
    ]],
    ["%s %v %d %+v %#v %T %x %q", [
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      null,
    ]],
    ["%5v|%-5v|%05v|%.1v|%5T", [null, null, null, null, null]],
  ].map(([format, args]) => ({
    fn: "printf" as const,
    format: format as string,
    args: args as FmtArg[],
  })),
  { fn: "print", format: "", args: [] },
  { fn: "println", format: "", args: [] },
  {
    fn: "print",
    format: "",
    args: ["a", "b", 1n, 2n, "c", 3.5, true, null, m],
  },
  { fn: "print", format: "", args: [1n, "a", 2n, new GoUint8(3), 4.5] },
  { fn: "print", format: "", args: [null, null, "x", null] },
  { fn: "println", format: "", args: ["a", "b", 1n, null, m, 1e21] },
];

const view = new DataView(new ArrayBuffer(8));

/** Random operands, directives and formats for the fuzzer. */
class Gen {
  constructor(readonly next: () => number) {}

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  float(): number {
    switch (this.int(6)) {
      case 0:
        return this.pick(FLOATS);
      case 1: { // any bit pattern
        for (let i = 0; i < 8; i++) view.setUint8(i, this.int(256));
        return view.getFloat64(0);
      }
      case 2: // a few decimal digits at some scale: ties and near-ties
        return (this.int(20001) - 10000) / 10 ** this.int(8);
      case 3:
        return (this.next() - 0.5) * 10 ** (this.int(60) - 30);
      case 4:
        return this.int(1 << 20) / (1 << this.int(12));
      default:
        return Number((this.next() * 1e6).toPrecision(1 + this.int(17)));
    }
  }

  string(): string {
    if (this.int(3) === 0) return this.pick(STRINGS);
    let s = "";
    const n = this.int(6);
    for (let i = 0; i < n; i++) s += this.pick(STRINGS).slice(0, 3);
    return s;
  }

  arg(): FmtArg {
    switch (this.int(10)) {
      case 0:
      case 1:
        return this.string();
      case 2:
        return this.pick(INTS);
      case 3:
        return BigInt(this.int(2001) - 1000);
      case 4:
      case 5:
        return this.float();
      case 6:
        return this.int(2) === 0;
      case 7:
        return this.int(3) === 0 ? null : new GoUint8(this.int(256));
      case 8:
        return new GoComplex(this.float(), this.float());
      default: {
        const map = new Map<string, string>();
        const n = this.int(4);
        // Keys are well formed: Go would merge keys that differ only in
        // lone surrogates, which all reach it as U+FFFD.
        for (let i = 0; i < n; i++) {
          map.set(this.string().toWellFormed(), this.string());
        }
        return map;
      }
    }
  }

  index(): string {
    return this.pick(["[1]", "[2]", "[3]", "[0]", "[9]", "[x]", "[1"]);
  }

  number(): string {
    return String(this.pick([0, 1, 2, 3, 5, 8, 12, 20, 30]));
  }

  directive(): string {
    let s = "%";
    const flags = this.int(4);
    for (let i = 0; i < flags; i++) s += this.pick(["#", "0", "+", "-", " "]);
    if (this.int(8) === 0) s += this.index();
    const width = this.int(6);
    if (width === 0) s += this.int(3) === 0 ? this.index() + "*" : "*";
    else if (width < 3) s += this.number();
    if (this.int(3) === 0) {
      s += ".";
      const prec = this.int(5);
      if (prec === 0) s += "*";
      else if (prec === 1 && this.int(3) === 0) s += this.index() + "*";
      else if (prec > 1) s += this.number();
    }
    if (this.int(8) === 0) s += this.index();
    return s + this.pick([..."vvvvddsqxXfeEgGTtbcoOUFp%", "w", "z", "é"]);
  }

  case(): FmtCase {
    const args: FmtArg[] = [];
    const n = this.int(5);
    for (let i = 0; i < n; i++) args.push(this.arg());
    const kind = this.int(10);
    if (kind === 0) return { fn: "print", format: "", args };
    if (kind === 1) return { fn: "println", format: "", args };
    let format = "";
    const parts = 1 + this.int(4);
    for (let i = 0; i < parts; i++) {
      format += this.int(4) === 0
        ? this.pick(["ab", " ", "é", "世", "%%", "😀", "["])
        : this.directive();
    }
    if (this.int(20) === 0) format += "%";
    return { fn: "printf", format, args };
  }
}

/** `count` random cases, the same ones for the same seed. */
export function fuzzCases(seed: number, count: number): FmtCase[] {
  const gen = new Gen(mulberry32(seed).next);
  return Array.from({ length: count }, () => gen.case());
}

/** `count` random floats through every float verb at random precisions. */
export function floatCases(seed: number, count: number): FmtCase[] {
  const gen = new Gen(mulberry32(seed).next);
  return Array.from({ length: count }, () => {
    const prec = gen.int(4) === 0 ? "" : "." + gen.int(gen.int(2) ? 20 : 400);
    const flags = gen.pick(["", "#", "+", " ", "0", "#0", "-"]);
    const width = gen.int(3) === 0 ? String(gen.int(30)) : "";
    const verb = gen.pick([..."veEfFgGxXb"]);
    return {
      fn: "printf" as const,
      format: `%${flags}${width}${prec}${verb}`,
      args: [gen.float()],
    };
  });
}
