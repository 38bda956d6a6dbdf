/**
 * A seeded generator of small templates and data maps for the Go
 * differential test: random compositions of the whole language (actions,
 * controls, definitions, every function, every literal form), a few of
 * them broken on purpose so that rejections are compared too.
 *
 * It avoids what Debian's Go 1.19 does differently from current Go (range
 * over an integer, `else with`) and the `json` extension, and keeps loops
 * small so that Go, which has no budget, finishes quickly.
 *
 * @module
 */
import { mulberry32 } from "../fixtures/reliability_prng.ts";

export interface FuzzCase {
  input: string;
  data: Record<string, string>;
  mode: "default" | "zero" | "error";
}

const KEYS = ["a", "b", "c", "k1", "名"];
const VALUES = [
  "",
  "1",
  "0",
  "hello",
  `<b>&'"`,
  "é日🎉",
  "a\\b",
  "  spaced  ",
  "true",
  "-3",
  "3.5",
  "x\ny",
  "%d",
];
const TEXTS = ["x", " ", "\n", "é", "}", "-", "  \n\t", "ab", "{ x"];
const LITERALS = [
  `"str"`,
  `""`,
  `"a\\tb"`,
  "`raw`",
  `"é🎉"`,
  "1",
  "0",
  "-2",
  "+3",
  "1.5",
  "-0.25",
  "1e3",
  "1e21",
  ".5",
  "0x1F",
  "0o17",
  "017",
  "0b101",
  "1_000",
  "0x1p-2",
  "'a'",
  "'\\n'",
  "'é'",
  "2i",
  "1+2i",
  "true",
  "false",
  "nil",
  "9223372036854775807",
  "9007199254740993",
];

/** Literals Go rejects, used now and then. */
const BAD_LITERALS = [
  "18446744073709551615",
  "99999999999999999999",
  "1e400",
  "08",
];
const FORMATS = [
  `"%v"`,
  `"%d"`,
  `"%s|%v"`,
  `"%q"`,
  `"%x %X"`,
  `"%5.2f"`,
  `"%-4s|"`,
  `"%t"`,
  `"%c"`,
  `"%T"`,
  `"%+d %05d"`,
  `"%e %g"`,
  `"%U"`,
  `"%%"`,
  `"%[2]v %[1]v"`,
  `"%*d"`,
  `"%!"`,
  `"%o %b"`,
  `"%.1s"`,
  `"%#v"`,
  `"%8.3e"`,
  `"%v %v %v"`,
];
const FUNCS = [
  "print",
  "println",
  "html",
  "js",
  "urlquery",
  "len",
  "not",
  "and",
  "or",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "index",
  "slice",
];

export class TemplateFuzzer {
  readonly #random: () => number;
  #depth = 0;
  #defined = false;
  /** Generating the body of "t": no calls to "t", no nested blocks. */
  #inBody = false;

  constructor(seed: number) {
    this.#random = mulberry32(seed).next;
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)] as T;
  }

  #chance(p: number): boolean {
    return this.#random() < p;
  }

  next(): FuzzCase {
    const data: Record<string, string> = {};
    const keys = this.#int(4);
    for (let i = 0; i < keys; i++) {
      data[this.#pick(KEYS)] = this.#pick(VALUES);
    }
    // Most data holds the keys templates use, so most templates render.
    for (const key of ["a", "b"]) {
      if (this.#chance(0.8)) data[key] ??= this.#pick(VALUES);
    }
    this.#depth = 0;
    // A body never calls "t": Go has no budget, and two recursive calls
    // per level would never finish.
    this.#defined = false;
    let input = this.#chance(0.5) ? "{{ $x := .a }}" : "{{ $x := 1 }}";
    if (this.#chance(0.2)) {
      input += `{{ define "t" }}${this.#body()}{{ end }}`;
      this.#defined = true;
    }
    input += this.#list(1 + this.#int(4));
    if (this.#chance(0.05)) input = this.#mutate(input);
    const mode = this.#pick(
      ["default", "default", "default", "zero", "zero", "error"] as const,
    );
    return { input, data, mode };
  }

  /** Breaks a template: drops, doubles or swaps a character. */
  #mutate(input: string): string {
    const at = this.#int(input.length + 1);
    switch (this.#int(3)) {
      case 0:
        return input.slice(0, at) + input.slice(at + 1);
      case 1:
        return input.slice(0, at) + input.slice(at, at + 1) + input.slice(at);
    }
    return input.slice(0, at) + this.#pick(["}", "(", ")", "|", "$", '"']) +
      input.slice(at);
  }

  #list(n: number): string {
    let out = "";
    for (let i = 0; i < n; i++) out += this.#item();
    return out;
  }

  #item(): string {
    const roll = this.#random();
    if (roll < 0.25) return this.#pick(TEXTS);
    if (roll < 0.6 || this.#depth >= 3) return this.#action();
    this.#depth++;
    const out = this.#control();
    this.#depth--;
    return out;
  }

  #action(): string {
    const left = this.#chance(0.15) ? "{{- " : "{{ ";
    const right = this.#chance(0.15) ? " -}}" : " }}";
    if (this.#chance(0.05)) return `{{/* c */}}`;
    const decl = this.#chance(0.1) ? "$x := " : "";
    return left + decl + this.#pipeline() + right;
  }

  #control(): string {
    const pipe = this.#pipeline();
    const body = this.#list(1 + this.#int(2));
    const other = this.#chance(0.4) ? `{{ else }}${this.#list(1)}` : "";
    switch (this.#int(6)) {
      case 0:
        return `{{ if ${pipe} }}${body}${other}{{ end }}`;
      case 1:
        return `{{ if ${pipe} }}${body}{{ else if ${this.#pipeline()} }}${body}${other}{{ end }}`;
      case 2:
        return `{{ with ${pipe} }}${body}${other}{{ end }}`;
      case 3: {
        const vars = this.#pick(["", "$k, $v := ", "$v := "]);
        const loop = this.#chance(0.2)
          ? "{{ break }}"
          : this.#chance(0.2)
          ? "{{ continue }}"
          : "";
        return `{{ range ${vars}${
          this.#pick([".", "$", ".missing", ".a"])
        } }}${body}${loop}${other}{{ end }}`;
      }
      case 4:
        if (this.#inBody) return `{{ if ${pipe} }}${body}{{ end }}`;
        if (this.#defined) {
          return `{{ template "t" ${
            this.#chance(0.5) ? this.#operand() : ""
          } }}`;
        }
        this.#defined = true;
        return `{{ block "t" ${this.#operand()} }}${this.#body()}{{ end }}`;
      default:
        return `{{ if ${pipe} }}${body}{{ end }}`;
    }
  }

  /** The body of "t", which must not call "t". */
  #body(): string {
    this.#inBody = true;
    const body = this.#list(1 + this.#int(2));
    this.#inBody = false;
    return body;
  }

  #pipeline(): string {
    let out = this.#command(true);
    const stages = this.#int(3);
    for (let i = 0; i < stages; i++) out += " | " + this.#command(false);
    return out;
  }

  #command(first: boolean): string {
    if (first && this.#chance(0.3)) return this.#operand();
    if (this.#chance(0.2)) {
      const args = first ? [this.#operand()] : [];
      return `printf ${this.#pick(FORMATS)} ${args.join(" ")}`.trimEnd();
    }
    // A later stage gets a value of any type: mostly type-agnostic calls.
    const fn = first || this.#chance(0.3) ? this.#pick(FUNCS) : this.#pick([
      "print",
      "println",
      "html",
      "js",
      "urlquery",
      "not",
      "and",
      "or",
      "len",
    ]);
    if (this.#chance(0.85)) return this.#typedCall(fn, first);
    const count = this.#int(first ? 4 : 3);
    const args: string[] = [];
    for (let i = 0; i < count; i++) args.push(this.#operand());
    return [fn, ...args].join(" ");
  }

  /** A call whose arguments suit the function, so that it mostly runs. */
  #typedCall(fn: string, first: boolean): string {
    const field = () => this.#pick([".a", ".b", "$x", `"héllo"`, `"xyz"`]);
    const int = () => this.#pick(["0", "1", "2", "3", "(len .a)"]);
    switch (fn) {
      case "len":
        return first ? `len ${field()}` : "len";
      case "index":
        return first
          ? this.#pick([
            `index . "a"`,
            `index . "b" `,
            `index ${field()} ${int()}`,
          ])
          : `index .`;
      case "slice":
        return first ? `slice ${field()} ${int()}` : `slice "abcdef" 1`;
      case "eq":
      case "ne":
      case "lt":
      case "le":
      case "gt":
      case "ge": {
        const [a, b] = this.#pick([
          [field(), field()],
          [int(), int()],
          ["1.5", "2.5"],
          ["true", "false"],
        ]);
        return first ? `${fn} ${a} ${b}` : `${fn} ${a}`;
      }
    }
    return first ? `${fn} ${field()}` : fn;
  }

  #operand(): string {
    const roll = this.#random();
    if (roll < 0.35) {
      return this.#pick([".a", ".b", ".c", ".missing", ".k1", ".名"]);
    }
    if (roll < 0.45) return this.#pick([".", "$", "$x"]);
    if (roll < 0.8) {
      return this.#chance(0.03)
        ? this.#pick(BAD_LITERALS)
        : this.#pick(LITERALS);
    }
    if (this.#depth >= 3) return ".a";
    this.#depth++;
    const inner = `(${this.#pipeline()})`;
    this.#depth--;
    return inner;
  }
}
