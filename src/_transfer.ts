/**
 * Export and import of a store's entries: one snapshot read as a stream of
 * records, and records written in bounded transactions. The store's
 * `exportEntries` and `importEntries` delegate here.
 *
 * @module
 */

import { decodeUtf8 } from "./_utf8.ts";
import type { DatabaseSync } from "node:sqlite";
import { assertOptions, assertText, describe, integerArg } from "./_check.ts";
import type { TableNames } from "./_sql.ts";
import { textColumn } from "./codec.ts";
import { ImportError, StoreError } from "./errors.ts";
import {
  connectReadOnly,
  MEMORY_PATH,
  type Param,
  prepareRows,
  readSchema,
  retryBusy,
  type Row,
  type RowStatement,
} from "./schema.ts";
import type * as transfer from "./transfer.ts";

const EXPORT_OPTIONS: Record<keyof transfer.ExportOptions, true> = {
  prefix: true,
};
const IMPORT_OPTIONS: Record<keyof transfer.ImportOptions, true> = {
  batchSize: true,
};

// node:sqlite cuts TEXT at its first NUL, so a column holding one is read as
// bytes (textColumn) and decoded here, keeping a leading U+FEFF and refusing
// bytes that are not UTF-8. (Reading every column as bytes would be exact for
// all, but creating a Uint8Array per column makes an export six times
// slower.) A whole export scans the table in storage order, which reads the
// file sequentially; a prefix is an index range in group and key order that
// ends at the first group past it.
function exportSql(names: TableNames): { all: string; prefix: string } {
  const { table: T, group: G, key: K, value: V } = names;
  const columns = `${textColumn(G)}, ${textColumn(K)}, ${
    textColumn(V)
  }, expires_at`;
  const live = "(expires_at IS NULL OR expires_at > ?)";
  return {
    all: `SELECT ${columns} FROM ${T} WHERE ${live}`,
    prefix:
      `SELECT ${columns} FROM ${T} WHERE ${G} >= ? AND ${live} ORDER BY ${G}, ${K}`,
  };
}

// Records per pull of the export stream, and how many it keeps ready.
const EXPORT_CHUNK = 256;
const EXPORT_HIGH_WATER_MARK = 1_024;
const DEFAULT_BATCH_SIZE = 1_000;
const MAX_BATCH_SIZE = 1_000_000;
const RECORD_FIELDS = new Set(["group", "key", "value", "expiresAt"]);

/** Where an export reads from. */
export interface SnapshotSource {
  /** The store's own connection; read directly only for `:memory:`. */
  db: DatabaseSync;
  /** The store's path: a file store is read through a second connection. */
  path: string;
  /** How long to wait for a lock when opening the snapshot. */
  busyTimeoutMs: number;
  /** The data table's names. */
  names: TableNames;
}

/** Records one at a time; `close()` is idempotent. */
export interface ExportCursor {
  /** The next record, or `undefined` at the end. */
  next(): transfer.ExportRecord | undefined;
  /** Ends the snapshot and closes its connection. */
  close(): void;
}

/**
 * Streams the live entries of the snapshot `open` returns, opened at once.
 *
 * @param options `prefix` of the groups to export.
 * @param open Opens the snapshot of the groups starting with a prefix.
 * @returns The stream of records: in storage order, or with a prefix in
 * group and key order.
 * @throws {TypeError} When `prefix` is not a string.
 * @throws {StoreError} When the snapshot cannot be opened.
 */
export function exportRecords(
  options: transfer.ExportOptions,
  open: (prefix: string) => ExportCursor,
): ReadableStream<transfer.ExportRecord> {
  assertOptions("export entries", "options", options, EXPORT_OPTIONS);
  const prefix = options.prefix ?? "";
  assertText("export entries", "prefix", prefix);
  const rows = open(prefix);
  return new ReadableStream<transfer.ExportRecord>({
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

/**
 * Opens one snapshot of the live entries. A file store is read through a
 * second, read-only connection holding one read transaction until the
 * cursor is closed, so writes meanwhile are not seen. An in-memory store has
 * no second connection: its entries are read at once, into memory.
 *
 * @param op The operation, for messages.
 * @param source The store's connection, path, timeout and table.
 * @param prefix Only groups starting with it.
 * @param now The clock: what is live is decided once.
 * @returns The cursor.
 * @throws {StoreError} When the snapshot cannot be opened.
 */
export function openCursor(
  op: string,
  source: SnapshotSource,
  prefix: string,
  now: number,
): ExportCursor {
  return source.path === MEMORY_PATH
    ? readAll(op, source, prefix, now)
    : openSnapshot(op, source, prefix, now);
}

function readAll(
  op: string,
  source: SnapshotSource,
  prefix: string,
  now: number,
): ExportCursor {
  const select = prepareSelect(op, source.db, source.names, prefix);
  let records: transfer.ExportRecord[] = [];
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
  source: SnapshotSource,
  prefix: string,
  now: number,
): ExportCursor {
  const db = run(op, () => connectReadOnly(source.path));
  let rows: Iterator<Row> | undefined;
  const close = () => {
    if (!db.isOpen) return;
    rows?.return?.();
    if (db.isTransaction) db.exec("COMMIT");
    db.close();
  };
  let first: IteratorResult<Row>;
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.min(source.busyTimeoutMs, 10)}`);
    // Its own look at the tables: a read-only store reads through views.
    const names = run(op, () => readSchema(source.path, db));
    const select = prepareSelect(op, db, names, prefix);
    // The snapshot is pinned by the first read, not by BEGIN: read now.
    first = run(op, () =>
      retryBusy(source.busyTimeoutMs, () => {
        if (db.isTransaction) db.exec("COMMIT");
        db.exec("BEGIN");
        rows = select.iterate(...params(prefix, now));
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
  names: TableNames,
  prefix: string,
): RowStatement {
  const sql = exportSql(names)[prefix === "" ? "all" : "prefix"];
  return run(op, () => prepareRows(db, { select: sql })).select;
}

function params(prefix: string, now: number): Param[] {
  return prefix === "" ? [now] : [prefix, now];
}

function toRecord(op: string, row: Row): transfer.ExportRecord {
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
    return decodeUtf8(column as Uint8Array, true);
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
 * Writes one batch of checked records in one transaction, skipping those
 * already expired by the store's clock; returns how many it wrote.
 */
export type BatchWriter = (
  records: readonly transfer.ExportRecord[],
) => number | Promise<number>;

/**
 * Imports records in transactions of `batchSize`. Each record is checked
 * as it arrives; a malformed one, or a failing source, stops the import
 * before its batch is written.
 *
 * @param source The records.
 * @param options `batchSize`.
 * @param batch Writes one batch in one transaction.
 * @returns How many records were written and how many skipped as expired.
 * @throws {TypeError} When `source` is not iterable or `batchSize` is not a
 * number.
 * @throws {RangeError} When `batchSize` is out of range.
 * @throws {ImportError} When a record is malformed or the source fails.
 */
export async function importRecords(
  source: transfer.ImportSource,
  options: transfer.ImportOptions,
  batch: BatchWriter,
): Promise<transfer.ImportResult> {
  const op = "import entries";
  assertOptions(op, "options", options, IMPORT_OPTIONS);
  const batchSize = integerArg(
    op,
    "batchSize",
    options.batchSize,
    DEFAULT_BATCH_SIZE,
    1,
    MAX_BATCH_SIZE,
  );
  if (!isIterable(source)) {
    throw new TypeError(
      `Cannot ${op}: source must be a ReadableStream or an (async) iterable, received ${
        describe(source)
      }`,
    );
  }
  const result: transfer.ImportResult = { imported: 0, skipped: 0 };
  let pending: transfer.ExportRecord[] = [];
  const flush = async () => {
    const records = pending;
    pending = [];
    const written = records.length === 0 ? 0 : await batch(records);
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
        await flush();
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
  await flush();
  return result;
}

/** A malformed record; becomes an ImportError with its number. */
class RecordError extends Error {}

function checkRecord(item: unknown): transfer.ExportRecord {
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
