/**
 * The longest stall of the event loop while the store's background purge
 * clears a backlog of 100,000 expired keys among 1,000,000 in a file.
 *
 * A `setInterval(…, 1)` probe records the gap between its ticks; the largest
 * gap while the purge runs is the longest time the event loop was blocked
 * (plus the probe's own period, so the figure errs high). It runs twice:
 *
 * - `no listeners`: the purge deletes in batches without reading the rows;
 *   it is finished when no expired row is left (checked every 20 ms with an
 *   index seek through a connection of its own);
 * - `expire counter`: an `onChange` callback counts `expire` events (so the
 *   purge reads every row it deletes); it is finished at 100,000.
 *
 * - `checkpoint floor`: raw `node:sqlite` on a copy of the same file, what
 *   one `PRAGMA wal_checkpoint(PASSIVE)` costs the event loop after 1,000
 *   rows purged (the store's checkpoint step), with `synchronous = NORMAL`
 *   (the store's default) and `OFF`: the difference is the two syncs, the
 *   part of a checkpoint that no batch size makes smaller. `NORMAL, WAL
 *   synced first` awaits an asynchronous sync of the WAL before each
 *   checkpoint, as the store does, so that only the file's sync is left.
 *
 * Prints one JSON object. Run with:
 *
 * ```sh
 * deno run --allow-read --allow-write bench/purge_stall.ts
 * ```
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { Store } from "@core/store";
import { buildFile, copyFile, tempFile } from "./_shared.ts";

const TOTAL = 1_000_000;
const EXPIRED = { every: 10, at: 1_000 } as const;
const BACKLOG = TOTAL / EXPIRED.every;
const NOW = 2_000;
const PURGE_INTERVAL_MS = 5;
const GIVE_UP_MS = 120_000;

/** Records the gaps between the ticks of a 1 ms interval. */
class Probe {
  gaps: number[] = [];
  #last = performance.now();
  #timer = setInterval(() => {
    const now = performance.now();
    this.gaps.push(now - this.#last);
    this.#last = now;
  }, 1);

  stop(): {
    maxGapMs: number;
    p99GapMs: number;
    p50GapMs: number;
    over20Ms: number;
  } {
    clearInterval(this.#timer);
    // The gap from the last tick to now counts too.
    this.gaps.push(performance.now() - this.#last);
    const sorted = [...this.gaps].sort((a, b) => a - b);
    return {
      maxGapMs: round(sorted[sorted.length - 1] ?? 0),
      p99GapMs: round(sorted[Math.ceil(sorted.length * 0.99) - 1] ?? 0),
      p50GapMs: round(sorted[Math.ceil(sorted.length * 0.5) - 1] ?? 0),
      over20Ms: sorted.filter((gap) => gap > 20).length,
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(
  path: string,
  mode: "no listeners" | "expire counter",
) {
  const store = new Store(path, {
    purgeIntervalMs: PURGE_INTERVAL_MS,
    clock: () => NOW,
  });
  const reader = new DatabaseSync(path);
  const anyExpired = reader.prepare(
    "SELECT 1 FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1",
  );
  let expired = 0;
  if (mode === "expire counter") {
    store.onChange((event) => {
      if (event.type === "expire") expired++;
    });
  }
  const done = mode === "expire counter"
    ? () => expired >= BACKLOG
    : () => anyExpired.get(NOW) === undefined;

  const probe = new Probe();
  const start = performance.now();
  while (!done()) {
    if (performance.now() - start > GIVE_UP_MS) {
      throw new Error(`${mode}: the purge did not finish in ${GIVE_UP_MS} ms`);
    }
    await sleep(20);
  }
  const durationMs = round(performance.now() - start);
  const gaps = probe.stop();
  const left = (reader.prepare(
    "SELECT count(*) AS n FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?",
  ).get(NOW) as { n: number }).n;
  reader.close();
  store.close();
  if (left !== 0) throw new Error(`${mode}: ${left} expired rows left`);
  return { mode, durationMs, ticks: probe.gaps.length, ...gaps };
}

type Floor = "NORMAL" | "OFF" | "NORMAL, WAL synced first";

// One checkpoint after every 1,000 rows purged, as the store does, timed.
async function checkpointFloor(path: string, variant: Floor) {
  const synchronous = variant === "OFF" ? "OFF" : "NORMAL";
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA synchronous = ${synchronous}`);
  const purge = db.prepare(
    "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 250)",
  );
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  const ms: number[] = [];
  let frames = 0;
  for (let i = 0; i < 25; i++) {
    for (let rows = 0; rows < 1_000;) rows += Number(purge.run(NOW).changes);
    if (variant === "NORMAL, WAL synced first") {
      const wal = await Deno.open(`${path}-wal`, { write: true });
      await wal.syncData();
      wal.close();
    }
    const start = performance.now();
    const result = checkpoint.get() as { log: number };
    ms.push(performance.now() - start);
    frames += result.log;
  }
  db.close();
  ms.sort((a, b) => a - b);
  return {
    variant,
    framesPerCheckpoint: Math.round(frames / ms.length),
    medianMs: round(ms[Math.floor(ms.length / 2)] ?? NaN),
    maxMs: round(ms[ms.length - 1] ?? NaN),
  };
}

const pristine = tempFile("stall-pristine.db");
buildFile(pristine, TOTAL, EXPIRED);

// The probe alone, for the noise floor of this machine.
const idleProbe = new Probe();
await sleep(1_000);
const idle = idleProbe.stop();

const runs = [];
for (const mode of ["no listeners", "expire counter"] as const) {
  const path = tempFile(`stall-${mode.replace(" ", "-")}.db`);
  copyFile(pristine, path);
  runs.push(await measure(path, mode));
}

const floor = [];
for (const variant of ["NORMAL", "OFF", "NORMAL, WAL synced first"] as const) {
  const path = tempFile(`stall-floor-${floor.length}.db`);
  copyFile(pristine, path);
  floor.push(await checkpointFloor(path, variant));
}

console.log(JSON.stringify({
  total: TOTAL,
  backlog: BACKLOG,
  purgeIntervalMs: PURGE_INTERVAL_MS,
  idle,
  runs,
  checkpointFloor: floor,
  maxGapMs: Math.max(...runs.map((run) => run.maxGapMs)),
}));
