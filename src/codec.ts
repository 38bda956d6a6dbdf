/**
 * The text encoding between JavaScript strings and the SQLite file.
 *
 * Strings are stored as plain UTF-8 `TEXT`, exactly as the Go sibling writes
 * them, so a file stays readable by either implementation and by the
 * `sqlite3` shell. `node:sqlite` binds a string with embedded NUL characters
 * in full but hands a `TEXT` value back cut at its first NUL. Columns are read
 * one of two ways:
 *
 * - through {@linkcode textColumn}: SQLite returns the rare value that holds
 *   a NUL as a `BLOB` of the same bytes, which {@linkcode decodeText} turns
 *   back into the exact string;
 * - on the hot paths (`get`, `getAll`), as plain text with its
 *   `octet_length`: {@linkcode isWhole} confirms the string has every byte
 *   (a cut string is always shorter), and only a short one is read again as
 *   bytes. This skips a per-row SQL function call.
 *
 * Lone surrogates have no UTF-8 form and SQLite would store them as U+FFFD,
 * so `assertText()` in `_check.ts` rejects them up front.
 *
 * @module
 */

import { decodeUtf8, utf8Length } from "./_utf8.ts";

/**
 * The SQL expression that reads a text column without losing anything after
 * a NUL: the column itself, or its bytes as a `BLOB` when it holds a NUL.
 *
 * @param column A column name, trusted (never user input).
 * @returns An SQL expression to select in place of the column.
 *
 * @example Select a value
 * ```ts
 * import { textColumn } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(textColumn("value"), /CAST\(value AS BLOB\)/);
 * ```
 */
export function textColumn(column: string): string {
  return `CASE WHEN instr(${column}, char(0)) THEN CAST(${column} AS BLOB) ELSE ${column} END`;
}

/**
 * Turns a column read through {@linkcode textColumn} back into the stored
 * string.
 *
 * @param value A string, or the UTF-8 bytes of a string holding a NUL.
 * @returns The stored string.
 *
 * @example Bytes with a NUL
 * ```ts
 * import { decodeText } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeText(new Uint8Array([97, 0, 98])), "a\0b");
 * // A leading U+FEFF is kept, not taken for a byte order mark.
 * assert.equal(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0])), "\uFEFF\0");
 * assert.equal(decodeText("plain"), "plain");
 * ```
 */
export function decodeText(value: unknown): string {
  return typeof value === "string" ? value : decodeUtf8(value as Uint8Array);
}

/**
 * Tells whether a string read from a `TEXT` column is whole, given the
 * column's `octet_length`: `node:sqlite` cuts text at its first NUL, and a cut
 * string always has fewer UTF-8 bytes than the column.
 *
 * @param bytes The column's `octet_length` (or the sum for two columns).
 * @param text The string `node:sqlite` returned.
 * @param more A second column's string, when `bytes` covers two.
 * @returns `true` when the strings are exactly the stored values.
 *
 * @example A value cut at a NUL
 * ```ts
 * import { isWhole } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isWhole(6, "héllo"), true);
 * assert.equal(isWhole(3, "a"), false); // "a\0b" came back as "a"
 * assert.equal(isWhole(4, "key", "v"), true);
 * ```
 */
export function isWhole(bytes: number, text: string, more = ""): boolean {
  // ASCII, the common case, has one byte per UTF-16 unit.
  return text.length + more.length === bytes ||
    utf8Length(text) + utf8Length(more) === bytes;
}
