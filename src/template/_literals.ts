/**
 * Literals as Go's parser reads them: `strconv.Unquote` for strings,
 * `strconv.UnquoteChar` for character constants, and `parse.newNumber` with
 * `strconv.ParseInt`/`ParseUint`/`ParseFloat` (base 0: prefixes and `_`) for
 * numbers, then exec's `idealConstant` choice of `int`, `float64` or
 * `complex128`.
 *
 * @module
 */

import { decodeUtf8, encodeUtf8 } from "../_utf8.ts";
import { GoComplex } from "./_values.ts";

const SIMPLE_ESCAPES: ReadonlyMap<string, number> = new Map([
  ["a", 0x07],
  ["b", 0x08],
  ["f", 0x0c],
  ["n", 0x0a],
  ["r", 0x0d],
  ["t", 0x09],
  ["v", 0x0b],
  ["\\", 0x5c],
]);

const HEX = /^[0-9a-fA-F]+$/;

/**
 * Go's `UnquoteChar` at `i` of `s` for a literal quoted with `quote`:
 * `[value, next, isByte]`, where a `\x` or octal escape is a byte; or
 * `null` when the escape is invalid.
 */
function unquoteChar(
  s: string,
  i: number,
  quote: string,
): [number, number, boolean] | null {
  const c = s.codePointAt(i) as number;
  if (c !== 0x5c) {
    if (String.fromCodePoint(c) === quote) return null;
    return [c, i + (c > 0xffff ? 2 : 1), false];
  }
  const e = s[i + 1];
  if (e === undefined) return null;
  const simple = SIMPLE_ESCAPES.get(e);
  if (simple !== undefined) return [simple, i + 2, false];
  if (e === "'" || e === '"') {
    return e === quote ? [e.charCodeAt(0), i + 2, false] : null;
  }
  if (e === "x" || e === "u" || e === "U") {
    const size = e === "x" ? 2 : e === "u" ? 4 : 8;
    const digits = s.slice(i + 2, i + 2 + size);
    if (digits.length !== size || !HEX.test(digits)) return null;
    const value = parseInt(digits, 16);
    if (e === "x") return [value, i + 2 + size, true];
    if (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return null;
    return [value, i + 2 + size, false];
  }
  if (e >= "0" && e <= "7") {
    const digits = s.slice(i + 1, i + 4);
    if (!/^[0-7]{3}$/.test(digits)) return null;
    const value = parseInt(digits, 8);
    if (value > 255) return null;
    return [value, i + 4, true];
  }
  return null;
}

/**
 * Go's `strconv.Unquote` of a string literal token, or `null` when it is
 * invalid or would not be valid UTF-8 (which a JavaScript string cannot
 * hold).
 */
export function unquote(text: string): string | null {
  const inner = text.slice(1, -1);
  if (text[0] === "`") return inner.replaceAll("\r", "");
  if (!inner.includes("\\")) return inner;
  const bytes: number[] = [];
  for (let i = 0; i < inner.length;) {
    const next = unquoteChar(inner, i, '"');
    if (next === null) return null;
    const [value, end, isByte] = next;
    if (isByte) bytes.push(value);
    else for (const b of encodeUtf8(String.fromCodePoint(value))) bytes.push(b);
    i = end;
  }
  try {
    return decodeUtf8(new Uint8Array(bytes), true);
  } catch {
    return null;
  }
}

/** A number literal's value, or the parse error Go reports. */
export type NumberResult =
  | { value: bigint | number | GoComplex; error: string | null }
  | { syntax: string };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Go's `underscoreOK`: `_` only between digits or after a base prefix. */
function underscoreOK(s: string): boolean {
  let saw = "^";
  let i = 0;
  if (s[0] === "-" || s[0] === "+") s = s.slice(1);
  let hex = false;
  if (s.length >= 2 && s[0] === "0" && /[bBoOxX]/.test(s[1] as string)) {
    i = 2;
    saw = "0";
    hex = s[1] === "x" || s[1] === "X";
  }
  for (; i < s.length; i++) {
    const ch = s[i] as string;
    if ((ch >= "0" && ch <= "9") || (hex && /[a-fA-F]/.test(ch))) {
      saw = "0";
      continue;
    }
    if (ch === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

/** Go's `ParseUint(s, 0, 64)` (no sign), or `null`. */
function parseUint(s: string): bigint | null {
  if (s.length === 0) return null;
  let base = 10;
  let digits = s;
  if (s[0] === "0") {
    const p = (s[1] ?? "").toLowerCase();
    if (s.length >= 3 && (p === "b" || p === "o" || p === "x")) {
      base = p === "b" ? 2 : p === "o" ? 8 : 16;
      digits = s.slice(2);
    } else {
      base = 8;
      digits = s.slice(1);
    }
  }
  let value = 0n;
  let underscores = false;
  const big = BigInt(base);
  for (const ch of digits) {
    if (ch === "_") {
      underscores = true;
      continue;
    }
    const d = parseInt(ch, 36);
    if (!(d < base)) return null;
    value = value * big + BigInt(d);
  }
  if (underscores && !underscoreOK(s)) return null;
  return value <= UINT64_MAX ? value : null;
}

/** Go's `ParseInt(s, 0, 64)`, or `null`. */
function parseInt64(s: string): bigint | null {
  const sign = s[0] === "-" || s[0] === "+" ? s[0] : "";
  const u = parseUint(s.slice(sign.length));
  if (u === null) return null;
  const value = sign === "-" ? -u : u;
  return value >= INT64_MIN && value <= INT64_MAX ? value : null;
}

const DECIMAL_FLOAT = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const HEX_FLOAT =
  /^([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)[pP]([+-]?[0-9]+)$/;

/** Go's `ParseFloat(s, 64)`, or `null` (including out of range). */
export function parseFloat64(s: string): number | null {
  if (s.includes("_")) {
    if (!underscoreOK(s)) return null;
    s = s.replaceAll("_", "");
  }
  let value: number;
  if (DECIMAL_FLOAT.test(s)) {
    value = Number(s);
  } else {
    const m = HEX_FLOAT.exec(s);
    if (m === null || (m[2] === "" && m[3] === "")) return null;
    const [, sign, int, frac, exp] = m as unknown as string[];
    const mantissa = BigInt("0x" + (int! + frac! || "0"));
    value = Number(mantissa) * 2 ** (Number(exp) - 4 * frac!.length);
    if (sign === "-") value = -value;
  }
  return Number.isFinite(value) ? value : null;
}

/** Go's `newNumber` then `idealConstant` for a number token. */
export function parseNumber(text: string): NumberResult {
  if (text.endsWith("i")) {
    const imag = parseFloat64(text.slice(0, -1));
    if (imag !== null) return { value: new GoComplex(0, imag), error: null };
  }
  const u = parseUint(text);
  const i = parseInt64(text);
  if (u === null && i === null) {
    const f = parseFloat64(text);
    if (f === null) {
      return { syntax: `illegal number syntax: ${JSON.stringify(text)}` };
    }
    // A float spelling of a whole number too large for int64.
    if (!/[.eEpP]/.test(text)) {
      return { syntax: `integer overflow: ${JSON.stringify(text)}` };
    }
    return { value: f, error: null };
  }
  const isHexInt = text.length > 2 && /^0[xX]/.test(text) && !/[pP]/.test(text);
  if (!isHexInt && /[.eEpP]/.test(text)) {
    return { value: Number(i ?? u), error: null };
  }
  if (i !== null) return { value: i, error: null };
  return { value: 0n, error: `${text} overflows int` };
}

/** A complex literal such as `1+2i`, as `fmt.Sscan` reads it. */
export function parseComplex(text: string): NumberResult {
  const split = /^(.*[^eEpP+-])([+-].*)i$/.exec(text);
  const real = split === null ? null : parseFloat64(split[1] as string);
  const imag = split === null ? null : parseFloat64(split[2] as string);
  if (real === null || imag === null) {
    return { syntax: `illegal number syntax: ${JSON.stringify(text)}` };
  }
  return { value: new GoComplex(real, imag), error: null };
}

/** A character constant such as `'a'` or `'\n'`: Go's rune, an `int`. */
export function parseChar(text: string): NumberResult {
  const next = unquoteChar(text, 1, "'");
  if (next === null || text.slice(next[1]) !== "'") {
    return { syntax: `malformed character constant: ${text}` };
  }
  return { value: BigInt(next[0]), error: null };
}
