/**
 * Backups: one read snapshot copied row by row into a new standalone file.
 * (`VACUUM INTO` and ATTACH need `--allow-all` in Deno.)
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { decodeText, textColumn } from "./codec.ts";
import { createTables, prepareRows } from "./schema.ts";
import type { TableNames } from "./_sql.ts";

/**
 * Copies every row of `source` into a new database at `path`. Both sides run
 * in one transaction each: the read one pins a snapshot of the source, the
 * write one makes the copy appear whole or not at all.
 *
 * The copy has the source's table (kv or entries), so it opens in the same
 * go-store versions.
 *
 * @param source An open connection, not inside a transaction.
 * @param names The source's data table.
 * @param path The new file; removed again if the copy fails.
 * @throws {Error} When the file already exists or SQLite fails.
 */
export function copyInto(
  source: DatabaseSync,
  names: TableNames,
  path: string,
): void {
  const { table, group, key, value } = names;
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
    createTables(target, names);
    const insert = target.prepare(
      `INSERT INTO ${table} (${group}, ${key}, ${value}, expires_at) VALUES (?, ?, ?, ?)`,
    );
    const { select } = prepareRows(source, {
      select: `SELECT ${textColumn(group)}, ${textColumn(key)}, ${
        textColumn(value)
      }, expires_at FROM ${table}`,
    });
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
