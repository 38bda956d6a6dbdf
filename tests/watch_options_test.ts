import assert from "node:assert/strict";
import {
  AsyncScopedStore,
  ScopedStore,
  Store,
  type StoreEvent,
  toAsync,
  type Watcher,
} from "@core/store";
import { drain, tempDir } from "./_helpers.ts";

async function take(watcher: Watcher, n: number): Promise<StoreEvent[]> {
  const reader = watcher.stream.getReader();
  const out: StoreEvent[] = [];
  try {
    while (out.length < n) {
      const { done, value } = await reader.read();
      if (done) break;
      out.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return out;
}

Deno.test("Store.watch() capacity sets how many unread events a watcher queues", async (t) => {
  await t.step("16 by default, up to 65,536 when asked", async () => {
    using store = new Store();
    using small = store.watch("g", "*");
    using large = store.watch("g", "*", { capacity: 1_000 });
    using one = store.watch("g", "*", { capacity: 1 });
    for (let i = 0; i < 1_200; i++) store.set("g", `k${i}`, "v");
    assert.deepEqual(
      [small.capacity, large.capacity, one.capacity],
      [16, 1_000, 1],
    );
    assert.deepEqual([small.dropped, large.dropped, one.dropped], [
      1_184,
      200,
      1_199,
    ]);
    const got = await drain(store, large);
    assert.equal(got.length, 1_000);
    assert.equal(got.at(-1)?.key, "k999");
  });

  await t.step("out of range or not a number is refused", () => {
    using store = new Store();
    for (const capacity of [0, -1, 1.5, 65_537, NaN, Infinity]) {
      assert.throws(
        () => store.watch("g", "*", { capacity }),
        (e: Error) =>
          e instanceof RangeError &&
          e.message.startsWith(
            "Cannot watch: capacity must be an integer from 1 to 65536",
          ),
      );
    }
    assert.throws(
      () => store.watch("g", "*", { capacity: "8" as unknown as number }),
      TypeError,
    );
    assert.throws(
      () => store.watch("g", "*", 5 as unknown as { capacity: number }),
      TypeError,
    );
    assert.equal(store.watch("g", "*", { capacity: 65_536 }).capacity, 65_536);
  });

  await t.step("every store front honours it", async () => {
    using store = new Store();
    const tenant = new ScopedStore(store, "t");
    const async = toAsync(store);
    const asyncTenant = new AsyncScopedStore(async, "t");
    const watchers = [
      tenant.watch("g", "*", { capacity: 3 }),
      tenant.watch("*", "*", { capacity: 3 }),
      async.watch("t:g", "*", { capacity: 3 }),
      asyncTenant.watch("g", "*", { capacity: 3 }),
      asyncTenant.watch("*", "*", { capacity: 3 }),
    ];
    for (let i = 0; i < 5; i++) tenant.set("g", `k${i}`, "v");
    for (const w of watchers) {
      assert.equal(w.capacity, 3);
      assert.equal(w.dropped, 2);
    }
    assert.throws(() => tenant.watch("g", "*", { capacity: 0 }), RangeError);
    assert.throws(() => async.watch("g", "*", { capacity: 0 }), RangeError);
    assert.throws(
      () => asyncTenant.watch("*", "*", { capacity: 0 }),
      RangeError,
    );
    for (const w of watchers) await drain(store, w);
  });
});

Deno.test("Store.watch() with prefix: true watches every group starting with group", async (t) => {
  await t.step("live, on the store and its scoped fronts", async () => {
    using store = new Store();
    const tenant = new ScopedStore(store, "t");
    const async = toAsync(store);
    const asyncTenant = new AsyncScopedStore(async, "t");
    const watchers = {
      store: store.watch("t:user:", "*", { prefix: true }),
      every: store.watch("", "*", { prefix: true }),
      key: store.watch("t:user:", "name", { prefix: true }),
      tenant: tenant.watch("user:", "*", { prefix: true }),
      async: async.watch("t:user:", "*", { prefix: true }),
      asyncTenant: asyncTenant.watch("user:", "*", { prefix: true }),
    };
    store.set("t:user:1", "name", "Ada");
    store.set("t:team:1", "name", "core");
    store.set("t:user:2", "age", "36");
    store.deleteGroup("t:user:1");
    store.set("t:users", "x", "not under user:");
    store.set("u:user:3", "name", "other tenant");
    const groups = async (w: Watcher) =>
      (await drain(store, w)).map((e) => `${e.type} ${e.group}/${e.key}`);
    const mine = [
      "set t:user:1/name",
      "set t:user:2/age",
      "delete_group t:user:1/",
    ];
    assert.deepEqual(await groups(watchers.store), mine);
    assert.deepEqual(await groups(watchers.tenant), mine);
    assert.deepEqual(await groups(watchers.async), mine);
    assert.deepEqual(await groups(watchers.asyncTenant), mine);
    assert.deepEqual(await groups(watchers.key), ["set t:user:1/name"]);
    assert.equal((await drain(store, watchers.every)).length, 6);
  });

  await t.step(
    "a prefix is literal: * and : are ordinary characters",
    async () => {
      using store = new Store();
      using w = store.watch("a*", "*", { prefix: true });
      store.set("ab", "k", "1");
      store.set("a*b", "k", "2");
      assert.deepEqual((await take(w, 1)).map((e) => e.group), ["a*b"]);
    },
  );

  await t.step("since resumes as for one group, from the log", async () => {
    using dir = tempDir();
    const path = dir.file("p.db");
    using store = new Store(path, { changeFeed: true });
    using other = new Store(path, { changeFeed: true });
    store.set("user:1", "k", "a");
    const since = store.snapshot("user:1").position as number;
    other.set("user:2", "k", "b");
    other.set("team:1", "k", "c");
    other.set("user:3", "k", "d");
    const tenantStore = new ScopedStore(store, "user");
    const w = store.watch("user:", "*", { prefix: true, since });
    const scoped = tenantStore.watch("", "*", { prefix: true, since });
    store.set("user:4", "k", "e");
    for (const watcher of [w, scoped]) {
      const got = await drain(store, watcher);
      assert.deepEqual(got.map((e) => [e.group, e.origin]), [
        ["user:2", "remote"],
        ["user:3", "remote"],
        ["user:4", "local"],
      ]);
    }
  });

  await t.step("prefix must be a boolean", () => {
    using store = new Store();
    assert.throws(
      () => store.watch("g", "*", { prefix: 1 as unknown as boolean }),
      /Cannot watch: prefix must be a boolean, received number/,
    );
  });
});

Deno.test("Store.watch() with since replays events with the time of their write", async () => {
  using dir = tempDir();
  const path = dir.file("t.db");
  const writeTime = Date.now();
  {
    using writer = new Store(path, { changeFeed: true });
    writer.set("g", "a", "1");
    writer.delete("g", "a");
  }
  // The reader's clock is a day later: a replay stamped with it is wrong.
  const later = writeTime + 86_400_000;
  using reader = new Store(path, { changeFeed: true, clock: () => later });
  const got = await drain(reader, reader.watch("g", "*", { since: 0 }));
  assert.equal(got.length, 2);
  for (const event of got) {
    assert.ok(
      Math.abs(event.timestamp - writeTime) < 5_000,
      `${event.type} at ${event.timestamp}, written at ${writeTime}`,
    );
  }
});

Deno.test("Store.snapshot() reads a group's entries and their position at one instant", async (t) => {
  await t.step("with the change feed: the last seq", async () => {
    using dir = tempDir();
    const path = dir.file("s.db");
    using store = new Store(path, { changeFeed: true });
    using other = new Store(path, { changeFeed: true });
    store.set("g", "a", "1");
    other.set("g", "b", "2");
    other.set("h", "x", "3");
    const snapshot = store.snapshot("g");
    assert.deepEqual([...snapshot.entries], [["a", "1"], ["b", "2"]]);
    assert.equal(snapshot.position, 3);
    other.set("g", "c", "4");
    const w = store.watch("g", "*", { since: snapshot.position });
    const got = await drain(store, w);
    assert.deepEqual(got.map((e) => [e.seq, e.key]), [[4, "c"]]);
  });

  await t.step("without it: no position", () => {
    using store = new Store();
    store.set("g", "a", "1");
    assert.equal(store.snapshot("g").position, undefined);
    assert.throws(
      () => store.snapshot(1 as unknown as string),
      /Cannot read a snapshot: group must be a string/,
    );
  });

  await t.step("on the scoped and asynchronous fronts", async () => {
    using dir = tempDir();
    using store = new Store(dir.file("a.db"), { changeFeed: true });
    const async = toAsync(store);
    store.set("t:g", "a", "1");
    const expected = { entries: new Map([["a", "1"]]), position: 1 };
    assert.deepEqual(new ScopedStore(store, "t").snapshot("g"), expected);
    assert.deepEqual(await async.snapshot?.("t:g"), expected);
    assert.deepEqual(
      await new AsyncScopedStore(async, "t").snapshot("g"),
      expected,
    );
  });
});
