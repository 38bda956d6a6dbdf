/**
 * Go's escaping functions (`html`, `js`, `urlquery`) and the `json`
 * extension, plus Go's notion of a printable rune.
 *
 * @module
 */

import { encodeUtf8 } from "../_utf8.ts";

// Escapers. Each scans for the first character that needs work and returns
// its input untouched when there is none, since most values are plain.

export type Escaper = (s: string) => string;

const HEX_UPPER = "0123456789ABCDEF";
const HEX_LOWER = "0123456789abcdef";

/** Replacement of each ASCII code unit, or `""` when it is copied as is. */
function asciiTable(special: (c: number) => string): readonly string[] {
  const table: string[] = [];
  for (let c = 0; c < 0x80; c++) table.push(special(c));
  return table;
}

/**
 * The table of a quoted-string syntax: `\` before each of `backslashed`, a
 * short form for each of `short[0]` (the letter at the same place in
 * `short[1]`), and `\u00XX` in `hex` digits for each of `unicode` and every
 * other control character.
 */
function quotedTable(syntax: {
  backslashed: string;
  short?: [string, string];
  unicode: string;
  hex: string;
}): readonly string[] {
  const { backslashed, short = ["", ""], unicode, hex } = syntax;
  return asciiTable((c) => {
    const ch = String.fromCharCode(c);
    if (backslashed.includes(ch)) return "\\" + ch;
    const at = short[0].indexOf(ch);
    if (at >= 0) return "\\" + short[1][at];
    return c < 0x20 || unicode.includes(ch)
      ? "\\u00" + hex[c >> 4] + hex[c & 0xf]
      : "";
  });
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

const UTF16 = new TextDecoder("utf-16le", { ignoreBOM: true });

/**
 * Builds an escaped string in a UTF-16 buffer: far faster than joining
 * millions of small pieces when most characters need escaping.
 */
class Builder {
  #buf: Uint16Array;
  #n = 0;
  #surrogates = false;

  constructor(capacity: number) {
    this.#buf = new Uint16Array(Math.max(16, capacity));
  }

  #room(more: number): Uint16Array {
    if (this.#n + more > this.#buf.length) {
      const bigger = new Uint16Array(
        Math.max(this.#n + more, this.#buf.length * 2),
      );
      bigger.set(this.#buf.subarray(0, this.#n));
      this.#buf = bigger;
    }
    return this.#buf;
  }

  copy(s: string, from: number, to: number): void {
    const buf = this.#room(to - from);
    let n = this.#n;
    let units = 0;
    for (let i = from; i < to; i++) {
      const c = s.charCodeAt(i);
      units |= c;
      buf[n++] = c;
    }
    this.#n = n;
    if (units >= 0xd800) {
      this.#surrogates ||= /[\ud800-\udfff]/.test(s.slice(from, to));
    }
  }

  add(s: string): void {
    this.copy(s, 0, s.length);
  }

  done(): string {
    // The decoder is fast but turns a lone surrogate into U+FFFD.
    if (!this.#surrogates) return UTF16.decode(this.#buf.subarray(0, this.#n));
    const parts: string[] = [];
    for (let i = 0; i < this.#n; i += 8192) {
      parts.push(
        String.fromCharCode(
          ...this.#buf.subarray(i, Math.min(i + 8192, this.#n)),
        ),
      );
    }
    return parts.join("");
  }
}

/** Go's `template.HTMLEscapeString`. */
export function htmlEscape(s: string): string {
  return escapeBy(s, HTML_TABLE) ?? s;
}

/**
 * Escapes `s` through `table` for ASCII and `other` for the rest, which
 * gives a code point's replacement or `""` to keep it (none: keep all).
 *
 * @returns The escaped text, or `undefined` when nothing needed escaping.
 */
function escapeBy(
  s: string,
  table: readonly string[],
  other?: (cp: number) => string,
): string | undefined {
  const n = s.length;
  let out: Builder | undefined;
  let last = 0;
  for (let i = 0; i < n;) {
    const c = s.charCodeAt(i);
    let width = 1;
    let replacement: string;
    if (c < 0x80) {
      replacement = table[c] as string;
    } else if (other === undefined) {
      replacement = "";
    } else {
      const cp = s.codePointAt(i) as number;
      if (cp > 0xffff) width = 2;
      replacement = other(cp);
    }
    if (replacement !== "") {
      out ??= new Builder(n);
      out.copy(s, last, i);
      out.add(replacement);
      last = i + width;
    }
    i += width;
  }
  if (out === undefined) return undefined;
  out.copy(s, last, n);
  return out.done();
}

const JS_TABLE = quotedTable({
  backslashed: `\\'"`,
  unicode: "<>&=",
  hex: HEX_UPPER,
});

/** Go's `template.JSEscapeString`. */
export function jsEscape(s: string): string {
  return escapeBy(s, JS_TABLE, jsOther) ?? s;
}

function jsOther(cp: number): string {
  return isGoPrintable(cp)
    ? ""
    : "\\u" + cp.toString(16).toUpperCase().padStart(4, "0");
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
export function isGoPrintable(cp: number): boolean {
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
export function urlQueryEscape(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || URL_SAFE[c] === 0) break;
    i++;
  }
  if (i === n) return s;
  // A lone surrogate encodes as U+FFFD, which is what Go sees and escapes.
  const bytes = encodeUtf8(s.slice(i));
  const out = new Builder(bytes.length * 3 + i);
  out.copy(s, 0, i);
  for (const b of bytes) {
    out.add(
      b < 0x80 && URL_SAFE[b] === 1
        ? String.fromCharCode(b)
        : b === 0x20
        ? "+"
        : PERCENT[b] as string,
    );
  }
  return out.done();
}

const JSON_TABLE = quotedTable({
  backslashed: `\\"`,
  short: ["\b\t\n\f\r", "btnfr"],
  unicode: "<>&",
  hex: HEX_LOWER,
});

/** The JSON string literal Go's `json.Marshal` writes for a string. */
export function jsonQuote(s: string): string {
  return '"' + (escapeBy(s, JSON_TABLE, jsonOther) ?? s) + '"';
}

// JSON allows U+2028 and U+2029 in strings, JavaScript before ES2019 not.
function jsonOther(cp: number): string {
  return cp === 0x2028 ? "\\u2028" : cp === 0x2029 ? "\\u2029" : "";
}

export const ESCAPERS: ReadonlyMap<string, Escaper> = new Map([
  ["html", htmlEscape],
  ["js", jsEscape],
  ["json", jsonQuote],
  ["urlquery", urlQueryEscape],
]);

/** Approximates Go's `%q` for messages. */
export function quote(s: string): string {
  return JSON.stringify(s);
}

/** Go's `%#U`: `U+0041 'A'`, without the character when it is unprintable. */
export function formatRune(cp: number): string {
  const code = "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
  const printable = cp < 0x80
    ? cp >= 0x20 && cp < 0x7f
    : !(cp >= 0xd800 && cp <= 0xdfff) && isGoPrintable(cp);
  return printable ? `${code} '${String.fromCodePoint(cp)}'` : code;
}
