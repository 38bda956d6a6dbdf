/**
 * Resource hygiene of one long-lived store (property 6): watchers and
 * callbacks that come and go leave nothing behind. The soak over 10,000
 * stores is in tests/reliability/resource_hygiene_suite.ts.
 */
import assert from "node:assert/strict";
import { ScopedStore, Store } from "@core/store";
import { yieldNow } from "./_helpers.ts";
import {
  CYCLES,
  forcedGC,
  HEAP_BOUND,
  memory,
  RSS_BOUND,
} from "./fixtures/reliability_hygiene.ts";

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
