/**
 * Resource hygiene over 10,000 stores (property 6): a soak of minutes, so
 * it runs with `deno task test:reliability`, not the default `deno test`.
 * The one-store variant (10,000 watchers on one store) is in
 * tests/resource_hygiene_test.ts.
 */
import assert from "node:assert/strict";
import { openFds, tempDir, yieldNow } from "../_helpers.ts";
import {
  CYCLES,
  forcedGC,
  HEAP_BOUND,
  hygieneCycle,
  memory,
  READER_EVERY,
  RSS_BOUND,
} from "../fixtures/reliability_hygiene.ts";

const WARM_UP = 1_000;
/** When no collection can be forced: gross leaks only. */
const GROSS_RSS_BOUND = 150 * 1024 * 1024;

/** Counts the intervals started and not yet cleared. */
function timerLedger() {
  const original = {
    setInterval: globalThis.setInterval,
    clearInterval: globalThis.clearInterval,
  };
  const live = new Set<unknown>();
  let started = 0;
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    const id = original.setInterval(...args);
    live.add(id);
    started++;
    return id;
  }) as typeof setInterval;
  globalThis.clearInterval = ((id?: number) => {
    live.delete(id);
    original.clearInterval(id);
  }) as typeof clearInterval;
  return {
    get live() {
      return live.size;
    },
    get started() {
      return started;
    },
    [Symbol.dispose]() {
      Object.assign(globalThis, original);
    },
  };
}

Deno.test("Store opened and closed 10,000 times with watchers and callbacks leaves no timers, handles or growing memory", async () => {
  using dir = tempDir();
  using timers = timerLedger();
  const gc = forcedGC();
  const readers: Promise<number>[] = [];
  const samples: { rss: number; heapUsed: number }[] = [];
  const run = async (from: number, count: number, sample: boolean) => {
    for (let i = from; i < from + count; i++) {
      // One store in four in a file, the others in memory.
      const reader = hygieneCycle(i, dir.path, 4);
      if (reader) readers.push(reader);
      if (i % 100 === 99) await yieldNow();
      if (sample && (i - from) % 1_000 === 999) samples.push(await memory(gc));
    }
  };
  const fds = openFds();
  await run(0, WARM_UP, false);
  samples.push(await memory(gc));
  const started = performance.now();
  await run(WARM_UP, CYCLES, true);
  const elapsed = Math.round(performance.now() - started);
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  // Without a forced GC RSS follows the collector's sawtooth, tens of MiB
  // high: growth is then taken from the lowest sample, against a bound for
  // gross leaks only.
  const rssGrowth = gc === undefined
    ? last.rss - Math.min(...samples.map((s) => s.rss))
    : last.rss - first.rss;
  const rssBound = gc === undefined ? GROSS_RSS_BOUND : RSS_BOUND;
  const heapGrowth = last.heapUsed - first.heapUsed;
  const events = await Promise.all(readers);
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `    ${CYCLES} stores (one in four in a file) in ${elapsed} ms after ${WARM_UP} warm-up cycles, ${
      gc === undefined ? "no forced GC" : "GC forced at each sample"
    }: RSS ${mib(first.rss)} → ${mib(last.rss)} MiB (growth ${
      mib(rssGrowth)
    }, bound ${mib(rssBound)}), JS heap ${mib(first.heapUsed)} → ${
      mib(last.heapUsed)
    } MiB; ${timers.started} purge timers started, ${timers.live} left`,
  );
  assert.equal(timers.live, 0, "purge timers left running");
  assert.ok(timers.started > 0);
  assert.equal(openFds(), fds, "file handles left open");
  assert.ok(rssGrowth < rssBound, `RSS grew by ${mib(rssGrowth)} MiB`);
  if (gc !== undefined) {
    assert.ok(
      heapGrowth < HEAP_BOUND,
      `the JS heap grew by ${mib(heapGrowth)} MiB`,
    );
  }
  assert.equal(events.length, (WARM_UP + CYCLES) / READER_EVERY);
  assert.deepEqual(
    new Set(events),
    new Set([4]),
    "a reader waiting on a watcher got its events, then the end, at close()",
  );
});
