/**
 * Resource hygiene (property 6): 10,000 stores opened and closed, and
 * 10,000 rounds of watchers and callbacks on one store, leave no timers,
 * handles or growing memory. Soaks of seconds to minutes, so they run with
 * `deno task test:reliability`, not the default `deno test`.
 */
import assert from "node:assert/strict";
import { ScopedStore, Store } from "@core/store";
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

Deno.test("Store.watch() and onChange() registered and dropped 10,000 times on one store leave nothing behind", async () => {
  using store = new Store();
  const scope = new ScopedStore(store, "t");
  const round = (i: number) => {
    const w1 = store.watch(`g${i}`, `k${i}`);
    const w2 = scope.watch("*", `k${i}`);
    const w3 = scope.watch(`x${i}`, "*");
    const off1 = store.onChange(() => {});
    const off2 = scope.onChange(() => {});
    store.set(`g${i}`, `k${i}`, "v");
    scope.set(`x${i}`, `k${i}`, "v");
    store.unwatch(w1);
    w2[Symbol.dispose]();
    void w3.stream.cancel();
    off1();
    off2();
    off2();
    return [w1, w2];
  };
  const gc = forcedGC();
  for (let i = 0; i < 1_000; i++) round(i);
  const before = await memory(gc);
  for (let i = 0; i < CYCLES; i++) {
    round(i);
    if (i % 100 === 99) await yieldNow();
  }
  const after = await memory(gc);
  const growth = after.rss - before.rss;
  if (gc !== undefined) {
    assert.ok(
      after.heapUsed - before.heapUsed < HEAP_BOUND,
      `the JS heap grew by ${
        ((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1)
      } MiB`,
    );
  }
  assert.ok(
    growth < RSS_BOUND,
    `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`,
  );
  // An unregistered watcher's stream holds what it matched, then ends.
  const [w1, w2] = round(CYCLES);
  assert.deepEqual((await Array.fromAsync(w1!)).map((e) => e.group), [
    `g${CYCLES}`,
  ]);
  assert.deepEqual((await Array.fromAsync(w2!)).map((e) => e.group), [
    `t:x${CYCLES}`,
  ]);
  assert.equal(store.countAll(), 2 * (CYCLES + 1));
});
