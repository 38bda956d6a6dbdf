/**
 * What the command line's `stats` reports about a database file, read
 * through its own read-only connection in one read transaction.
 *
 * @module
 */

import { ENTRIES_TABLE, KV_TABLE } from "./_sql.ts";
import { connectReadOnly } from "./schema.ts";

/** Figures about one database file. */
export interface FileStats {
  /** Live keys. */
  keys: number;
  /** Rows whose expiry has passed, waiting for a purge. */
  expired: number;
  /** Groups holding a live key. */
  groups: number;
  /** Namespaces (the part of a group before its first `:`) with a live key. */
  namespaces: number;
  /** Size of the database file, in bytes. */
  fileBytes: number;
  /** Size of its write-ahead log, in bytes (`0` when there is none). */
  walBytes: number;
  /** The table holding the entries: `"kv"` (go-store's) or `"entries"`. */
  table: "kv" | "entries";
  /** Whether the change feed's log and triggers are in the file. */
  changeFeed: boolean;
  /** Rows in the change log (`0` without the feed). */
  changeLogRows: number;
}

const TABLES = ["entries", "kv"] as const;
// The log, and its triggers on whichever table holds the entries.
const feedObjects = (table: string) => [
  "kv_changes",
  `${table}_changes_insert`,
  `${table}_changes_update`,
  `${table}_changes_delete`,
];

/**
 * Reads the figures of a database file that a store has opened (so its
 * shape is known to be right).
 *
 * @param path The file.
 * @param now Milliseconds since the epoch, deciding what is live.
 * @returns The figures.
 */
export function fileStats(path: string, now: number): FileStats {
  const db = connectReadOnly(path);
  try {
    db.exec("BEGIN");
    const names = new Set(
      db.prepare("SELECT name FROM sqlite_schema").all().map((row) =>
        String(row.name)
      ),
    );
    const table = TABLES.find((name) => names.has(name)) ?? "kv";
    const grp = (table === "kv" ? KV_TABLE : ENTRIES_TABLE).group;
    const live = "(expires_at IS NULL OR expires_at > ?)";
    const counts = db.prepare(
      `SELECT
        count(*) FILTER (WHERE ${live}) AS keys,
        count(*) FILTER (WHERE NOT ${live}) AS expired,
        count(DISTINCT ${grp}) FILTER (WHERE ${live}) AS groups,
        count(DISTINCT substr(${grp}, 1, instr(${grp}, ':') - 1))
          FILTER (WHERE instr(${grp}, ':') > 1 AND ${live}) AS namespaces
      FROM ${table}`,
    ).get(now, now, now, now) as Record<string, number>;
    const changeFeed = feedObjects(table).every((name) => names.has(name));
    const changeLogRows = changeFeed
      ? Number(db.prepare("SELECT count(*) AS n FROM kv_changes").get()?.n)
      : 0;
    db.exec("COMMIT");
    return {
      keys: Number(counts.keys),
      expired: Number(counts.expired),
      groups: Number(counts.groups),
      namespaces: Number(counts.namespaces),
      fileBytes: sizeOf(path),
      walBytes: sizeOf(`${Deno.realPathSync(path)}-wal`),
      table,
      changeFeed,
      changeLogRows,
    };
  } finally {
    db.close();
  }
}

function sizeOf(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
}
