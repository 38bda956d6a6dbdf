/**
 * Go's `fmt.Sprint`, `fmt.Sprintln` and `fmt.Sprintf`, as `text/template`'s
 * `print`, `println` and `printf` call them, for the values a template over a
 * `map[string]string` can hold: strings, `int`, `float64`, `complex128`,
 * `bool`, `uint8` (what `index` yields on a string), the map itself and nil.
 *
 * Output matches current Go byte for byte (the differential test runs it
 * against Debian's Go 1.19, which differs only in `%#w` and `%+w`), except
 * that `%p` of the map prints a fixed address of Go's shape. The printer
 * follows the structure of Go's `pp.doPrintf` so that the error forms
 * (`%!d(string=x)`, `%!(EXTRA …)`, `%!(BADINDEX)`, …) come out of the same
 * places. Go works on UTF-8 bytes and these are UTF-16 strings: widths and
 * precisions count code points as Go counts runes, `%x` encodes to UTF-8
 * first, and a lone surrogate stands for U+FFFD, the rune Go would decode.
 *
 * @module
 */

import { formatFloat, sharpFloat } from "./_fmt_float.ts";
import {
  canBackquote,
  compareUtf8,
  encoder,
  hexBytes,
  isLow,
  isPrint,
  quote,
  quoteRune,
  runeAt,
  runeCount,
  runeString,
  validRune,
} from "./_fmt_quote.ts";

/** Go `uint8`, the byte `index` yields on a string. */
export class GoUint8 {
  /**
   * @param uint8 The byte, 0 to 255.
   */
  constructor(readonly uint8: number) {}
}

/** Go `complex128`, what an imaginary literal such as `2i` evaluates to. */
export class GoComplex {
  /**
   * @param real The real part.
   * @param imag The imaginary part.
   */
  constructor(readonly real: number, readonly imag: number) {}
}

/**
 * One operand: `string`, `boolean` (Go bool), `bigint` (Go int, within the
 * int64 range), `number` (Go float64), {@linkcode GoUint8},
 * {@linkcode GoComplex}, a map (Go `map[string]string`) or `null` (Go's nil
 * interface; a missing map key passed to a function becomes this too).
 */
export type FmtArg =
  | string
  | boolean
  | bigint
  | number
  | null
  | GoUint8
  | GoComplex
  | ReadonlyMap<string, string>;

/**
 * Go's `fmt.Sprint`, which `text/template` also uses to print a value.
 *
 * @param args The operands.
 * @param maxLength The longest output allowed, in UTF-16 code units.
 * @returns Each operand as `%v` prints it, with a space between two
 *   operands when neither is a string.
 * @throws {RangeError} When the output grows past `maxLength`.
 */
export function sprint(
  args: readonly FmtArg[],
  maxLength = Infinity,
): string {
  const p = new Printer(maxLength);
  let prevString = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as FmtArg;
    const isString = typeof arg === "string";
    if (i > 0 && !isString && !prevString) p.out += " ";
    p.printArg(arg, V);
    prevString = isString;
  }
  return p.out.toWellFormed();
}

/**
 * Go's `fmt.Sprintln`.
 *
 * @param args The operands.
 * @param maxLength The longest output allowed, in UTF-16 code units.
 * @returns Each operand as `%v` prints it, separated by spaces, and a
 *   newline.
 * @throws {RangeError} When the output grows past `maxLength`.
 */
export function sprintln(
  args: readonly FmtArg[],
  maxLength = Infinity,
): string {
  const p = new Printer(maxLength);
  for (let i = 0; i < args.length; i++) {
    if (i > 0) p.out += " ";
    p.printArg(args[i] as FmtArg, V);
  }
  return p.out.toWellFormed() + "\n";
}

/**
 * Go's `fmt.Sprintf`. A directive that does not fit its operand prints Go's
 * error form (`%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA int=1)`,
 * `%!(BADINDEX)`, `%!(BADWIDTH)`, `%!(NOVERB)`, …) instead of throwing.
 * Widths and precisions are capped as Go caps them, at about ten million,
 * and the output as a whole at `maxLength`: a map printed with a width of
 * ten million per entry could otherwise outgrow memory.
 *
 * @param format The format, with `%` directives.
 * @param args The operands.
 * @param maxLength The longest output allowed, in UTF-16 code units,
 *   checked after each operand (one operand may overshoot it by its width).
 * @returns The formatted text.
 * @throws {RangeError} When the output grows past `maxLength`.
 */
export function sprintf(
  format: string,
  args: readonly FmtArg[],
  maxLength = Infinity,
): string {
  const p = new Printer(maxLength);
  p.doPrintf(format, args);
  return p.out.toWellFormed();
}

/**
 * The operand's Go type as `%T` prints it.
 *
 * @param arg The operand.
 * @returns `string`, `int`, `float64`, `bool`, `uint8`, `complex128`,
 *   `map[string]string`, or `<nil>` for `null`.
 */
export function goTypeName(arg: FmtArg): string {
  switch (typeof arg) {
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "bigint":
      return "int";
    case "number":
      return "float64";
  }
  if (arg === null) return "<nil>";
  if (arg instanceof GoUint8) return "uint8";
  if (arg instanceof GoComplex) return "complex128";
  return "map[string]string";
}

// Verbs are code points; these are the ones the printer tests by name.
const V = 0x76;
const MAX_RUNE = 0x10ffffn;
const MAX_NUM = 1e6;

/** The integer verbs that print digits, and their bases. */
const INT_BASES: ReadonlyMap<number, number> = new Map(
  [..."vdboOxX"].map((
    c,
    i,
  ) => [c.charCodeAt(0), [10, 10, 2, 8, 8, 16, 16][i]!]),
);

/** The float verbs: strconv's verb and the default precision (-1 shortest). */
const FLOAT_VERBS: ReadonlyMap<number, readonly [number, number]> = new Map(
  [..."vbgGxXfFeE"].map((c) => {
    const verb = c.charCodeAt(0);
    const conversion = c === "v" ? 0x67 : c === "F" ? 0x66 : verb;
    return [verb, [conversion, "fFeE".includes(c) ? 6 : -1]];
  }),
);

/**
 * Where `%p` of a map points. Go prints the map's heap address, which no
 * other program can reproduce; a fixed address of the same shape keeps the
 * output deterministic.
 */
const MAP_ADDRESS = 0xc000010000n;

class Printer {
  out = "";
  readonly maxLength: number;
  // Go's fmtFlags, wid and prec.
  widPresent = false;
  precPresent = false;
  minus = false;
  plus = false;
  sharp = false;
  space = false;
  zero = false;
  plusV = false;
  sharpV = false;
  wid = 0;
  prec = 0;
  /** The operand being printed, for `%!verb(type=value)`. */
  arg: FmtArg = null;
  // Go's doPrintf state: the format, the operands, the position in the
  // format, the next operand, and what the last directive did.
  format = "";
  args: readonly FmtArg[] = [];
  i = 0;
  argNum = 0;
  afterIndex = false;
  reordered = false;
  goodArgNum = true;

  constructor(maxLength: number) {
    this.maxLength = maxLength;
  }

  /** Stops the output from growing past the caller's budget. */
  checkLength(): void {
    if (this.out.length > this.maxLength) {
      throw new RangeError(
        `Cannot format: the output is longer than ${this.maxLength} characters`,
      );
    }
  }

  clearFlags(): void {
    this.widPresent = false;
    this.precPresent = false;
    this.minus = false;
    this.plus = false;
    this.sharp = false;
    this.space = false;
    this.zero = false;
    this.plusV = false;
    this.sharpV = false;
    this.wid = 0;
    this.prec = 0;
  }

  writePadding(n: number): void {
    if (n <= 0) return;
    this.out += (this.zero && !this.minus ? "0" : " ").repeat(n);
  }

  /** Appends `s` padded to the width, counting code points as Go counts runes. */
  pad(s: string): void {
    if (!this.widPresent || this.wid === 0) {
      this.out += s;
      return;
    }
    const n = this.wid - runeCount(s);
    if (!this.minus) {
      this.writePadding(n);
      this.out += s;
    } else {
      this.out += s;
      this.writePadding(n);
    }
  }

  truncate(s: string): string {
    if (!this.precPresent) return s;
    let n = this.prec;
    for (let i = 0; i < s.length; i++) {
      if (--n < 0) return s.slice(0, i);
      const c = s.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && isLow(s.charCodeAt(i + 1))) i++;
    }
    return s;
  }

  fmtS(s: string): void {
    this.pad(this.truncate(s));
  }

  badVerb(verb: number): void {
    this.out += "%!" + runeString(verb) + "(";
    this.typedArg(this.arg);
    this.out += ")";
  }

  /** An operand as Go's error forms show it: `<nil>` or `type=value`. */
  typedArg(arg: FmtArg): void {
    if (arg === null) {
      this.out += "<nil>";
      return;
    }
    this.out += goTypeName(arg) + "=";
    this.printArg(arg, V);
  }

  printArg(arg: FmtArg, verb: number): void {
    this.printOperand(arg, verb);
    this.checkLength();
  }

  printOperand(arg: FmtArg, verb: number): void {
    this.arg = arg;
    if (arg === null) {
      if (verb === 0x54 || verb === V) this.pad("<nil>");
      else this.badVerb(verb);
      return;
    }
    if (verb === 0x54) { // T
      this.fmtS(goTypeName(arg));
      return;
    }
    const isMap = typeof arg === "object" && !(arg instanceof GoUint8) &&
      !(arg instanceof GoComplex);
    if (verb === 0x70) { // p: only reference types have an address.
      if (isMap) this.fmt0x64(MAP_ADDRESS, !this.sharp);
      else this.badVerb(verb);
      return;
    }
    switch (typeof arg) {
      case "boolean":
        if (verb === 0x74 || verb === V) this.pad(arg ? "true" : "false");
        else this.badVerb(verb);
        return;
      case "number":
        return this.fmtFloat(arg, verb);
      case "bigint":
        return this.fmtInteger(BigInt.asUintN(64, arg), true, verb);
      case "string":
        return this.fmtString(arg, verb);
    }
    if (arg instanceof GoUint8) {
      return this.fmtInteger(BigInt(arg.uint8 & 0xff), false, verb);
    }
    if (arg instanceof GoComplex) return this.fmtComplex(arg, verb);
    // Go asks a map's methods first, and %w is refused there for the whole map.
    if (verb === 0x77) return this.badVerb(verb);
    this.printMap(arg as ReadonlyMap<string, string>, verb);
  }

  printMap(m: ReadonlyMap<string, string>, verb: number): void {
    const keys = [...m.keys()].sort(compareUtf8);
    this.out += this.sharpV ? "map[string]string{" : "map[";
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) this.out += this.sharpV ? ", " : " ";
      const key = keys[i] as string;
      this.arg = key;
      this.fmtString(key, verb);
      this.out += ":";
      const value = m.get(key) as string;
      this.arg = value;
      this.fmtString(value, verb);
      this.checkLength();
    }
    this.out += this.sharpV ? "}" : "]";
  }

  fmtString(s: string, verb: number): void {
    switch (verb) {
      case V:
        if (this.sharpV) this.fmtQ(s);
        else this.fmtS(s);
        return;
      case 0x73: // s
        return this.fmtS(s);
      case 0x78: // x
        return this.fmtSx(s, false);
      case 0x58: // X
        return this.fmtSx(s, true);
      case 0x71: // q
        return this.fmtQ(s);
      default:
        this.badVerb(verb);
    }
  }

  /** Hexadecimal of the UTF-8 bytes, `% x` spaced, `%#x` with 0x. */
  fmtSx(s: string, upper: boolean): void {
    const bytes = encoder.encode(s);
    const n = this.precPresent
      ? Math.min(this.prec, bytes.length)
      : bytes.length;
    this.pad(hexBytes(bytes, n, this.sharp, this.space, upper));
  }

  fmtQ(s: string): void {
    s = this.truncate(s);
    if (this.sharp && canBackquote(s)) this.pad("`" + s + "`");
    else this.pad(quote(s, this.plus));
  }

  fmtInteger(u: bigint, signed: boolean, verb: number): void {
    const base = INT_BASES.get(verb);
    if (verb === V && this.sharpV && !signed) this.fmt0x64(u, true);
    else if (base !== undefined) {
      this.fmtInt(u, base, signed, verb, verb === 0x58);
    } else if (verb === 0x63) this.pad(String.fromCodePoint(validRune(u))); // c
    else if (verb === 0x71) this.pad(quoteRune(validRune(u), this.plus)); // q
    else if (verb === 0x55) this.fmtUnicode(u); // U
    else this.badVerb(verb);
  }

  fmt0x64(u: bigint, leading0x: boolean): void {
    const sharp = this.sharp;
    this.sharp = leading0x;
    this.fmtInt(u, 16, false, V, false);
    this.sharp = sharp;
  }

  /** Go's `fmt.fmtInteger`: `u` is the value's 64 bits, two's complement. */
  fmtInt(
    u: bigint,
    base: number,
    signed: boolean,
    verb: number,
    upper: boolean,
  ): void {
    const negative = signed && u >= 1n << 63n;
    if (negative) u = (1n << 64n) - u;
    let prec = 0;
    if (this.precPresent) {
      prec = this.prec;
      if (prec === 0 && u === 0n) {
        const zero = this.zero;
        this.zero = false;
        this.writePadding(this.wid);
        this.zero = zero;
        return;
      }
    } else if (this.zero && !this.minus && this.widPresent) {
      prec = this.wid;
      if (negative || this.plus || this.space) prec--;
    }
    let digits = u.toString(base);
    if (upper) digits = digits.toUpperCase();
    if (digits.length < prec) {
      digits = "0".repeat(prec - digits.length) + digits;
    }
    if (this.sharp) {
      if (base === 2) digits = "0b" + digits;
      else if (base === 8 && digits[0] !== "0") digits = "0" + digits;
      else if (base === 16) digits = (upper ? "0X" : "0x") + digits;
    }
    if (verb === 0x4f) digits = "0o" + digits;
    if (negative) digits = "-" + digits;
    else if (this.plus) digits = "+" + digits;
    else if (this.space) digits = " " + digits;
    const zero = this.zero;
    this.zero = false;
    this.pad(digits);
    this.zero = zero;
  }

  /** `U+0078`, or with `#` `U+0078 'x'` when printable. */
  fmtUnicode(u: bigint): void {
    let hex = u.toString(16).toUpperCase();
    const prec = this.precPresent && this.prec > 4 ? this.prec : 4;
    if (hex.length < prec) hex = "0".repeat(prec - hex.length) + hex;
    let s = "U+" + hex;
    if (this.sharp && u <= MAX_RUNE && isPrint(Number(u))) {
      s += " '" + String.fromCodePoint(Number(u)) + "'";
    }
    const zero = this.zero;
    this.zero = false;
    this.pad(s);
    this.zero = zero;
  }

  fmtFloat(v: number, verb: number): void {
    const spec = FLOAT_VERBS.get(verb);
    if (spec === undefined) this.badVerb(verb);
    else this.formatFloat(v, spec[0], spec[1]);
  }

  fmtComplex(c: GoComplex, verb: number): void {
    if (!FLOAT_VERBS.has(verb)) return this.badVerb(verb);
    const plus = this.plus;
    this.out += "(";
    this.fmtFloat(c.real, verb);
    this.plus = true; // the imaginary part always has a sign
    this.fmtFloat(c.imag, verb);
    this.out += "i)";
    this.plus = plus;
  }

  /** Go's `fmt.fmtFloat`: sign, `#`, zero padding and NaN/Inf around strconv. */
  formatFloat(v: number, verb: number, prec: number): void {
    if (this.precPresent) prec = this.prec;
    let num = formatFloat(v, String.fromCharCode(verb), prec);
    if (num[0] !== "-" && num[0] !== "+") num = "+" + num;
    if (this.space && num[0] === "+" && !this.plus) num = " " + num.slice(1);
    if (num[1] === "I" || num[1] === "N") {
      const zero = this.zero;
      this.zero = false;
      if (num[1] === "N" && !this.space && !this.plus) num = num.slice(1);
      this.pad(num);
      this.zero = zero;
      return;
    }
    if (this.sharp && verb !== 0x62) num = sharpFloat(num, verb, prec);
    if (this.plus || num[0] !== "+") {
      if (
        this.zero && !this.minus && this.widPresent && this.wid > num.length
      ) {
        this.out += num[0];
        this.writePadding(this.wid - num.length);
        this.out += num.slice(1);
        return;
      }
      this.pad(num);
      return;
    }
    this.pad(num.slice(1));
  }

  doPrintf(format: string, args: readonly FmtArg[]): void {
    this.format = format;
    this.args = args;
    this.i = this.argNum = 0;
    this.afterIndex = this.reordered = false;
    while (this.i < format.length) {
      this.goodArgNum = true;
      const next = format.indexOf("%", this.i);
      if (next < 0) {
        this.out += format.slice(this.i);
        break;
      }
      this.out += format.slice(this.i, next);
      this.i = next + 1;
      this.clearFlags();
      if (this.simpleDirective()) continue;
      this.argNumber();
      this.width();
      this.precision();
      if (!this.afterIndex) this.argNumber();
      if (this.i >= format.length) {
        this.out += "%!(NOVERB)";
        break;
      }
      this.verb();
    }
    if (!this.reordered && this.argNum < args.length) this.extra();
  }

  /**
   * Reads the flags; when a lower-case verb follows them directly and an
   * operand is left (the common case), prints it and returns true.
   */
  simpleDirective(): boolean {
    const { format, args } = this;
    for (; this.i < format.length; this.i++) {
      const c = format.charCodeAt(this.i);
      if (c === 0x23) this.sharp = true;
      else if (c === 0x30) this.zero = true;
      else if (c === 0x2b) this.plus = true;
      else if (c === 0x2d) this.minus = true;
      else if (c === 0x20) this.space = true;
      else if (c >= 0x61 && c <= 0x7a && this.argNum < args.length) {
        if (c === V || c === 0x77) this.moveSharpPlus();
        this.printArg(args[this.argNum++] as FmtArg, c);
        this.i++;
        return true;
      } else {
        return false;
      }
    }
    return false;
  }

  width(): void {
    if (this.format.charCodeAt(this.i) === 0x2a) { // *
      this.i++;
      [this.wid, this.widPresent] = this.intFromArg();
      if (!this.widPresent) this.out += "%!(BADWIDTH)";
      if (this.wid < 0) {
        this.wid = -this.wid;
        this.minus = true;
      }
      this.afterIndex = false;
    } else {
      [this.wid, this.widPresent, this.i] = parseNum(
        this.format,
        this.i,
        this.format.length,
      );
      if (this.afterIndex && this.widPresent) this.goodArgNum = false;
    }
  }

  precision(): void {
    const format = this.format;
    if (this.i + 1 >= format.length || format.charCodeAt(this.i) !== 0x2e) {
      return;
    }
    this.i++;
    if (this.afterIndex) this.goodArgNum = false;
    this.argNumber();
    if (format.charCodeAt(this.i) === 0x2a) { // *
      this.i++;
      [this.prec, this.precPresent] = this.intFromArg();
      if (this.prec < 0) {
        this.prec = 0;
        this.precPresent = false;
      }
      if (!this.precPresent) this.out += "%!(BADPREC)";
      this.afterIndex = false;
    } else {
      [this.prec, this.precPresent, this.i] = parseNum(
        format,
        this.i,
        format.length,
      );
      if (!this.precPresent) {
        this.prec = 0;
        this.precPresent = true;
      }
    }
  }

  verb(): void {
    const verb = runeAt(this.format, this.i);
    this.i += verb > 0xffff ? 2 : 1;
    if (verb === 0x25) {
      this.out += "%";
    } else if (!this.goodArgNum) {
      this.out += "%!" + runeString(verb) + "(BADINDEX)";
    } else if (this.argNum >= this.args.length) {
      this.out += "%!" + runeString(verb) + "(MISSING)";
    } else {
      if (verb === V || verb === 0x77) this.moveSharpPlus();
      this.printArg(this.args[this.argNum++] as FmtArg, verb);
    }
  }

  /** `%#v` and `%+v` are their own formats: the flags move aside. */
  moveSharpPlus(): void {
    this.sharpV = this.sharp;
    this.sharp = false;
    this.plusV = this.plus;
    this.plus = false;
  }

  extra(): void {
    this.clearFlags();
    this.out += "%!(EXTRA ";
    for (let i = this.argNum; i < this.args.length; i++) {
      if (i > this.argNum) this.out += ", ";
      this.typedArg(this.args[i] as FmtArg);
    }
    this.out += ")";
  }

  /** An explicit `[n]` operand index at `i`. */
  argNumber(): void {
    const i = this.i;
    if (this.format.charCodeAt(i) !== 0x5b) {
      this.afterIndex = false;
      return;
    }
    this.reordered = true;
    const [index, wid, ok] = parseArgNumber(this.format, i);
    this.i = i + wid;
    this.afterIndex = ok;
    if (ok && index >= 0 && index < this.args.length) this.argNum = index;
    else this.goodArgNum = false;
  }

  /** A `*` width or precision: its value and whether it is a usable int. */
  intFromArg(): [number, boolean] {
    if (this.argNum >= this.args.length) return [0, false];
    const arg = this.args[this.argNum++];
    let num = 0;
    let isInt = false;
    if (typeof arg === "bigint") {
      num = Number(BigInt.asIntN(64, arg));
      isInt = true;
    } else if (arg instanceof GoUint8) {
      num = arg.uint8;
      isInt = true;
    }
    if (num > MAX_NUM || num < -MAX_NUM) return [0, false];
    return [num, isInt];
  }
}

/** `[n]` at `start`: zero-based index, characters consumed, valid. */
function parseArgNumber(
  format: string,
  start: number,
): [number, number, boolean] {
  if (format.length - start < 3) return [0, 1, false];
  for (let i = start + 1; i < format.length; i++) {
    if (format.charCodeAt(i) === 0x5d) {
      const [n, ok, newi] = parseNum(format, start + 1, i);
      if (!ok || newi !== i) return [0, i - start + 1, false];
      return [n - 1, i - start + 1, true];
    }
  }
  return [0, 1, false];
}

/** Go's `parsenum`: a number past 1e6 swallows the rest of the range. */
function parseNum(
  s: string,
  start: number,
  end: number,
): [number, boolean, number] {
  if (start >= end) return [0, false, end];
  let num = 0;
  let isNum = false;
  let i = start;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    if (num > MAX_NUM) return [0, false, end];
    num = num * 10 + c - 0x30;
    isNum = true;
  }
  return [num, isNum, i];
}
