/**
 * `purgeExpired()` of 100,000 expired keys among 1,000,000 in a file,
 * against the same batched `DELETE` run on raw `node:sqlite` (the baseline)
 * and, for reference, one unbounded `DELETE`. Each iteration purges the full
 * backlog, then (untimed) writes the expired rows back.
 *
 * The longest stall of the event loop during the background purge is
 * measured by `purge_stall.ts`.
 *
 * Run with `deno task bench` (see `store_bench.ts`).
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import {
  buildFile,
  copyFile,
  openRaw,
  openStore,
  restoreExpired,
  tempFile,
} from "./_shared.ts";
import { E, G } from "./_names.ts";

/** Keys in the file. */
const TOTAL = 1_000_000;
/** Every 10th key has expired: 100,000 spread over the whole file. */
const EXPIRED = { every: 10, at: 1_000 } as const;
const BACKLOG = TOTAL / EXPIRED.every;
/** The time of the purge, after every expiry in the file. */
const NOW = 2_000;
/** The store's purge batch, which the raw baseline copies. */
const BATCH = 2_000;

const storePath = tempFile("purge-store.db");
const rawPath = tempFile("purge-raw.db");
const rawOnePath = tempFile("purge-raw-one.db");
buildFile(storePath, TOTAL, EXPIRED);
copyFile(storePath, rawPath);
copyFile(storePath, rawOnePath);

const store = openStore(storePath, { clock: () => NOW });
// Writes the expired rows back into the store's file between iterations.
const storeRefill = openRaw(storePath);
const raw = openRaw(rawPath);
const rawOne = openRaw(rawOnePath);

const batched = raw.prepare(
  `DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ${BATCH})`,
);
const unbounded = rawOne.prepare(
  "DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
);

function check(removed: number, refill: DatabaseSync): void {
  if (removed !== BACKLOG) {
    throw new Error(`purged ${removed} rows, expected ${BACKLOG}`);
  }
  restoreExpired(refill, TOTAL, EXPIRED);
}

// A purge of 100,000 rows takes a good fraction of a second: a few
// iterations each.
const iterations = { n: 3, warmup: 0 } as const;

Deno.bench({
  group: G.purge,
  name: E.storePurge,
  ...iterations,
  fn(b) {
    b.start();
    const removed = store.purgeExpired();
    b.end();
    check(removed, storeRefill);
  },
});
Deno.bench({
  group: G.purge,
  name: E.rawPurge,
  baseline: true,
  ...iterations,
  fn(b) {
    b.start();
    let removed = 0;
    for (;;) {
      const changes = Number(batched.run(NOW).changes);
      removed += changes;
      if (changes < BATCH) break;
    }
    b.end();
    check(removed, raw);
  },
});
Deno.bench({
  group: G.purge,
  name: E.rawPurgeOne,
  ...iterations,
  fn(b) {
    b.start();
    const removed = Number(unbounded.run(NOW).changes);
    b.end();
    check(removed, rawOne);
  },
});
