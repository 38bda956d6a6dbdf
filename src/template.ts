/**
 * A subset of Go's `text/template` for rendering one group of the store.
 *
 * Templates are shared with Go services, so everything this module accepts
 * renders byte for byte as Go's `text/template` renders it for a
 * `map[string]string`; constructs outside the subset are rejected when
 * parsing instead of being rendered differently. A template is parsed once
 * into a tree, and executing walks that tree without looking at the source
 * text again.
 *
 * @module
 */

import { TemplateError } from "./errors.ts";

/**
 * What a field reference such as `{{ .name }}` yields when the key is not in
 * the map, as Go's `missingkey` option: `"default"` gives Go's invalid value
 * (printed as `<no value>`), `"zero"` gives `""`, and `"error"` stops the
 * execution with a {@linkcode TemplateError}.
 */
export type MissingKeyMode = "default" | "zero" | "error";

/**
 * A parsed template, ready to be executed any number of times with
 * {@linkcode executeTemplate}.
 */
export interface Template {
  /** The parsed tree, opaque outside this module. */
  readonly tree: unknown;
}

/**
 * Parses a template written in the supported subset of Go's `text/template`.
 *
 * Supported: text, `{{ pipeline }}` actions, comments, trim markers, `.key`
 * fields, `.`, `$`, variables (`$x := …`, `$x = …`), string literals, decimal
 * integer literals, `true`, `false`, `nil`, parenthesized pipelines, `if` /
 * `else if` / `else`, `with` / `else with` / `else`, `range` (with its `else`,
 * `break` and `continue`), and the functions `html`, `js`, `urlquery`,
 * `json`, `index`, `len`, `not`, `and`, `or`, `eq` and `ne`.
 *
 * @param source The template text.
 * @returns The parsed template.
 * @throws {TemplateError} If the source is not a valid template of the
 * subset; `line` and `column` (1-based, UTF-16 units) locate the problem.
 * @throws {TypeError} If `source` is not a string.
 *
 * @example Parse once, then execute
 * ```ts
 * import { executeTemplate, parseTemplate } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const template = parseTemplate("Hello, {{ .name | html }}!");
 * const data = new Map([["name", "<Gopher>"]]);
 * assert.equal(executeTemplate(template, data, "default"), "Hello, &lt;Gopher&gt;!");
 * ```
 *
 * @example A syntax error reports where it is
 * ```ts
 * import { parseTemplate } from "./template.ts";
 * import { TemplateError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parseTemplate("a\n{{ .name"), (error) => {
 *   assert.ok(error instanceof TemplateError);
 *   assert.equal(error.line, 2);
 *   assert.equal(error.column, 1);
 *   return true;
 * });
 * ```
 */
export function parseTemplate(source: string): Template {
  if (typeof source !== "string") {
    throw new TypeError("Cannot parse template: the source must be a string");
  }
  const lineStarts = [0];
  for (let i = source.indexOf("\n"); i >= 0; i = source.indexOf("\n", i + 1)) {
    lineStarts.push(i + 1);
  }
  const nodes = new Parser(lex(source), lineStarts).parse();
  return Object.freeze({ tree: new Tree(nodes, lineStarts) });
}

/**
 * Executes a parsed template against one group of the store, as Go's
 * `Template.Execute` does with a `map[string]string` whose `missingkey`
 * option is `missingKey`.
 *
 * `data` must iterate in ascending key order (the byte order of the keys'
 * UTF-8, as Go sorts them): `range` and the printed form of the whole map
 * follow the map's own order instead of sorting it on every execution.
 *
 * @param template A template from {@linkcode parseTemplate}.
 * @param data The group's keys and values; `.key` and `index` look keys up
 * here, and it is the initial `.` and `$`.
 * @param missingKey What a missing `.key` yields.
 * @returns The rendered text.
 * @throws {TemplateError} If the execution fails, e.g. on a missing key in
 * `"error"` mode or a field of a string; `line` and `column` locate the
 * failing part of the action.
 * @throws {TypeError} If `template` did not come from
 * {@linkcode parseTemplate} or `missingKey` is not a known mode.
 *
 * @example Missing keys in each mode
 * ```ts
 * import { executeTemplate, parseTemplate } from "./template.ts";
 * import { TemplateError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const template = parseTemplate("[{{ .missing }}]");
 * const data = new Map<string, string>();
 * assert.equal(executeTemplate(template, data, "default"), "[<no value>]");
 * assert.equal(executeTemplate(template, data, "zero"), "[]");
 * assert.throws(() => executeTemplate(template, data, "error"), TemplateError);
 * ```
 *
 * @example Range over the group in key order
 * ```ts
 * import { executeTemplate, parseTemplate } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const template = parseTemplate(
 *   "{{ range $k, $v := . }}{{ $k }}={{ $v | urlquery }};{{ end }}",
 * );
 * const data = new Map([["a", "x y"], ["b", "&"]]);
 * assert.equal(executeTemplate(template, data, "default"), "a=x+y;b=%26;");
 * ```
 */
export function executeTemplate(
  template: Template,
  data: ReadonlyMap<string, string>,
  missingKey: MissingKeyMode,
): string {
  const tree = template?.tree;
  if (!(tree instanceof Tree)) {
    throw new TypeError(
      "Cannot execute template: it was not made by parseTemplate()",
    );
  }
  const mode = MODES.get(missingKey);
  if (mode === undefined) {
    throw new TypeError(
      `Cannot execute template: unknown missing-key mode "${missingKey}"`,
    );
  }
  return new Executor(tree.lineStarts, mode).run(tree.nodes, data);
}

// ---------------------------------------------------------------------------
// Values

/**
 * Go's `uint8`, the only non-`int` number a template can make (`index` of a
 * string); kept apart from `int` because Go prints and names it differently.
 */
class ByteValue {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/**
 * A value during execution. `null` is Go's invalid `reflect.Value` (a missing
 * key in default mode, `nil`), `number` is Go's `int`.
 */
type Value =
  | string
  | boolean
  | number
  | ByteValue
  | null
  | ReadonlyMap<string, string>;

function isMap(value: Value): value is ReadonlyMap<string, string> {
  return typeof value === "object" && value !== null &&
    !(value instanceof ByteValue);
}

/** Go's `isTrue`: the zero value of each type is false. */
function isTrue(value: Value): boolean {
  if (typeof value === "string") return value.length > 0;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  if (value === null) return false;
  if (value instanceof ByteValue) return value.value !== 0;
  return value.size > 0;
}

/** The Go type name of a value, for error messages. */
function typeName(value: Value): string {
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return "int";
  if (value === null) return "<nil>";
  if (value instanceof ByteValue) return "uint8";
  return "map[string]string";
}

/** How Go's `fmt.Print` (through text/template's `printableValue`) shows a value. */
function formatValue(value: Value): string {
  if (typeof value === "string") return value;
  if (value === null) return "<no value>";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return String(value);
  if (value instanceof ByteValue) return String(value.value);
  let out = "map[";
  let first = true;
  for (const [key, item] of value) {
    out += first ? key + ":" + item : " " + key + ":" + item;
    first = false;
  }
  return out + "]";
}

// ---------------------------------------------------------------------------
// Escapers. Each scans for the first character that needs work and returns
// its input untouched when there is none, since most values are plain.

type Escaper = (s: string) => string;

const HEX_UPPER = "0123456789ABCDEF";
const HEX_LOWER = "0123456789abcdef";

/** Replacement of each ASCII code unit, or `""` when it is copied as is. */
function asciiTable(special: (c: number) => string): readonly string[] {
  const table: string[] = [];
  for (let c = 0; c < 0x80; c++) table.push(special(c));
  return table;
}

const HTML_TABLE = asciiTable((c) => {
  switch (c) {
    case 0x00:
      return "\uFFFD";
    case 0x22:
      return "&#34;";
    case 0x26:
      return "&amp;";
    case 0x27:
      return "&#39;";
    case 0x3c:
      return "&lt;";
    case 0x3e:
      return "&gt;";
  }
  return "";
});

/** Go's `template.HTMLEscapeString`. */
function htmlEscape(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x80 && HTML_TABLE[c] !== "") break;
    i++;
  }
  if (i === n) return s;
  let out = "";
  let last = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) continue;
    const replacement = HTML_TABLE[c] as string;
    if (replacement === "") continue;
    out += s.slice(last, i) + replacement;
    last = i + 1;
  }
  return out + s.slice(last);
}

const JS_TABLE = asciiTable((c) => {
  switch (c) {
    case 0x22:
      return '\\"';
    case 0x26:
      return "\\u0026";
    case 0x27:
      return "\\'";
    case 0x3c:
      return "\\u003C";
    case 0x3d:
      return "\\u003D";
    case 0x3e:
      return "\\u003E";
    case 0x5c:
      return "\\\\";
  }
  return c < 0x20 ? "\\u00" + HEX_UPPER[c >> 4] + HEX_UPPER[c & 0xf] : "";
});

/** Go's `template.JSEscapeString`. */
function jsEscape(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (JS_TABLE[c] !== "") break;
      i++;
    } else {
      const cp = s.codePointAt(i) as number;
      if (!isGoPrintable(cp)) break;
      i += cp > 0xffff ? 2 : 1;
    }
  }
  if (i === n) return s;
  let out = "";
  let last = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      const replacement = JS_TABLE[c] as string;
      if (replacement !== "") {
        out += s.slice(last, i) + replacement;
        last = i + 1;
      }
      i++;
      continue;
    }
    const cp = s.codePointAt(i) as number;
    const width = cp > 0xffff ? 2 : 1;
    if (!isGoPrintable(cp)) {
      out += s.slice(last, i) + "\\u" +
        cp.toString(16).toUpperCase().padStart(4, "0");
      last = i + width;
    }
    i += width;
  }
  return out + s.slice(last);
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
/** Go's `unicode.IsPrint` of each BMP code point: 0 unknown, 1 yes, 2 no. */
const bmpPrintable = new Uint8Array(0x10000);
const astralPrintable = new Map<number, boolean>();

/**
 * Go's `unicode.IsPrint` for a non-ASCII code point, cached because the
 * Unicode property test is slow next to a table look-up. A lone surrogate
 * reaches Go (through UTF-8) as U+FFFD, which is printable.
 */
function isGoPrintable(cp: number): boolean {
  if (cp <= 0xffff) {
    let known = bmpPrintable[cp] as number;
    if (known === 0) {
      const printable = (cp >= 0xd800 && cp <= 0xdfff) ||
        PRINTABLE.test(String.fromCharCode(cp));
      known = printable ? 1 : 2;
      bmpPrintable[cp] = known;
    }
    return known === 1;
  }
  let printable = astralPrintable.get(cp);
  if (printable === undefined) {
    printable = PRINTABLE.test(String.fromCodePoint(cp));
    astralPrintable.set(cp, printable);
  }
  return printable;
}

/** `%XX` for each byte value. */
const PERCENT: readonly string[] = Array.from(
  { length: 256 },
  (_, b) => "%" + HEX_UPPER[b >> 4] + HEX_UPPER[b & 0xf],
);

/** ASCII code units that `url.QueryEscape` keeps: `A-Za-z0-9-_.~`. */
const URL_SAFE = new Uint8Array(0x80);
for (const c of "-_.~0123456789") URL_SAFE[c.charCodeAt(0)] = 1;
for (let c = 0x41; c <= 0x5a; c++) {
  URL_SAFE[c] = 1;
  URL_SAFE[c + 0x20] = 1;
}

/** Go's `url.QueryEscape` over the value's UTF-8 bytes. */
function urlQueryEscape(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || URL_SAFE[c] === 0) break;
    i++;
  }
  if (i === n) return s;
  let out = s.slice(0, i);
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      out += URL_SAFE[c] === 1 ? s[i] : c === 0x20 ? "+" : PERCENT[c];
      i++;
      continue;
    }
    let cp = s.codePointAt(i) as number;
    i += cp > 0xffff ? 2 : 1;
    // A lone surrogate is stored as U+FFFD, so Go sees and escapes that.
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x800) {
      out += PERCENT[0xc0 | (cp >> 6)]! + PERCENT[0x80 | (cp & 0x3f)];
    } else if (cp < 0x10000) {
      out += PERCENT[0xe0 | (cp >> 12)]! +
        PERCENT[0x80 | ((cp >> 6) & 0x3f)] + PERCENT[0x80 | (cp & 0x3f)];
    } else {
      out += PERCENT[0xf0 | (cp >> 18)]! +
        PERCENT[0x80 | ((cp >> 12) & 0x3f)] +
        PERCENT[0x80 | ((cp >> 6) & 0x3f)] + PERCENT[0x80 | (cp & 0x3f)];
    }
  }
  return out;
}

const JSON_TABLE = asciiTable((c) => {
  switch (c) {
    case 0x08:
      return "\\b";
    case 0x09:
      return "\\t";
    case 0x0a:
      return "\\n";
    case 0x0c:
      return "\\f";
    case 0x0d:
      return "\\r";
    case 0x22:
      return '\\"';
    case 0x26:
      return "\\u0026";
    case 0x3c:
      return "\\u003c";
    case 0x3e:
      return "\\u003e";
    case 0x5c:
      return "\\\\";
  }
  return c < 0x20 ? "\\u00" + HEX_LOWER[c >> 4] + HEX_LOWER[c & 0xf] : "";
});

/** The JSON string literal Go's `json.Marshal` writes for a string. */
function jsonQuote(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x80 ? JSON_TABLE[c] !== "" : c === 0x2028 || c === 0x2029) break;
    i++;
  }
  if (i === n) return '"' + s + '"';
  let out = '"';
  let last = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    let replacement: string;
    if (c < 0x80) {
      replacement = JSON_TABLE[c] as string;
      if (replacement === "") continue;
    } else if (c === 0x2028) {
      replacement = "\\u2028";
    } else if (c === 0x2029) {
      replacement = "\\u2029";
    } else {
      continue;
    }
    out += s.slice(last, i) + replacement;
    last = i + 1;
  }
  return out + s.slice(last) + '"';
}

const ESCAPERS: ReadonlyMap<string, Escaper> = new Map([
  ["html", htmlEscape],
  ["js", jsEscape],
  ["json", jsonQuote],
  ["urlquery", urlQueryEscape],
]);

const FUNCTIONS: ReadonlySet<string> = new Set([
  "and",
  "eq",
  "html",
  "index",
  "js",
  "json",
  "len",
  "ne",
  "not",
  "or",
  "urlquery",
]);

/** Length of the UTF-8 encoding, which is what Go's `len` counts. */
function utf8Length(s: string): number {
  let length = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      length += 1;
    } else if (c < 0x800) {
      length += 2;
    } else if (
      c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
      (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      length += 4;
      i++;
    } else {
      length += 3;
    }
  }
  return length;
}

// ---------------------------------------------------------------------------
// Errors

/** Builds the error for a source offset, counting lines as Go does (`\n`). */
function errorAt(
  lineStarts: readonly number[],
  pos: number,
  message: string,
): TemplateError {
  let low = 0;
  let high = lineStarts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if ((lineStarts[mid] as number) <= pos) low = mid;
    else high = mid - 1;
  }
  return new TemplateError(
    message,
    low + 1,
    pos - (lineStarts[low] as number) + 1,
  );
}

/** Approximates Go's `%q` for messages. */
function quote(s: string): string {
  return JSON.stringify(s);
}

/** Go's `%#U`: `U+0041 'A'`, without the character when it is unprintable. */
function formatRune(cp: number): string {
  const code = "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
  const printable = cp < 0x80
    ? cp >= 0x20 && cp < 0x7f
    : !(cp >= 0xd800 && cp <= 0xdfff) && isGoPrintable(cp);
  return printable ? `${code} '${String.fromCodePoint(cp)}'` : code;
}

// ---------------------------------------------------------------------------
// Lexer: Go's parse/lex.go, producing all tokens up front. Lexing never
// depends on the parser, so the only difference from Go's lazy lexer is
// timing: a lexical error is a token, reported when the parser reaches it.

const T = {
  Error: 0,
  Bool: 1,
  Char: 2,
  CharConstant: 3,
  Complex: 4,
  Assign: 5,
  Declare: 6,
  EOF: 7,
  Field: 8,
  Identifier: 9,
  LeftDelim: 10,
  LeftParen: 11,
  Number: 12,
  Pipe: 13,
  RawString: 14,
  RightDelim: 15,
  RightParen: 16,
  Space: 17,
  String: 18,
  Text: 19,
  Variable: 20,
  // Keywords sort after Keyword.
  Keyword: 21,
  Block: 22,
  Break: 23,
  Continue: 24,
  Dot: 25,
  Define: 26,
  Else: 27,
  End: 28,
  If: 29,
  Nil: 30,
  Range: 31,
  Template: 32,
  With: 33,
} as const;
type TokenType = (typeof T)[keyof typeof T];

const KEYWORDS: ReadonlyMap<string, TokenType> = new Map<string, TokenType>([
  ["block", T.Block],
  ["break", T.Break],
  ["continue", T.Continue],
  ["define", T.Define],
  ["else", T.Else],
  ["end", T.End],
  ["if", T.If],
  ["nil", T.Nil],
  ["range", T.Range],
  ["template", T.Template],
  ["with", T.With],
]);

interface Token {
  readonly type: TokenType;
  /** UTF-16 offset in the source. */
  readonly pos: number;
  /** The token's text; for an error token, the message. */
  readonly val: string;
}

const DASH = 0x2d;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

const LETTER_OR_DIGIT = /^[\p{L}\p{Nd}]$/u;

/** Go's `isAlphaNumeric`: `_`, `unicode.IsLetter` or `unicode.IsDigit`. */
function isAlphaNumeric(cp: number): boolean {
  if (cp < 0x80) {
    return cp === 0x5f || isDigit(cp) ||
      (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
  }
  return LETTER_OR_DIGIT.test(String.fromCodePoint(cp));
}

/** Go's `hasLeftTrimMarker`: `-` then an ASCII space. */
function hasLeftTrimMarker(src: string, p: number): boolean {
  return src.charCodeAt(p) === DASH && isSpace(src.charCodeAt(p + 1));
}

/** Whether ` -}}` (any ASCII space before the dash) starts at `p`. */
function atTrimmedRightDelim(src: string, p: number): boolean {
  return isSpace(src.charCodeAt(p)) && src.charCodeAt(p + 1) === DASH &&
    src.startsWith("}}", p + 2);
}

/** Go's `atTerminator`: what may follow an identifier, field or variable. */
function atTerminator(src: string, p: number): boolean {
  if (p >= src.length) return true;
  const c = src.charCodeAt(p);
  if (isSpace(c)) return true;
  switch (c) {
    case 0x2e: // .
    case 0x2c: // ,
    case 0x7c: // |
    case 0x3a: // :
    case 0x29: // )
    case 0x28: // (
      return true;
  }
  return src.startsWith("}}", p);
}

function codePointWidth(cp: number): number {
  return cp > 0xffff ? 2 : 1;
}

/**
 * Go's `scanNumber`: the end of the number that starts at `p`, negative
 * (as `-end - 1`) when an alphanumeric character follows it.
 */
function scanNumber(src: string, p: number): number {
  const n = src.length;
  let q = p;
  const accept = (valid: string): boolean => {
    if (q < n && valid.includes(src[q] as string)) {
      q++;
      return true;
    }
    return false;
  };
  accept("+-");
  let digits = "0123456789_";
  if (accept("0")) {
    if (accept("xX")) digits = "0123456789abcdefABCDEF_";
    else if (accept("oO")) digits = "01234567_";
    else if (accept("bB")) digits = "01_";
  }
  while (accept(digits));
  if (accept(".")) { while (accept(digits)); }
  if (digits.length === 11 && accept("eE")) {
    accept("+-");
    while (accept("0123456789_"));
  }
  if (digits.length === 23 && accept("pP")) {
    accept("+-");
    while (accept("0123456789_"));
  }
  accept("i");
  if (q < n) {
    const cp = src.codePointAt(q) as number;
    if (isAlphaNumeric(cp)) return -(q + codePointWidth(cp)) - 1;
  }
  return q;
}

function lex(src: string): Token[] {
  const tokens: Token[] = [];
  const n = src.length;
  const push = (type: TokenType, start: number, end: number): void => {
    tokens.push({ type, pos: start, val: src.slice(start, end) });
  };
  const fail = (pos: number, message: string): Token[] => {
    tokens.push({ type: T.Error, pos, val: message });
    return tokens;
  };
  let pos = 0;
  text: for (;;) {
    const open = src.indexOf("{{", pos);
    if (open < 0) {
      if (pos < n) push(T.Text, pos, n);
      tokens.push({ type: T.EOF, pos: n, val: "" });
      return tokens;
    }
    const trimLeft = hasLeftTrimMarker(src, open + 2);
    let textEnd = open;
    if (trimLeft) {
      while (textEnd > pos && isSpace(src.charCodeAt(textEnd - 1))) textEnd--;
    }
    if (textEnd > pos) push(T.Text, pos, textEnd);
    let p = open + (trimLeft ? 4 : 2);
    if (src.startsWith("/*", p)) {
      const close = src.indexOf("*/", p + 2);
      if (close < 0) return fail(open, "unclosed comment");
      p = close + 2;
      const trimRight = atTrimmedRightDelim(src, p);
      if (!trimRight && !src.startsWith("}}", p)) {
        return fail(p, "comment ends before closing delimiter");
      }
      p += trimRight ? 4 : 2;
      if (trimRight) { while (p < n && isSpace(src.charCodeAt(p))) p++; }
      pos = p;
      continue;
    }
    tokens.push({ type: T.LeftDelim, pos: open, val: "{{" });
    const parens: number[] = [];
    for (;;) {
      const trimRight = atTrimmedRightDelim(src, p);
      if (trimRight || src.startsWith("}}", p)) {
        if (parens.length > 0) {
          return fail(parens[parens.length - 1]!, "unclosed left paren");
        }
        if (trimRight) p += 2;
        tokens.push({ type: T.RightDelim, pos: p, val: "}}" });
        p += 2;
        if (trimRight) { while (p < n && isSpace(src.charCodeAt(p))) p++; }
        pos = p;
        continue text;
      }
      if (p >= n) return fail(open, "unclosed action");
      const c = src.charCodeAt(p);
      if (isSpace(c)) {
        let q = p + 1;
        while (q < n && isSpace(src.charCodeAt(q))) q++;
        // The last space belongs to a following trim-marked delimiter.
        if (src.charCodeAt(q) === DASH && src.startsWith("}}", q + 1)) q--;
        if (q > p) push(T.Space, p, q);
        p = q;
        continue;
      }
      switch (c) {
        case 0x3d: // =
          push(T.Assign, p, p + 1);
          p++;
          continue;
        case 0x3a: // :
          if (src.charCodeAt(p + 1) !== 0x3d) return fail(p, "expected :=");
          push(T.Declare, p, p + 2);
          p += 2;
          continue;
        case 0x7c: // |
          push(T.Pipe, p, p + 1);
          p++;
          continue;
        case 0x28: // (
          parens.push(p);
          push(T.LeftParen, p, p + 1);
          p++;
          continue;
        case 0x29: // )
          if (parens.pop() === undefined) {
            return fail(p, "unexpected right paren");
          }
          push(T.RightParen, p, p + 1);
          p++;
          continue;
        case 0x22: // "
        case 0x27: { // '
          let q = p + 1;
          for (;;) {
            const d = q < n ? src.charCodeAt(q) : 0x0a;
            // An escape may quote anything but a newline.
            const escaped = d === 0x5c && q + 1 < n &&
              src.charCodeAt(q + 1) !== 0x0a;
            if (d === 0x0a || (d === 0x5c && !escaped)) {
              return fail(
                p,
                c === 0x22
                  ? "unterminated quoted string"
                  : "unterminated character constant",
              );
            }
            q += escaped ? 2 : 1;
            if (d === c) break;
          }
          push(c === 0x22 ? T.String : T.CharConstant, p, q);
          p = q;
          continue;
        }
        case 0x60: { // `
          const close = src.indexOf("`", p + 1);
          if (close < 0) return fail(p, "unterminated raw quoted string");
          push(T.RawString, p, close + 1);
          p = close + 1;
          continue;
        }
        case 0x24: // $
        case 0x2e: { // .
          if (c === 0x2e && (p + 1 >= n || isDigit(src.charCodeAt(p + 1)))) {
            break; // A number such as .5.
          }
          let q = p + 1;
          if (atTerminator(src, q)) {
            push(c === 0x24 ? T.Variable : T.Dot, p, q);
            p = q;
            continue;
          }
          while (q < n) {
            const cp = src.codePointAt(q) as number;
            if (!isAlphaNumeric(cp)) break;
            q += codePointWidth(cp);
          }
          if (!atTerminator(src, q)) {
            return fail(
              q,
              `bad character ${formatRune(src.codePointAt(q) as number)}`,
            );
          }
          push(c === 0x24 ? T.Variable : T.Field, p, q);
          p = q;
          continue;
        }
      }
      if (c === 0x2b || c === DASH || c === 0x2e || isDigit(c)) {
        let q = scanNumber(src, p);
        let type: TokenType = T.Number;
        if (q >= 0) {
          const sign = src.charCodeAt(q);
          if (sign === 0x2b || sign === DASH) {
            q = scanNumber(src, q);
            if (q >= 0 && src.charCodeAt(q - 1) !== 0x69) q = -q - 1;
            type = T.Complex;
          }
        }
        if (q < 0) {
          return fail(p, `bad number syntax: ${quote(src.slice(p, -q - 1))}`);
        }
        push(type, p, q);
        p = q;
        continue;
      }
      const cp = src.codePointAt(p) as number;
      if (isAlphaNumeric(cp)) {
        let q = p;
        while (q < n) {
          const d = src.codePointAt(q) as number;
          if (!isAlphaNumeric(d)) break;
          q += codePointWidth(d);
        }
        if (!atTerminator(src, q)) {
          return fail(
            q,
            `bad character ${formatRune(src.codePointAt(q) as number)}`,
          );
        }
        const word = src.slice(p, q);
        const keyword = KEYWORDS.get(word);
        if (keyword !== undefined) push(keyword, p, q);
        else if (word === "true" || word === "false") push(T.Bool, p, q);
        else push(T.Identifier, p, q);
        p = q;
        continue;
      }
      if (c >= 0x20 && c < 0x7f) {
        push(T.Char, p, p + 1);
        p++;
        continue;
      }
      return fail(p, `unrecognized character in action: ${formatRune(cp)}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Tree

class Tree {
  readonly nodes: readonly Node[];
  /** Offset of each line's first code unit, to turn offsets into line:col. */
  readonly lineStarts: readonly number[];
  constructor(nodes: readonly Node[], lineStarts: readonly number[]) {
    this.nodes = nodes;
    this.lineStarts = lineStarts;
  }
}

type Node =
  | TextNode
  | ActionNode
  | BranchNode
  | RangeNode
  | LoopControlNode;

interface TextNode {
  readonly kind: "text";
  readonly text: string;
}

interface ActionNode {
  readonly kind: "action";
  readonly pipe: Pipe;
  /**
   * For the common `{{ .key }}`, `{{ .key | html }}` and `{{ html .key }}`
   * shapes, the key and escaper, so that execution can skip the general
   * evaluation when the key is present.
   */
  readonly fastKey: string | null;
  readonly fastEscape: Escaper | null;
}

interface BranchNode {
  readonly kind: "if" | "with";
  readonly pipe: Pipe;
  readonly list: readonly Node[];
  readonly elseList: readonly Node[] | null;
}

interface RangeNode {
  readonly kind: "range";
  readonly pipe: Pipe;
  readonly list: readonly Node[];
  readonly elseList: readonly Node[] | null;
}

interface LoopControlNode {
  readonly kind: "break" | "continue";
}

/** `{{end}}` or `{{else}}`, which end a list rather than belong to it. */
interface Marker {
  readonly kind: "end" | "else";
  /** Offset of the action's `{{`. */
  readonly pos: number;
}

function isMarker(node: Node | Marker): node is Marker {
  return node.kind === "end" || node.kind === "else";
}

interface Pipe {
  readonly pos: number;
  readonly decls: readonly Decl[];
  readonly isAssign: boolean;
  readonly cmds: readonly Command[];
}

interface Decl {
  readonly name: string;
  readonly pos: number;
}

interface Command {
  readonly pos: number;
  /** Never empty. */
  readonly args: readonly Arg[];
  /** `args` without the first, i.e. a function's arguments. */
  readonly rest: readonly Arg[];
}

type Arg =
  | FieldArg
  | VariableArg
  | ChainArg
  | IdentifierArg
  | PipeArg
  | DotArg
  | NilArg
  | BoolArg
  | NumberArg
  | StringArg;

interface FieldArg {
  readonly kind: "field";
  readonly pos: number;
  readonly idents: readonly string[];
}

interface VariableArg {
  readonly kind: "variable";
  readonly pos: number;
  readonly name: string;
  readonly fields: readonly string[];
}

/** Fields of a function result or parenthesized pipeline: `(…).a.b`. */
interface ChainArg {
  readonly kind: "chain";
  readonly pos: number;
  readonly node: IdentifierArg | PipeArg;
  readonly fields: readonly string[];
}

interface IdentifierArg {
  readonly kind: "identifier";
  readonly pos: number;
  readonly name: string;
}

interface PipeArg {
  readonly kind: "pipe";
  readonly pos: number;
  readonly pipe: Pipe;
}

interface DotArg {
  readonly kind: "dot";
  readonly pos: number;
}

interface NilArg {
  readonly kind: "nil";
  readonly pos: number;
}

interface BoolArg {
  readonly kind: "bool";
  readonly pos: number;
  readonly value: boolean;
}

interface NumberArg {
  readonly kind: "number";
  readonly pos: number;
  readonly value: number;
  readonly text: string;
}

interface StringArg {
  readonly kind: "string";
  readonly pos: number;
  readonly value: string;
  /** The literal as written, quotes included. */
  readonly text: string;
}

/** Go's `Node.String()`, for messages. */
function argString(arg: Arg): string {
  switch (arg.kind) {
    case "field":
      return "." + arg.idents.join(".");
    case "variable":
      return [arg.name, ...arg.fields].join(".");
    case "chain":
      return argString(arg.node) + "." + arg.fields.join(".");
    case "identifier":
      return arg.name;
    case "pipe":
      return "(" + pipeString(arg.pipe) + ")";
    case "dot":
      return ".";
    case "nil":
      return "nil";
    case "bool":
      return arg.value ? "true" : "false";
    case "number":
    case "string":
      return arg.text;
  }
}

function pipeString(pipe: Pipe): string {
  const decls = pipe.decls.length === 0
    ? ""
    : pipe.decls.map((decl) => decl.name).join(", ") +
      (pipe.isAssign ? " = " : " := ");
  return decls +
    pipe.cmds.map((cmd) => cmd.args.map(argString).join(" ")).join(" | ");
}

/** Go's `item.String()`, for "unexpected …" messages. */
function tokenString(token: Token): string {
  if (token.type === T.EOF) return "EOF";
  if (token.type > T.Keyword) return `<${token.val}>`;
  const chars = [...token.val];
  return chars.length > 10
    ? quote(chars.slice(0, 10).join("")) + "..."
    : quote(token.val);
}

/** Nesting deeper than this is refused, so the JS stack cannot overflow. */
const MAX_DEPTH = 1000;

const DECIMAL_INT = /^[+-]?(?:0|[1-9][0-9]*)$/;

/** Go's `strconv.Unquote` of a string token, or `null` when it is invalid. */
function unquote(token: Token): string | null {
  const inner = token.val.slice(1, -1);
  if (token.type === T.RawString) return inner.replaceAll("\r", "");
  if (!inner.includes("\\")) return inner;
  const bytes: number[] = [];
  for (let i = 0; i < inner.length;) {
    const c = inner.charCodeAt(i);
    if (c !== 0x5c) {
      const cp = inner.codePointAt(i) as number;
      pushUtf8(bytes, cp);
      i += codePointWidth(cp);
      continue;
    }
    const e = inner[i + 1];
    i += 2;
    const simple = SIMPLE_ESCAPES.get(e as string);
    if (simple !== undefined) {
      bytes.push(simple);
      continue;
    }
    if (e === "x" || e === "u" || e === "U") {
      const digits = inner.slice(i, i + (e === "x" ? 2 : e === "u" ? 4 : 8));
      if (!/^[0-9a-fA-F]+$/.test(digits)) return null;
      if (digits.length !== (e === "x" ? 2 : e === "u" ? 4 : 8)) return null;
      i += digits.length;
      const value = parseInt(digits, 16);
      if (e === "x") {
        bytes.push(value);
      } else {
        if (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
          return null;
        }
        pushUtf8(bytes, value);
      }
      continue;
    }
    if (e !== undefined && e >= "0" && e <= "7") {
      const digits = inner.slice(i - 1, i + 2);
      if (!/^[0-7]{3}$/.test(digits)) return null;
      const value = parseInt(digits, 8);
      if (value > 255) return null;
      bytes.push(value);
      i += 2;
      continue;
    }
    return null;
  }
  try {
    return UTF8.decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

const SIMPLE_ESCAPES: ReadonlyMap<string, number> = new Map([
  ["a", 0x07],
  ["b", 0x08],
  ["f", 0x0c],
  ["n", 0x0a],
  ["r", 0x0d],
  ["t", 0x09],
  ["v", 0x0b],
  ["\\", 0x5c],
  ['"', 0x22],
]);

function pushUtf8(bytes: number[], cp: number): void {
  if (cp < 0x80) {
    bytes.push(cp);
  } else if (cp < 0x800) {
    bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    bytes.push(
      0xe0 | (cp >> 12),
      0x80 | ((cp >> 6) & 0x3f),
      0x80 | (cp & 0x3f),
    );
  } else {
    bytes.push(
      0xf0 | (cp >> 18),
      0x80 | ((cp >> 12) & 0x3f),
      0x80 | ((cp >> 6) & 0x3f),
      0x80 | (cp & 0x3f),
    );
  }
}

/** Recognises the action shapes that {@linkcode ActionNode.fastKey} covers. */
function fastPath(pipe: Pipe): [string, Escaper | null] | null {
  if (pipe.decls.length > 0) return null;
  const [first, ...rest] = pipe.cmds;
  if (first === undefined) return null;
  const escapers: Escaper[] = [];
  const [head, field = head, ...more] = first.args;
  if (more.length > 0) return null;
  if (field !== head) {
    const escaper = head?.kind === "identifier"
      ? ESCAPERS.get(head.name)
      : undefined;
    if (escaper === undefined) return null;
    escapers.push(escaper);
  }
  if (field?.kind !== "field" || field.idents.length !== 1) return null;
  for (const cmd of rest) {
    const [fn, ...args] = cmd.args;
    if (fn?.kind !== "identifier" || args.length > 0) return null;
    const escaper = ESCAPERS.get(fn.name);
    if (escaper === undefined) return null;
    escapers.push(escaper);
  }
  const key = field.idents[0] as string;
  const [a, b, ...others] = escapers;
  if (a === undefined) return [key, null];
  if (b === undefined) return [key, a];
  if (others.length === 0) return [key, (s) => b(a(s))];
  return [key, (s) => escapers.reduce((value, escape) => escape(value), s)];
}

/** Go's parse/parse.go over the token list. */
class Parser {
  readonly #tokens: readonly Token[];
  readonly #last: Token;
  readonly #lineStarts: readonly number[];
  #i = 0;
  /** Variables in scope, as Go's `Tree.vars`. */
  readonly #vars: string[] = ["$"];
  #rangeDepth = 0;
  #depth = 0;

  constructor(tokens: readonly Token[], lineStarts: readonly number[]) {
    this.#tokens = tokens;
    this.#last = tokens[tokens.length - 1] as Token;
    this.#lineStarts = lineStarts;
  }

  parse(): Node[] {
    const root: Node[] = [];
    while (this.#peek().type !== T.EOF) {
      const node = this.#textOrAction();
      if (isMarker(node)) {
        return this.#fail(node.pos, `unexpected {{${node.kind}}}`);
      }
      root.push(node);
    }
    return root;
  }

  #next(): Token {
    return this.#tokens[this.#i++] ?? this.#last;
  }

  #backup(): void {
    this.#i--;
  }

  #peek(): Token {
    return this.#tokens[this.#i] ?? this.#last;
  }

  #nextNonSpace(): Token {
    let token: Token;
    do token = this.#next(); while (token.type === T.Space);
    return token;
  }

  #peekNonSpace(): Token {
    const token = this.#nextNonSpace();
    this.#backup();
    return token;
  }

  #fail(pos: number, message: string): never {
    throw errorAt(this.#lineStarts, pos, message);
  }

  #unexpected(token: Token, context: string): never {
    if (token.type === T.Error) this.#fail(token.pos, token.val);
    this.#fail(token.pos, `unexpected ${tokenString(token)} in ${context}`);
  }

  #enter(pos: number, what: string): void {
    if (++this.#depth > MAX_DEPTH) {
      this.#fail(pos, `max ${what} depth exceeded`);
    }
  }

  /** Parses nodes up to `{{end}}` or `{{else}}`, which is returned apart. */
  #itemList(open: number, context: string): [Node[], Marker] {
    const list: Node[] = [];
    while (this.#peekNonSpace().type !== T.EOF) {
      const node = this.#textOrAction();
      if (isMarker(node)) return [list, node];
      list.push(node);
    }
    return this.#fail(
      open,
      `unexpected EOF: {{${context}}} has no matching {{end}}`,
    );
  }

  #textOrAction(): Node | Marker {
    const token = this.#nextNonSpace();
    switch (token.type) {
      case T.Text:
        return { kind: "text", text: token.val };
      case T.LeftDelim:
        return this.#action(token.pos);
    }
    return this.#unexpected(token, "input");
  }

  #action(open: number): Node | Marker {
    const token = this.#nextNonSpace();
    switch (token.type) {
      case T.Block:
      case T.Define:
      case T.Template:
        return this.#fail(token.pos, `{{${token.val}}} is not supported`);
      case T.Break:
      case T.Continue: {
        const kind = token.type === T.Break ? "break" : "continue";
        const next = this.#nextNonSpace();
        if (next.type !== T.RightDelim) this.#unexpected(next, `{{${kind}}}`);
        if (this.#rangeDepth === 0) {
          this.#fail(open, `{{${kind}}} outside {{range}}`);
        }
        return { kind };
      }
      case T.Else: {
        const next = this.#peekNonSpace();
        // "{{else if …" and "{{else with …" leave the keyword for the
        // enclosing control, which treats it as a nested control.
        if (next.type !== T.If && next.type !== T.With) {
          const end = this.#nextNonSpace();
          if (end.type !== T.RightDelim) this.#unexpected(end, "else");
        }
        return { kind: "else", pos: open };
      }
      case T.End: {
        const end = this.#nextNonSpace();
        if (end.type !== T.RightDelim) this.#unexpected(end, "end");
        return { kind: "end", pos: open };
      }
      case T.If:
        return this.#control("if", open, open);
      case T.Range:
        return this.#control("range", open, open);
      case T.With:
        return this.#control("with", open, open);
    }
    this.#backup();
    const pipe = this.#pipeline("command", T.RightDelim, open);
    const fast = fastPath(pipe);
    return {
      kind: "action",
      pipe,
      fastKey: fast?.[0] ?? null,
      fastEscape: fast?.[1] ?? null,
    };
  }

  /**
   * Parses the rest of an `if`, `with` or `range`. `open` is where this
   * control's action starts; `first` is where the whole `else if` chain
   * starts, which is where a missing `{{end}}` is reported.
   */
  #control(
    context: "if" | "with" | "range",
    open: number,
    first: number,
  ): BranchNode | RangeNode {
    this.#enter(open, "control nesting");
    const mark = this.#vars.length;
    const pipe = this.#pipeline(context, T.RightDelim, open);
    if (context === "range") this.#rangeDepth++;
    const [list, next] = this.#itemList(first, context);
    if (context === "range") this.#rangeDepth--;
    let elseList: Node[] | null = null;
    if (next.kind === "else") {
      const keyword = this.#peek().type;
      if (
        (context === "if" && keyword === T.If) ||
        (context === "with" && keyword === T.With)
      ) {
        this.#next();
        elseList = [this.#control(context, next.pos, first)];
      } else {
        const [rest, end] = this.#itemList(first, context);
        if (end.kind !== "end") {
          this.#fail(end.pos, "expected end; found {{else}}");
        }
        elseList = rest;
      }
    }
    this.#vars.length = mark;
    this.#depth--;
    return context === "range"
      ? { kind: "range", pipe, list, elseList }
      : { kind: context, pipe, list, elseList };
  }

  #pipeline(context: string, end: TokenType, open: number): Pipe {
    const pos = this.#peekNonSpace().pos;
    const decls: Decl[] = [];
    let isAssign = false;
    for (;;) {
      const v = this.#peekNonSpace();
      if (v.type !== T.Variable) break;
      const save = this.#i;
      this.#next();
      const next = this.#peekNonSpace();
      if (next.type === T.Assign || next.type === T.Declare) {
        isAssign = next.type === T.Assign;
        this.#nextNonSpace();
        decls.push({ name: v.val, pos: v.pos });
        this.#vars.push(v.val);
      } else if (next.type === T.Char && next.val === ",") {
        this.#nextNonSpace();
        decls.push({ name: v.val, pos: v.pos });
        this.#vars.push(v.val);
        if (context === "range" && decls.length < 2) {
          const after = this.#peekNonSpace();
          if (
            after.type === T.Variable || after.type === T.RightDelim ||
            after.type === T.RightParen
          ) {
            continue;
          }
          this.#fail(after.pos, "range can only initialize variables");
        }
        this.#fail(next.pos, `too many declarations in ${context}`);
      } else {
        // Not a declaration: the variable starts the first command.
        this.#i = save;
      }
      break;
    }
    const cmds: Command[] = [];
    for (;;) {
      const token = this.#nextNonSpace();
      if (token.type === end) break;
      switch (token.type) {
        case T.Bool:
        case T.CharConstant:
        case T.Complex:
        case T.Dot:
        case T.Field:
        case T.Identifier:
        case T.Number:
        case T.Nil:
        case T.RawString:
        case T.String:
        case T.Variable:
        case T.LeftParen:
          this.#backup();
          cmds.push(this.#command());
          continue;
      }
      this.#unexpected(token, context);
    }
    if (cmds.length === 0) this.#fail(open, `missing value for ${context}`);
    for (let i = 1; i < cmds.length; i++) {
      const cmd = cmds[i] as Command;
      switch (cmd.args[0]?.kind) {
        case "bool":
        case "dot":
        case "nil":
        case "number":
        case "string":
          this.#fail(
            cmd.pos,
            `non executable command in pipeline stage ${i + 1}`,
          );
      }
    }
    return { pos, decls, isAssign, cmds };
  }

  #command(): Command {
    const pos = this.#peekNonSpace().pos;
    const args: Arg[] = [];
    for (;;) {
      this.#peekNonSpace();
      const operand = this.#operand();
      if (operand !== null) args.push(operand);
      const token = this.#next();
      if (token.type === T.Space) continue;
      if (token.type === T.RightDelim || token.type === T.RightParen) {
        this.#backup();
      } else if (token.type !== T.Pipe) {
        this.#unexpected(token, "operand");
      }
      break;
    }
    if (args.length === 0) this.#fail(pos, "empty command");
    return { pos, args, rest: args.slice(1) };
  }

  #operand(): Arg | null {
    const node = this.#term();
    if (node === null || this.#peek().type !== T.Field) return node;
    const pos = this.#peek().pos;
    const fields: string[] = [];
    while (this.#peek().type === T.Field) {
      fields.push(this.#next().val.slice(1));
    }
    switch (node.kind) {
      case "field":
        return { ...node, idents: [...node.idents, ...fields] };
      case "variable":
        return { ...node, fields: [...node.fields, ...fields] };
      case "identifier":
      case "pipe":
        return { kind: "chain", pos: node.pos, node, fields };
    }
    return this.#fail(
      pos,
      `unexpected . after term ${quote(argString(node))}`,
    );
  }

  #term(): Arg | null {
    const token = this.#nextNonSpace();
    const pos = token.pos;
    switch (token.type) {
      case T.Identifier:
        if (!FUNCTIONS.has(token.val)) {
          this.#fail(pos, `function ${quote(token.val)} not defined`);
        }
        return { kind: "identifier", pos, name: token.val };
      case T.Dot:
        return { kind: "dot", pos };
      case T.Nil:
        return { kind: "nil", pos };
      case T.Variable:
        if (!this.#vars.includes(token.val)) {
          this.#fail(pos, `undefined variable ${quote(token.val)}`);
        }
        return { kind: "variable", pos, name: token.val, fields: [] };
      case T.Field:
        return { kind: "field", pos, idents: [token.val.slice(1)] };
      case T.Bool:
        return { kind: "bool", pos, value: token.val === "true" };
      case T.CharConstant:
      case T.Complex:
      case T.Number: {
        if (token.type === T.Number && DECIMAL_INT.test(token.val)) {
          const value = Number(token.val);
          if (Number.isSafeInteger(value)) {
            return { kind: "number", pos, value: value || 0, text: token.val };
          }
        }
        return this.#fail(
          pos,
          `unsupported number ${token.val}: only decimal integers up to 2^53 are supported`,
        );
      }
      case T.LeftParen: {
        this.#enter(pos, "expression");
        const pipe = this.#pipeline(
          "parenthesized pipeline",
          T.RightParen,
          pos,
        );
        this.#depth--;
        return { kind: "pipe", pos, pipe };
      }
      case T.String:
      case T.RawString: {
        const value = unquote(token);
        if (value === null) {
          this.#fail(pos, `invalid syntax in string literal ${token.val}`);
        }
        return { kind: "string", pos, value, text: token.val };
      }
    }
    this.#backup();
    return null;
  }
}

// ---------------------------------------------------------------------------
// Execution: Go's exec.go and funcs.go over the value kinds a
// map[string]string template can produce.

const MODES: ReadonlyMap<string, number> = new Map([
  ["default", 0],
  ["zero", 1],
  ["error", 2],
]);
const MODE_DEFAULT = 0;
const MODE_ZERO = 1;

/** What walking a list did: ran to its end, or met `break` or `continue`. */
const DONE = 0;
const BREAK = 1;
const CONTINUE = 2;

const NO_ARGS: readonly Arg[] = [];

/** Go's `kind` of a value for `eq`. */
function basicKind(value: Value): string {
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return "int";
  if (value instanceof ByteValue) return "uint";
  return "invalid";
}

function numberOf(value: Value): number {
  return value instanceof ByteValue ? value.value : value as number;
}

class Executor {
  readonly #lineStarts: readonly number[];
  readonly #mode: number;
  #out = "";
  /** Go's variable stack, as two parallel arrays and a length. */
  readonly #names: string[] = [];
  readonly #values: Value[] = [];
  #count = 0;

  constructor(lineStarts: readonly number[], mode: number) {
    this.#lineStarts = lineStarts;
    this.#mode = mode;
  }

  run(nodes: readonly Node[], data: ReadonlyMap<string, string>): string {
    this.#push("$", data);
    this.#walkList(data, nodes);
    return this.#out;
  }

  #fail(pos: number, message: string): never {
    throw errorAt(this.#lineStarts, pos, message);
  }

  #push(name: string, value: Value): void {
    this.#names[this.#count] = name;
    this.#values[this.#count] = value;
    this.#count++;
  }

  #varValue(node: VariableArg): Value {
    for (let i = this.#count - 1; i >= 0; i--) {
      if (this.#names[i] === node.name) return this.#values[i] as Value;
    }
    return this.#fail(node.pos, `undefined variable: ${node.name}`);
  }

  #setVar(decl: Decl, value: Value): void {
    for (let i = this.#count - 1; i >= 0; i--) {
      if (this.#names[i] === decl.name) {
        this.#values[i] = value;
        return;
      }
    }
    this.#fail(decl.pos, `undefined variable: ${decl.name}`);
  }

  #walkList(dot: Value, list: readonly Node[]): number {
    for (const node of list) {
      switch (node.kind) {
        case "text":
          this.#out += node.text;
          continue;
        case "action": {
          if (node.fastKey !== null && isMap(dot)) {
            const value = dot.get(node.fastKey);
            if (value !== undefined) {
              this.#out += node.fastEscape === null
                ? value
                : node.fastEscape(value);
              continue;
            }
          }
          const value = this.#evalPipeline(dot, node.pipe);
          if (node.pipe.decls.length === 0) this.#out += formatValue(value);
          continue;
        }
        case "if":
        case "with": {
          const mark = this.#count;
          const value = this.#evalPipeline(dot, node.pipe);
          let status = DONE;
          if (isTrue(value)) {
            status = this.#walkList(
              node.kind === "with" ? value : dot,
              node.list,
            );
          } else if (node.elseList !== null) {
            status = this.#walkList(dot, node.elseList);
          }
          this.#count = mark;
          if (status !== DONE) return status;
          continue;
        }
        case "range": {
          const status = this.#walkRange(dot, node);
          if (status !== DONE) return status;
          continue;
        }
        case "break":
          return BREAK;
        case "continue":
          return CONTINUE;
      }
    }
    return DONE;
  }

  #walkRange(dot: Value, node: RangeNode): number {
    const mark = this.#count;
    const value = this.#evalPipeline(dot, node.pipe);
    const inner = this.#count;
    let ran = false;
    if (isMap(value)) {
      for (const [key, item] of value) {
        ran = true;
        this.#setRangeVars(node.pipe, key, item);
        const status = this.#walkList(item, node.list);
        this.#count = inner;
        if (status === BREAK) break;
      }
    } else if (typeof value === "number" || value instanceof ByteValue) {
      if (node.pipe.decls.length > 1) {
        this.#fail(
          (node.pipe.cmds[0] as Command).pos,
          `can't use ${
            formatValue(value)
          } to iterate over more than one variable`,
        );
      }
      const count = numberOf(value);
      for (let i = 0; i < count; i++) {
        ran = true;
        const item = typeof value === "number" ? i : new ByteValue(i);
        this.#setRangeVars(node.pipe, null, item);
        const status = this.#walkList(item, node.list);
        this.#count = inner;
        if (status === BREAK) break;
      }
    } else if (value !== null) {
      this.#fail(
        (node.pipe.cmds[0] as Command).pos,
        `range can't iterate over ${formatValue(value)}`,
      );
    }
    let status = DONE;
    if (!ran && node.elseList !== null) {
      status = this.#walkList(dot, node.elseList);
    }
    this.#count = mark;
    return status;
  }

  /** Go's `oneIteration` variable updates. */
  #setRangeVars(pipe: Pipe, index: Value, item: Value): void {
    const decls = pipe.decls;
    if (decls.length === 0) return;
    if (pipe.isAssign) {
      if (decls.length > 1) {
        this.#setVar(decls[0] as Decl, index);
        this.#setVar(decls[1] as Decl, item);
      } else {
        this.#setVar(decls[0] as Decl, item);
      }
      return;
    }
    this.#values[this.#count - 1] = item;
    if (decls.length > 1) this.#values[this.#count - 2] = index;
  }

  #evalPipeline(dot: Value, pipe: Pipe): Value {
    let value: Value | undefined;
    for (const cmd of pipe.cmds) value = this.#evalCommand(dot, cmd, value);
    const result = value as Value;
    for (const decl of pipe.decls) {
      if (pipe.isAssign) this.#setVar(decl, result);
      else this.#push(decl.name, result);
    }
    return result;
  }

  /** `final` is the previous command's result, or `undefined` if none. */
  #evalCommand(dot: Value, cmd: Command, final: Value | undefined): Value {
    const first = cmd.args[0] as Arg;
    switch (first.kind) {
      case "field":
        return this.#evalFieldChain(
          dot,
          first,
          first.idents,
          cmd.args,
          final,
        );
      case "chain":
        return this.#evalChain(dot, first, cmd.args, final);
      case "identifier":
        return this.#evalFunction(dot, first, cmd.rest, final);
      case "pipe":
        this.#notAFunction(first, cmd.args, final);
        return this.#evalPipeline(dot, first.pipe);
      case "variable":
        return this.#evalVariable(first, cmd.args, final);
    }
    this.#notAFunction(first, cmd.args, final);
    switch (first.kind) {
      case "dot":
        return dot;
      case "nil":
        return this.#fail(first.pos, "nil is not a command");
      case "bool":
      case "number":
      case "string":
        return first.value;
    }
  }

  #notAFunction(
    first: Arg,
    args: readonly Arg[],
    final: Value | undefined,
  ): void {
    if (args.length > 1 || final !== undefined) {
      this.#fail(
        first.pos,
        `can't give argument to non-function ${argString(first)}`,
      );
    }
  }

  #evalFieldChain(
    receiver: Value,
    node: Arg,
    idents: readonly string[],
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const last = idents.length - 1;
    for (let i = 0; i < last; i++) {
      receiver = this.#evalField(
        idents[i] as string,
        node,
        NO_ARGS,
        undefined,
        receiver,
      );
    }
    return this.#evalField(idents[last] as string, node, args, final, receiver);
  }

  #evalField(
    name: string,
    node: Arg,
    args: readonly Arg[],
    final: Value | undefined,
    receiver: Value,
  ): Value {
    if (receiver === null) {
      if (this.#mode === MODE_DEFAULT || this.#mode === MODE_ZERO) return null;
      return this.#fail(node.pos, `nil data; no entry for key ${quote(name)}`);
    }
    if (isMap(receiver)) {
      if (args.length > 1 || final !== undefined) {
        this.#fail(node.pos, `${name} is not a method but has arguments`);
      }
      const value = receiver.get(name);
      if (value !== undefined) return value;
      if (this.#mode === MODE_DEFAULT) return null;
      if (this.#mode === MODE_ZERO) return "";
      return this.#fail(node.pos, `map has no entry for key ${quote(name)}`);
    }
    return this.#fail(
      node.pos,
      `can't evaluate field ${name} in type ${typeName(receiver)}`,
    );
  }

  #evalChain(
    dot: Value,
    chain: ChainArg,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const receiver = chain.node.kind === "pipe"
      ? this.#evalPipeline(dot, chain.node.pipe)
      : this.#evalFunction(dot, chain.node, NO_ARGS, undefined);
    return this.#evalFieldChain(receiver, chain, chain.fields, args, final);
  }

  #evalVariable(
    node: VariableArg,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const value = this.#varValue(node);
    if (node.fields.length === 0) {
      this.#notAFunction(node, args, final);
      return value;
    }
    return this.#evalFieldChain(value, node, node.fields, args, final);
  }

  /**
   * Go's `evalArg` for a parameter of type `any` or `reflect.Value`, which
   * accept every value as it is.
   */
  #evalArg(dot: Value, arg: Arg): Value {
    switch (arg.kind) {
      case "dot":
        return dot;
      case "nil":
        return null;
      case "field":
        return this.#evalFieldChain(dot, arg, arg.idents, NO_ARGS, undefined);
      case "variable":
        return this.#evalVariable(arg, NO_ARGS, undefined);
      case "pipe":
        return this.#evalPipeline(dot, arg.pipe);
      case "identifier":
        return this.#evalFunction(dot, arg, NO_ARGS, undefined);
      case "chain":
        return this.#evalChain(dot, arg, NO_ARGS, undefined);
      case "bool":
      case "number":
      case "string":
        return arg.value;
    }
  }

  /** Go's `evalArg` for a `string` parameter. */
  #evalStringArg(dot: Value, arg: Arg): string {
    switch (arg.kind) {
      case "nil":
        return this.#fail(arg.pos, "cannot assign nil to string");
      case "bool":
      case "number":
        return this.#fail(arg.pos, `expected string; found ${argString(arg)}`);
      case "string":
        return arg.value;
    }
    return this.#validateString(this.#evalArg(dot, arg), arg.pos);
  }

  /** Go's `validateType` for a `string` parameter. */
  #validateString(value: Value, pos: number): string {
    if (typeof value === "string") return value;
    if (value === null) {
      return this.#fail(pos, "invalid value; expected string");
    }
    return this.#fail(
      pos,
      `wrong type for value; expected string; got ${typeName(value)}`,
    );
  }

  /**
   * Calls a function with its argument nodes and, when it is not the first
   * command of a pipeline, the previous command's result as the last
   * argument. Arity is checked before any argument is evaluated, as in Go.
   */
  #evalFunction(
    dot: Value,
    fn: IdentifierArg,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value {
    const name = fn.name;
    const count = args.length + (final === undefined ? 0 : 1);
    switch (name) {
      case "json":
        this.#checkArity(fn, count, 1);
        return jsonQuote(
          args.length === 1
            ? this.#evalStringArg(dot, args[0] as Arg)
            : this.#validateString(final as Value, fn.pos),
        );
      case "html":
      case "js":
      case "urlquery": {
        this.#checkArity(fn, count, 1);
        const escape = ESCAPERS.get(name) as Escaper;
        return escape(formatValue(this.#onlyArg(dot, args, final)));
      }
      case "not":
        this.#checkArity(fn, count, 1);
        return !isTrue(this.#onlyArg(dot, args, final));
      case "len": {
        this.#checkArity(fn, count, 1);
        const value = this.#onlyArg(dot, args, final);
        if (typeof value === "string") return utf8Length(value);
        if (isMap(value)) return value.size;
        // Go's length() asks an invalid reflect.Value for its type, which
        // panics; the panic becomes this error.
        return this.#callError(
          fn,
          value === null
            ? "reflect: call of reflect.Value.Type on zero Value"
            : `len of type ${typeName(value)}`,
        );
      }
      case "and":
      case "or": {
        this.#checkVariadicArity(fn, count, args.length);
        // Short-circuits: returns the first argument that decides, else the
        // last one.
        const stopOn = name === "or";
        let value: Value = null;
        for (const arg of args) {
          value = this.#evalArg(dot, arg);
          if (isTrue(value) === stopOn) return value;
        }
        return final === undefined ? value : final;
      }
      case "eq": {
        this.#checkVariadicArity(fn, count, args.length);
        const [first, ...others] = this.#allArgs(dot, args, final);
        const result = equals(first as Value, others);
        return typeof result === "string"
          ? this.#callError(fn, result)
          : result;
      }
      case "ne": {
        this.#checkArity(fn, count, 2);
        const [first, second] = this.#allArgs(dot, args, final);
        const result = equals(first as Value, [second as Value]);
        return typeof result === "string"
          ? this.#callError(fn, result)
          : !result;
      }
      case "index": {
        this.#checkVariadicArity(fn, count, args.length);
        const [item, ...indexes] = this.#allArgs(dot, args, final);
        const result = index(item as Value, indexes);
        return result instanceof IndexError
          ? this.#callError(fn, result.message)
          : result;
      }
    }
    // The parser lets only the functions above through.
    return this.#fail(fn.pos, `${quote(name)} is not a defined function`);
  }

  #checkArity(fn: IdentifierArg, count: number, want: number): void {
    if (count !== want) {
      this.#fail(
        fn.pos,
        `wrong number of args for ${fn.name}: want ${want} got ${count}`,
      );
    }
  }

  /** Go reports the count without the piped value here. */
  #checkVariadicArity(fn: IdentifierArg, count: number, given: number): void {
    if (count < 1) {
      this.#fail(
        fn.pos,
        `wrong number of args for ${fn.name}: want at least 1 got ${given}`,
      );
    }
  }

  #onlyArg(dot: Value, args: readonly Arg[], final: Value | undefined): Value {
    return args.length === 1
      ? this.#evalArg(dot, args[0] as Arg)
      : final as Value;
  }

  #allArgs(
    dot: Value,
    args: readonly Arg[],
    final: Value | undefined,
  ): Value[] {
    const values: Value[] = [];
    for (const arg of args) values.push(this.#evalArg(dot, arg));
    if (final !== undefined) values.push(final);
    return values;
  }

  #callError(fn: IdentifierArg, message: string): never {
    return this.#fail(fn.pos, `error calling ${fn.name}: ${message}`);
  }
}

/** Go's `eq`; a string result is the error message. */
function equals(first: Value, others: readonly Value[]): boolean | string {
  if (others.length === 0) return "missing argument for comparison";
  const k1 = basicKind(first);
  for (const other of others) {
    const k2 = basicKind(other);
    let truth = false;
    if (k1 !== k2) {
      if (
        (k1 === "int" && k2 === "uint") || (k1 === "uint" && k2 === "int")
      ) {
        truth = numberOf(first) === numberOf(other);
      } else if (first !== null && other !== null) {
        return "incompatible types for comparison";
      }
    } else if (k1 !== "invalid") {
      truth = k1 === "int" || k1 === "uint"
        ? numberOf(first) === numberOf(other)
        : first === other;
    } else if (first === null || other === null) {
      truth = first === other;
    } else {
      return `non-comparable type ${formatValue(other)}: map[string]string`;
    }
    if (truth) return true;
  }
  return false;
}

class IndexError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

const UTF8_ENCODER = new TextEncoder();

/** Go's `index`. */
function index(item: Value, indexes: readonly Value[]): Value | IndexError {
  if (item === null) return new IndexError("index of untyped nil");
  for (const key of indexes) {
    if (isMap(item)) {
      if (key === null) {
        return new IndexError("value is nil; should be of type string");
      }
      if (typeof key !== "string") {
        return new IndexError(
          `value has type ${typeName(key)}; should be string`,
        );
      }
      item = item.get(key) ?? "";
    } else if (typeof item === "string") {
      if (key === null) {
        return new IndexError("cannot index slice/array with nil");
      }
      if (typeof key !== "number" && !(key instanceof ByteValue)) {
        return new IndexError(
          `cannot index slice/array with type ${typeName(key)}`,
        );
      }
      const bytes = UTF8_ENCODER.encode(item);
      const x = numberOf(key);
      if (x < 0 || x > bytes.length) {
        return new IndexError(`index out of range: ${x}`);
      }
      if (x === bytes.length) {
        return new IndexError("reflect: string index out of range");
      }
      item = new ByteValue(bytes[x] as number);
    } else {
      return new IndexError(`can't index item of type ${typeName(item)}`);
    }
  }
  return item;
}
