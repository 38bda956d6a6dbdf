/**
 * The pace of the purges that run on the event loop (the background purge
 * and expiry on time): work in slices of a few milliseconds, each made of
 * batches sized to a time budget, so that none of them holds the loop for
 * long however much a row costs to delete. The caller checkpoints every
 * {@linkcode CHECKPOINT_ROWS} rows, so that the WAL's pages go back into the
 * file in steps of a few hundred rather than a thousand at once inside some
 * later commit.
 *
 * @module
 */

import { PURGE_BATCH } from "./_sql.ts";

/**
 * Rows purged between checkpoints: about a third of SQLite's own threshold
 * of 1,000 pages when the rows are scattered over the file, so each
 * checkpoint copies fewer pages, while the syncs a checkpoint makes stay
 * few (on a busy disk each one waits in line, whatever it writes).
 */
const CHECKPOINT_ROWS = 1_000;
/** What one batch and its checkpoint aim to take, in milliseconds. */
const STEP_MS = 3;
/** How long a slice runs batches before it yields, in milliseconds. */
const SLICE_MS = 5;
const FIRST_ROWS = 256;
const MIN_ROWS = 64;

/** The batch size of one store's event-loop purges. */
export class PurgePace {
  #rows = FIRST_ROWS;
  #uncheckpointed = 0;

  /**
   * Counts purged rows, and tells when to checkpoint.
   *
   * @param removed The rows a batch deleted.
   * @returns Whether enough rows went since the last checkpoint.
   */
  checkpointAfter(removed: number): boolean {
    this.#uncheckpointed += removed;
    if (this.#uncheckpointed < CHECKPOINT_ROWS) return false;
    this.#uncheckpointed = 0;
    return true;
  }

  /**
   * Runs purge batches for up to one slice of the event loop, sizing each
   * by how long the one before took: halved when it took longer than its
   * budget, doubled (up to {@linkcode PURGE_BATCH}) when a full one took
   * less than half of it.
   *
   * @param batch Deletes up to `limit` expired rows; returns how many.
   * @returns Whether the last batch was full, so that rows may be left.
   */
  slice(batch: (limit: number) => number): boolean {
    const start = performance.now();
    for (;;) {
      const limit = this.#rows;
      const before = performance.now();
      const removed = batch(limit);
      const end = performance.now();
      const ms = end - before;
      if (ms > STEP_MS) {
        this.#rows = Math.max(MIN_ROWS, limit >> 1);
      } else if (ms < STEP_MS / 2 && removed >= limit) {
        this.#rows = Math.min(PURGE_BATCH, limit * 2);
      }
      if (removed < limit) return false;
      if (end - start >= SLICE_MS) return true;
    }
  }
}
