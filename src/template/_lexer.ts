/**
 * Go's `text/template/parse/lex.go`: turns a template's source into tokens.
 *
 * @module
 */

import { formatRune, quote } from "./_escape.ts";

export const T = {
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
export type TokenType = (typeof T)[keyof typeof T];

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

export interface Token {
  readonly type: TokenType;
  /** UTF-16 offset in the source. */
  readonly pos: number;
  /** The token's text; for an error token, the message. */
  readonly val: string;
}

const DASH = 0x2d;

export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

const LETTER_OR_DIGIT = /^[\p{L}\p{Nd}]$/u;

/** Go's `isAlphaNumeric`: `_`, `unicode.IsLetter` or `unicode.IsDigit`. */
export function isAlphaNumeric(cp: number): boolean {
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

export function codePointWidth(cp: number): number {
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

/**
 * The tokens of a source, stored as three parallel typed arrays so that a
 * large template does not cost an object and a string per token; the
 * parser materialises one {@linkcode Token} at a time.
 */
export class TokenList {
  readonly #src: string;
  #types = new Uint8Array(64);
  #starts = new Int32Array(64);
  #ends = new Int32Array(64);
  #length = 0;
  #error = "";
  #lastAt = -1;
  #last: Token | null = null;

  constructor(src: string) {
    this.#src = src;
  }

  get length(): number {
    return this.#length;
  }

  push(type: TokenType, start: number, end: number): void {
    if (this.#length === this.#types.length) {
      const size = this.#length * 2;
      const types = new Uint8Array(size);
      const starts = new Int32Array(size);
      const ends = new Int32Array(size);
      types.set(this.#types);
      starts.set(this.#starts);
      ends.set(this.#ends);
      this.#types = types;
      this.#starts = starts;
      this.#ends = ends;
    }
    this.#types[this.#length] = type;
    this.#starts[this.#length] = start;
    this.#ends[this.#length] = end;
    this.#length++;
  }

  /** Ends the list with an error token; lexing stops there. */
  fail(pos: number, message: string): TokenList {
    this.#error = message;
    this.push(T.Error, pos, pos);
    return this;
  }

  type(i: number): TokenType {
    return this.#types[i] as TokenType;
  }

  at(i: number): Token {
    // The parser peeks and backs up: the same token is asked for again.
    if (i === this.#lastAt) return this.#last as Token;
    const type = this.#types[i] as TokenType;
    const pos = this.#starts[i] as number;
    const val = type === T.Error
      ? this.#error
      : this.#src.slice(pos, this.#ends[i]);
    this.#lastAt = i;
    this.#last = { type, pos, val };
    return this.#last;
  }
}

/**
 * Lexes a whole source. Lexing never depends on the parser, so the only
 * difference from Go's lazy lexer is timing: a lexical error is a token,
 * reported when the parser reaches it.
 */
export function lex(src: string): TokenList {
  const tokens = new TokenList(src);
  const n = src.length;
  let pos = 0;
  for (;;) {
    const open = src.indexOf("{{", pos);
    if (open < 0) {
      if (pos < n) tokens.push(T.Text, pos, n);
      tokens.push(T.EOF, n, n);
      return tokens;
    }
    const trimLeft = hasLeftTrimMarker(src, open + 2);
    let textEnd = open;
    if (trimLeft) {
      while (textEnd > pos && isSpace(src.charCodeAt(textEnd - 1))) textEnd--;
    }
    if (textEnd > pos) tokens.push(T.Text, pos, textEnd);
    const p = open + (trimLeft ? 4 : 2);
    pos = src.startsWith("/*", p)
      ? lexComment(src, tokens, open, p)
      : lexAction(src, tokens, open, p);
    if (pos < 0) return tokens;
  }
}

/**
 * The tokens of the one action whose `{{` is at `open`: `{{`, its items,
 * `}}` and EOF.
 */
export function lexActionAt(src: string, open: number): TokenList {
  const tokens = new TokenList(src);
  const start = open + (hasLeftTrimMarker(src, open + 2) ? 4 : 2);
  lexAction(src, tokens, open, start);
  tokens.push(T.EOF, src.length, src.length);
  return tokens;
}

/** Skips a comment; the offset after it, or -1 after an error token. */
function lexComment(
  src: string,
  tokens: TokenList,
  open: number,
  start: number,
): number {
  const close = src.indexOf("*/", start + 2);
  if (close < 0) {
    tokens.fail(open, "unclosed comment");
    return -1;
  }
  let p = close + 2;
  const trimRight = atTrimmedRightDelim(src, p);
  if (!trimRight && !src.startsWith("}}", p)) {
    tokens.fail(p, "comment ends before closing delimiter");
    return -1;
  }
  p += trimRight ? 4 : 2;
  return trimRight ? skipSpace(src, p) : p;
}

function skipSpace(src: string, p: number): number {
  while (p < src.length && isSpace(src.charCodeAt(p))) p++;
  return p;
}

/**
 * Lexes from inside `{{` to `}}`; the offset after the action, or -1 after
 * an error token.
 */
function lexAction(
  src: string,
  tokens: TokenList,
  open: number,
  start: number,
): number {
  tokens.push(T.LeftDelim, open, open + 2);
  const n = src.length;
  const parens: number[] = [];
  let p = start;
  for (;;) {
    const trimRight = atTrimmedRightDelim(src, p);
    if (trimRight || src.startsWith("}}", p)) {
      if (parens.length > 0) {
        tokens.fail(parens[parens.length - 1]!, "unclosed left paren");
        return -1;
      }
      if (trimRight) p += 2;
      tokens.push(T.RightDelim, p, p + 2);
      p += 2;
      return trimRight ? skipSpace(src, p) : p;
    }
    if (p >= n) {
      tokens.fail(open, "unclosed action");
      return -1;
    }
    const c = src.charCodeAt(p);
    if (c === 0x28) {
      parens.push(p);
    } else if (c === 0x29 && parens.pop() === undefined) {
      tokens.fail(p, "unexpected right paren");
      return -1;
    }
    p = lexItem(src, tokens, p, c);
    if (p < 0) return -1;
  }
}

const SINGLE: ReadonlyMap<number, TokenType> = new Map<number, TokenType>([
  [0x3d, T.Assign],
  [0x7c, T.Pipe],
  [0x28, T.LeftParen],
  [0x29, T.RightParen],
]);

/** Lexes one item inside an action; the offset after it, or -1. */
function lexItem(src: string, tokens: TokenList, p: number, c: number): number {
  if (isSpace(c)) {
    let q = skipSpace(src, p + 1);
    // The last space belongs to a following trim-marked delimiter.
    if (src.charCodeAt(q) === DASH && src.startsWith("}}", q + 1)) q--;
    if (q > p) tokens.push(T.Space, p, q);
    return q;
  }
  const single = SINGLE.get(c);
  if (single !== undefined) {
    tokens.push(single, p, p + 1);
    return p + 1;
  }
  switch (c) {
    case 0x3a: // :
      if (src.charCodeAt(p + 1) !== 0x3d) {
        return failAt(tokens, p, "expected :=");
      }
      tokens.push(T.Declare, p, p + 2);
      return p + 2;
    case 0x22: // "
    case 0x27: // '
      return lexQuote(src, tokens, p, c);
    case 0x60: { // `
      const close = src.indexOf("`", p + 1);
      if (close < 0) return failAt(tokens, p, "unterminated raw quoted string");
      tokens.push(T.RawString, p, close + 1);
      return close + 1;
    }
    case 0x24: // $
    case 0x2e: // .
      if (
        c === 0x2e && (p + 1 >= src.length || isDigit(src.charCodeAt(p + 1)))
      ) {
        break; // A number such as .5.
      }
      return lexFieldOrVariable(src, tokens, p, c);
  }
  if (c === 0x2b || c === DASH || c === 0x2e || isDigit(c)) {
    return lexNumber(src, tokens, p);
  }
  const cp = src.codePointAt(p) as number;
  if (isAlphaNumeric(cp)) return lexIdentifier(src, tokens, p);
  if (c >= 0x20 && c < 0x7f) {
    tokens.push(T.Char, p, p + 1);
    return p + 1;
  }
  return failAt(
    tokens,
    p,
    `unrecognized character in action: ${formatRune(cp)}`,
  );
}

function failAt(tokens: TokenList, pos: number, message: string): number {
  tokens.fail(pos, message);
  return -1;
}

function lexQuote(
  src: string,
  tokens: TokenList,
  p: number,
  c: number,
): number {
  const n = src.length;
  let q = p + 1;
  for (;;) {
    const d = q < n ? src.charCodeAt(q) : 0x0a;
    // An escape may quote anything but a newline.
    const escaped = d === 0x5c && q + 1 < n && src.charCodeAt(q + 1) !== 0x0a;
    if (d === 0x0a || (d === 0x5c && !escaped)) {
      return failAt(
        tokens,
        p,
        c === 0x22
          ? "unterminated quoted string"
          : "unterminated character constant",
      );
    }
    q += escaped ? 2 : 1;
    if (d === c) break;
  }
  tokens.push(c === 0x22 ? T.String : T.CharConstant, p, q);
  return q;
}

function scanWord(src: string, q: number): number {
  while (q < src.length) {
    const cp = src.codePointAt(q) as number;
    if (!isAlphaNumeric(cp)) break;
    q += codePointWidth(cp);
  }
  return q;
}

function lexFieldOrVariable(
  src: string,
  tokens: TokenList,
  p: number,
  c: number,
): number {
  let q = p + 1;
  if (atTerminator(src, q)) {
    tokens.push(c === 0x24 ? T.Variable : T.Dot, p, q);
    return q;
  }
  q = scanWord(src, q);
  if (!atTerminator(src, q)) {
    return failAt(
      tokens,
      q,
      `bad character ${formatRune(src.codePointAt(q) as number)}`,
    );
  }
  tokens.push(c === 0x24 ? T.Variable : T.Field, p, q);
  return q;
}

function lexNumber(src: string, tokens: TokenList, p: number): number {
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
    return failAt(
      tokens,
      p,
      `bad number syntax: ${quote(src.slice(p, -q - 1))}`,
    );
  }
  tokens.push(type, p, q);
  return q;
}

function lexIdentifier(src: string, tokens: TokenList, p: number): number {
  const q = scanWord(src, p);
  if (!atTerminator(src, q)) {
    return failAt(
      tokens,
      q,
      `bad character ${formatRune(src.codePointAt(q) as number)}`,
    );
  }
  const word = src.slice(p, q);
  const keyword = KEYWORDS.get(word);
  if (keyword !== undefined) tokens.push(keyword, p, q);
  else if (word === "true" || word === "false") tokens.push(T.Bool, p, q);
  else tokens.push(T.Identifier, p, q);
  return q;
}
