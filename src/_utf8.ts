/**
 * UTF-8 length, encoding and decoding, the one place where the store turns
 * JavaScript strings into the bytes SQLite and Go see, and back.
 *
 * A lone surrogate has no UTF-8 form: it is encoded as U+FFFD (three bytes),
 * as `TextEncoder` and SQLite both do. Decoding keeps a leading U+FEFF, which
 * is text, not a byte-order mark, in a stored value.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const strictDecoder = new TextDecoder("utf-8", {
  ignoreBOM: true,
  fatal: true,
});

/**
 * The number of bytes of the UTF-8 encoding of `s`, a lone surrogate
 * counting as the three bytes of U+FFFD.
 *
 * @param s Any string.
 * @returns The byte length of `encodeUtf8(s)`.
 */
export function utf8Length(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (
      c >= 0xd800 && c <= 0xdbff && i + 1 < n &&
      (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      // A surrogate pair: two units, four bytes.
      bytes += 2;
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/**
 * The UTF-8 bytes of `s`, a lone surrogate becoming U+FFFD.
 *
 * @param s Any string.
 * @returns A new byte array.
 */
export function encodeUtf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/**
 * Decodes UTF-8, keeping a leading U+FEFF.
 *
 * @param bytes UTF-8 bytes.
 * @param fatal When `true`, invalid UTF-8 throws instead of becoming U+FFFD.
 * @returns The decoded string.
 * @throws {TypeError} When `fatal` is set and `bytes` are not valid UTF-8.
 */
export function decodeUtf8(bytes: Uint8Array, fatal = false): string {
  return (fatal ? strictDecoder : decoder).decode(bytes);
}
