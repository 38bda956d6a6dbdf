/**
 * The pace of the purges that run on the event loop (the background purge
 * and expiry on time): work in slices of a few milliseconds, each made of
 * batches sized to a time budget, so that none of them holds the loop for
 * long however much a row costs to delete.
 *
 * Every {@linkcode CHECKPOINT_ROWS} rows the WAL's pages go back into the
 * file (so that SQLite's own checkpoint does not land, a thousand pages at
 * once, inside some later commit). Such a checkpoint is a slice of its own
 * ({@linkcode PurgePace.prototype.takeCheckpoint}): its cost is mostly the
 * two syncs it makes (the WAL's, then the file's), several milliseconds on
 * a busy disk however few pages it copies, and added to a slice of batches
 * it would double that slice's stall.
 *
 * @module
 */

import { MEMORY_PATH } from "./_connect.ts";
import { PURGE_BATCH } from "./_sql.ts";

/**
 * Rows purged between checkpoints: about a third of SQLite's own threshold
 * of 1,000 pages when the rows are scattered over the file, so each
 * checkpoint copies fewer pages, while the syncs a checkpoint makes stay
 * few (on a busy disk each one waits in line, whatever it writes).
 */
const CHECKPOINT_ROWS = 1_000;
/** What one batch aims to take, in milliseconds. */
const STEP_MS = 3;
/** How long a slice runs batches before it yields, in milliseconds. */
const SLICE_MS = 5;
const FIRST_ROWS = 256;
const MIN_ROWS = 64;

/** The batch size and checkpoints of one store's event-loop purges. */
export class PurgePace {
  #rows = FIRST_ROWS;
  #uncheckpointed = 0;

  /**
   * Whether enough rows were purged since the last checkpoint that the next
   * slice should be one; `true` counts that checkpoint as made, so the
   * caller makes it.
   *
   * @returns Whether to checkpoint now.
   */
  takeCheckpoint(): boolean {
    if (this.#uncheckpointed < CHECKPOINT_ROWS) return false;
    this.#uncheckpointed = 0;
    return true;
  }

  /**
   * Runs one slice of purge batches, for up to {@linkcode SLICE_MS}, sizing
   * each by how long the one before took: halved when it took longer than
   * its budget, doubled (up to {@linkcode PURGE_BATCH}) when a full one took
   * less than half of it. It stops early when a checkpoint becomes due.
   *
   * @param batch Deletes up to `limit` expired rows; returns how many.
   * @returns Whether there may be more to do: rows left, or a checkpoint.
   */
  slice(batch: (limit: number) => number): boolean {
    const start = performance.now();
    for (;;) {
      const limit = this.#rows;
      const before = performance.now();
      const removed = batch(limit);
      const end = performance.now();
      this.#uncheckpointed += removed;
      const ms = end - before;
      if (ms > STEP_MS) {
        this.#rows = Math.max(MIN_ROWS, limit >> 1);
      } else if (ms < STEP_MS / 2 && removed >= limit) {
        this.#rows = Math.min(PURGE_BATCH, limit * 2);
      }
      if (this.#uncheckpointed >= CHECKPOINT_ROWS) return true;
      if (removed < limit) return false;
      if (end - start >= SLICE_MS) return true;
    }
  }
}

/**
 * Writes the WAL's pages through to the disk on a thread of Deno's own, so
 * that the sync a checkpoint makes of the WAL, on the event loop, finds
 * little left to write. Only a head start: without it (no WAL, no write
 * permission for its path, which is never prompted for) the checkpoint
 * syncs the WAL itself. The WAL is the one file of the store this opens:
 * SQLite holds POSIX locks on the database file, and closing another
 * descriptor of that file would drop them.
 *
 * @param path The database file, or `":memory:"` (nothing to sync).
 */
export async function syncWal(path: string): Promise<void> {
  if (path === MEMORY_PATH) return;
  const wal = `${path}-wal`;
  const access = Deno.permissions.querySync({ name: "write", path: wal });
  if (access.state !== "granted") return;
  try {
    const file = await Deno.open(wal, { write: true });
    try {
      await file.syncData();
    } finally {
      file.close();
    }
  } catch {
    // See above: the checkpoint makes the same sync.
  }
}
