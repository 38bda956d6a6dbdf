import assert from "node:assert/strict";
import { Store, type StoreEvent } from "@core/store";
import { keepAlive, nextValue, tempDir } from "./_helpers.ts";

Deno.test("Store emits expire at a key's deadline while anyone listens", async (t) => {
  await t.step("to a callback, within 50 ms of the deadline", async () => {
    using store = new Store(":memory:", { purgeIntervalMs: 0 });
    const expired = nextValue<StoreEvent>(
      (fn) => store.onChange(fn),
      (e) => e.type === "expire" && e.key === "soon",
      2_000,
    );
    store.setWithTTL("g", "soon", "v", 100);
    const deadline = Date.now() + 100;
    const event = await expired;
    assert.equal(event.group, "g");
    const late = Date.now() - deadline;
    assert.ok(late < 50, `expire arrived ${late} ms after the deadline`);
    assert.equal(store.count("g"), 0);
  });

  await t.step("to a watcher, re-armed by an earlier deadline", async () => {
    using store = new Store(":memory:", { purgeIntervalMs: 0 });
    using watcher = store.watch("g", "*");
    store.setWithTTL("g", "late", "v", 10_000);
    store.setWithTTL("g", "early", "v", 50);
    const reader = watcher.stream.getReader();
    const seen: string[] = [];
    const started = Date.now();
    while (seen.at(-1) !== "expire early") {
      // Only the store's unref'd timer can settle the read.
      const { value } = await keepAlive(reader.read());
      seen.push(`${value?.type} ${value?.key}`);
    }
    reader.releaseLock();
    assert.ok(Date.now() - started < 1_000);
    assert.deepEqual(seen, ["set late", "set early", "expire early"]);
    assert.equal(store.get("g", "late"), "v");
  });

  await t.step(
    "for a key another connection wrote, through the change feed",
    async () => {
      using dir = tempDir();
      const path = dir.file("feed.db");
      using listener = new Store(path, {
        changeFeed: true,
        purgeIntervalMs: 0,
      });
      using writer = new Store(path, { purgeIntervalMs: 0 });
      const expired = nextValue<StoreEvent>(
        (fn) => listener.onChange(fn),
        (e) => e.type === "expire" && e.key === "remote",
        3_000,
      );
      writer.setWithTTL("g", "remote", "v", 200);
      const deadline = Date.now() + 200;
      await expired;
      assert.ok(Date.now() - deadline < 100);
    },
  );
});

Deno.test("Store arms no expiry timer while nobody listens", async () => {
  using store = new Store(":memory:", { purgeIntervalMs: 0 });
  store.setWithTTL("g", "k", "v", 20);
  await new Promise((resolve) => setTimeout(resolve, 60));
  // Nothing purged it: the row is still there until a read finds it expired.
  const seen: StoreEvent[] = [];
  store.onChange((event) => seen.push(event));
  assert.equal(store.get("g", "k"), undefined);
  assert.deepEqual(seen.map((e) => e.type), ["expire"]);
});
