/**
 * Connecting to a database file: what to say when SQLite cannot open it,
 * and read-only connections to a file or folder this process cannot write.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { StoreError } from "./errors.ts";

/** The in-memory path, which gets no WAL and no file checks. */
export const MEMORY_PATH = ":memory:";

/**
 * Opens a read-only connection to an existing file. A WAL file in a folder
 * this process cannot write, without the `-shm` that readers share, can be
 * read only as immutable; that is safe because no writer can add a log
 * beside it either, and refused when a log with frames is there.
 *
 * @param path The file.
 * @returns The connection, which has read the file's schema.
 * @throws {StoreError} When the file cannot be opened or read.
 */
export function connectReadOnly(path: string): DatabaseSync {
  const db = connect(
    path,
    false,
    () => new DatabaseSync(path, { readOnly: true }),
  );
  try {
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
    return db;
  } catch (error) {
    db.close();
    if (!isReadOnlyError(error)) {
      throw new StoreError(`Cannot open store at ${path}: ${message(error)}`, {
        cause: error,
      });
    }
  }
  const noShm =
    `the file is in WAL mode and its folder is not writable, so SQLite cannot create the ${path}-shm it reads through`;
  if (hasFrames(`${path}-wal`)) {
    throw new StoreError(
      `Cannot open store at ${path}: ${noShm}, and ${path}-wal holds commits it would miss without it; make the folder writable`,
    );
  }
  const url = new URL("file://");
  url.pathname = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  url.searchParams.set("immutable", "1");
  try {
    // Deno hands a URL filename to SQLite under --allow-all only.
    const immutable = new DatabaseSync(url, { readOnly: true });
    immutable.prepare("SELECT count(*) FROM sqlite_schema").get();
    return immutable;
  } catch (error) {
    throw new StoreError(
      `Cannot open store at ${path}: ${noShm} (with --allow-all it reads the file as immutable); make the folder writable or copy the file`,
      { cause: error },
    );
  }
}

/**
 * Opens a connection; when SQLite cannot, says why in words it lacks (a
 * directory, a missing folder or file).
 *
 * @param path The path, for messages.
 * @param create Whether the open may create the file.
 * @param open Opens it.
 * @returns The connection.
 * @throws {StoreError} When it cannot be opened.
 */
export function connect(
  path: string,
  create: boolean,
  open: () => DatabaseSync,
): DatabaseSync {
  try {
    return open();
  } catch (error) {
    const why = whyNot(path, create, error);
    throw new StoreError(`Cannot open store at ${path}: ${why}`, {
      cause: error,
    });
  }
}

function whyNot(path: string, create: boolean, error: unknown): string {
  if (path === MEMORY_PATH) return message(error);
  const slash = path.lastIndexOf("/");
  const folder = slash < 0 ? "." : path.slice(0, slash) || "/";
  try {
    if (Deno.statSync(path).isDirectory) return `${path} is a directory`;
  } catch (statError) {
    if (!(statError instanceof Deno.errors.NotFound)) return message(error);
    try {
      if (!Deno.statSync(folder).isDirectory) {
        return `${folder} is not a folder`;
      }
    } catch (folderError) {
      if (folderError instanceof Deno.errors.NotFound) {
        return `the folder ${folder} does not exist`;
      }
      return message(error);
    }
    if (!create) return `the file ${path} does not exist`;
  }
  return message(error);
}

/**
 * Whether SQLite refused a write (or the read-ahead of a WAL file) because
 * the file or its folder is read-only.
 *
 * @param error Anything thrown, or a {@linkcode StoreError} caused by it.
 * @returns `true` for a read-only database.
 */
export function isReadOnlyError(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (/readonly database|file is read-only/.test(e.message)) return true;
  }
  return false;
}

/**
 * Whether a write-ahead log holds frames (more than its header).
 *
 * @param walPath The `-wal` file.
 * @returns `false` when it is missing or empty.
 */
export function hasFrames(walPath: string): boolean {
  try {
    return Deno.statSync(walPath).size > 32;
  } catch {
    return false;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
