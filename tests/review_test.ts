/**
 * Defects found by an adversarial review of the core (engine, hub, feed,
 * timers), each pinned by the test that showed it.
 */

import assert from "node:assert/strict";
import { ScopedStore, Store, StoreError, type StoreEvent } from "@core/store";
import {
  catchReportedErrors,
  keepAlive,
  rawQuery,
  tempDir,
} from "./_helpers.ts";

/** Collects what reaches `reportError()` while `fn` runs. */
async function reported(fn: () => Promise<void>): Promise<unknown[]> {
  using catcher = catchReportedErrors();
  await fn();
  return catcher.errors;
}

Deno.test("Store survives a change callback that closes it", async (t) => {
  await t.step("on an event the change-feed poll delivered", async () => {
    using dir = tempDir();
    const path = dir.file("poll.db");
    const store = new Store(path, {
      changeFeed: true,
      changePollMs: 5,
      purgeIntervalMs: 0,
    });
    using writer = new Store(path, { purgeIntervalMs: 0 });
    const errors = await reported(async () => {
      const closed = new Promise<StoreEvent>((resolve) => {
        store.onChange((event) => {
          store.close();
          resolve(event);
        });
      });
      writer.set("g", "k", "v");
      const event = await keepAlive(closed);
      assert.equal(event.origin, "remote");
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    assert.deepEqual(errors, []);
  });

  await t.step("on an expire event the expiry timer delivered", async () => {
    using dir = tempDir();
    const store = new Store(dir.file("timer.db"), {
      changeFeed: true,
      changePollMs: 0,
      purgeIntervalMs: 0,
    });
    const errors = await reported(async () => {
      const expired = new Promise<void>((resolve) => {
        store.onChange((event) => {
          if (event.type !== "expire") return;
          store.close();
          resolve();
        });
      });
      store.setWithTTL("g", "k", "v", 20);
      await keepAlive(expired);
      await new Promise((resolve) => setTimeout(resolve, 20));
    });
    assert.deepEqual(errors, []);
  });

  await t.step("on the event of its own write with a TTL", () => {
    using dir = tempDir();
    let reads = 0;
    const store = new Store(dir.file("ttl.db"), {
      changeFeed: true,
      changePollMs: 0,
      purgeIntervalMs: 0,
      clock: () => (reads++, Date.now()),
    });
    let atClose = -1;
    store.onChange(() => {
      store.close();
      atClose = reads;
    });
    store.setWithTTL("g", "k", "v", 3_600_000);
    // Arming the expiry timer reads the clock: a closed store arms none.
    assert.equal(reads, atClose);
    assert.throws(() => store.watch("g", "k"), { name: "StoreClosedError" });
  });
});

Deno.test("Store.transaction throws StoreError when its function closes the store", async (t) => {
  for (const changeFeed of [false, true]) {
    await t.step(changeFeed ? "with the change feed" : "without", () => {
      using dir = tempDir();
      const path = dir.file("closed.db");
      const store = new Store(path, { changeFeed, purgeIntervalMs: 0 });
      assert.throws(
        () =>
          store.transaction((tx) => {
            tx.set("g", "k", "v");
            store.close();
          }),
        (error) =>
          error instanceof StoreError &&
          error.message.startsWith("Cannot run transaction: "),
      );
      using reopened = new Store(path, { purgeIntervalMs: 0 });
      assert.equal(reopened.get("g", "k"), undefined);
    });
  }
});

Deno.test("Store.transaction keeps nothing once SQLite rolled it back after a failed statement", async (t) => {
  for (const changeFeed of [false, true]) {
    await t.step(changeFeed ? "with the change feed" : "without", () => {
      using dir = tempDir();
      const path = dir.file("rolled.db");
      using store = new Store(path, { changeFeed, purgeIntervalMs: 0 });
      // A statement error that ends the whole transaction, as SQLITE_FULL
      // may: a trigger an operator added, refusing one key.
      rawQuery(
        path,
        "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.entry_key = 'bad' BEGIN SELECT RAISE(ROLLBACK, 'refused'); END",
      );
      const events: StoreEvent[] = [];
      store.onChange((event) => events.push(event));
      const inner: unknown[] = [];
      assert.throws(
        () =>
          store.transaction((tx) => {
            tx.set("g", "before", "1");
            try {
              tx.set("g", "bad", "x");
            } catch (error) {
              inner.push(error);
            }
            try {
              tx.set("g", "after", "2");
            } catch (error) {
              inner.push(error);
            }
          }),
        StoreError,
      );
      assert.equal(inner.length, 2);
      assert.ok(inner.every((error) => error instanceof StoreError));
      assert.deepEqual(rawQuery(path, "SELECT entry_key FROM entries"), []);
      assert.deepEqual(events, []);
    });
  }
});

Deno.test("Store.set reports a failure of its own COMMIT and keeps nothing", async (t) => {
  for (const changeFeed of [false, true]) {
    await t.step(changeFeed ? "with the change feed" : "without", () => {
      using dir = tempDir();
      const path = dir.file("deferred.db");
      using store = new Store(path, { changeFeed, purgeIntervalMs: 0 });
      // A deferred foreign key is checked at COMMIT only: the upsert's step
      // itself succeeds, and the autocommit that ends it fails.
      rawQuery(path, "CREATE TABLE parent (id INTEGER PRIMARY KEY)");
      rawQuery(
        path,
        "CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
      );
      rawQuery(
        path,
        "CREATE TRIGGER orphan AFTER INSERT ON entries WHEN NEW.entry_key = 'bad' BEGIN INSERT INTO child VALUES (1); END",
      );
      const events: StoreEvent[] = [];
      store.onChange((event) => events.push(event));
      store.set("g", "good", "1");
      assert.throws(
        () => store.set("g", "bad", "x"),
        (error) =>
          error instanceof StoreError &&
          error.message === "Cannot set value: FOREIGN KEY constraint failed",
      );
      assert.equal(store.get("g", "bad"), undefined);
      assert.deepEqual(rawQuery(path, "SELECT entry_key FROM entries"), [
        { entry_key: "good" },
      ]);
      assert.deepEqual(events.map((event) => event.key), ["good"]);
    });
  }
});

/** A store on `path` with the change feed, read only when asked to. */
function feedStore(path: string, maxRows: number): Store {
  return new Store(path, {
    changeFeed: true,
    changePollMs: 0,
    purgeIntervalMs: 0,
    changeRetention: { maxRows },
  });
}

/** Makes `store` read the change log now (registering a listener does). */
function catchUp(store: Store): void {
  store.watch("*", "*")[Symbol.dispose]();
}

const brief = (e: StoreEvent) => `${e.seq} ${e.origin} ${e.type} ${e.group}`;

Deno.test("Store.deleteGroup of more keys than the change log keeps numbers its event after the last seq", () => {
  using dir = tempDir();
  const path = dir.file("group.db");
  using store = feedStore(path, 100);
  using reader = feedStore(path, 100);
  const own: StoreEvent[] = [];
  const heard: StoreEvent[] = [];
  store.onChange((event) => own.push(event));
  reader.onChange((event) => heard.push(event));
  store.transaction(() => {
    for (let i = 0; i < 300; i++) store.set("big", `k${i}`, "v");
  });
  catchUp(reader);
  const last = heard.at(-1)?.seq as number;
  assert.equal(last, 300);
  own.length = 0;
  heard.length = 0;
  assert.equal(store.deleteGroup("big"), 300);
  store.set("small", "k", "v");
  catchUp(reader);
  assert.deepEqual(own.map(brief), [
    "301 local delete_group big",
    "302 local set small",
  ]);
  assert.deepEqual(heard.map(brief), [
    "301 remote delete_group big",
    "302 remote set small",
  ]);
});

Deno.test("Store delivers every expire event of a purge that logs more rows than the change log keeps", async (t) => {
  await t.step("purgeExpired", () => {
    using dir = tempDir();
    let now = 1_000;
    using store = new Store(dir.file("purge.db"), {
      changeFeed: true,
      changePollMs: 0,
      purgeIntervalMs: 0,
      changeRetention: { maxRows: 100 },
      clock: () => now,
    });
    store.transaction(() => {
      for (let i = 0; i < 500; i++) {
        store.setWithTTL("g", `k${(i * 7) % 500}`, "v", 10);
      }
    });
    const events: StoreEvent[] = [];
    store.onChange((event) => events.push(event));
    now = 2_000;
    assert.equal(store.purgeExpired(), 500);
    assert.equal(events.length, 500);
    assert.ok(events.every((e) => e.type === "expire" && e.origin === "local"));
    assert.deepEqual(
      events.map((e) => e.seq),
      Array.from({ length: 500 }, (_, i) => 501 + i),
    );
    // The rows the log kept say the same as the events numbered alike.
    const kept = rawQuery(
      dir.file("purge.db"),
      "SELECT seq, key FROM kv_changes WHERE type = 'expire' ORDER BY seq",
    );
    assert.ok(kept.length > 0);
    for (const { seq, key } of kept) {
      assert.equal(events.find((e) => e.seq === seq)?.key, key);
    }
  });

  await t.step("a quota check's purge of its namespace", () => {
    using dir = tempDir();
    let now = 1_000;
    using store = new Store(dir.file("quota.db"), {
      changeFeed: true,
      changePollMs: 0,
      purgeIntervalMs: 0,
      changeRetention: { maxRows: 100 },
      clock: () => now,
    });
    const tenant = new ScopedStore(store, "t", { maxKeys: 300 });
    tenant.transaction(() => {
      for (let i = 0; i < 300; i++) tenant.setWithTTL("g", `k${i}`, "v", 10);
    });
    const events: StoreEvent[] = [];
    store.onChange((event) => events.push(event));
    now = 2_000;
    tenant.set("g", "new", "v");
    assert.equal(events.filter((e) => e.type === "expire").length, 300);
    assert.deepEqual(events.at(-1)?.key, "new");
  });
});

Deno.test("Store and ScopedStore treat null options as they did before the core split", async (t) => {
  await t.step("a null path is refused, not taken for :memory:", () => {
    assert.throws(() => new Store(null as unknown as string), {
      name: "TypeError",
      message: "Cannot open store: path must be a string, received null",
    });
  });

  await t.step("a null durability means the default", () => {
    using dir = tempDir();
    using store = new Store(dir.file("d.db"), {
      durability: null as unknown as "full",
      purgeIntervalMs: 0,
    });
    store.set("g", "k", "v");
    assert.equal(store.get("g", "k"), "v");
  });

  await t.step("a null limit or missingKey means the default", () => {
    using store = new Store(":memory:", { purgeIntervalMs: 0 });
    store.set("g", "k", "v");
    const tenant = new ScopedStore(store, "t");
    tenant.set("g", "k", "v");
    for (const s of [store, tenant]) {
      assert.deepEqual(s.list("g", { limit: null as unknown as number }), {
        entries: [["k", "v"]],
        cursor: undefined,
      });
      const missingKey = null as unknown as "zero";
      assert.equal(s.render("{{.k}}", "g", { missingKey }), "v");
    }
  });

  await t.step("a null quota is refused", () => {
    using store = new Store(":memory:", { purgeIntervalMs: 0 });
    assert.throws(() => new ScopedStore(store, "t", null as never), {
      name: "TypeError",
      message:
        "Cannot create scoped store: quota must be an object, received null",
    });
  });

  await t.step("a number where a mode belongs is named by its value", () => {
    assert.throws(
      () => new Store(":memory:", { durability: 5 as unknown as "full" }),
      {
        name: "TypeError",
        message:
          'Cannot open store: durability must be "normal" or "full", received 5',
      },
    );
    using store = new Store(":memory:", { purgeIntervalMs: 0 });
    assert.throws(
      () => store.render("x", "g", { missingKey: 5 as unknown as "zero" }),
      {
        name: "RangeError",
        message:
          'Cannot render template: missingKey must be "default", "zero" or "error", received 5',
      },
    );
  });
});

Deno.test("Store's expiry timer backs off while a fake clock stands before the deadline", async () => {
  let now = 1_700_000_000_000;
  let reads = 0;
  using store = new Store(":memory:", {
    purgeIntervalMs: 0,
    clock: () => (reads++, now),
  });
  const expired = new Promise<StoreEvent>((resolve) => {
    store.onChange((event) => {
      if (event.type === "expire") resolve(event);
    });
  });
  store.setWithTTL("g", "k", "v", 1);
  reads = 0;
  await keepAlive(new Promise((resolve) => setTimeout(resolve, 300)));
  // Re-armed for the same millisecond each time, it fired ~300 times.
  assert.ok(reads < 60, `the clock was read ${reads} times in 300 ms`);
  now += 1;
  const started = Date.now();
  assert.equal((await keepAlive(expired)).key, "k");
  assert.ok(Date.now() - started < 1_500);
});

Deno.test('Store.watch of the key "" replays no group deletion, as it receives none live', async () => {
  using dir = tempDir();
  using store = feedStore(dir.file("empty-key.db"), 1_000);
  store.set("g", "", "v");
  const since = 1;
  store.deleteGroup("g");
  store.set("g", "", "w");
  const watcher = store.watch("g", "", { since });
  store.deleteGroup("g");
  store.set("g", "", "x");
  store.unwatch(watcher);
  const seen: string[] = [];
  for await (const event of watcher) seen.push(`${event.type} ${event.seq}`);
  assert.deepEqual(seen, ["set 3", "set 5"]);
});

Deno.test("Store hands events to callbacks after a transaction, not inside it", async (t) => {
  await t.step(
    "a callback's write is not rolled back with the transaction",
    () => {
      using dir = tempDir();
      const path = dir.file("inside.db");
      using store = feedStore(path, 1_000);
      using writer = new Store(path, { purgeIntervalMs: 0 });
      store.onChange((event) => {
        if (event.group === "g") store.set("seen", event.key, event.origin);
      });
      writer.set("g", "remote", "v");
      let watcher: ReturnType<Store["watch"]> | undefined;
      assert.throws(
        () =>
          store.transaction((tx) => {
            tx.set("g", "mine", "v");
            // Registering reads the log: the remote set reaches the callback.
            watcher = store.watch("g", "*");
            throw new Error("abort");
          }),
        /abort/,
      );
      assert.equal(store.get("seen", "remote"), "remote");
      assert.equal(store.get("g", "mine"), undefined);
      assert.equal(store.get("seen", "mine"), undefined);
      store.unwatch(watcher as ReturnType<Store["watch"]>);
    },
  );

  await t.step(
    "a listener registered inside still hears only what follows",
    async () => {
      using dir = tempDir();
      const path = dir.file("order.db");
      using store = feedStore(path, 1_000);
      using writer = new Store(path, { purgeIntervalMs: 0 });
      const heard: string[] = [];
      store.onChange((e) => heard.push(`early ${e.origin} ${e.key}`));
      writer.set("g", "remote", "v");
      const watcher = store.transaction((tx) => {
        const w = store.watch("g", "*");
        store.onChange((e) => heard.push(`late ${e.origin} ${e.key}`));
        tx.set("g", "mine", "v");
        return w;
      });
      store.unwatch(watcher);
      const seen: string[] = [];
      for await (const e of watcher) seen.push(`${e.origin} ${e.key}`);
      assert.deepEqual(seen, ["local mine"]);
      assert.deepEqual(heard, [
        "early remote remote",
        "early local mine",
        "late local mine",
      ]);
    },
  );
});

Deno.test("Store.onChange registered in a transaction hears the expiries purged earlier in it", async (t) => {
  for (const changeFeed of [false, true]) {
    await t.step(changeFeed ? "with the change feed" : "without", () => {
      using dir = tempDir();
      let now = 1_000;
      using store = new Store(dir.file("late.db"), {
        changeFeed,
        changePollMs: 0,
        purgeIntervalMs: 0,
        clock: () => now,
      });
      store.setWithTTL("g", "k", "v", 10);
      now = 2_000;
      const heard: string[] = [];
      store.transaction(() => {
        store.purgeExpired();
        store.onChange((e) => heard.push(`${e.type} ${e.key}`));
      });
      assert.deepEqual(heard, ["expire k"]);
    });
  }
});
