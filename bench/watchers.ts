/**
 * What 10,000 watchers on other groups add to a `set`, measured in pairs:
 * two stores with the same 10,000 keys, A and B, take turns writing all
 * their keys (the order alternating each round) and the median time of B
 * over A's is taken, first with no watchers anywhere, then with 10,000
 * watchers on B (a third each: one key of another group, every key of
 * another group, every group of another namespace), then with one watcher
 * on another group of B. Each figure is B's ratio with watchers over its
 * ratio without, so the difference between the two stores themselves
 * (up to 15% for identical data) cancels out.
 *
 * `watchers_bench.ts` measures the same in `deno bench`, where entries run
 * one after the other; on a busy machine its figures drift by more than the
 * 10% this target allows, hence this paired measurement for the target.
 *
 * Prints one JSON object. Run with:
 *
 * ```sh
 * deno run bench/watchers.ts
 * ```
 *
 * @module
 */

import { ScopedStore, Store } from "@core/store";
import { N, SPREAD, valueOf } from "./_shared.ts";

const ROUNDS = 100;
const GROUPS = Array.from({ length: N }, (_, i) => SPREAD.group(i));
const KEYS = Array.from({ length: N }, (_, i) => SPREAD.key(i));
const VALUES = Array.from({ length: N }, (_, i) => valueOf(i));
const NEW_VALUES = Array.from({ length: N }, (_, i) => VALUES[N - 1 - i]!);

function seeded(): Store {
  const store = new Store(":memory:", { purgeIntervalMs: 0 });
  store.transaction((tx) => {
    for (let i = 0; i < N; i++) tx.set(GROUPS[i]!, KEYS[i]!, VALUES[i]!);
  });
  return store;
}

const a = seeded();
const b = seeded();
// Each pass writes the other set of values, so that every write changes
// its row (SQLite skips rewriting an unchanged one).
const odd = new Map<Store, boolean>([[a, false], [b, false]]);

function pass(store: Store): number {
  const values = odd.get(store) ? VALUES : NEW_VALUES;
  odd.set(store, !odd.get(store));
  const start = performance.now();
  for (let i = 0; i < N; i++) store.set(GROUPS[i]!, KEYS[i]!, values[i]!);
  return performance.now() - start;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[sorted.length >> 1]!;
}

/** B's median time over A's, after a few untimed rounds. */
function phase(): number {
  for (let round = 0; round < 4; round++) {
    pass(a);
    pass(b);
  }
  const timesA: number[] = [];
  const timesB: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      timesA.push(pass(a));
      timesB.push(pass(b));
    } else {
      timesB.push(pass(b));
      timesA.push(pass(a));
    }
  }
  return median(timesB) / median(timesA);
}

const before = phase();

const watchers = [];
for (let w = 0; w < 10_000; w++) {
  switch (w % 3) {
    case 0:
      watchers.push(b.watch(`other:${w}`, `field-${w}`));
      break;
    case 1:
      watchers.push(b.watch(`other:${w}`, "*"));
      break;
    default:
      watchers.push(new ScopedStore(b, `ns${w}`).watch("*", "*"));
  }
}
const withMany = phase();
for (const watcher of watchers) b.unwatch(watcher);
b.watch("other:0", "*");
const withOne = phase();
a.close();
b.close();

const round3 = (value: number) => Math.round(value * 1000) / 1000;
console.log(JSON.stringify({
  keys: N,
  rounds: ROUNDS,
  storesRatio: round3(before),
  tenThousandWatchers: round3(withMany / before),
  oneWatcher: round3(withOne / before),
}));
