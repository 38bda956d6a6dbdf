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

// Live-key quotas of namespaced views must not count a namespace's rows on
// every write, so triggers keep per-namespace row and group counts. Triggers
// live in the file, so writes by the Go sibling or the sqlite3 shell keep the
// counts right too. A namespace is the part of a group before its first ':'.
const NAMESPACE_OF = (column: string) =>
  `substr(${column}, 1, instr(${column}, ':') - 1)`;

const CREATE_NAMESPACE_STATS = `CREATE TABLE kv_namespace_stats (
  ns TEXT PRIMARY KEY,
  keys INTEGER NOT NULL,
  groups INTEGER NOT NULL
) WITHOUT ROWID`;

const FILL_NAMESPACE_STATS = `INSERT INTO kv_namespace_stats (ns, keys, groups)
  SELECT ${NAMESPACE_OF("grp")} AS ns, count(*), count(DISTINCT grp)
  FROM kv WHERE instr(grp, ':') > 1 GROUP BY ns`;

// A row added to a group that had no other row adds a group; a row removed
// from a group that is left empty removes one.
const NAMESPACE_INSERT = `INSERT INTO kv_namespace_stats (ns, keys, groups)
    VALUES (${NAMESPACE_OF("NEW.grp")}, 1,
      NOT EXISTS (SELECT 1 FROM kv WHERE grp = NEW.grp AND rowid <> NEW.rowid))
    ON CONFLICT (ns) DO UPDATE SET keys = keys + 1, groups = groups + excluded.groups;`;
const NAMESPACE_DELETE = `UPDATE kv_namespace_stats SET keys = keys - 1,
      groups = groups - NOT EXISTS (SELECT 1 FROM kv WHERE grp = OLD.grp)
    WHERE ns = ${NAMESPACE_OF("OLD.grp")};`;

const CREATE_NAMESPACE_TRIGGERS = [
  `CREATE TRIGGER IF NOT EXISTS kv_namespace_insert AFTER INSERT ON kv
  WHEN instr(NEW.grp, ':') > 1
  BEGIN ${NAMESPACE_INSERT} END`,
  `CREATE TRIGGER IF NOT EXISTS kv_namespace_delete AFTER DELETE ON kv
  WHEN instr(OLD.grp, ':') > 1
  BEGIN ${NAMESPACE_DELETE} END`,
  // Only hand-written SQL renames rows; count it as a delete and an insert.
  `CREATE TRIGGER IF NOT EXISTS kv_namespace_rename_old AFTER UPDATE OF grp ON kv
  WHEN OLD.grp IS NOT NEW.grp AND instr(OLD.grp, ':') > 1
  BEGIN ${NAMESPACE_DELETE} END`,
  `CREATE TRIGGER IF NOT EXISTS kv_namespace_rename_new AFTER UPDATE OF grp ON kv
  WHEN OLD.grp IS NOT NEW.grp AND instr(NEW.grp, ':') > 1
  BEGIN ${NAMESPACE_INSERT} END`,
];

// The change feed: every committed change to kv, by any connection, is
// appended here by triggers, in the writer's own transaction. seq is the
// rowid: the newest row is never trimmed, so a new row always gets a larger
// seq, and contiguous seqs tell a reader it missed nothing.
/** Milliseconds since the epoch by SQLite's clock, as the triggers write. */
export const NOW_MS =
  "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
const LOG_ROW =
  "INSERT INTO kv_changes (type, grp, key, value, expires_at, timestamp)";

const CREATE_CHANGE_FEED = [
  `CREATE TABLE IF NOT EXISTS kv_changes (
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  grp TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT,
  expires_at INTEGER,
  timestamp INTEGER NOT NULL
)`,
  `CREATE TRIGGER IF NOT EXISTS kv_changes_insert AFTER INSERT ON kv
  BEGIN ${LOG_ROW} VALUES ('set', NEW.grp, NEW.key, NEW.value, NEW.expires_at, ${NOW_MS}); END`,
  // A row that changes group or key (hand-written SQL only) leaves its old
  // place: log that as a delete before the set.
  `CREATE TRIGGER IF NOT EXISTS kv_changes_update AFTER UPDATE ON kv
  BEGIN
    ${LOG_ROW} SELECT 'delete', OLD.grp, OLD.key, NULL, NULL, ${NOW_MS}
      WHERE OLD.grp IS NOT NEW.grp OR OLD.key IS NOT NEW.key;
    ${LOG_ROW} VALUES ('set', NEW.grp, NEW.key, NEW.value, NEW.expires_at, ${NOW_MS});
  END`,
  // Other writers (the Go sibling's purge, the sqlite3 shell) say nothing
  // about why a row went: one that had expired by the wall clock is an
  // expiry. The Store corrects the type of its own rows before committing.
  `CREATE TRIGGER IF NOT EXISTS kv_changes_delete AFTER DELETE ON kv
  BEGIN ${LOG_ROW} VALUES (
    CASE WHEN OLD.expires_at IS NOT NULL AND OLD.expires_at <= ${NOW_MS}
      THEN 'expire' ELSE 'delete' END,
    OLD.grp, OLD.key, NULL, NULL, ${NOW_MS}); END`,
];

const CHANGE_FEED_OBJECTS = [
  "kv_changes",
  "kv_changes_insert",
  "kv_changes_update",
  "kv_changes_delete",
];

/**
 * Adds the change log table and its triggers to a file, once; later opens
 * find them without taking the write lock.
 *
 * @param db An open connection to a file store.
 */
export function enableChangeFeed(db: DatabaseSync): void {
  if (hasObjects(db, CHANGE_FEED_OBJECTS)) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const statement of CREATE_CHANGE_FEED) db.exec(statement);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

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
  const stats = db.prepare(
    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'kv_namespace_stats'",
  ).get();
  if (stats === undefined) {
    // Counted once from the rows already there; the triggers keep it after.
    db.exec(CREATE_NAMESPACE_STATS);
    db.exec(FILL_NAMESPACE_STATS);
  }
  for (const trigger of CREATE_NAMESPACE_TRIGGERS) db.exec(trigger);
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

// Changes happen inside one write transaction, so two processes opening the
// same new or pre-TTL file at once do not both try to create or alter it. A
// file that needs nothing is recognised without taking the write lock, so
// opening never waits for another connection's transaction.
function migrate(path: string, db: DatabaseSync): void {
  if (isCurrent(db)) return;
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

const SCHEMA_OBJECTS = [
  "kv_expires_at",
  "kv_namespace_stats",
  "kv_namespace_insert",
  "kv_namespace_delete",
  "kv_namespace_rename_old",
  "kv_namespace_rename_new",
];

function isCurrent(db: DatabaseSync): boolean {
  return columnsOf(db).some((c) => c.name === "expires_at") &&
    hasObjects(db, SCHEMA_OBJECTS);
}

function hasObjects(db: DatabaseSync, names: string[]): boolean {
  const row = db.prepare(
    `SELECT count(*) AS n FROM sqlite_schema WHERE name IN (${
      names.map(() => "?").join(", ")
    })`,
  ).get(...names);
  return row?.n === names.length;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
