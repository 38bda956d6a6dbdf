/**
 * A `set` on a store with 10,000 watchers on other groups and
 * namespaces, against the same `set` on the same store with none: delivering an
 * event looks up the watchers of its group, key and namespace, so the
 * others must cost nothing. Raw `node:sqlite` is the baseline.
 *
 * In a module of its own, so that the compiled code of `Store.set` has seen
 * only these stores: in a module with many other benchmarks the figures of
 * this group shift with what ran before.
 *
 * Run with `deno task bench` (see `store_bench.ts`).
 *
 * @module
 */

import { ScopedStore, type Watcher } from "@core/store";
import {
  GROUPS,
  KEYS,
  N,
  NEW_VALUES,
  seededRaw,
  seededStore,
  UPSERT,
  VALUES,
  Walk,
} from "./_shared.ts";
import { E, G } from "./_names.ts";

{
  // One store for every entry: two stores holding the same data differ by
  // up to 15% in the speed of the same set (where their pages landed in
  // memory), more than the difference measured here. Each entry first puts
  // the store in its state (untimed), then times a batch of 16 sets.
  const WATCHERS = 10_000;
  const BATCH = 16;
  const store = seededStore();
  let registered: Watcher[] = [];
  let state: "none" | "many" | "one" = "none";
  const use = (wanted: "none" | "many" | "one"): void => {
    if (state === wanted) return;
    for (const watcher of registered) store.unwatch(watcher);
    registered = [];
    if (wanted === "one") registered.push(store.watch("other:0", "*"));
    if (wanted === "many") {
      // A third each: one key of another group, every key of another
      // group, every group of another namespace.
      for (let w = 0; w < WATCHERS; w++) {
        switch (w % 3) {
          case 0:
            registered.push(store.watch(`other:${w}`, `field-${w}`));
            break;
          case 1:
            registered.push(store.watch(`other:${w}`, "*"));
            break;
          default:
            registered.push(new ScopedStore(store, `ns${w}`).watch("*", "*"));
        }
      }
    }
    state = wanted;
  };
  // Every entry writes the same store: one walk, so every write changes
  // the row.
  const walk = new Walk(N);
  const batch = (): void => {
    for (let j = 0; j < BATCH; j++) {
      const i = walk.next();
      store.set(GROUPS[i]!, KEYS[i]!, (walk.odd ? VALUES : NEW_VALUES)[i]!);
    }
  };
  // Warm up in turns, so that the compiled code of Store.set has seen every
  // state before the first is measured.
  for (let round = 0; round < 6; round++) {
    use((["none", "many", "one"] as const)[round % 3]!);
    for (let k = 0; k < N / BATCH; k++) batch();
  }
  const upsert = seededRaw().prepare(UPSERT);
  const r = new Walk(N);
  // About 1.5 s per entry: long enough that a garbage-collection pause
  // landing in one entry moves its mean by a few percent at most.
  const n = 40_000;

  Deno.bench({
    group: G.otherWatchers,
    n,
    name: E.noWatchers,
    fn(b) {
      use("none");
      b.start();
      batch();
      b.end();
    },
  });
  Deno.bench({
    group: G.otherWatchers,
    n,
    name: E.manyWatchers,
    fn(b) {
      use("many");
      b.start();
      batch();
      b.end();
    },
  });
  Deno.bench({
    group: G.otherWatchers,
    n,
    name: E.oneWatcher,
    fn(b) {
      use("one");
      b.start();
      batch();
      b.end();
    },
  });
  Deno.bench({
    group: G.otherWatchers,
    n,
    name: `${E.rawUpsert} x ${BATCH}`,
    baseline: true,
    fn(b) {
      b.start();
      for (let j = 0; j < BATCH; j++) {
        const i = r.next();
        upsert.run(
          GROUPS[i]!,
          KEYS[i]!,
          (r.odd ? VALUES : NEW_VALUES)[i]!,
          null,
        );
      }
      b.end();
    },
  });
}
