/**
 * Opening a database file: connection pragmas, the `kv` table shared with the
 * Go sibling, and the migration of files written before TTL support.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { StoreError } from "./errors.ts";

/** How a database is opened; every field is already validated. */
export interface OpenOptions {
  /** `PRAGMA busy_timeout`, in milliseconds. */
  busyTimeoutMs: number;
  /** `PRAGMA synchronous` for file-backed stores. */
  durability: "normal" | "full";
}

/** The in-memory path, which gets no WAL and no file checks. */
export const MEMORY_PATH = ":memory:";

// The Go sibling's table, byte for byte, so either implementation can open
// the other's files.
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS kv (
  grp TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (grp, key)
)`;

// Partial, so keys without expiry (most of them) cost nothing in the index,
// and purging is a range scan over the expired rows only.
const CREATE_EXPIRY_INDEX =
  "CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL";

interface ColumnInfo {
  name: string;
  pk: number;
}

/**
 * Opens (creating when missing) the database at `path`, checks or creates the
 * `kv` table, and sets the connection up: WAL, `busy_timeout` and
 * `synchronous` for files.
 *
 * @param path A file path or `":memory:"`.
 * @param options Validated connection settings.
 * @returns The open connection.
 * @throws {StoreError} When the file cannot be opened, is not a SQLite
 * database, or holds a `kv` table of another shape; the message names the
 * path and the file is not modified.
 *
 * @example Open an in-memory database
 * ```ts
 * import { openDatabase } from "./schema.ts";
 * import assert from "node:assert/strict";
 *
 * const db = openDatabase(":memory:", { busyTimeoutMs: 5000, durability: "normal" });
 * const row = db.prepare("SELECT count(*) AS n FROM kv").get();
 * assert.equal(row?.n, 0);
 * db.close();
 * ```
 */
export function openDatabase(path: string, options: OpenOptions): DatabaseSync {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (error) {
    throw new StoreError(`Cannot open store at ${path}: ${message(error)}`, {
      cause: error,
    });
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${options.busyTimeoutMs}`);
    // Inspect before anything writes, so a file we refuse stays untouched
    // (switching to WAL alone rewrites the header).
    checkShape(path, columnsOf(db));
    if (path !== MEMORY_PATH) {
      const mode = db.prepare("PRAGMA journal_mode = WAL").get();
      if (mode?.journal_mode !== "wal") {
        throw new StoreError(
          `Cannot open store at ${path}: the file cannot be switched to WAL mode (journal_mode is ${mode?.journal_mode})`,
        );
      }
      db.exec(`PRAGMA synchronous = ${options.durability.toUpperCase()}`);
    }
    migrate(path, db);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof StoreError) throw error;
    throw new StoreError(`Cannot open store at ${path}: ${message(error)}`, {
      cause: error,
    });
  }
}

/**
 * Creates the `kv` table and its expiry index when missing.
 *
 * @param db An open connection, inside a write transaction when other
 * connections may create them at the same time.
 */
export function createTables(db: DatabaseSync): void {
  db.exec(CREATE_TABLE);
  db.exec(CREATE_EXPIRY_INDEX);
}

function columnsOf(db: DatabaseSync): ColumnInfo[] {
  return db.prepare("PRAGMA table_info(kv)").all() as unknown as ColumnInfo[];
}

function checkShape(path: string, columns: ColumnInfo[]): void {
  if (columns.length === 0) return;
  const pk = (name: string) => columns.find((c) => c.name === name)?.pk;
  for (const name of ["grp", "key", "value"]) {
    if (pk(name) === undefined) {
      throw new StoreError(
        `Cannot open store at ${path}: table kv has no column ${name}, so it was not written by this module or the Go sibling`,
      );
    }
  }
  if (pk("grp") !== 1 || pk("key") !== 2) {
    throw new StoreError(
      `Cannot open store at ${path}: table kv must have PRIMARY KEY (grp, key)`,
    );
  }
}

// Inside one write transaction, so two processes opening the same new or
// pre-TTL file at once do not both try to create or alter it.
function migrate(path: string, db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const columns = columnsOf(db);
    checkShape(path, columns);
    if (
      columns.length > 0 && !columns.some((c) => c.name === "expires_at")
    ) {
      db.exec("ALTER TABLE kv ADD COLUMN expires_at INTEGER");
    }
    createTables(db);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
