/**
 * The atomic operations where the conformance cases cannot reach: inside
 * transactions, across connections to one file, through the change feed,
 * and in the file itself.
 */

import assert from "node:assert/strict";
import {
  QuotaExceededError,
  ScopedStore,
  Store,
  type StoreEvent,
  toAsync,
} from "@core/store";
import { FakeClock, rawQuery, tempDir } from "./_helpers.ts";

Deno.test("Store.transaction offers the atomic operations, inside its one transaction", async (t) => {
  await t.step("they see and join the transaction's writes", () => {
    using store = new Store();
    const events: StoreEvent[] = [];
    store.onChange((e) => events.push(e));
    const result = store.transaction((tx) => {
      tx.set("g", "n", "10");
      const n = tx.increment("g", "n", 5);
      assert.equal(events.length, 0, "events wait for COMMIT");
      const won = tx.setIfAbsent("g", "lock", "me");
      const swapped = tx.compareAndSet("g", "lock", "me", "you");
      const released = tx.compareAndDelete("g", "lock", "you");
      return [n, won, swapped, released, tx.getAndDelete("g", "n")];
    });
    assert.deepEqual(result, [15, true, true, true, "15"]);
    assert.deepEqual(events.map((e) => `${e.type} ${e.key} ${e.value}`), [
      "set n 10",
      "set n 15",
      "set lock me",
      "set lock you",
      "delete lock undefined",
      "delete n undefined",
    ]);
  });

  await t.step("a throw rolls them back with the rest", () => {
    using store = new Store();
    store.set("g", "n", "1");
    assert.throws(() =>
      store.transaction((tx) => {
        tx.increment("g", "n");
        tx.getAndDelete("g", "n");
        throw new Error("no");
      })
    );
    assert.equal(store.get("g", "n"), "1");
  });

  await t.step(
    "a refused increment writes nothing and the transaction goes on",
    () => {
      using store = new Store();
      store.set("g", "bad", "x");
      const n = store.transaction((tx) => {
        assert.throws(() => tx.increment("g", "bad"), /holds "x"/);
        return tx.increment("g", "ok");
      });
      assert.equal(n, 1);
      assert.equal(store.get("g", "bad"), "x");
    },
  );

  await t.step("a scoped transaction holds them to the quota", () => {
    using store = new Store();
    const tenant = new ScopedStore(store, "t", { maxKeys: 1 });
    assert.throws(
      () =>
        tenant.transaction((tx) => {
          tx.increment("g", "a");
          tx.increment("g", "b");
        }),
      QuotaExceededError,
    );
    assert.equal(tenant.countAll(), 0);
  });
});

Deno.test("AsyncStore.transaction offers the atomic operations, committed all at once", async (t) => {
  await t.step("an increment keeps the expiry it read", async () => {
    const clock = new FakeClock();
    await using store = toAsync(new Store(":memory:", { clock: clock.fn }));
    await store.increment("w", "ip", 1, 1_000);
    clock.advance(300);
    const n = await store.transaction(async (tx) => {
      const n = await tx.increment("w", "ip", 2, 9_000);
      assert.equal(await tx.get("w", "ip"), "3");
      return n;
    });
    assert.equal(n, 3);
    assert.equal(await store.ttl("w", "ip"), 700);
  });

  await t.step("they see the transaction's own writes", async () => {
    await using store = toAsync(new Store());
    const result = await store.transaction(async (tx) => {
      const won = await tx.setIfAbsent("g", "k", "a", 100);
      const lost = await tx.setIfAbsent("g", "k", "b");
      const swapped = await tx.compareAndSet("g", "k", "a", "c");
      const kept = await tx.compareAndDelete("g", "k", "a");
      const taken = await tx.getAndDelete("g", "k");
      return [won, lost, swapped, kept, taken, await tx.get("g", "k")];
    });
    assert.deepEqual(result, [true, false, true, false, "c", undefined]);
    assert.equal(await store.get("g", "k"), undefined);
  });

  await t.step(
    "a write by someone else between read and commit makes it run again",
    async () => {
      const inner = new Store();
      await using store = toAsync(inner);
      inner.set("g", "n", "1");
      let runs = 0;
      const n = await store.transaction(async (tx) => {
        runs++;
        const n = await tx.increment("g", "n");
        if (runs === 1) inner.set("g", "n", "100");
        return n;
      });
      assert.equal(runs, 2);
      assert.equal(n, 101);
      assert.equal(inner.get("g", "n"), "101");
    },
  );
});

Deno.test("Store's atomic operations are exact between connections to one file", async (t) => {
  using dir = tempDir();
  const path = dir.file("s.db");
  await t.step("interleaved increments and takes of two connections", () => {
    using a = new Store(path);
    using b = new Store(path);
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) {
      seen.push(a.increment("c", "n"), b.increment("c", "n"));
    }
    assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i + 1));
    a.set("t", "tok", "v");
    assert.equal(b.getAndDelete("t", "tok"), "v");
    assert.equal(a.getAndDelete("t", "tok"), undefined);
    assert.equal(a.setIfAbsent("l", "k", "a"), true);
    assert.equal(b.setIfAbsent("l", "k", "b"), false);
    assert.equal(b.compareAndDelete("l", "k", "a"), true);
  });

  await t.step(
    "the file holds the decimal string, readable by any SQLite client",
    () => {
      const rows = rawQuery(
        path,
        "SELECT entry_value AS v, typeof(entry_value) AS t FROM entries WHERE group_name = 'c'",
      );
      assert.deepEqual(rows, [{ v: "100", t: "text" }]);
    },
  );

  await t.step(
    "other connections hear the writes through the change feed, with seqs",
    async () => {
      using writer = new Store(path, { changeFeed: true });
      using reader = new Store(path, { changeFeed: true, changePollMs: 5 });
      const heard: StoreEvent[] = [];
      reader.onChange((e) => heard.push(e));
      const own: StoreEvent[] = [];
      writer.onChange((e) => own.push(e));
      writer.increment("f", "n", 1, 60_000);
      writer.setIfAbsent("f", "n", "ignored");
      writer.getAndDelete("f", "n");
      const deadline = Date.now() + 5_000;
      while (heard.length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const brief = (events: StoreEvent[]) =>
        events.map((e) => [e.type, e.key, e.value, e.expiresAt, e.seq]);
      assert.equal(own.length, 2);
      assert.ok(own.every((e) => typeof e.seq === "number"));
      assert.deepEqual(brief(heard), brief(own), "the same events and seqs");
      assert.deepEqual(own.map((e) => e.origin), ["local", "local"]);
      assert.deepEqual(heard.map((e) => e.origin), ["remote", "remote"]);
    },
  );
});
