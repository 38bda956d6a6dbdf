/**
 * The rune and string helpers of Go's `strconv` and `unicode/utf8` that the
 * printer needs, on UTF-16 strings: a lone surrogate stands for U+FFFD, the
 * rune Go decodes from the bytes it becomes.
 *
 * @module
 */

const MAX_RUNE = 0x10ffffn;

export const encoder = new TextEncoder();
export const LOWER_HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, b) => b.toString(16).padStart(2, "0"),
);
export const UPPER_HEX: readonly string[] = LOWER_HEX.map((h) =>
  h.toUpperCase()
);

/**
 * The first `n` bytes in hexadecimal, as `%x` prints a string: `#` adds
 * 0x (before each byte when `space` separates them); nothing at all for
 * no bytes.
 */
export function hexBytes(
  bytes: Uint8Array,
  n: number,
  sharp: boolean,
  space: boolean,
  upper: boolean,
): string {
  if (n === 0) return "";
  const digits = upper ? UPPER_HEX : LOWER_HEX;
  const prefix = upper ? "0X" : "0x";
  let out = sharp ? prefix : "";
  for (let i = 0; i < n; i++) {
    if (space && i > 0) out += sharp ? " " + prefix : " ";
    out += digits[bytes[i] as number];
  }
  return out;
}

export function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** The code point at `i`, a lone surrogate read as U+FFFD as Go decodes it. */
export function runeAt(s: string, i: number): number {
  const c = s.codePointAt(i) as number;
  return c >= 0xd800 && c <= 0xdfff ? 0xfffd : c;
}

export function runeString(r: number): string {
  return String.fromCodePoint(r >= 0xd800 && r <= 0xdfff ? 0xfffd : r);
}

/** Code points in `s`, as Go's `utf8.RuneCountInString` of its UTF-8. */
export function runeCount(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && isLow(s.charCodeAt(i + 1))) {
      n--;
      i++;
    }
  }
  return n;
}

/** A `uint64` as a rune for `%c` and `%q`: invalid ones become U+FFFD. */
export function validRune(u: bigint): number {
  if (u > MAX_RUNE) return 0xfffd;
  const r = Number(u);
  return r >= 0xd800 && r <= 0xdfff ? 0xfffd : r;
}

/** Go's map order for string keys: bytewise UTF-8, which is code point order. */
export function compareUtf8(a: string, b: string): number {
  for (let i = 0, j = 0; i < a.length && j < b.length;) {
    const x = runeAt(a, i);
    const y = runeAt(b, j);
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return runeCount(a) - runeCount(b);
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const printCache = new Map<number, boolean>();

/**
 * Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and
 * ' '. The engine's Unicode tables decide (V8 in Deno 2.9: Unicode 16.0);
 * Go's are older (1.21 and later: 15.0, Debian's 1.19: 13.0), so for a rune
 * assigned since, `%q` escapes it in Go and prints it here.
 */
export function isPrint(r: number): boolean {
  if (r <= 0xff) {
    return (r >= 0x20 && r <= 0x7e) || (r >= 0xa1 && r !== 0xad);
  }
  let known = printCache.get(r);
  if (known === undefined) {
    known = !(r >= 0xd800 && r <= 0xdfff) &&
      PRINTABLE.test(String.fromCodePoint(r));
    printCache.set(r, known);
  }
  return known;
}

const ESCAPES: Readonly<Record<number, string>> = {
  7: "\\a",
  8: "\\b",
  12: "\\f",
  10: "\\n",
  13: "\\r",
  9: "\\t",
  11: "\\v",
};

/** Go's `appendEscapedRune` for one valid rune. */
function escapeRune(r: number, q: number, asciiOnly: boolean): string {
  if (r === q || r === 0x5c) return "\\" + String.fromCharCode(r);
  if (asciiOnly ? r < 0x80 && isPrint(r) : isPrint(r)) {
    return String.fromCodePoint(r);
  }
  const named = ESCAPES[r];
  if (named !== undefined) return named;
  if (r < 0x20 || r === 0x7f) return "\\x" + LOWER_HEX[r];
  if (r < 0x10000) return "\\u" + r.toString(16).padStart(4, "0");
  return "\\U" + r.toString(16).padStart(8, "0");
}

/** Go's `strconv.Quote`, or `QuoteToASCII` when `asciiOnly`. */
export function quote(s: string, asciiOnly = false): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const r = runeAt(s, i);
    if (r > 0xffff) i++;
    out += escapeRune(r, 0x22, asciiOnly);
  }
  return out + '"';
}

export function quoteRune(r: number, asciiOnly: boolean): string {
  return "'" + escapeRune(r, 0x27, asciiOnly) + "'";
}

/** Go's `strconv.CanBackquote`. */
export function canBackquote(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      if (c === 0xfeff) return false;
      continue;
    }
    if ((c < 0x20 && c !== 9) || c === 0x60 || c === 0x7f) return false;
  }
  return true;
}
