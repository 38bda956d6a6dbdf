/** Huge input (property 4): 16 MiB values and 1,000,000-character names. */
import assert from "node:assert/strict";
import {
  QuotaExceededError,
  ScopedStore,
  Store,
  type StoreEvent,
} from "@core/store";
import { tempDir } from "./_helpers.ts";

Deno.test("Store round-trips 16 MiB values exactly, in memory and in a file", async (t) => {
  using dir = tempDir();
  const mib16 = 16 * 1024 * 1024;
  const values: [string, string][] = [
    ["ASCII", "x".repeat(mib16)],
    ["two-byte characters with a NUL", "\0" + "é".repeat(mib16 / 2)],
    ["astral characters", "😀".repeat(mib16 / 4)],
  ];
  for (const path of [":memory:", dir.file("big.db")]) {
    await t.step(path === ":memory:" ? "in memory" : "in a file", () => {
      const started = performance.now();
      {
        using store = new Store(path, { durability: "full" });
        const events: StoreEvent[] = [];
        store.onChange((event) => events.push(event));
        for (const [name, value] of values) {
          store.set("big", name, value);
          assert.equal(store.get("big", name), value, name);
        }
        const all = store.getAll("big");
        for (const [name, value] of values) assert.equal(all.get(name), value);
        assert.equal(events.length, values.length);
        assert.equal(events[0]?.value, values[0]![1]);
        store.transaction((tx) => tx.set("big", "copy", values[1]![1]));
        assert.equal(store.get("big", "copy"), values[1]![1]);
      }
      if (path !== ":memory:") {
        using store = new Store(path);
        for (const [name, value] of values) {
          assert.equal(
            store.get("big", name),
            value,
            `${name} after reopening`,
          );
        }
      }
      console.log(
        `    3 × 16 MiB written and read back in ${
          Math.round(performance.now() - started)
        } ms`,
      );
    });
  }
});

Deno.test("Store accepts 1,000,000-character keys and groups in every method", async () => {
  using store = new Store();
  const key = "k".repeat(1_000_000);
  const astral = "😀".repeat(500_000);
  const group = "g".repeat(999_999) + "é";
  const events: StoreEvent[] = [];
  store.onChange((event) => events.push(event));
  const watcher = store.watch(group, key);
  for (const k of [key, astral]) {
    store.set(group, k, k.slice(0, 10));
    assert.equal(store.get(group, k), k.slice(0, 10));
    assert.equal(store.exists(group, k), true);
    assert.equal(store.ttl(group, k), Infinity);
  }
  assert.deepEqual(
    store.list(group).entries.map(([k, v]) => [k.length, v]),
    [[1_000_000, "k".repeat(10)], [1_000_000, "😀".repeat(5)]],
  );
  const page = store.list(group, { limit: 1 });
  assert.equal(page.cursor, key);
  assert.deepEqual(
    store.list(group, { cursor: page.cursor }).entries.map(([k]) =>
      k === astral
    ),
    [true],
  );
  assert.equal(store.countAll(group.slice(0, 500_000)), 2);
  assert.deepEqual(store.groups(group), [group]);
  const tenant = new ScopedStore(store, "t", { maxKeys: 1 });
  tenant.set(group, key, "v");
  assert.throws(() => tenant.set(group, astral, "v"), QuotaExceededError);
  assert.equal(store.delete(group, key), true);
  assert.equal(store.deleteGroup(group), 1);
  store.close();
  assert.equal((await Array.fromAsync(watcher)).length, 2);
  assert.deepEqual(events.map((e) => e.type), [
    "set",
    "set",
    "set",
    "delete",
    "delete_group",
  ]);
});
