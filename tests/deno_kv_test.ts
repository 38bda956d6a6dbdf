/**
 * What the Deno KV store adds to Deno KV beyond the conformance suite:
 * large values, limits, group deletion of any size, stores sharing one
 * database, resumable events, quotas under races and expiry on time.
 */

import assert from "node:assert/strict";
import {
  AsyncScopedStore,
  QuotaExceededError,
  StoreError,
  type StoreEvent,
} from "@core/store";
import { DenoKvStore } from "@core/store/deno-kv";
import {
  expireLateness,
  FakeClock,
  keepAlive,
  nextValue,
  readUntilTrimmed,
  tempDir,
} from "./_helpers.ts";

/** Two stores on one database file, each with its own handle. */
async function pair(path: string, clock?: FakeClock) {
  const options = clock === undefined
    ? { path }
    : { path, clock: clock.fn, purgeIntervalMs: 0 };
  const a = await DenoKvStore.open(options);
  const b = await DenoKvStore.open(options);
  return {
    a,
    b,
    async [Symbol.asyncDispose]() {
      await a.close();
      await b.close();
    },
  };
}

Deno.test("DenoKvStore.open checks its options", async (t) => {
  await t.step("refuses bad types with the store's messages", async () => {
    await assert.rejects(
      DenoKvStore.open({ path: 1 as unknown as string }),
      { name: "TypeError", message: /path must be a string/ },
    );
    await assert.rejects(
      DenoKvStore.open({ kv: {} as Deno.Kv }),
      { name: "TypeError", message: /kv must be a Deno.Kv/ },
    );
    await assert.rejects(
      DenoKvStore.open({ prefix: "" }),
      { name: "TypeError", message: /prefix must be a non-empty string/ },
    );
    await assert.rejects(
      DenoKvStore.open({ purgeIntervalMs: -1 }),
      RangeError,
    );
    await assert.rejects(
      DenoKvStore.open({ clock: () => NaN }),
      RangeError,
    );
  });
  await t.step("leaves a handle the caller gave open", async () => {
    using kv = await Deno.openKv(":memory:");
    const store = await DenoKvStore.open({ kv });
    await store.set("g", "k", "v");
    await store.close();
    assert.equal((await kv.get(["store", "e", "g", "k"])).value !== null, true);
  });
  await t.step("keeps stores of different prefixes apart", async () => {
    using kv = await Deno.openKv(":memory:");
    await using a = await DenoKvStore.open({ kv, prefix: "a" });
    await using b = await DenoKvStore.open({ kv, prefix: "b" });
    await a.set("g", "k", "from a");
    assert.equal(await b.get("g", "k"), undefined);
    assert.deepEqual(await b.groups(), []);
  });
});

Deno.test("DenoKvStore stores large values in chunks, read whole", async (t) => {
  await using store = await DenoKvStore.open({ path: ":memory:" });
  const sizes = { "100 KB": 100_000, "1 MiB": 1024 * 1024 };
  for (const [name, size] of Object.entries(sizes)) {
    await t.step(`round-trips ${name} of text with emoji and NUL`, async () => {
      const unit = "a\0😀é";
      const value = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
      await store.set("big", name, value);
      assert.equal(await store.get("big", name), value);
      assert.equal((await store.getAll("big")).get(name), value);
      const records = await Array.fromAsync(store.exportEntries());
      assert.equal(records.find((r) => r.key === name)?.value, value);
    });
  }
  await t.step("replaces a large value by a small one and back", async () => {
    const big = "x".repeat(700_000);
    await store.set("swap", "k", big);
    await store.set("swap", "k", "small");
    assert.equal(await store.get("swap", "k"), "small");
    await store.setWithTTL("swap", "k", big + "y", 60_000);
    assert.equal(await store.get("swap", "k"), big + "y");
    assert.equal(await store.delete("swap", "k"), true);
    assert.equal(await store.get("swap", "k"), undefined);
  });
  await t.step("hands large values to remote listeners", async () => {
    using kv = await Deno.openKv(":memory:");
    await using a = await DenoKvStore.open({ kv });
    await using b = await DenoKvStore.open({ kv });
    const value = "z".repeat(200_000);
    const heard = nextValue<StoreEvent>(
      (fn) => b.onChange(fn),
      undefined,
      5_000,
    );
    await a.set("big", "remote", value);
    const event = await heard;
    assert.equal(event.origin, "remote");
    assert.equal(event.value, value);
  });
});

Deno.test("DenoKvStore refuses what Deno KV cannot hold, writing nothing", async (t) => {
  await using store = await DenoKvStore.open({ path: ":memory:" });
  await t.step("a key past Deno KV's key size", async () => {
    await assert.rejects(
      store.set("g", "k".repeat(3_000), "v"),
      { name: "RangeError", message: /Cannot set value: group and key take/ },
    );
    assert.equal(await store.get("g", "k".repeat(3_000)), undefined);
  });
  await t.step("a transaction past one atomic operation", async () => {
    await assert.rejects(
      store.transaction(async (tx) => {
        for (let i = 0; i < 600; i++) await tx.set("tx", `k${i}`, "v");
      }),
      (error: unknown) =>
        error instanceof StoreError &&
        /Cannot run transaction: Deno KV refused it/.test(error.message) &&
        /nothing was written/.test(error.message),
    );
    assert.equal(await store.count("tx"), 0);
  });
});

Deno.test("DenoKvStore.deleteGroup deletes 2,500 keys (past the 1,000 mutations of one atomic) at one commit for readers", async () => {
  using dir = tempDir();
  await using s = await pair(dir.file("db.kv"));
  const records = Array.from({ length: 2_500 }, (_, i) => ({
    group: "big",
    key: `k${String(i).padStart(5, "0")}`,
    value: `v${i}`,
    expiresAt: null,
  }));
  await s.a.importEntries(records);
  assert.equal(await s.b.count("big"), 2_500);
  const events: StoreEvent[] = [];
  const off = s.b.onChange((e) => events.push(e));
  let deleting = true;
  const seen = new Set<number>();
  const reader = (async () => {
    while (deleting) {
      const [count, all, one] = await Promise.all([
        s.b.count("big"),
        s.b.getAll("big"),
        s.b.get("big", "k02499"),
      ]);
      seen.add(count);
      assert.ok(all.size === 0 || all.size === 2_500, `saw ${all.size}`);
      assert.ok(one === undefined || one === "v2499");
    }
  })();
  assert.equal(await s.a.deleteGroup("big"), 2_500);
  deleting = false;
  await reader;
  for (const n of seen) assert.ok(n === 0 || n === 2_500, `saw ${n}`);
  assert.equal(await s.b.count("big"), 0);
  await s.a.set("big", "after", "1");
  assert.deepEqual([...await s.b.getAll("big")], [["after", "1"]]);
  // The old entries are gone from the database, not just hidden.
  using kv = await Deno.openKv(dir.file("db.kv"));
  const left = await Array.fromAsync(
    kv.list({ prefix: ["store", "e", "big"] }),
  );
  assert.equal(left.length, 1);
  await keepAlive(
    new Promise<void>((resolve) => {
      const check = () =>
        events.some((e) => e.key === "after")
          ? resolve()
          : setTimeout(check, 10);
      check();
    }),
  );
  off();
  assert.deepEqual(
    events.filter((e) => e.group === "big").map((e) => e.type),
    ["delete_group", "set"],
  );
});

Deno.test("DenoKvStore stores on one database share writes and events", async (t) => {
  using dir = tempDir();
  await using s = await pair(dir.file("db.kv"));
  await t.step("a write is read through the other handle at once", async () => {
    await s.a.set("config", "theme", "dark");
    assert.equal(await s.b.get("config", "theme"), "dark");
  });
  await t.step("events reach the other store as remote, same seq", async () => {
    const watcher = s.b.watch("config", "*");
    const local: StoreEvent[] = [];
    const off = s.a.onChange((e) => local.push(e));
    await new Promise((r) => setTimeout(r, 30));
    await s.a.set("config", "lang", "en");
    await s.a.delete("config", "theme");
    const reader = watcher.stream.getReader();
    const first = (await reader.read()).value as StoreEvent;
    const second = (await reader.read()).value as StoreEvent;
    reader.releaseLock();
    off();
    await s.b.unwatch(watcher);
    assert.equal(first.origin, "remote");
    assert.equal(first.value, "en");
    assert.equal(second.type, "delete");
    assert.deepEqual(
      local.map((e) => [e.origin, e.seq]),
      [["local", first.seq], ["local", second.seq]],
    );
    assert.ok(Number.isSafeInteger(first.seq));
    assert.ok((second.seq as number) > (first.seq as number));
  });
  await t.step("quotas hold across both stores under a race", async () => {
    const quota = { maxKeys: 10 };
    const ta = new AsyncScopedStore(s.a, "race", quota);
    const tb = new AsyncScopedStore(s.b, "race", quota);
    const results = await Promise.allSettled(
      Array.from(
        { length: 30 },
        (_, i) => (i % 2 ? ta : tb).set("g", `k${i}`, "v"),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(ok, 10);
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof QuotaExceededError);
      }
    }
    assert.equal(await ta.countAll(), 10);
  });
  await t.step("transactions from both stores lose no update", async () => {
    await s.a.set("n", "c", "0");
    const add = (store: DenoKvStore) =>
      store.transaction(async (tx) => {
        const n = Number(await tx.get("n", "c"));
        await tx.set("n", "c", String(n + 1));
      });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => add(i % 2 ? s.a : s.b)),
    );
    assert.equal(await s.b.get("n", "c"), "20");
  });
  await t.step("increments from both stores count every one", async () => {
    const got = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) => (i % 2 ? s.a : s.b).increment("hits", "ip"),
      ),
    );
    assert.deepEqual(
      got.sort((x, y) => x - y),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
  });
});

Deno.test("DenoKvStore.watch resumes exactly after a seq", async (t) => {
  const clock = new FakeClock();
  await using store = await DenoKvStore.open({
    path: ":memory:",
    clock: clock.fn,
    purgeIntervalMs: 0,
  });
  const seqs: number[] = [];
  const off = store.onChange((e) => seqs.push(e.seq as number));
  for (let i = 0; i < 5; i++) await store.set("g", `k${i}`, `v${i}`);
  off();
  await t.step("replays the changes after since, then live ones", async () => {
    const watcher = store.watch("g", "*", { since: seqs[1] as number });
    const reader = watcher.stream.getReader();
    const replayed: string[] = [];
    for (let i = 0; i < 3; i++) {
      replayed.push((await reader.read()).value?.key as string);
    }
    assert.deepEqual(replayed, ["k2", "k3", "k4"]);
    await store.set("g", "k5", "live");
    const live = (await reader.read()).value as StoreEvent;
    assert.equal(live.key, "k5");
    assert.equal(live.timestamp, clock.now);
    reader.releaseLock();
    await store.unwatch(watcher);
  });
  await t.step("refuses a since the log no longer holds", async () => {
    const last = seqs.at(-1) as number;
    // Past the log's 10,000 entries: 51 transactions of 200 writes.
    for (let i = 0; i < 51; i++) {
      await store.transaction(async (tx) => {
        for (let j = 0; j < 200; j++) await tx.set("fill", `k${j}`, `${i}`);
      });
    }
    assert.throws(() => store.watch("g", "*", { since: last }), StoreError);
    assert.throws(() => store.watch("g", "*", { since: -1 }), RangeError);
  });
});

Deno.test("DenoKvStore.watch with since reads the log a page at a time as its reader reads", async () => {
  await using store = await DenoKvStore.open({
    path: ":memory:",
    purgeIntervalMs: 0,
  });
  for (let i = 0; i < 3; i++) {
    await store.transaction(async (tx) => {
      for (let j = 0; j < 200; j++) await tx.set("g", `k${i}-${j}`, "old");
    });
  }
  const watcher = store.watch("g", "*", { since: 0 });
  const reader = watcher.stream.getReader();
  assert.equal((await reader.read()).value?.key, "k0-0");
  // The reader stalls while 10,200 more changes push the first 800 out of
  // the log: a watcher that had read them all would not notice; one that
  // reads a page at a time finds the gap and says so.
  for (let i = 0; i < 51; i++) {
    await store.transaction(async (tx) => {
      for (let j = 0; j < 200; j++) await tx.set("fill", `k${j}`, `${i}`);
    });
  }
  const read = 1 + (await readUntilTrimmed(reader)).length;
  assert.ok(read >= 256 && read < 600, `${read} events before the gap`);
  await store.unwatch(watcher);
});

Deno.test("DenoKvStore sends expire events without a read while someone listens", async () => {
  await using store = await DenoKvStore.open({ path: ":memory:" });
  const n = 10;
  const late = await expireLateness(store, n, (i) => 30 + i * 5);
  // Timing under load is measured in the reliability suite; here: each
  // came, none before its deadline, none a purge interval late.
  for (const ms of late) assert.ok(ms >= -1 && ms < 1_000, `${ms} ms`);
});
