import assert from "node:assert/strict";
import { setImmediate } from "node:timers/promises";
import {
  Store,
  StoreClosedError,
  StoreError,
  type StoreEvent,
  type Transaction,
} from "@core/store";
import {
  clockedStore,
  FakeClock,
  rawQuery,
  record,
  tempDir,
} from "./_helpers.ts";

/** Every row of the file's entries table, in a stable order. */
function rows(path: string): Record<string, unknown>[] {
  return rawQuery(
    path,
    "SELECT group_name AS grp, entry_key AS key, entry_value AS value, expires_at FROM entries ORDER BY grp, key",
  );
}

Deno.test("Store.transaction() commits and returns what fn returned", () => {
  using store = new Store();
  const value = { answer: 42 };
  const result = store.transaction((tx) => {
    tx.set("g", "a", "1");
    tx.set("g", "b", "2");
    return value;
  });
  assert.equal(result, value);
  assert.deepEqual([...store.getAll("g")], [["a", "1"], ["b", "2"]]);
  assert.equal(store.transaction(() => undefined), undefined);
  assert.equal(store.transaction((tx) => tx.count("g")), 2);
});

Deno.test("Store.transaction() rolls back and rethrows the same error object", async (t) => {
  await t.step("an Error", () => {
    using store = new Store();
    store.set("g", "kept", "old");
    store.set("g", "doomed", "d");
    store.set("h", "x", "1");
    const boom = new RangeError("changed my mind");
    assert.throws(
      () =>
        store.transaction((tx) => {
          tx.set("g", "kept", "new");
          tx.set("g", "added", "a");
          tx.delete("g", "doomed");
          tx.deleteGroup("h");
          tx.setWithTTL("g", "ttl", "t", 10);
          store.set("direct", "k", "v");
          throw boom;
        }),
      (error) => error === boom,
    );
    assert.deepEqual([...store.getAll("g")], [["doomed", "d"], [
      "kept",
      "old",
    ]]);
    assert.equal(store.get("h", "x"), "1");
    assert.equal(store.get("direct", "k"), undefined);
    assert.equal(store.countAll(), 3);
  });

  await t.step("a thrown non-Error value", () => {
    using store = new Store();
    const thrown = { reason: "not an Error" };
    assert.throws(
      () =>
        store.transaction((tx) => {
          tx.set("g", "k", "v");
          throw thrown;
        }),
      (error) => error === thrown,
    );
    assert.throws(
      () =>
        store.transaction(() => {
          throw "a string";
        }),
      (error) => error === "a string",
    );
    assert.equal(store.countAll(), 0);
  });

  await t.step("an error from a store method inside fn", () => {
    using store = new Store();
    let inner: unknown;
    assert.throws(
      () =>
        store.transaction((tx) => {
          tx.set("g", "a", "1");
          try {
            tx.set("g", 1 as unknown as string, "x");
          } catch (error) {
            inner = error;
            throw error;
          }
        }),
      (error) => error === inner && error instanceof TypeError,
    );
    assert.equal(store.countAll(), 0);
  });

  await t.step("the store works normally afterwards", () => {
    using store = new Store();
    assert.throws(() =>
      store.transaction(() => {
        throw new Error("x");
      })
    );
    store.set("g", "k", "v");
    assert.equal(store.transaction((tx) => tx.get("g", "k")), "v");
  });
});

Deno.test("Store.transaction() reads see the transaction's own writes", () => {
  using store = new Store();
  store.set("g", "old", "o");
  store.set("h", "x", "1");
  store.transaction((tx) => {
    tx.set("g", "new", "n");
    assert.equal(tx.get("g", "new"), "n");
    assert.equal(tx.exists("g", "new"), true);
    assert.equal(tx.count("g"), 2);
    assert.deepEqual([...tx.getAll("g")], [["new", "n"], ["old", "o"]]);
    // The store itself, called inside fn, reads through the transaction.
    assert.equal(store.get("g", "new"), "n");
    assert.equal(store.countAll(), 3);
    tx.set("g", "old", "changed");
    assert.equal(tx.get("g", "old"), "changed");
    assert.equal(tx.delete("g", "new"), true);
    assert.equal(tx.get("g", "new"), undefined);
    assert.equal(tx.exists("g", "new"), false);
    assert.equal(tx.deleteGroup("h"), 1);
    assert.equal(tx.count("h"), 0);
    assert.equal(store.groups().join(), "g");
  });
  assert.deepEqual([...store.getAll("g")], [["old", "changed"]]);
  assert.equal(store.count("h"), 0);
});

Deno.test("Store.transaction() delivers events after COMMIT, in order; none on rollback", () => {
  using store = new Store();
  const seen = record(store);
  const duringFn: number[] = [];
  store.transaction((tx) => {
    tx.set("g", "a", "1");
    tx.set("g", "b", "2");
    tx.delete("g", "a");
    tx.deleteGroup("g");
    tx.set("g", "c", "3");
    duringFn.push(seen.length);
  });
  assert.deepEqual(duringFn, [0]);
  assert.deepEqual(seen, [
    "set g/a=1",
    "set g/b=2",
    "delete g/a",
    "delete_group g/",
    "set g/c=3",
  ]);
  seen.length = 0;
  assert.throws(() =>
    store.transaction((tx) => {
      tx.set("g", "d", "4");
      tx.delete("g", "c");
      throw new Error("no");
    })
  );
  assert.deepEqual(seen, []);
  assert.equal(store.get("g", "c"), "3");
});

Deno.test("Store.transaction() rolls back a fn that returns a promise and throws TypeError", async (t) => {
  const isPromiseError = (error: unknown) =>
    error instanceof TypeError &&
    /^Cannot run transaction: the function returned a promise/.test(
      error.message,
    );

  await t.step("an async function", async () => {
    using store = new Store();
    store.set("g", "k", "old");
    const seen = record(store);
    let after: unknown;
    let resume!: () => void;
    const gate = new Promise<void>((resolve) => resume = resolve);
    let finished!: Promise<void>;
    assert.throws(
      () =>
        store.transaction((tx) => {
          finished = (async () => {
            tx.set("g", "k", "new");
            tx.set("g", "other", "x");
            await gate;
            try {
              tx.set("g", "late", "x");
            } catch (error) {
              after = error;
            }
          })();
          return finished;
        }),
      isPromiseError,
    );
    assert.equal(store.get("g", "k"), "old");
    assert.equal(store.get("g", "other"), undefined);
    assert.deepEqual(seen, []);
    // The abandoned function cannot write once the transaction is over.
    resume();
    await finished;
    assert.ok(after instanceof StoreError);
    assert.equal(store.get("g", "late"), undefined);
    assert.equal(store.countAll(), 1);
  });

  await t.step("an async function that rejects later", async () => {
    using store = new Store();
    assert.throws(
      () =>
        store.transaction(async (tx) => {
          tx.set("g", "k", "v");
          await null;
          tx.set("g", "k2", "v"); // throws: the transaction has ended
        }),
      isPromiseError,
    );
    // A late rejection must not surface as an unhandled one: let the event
    // loop turn so that it would be reported.
    await setImmediate();
    assert.equal(store.countAll(), 0);
  });

  await t.step("a plain object with a then method", async () => {
    using store = new Store();
    const seen = record(store);
    const thenCalls: unknown[] = [];
    const thenable = {
      then(resolve: (value: unknown) => void) {
        thenCalls.push("then");
        resolve(1);
      },
    };
    assert.throws(
      () =>
        store.transaction((tx) => {
          tx.set("g", "k", "v");
          return thenable;
        }),
      isPromiseError,
    );
    await Promise.resolve();
    assert.equal(store.get("g", "k"), undefined);
    assert.deepEqual(seen, []);
    // The store is usable afterwards: no transaction was left open.
    assert.equal(
      store.transaction((tx) => {
        tx.set("g", "k", "v2");
        return "ok";
      }),
      "ok",
    );
    assert.equal(store.get("g", "k"), "v2");
  });

  await t.step("a function object with a then method", () => {
    using store = new Store();
    const thenable = Object.assign(() => {}, { then: () => {} });
    assert.throws(
      () =>
        store.transaction((tx) => {
          tx.set("g", "k", "v");
          return thenable;
        }),
      isPromiseError,
    );
    assert.equal(store.countAll(), 0);
  });

  await t.step(
    "an object whose then is not a function is a plain value",
    () => {
      using store = new Store();
      const value = { then: "not callable" };
      assert.equal(
        store.transaction((tx) => {
          tx.set("g", "k", "v");
          return value;
        }),
        value,
      );
      assert.equal(store.get("g", "k"), "v");
    },
  );
});

Deno.test("Store.transaction() does not nest", async (t) => {
  await t.step("an inner call throws StoreError", () => {
    using store = new Store();
    const result = store.transaction((tx) => {
      tx.set("g", "outer", "1");
      assert.throws(
        () => store.transaction((inner) => inner.set("g", "inner", "2")),
        (error) =>
          error instanceof StoreError &&
          /transactions do not nest/.test(error.message),
      );
      // The outer transaction goes on.
      tx.set("g", "after", "3");
      return tx.count("g");
    });
    assert.equal(result, 2);
    assert.deepEqual([...store.getAll("g").keys()], ["after", "outer"]);
  });

  await t.step("an uncaught inner error rolls the outer back", () => {
    using store = new Store();
    assert.throws(
      () =>
        store.transaction((tx) => {
          tx.set("g", "outer", "1");
          store.transaction(() => {});
        }),
      StoreError,
    );
    assert.equal(store.countAll(), 0);
  });
});

Deno.test("Store.transaction() forbids using tx after fn returned", async (t) => {
  const calls: [string, (tx: Transaction) => unknown][] = [
    ["get", (tx) => tx.get("g", "k")],
    ["set", (tx) => tx.set("g", "k", "v")],
    ["setWithTTL", (tx) => tx.setWithTTL("g", "k", "v", 10)],
    ["delete", (tx) => tx.delete("g", "k")],
    ["deleteGroup", (tx) => tx.deleteGroup("g")],
    ["count", (tx) => tx.count("g")],
    ["getAll", (tx) => tx.getAll("g")],
    ["exists", (tx) => tx.exists("g", "k")],
  ];

  await t.step("after a commit", () => {
    using store = new Store();
    store.set("g", "k", "before");
    const seen = record(store);
    const tx = store.transaction((tx) => tx);
    for (const [name, call] of calls) {
      assert.throws(
        () => call(tx),
        (error) =>
          error instanceof StoreError &&
          !(error instanceof StoreClosedError) &&
          /it ended when its function returned/.test(error.message),
        name,
      );
    }
    assert.equal(store.get("g", "k"), "before");
    assert.deepEqual(seen, []);
  });

  await t.step("after a rollback", () => {
    using store = new Store();
    let kept: Transaction | undefined;
    assert.throws(() =>
      store.transaction((tx) => {
        kept = tx;
        throw new Error("x");
      })
    );
    for (const [name, call] of calls) {
      assert.throws(() => call(kept as Transaction), StoreError, name);
    }
    assert.equal(store.countAll(), 0);
  });

  await t.step("inside a later transaction", () => {
    using store = new Store();
    const first = store.transaction((tx) => tx);
    store.transaction(() => {
      assert.throws(() => first.set("g", "k", "v"), StoreError);
    });
    assert.equal(store.countAll(), 0);
  });
});

Deno.test("Store.transaction() rejects a non-function and a closed store", () => {
  const store = new Store();
  assert.throws(
    () => store.transaction("nope" as unknown as () => void),
    (error) =>
      error instanceof TypeError &&
      /^Cannot run transaction: fn must be a function/.test(error.message),
  );
  store.close();
  let called = false;
  assert.throws(() => store.transaction(() => called = true), StoreClosedError);
  assert.equal(called, false);
});

Deno.test("Transaction methods have Store semantics", async (t) => {
  await t.step("get, set and setWithTTL with expiry on the clock", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    const events: StoreEvent[] = [];
    store.onChange((e) => events.push(e));
    const t0 = clock.now;
    store.transaction((tx) => {
      assert.equal(tx.get("g", "missing"), undefined);
      tx.set("g", "plain", "p");
      tx.setWithTTL("g", "ttl", "t", 10);
      tx.setWithTTL("g", "frac", "f", 0.5);
      assert.equal(tx.get("g", "ttl"), "t");
      clock.advance(10);
      assert.equal(tx.exists("g", "ttl"), false);
      assert.equal(tx.count("g"), 1);
      assert.deepEqual([...tx.getAll("g")], [["plain", "p"]]);
      assert.equal(tx.get("g", "ttl"), undefined);
    });
    assert.deepEqual(events.map((e) => ({ ...e })), [
      {
        type: "set",
        group: "g",
        key: "plain",
        value: "p",
        timestamp: t0,
        origin: "local",
      },
      {
        type: "set",
        group: "g",
        key: "ttl",
        value: "t",
        expiresAt: t0 + 10,
        timestamp: t0,
        origin: "local",
      },
      {
        type: "set",
        group: "g",
        key: "frac",
        value: "f",
        expiresAt: t0 + 1,
        timestamp: t0,
        origin: "local",
      },
      {
        type: "expire",
        group: "g",
        key: "ttl",
        timestamp: t0 + 10,
        origin: "local",
      },
    ]);
    // get() removed the expired row; "frac" is still there until purged.
    assert.equal(store.purgeExpired(), 1);
  });

  await t.step("set clears an expiry, setWithTTL replaces one", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.transaction((tx) => {
      tx.setWithTTL("g", "a", "1", 10);
      tx.set("g", "a", "2");
      tx.set("g", "b", "1");
      tx.setWithTTL("g", "b", "2", 10);
    });
    clock.advance(10);
    assert.equal(store.get("g", "a"), "2");
    assert.equal(store.get("g", "b"), undefined);
  });

  await t.step("delete reports a live key and expires a dead one", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.set("g", "live", "1");
    store.setWithTTL("g", "dead", "2", 5);
    clock.advance(5);
    const seen = record(store);
    store.transaction((tx) => {
      assert.equal(tx.delete("g", "live"), true);
      assert.equal(tx.delete("g", "live"), false);
      assert.equal(tx.delete("g", "dead"), false);
      assert.equal(tx.delete("g", "missing"), false);
    });
    assert.deepEqual(seen, ["delete g/live", "expire g/dead"]);
    assert.equal(store.purgeExpired(), 0);
  });

  await t.step("deleteGroup counts every removed row, expired ones too", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.set("g", "a", "1");
    store.setWithTTL("g", "b", "2", 5);
    store.set("h", "a", "3");
    clock.advance(5);
    const seen = record(store);
    store.transaction((tx) => {
      assert.equal(tx.deleteGroup("g"), 2);
      assert.equal(tx.deleteGroup("g"), 0);
      assert.equal(tx.count("h"), 1);
    });
    assert.deepEqual(seen, ["delete_group g/"]);
  });

  await t.step("getAll orders by code point", () => {
    using store = new Store();
    store.transaction((tx) => {
      for (const key of ["b", "😀", "～", "a", "B", ""]) tx.set("g", key, key);
      assert.deepEqual([...tx.getAll("g").keys()], [
        "",
        "B",
        "a",
        "b",
        "～",
        "😀",
      ]);
    });
  });

  await t.step("strings round-trip exactly", () => {
    using store = new Store();
    const texts = ["", "a\0b", "😀👩‍👩‍👧‍👦", "'; DROP TABLE kv; --"];
    store.transaction((tx) => {
      for (const text of texts) {
        tx.set(text, text, text);
        assert.equal(tx.get(text, text), text);
      }
    });
    for (const text of texts) assert.equal(store.get(text, text), text);
  });

  await t.step("bad arguments throw as on the Store", () => {
    using store = new Store();
    store.transaction((tx) => {
      const loose = tx as unknown as Record<
        string,
        (...args: unknown[]) => unknown
      >;
      const cases: [string, unknown[], ErrorConstructor][] = [
        ["get", [1, "k"], TypeError],
        ["set", ["g", "k", 1], TypeError],
        ["set", ["g", "\uDC00", "v"], TypeError],
        ["setWithTTL", ["g", "k", "v", "10"], TypeError],
        ["setWithTTL", ["g", "k", "v", 0], RangeError],
        ["setWithTTL", ["g", "k", "v", Infinity], RangeError],
        ["delete", ["g", null], TypeError],
        ["deleteGroup", [undefined], TypeError],
        ["count", [{}], TypeError],
        ["getAll", [[]], TypeError],
        ["exists", ["g", 5], TypeError],
      ];
      for (const [name, args, type] of cases) {
        assert.throws(
          () => loose[name]?.(...args),
          (error) => error instanceof type,
          `${name}(${args.map(String).join(", ")})`,
        );
      }
      // A caught error does not end the transaction.
      tx.set("g", "k", "v");
    });
    assert.equal(store.get("g", "k"), "v");
  });

  await t.step("the object has exactly the documented methods", () => {
    using store = new Store();
    const names = store.transaction((tx) => Object.keys(tx).sort());
    assert.deepEqual(names, [
      "compareAndDelete",
      "compareAndSet",
      "count",
      "delete",
      "deleteGroup",
      "exists",
      "get",
      "getAll",
      "getAndDelete",
      "increment",
      "set",
      "setIfAbsent",
      "setWithTTL",
    ]);
  });
});

Deno.test("Store.exists() tells whether a key is live", async (t) => {
  await t.step("present, missing and expired keys", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.set("g", "plain", "");
    store.setWithTTL("g", "ttl", "v", 10);
    assert.equal(store.exists("g", "plain"), true);
    assert.equal(store.exists("g", "ttl"), true);
    assert.equal(store.exists("g", "missing"), false);
    assert.equal(store.exists("missing", "plain"), false);
    clock.advance(9);
    assert.equal(store.exists("g", "ttl"), true);
    clock.advance(1);
    assert.equal(store.exists("g", "ttl"), false);
    assert.equal(store.exists("g", "plain"), true);
    store.delete("g", "plain");
    assert.equal(store.exists("g", "plain"), false);
  });

  await t.step("it neither deletes an expired row nor emits", () => {
    using dir = tempDir();
    const path = dir.file("exists.db");
    const clock = new FakeClock();
    using store = new Store(path, { clock: clock.fn, purgeIntervalMs: 0 });
    store.setWithTTL("g", "k", "v", 10);
    const seen = record(store);
    clock.advance(10);
    assert.equal(store.exists("g", "k"), false);
    assert.equal(rows(path).length, 1);
    assert.deepEqual(seen, []);
    // The clock going back makes the row live again: nothing was removed.
    clock.now -= 1;
    assert.equal(store.exists("g", "k"), true);
  });

  await t.step("bad arguments throw TypeError", () => {
    using store = new Store();
    const loose = store.exists as (...args: unknown[]) => boolean;
    for (
      const args of [[1, "k"], ["g", null], ["g"], [undefined, "k"], [
        "g",
        "\uD800",
      ]]
    ) {
      assert.throws(
        () => loose.apply(store, args),
        (error) =>
          error instanceof TypeError &&
          /^Cannot check key: (group|key) /.test(error.message),
        String(args),
      );
    }
  });

  await t.step("a closed store throws StoreClosedError", () => {
    const store = new Store();
    store.close();
    assert.throws(() => store.exists("g", "k"), StoreClosedError);
  });
});

Deno.test("Store.transaction() on a file is visible to another Store only after COMMIT", async (t) => {
  await t.step("a Store opened inside fn sees the old snapshot", () => {
    using dir = tempDir();
    const path = dir.file("visible.db");
    using store = new Store(path, { purgeIntervalMs: 0 });
    store.set("g", "k", "old");
    store.transaction((tx) => {
      tx.set("g", "k", "new");
      tx.set("g", "added", "a");
      // A reader must not wait for the writer's lock; a short busy timeout
      // makes a wait fail fast instead of stalling for 5 s.
      using reader = new Store(path, {
        purgeIntervalMs: 0,
        busyTimeoutMs: 100,
      });
      assert.equal(reader.get("g", "k"), "old");
      assert.equal(reader.get("g", "added"), undefined);
      assert.equal(reader.count("g"), 1);
    });
    using after = new Store(path, { purgeIntervalMs: 0 });
    assert.equal(after.get("g", "k"), "new");
    assert.equal(after.count("g"), 2);
  });

  await t.step("a Store opened before sees the write only after COMMIT", () => {
    using dir = tempDir();
    const path = dir.file("before.db");
    using store = new Store(path, { purgeIntervalMs: 0 });
    store.set("g", "k", "old");
    using reader = new Store(path, { purgeIntervalMs: 0, busyTimeoutMs: 100 });
    store.transaction((tx) => {
      tx.set("g", "k", "new");
      assert.equal(tx.get("g", "k"), "new");
      assert.equal(reader.get("g", "k"), "old");
      assert.deepEqual([...reader.getAll("g")], [["k", "old"]]);
      assert.equal(reader.exists("g", "k"), true);
      assert.deepEqual(rows(path), [{
        grp: "g",
        key: "k",
        value: "old",
        expires_at: null,
      }]);
    });
    assert.equal(reader.get("g", "k"), "new");
    assert.equal(rows(path)[0]?.value, "new");
  });
});

Deno.test("Store.transaction() rolled back leaves the file unchanged", () => {
  using dir = tempDir();
  const path = dir.file("rollback.db");
  using store = new Store(path, { purgeIntervalMs: 0 });
  for (let i = 0; i < 20; i++) store.set("g", `k${i}`, `v${i}`);
  store.setWithTTL("g", "ttl", "t", 60_000);
  const before = rows(path);
  const readBytes = (file: string) => {
    try {
      return Deno.readFileSync(file);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  };
  const mainBefore = readBytes(path);
  const walBefore = readBytes(`${path}-wal`);
  const boom = new Error("roll back");
  assert.throws(
    () =>
      store.transaction((tx) => {
        for (let i = 0; i < 20; i++) tx.set("g", `k${i}`, "changed");
        tx.delete("g", "ttl");
        tx.deleteGroup("g");
        for (let i = 0; i < 500; i++) tx.set("new", `n${i}`, "x".repeat(100));
        throw boom;
      }),
    (error) => error === boom,
  );
  assert.deepEqual(rows(path), before);
  assert.deepEqual(readBytes(path), mainBefore);
  assert.deepEqual(readBytes(`${path}-wal`), walBefore);
  store.close();
  using reopened = new Store(path, { purgeIntervalMs: 0 });
  assert.equal(reopened.count("g"), 21);
  assert.equal(reopened.count("new"), 0);
});

Deno.test("Store.transaction() commits many writes at once", async (t) => {
  await t.step("10,000 sets, then count", () => {
    using store = new Store();
    const seen: StoreEvent[] = [];
    store.onChange((e) => seen.push(e));
    const n = 10_000;
    const inside = store.transaction((tx) => {
      for (let i = 0; i < n; i++) tx.set("bulk", `k${i}`, `${i}`);
      tx.set("bulk", "k0", "again");
      return tx.count("bulk");
    });
    assert.equal(inside, n);
    assert.equal(store.count("bulk"), n);
    assert.equal(store.get("bulk", "k0"), "again");
    assert.equal(store.get("bulk", `k${n - 1}`), `${n - 1}`);
    assert.equal(seen.length, n + 1);
    assert.ok(seen.every((e, i) => e.key === (i === n ? "k0" : `k${i}`)));
  });

  await t.step("in a file, committed once and reopened", () => {
    using dir = tempDir();
    const path = dir.file("bulk.db");
    {
      using store = new Store(path, { purgeIntervalMs: 0 });
      store.transaction((tx) => {
        for (let i = 0; i < 5_000; i++) {
          if (i % 2 === 0) tx.set("bulk", `k${i}`, `${i}`);
          else tx.setWithTTL("bulk", `k${i}`, `${i}`, 3_600_000);
        }
      });
      assert.equal(store.count("bulk"), 5_000);
    }
    using reopened = new Store(path, { purgeIntervalMs: 0 });
    assert.equal(reopened.count("bulk"), 5_000);
  });

  await t.step("a rollback of 10,000 sets keeps none", () => {
    using store = new Store();
    assert.throws(() =>
      store.transaction((tx) => {
        for (let i = 0; i < 10_000; i++) tx.set("bulk", `k${i}`, `${i}`);
        throw new Error("abort");
      })
    );
    assert.equal(store.count("bulk"), 0);
  });
});
