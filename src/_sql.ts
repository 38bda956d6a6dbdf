/**
 * The SQL of the data table, built once per connection from the names of the
 * table and its columns, and the key-range helpers that keep prefix scans on
 * the primary key.
 *
 * @module
 */

import { textColumn } from "./codec.ts";
import { counterSql, sumInRangeSql } from "./_counter.ts";

/** The data table's name and column names. */
export interface TableNames {
  /** The table. */
  readonly table: string;
  /** The group column. */
  readonly group: string;
  /** The key column. */
  readonly key: string;
  /** The value column. */
  readonly value: string;
}

/**
 * The table of go-store up to v0.2.0 (and of this module before it): rows
 * in `kv(grp, key, value, expires_at)`.
 */
export const KV_TABLE: TableNames = Object.freeze({
  table: "kv",
  group: "grp",
  key: "key",
  value: "value",
});

/**
 * The table of go-store v0.2.1 and later, which move a `kv` table into it
 * when they open a file; new files get this one.
 */
export const ENTRIES_TABLE: TableNames = Object.freeze({
  table: "entries",
  group: "group_name",
  key: "entry_key",
  value: "entry_value",
});

/** Rows per purge batch when the caller waits for the whole purge anyway. */
export const PURGE_BATCH = 1_000;

/**
 * In SQLite's ordering every BLOB sorts after every TEXT, so an empty BLOB is
 * an upper bound above any key while keeping the query an index range scan.
 */
export const ABOVE_ALL_TEXT: Uint8Array = new Uint8Array(0);

/**
 * The statements the store runs on the data table, by name.
 *
 * @param names The table and column names.
 * @returns SQL text by statement name.
 */
export function dataSql(names: TableNames) {
  const { table: T, group: G, key: K, value: V } = names;
  const live = "(expires_at IS NULL OR expires_at > ?)";
  const value = textColumn(V);
  const key = textColumn(K);
  const group = textColumn(G);
  const expired = "expires_at IS NOT NULL AND expires_at <= ?";
  // The batch size is bound (see `? + 0` below), so that the background
  // purge can size its batches to a time budget.
  const batch =
    `rowid IN (SELECT rowid FROM ${T} WHERE ${expired} LIMIT ? + 0)`;
  return {
    // get and getAll read plain text with its byte length (see codec.ts).
    get:
      `SELECT ${V}, expires_at, octet_length(${V}) FROM ${T} WHERE ${G} = ? AND ${K} = ?`,
    getBytes: `SELECT CAST(${V} AS BLOB) FROM ${T} WHERE ${G} = ? AND ${K} = ?`,
    expiry: `SELECT expires_at FROM ${T} WHERE ${G} = ? AND ${K} = ?`,
    count: `SELECT count(*) FROM ${T} WHERE ${G} = ? AND ${live}`,
    getAll:
      `SELECT ${K}, ${V}, octet_length(${K}) + octet_length(${V}) FROM ${T} WHERE ${G} = ? AND ${live} ORDER BY ${K}`,
    getAllBytes:
      `SELECT ${key}, ${value} FROM ${T} WHERE ${G} = ? AND ${live} ORDER BY ${K}`,
    // Prefix scans bind ABOVE_ALL_TEXT as the end when the prefix has none.
    // A bare `LIMIT ?` makes SQLite compile a statement again whenever the
    // bound limit changes, which the schema guard (see schema.ts) refuses;
    // `? + 0` is an expression, so the statement compiles once.
    countPrefix:
      `SELECT count(*) FROM ${T} WHERE ${G} >= ? AND ${G} < ? AND ${live}`,
    groupsPrefix:
      `SELECT DISTINCT ${group} FROM ${T} WHERE ${G} >= ? AND ${G} < ? AND ${live} ORDER BY ${G}`,
    groupHasLive: `SELECT 1 FROM ${T} WHERE ${G} = ? AND ${live} LIMIT 1`,
    namespaceStats: "SELECT keys, groups FROM kv_namespace_stats WHERE ns = ?",
    recountNamespace: `INSERT INTO kv_namespace_stats (ns, keys, groups)
    SELECT ?1, count(*), count(DISTINCT ${G}) FROM ${T} WHERE ${G} >= ?2 AND ${G} < ?3
    ON CONFLICT (ns) DO UPDATE SET keys = excluded.keys, groups = excluded.groups
    RETURNING keys, groups`,
    listFrom:
      `SELECT ${key}, ${value} FROM ${T} WHERE ${G} = ? AND ${K} >= ? AND ${K} < ? AND ${live} ORDER BY ${K} LIMIT ? + 0`,
    listAfter:
      `SELECT ${key}, ${value} FROM ${T} WHERE ${G} = ? AND ${K} > ? AND ${K} >= ? AND ${K} < ? AND ${live} ORDER BY ${K} LIMIT ? + 0`,
    listFromReverse:
      `SELECT ${key}, ${value} FROM ${T} WHERE ${G} = ? AND ${K} >= ? AND ${K} < ? AND ${live} ORDER BY ${K} DESC LIMIT ? + 0`,
    listBeforeReverse:
      `SELECT ${key}, ${value} FROM ${T} WHERE ${G} = ? AND ${K} >= ? AND ${K} < ? AND ${K} < ? AND ${live} ORDER BY ${K} DESC LIMIT ? + 0`,
    nextExpiry:
      `SELECT min(expires_at) FROM ${T} INDEXED BY ${T}_expires_at WHERE expires_at IS NOT NULL`,
    // Writes. Those that return rows are stepped to the end (all()), so that
    // an autocommit's COMMIT error is never lost.
    set: `INSERT INTO ${T} (${G}, ${K}, ${V}, expires_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (${G}, ${K}) DO UPDATE SET ${V} = excluded.${V}, expires_at = excluded.expires_at`,
    delete: `DELETE FROM ${T} WHERE ${G} = ? AND ${K} = ? RETURNING expires_at`,
    expireOne: `DELETE FROM ${T} WHERE ${G} = ? AND ${K} = ? AND ${expired}`,
    deleteGroup: `DELETE FROM ${T} WHERE ${G} = ?`,
    setExpiry:
      `UPDATE ${T} SET expires_at = ? WHERE ${G} = ? AND ${K} = ? AND ${live} RETURNING ${value}`,
    ...atomicSql(names),
    purge: `DELETE FROM ${T} WHERE ${batch}`,
    purgeReturning:
      `DELETE FROM ${T} WHERE ${batch} RETURNING ${group}, ${key}`,
    purgeRange:
      `DELETE FROM ${T} INDEXED BY ${T}_expires_at WHERE ${expired} AND ${G} >= ? AND ${G} < ? RETURNING ${group}, ${key}`,
    // Copies what the WAL holds into the file without waiting for anyone.
    checkpoint: "PRAGMA wal_checkpoint(PASSIVE)",
    // Any statement on the table, for noticing a changed schema.
    probe: `SELECT 1 FROM ${T} LIMIT 1`,
    begin: "BEGIN IMMEDIATE",
    commit: "COMMIT",
    rollback: "ROLLBACK",
  } as const;
}

// The atomic operations: each one statement, so one write transaction
// whatever other connections do. The upsert's WHERE leaves a live row alone:
// no write, no change counted, no trigger fired. Only what must hand a value
// back has a RETURNING clause, which costs SQLite a temporary table.
// Integers are cast, as a bound number may arrive as a REAL.
function atomicSql(names: TableNames) {
  const { table: T, group: G, key: K, value: V } = names;
  const live = "(expires_at IS NULL OR expires_at > ?)";
  // The same, on the clock bound as the fifth parameter.
  const liveAt = "(expires_at IS NULL OR expires_at > ?5)";
  return {
    increment: `INSERT INTO ${T} (${G}, ${K}, ${V}, expires_at)
    VALUES (?1, ?2, CAST(CAST(?3 AS INTEGER) AS TEXT), ?4)
    ON CONFLICT (${G}, ${K}) DO UPDATE SET
      ${V} = CASE WHEN ${liveAt} THEN CAST(CAST(${V} AS INTEGER) + CAST(?3 AS INTEGER) AS TEXT) ELSE excluded.${V} END,
      expires_at = CASE WHEN ${liveAt} THEN expires_at ELSE excluded.expires_at END
    WHERE NOT ${liveAt} OR (${counterSql(V)} AND ${
      sumInRangeSql(V, "CAST(?3 AS INTEGER)")
    })
    RETURNING ${V}, expires_at`,
    setIfAbsent:
      `INSERT INTO ${T} (${G}, ${K}, ${V}, expires_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (${G}, ${K}) DO UPDATE SET ${V} = excluded.${V}, expires_at = excluded.expires_at
    WHERE NOT ${liveAt}`,
    compareAndSet:
      `UPDATE ${T} SET ${V} = ?, expires_at = ? WHERE ${G} = ? AND ${K} = ? AND ${V} = ? AND ${live}`,
    compareAndDelete:
      `DELETE FROM ${T} WHERE ${G} = ? AND ${K} = ? AND ${V} = ? AND ${live}`,
    getAndDelete: `DELETE FROM ${T} WHERE ${G} = ? AND ${K} = ? RETURNING ${
      textColumn(V)
    }, expires_at`,
  } as const;
}

/** The statement names of {@linkcode dataSql}. */
export type DataStatement = keyof ReturnType<typeof dataSql>;

/**
 * The smallest string greater than every string starting with `prefix`, in
 * SQLite's BINARY order (UTF-8 bytes, which is code point order), so that
 * `col >= prefix AND col < end` is an index range scan.
 *
 * @param prefix Any well-formed string.
 * @returns The bound, or `undefined` when none exists (the prefix is all
 * U+10FFFF).
 */
export function prefixEnd(prefix: string): string | undefined {
  let rest = prefix;
  while (rest.length > 0) {
    const unit = rest.charCodeAt(rest.length - 1);
    const width = unit >= 0xdc00 && unit <= 0xdfff ? 2 : 1;
    const point = rest.codePointAt(rest.length - width) as number;
    rest = rest.slice(0, rest.length - width);
    if (point < 0x10ffff) {
      return rest + String.fromCodePoint(point === 0xd7ff ? 0xe000 : point + 1);
    }
  }
  return undefined;
}

/**
 * The upper bound of a prefix scan, for binding.
 *
 * @param prefix Any well-formed string.
 * @returns {@linkcode prefixEnd}, or {@linkcode ABOVE_ALL_TEXT}.
 */
export function scanEnd(prefix: string): string | Uint8Array {
  return prefixEnd(prefix) ?? ABOVE_ALL_TEXT;
}
