/**
 * Opening a database file: connection pragmas, the data table shared with
 * the Go sibling in either of its two formats, the objects this module adds
 * to it (expiry index, namespace counts, change log), and keeping up when
 * another program changes the table underneath a running store.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { StoreError } from "./errors.ts";
import { ENTRIES_TABLE, KV_TABLE, type TableNames } from "./_sql.ts";
import {
  connect,
  connectReadOnly,
  hasFrames,
  isReadOnlyError,
  MEMORY_PATH,
} from "./_connect.ts";

export { connectReadOnly, MEMORY_PATH };

/** How a database is opened; every field is already validated. */
export interface OpenOptions {
  /** `PRAGMA busy_timeout`, in milliseconds. */
  busyTimeoutMs: number;
  /** `PRAGMA synchronous` for file-backed stores. */
  durability: "normal" | "full";
  /**
   * `true`: open read-only; `false`: refuse a file that cannot be written;
   * `undefined`: read-only when the file cannot be written.
   */
  readOnly?: boolean | undefined;
}

/** An open connection and the table its rows live in. */
export interface OpenDatabase {
  /** The connection. */
  db: DatabaseSync;
  /** The data table found or created. */
  schema: TableNames;
  /**
   * Why the connection is read-only: `"option"` (asked for), `"file"` (the
   * file or its folder cannot be written); `undefined` when it writes.
   */
  readOnly?: "option" | "file";
}

const createTable = (s: TableNames) =>
  `CREATE TABLE IF NOT EXISTS ${s.table} (
  ${s.group} TEXT NOT NULL,
  ${s.key} TEXT NOT NULL,
  ${s.value} TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (${s.group}, ${s.key})
)`;

// Partial, so keys without expiry (most of them) cost nothing in the index,
// and purging is a range scan over the expired rows only.
const createExpiryIndex = (s: TableNames) =>
  `CREATE INDEX IF NOT EXISTS ${s.table}_expires_at ON ${s.table} (expires_at) WHERE expires_at IS NOT NULL`;

// Live-key quotas of namespaced views must not count a namespace's rows on
// every write, so triggers keep per-namespace row and group counts. Triggers
// live in the file, so writes by the Go sibling or the sqlite3 shell keep the
// counts right too. A namespace is the part of a group before its first ':'.
// The counts table keeps its name whichever table the rows are in.
const NAMESPACE_OF = (column: string) =>
  `substr(${column}, 1, instr(${column}, ':') - 1)`;

const CREATE_NAMESPACE_STATS = `CREATE TABLE IF NOT EXISTS kv_namespace_stats (
  ns TEXT PRIMARY KEY,
  keys INTEGER NOT NULL,
  groups INTEGER NOT NULL
) WITHOUT ROWID`;

const fillNamespaceStats = (s: TableNames) =>
  `INSERT INTO kv_namespace_stats (ns, keys, groups)
  SELECT ${NAMESPACE_OF(s.group)} AS ns, count(*), count(DISTINCT ${s.group})
  FROM ${s.table} WHERE instr(${s.group}, ':') > 1 GROUP BY ns`;

// A row added to a group that had no other row adds a group; a row removed
// from a group that is left empty removes one.
const namespaceInsert = (s: TableNames) =>
  `INSERT INTO kv_namespace_stats (ns, keys, groups)
    VALUES (${NAMESPACE_OF(`NEW.${s.group}`)}, 1,
      NOT EXISTS (SELECT 1 FROM ${s.table} WHERE ${s.group} = NEW.${s.group} AND rowid <> NEW.rowid))
    ON CONFLICT (ns) DO UPDATE SET keys = keys + 1, groups = groups + excluded.groups;`;
const namespaceDelete = (s: TableNames) =>
  `UPDATE kv_namespace_stats SET keys = keys - 1,
      groups = groups - NOT EXISTS (SELECT 1 FROM ${s.table} WHERE ${s.group} = OLD.${s.group})
    WHERE ns = ${NAMESPACE_OF(`OLD.${s.group}`)};`;

const namespaceTriggers = (s: TableNames): [string, string][] => {
  const t = s.table;
  const g = s.group;
  return [
    [
      `${t}_namespace_insert`,
      `AFTER INSERT ON ${t} WHEN instr(NEW.${g}, ':') > 1
  BEGIN ${namespaceInsert(s)} END`,
    ],
    [
      `${t}_namespace_delete`,
      `AFTER DELETE ON ${t} WHEN instr(OLD.${g}, ':') > 1
  BEGIN ${namespaceDelete(s)} END`,
    ],
    // Only hand-written SQL renames rows; count it as a delete and an insert.
    [
      `${t}_namespace_rename_old`,
      `AFTER UPDATE OF ${g} ON ${t}
  WHEN OLD.${g} IS NOT NEW.${g} AND instr(OLD.${g}, ':') > 1
  BEGIN ${namespaceDelete(s)} END`,
    ],
    [
      `${t}_namespace_rename_new`,
      `AFTER UPDATE OF ${g} ON ${t}
  WHEN OLD.${g} IS NOT NEW.${g} AND instr(NEW.${g}, ':') > 1
  BEGIN ${namespaceInsert(s)} END`,
    ],
  ];
};

// The change feed: every committed change to the data table, by any
// connection, is appended here by triggers, in the writer's own transaction.
// seq is the rowid: the newest row is never trimmed, so a new row always gets
// a larger seq, and contiguous seqs tell a reader it missed nothing. The log
// keeps its name and columns whichever table the rows are in, so it carries
// on across a move from kv to entries.
/** Milliseconds since the epoch by SQLite's clock, as the triggers write. */
export const NOW_MS =
  "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
const LOG_ROW =
  "INSERT INTO kv_changes (type, grp, key, value, expires_at, timestamp)";

const CREATE_CHANGE_LOG = `CREATE TABLE IF NOT EXISTS kv_changes (
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  grp TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT,
  expires_at INTEGER,
  timestamp INTEGER NOT NULL
)`;

const changeTriggers = (s: TableNames): [string, string][] => {
  const { table: t, group: g, key: k, value: v } = s;
  return [
    [
      `${t}_changes_insert`,
      `AFTER INSERT ON ${t}
  BEGIN ${LOG_ROW} VALUES ('set', NEW.${g}, NEW.${k}, NEW.${v}, NEW.expires_at, ${NOW_MS}); END`,
    ],
    // A row that changes group or key (hand-written SQL only) leaves its old
    // place: log that as a delete before the set.
    [
      `${t}_changes_update`,
      `AFTER UPDATE ON ${t}
  BEGIN
    ${LOG_ROW} SELECT 'delete', OLD.${g}, OLD.${k}, NULL, NULL, ${NOW_MS}
      WHERE OLD.${g} IS NOT NEW.${g} OR OLD.${k} IS NOT NEW.${k};
    ${LOG_ROW} VALUES ('set', NEW.${g}, NEW.${k}, NEW.${v}, NEW.expires_at, ${NOW_MS});
  END`,
    ],
    // Other writers (the Go sibling's purge, the sqlite3 shell) say nothing
    // about why a row went: one that had expired by the wall clock is an
    // expiry. The Store corrects the type of its own rows before committing.
    [
      `${t}_changes_delete`,
      `AFTER DELETE ON ${t}
  BEGIN ${LOG_ROW} VALUES (
    CASE WHEN OLD.expires_at IS NOT NULL AND OLD.expires_at <= ${NOW_MS}
      THEN 'expire' ELSE 'delete' END,
    OLD.${g}, OLD.${k}, NULL, NULL, ${NOW_MS}); END`,
    ],
  ];
};

const createTriggers = (db: DatabaseSync, triggers: [string, string][]) => {
  for (const [name, body] of triggers) {
    db.exec(`CREATE TRIGGER IF NOT EXISTS ${name} ${body}`);
  }
};

const names = (triggers: [string, string][]) => triggers.map(([name]) => name);

// Whoever writes (a store with the feed off, the Go sibling, the shell), the
// log trims itself: every 64th row drops the rows more than the file's
// retention behind it. Stores with the feed on also trim by age on a timer.
// These live on the log, so they survive a move of the data table.
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

const changeFeedObjects = (schema: TableNames) => [
  "kv_changes",
  ...names(changeTriggers(schema)),
  "kv_changes_config",
  "kv_changes_trim",
];

/**
 * Adds the change log table, its triggers on the data table and its trimming
 * to a file, once, and sets the file's row retention; later opens with the
 * same retention find everything in place without taking the write lock.
 *
 * @param db An open connection to a file store.
 * @param schema The data table.
 * @param maxRows The most rows the log keeps, whoever writes.
 */
export function enableChangeFeed(
  db: DatabaseSync,
  schema: TableNames,
  maxRows: number,
): void {
  if (hasObjects(db, changeFeedObjects(schema))) {
    const row = db.prepare("SELECT max_rows FROM kv_changes_config").get();
    if (row?.max_rows === maxRows) return;
  }
  writeTransaction(db, () => {
    db.exec(CREATE_CHANGE_LOG);
    createTriggers(db, changeTriggers(schema));
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
 * @param schema The data table.
 */
export function disableChangeFeed(db: DatabaseSync, schema: TableNames): void {
  writeTransaction(db, () => {
    for (
      const trigger of [...names(changeTriggers(schema)), "kv_changes_trim"]
    ) {
      db.exec(`DROP TRIGGER IF EXISTS ${trigger}`);
    }
    db.exec("DROP TABLE IF EXISTS kv_changes");
    db.exec("DROP TABLE IF EXISTS kv_changes_config");
  });
}

interface ColumnInfo {
  name: string;
  pk: number;
}

/**
 * Opens (creating when missing) the database at `path`, finds or creates
 * its data table, and sets the connection up: WAL, `busy_timeout` and
 * `synchronous` for files. A file with an `entries` table uses it; a file
 * with only `kv` keeps it (go-store up to v0.2.0 reads it); a file with both
 * gets `kv` merged into `entries` as go-store does (`INSERT OR IGNORE`, so
 * `entries` wins, then `DROP TABLE kv`), in one transaction; a new file gets
 * `entries`. Statements on the data table must then be prepared through
 * {@linkcode prepareRows}: any other compilation of one, including SQLite's
 * own re-preparation after another connection changed the schema, fails
 * with an error {@linkcode isSchemaChange} recognises.
 *
 * @param path A file path or `":memory:"`.
 * @param options Validated connection settings.
 * @returns The open connection and its data table.
 * @throws {StoreError} When the file cannot be opened, is not a SQLite
 * database, or holds a `kv` or `entries` table of another shape; the message
 * names the path and the file is not modified.
 *
 * @example Open an in-memory database
 * ```ts
 * import { openDatabase, prepareRows } from "./schema.ts";
 * import assert from "node:assert/strict";
 *
 * const { db, schema } = openDatabase(":memory:", {
 *   busyTimeoutMs: 5000,
 *   durability: "normal",
 * });
 * assert.equal(schema.table, "entries");
 * const { count } = prepareRows(db, { count: "SELECT count(*) FROM entries" });
 * assert.deepEqual(count.get(), [0]);
 * db.close();
 * ```
 */
export function openDatabase(path: string, options: OpenOptions): OpenDatabase {
  if (options.readOnly === true) return openReadOnly(path, options, "option");
  const db = connect(path, true, () => new DatabaseSync(path));
  try {
    // SQLite's own busy handler sleeps up to 100 ms between tries, which
    // loses every race against busy writers; it only covers the first slice
    // and retryBusy() the rest, in short random pauses.
    db.exec(
      `PRAGMA busy_timeout = ${Math.min(options.busyTimeoutMs, BUSY_SLICE_MS)}`,
    );
    // Inspect before anything writes, so a file we refuse stays untouched
    // (switching to WAL alone rewrites the header).
    retryBusy(options.busyTimeoutMs, () => inspect(path, db, true));
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
    const schema = retryBusy(
      options.busyTimeoutMs,
      () => settleSchema(path, db, { create: true, changeFeed: false }),
    );
    guard(db);
    return { db, schema };
  } catch (error) {
    db.close();
    if (options.readOnly === undefined && isReadOnlyError(error)) {
      return openReadOnly(path, options, "file");
    }
    if (error instanceof StoreError) throw error;
    throw new StoreError(`Cannot open store at ${path}: ${message(error)}`, {
      cause: error,
    });
  }
}

// A read-only connection writes nothing: no WAL switch, no table, trigger
// or column added. What the file lacks for the store's reads is made up by
// temporary views, which live in the connection, not in the file.
function openReadOnly(
  path: string,
  options: OpenOptions,
  reason: "option" | "file",
): OpenDatabase {
  const db = connectReadOnly(path);
  try {
    db.exec(
      `PRAGMA busy_timeout = ${Math.min(options.busyTimeoutMs, BUSY_SLICE_MS)}`,
    );
    retryBusy(options.busyTimeoutMs, () => inspect(path, db, false));
    const schema = readSchema(path, db);
    guard(db);
    return { db, schema, readOnly: reason };
  } catch (error) {
    db.close();
    if (error instanceof StoreError) throw error;
    throw new StoreError(`Cannot open store at ${path}: ${message(error)}`, {
      cause: error,
    });
  }
}

/**
 * Finds the data table of a read-only connection and shows the store's
 * reads what opening it for writing would make of it: a table without
 * `expires_at`, or `kv` beside `entries` (merged as go-store does), is read
 * through a temporary view of the same name, which shadows the file's.
 *
 * @param path The path, for messages.
 * @param db A read-only connection.
 * @returns The data table, or the view standing for it.
 * @throws {StoreError} When the file holds no data table.
 */
export function readSchema(path: string, db: DatabaseSync): TableNames {
  db.exec("DROP VIEW IF EXISTS temp.entries");
  db.exec("DROP VIEW IF EXISTS temp.kv");
  const tables = dataTables(db);
  const [first] = tables;
  if (first === undefined) {
    throw new StoreError(
      `Cannot open store at ${path}: the file holds no store table (kv or entries), and a read-only store cannot create one`,
    );
  }
  const expiry = (t: TableNames) =>
    columnsOf(db, t).some((c) => c.name.toLowerCase() === "expires_at")
      ? "expires_at"
      : "NULL";
  const select = (t: TableNames) =>
    `SELECT ${t.group}, ${t.key}, ${t.value}, ${
      expiry(t)
    } AS expires_at FROM main.${t.table}`;
  if (tables.length === 1) {
    if (expiry(first) === "NULL") {
      db.exec(`CREATE TEMP VIEW ${first.table} AS ${select(first)}`);
    }
    return first;
  }
  db.exec(
    `CREATE TEMP VIEW entries AS ${select(ENTRIES_TABLE)} UNION ALL ${
      select(KV_TABLE)
    } WHERE NOT EXISTS (SELECT 1 FROM main.entries WHERE group_name = kv.grp AND entry_key = kv.key)`,
  );
  return ENTRIES_TABLE;
}

/**
 * Creates the data table, its expiry index, the namespace counts and their
 * triggers when missing. Counts whose triggers are missing (another
 * program's migration dropped them with their table) are counted afresh.
 *
 * @param db An open connection, inside a write transaction when other
 * connections may create them at the same time.
 * @param schema The data table.
 * @returns `schema`.
 */
export function createTables(db: DatabaseSync, schema: TableNames): TableNames {
  return allowing(db, () => {
    db.exec(createTable(schema));
    db.exec(createExpiryIndex(schema));
    const triggers = namespaceTriggers(schema);
    if (!hasObjects(db, ["kv_namespace_stats", ...names(triggers)])) {
      // Counted once from the rows already there; the triggers keep it after.
      db.exec(CREATE_NAMESPACE_STATS);
      db.exec("DELETE FROM kv_namespace_stats");
      db.exec(fillNamespaceStats(schema));
    }
    createTriggers(db, triggers);
    return schema;
  });
}

/** What {@linkcode settleSchema} may do. */
export interface SettleOptions {
  /** Create `entries` when the file has no data table (a new file). */
  create: boolean;
  /** Keep the change log's triggers on the data table. */
  changeFeed: boolean;
}

/**
 * Finds the data table and brings it and this module's objects up to date,
 * in one write transaction (the running one, if any): adds a missing
 * `expires_at` column, merges a `kv` table into `entries` as go-store does,
 * and rebuilds triggers and counts another program's migration dropped.
 *
 * @param path The path, for messages.
 * @param db An open connection.
 * @param options Whether to create a table, and the change feed's triggers.
 * @returns The data table.
 * @throws {StoreError} When a table has another shape, or (without
 * `create`) the file has no data table any more.
 */
export function settleSchema(
  path: string,
  db: DatabaseSync,
  options: SettleOptions,
): TableNames {
  const found = dataTables(db);
  if (found.length === 1 && isCurrent(db, found[0] as TableNames, options)) {
    return found[0] as TableNames;
  }
  return allowing(db, () =>
    writeTransaction(db, () => {
      const tables = dataTables(db);
      for (const table of tables) checkShape(path, db, table);
      if (tables.length === 0 && !options.create) {
        throw new StoreError(
          `Cannot use store at ${path}: its data table (kv or entries) was dropped by another connection`,
        );
      }
      for (const table of tables) addExpiry(db, table);
      const merge = tables.length === 2;
      if (merge) {
        db.exec(createTable(ENTRIES_TABLE));
        db.exec(
          `INSERT OR IGNORE INTO entries (group_name, entry_key, entry_value, expires_at)
          SELECT grp, key, value, expires_at FROM kv`,
        );
        db.exec("DROP TABLE kv");
      }
      const schema = tables.length === 1
        ? tables[0] as TableNames
        : ENTRIES_TABLE;
      // Both tables' triggers may have counted rows: count them afresh.
      if (merge) db.exec("DROP TABLE IF EXISTS kv_namespace_stats");
      createTables(db, schema);
      if (options.changeFeed) {
        db.exec(CREATE_CHANGE_LOG);
        createTriggers(db, changeTriggers(schema));
      }
      return schema;
    }));
}

// The data tables a file holds, entries first.
function dataTables(db: DatabaseSync): TableNames[] {
  const rows = db.prepare(
    "SELECT lower(name) AS name FROM sqlite_schema WHERE lower(name) IN ('kv', 'entries')",
  ).all() as { name: string }[];
  const has = (name: string) => rows.some((row) => row.name === name);
  const tables: TableNames[] = [];
  if (has("entries")) tables.push(ENTRIES_TABLE);
  if (has("kv")) tables.push(KV_TABLE);
  return tables;
}

function addExpiry(db: DatabaseSync, schema: TableNames): void {
  if (
    !columnsOf(db, schema).some((c) => c.name.toLowerCase() === "expires_at")
  ) {
    db.exec(`ALTER TABLE ${schema.table} ADD COLUMN expires_at INTEGER`);
  }
}

// Runs fn in a write transaction: the running one, or a new one committed
// when fn returns.
function writeTransaction<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) return fn();
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

// SQLite's authorizer codes (sqlite3.h); node:sqlite's type declarations
// lack most of them.
const SQLITE_OK = 0;
const SQLITE_DENY = 1;
// The actions that touch a table's rows: SQLITE_DELETE, SQLITE_INSERT,
// SQLITE_READ and SQLITE_UPDATE.
const ROW_ACTIONS: ReadonlySet<number> = new Set([9, 18, 20, 23]);

// Connections whose statements on the data table compile now.
const compiling = new WeakSet<DatabaseSync>();

function allowing<T>(db: DatabaseSync, fn: () => T): T {
  if (compiling.has(db)) return fn();
  compiling.add(db);
  try {
    return fn();
  } finally {
    compiling.delete(db);
  }
}

// A statement prepared before another connection changed the schema is
// compiled again by SQLite at its next step, silently, against whatever the
// file now holds: a kv table that go-store dropped and an older go-store
// created again, empty, would read as an empty store. Refusing every
// compilation of a statement on the data table outside prepareRows() makes
// that step fail instead, so the store can look at the file again. Costs
// nothing per step: the authorizer runs only while compiling.
function guard(db: DatabaseSync): void {
  (db as DatabaseSync & {
    setAuthorizer(fn: (action: number, table: string | null) => number): void;
  }).setAuthorizer((action, table) =>
    !compiling.has(db) &&
      (table?.toLowerCase() === "kv" || table?.toLowerCase() === "entries") &&
      ROW_ACTIONS.has(action)
      ? SQLITE_DENY
      : SQLITE_OK
  );
}

/**
 * Whether a statement failed because the data table changed underneath it:
 * another connection dropped it (go-store moving `kv` into `entries`) or
 * changed the schema, so the statement would compile against something else.
 * The store then settles the schema again and prepares its statements anew.
 *
 * @param error Anything thrown by a statement.
 * @returns `true` when the statements must be prepared again.
 */
export function isSchemaChange(error: unknown): boolean {
  const cause = error instanceof StoreError ? error.cause : error;
  if (!(cause instanceof Error)) return false;
  if (cause instanceof SchemaMovedError) return true;
  // SQLITE_AUTH: our own authorizer refused a silent re-preparation.
  if ((cause as { errcode?: number }).errcode === 23) return true;
  return /^no such table: (main\.)?(kv|entries)$/.test(cause.message);
}

function columnsOf(db: DatabaseSync, schema: TableNames): ColumnInfo[] {
  return db.prepare(`PRAGMA table_info(${schema.table})`)
    .all() as unknown as ColumnInfo[];
}

// What this module and the Go sibling write into: anything else would make
// writes fail, values change type, or keys collide, so it is refused before
// a byte of the file changes.
function checkShape(path: string, db: DatabaseSync, schema: TableNames): void {
  const { table: name, group, key, value } = schema;
  const refuse = (why: string): never => {
    throw new StoreError(`Cannot open store at ${path}: table ${name} ${why}`);
  };
  const table = db.prepare(`PRAGMA table_list(${name})`).get() as
    | { type: string; wr: number }
    | undefined;
  if (table === undefined) return;
  if (table.type !== "table") refuse(`is a ${table.type}, not a table`);
  if (table.wr !== 0) refuse("is a WITHOUT ROWID table");
  const columns = db.prepare(`PRAGMA table_xinfo(${name})`)
    .all() as unknown as {
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
  for (const wanted of [group, key, value]) {
    const found = column(wanted);
    if (found === undefined) {
      refuse(
        `has no column ${wanted}, so it was not written by this module or the Go sibling`,
      );
    } else if (found.type.toUpperCase() !== "TEXT") {
      refuse(`column ${wanted} must be TEXT, not ${found.type || "untyped"}`);
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
  if (keyColumns.join() !== `${group},${key}` || column(group)?.pk !== 1) {
    refuse(`must have PRIMARY KEY (${group}, ${key})`);
  }
  for (const c of columns) {
    if (
      ![group, key, value, "expires_at"].includes(c.name.toLowerCase()) &&
      c.notnull === 1 && c.dflt_value === null && c.hidden === 0
    ) {
      refuse(`has a column ${c.name} that is NOT NULL without a default`);
    }
  }
  const index = (db.prepare(`PRAGMA index_list(${name})`).all() as unknown as {
    name: string;
    origin: string;
  }[]).find((i) => i.origin === "pk");
  const collations = index === undefined ? [] : (db.prepare(
    `PRAGMA index_xinfo(${JSON.stringify(index.name)})`,
  ).all() as unknown as { key: number; cid: number; coll: string }[])
    .filter((c) => c.key === 1 && c.cid >= 0).map((c) => c.coll);
  if (collations.some((coll) => coll !== "BINARY")) {
    refuse(`must compare ${group} and ${key} with the BINARY collation`);
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

function inspect(path: string, db: DatabaseSync, probe: boolean): void {
  db.exec("BEGIN");
  try {
    for (const schema of [KV_TABLE, ENTRIES_TABLE]) {
      checkShape(path, db, schema);
    }
    if (path !== MEMORY_PATH) checkLength(path, db);
  } finally {
    db.exec("COMMIT");
  }
  if (path === MEMORY_PATH || !probe) return;
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
  allowing(db, () => {
    for (const name of Object.keys(sql) as K[]) {
      const statement = db.prepare(sql[name]) as StatementSync & {
        setReturnArrays(enabled: boolean): void;
      };
      statement.setReturnArrays(true);
      statements[name] = statement as unknown as RowStatement;
    }
  });
  return statements;
}

/**
 * Thrown when a statement prepared on first use would compile against
 * another schema than the one its siblings were prepared for;
 * {@linkcode isSchemaChange} recognises it.
 */
export class SchemaMovedError extends Error {
  override name = "SchemaMovedError";
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
function isCurrent(
  db: DatabaseSync,
  schema: TableNames,
  options: SettleOptions,
): boolean {
  const objects = [
    `${schema.table}_expires_at`,
    "kv_namespace_stats",
    ...names(namespaceTriggers(schema)),
  ];
  if (options.changeFeed) {
    objects.push("kv_changes", ...names(changeTriggers(schema)));
  }
  return columnsOf(db, schema).some((c) =>
    c.name.toLowerCase() === "expires_at"
  ) && hasObjects(db, objects);
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
