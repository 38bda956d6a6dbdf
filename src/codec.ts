/**
 * Argument checks and the text encoding between JavaScript strings and the
 * SQLite file.
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
 * so they are rejected up front.
 *
 * @module
 */

import { decodeUtf8, utf8Length } from "./_utf8.ts";

/**
 * Describes a value for an error message: `null`, `array` and the `typeof`
 * name otherwise.
 *
 * @param value Anything.
 * @returns A short type name.
 *
 * @example Names of a few values
 * ```ts
 * import { describe } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describe(1), "number");
 * assert.equal(describe(null), "null");
 * assert.equal(describe([]), "array");
 * ```
 */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * Checks that an argument is a string that SQLite can store unaltered.
 *
 * @param operation What was attempted, e.g. `"set value"`.
 * @param name The argument's name, e.g. `"group"`.
 * @param value The argument.
 * @throws {TypeError} When `value` is not a string, or holds a lone surrogate.
 *
 * @example A number where a string belongs
 * ```ts
 * import { assertText } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => assertText("set value", "group", 1), {
 *   name: "TypeError",
 *   message: "Cannot set value: group must be a string, received number",
 * });
 * ```
 */
export function assertText(
  operation: string,
  name: string,
  value: unknown,
): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Cannot ${operation}: ${name} must be a string, received ${
        describe(value)
      }`,
    );
  }
  if (!value.isWellFormed()) {
    throw new TypeError(
      `Cannot ${operation}: ${name} contains a lone surrogate at index ${
        loneSurrogateIndex(value)
      }, which cannot be stored unaltered`,
    );
  }
}

function loneSurrogateIndex(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}

/**
 * Checks a time to live in milliseconds.
 *
 * @param operation What was attempted, e.g. `"set value with TTL"`.
 * @param ttlMs The time to live.
 * @throws {TypeError} When `ttlMs` is not a number.
 * @throws {RangeError} When `ttlMs` is not a positive finite number.
 *
 * @example Zero is not a time to live
 * ```ts
 * import { assertTTL } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => assertTTL("set value with TTL", 0), RangeError);
 * ```
 */
export function assertTTL(
  operation: string,
  ttlMs: unknown,
): asserts ttlMs is number {
  if (typeof ttlMs !== "number") {
    throw new TypeError(
      `Cannot ${operation}: ttlMs must be a number, received ${
        describe(ttlMs)
      }`,
    );
  }
  if (!(ttlMs > 0) || ttlMs === Infinity) {
    throw new RangeError(
      `Cannot ${operation}: ttlMs must be a positive finite number, received ${ttlMs}`,
    );
  }
}

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
