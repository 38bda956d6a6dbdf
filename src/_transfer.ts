/**
 * Export and import of a store's entries: reading one snapshot as a stream
 * of records, and writing records in bounded transactions. The store's
 * `exportEntries` and `importEntries` delegate here.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { assertText, describe, textColumn } from "./codec.ts";
import { ImportError, StoreError } from "./errors.ts";
import {
  MEMORY_PATH,
  type Param,
  prepareRows,
  retryBusy,
  type Row,
  type RowStatement,
} from "./schema.ts";
import type { Transaction } from "./store.ts";
import type {
  ExportOptions,
  ExportRecord,
  ImportOptions,
  ImportResult,
  ImportSource,
} from "./transfer.ts";

/** The table that holds the entries. */
const TABLE = "kv";

// node:sqlite cuts TEXT at its first NUL, so a column holding one is read as
// bytes (textColumn) and decoded here, keeping a leading U+FEFF and refusing
// bytes that are not UTF-8. (Reading every column as bytes would be exact for
// all, but creating a Uint8Array per column makes an export six times
// slower.) A whole export scans the table in storage order, which reads the
// file sequentially; a prefix is an index range in group and key order that
// ends at the first group past it.
const COLUMNS = `${textColumn("grp")}, ${textColumn("key")}, ${
  textColumn("value")
}, expires_at`;
const LIVE = "(expires_at IS NULL OR expires_at > ?)";
const EXPORT_SQL = {
  all: `SELECT ${COLUMNS} FROM ${TABLE} WHERE ${LIVE}`,
  prefix:
    `SELECT ${COLUMNS} FROM ${TABLE} WHERE grp >= ? AND ${LIVE} ORDER BY grp, key`,
};

// Records per pull of the export stream, and how many it keeps ready.
const EXPORT_CHUNK = 256;
const EXPORT_HIGH_WATER_MARK = 1_024;
const DEFAULT_BATCH_SIZE = 1_000;
const MAX_BATCH_SIZE = 1_000_000;
const RECORD_FIELDS = new Set(["group", "key", "value", "expiresAt"]);

const exact = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** What an export needs from the store, read when the export starts. */
export interface ExportContext {
  /** The store's own connection; read directly only for `:memory:`. */
  db: DatabaseSync;
  /** The store's path: a file store is read through a second connection. */
  path: string;
  /** The store's clock at the start: what is live is decided once. */
  now: number;
  /** How long to wait for a lock when opening the snapshot. */
  busyTimeoutMs: number;
}

/**
 * Streams the live entries of one snapshot. A file store is read through a
 * second, read-only connection holding one read transaction from this call
 * until the stream ends, errors or is cancelled, so writes meanwhile are not
 * seen. An in-memory store has no second connection: its entries are read
 * at once, into memory, here.
 *
 * @param context The store's connection, path, clock reading and timeout.
 * @param options `prefix` of the groups to export.
 * @returns The stream of records: in storage order, or with a prefix in
 * group and key order.
 * @throws {TypeError} When `prefix` is not a string.
 * @throws {StoreError} When the snapshot cannot be opened.
 */
export function exportRecords(
  context: ExportContext,
  options: ExportOptions,
): ReadableStream<ExportRecord> {
  const op = "export entries";
  const prefix = options.prefix ?? "";
  assertText(op, "prefix", prefix);
  const rows = context.path === MEMORY_PATH
    ? readAll(op, context.db, prefix, context.now)
    : openSnapshot(op, context, prefix);
  return new ReadableStream<ExportRecord>({
    pull(controller) {
      try {
        for (let i = 0; i < EXPORT_CHUNK; i++) {
          const record = rows.next();
          if (record === undefined) {
            rows.close();
            controller.close();
            return;
          }
          controller.enqueue(record);
        }
      } catch (error) {
        rows.close();
        throw error;
      }
    },
    cancel() {
      rows.close();
    },
  }, { highWaterMark: EXPORT_HIGH_WATER_MARK });
}

/** Records one at a time; `close()` is idempotent. */
interface Cursor {
  next(): ExportRecord | undefined;
  close(): void;
}

function readAll(
  op: string,
  db: DatabaseSync,
  prefix: string,
  now: number,
): Cursor {
  const select = prepareSelect(op, db, prefix);
  let records: ExportRecord[] = [];
  run(op, () => {
    for (const row of select.iterate(...params(prefix, now))) {
      const record = toRecord(op, row);
      if (!record.group.startsWith(prefix)) break;
      records.push(record);
    }
  });
  let index = 0;
  return {
    next: () => records[index++],
    close: () => records = [],
  };
}

function openSnapshot(
  op: string,
  context: ExportContext,
  prefix: string,
): Cursor {
  const db = run(
    op,
    () => new DatabaseSync(context.path, { readOnly: true }),
  );
  let rows: Iterator<Row> | undefined;
  const close = () => {
    if (!db.isOpen) return;
    rows?.return?.();
    if (db.isTransaction) db.exec("COMMIT");
    db.close();
  };
  let first: IteratorResult<Row>;
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.min(context.busyTimeoutMs, 10)}`);
    const select = prepareSelect(op, db, prefix);
    // The snapshot is pinned by the first read, not by BEGIN: read now.
    first = run(op, () =>
      retryBusy(context.busyTimeoutMs, () => {
        if (db.isTransaction) db.exec("COMMIT");
        db.exec("BEGIN");
        rows = select.iterate(...params(prefix, context.now));
        return rows.next();
      }));
  } catch (error) {
    close();
    throw error;
  }
  let next: IteratorResult<Row> | undefined = first;
  return {
    next() {
      const row = next ?? run(op, () => (rows as Iterator<Row>).next());
      next = undefined;
      if (row.done) return undefined;
      const record = toRecord(op, row.value);
      return record.group.startsWith(prefix) ? record : undefined;
    },
    close,
  };
}

function prepareSelect(
  op: string,
  db: DatabaseSync,
  prefix: string,
): RowStatement {
  const sql = prefix === "" ? EXPORT_SQL.all : EXPORT_SQL.prefix;
  return run(op, () => prepareRows(db, { select: sql })).select;
}

function params(prefix: string, now: number): Param[] {
  return prefix === "" ? [now] : [prefix, now];
}

function toRecord(op: string, row: Row): ExportRecord {
  const expiresAt = row[3];
  return {
    group: text(op, row[0], "a group"),
    key: text(op, row[1], "a key"),
    value: text(op, row[2], "a value"),
    expiresAt: typeof expiresAt === "bigint"
      ? Number(expiresAt)
      : expiresAt as number | null,
  };
}

function text(op: string, column: unknown, what: string): string {
  if (typeof column === "string") return column;
  try {
    return exact.decode(column as Uint8Array);
  } catch (error) {
    throw new StoreError(
      `Cannot ${op}: ${what} in the file is not valid UTF-8, so it cannot be exported unaltered`,
      { cause: error },
    );
  }
}

function run<T>(op: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof StoreError || error instanceof TypeError) throw error;
    throw new StoreError(
      `Cannot ${op}: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
}

/**
 * Writes one batch inside one store transaction, with the store's clock
 * reading `now` for the whole batch; returns what `write` returns.
 */
export type BatchWriter = (
  write: (tx: Transaction, now: number) => number,
) => number;

/**
 * Imports records in transactions of `batchSize`. Each record is checked
 * as it arrives; a malformed one, or a failing source, stops the import
 * before its batch is written.
 *
 * @param source The records.
 * @param options `batchSize`.
 * @param batch Runs one batch in a store transaction.
 * @returns How many records were written and how many skipped as expired.
 * @throws {TypeError} When `source` is not iterable or `batchSize` is not a
 * number.
 * @throws {RangeError} When `batchSize` is out of range.
 * @throws {ImportError} When a record is malformed or the source fails.
 */
export async function importRecords(
  source: ImportSource,
  options: ImportOptions,
  batch: BatchWriter,
): Promise<ImportResult> {
  const op = "import entries";
  const batchSize = positiveInteger(
    op,
    "batchSize",
    options.batchSize,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
  );
  if (!isIterable(source)) {
    throw new TypeError(
      `Cannot ${op}: source must be a ReadableStream or an (async) iterable, received ${
        describe(source)
      }`,
    );
  }
  const result: ImportResult = { imported: 0, skipped: 0 };
  let pending: ExportRecord[] = [];
  const flush = () => {
    const records = pending;
    pending = [];
    const written = batch((tx, now) => {
      let n = 0;
      for (const r of records) {
        if (r.expiresAt === null) tx.set(r.group, r.key, r.value);
        else if (r.expiresAt > now) {
          // The clock reads `now` throughout the batch, so this TTL lands
          // on exactly expiresAt (the store has no absolute-expiry write).
          tx.setWithTTL(r.group, r.key, r.value, r.expiresAt - now);
        } else continue;
        n++;
      }
      return n;
    });
    result.imported += written;
    result.skipped += records.length - written;
  };
  let count = 0;
  let writing = false;
  try {
    for await (const item of source as AsyncIterable<unknown>) {
      count++;
      pending.push(checkRecord(item));
      if (pending.length >= batchSize) {
        writing = true;
        flush();
        writing = false;
      }
    }
  } catch (error) {
    // A failed write was rolled back by its transaction: report it as is.
    if (writing) throw error;
    if (error instanceof RecordError) {
      throw new ImportError(error.message, count, result.imported);
    }
    // The source failed while producing the next record.
    throw new ImportError(
      error instanceof Error ? error.message : String(error),
      count + 1,
      result.imported,
      { cause: error },
    );
  }
  flush();
  return result;
}

/** A malformed record; becomes an ImportError with its number. */
class RecordError extends Error {}

function checkRecord(item: unknown): ExportRecord {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new RecordError(`expected an object, received ${describe(item)}`);
  }
  const record = item as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    if (!RECORD_FIELDS.has(name)) {
      throw new RecordError(
        `unknown field ${
          JSON.stringify(name)
        }; a record has group, key, value and expiresAt`,
      );
    }
  }
  for (const name of ["group", "key", "value"]) {
    const value = record[name];
    if (typeof value !== "string") {
      throw new RecordError(
        `${name} must be a string, received ${describe(value)}`,
      );
    }
    if (!value.isWellFormed()) {
      throw new RecordError(
        `${name} holds a lone surrogate, which cannot be stored unaltered`,
      );
    }
  }
  const expiresAt = record.expiresAt ?? null;
  if (expiresAt !== null && !Number.isSafeInteger(expiresAt)) {
    throw new RecordError(
      `expiresAt must be null or whole milliseconds since the epoch, received ${
        typeof expiresAt === "number" ? expiresAt : describe(expiresAt)
      }`,
    );
  }
  return {
    group: record.group as string,
    key: record.key as string,
    value: record.value as string,
    expiresAt: expiresAt as number | null,
  };
}

function isIterable(value: unknown): boolean {
  return typeof value === "object" && value !== null &&
    (Symbol.asyncIterator in value || Symbol.iterator in value);
}

/**
 * Checks an optional positive integer option.
 *
 * @param operation What was attempted, for the message.
 * @param name The option's name.
 * @param value The option, or `undefined` for the default.
 * @param fallback The default.
 * @param max The largest value accepted.
 * @returns The value, or the default.
 * @throws {TypeError} When `value` is not a number.
 * @throws {RangeError} When `value` is not an integer from 1 to `max`.
 */
export function positiveInteger(
  operation: string,
  name: string,
  value: unknown,
  fallback: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${operation}: ${name} must be a number, received ${
        describe(value)
      }`,
    );
  }
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(
      `Cannot ${operation}: ${name} must be an integer from 1 to ${max}, received ${value}`,
    );
  }
  return value;
}
