import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Store } from "@core/store";
import { PurgePace } from "../src/_purge_pace.ts";
import { FakeClock, tempDir, yieldNow } from "./_helpers.ts";

// Holds the thread for `ms`, as a slow batch would.
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* spin */ }
}

Deno.test("PurgePace sizes batches to a time budget and bounds a slice", async (t) => {
  await t.step("a full fast batch doubles the next, up to 1,000", () => {
    const pace = new PurgePace();
    const limits: number[] = [];
    let calls = 0;
    // A slice may end early on a busy machine; the next one goes on.
    while (
      pace.takeCheckpoint() || pace.slice((limit) => {
        limits.push(limit);
        return ++calls < 6 ? limit : 0;
      })
    );
    assert.deepEqual(limits, [256, 512, 1000, 1000, 1000, 1000]);
  });

  await t.step("a slow batch halves the next, down to 64", () => {
    const pace = new PurgePace();
    const limits: number[] = [];
    for (let i = 0; i < 6; i++) {
      pace.slice((limit) => {
        limits.push(limit);
        busy(5);
        return limit;
      });
    }
    assert.deepEqual(limits, [256, 128, 64, 64, 64, 64]);
  });

  await t.step("a short batch ends the slice: nothing is left", () => {
    const pace = new PurgePace();
    let calls = 0;
    const more = pace.slice((limit) => {
      calls++;
      return limit - 1;
    });
    assert.equal(more, false);
    assert.equal(calls, 1);
  });

  await t.step(
    "every 1,000 rows purged, a checkpoint is due once, in a slice of its own",
    () => {
      const pace = new PurgePace();
      const steps: string[] = [];
      const more: boolean[] = [];
      const batch = (limit: number) => {
        steps.push(`batch ${limit}`);
        return limit;
      };
      for (let i = 0; i < 5; i++) {
        if (pace.takeCheckpoint()) steps.push("checkpoint");
        else more.push(pace.slice(batch));
      }
      // 256 + 512 + 1,000 rows pass 1,000: that slice ends there, and the
      // next one is the checkpoint and nothing else.
      assert.deepEqual(steps, [
        "batch 256",
        "batch 512",
        "batch 1000",
        "checkpoint",
        "batch 1000",
        "checkpoint",
        "batch 1000",
      ]);
      assert.deepEqual(more, [true, true, true]);
    },
  );

  await t.step(
    "a short batch that reaches 1,000 rows still leaves the checkpoint to do",
    () => {
      const pace = new PurgePace();
      assert.equal(pace.takeCheckpoint(), false);
      assert.equal(pace.slice((limit) => limit === 256 ? 256 : 744), true);
      assert.equal(pace.takeCheckpoint(), true);
      assert.equal(pace.takeCheckpoint(), false);
      assert.equal(pace.slice(() => 0), false);
    },
  );

  await t.step("full batches stop once the slice's time is used", () => {
    const pace = new PurgePace();
    let calls = 0;
    const started = performance.now();
    const more = pace.slice((limit) => {
      calls++;
      busy(1);
      return limit;
    });
    const took = performance.now() - started;
    assert.equal(more, true);
    assert.ok(calls >= 2, `${calls} batches`);
    assert.ok(took < 100, `the slice took ${took} ms`);
  });
});

Deno.test("Store purges a large backlog in slices, with every expire once", async () => {
  using dir = tempDir();
  const path = dir.file("backlog.db");
  const clock = new FakeClock();
  const KEYS = 20_000;
  using store = new Store(path, { clock: clock.fn, purgeIntervalMs: 1 });
  store.transaction(() => {
    for (let i = 0; i < KEYS; i++) store.setWithTTL("g", `k${i}`, "v", 10);
  });
  // Expiry on time and the background purge both start on it.
  const expired = new Set<string>();
  let duplicates = 0;
  store.onChange((event) => {
    if (event.type !== "expire") return;
    if (expired.has(event.key)) duplicates++;
    expired.add(event.key);
  });
  clock.advance(10);
  const reader = new DatabaseSync(path);
  try {
    const rows = reader.prepare("SELECT count(*) AS n FROM entries");
    const seen = new Set<number>();
    const giveUp = Date.now() + 20_000;
    for (;;) {
      const left = (rows.get() as { n: number }).n;
      seen.add(left);
      if (left === 0 || Date.now() > giveUp) break;
      await yieldNow();
    }
    assert.equal((rows.get() as { n: number }).n, 0);
    // Other tasks ran while rows were still waiting to be purged.
    const between = [...seen].filter((n) => n > 0 && n < KEYS);
    assert.ok(between.length >= 2, `seen ${[...seen].join(", ")}`);
  } finally {
    reader.close();
  }
  assert.equal(expired.size, KEYS);
  assert.equal(duplicates, 0);
});
