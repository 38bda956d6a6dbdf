/**
 * Backups: one read snapshot copied row by row into a new standalone file.
 * (`VACUUM INTO` and ATTACH need `--allow-all` in Deno.)
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { decodeText, textColumn } from "./codec.ts";
import { createTables, prepareRows } from "./schema.ts";

const BACKUP_SELECT = `SELECT ${textColumn("grp")}, ${textColumn("key")}, ${
  textColumn("value")
}, expires_at FROM kv`;
const BACKUP_INSERT =
  "INSERT INTO kv (grp, key, value, expires_at) VALUES (?, ?, ?, ?)";

/**
 * Copies every row of `source` into a new database at `path`. Both sides run
 * in one transaction each: the read one pins a snapshot of the source, the
 * write one makes the copy appear whole or not at all.
 *
 * @param source An open connection, not inside a transaction.
 * @param path The new file; removed again if the copy fails.
 * @throws {Error} When the file already exists or SQLite fails.
 */
export function copyInto(source: DatabaseSync, path: string): void {
  if (pathExists(path)) {
    throw new Error(
      `${path} already exists; a backup never overwrites a file`,
    );
  }
  const target = new DatabaseSync(path);
  let created = false;
  let complete = false;
  try {
    const pages = target.prepare("PRAGMA page_count").get();
    if (pages?.page_count !== 0) {
      throw new Error(`${path} appeared while the backup started`);
    }
    created = true;
    target.exec("BEGIN IMMEDIATE");
    createTables(target);
    const insert = target.prepare(BACKUP_INSERT);
    const { select } = prepareRows(source, { select: BACKUP_SELECT });
    source.exec("BEGIN");
    try {
      for (const row of select.iterate()) {
        insert.run(
          decodeText(row[0]),
          decodeText(row[1]),
          decodeText(row[2]),
          row[3] as number | null,
        );
      }
    } finally {
      source.exec("COMMIT");
    }
    target.exec("COMMIT");
    complete = true;
  } finally {
    target.close();
    if (created && !complete) removeQuietly(path);
  }
}

/**
 * Whether anything (a file, a directory, a dangling link) is at `path`.
 *
 * @param path A file path.
 * @returns `true` when something is there.
 */
export function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Nothing to undo when the file was never created.
  }
}
