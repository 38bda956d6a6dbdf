/**
 * Moving a store's entries in and out: the record shape of
 * {@linkcode Store.prototype.exportEntries} and
 * {@linkcode Store.prototype.importEntries}, their options, and the
 * newline-delimited JSON (NDJSON) encoding the command line uses.
 *
 * @module
 */

import { decodeUtf8 } from "./_utf8.ts";
import { assertOptions, integerArg } from "./_check.ts";

/**
 * One live entry, as exported and imported. As NDJSON, one per line:
 * `{"group":"…","key":"…","value":"…","expiresAt":<ms since the epoch or null>}`.
 */
export interface ExportRecord {
  /** The stored group (`namespace:group` for a scoped one). */
  group: string;
  /** The key. */
  key: string;
  /** The value; any string, NUL characters included. */
  value: string;
  /** When the entry expires, in milliseconds since the epoch; `null` never. */
  expiresAt: number | null;
}

/** Options for {@linkcode Store.prototype.exportEntries}. */
export interface ExportOptions {
  /**
   * Only groups whose name starts with this string (literal: `%` and `_`
   * are not wildcards). Default `""`, every group.
   */
  prefix?: string;
}

/** Options for {@linkcode Store.prototype.importEntries}. */
export interface ImportOptions {
  /**
   * Records written per transaction, from 1 to 1,000,000: also the most
   * records held in memory at once. Default `1_000`.
   */
  batchSize?: number;
}

/** What {@linkcode Store.prototype.importEntries} did. */
export interface ImportResult {
  /** Records written. */
  imported: number;
  /** Records skipped because their `expiresAt` had passed. */
  skipped: number;
}

/**
 * What {@linkcode Store.prototype.importEntries} reads: a stream or any
 * (async) iterable of records. Records are checked one by one, so they may
 * come straight from `JSON.parse` or {@linkcode fromNdjson}.
 */
export type ImportSource =
  | ReadableStream<unknown>
  | AsyncIterable<unknown>
  | Iterable<unknown>;

/** Options for {@linkcode fromNdjson}. */
export interface FromNdjsonOptions {
  /**
   * The longest line accepted, in bytes; a longer one errors the stream
   * instead of growing memory without end. Default 256 MiB.
   */
  maxLineBytes?: number;
}

const FROM_NDJSON_OPTIONS: Record<keyof FromNdjsonOptions, true> = {
  maxLineBytes: true,
};
const CHUNK_BYTES = 64 * 1024;
const DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * Encodes records as NDJSON: one JSON object per line, fields in the order
 * `group`, `key`, `value`, `expiresAt`. Lines are gathered into chunks of
 * about 64 KiB, so that a large export is not one write per entry.
 *
 * @example Export a store as NDJSON text
 * ```ts
 * import { Store, toNdjson } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * store.set("config", "theme", "dark");
 * const text = await new Response(
 *   store.exportEntries().pipeThrough(toNdjson()),
 * ).text();
 * assert.equal(
 *   text,
 *   '{"group":"config","key":"theme","value":"dark","expiresAt":null}\n',
 * );
 * ```
 *
 * @returns A stream that turns records into UTF-8 bytes.
 */
export function toNdjson(): TransformStream<ExportRecord, Uint8Array> {
  const encoder = new TextEncoder();
  let pending = "";
  return new TransformStream({
    transform(record, controller) {
      pending += JSON.stringify({
        group: record.group,
        key: record.key,
        value: record.value,
        expiresAt: record.expiresAt,
      }) + "\n";
      if (pending.length >= CHUNK_BYTES) {
        controller.enqueue(encoder.encode(pending));
        pending = "";
      }
    },
    flush(controller) {
      if (pending !== "") controller.enqueue(encoder.encode(pending));
    },
  });
}

/**
 * Decodes NDJSON bytes into parsed values, one per line, for
 * {@linkcode Store.prototype.importEntries} (which checks each one). Lines
 * end with `\n` (a `\r` before it is ignored); the last may lack it. A
 * leading byte order mark is skipped. A line that is empty, not UTF-8 or not
 * JSON errors the stream with a `SyntaxError` naming its line number, so
 * that record numbers and line numbers agree.
 *
 * @example Import NDJSON text
 * ```ts
 * import { fromNdjson, Store } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const text = '{"group":"g","key":"k","value":"v\\u0000w","expiresAt":null}\n';
 * const records = new Response(text).body!.pipeThrough(fromNdjson());
 * assert.deepEqual(await store.importEntries(records), {
 *   imported: 1,
 *   skipped: 0,
 * });
 * assert.equal(store.get("g", "k"), "v\0w");
 * ```
 *
 * @param options `maxLineBytes`: the longest line accepted.
 * @returns A stream that turns UTF-8 bytes into one value per line.
 * @throws {TypeError} When `maxLineBytes` is not a number.
 * @throws {RangeError} When `maxLineBytes` is not a positive integer.
 */
export function fromNdjson(
  options?: FromNdjsonOptions,
): TransformStream<Uint8Array, unknown> {
  assertOptions("read NDJSON", "options", options, FROM_NDJSON_OPTIONS);
  const maxLineBytes = integerArg(
    "read NDJSON",
    "maxLineBytes",
    options?.maxLineBytes,
    DEFAULT_MAX_LINE_BYTES,
    1,
  );
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  let line = 0;
  const parse = (bytes: Uint8Array): unknown => {
    line++;
    let text: string;
    try {
      text = decodeUtf8(bytes, true);
    } catch (error) {
      throw lineError(line, "is not valid UTF-8", error);
    }
    if (line === 1 && text.startsWith("\uFEFF")) text = text.slice(1);
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.trim() === "") throw lineError(line, "is empty");
    try {
      return JSON.parse(text);
    } catch (error) {
      throw lineError(line, `is not JSON (${message(error)})`, error);
    }
  };
  return new TransformStream({
    transform(chunk, controller) {
      let start = 0;
      for (;;) {
        const end = chunk.indexOf(NEWLINE, start);
        const piece = chunk.subarray(start, end === -1 ? chunk.length : end);
        if (partBytes + piece.length > maxLineBytes) {
          throw lineError(
            line + 1,
            `is longer than maxLineBytes (${maxLineBytes} bytes)`,
          );
        }
        if (end === -1) {
          if (piece.length > 0) {
            // Copied: the caller may reuse its chunk.
            parts.push(piece.slice());
            partBytes += piece.length;
          }
          return;
        }
        controller.enqueue(parse(join(parts, partBytes, piece)));
        parts = [];
        partBytes = 0;
        start = end + 1;
      }
    },
    flush(controller) {
      if (partBytes > 0) {
        controller.enqueue(parse(join(parts, partBytes, new Uint8Array(0))));
      }
    },
  });
}

function join(
  parts: Uint8Array[],
  bytes: number,
  last: Uint8Array,
): Uint8Array {
  if (parts.length === 0) return last;
  const whole = new Uint8Array(bytes + last.length);
  let offset = 0;
  for (const part of parts) {
    whole.set(part, offset);
    offset += part.length;
  }
  whole.set(last, offset);
  return whole;
}

function lineError(line: number, what: string, cause?: unknown): SyntaxError {
  return new SyntaxError(
    `Cannot read NDJSON: line ${line} ${what}`,
    cause === undefined ? undefined : { cause },
  );
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
