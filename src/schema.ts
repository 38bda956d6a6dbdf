/**
 * Opening a database file: connection pragmas, the `kv` table shared with the
 * Go sibling, and the migration of files written before TTL support.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
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

// Whoever writes (a store with the feed off, the Go sibling, the shell), the
// log trims itself: every 64th row drops the rows more than the file's
// retention behind it. Stores with the feed on also trim by age on a timer.
const CREATE_CHANGE_TRIM = [
  `CREATE TABLE IF NOT EXISTS kv_changes_config (
  max_rows INTEGER NOT NULL
)`,
  `CREATE TRIGGER IF NOT EXISTS kv_changes_trim AFTER INSERT ON kv_changes
  WHEN NEW.seq % 64 = 0
  BEGIN
    DELETE FROM kv_changes
    WHERE seq <= NEW.seq - max((SELECT max_rows FROM kv_changes_config LIMIT 1), 1);
  END`,
];

const CHANGE_FEED_OBJECTS = [
  "kv_changes",
  "kv_changes_insert",
  "kv_changes_update",
  "kv_changes_delete",
  "kv_changes_config",
  "kv_changes_trim",
];

/**
 * Adds the change log table and its triggers to a file, once, and sets the
 * file's row retention; later opens with the same retention find everything
 * in place without taking the write lock.
 *
 * @param db An open connection to a file store.
 * @param maxRows The most rows the log keeps, whoever writes.
 */
export function enableChangeFeed(db: DatabaseSync, maxRows: number): void {
  if (hasObjects(db, CHANGE_FEED_OBJECTS)) {
    const row = db.prepare("SELECT max_rows FROM kv_changes_config").get();
    if (row?.max_rows === maxRows) return;
  }
  inWriteTransaction(db, () => {
    for (const statement of CREATE_CHANGE_FEED) db.exec(statement);
    for (const statement of CREATE_CHANGE_TRIM) db.exec(statement);
    db.exec("DELETE FROM kv_changes_config");
    db.prepare("INSERT INTO kv_changes_config (max_rows) VALUES (?)").run(
      maxRows,
    );
  });
}

/**
 * Removes the change log and its triggers from a file, so that no writer
 * logs changes any more.
 *
 * @param db An open connection to a file store.
 */
export function disableChangeFeed(db: DatabaseSync): void {
  inWriteTransaction(db, () => {
    for (
      const trigger of [
        "kv_changes_insert",
        "kv_changes_update",
        "kv_changes_delete",
        "kv_changes_trim",
      ]
    ) db.exec(`DROP TRIGGER IF EXISTS ${trigger}`);
    db.exec("DROP TABLE IF EXISTS kv_changes");
    db.exec("DROP TABLE IF EXISTS kv_changes_config");
  });
}

function inWriteTransaction(db: DatabaseSync, fn: () => void): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    fn();
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
    if (error instanceof StoreError) throw error;
    throw new StoreError(`Cannot open store at ${path}: ${message(error)}`, {
      cause: error,
    });
  }
  try {
    // SQLite's own busy handler sleeps up to 100 ms between tries, which
    // loses every race against busy writers; it only covers the first slice
    // and retryBusy() the rest, in short random pauses.
    db.exec(
      `PRAGMA busy_timeout = ${Math.min(options.busyTimeoutMs, BUSY_SLICE_MS)}`,
    );
    // Inspect before anything writes, so a file we refuse stays untouched
    // (switching to WAL alone rewrites the header).
    retryBusy(options.busyTimeoutMs, () => inspect(path, db));
    if (path !== MEMORY_PATH) {
      // Switching the journal takes a lock SQLite does not wait for.
      const mode = retryBusy(options.busyTimeoutMs, () => {
        const current = db.prepare("PRAGMA journal_mode").get();
        return current?.journal_mode === "wal"
          ? current
          : db.prepare("PRAGMA journal_mode = WAL").get();
      });
      if (mode?.journal_mode !== "wal") {
        throw new StoreError(
          `Cannot open store at ${path}: the file cannot be switched to WAL mode (journal_mode is ${mode?.journal_mode})`,
        );
      }
      db.exec(`PRAGMA synchronous = ${options.durability.toUpperCase()}`);
    }
    retryBusy(options.busyTimeoutMs, () => migrate(path, db));
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

// What this module and the Go sibling write into: anything else would make
// writes fail, values change type, or keys collide, so it is refused before
// a byte of the file changes.
function checkShape(path: string, db: DatabaseSync): void {
  const refuse = (why: string): never => {
    throw new StoreError(`Cannot open store at ${path}: table kv ${why}`);
  };
  const table = db.prepare("PRAGMA table_list(kv)").get() as
    | { type: string; wr: number }
    | undefined;
  if (table === undefined) return;
  if (table.type !== "table") refuse(`is a ${table.type}, not a table`);
  if (table.wr !== 0) refuse("is a WITHOUT ROWID table");
  const columns = db.prepare("PRAGMA table_xinfo(kv)").all() as unknown as {
    name: string;
    type: string;
    notnull: number;
    dflt_value: unknown;
    pk: number;
    hidden: number;
  }[];
  // SQLite's column names ignore case.
  const column = (name: string) =>
    columns.find((c) => c.name.toLowerCase() === name);
  for (const name of ["grp", "key", "value"]) {
    const found = column(name);
    if (found === undefined) {
      refuse(
        `has no column ${name}, so it was not written by this module or the Go sibling`,
      );
    } else if (found.type.toUpperCase() !== "TEXT") {
      refuse(`column ${name} must be TEXT, not ${found.type || "untyped"}`);
    }
  }
  const expires = column("expires_at");
  if (
    expires !== undefined &&
    !["INTEGER", ""].includes(expires.type.toUpperCase())
  ) {
    refuse(`column expires_at must be INTEGER, not ${expires.type}`);
  }
  const keyColumns = columns.filter((c) => c.pk > 0).map((c) =>
    c.name.toLowerCase()
  );
  if (keyColumns.join() !== "grp,key" || column("grp")?.pk !== 1) {
    refuse("must have PRIMARY KEY (grp, key)");
  }
  for (const c of columns) {
    if (
      !["grp", "key", "value", "expires_at"].includes(c.name.toLowerCase()) &&
      c.notnull === 1 && c.dflt_value === null && c.hidden === 0
    ) {
      refuse(`has a column ${c.name} that is NOT NULL without a default`);
    }
  }
  const index = (db.prepare("PRAGMA index_list(kv)").all() as unknown as {
    name: string;
    origin: string;
  }[]).find((i) => i.origin === "pk");
  const collations = index === undefined ? [] : (db.prepare(
    `PRAGMA index_xinfo(${JSON.stringify(index.name)})`,
  ).all() as unknown as { key: number; cid: number; coll: string }[])
    .filter((c) => c.key === 1 && c.cid >= 0).map((c) => c.coll);
  if (collations.some((coll) => coll !== "BINARY")) {
    refuse("must compare grp and key with the BINARY collation");
  }
}

// A file cut inside its last page opens, and one value reads back silently
// wrong; judged from the header (as SQLite reads it) against the file's
// length. Runs under a read lock, so no other connection is halfway through
// writing the file; only stat() touches it, since opening and closing a file
// SQLite has open would drop SQLite's POSIX locks for the whole process.
function checkLength(path: string, db: DatabaseSync): void {
  const pageSize = db.prepare("PRAGMA page_size").get()?.page_size as number;
  const counted = db.prepare("PRAGMA page_count").get()?.page_count as number;
  // SQLite follows a symbolic link and keeps its WAL beside the target.
  const real = Deno.realPathSync(path);
  const size = Deno.statSync(real).size;
  // With frames in the WAL, pages may not have reached the file yet.
  if (hasFrames(`${real}-wal`)) return;
  if (size % pageSize !== 0 || counted * pageSize > size) {
    throw new StoreError(
      `Cannot open store at ${path}: the file is truncated (${size} bytes, its header counts ${counted} pages of ${pageSize} bytes)`,
    );
  }
}

function hasFrames(walPath: string): boolean {
  try {
    return Deno.statSync(walPath).size > 32;
  } catch {
    return false;
  }
}

function inspect(path: string, db: DatabaseSync): void {
  db.exec("BEGIN");
  try {
    checkShape(path, db);
    if (path !== MEMORY_PATH) checkLength(path, db);
  } finally {
    db.exec("COMMIT");
  }
  if (path === MEMORY_PATH) return;
  // SQLite opens a file it may not write read-only without a word. Writing
  // the header's user_version back unchanged, in a transaction rolled back,
  // tells without writing anything. It never waits: when another connection
  // holds the write lock the probe is skipped (a read-only file would then
  // fail at its first write) rather than make opening wait for a writer.
  // (The file itself is never opened here: closing any descriptor of a file
  // drops the POSIX locks that SQLite connections of this process hold.)
  const timeout = db.prepare("PRAGMA busy_timeout").get()?.timeout;
  db.exec("PRAGMA busy_timeout = 0");
  try {
    db.exec("BEGIN IMMEDIATE");
  } catch (error) {
    if (isBusy(error)) return;
    throw error;
  } finally {
    db.exec(`PRAGMA busy_timeout = ${Number(timeout)}`);
  }
  try {
    const version = db.prepare("PRAGMA user_version").get()?.user_version;
    db.exec(`PRAGMA user_version = ${Number(version)}`);
  } catch (error) {
    if (error instanceof Error && /readonly/.test(error.message)) {
      throw new StoreError(
        `Cannot open store at ${path}: the file is read-only (${error.message})`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    db.exec("ROLLBACK");
  }
}

/** A row read as an array, in the statement's column order. */
export type Row = unknown[];
/** What the store binds to a statement's parameters. */
export type Param = null | number | string | Uint8Array;
/** A prepared statement that returns rows as arrays. */
export interface RowStatement {
  /** The first row, or `undefined`. */
  get(...params: Param[]): Row | undefined;
  /** Every row. */
  all(...params: Param[]): Row[];
  /** Every row, one at a time. */
  iterate(...params: Param[]): IterableIterator<Row>;
  /** Runs a write; `changes` counts the rows it changed. */
  run(...params: Param[]): { changes: number | bigint };
}

/**
 * Prepares each statement of `sql` once, returning rows as arrays: measurably
 * faster than row objects. (node:sqlite's type declarations predate
 * `setReturnArrays()`.)
 *
 * @param db An open connection.
 * @param sql Statements by name.
 * @returns The prepared statements, by the same names.
 */
export function prepareRows<K extends string>(
  db: DatabaseSync,
  sql: Record<K, string>,
): Record<K, RowStatement> {
  const statements = {} as Record<K, RowStatement>;
  for (const name of Object.keys(sql) as K[]) {
    const statement = db.prepare(sql[name]) as StatementSync & {
      setReturnArrays(enabled: boolean): void;
    };
    statement.setReturnArrays(true);
    statements[name] = statement as unknown as RowStatement;
  }
  return statements;
}

/** How long SQLite's own busy handler waits before retryBusy() takes over. */
const BUSY_SLICE_MS = 10;
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * Whether an error is SQLite's SQLITE_BUSY ("database is locked"), directly
 * or as the cause of a {@linkcode StoreError}.
 *
 * @param error Anything thrown.
 * @returns `true` for a busy database.
 */
export function isBusy(error: unknown): boolean {
  const cause = error instanceof StoreError ? error.cause : error;
  // node:sqlite reports SQLITE_BUSY with SQLite's message and no code.
  return cause instanceof Error && cause.message === "database is locked";
}

/**
 * Runs `fn`, and again after a short random pause while it fails with
 * SQLITE_BUSY, until `timeoutMs` have passed since the first try. The pause
 * blocks, as SQLite's own busy wait does, since callers are synchronous.
 *
 * @param timeoutMs How long to keep trying.
 * @param fn A statement (or a few) that is safe to run again.
 * @returns What `fn` returned.
 * @throws The last busy error when the time is up; any other error at once.
 */
export function retryBusy<T>(timeoutMs: number, fn: () => T): T {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return fn();
    } catch (error) {
      if (!isBusy(error) || performance.now() >= deadline) throw error;
      // Random, so that waiting writers do not retry in lockstep.
      Atomics.wait(SLEEPER, 0, 0, 0.5 + Math.random() * 3.5);
    }
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
    checkShape(path, db);
    const columns = columnsOf(db);
    if (
      columns.length > 0 &&
      !columns.some((c) => c.name.toLowerCase() === "expires_at")
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
  return columnsOf(db).some((c) => c.name.toLowerCase() === "expires_at") &&
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
