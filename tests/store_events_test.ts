import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  Store,
  StoreClosedError,
  StoreError,
  type StoreEvent,
  type Watcher,
} from "@core/store";
import {
  brief,
  catchReportedErrors,
  clockedStore,
  drain,
  FakeClock,
  keepAlive,
  tempDir,
} from "./_helpers.ts";

/** A plain copy of an event, for deepEqual against an object literal. */
function plain(event: StoreEvent | undefined): Record<string, unknown> {
  assert.ok(event !== undefined, "expected an event");
  return { ...event };
}

Deno.test("Store.watch() delivers the events of the watched key only", async () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const watcher = store.watch("users", "alice");
  assert.equal(watcher.group, "users");
  assert.equal(watcher.key, "alice");
  store.set("users", "bob", "x");
  store.set("admins", "alice", "x");
  store.set("users", "alice", "1");
  store.set("users:x", "alice", "x");
  store.delete("users", "bob");
  store.delete("users", "alice");
  store.deleteGroup("users");
  const events = await drain(store, watcher);
  assert.deepEqual(events.map(plain), [
    {
      type: "set",
      group: "users",
      key: "alice",
      value: "1",
      timestamp: clock.now,
      origin: "local",
    },
    {
      type: "delete",
      group: "users",
      key: "alice",
      timestamp: clock.now,
      origin: "local",
    },
  ]);
  assert.equal(watcher.dropped, 0);
});

Deno.test("Store.watch() on a key that never changes receives nothing", async () => {
  using store = new Store();
  const watcher = store.watch("g", "quiet");
  store.set("g", "loud", "1");
  store.set("other", "quiet", "1");
  store.delete("g", "loud");
  assert.deepEqual(await drain(store, watcher), []);
});

Deno.test('Store.watch() with key "*" delivers every key of the group', async () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const watcher = store.watch("g", "*");
  store.set("g", "a", "1");
  store.set("h", "a", "x");
  store.setWithTTL("g", "b", "2", 10);
  store.delete("g", "a");
  clock.advance(10);
  assert.equal(store.get("g", "b"), undefined);
  store.set("g", "c", "3");
  store.deleteGroup("g");
  store.deleteGroup("h");
  const events = await drain(store, watcher);
  assert.deepEqual(events.map(brief), [
    "set g/a=1",
    "set g/b=2",
    "delete g/a",
    "expire g/b",
    "set g/c=3",
    "delete_group g/",
  ]);
});

Deno.test('Store.watch("*", "*") delivers every event of every group', async () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const watcher = store.watch("*", "*");
  store.set("a", "k", "1");
  store.set("b", "k", "2");
  store.setWithTTL("c", "k", "3", 1);
  store.delete("a", "k");
  store.deleteGroup("b");
  clock.advance(1);
  store.purgeExpired();
  const events = await drain(store, watcher);
  assert.deepEqual(events.map(brief), [
    "set a/k=1",
    "set b/k=2",
    "set c/k=3",
    "delete a/k",
    "delete_group b/",
    "expire c/k",
  ]);
});

Deno.test("Store.watch() treats * and : inside a name literally", async () => {
  using store = new Store();
  const starKey = store.watch("g", "a*");
  const starGroup = store.watch("x*", "*");
  store.set("g", "ab", "no");
  store.set("g", "a*", "yes");
  store.set("xy", "k", "no");
  store.set("x*", "k", "yes");
  assert.deepEqual((await drain(store, starKey)).map(brief), ["set g/a*=yes"]);
  assert.deepEqual((await drain(store, starGroup)).map(brief), [
    "set x*/k=yes",
  ]);
});

Deno.test("Store.watch() rejects non-string arguments and a closed store", () => {
  const store = new Store();
  assert.throws(
    () => store.watch(1 as unknown as string, "k"),
    (error) =>
      error instanceof TypeError &&
      /^Cannot watch: group must be a string, received number$/.test(
        error.message,
      ),
  );
  assert.throws(
    () => store.watch("g", null as unknown as string),
    (error) =>
      error instanceof TypeError && /key must be a string/.test(error.message),
  );
  store.close();
  assert.throws(() => store.watch("g", "k"), StoreClosedError);
  assert.throws(() => store.onChange(() => {}), StoreClosedError);
});

Deno.test("Store.unwatch() stops delivery and ends the stream after what is queued", async (t) => {
  await t.step("events queued before unwatch are still read", async () => {
    using store = new Store();
    const watcher = store.watch("g", "k");
    store.set("g", "k", "1");
    store.set("g", "k", "2");
    store.unwatch(watcher);
    store.set("g", "k", "3");
    const values = (await Array.fromAsync(watcher)).map((e) => e.value);
    assert.deepEqual(values, ["1", "2"]);
  });

  await t.step(
    "a pending read ends when the watcher is unwatched",
    async () => {
      using store = new Store();
      const watcher = store.watch("g", "*");
      const reader = watcher.stream.getReader();
      const pending = reader.read();
      store.unwatch(watcher);
      assert.deepEqual(await pending, { done: true, value: undefined });
      reader.releaseLock();
    },
  );

  await t.step("it is idempotent and allowed after close", async () => {
    const store = new Store();
    const watcher = store.watch("g", "k");
    store.unwatch(watcher);
    store.unwatch(watcher);
    store.set("g", "k", "late");
    store.close();
    store.unwatch(watcher);
    assert.deepEqual(await Array.fromAsync(watcher), []);
  });

  await t.step("it leaves the other watchers of the key alone", async () => {
    using store = new Store();
    const gone = store.watch("g", "k");
    const kept = store.watch("g", "k");
    store.unwatch(gone);
    store.set("g", "k", "v");
    assert.deepEqual(await Array.fromAsync(gone), []);
    assert.deepEqual((await drain(store, kept)).map(brief), ["set g/k=v"]);
  });
});

Deno.test("Store.delete() emits a delete event only when a row was removed", async () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const seen: StoreEvent[] = [];
  store.onChange((event) => seen.push(event));
  const watcher = store.watch("g", "k");
  assert.equal(store.delete("g", "k"), false);
  assert.equal(store.delete("missing", "k"), false);
  assert.deepEqual(seen, []);
  store.set("g", "k", "v");
  clock.advance(5);
  assert.equal(store.delete("g", "k"), true);
  assert.equal(store.delete("g", "k"), false);
  assert.equal(seen.length, 2);
  assert.deepEqual(plain(seen[1]), {
    type: "delete",
    group: "g",
    key: "k",
    timestamp: clock.now,
    origin: "local",
  });
  assert.equal(Object.hasOwn(seen[1] ?? {}, "value"), false);
  assert.deepEqual((await drain(store, watcher)).map(brief), [
    "set g/k=v",
    "delete g/k",
  ]);
});

Deno.test('Store.deleteGroup() emits one delete_group event with key "" only when rows were removed', async () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const seen: StoreEvent[] = [];
  store.onChange((event) => seen.push(event));
  const groupWatcher = store.watch("g", "*");
  const keyWatcher = store.watch("g", "a");
  assert.equal(store.deleteGroup("g"), 0);
  assert.deepEqual(seen, []);
  store.set("g", "a", "1");
  store.set("g", "b", "2");
  seen.length = 0;
  assert.equal(store.deleteGroup("g"), 2);
  assert.equal(store.deleteGroup("g"), 0);
  assert.deepEqual(seen.map(plain), [
    {
      type: "delete_group",
      group: "g",
      key: "",
      timestamp: clock.now,
      origin: "local",
    },
  ]);
  assert.deepEqual((await drain(store, groupWatcher)).map(brief), [
    "set g/a=1",
    "set g/b=2",
    "delete_group g/",
  ]);
  // Keys match literally: the group delete has key "", not "a".
  assert.deepEqual((await drain(store, keyWatcher)).map(brief), ["set g/a=1"]);
});

Deno.test("Store.onChange() receives the exact event of each write", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const seen: StoreEvent[] = [];
  store.onChange((event) => seen.push(event));
  const t0 = clock.now;
  store.set("g", "k", "v");
  clock.advance(1);
  store.setWithTTL("g", "t", "w", 100);
  clock.advance(1);
  store.delete("g", "k");
  clock.advance(100);
  assert.equal(store.get("g", "t"), undefined);
  store.set("h", "k", "");
  clock.advance(1);
  store.deleteGroup("h");
  assert.deepEqual(seen.map(plain), [
    {
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      timestamp: t0,
      origin: "local",
    },
    {
      type: "set",
      group: "g",
      key: "t",
      value: "w",
      expiresAt: t0 + 1 + 100,
      timestamp: t0 + 1,
      origin: "local",
    },
    {
      type: "delete",
      group: "g",
      key: "k",
      timestamp: t0 + 2,
      origin: "local",
    },
    {
      type: "expire",
      group: "g",
      key: "t",
      timestamp: t0 + 102,
      origin: "local",
    },
    {
      type: "set",
      group: "h",
      key: "k",
      value: "",
      timestamp: t0 + 102,
      origin: "local",
    },
    {
      type: "delete_group",
      group: "h",
      key: "",
      timestamp: t0 + 103,
      origin: "local",
    },
  ]);
  for (const event of seen) assert.equal(Object.isFrozen(event), true);
});

Deno.test("Store.onChange() and a watcher receive the same event object", async () => {
  using store = new Store();
  const seen: StoreEvent[] = [];
  store.onChange((event) => seen.push(event));
  const watcher = store.watch("g", "k");
  store.set("g", "k", "v");
  const [event] = await drain(store, watcher);
  assert.equal(event, seen[0]);
});

Deno.test("Store.onChange() returns an idempotent unregister function", () => {
  using store = new Store();
  const a: string[] = [];
  const b: string[] = [];
  const offA = store.onChange((event) => a.push(event.key));
  const offB = store.onChange((event) => b.push(event.key));
  store.set("g", "1", "v");
  offA();
  offA();
  store.set("g", "2", "v");
  offB();
  store.set("g", "3", "v");
  assert.deepEqual(a, ["1"]);
  assert.deepEqual(b, ["1", "2"]);
  // Registering the same function again is a new, independent registration.
  const fn = (event: StoreEvent) => a.push(event.key);
  const off1 = store.onChange(fn);
  const off2 = store.onChange(fn);
  store.set("g", "4", "v");
  off1();
  off1();
  store.set("g", "5", "v");
  off2();
  store.set("g", "6", "v");
  assert.deepEqual(a, ["1", "4", "4", "5"]);
});

Deno.test("Store.onChange() rejects a non-function", () => {
  using store = new Store();
  assert.throws(
    () => store.onChange("nope" as unknown as () => void),
    TypeError,
  );
});

Deno.test("Store.onChange() runs callbacks synchronously, in registration order", () => {
  using store = new Store();
  const calls: string[] = [];
  store.onChange((e) => calls.push(`first ${e.key}`));
  store.onChange((e) => calls.push(`second ${e.key}`));
  store.onChange((e) => calls.push(`third ${e.key}`));
  store.set("g", "a", "1");
  calls.push("after a");
  store.delete("g", "a");
  assert.deepEqual(calls, [
    "first a",
    "second a",
    "third a",
    "after a",
    "first a",
    "second a",
    "third a",
  ]);
});

Deno.test("Store.watch() gives a watcher that never blocks the writer when full: 16 queued, the rest dropped and counted", async () => {
  using store = new Store();
  const watcher = store.watch("g", "*");
  const other = store.watch("g", "*");
  const otherEvents: StoreEvent[] = [];
  const reading = (async () => {
    for await (const event of other) otherEvents.push(event);
  })();
  for (let i = 0; i < 20; i++) store.set("g", `k${i}`, `${i}`);
  assert.equal(store.get("g", "k19"), "19");
  assert.equal(watcher.dropped, 4);
  const events = await drain(store, watcher);
  assert.deepEqual(
    events.map((e) => e.value),
    Array.from({ length: 16 }, (_, i) => `${i}`),
  );
  assert.equal(watcher.dropped, 4);
  // A watcher with a reader waiting takes events one at a time as read; it
  // too never blocks the writer, and loses nothing it had room for.
  store.unwatch(other);
  await reading;
  assert.equal(otherEvents.length + other.dropped, 20);
  assert.deepEqual(
    otherEvents.map((e) => e.value),
    Array.from({ length: otherEvents.length }, (_, i) => `${i}`),
  );
});

Deno.test("Store.watch() gives a watcher that loses nothing when read as it goes", async () => {
  using store = new Store();
  const watcher = store.watch("g", "k");
  const reader = watcher.stream.getReader();
  for (let i = 0; i < 100; i++) {
    store.set("g", "k", `${i}`);
    const { value } = await reader.read();
    assert.equal(value?.value, `${i}`);
  }
  assert.equal(watcher.dropped, 0);
  await reader.cancel();
});

Deno.test("Store.watch() twice on one key gives two watchers that both receive every event", async () => {
  using store = new Store();
  const a = store.watch("g", "k");
  const b = store.watch("g", "k");
  store.set("g", "k", "1");
  store.delete("g", "k");
  const [eventsA, eventsB] = await Promise.all([
    drain(store, a),
    drain(store, b),
  ]);
  assert.deepEqual(eventsA.map(brief), ["set g/k=1", "delete g/k"]);
  assert.deepEqual(eventsB, eventsA);
});

Deno.test("Watcher.stream.cancel() unregisters the watcher from its store", async (t) => {
  await t.step("stream.cancel()", async () => {
    using store = new Store();
    const seen: string[] = [];
    const watcher = store.watch("g", "k");
    store.set("g", "k", "1");
    await watcher.stream.cancel();
    store.set("g", "k", "2");
    assert.equal(watcher.dropped, 0);
    store.onChange((e) => seen.push(e.value ?? ""));
    store.set("g", "k", "3");
    assert.deepEqual(seen, ["3"]);
    // The stream is done: a reader sees the end at once.
    const reader = watcher.stream.getReader();
    assert.equal((await reader.read()).done, true);
    reader.releaseLock();
  });

  await t.step("leaving a for await loop early", async () => {
    using store = new Store();
    const watcher = store.watch("g", "*");
    store.set("g", "a", "1");
    store.set("g", "b", "2");
    for await (const event of watcher) {
      assert.equal(event.key, "a");
      break;
    }
    store.set("g", "c", "3");
    assert.equal(watcher.dropped, 0);
    store.unwatch(watcher);
    const reader = watcher.stream.getReader();
    assert.equal((await reader.read()).done, true);
    reader.releaseLock();
  });

  await t.step("a using block disposes the watcher", async () => {
    using store = new Store();
    let outer: Watcher;
    {
      using watcher = store.watch("g", "k");
      outer = watcher;
      store.set("g", "k", "1");
    }
    store.set("g", "k", "2");
    assert.deepEqual((await Array.fromAsync(outer)).map(brief), [
      "set g/k=1",
    ]);
  });
});

Deno.test("Store stays consistent while many async tasks watch and unwatch during writes", async () => {
  using store = new Store();
  let total = 0;
  const offCount = store.onChange(() => total++);
  const tasks = Array.from({ length: 40 }, async (_, task) => {
    const key = `t${task}`;
    for (let round = 0; round < 25; round++) {
      const exact = store.watch("g", key);
      const group = round % 2 === 0 ? store.watch("g", "*") : undefined;
      const off = store.onChange(() => {});
      await Promise.resolve();
      store.set("g", key, `${round}`);
      // The exact watcher sees only its own key, in order.
      const reader = exact.stream.getReader();
      const { value } = await reader.read();
      assert.equal(value?.key, key);
      assert.equal(value?.value, `${round}`);
      off();
      if (round % 3 === 0) {
        await reader.cancel();
      } else {
        reader.releaseLock();
        store.unwatch(exact);
        assert.deepEqual(await Array.fromAsync(exact), []);
      }
      if (group !== undefined) {
        if (round % 4 === 0) {
          for await (const event of group) {
            assert.equal(event.group, "g");
            break;
          }
        } else {
          const events = await drain(store, group);
          // Other tasks may have filled it before this task's own set.
          assert.ok(events.length + group.dropped >= 1);
          assert.ok(events.every((e) => e.group === "g" && e.type === "set"));
        }
      }
      await Promise.resolve();
    }
  });
  await Promise.all(tasks);
  assert.equal(total, 40 * 25);
  // Every watcher is gone: a fresh one is served alone and exactly.
  const last = store.watch("g", "*");
  store.set("g", "final", "x");
  assert.deepEqual((await drain(store, last)).map(brief), ["set g/final=x"]);
  offCount();
  assert.equal(store.count("g"), 41);
});

Deno.test("Store emits expire events", async (t) => {
  await t.step("from get() of an expired key, once", async () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    const watcher = store.watch("g", "k");
    store.setWithTTL("g", "k", "v", 10);
    clock.advance(9);
    assert.equal(store.get("g", "k"), "v");
    clock.advance(1);
    assert.equal(store.get("g", "k"), undefined);
    assert.equal(store.get("g", "k"), undefined);
    const events = await drain(store, watcher);
    assert.equal(events.length, 2);
    assert.deepEqual(plain(events[1]), {
      type: "expire",
      group: "g",
      key: "k",
      timestamp: clock.now,
      origin: "local",
    });
  });

  await t.step("from delete() of an expired key, which returns false", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.setWithTTL("g", "k", "v", 10);
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    clock.advance(10);
    assert.equal(store.delete("g", "k"), false);
    assert.equal(store.delete("g", "k"), false);
    assert.deepEqual(seen.map(plain), [
      {
        type: "expire",
        group: "g",
        key: "k",
        timestamp: clock.now,
        origin: "local",
      },
    ]);
  });

  await t.step("not from exists(), count() or getAll()", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.setWithTTL("g", "k", "v", 10);
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    clock.advance(10);
    assert.equal(store.exists("g", "k"), false);
    assert.equal(store.count("g"), 0);
    assert.equal(store.getAll("g").size, 0);
    assert.deepEqual(seen, []);
    assert.equal(store.purgeExpired(), 1);
    assert.deepEqual(seen.map(brief), ["expire g/k"]);
  });

  await t.step("from purgeExpired(), one per removed key", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    // More than one purge batch (2,000 rows).
    const expiring = 2_500;
    for (let i = 0; i < expiring; i++) store.setWithTTL("g", `e${i}`, "v", 10);
    store.setWithTTL("g", "later", "v", 20);
    store.set("g", "forever", "v");
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    clock.advance(10);
    assert.equal(store.purgeExpired(), expiring);
    assert.equal(seen.length, expiring);
    assert.equal(new Set(seen.map((e) => e.key)).size, expiring);
    for (const event of seen) {
      assert.equal(event.type, "expire");
      assert.equal(event.group, "g");
      assert.match(event.key, /^e\d+$/);
      assert.equal(event.timestamp, clock.now);
      assert.equal("value" in event, false);
      assert.equal("expiresAt" in event, false);
    }
    assert.equal(store.purgeExpired(), 0);
    assert.equal(seen.length, expiring);
    assert.equal(store.count("g"), 2);
  });

  await t.step("from the background purge", async () => {
    const clock = new FakeClock();
    using store = new Store(":memory:", {
      clock: clock.fn,
      purgeIntervalMs: 5,
    });
    store.setWithTTL("g", "a", "1", 10);
    store.setWithTTL("h", "b", "2", 10);
    store.setWithTTL("g", "c", "3", 1_000);
    store.set("g", "d", "4");
    const watcher = store.watch("*", "*");
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    clock.advance(10);
    const reader = watcher.stream.getReader();
    const first = await keepAlive(reader.read());
    const second = await keepAlive(reader.read());
    reader.releaseLock();
    const events = [first.value, second.value].map(plain);
    events.sort((x, y) => String(x.key).localeCompare(String(y.key)));
    assert.deepEqual(events, [
      {
        type: "expire",
        group: "g",
        key: "a",
        timestamp: clock.now,
        origin: "local",
      },
      {
        type: "expire",
        group: "h",
        key: "b",
        timestamp: clock.now,
        origin: "local",
      },
    ]);
    assert.equal(seen.length, 2);
    assert.equal(store.count("g"), 2);
    assert.deepEqual(await drain(store, watcher), []);
  });
});

Deno.test("Store.onChange() keeps the write and the other callbacks when a callback throws", async (t) => {
  await t.step("its error goes to onCallbackError with the event", () => {
    const reported: [unknown, StoreEvent][] = [];
    using store = clockedStore(new FakeClock(), {
      onCallbackError: (error, event) => reported.push([error, event]),
    });
    const boom = new Error("boom");
    const seen: StoreEvent[] = [];
    store.onChange(() => {
      throw boom;
    });
    store.onChange((event) => seen.push(event));
    store.onChange(() => {
      throw "a string";
    });
    store.set("g", "k", "v");
    assert.equal(store.get("g", "k"), "v");
    assert.equal(seen.length, 1);
    assert.equal(reported.length, 2);
    assert.equal(reported[0]?.[0], boom);
    assert.equal(reported[0]?.[1], seen[0]);
    assert.equal(reported[1]?.[0], "a string");
    assert.equal(reported[1]?.[1], seen[0]);
    assert.equal(store.delete("g", "k"), true);
    assert.equal(store.get("g", "k"), undefined);
    assert.equal(seen.length, 2);
    assert.equal(reported.length, 4);
  });

  await t.step("without onCallbackError it goes to reportError()", () => {
    using caught = catchReportedErrors();
    using store = new Store();
    const boom = new Error("boom");
    const calls: string[] = [];
    store.onChange(() => {
      calls.push("thrower");
      throw boom;
    });
    store.onChange(() => calls.push("after"));
    store.set("g", "k", "v");
    assert.deepEqual(calls, ["thrower", "after"]);
    assert.deepEqual(caught.errors, [boom]);
    assert.equal(store.get("g", "k"), "v");
  });

  await t.step("a throwing onCallbackError goes to reportError()", () => {
    using caught = catchReportedErrors();
    const handlerError = new Error("handler");
    using store = new Store(":memory:", {
      onCallbackError: () => {
        throw handlerError;
      },
    });
    const calls: string[] = [];
    store.onChange(() => {
      throw new Error("callback");
    });
    store.onChange(() => calls.push("after"));
    store.set("g", "k", "v");
    assert.deepEqual(calls, ["after"]);
    assert.deepEqual(caught.errors, [handlerError]);
    assert.equal(store.get("g", "k"), "v");
  });

  await t.step("watchers still receive the event", async () => {
    using store = new Store(":memory:", { onCallbackError: () => {} });
    const watcher = store.watch("g", "k");
    store.onChange(() => {
      throw new Error("boom");
    });
    store.set("g", "k", "v");
    assert.deepEqual((await drain(store, watcher)).map(brief), ["set g/k=v"]);
  });

  await t.step("onCallbackError must be a function", () => {
    assert.throws(
      () =>
        new Store(":memory:", {
          onCallbackError: 1 as unknown as () => void,
        }),
      (error) =>
        error instanceof TypeError &&
        /onCallbackError must be a function/.test(error.message),
    );
  });
});

Deno.test("Store allows registering and unregistering inside a callback", async (t) => {
  await t.step("a callback that unregisters itself runs once", () => {
    using store = new Store();
    const calls: string[] = [];
    const off = store.onChange((e) => {
      calls.push(`once ${e.key}`);
      off();
    });
    store.onChange((e) => calls.push(`always ${e.key}`));
    store.set("g", "a", "1");
    store.set("g", "b", "1");
    assert.deepEqual(calls, ["once a", "always a", "always b"]);
  });

  await t.step("one registered during an event starts with the next", () => {
    using store = new Store();
    const calls: string[] = [];
    let added = false;
    store.onChange((e) => {
      calls.push(`outer ${e.key}`);
      if (!added) {
        added = true;
        store.onChange((e2) => calls.push(`inner ${e2.key}`));
      }
    });
    store.set("g", "a", "1");
    store.set("g", "b", "1");
    assert.deepEqual(calls, ["outer a", "outer b", "inner b"]);
  });

  await t.step("one unregistered by an earlier callback is skipped", () => {
    using store = new Store();
    const calls: string[] = [];
    let offLater = () => {};
    store.onChange((e) => {
      calls.push(`first ${e.key}`);
      offLater();
    });
    offLater = store.onChange((e) => calls.push(`later ${e.key}`));
    store.set("g", "a", "1");
    assert.deepEqual(calls, ["first a"]);
  });

  await t.step("a callback may watch and unwatch", async () => {
    using store = new Store();
    const watchers: Watcher[] = [];
    const off = store.onChange((e) => {
      if (e.key === "start") watchers.push(store.watch("g", "*"));
      if (e.key === "stop") store.unwatch(watchers[0] as Watcher);
    });
    store.set("g", "start", "1");
    store.set("g", "middle", "2");
    store.set("g", "stop", "3");
    store.set("g", "after", "4");
    off();
    assert.equal(watchers.length, 1);
    // Watchers are served before callbacks: the one added during "start"
    // begins with "middle"; "stop" reaches it before it is unwatched.
    assert.deepEqual(
      (await Array.fromAsync(watchers[0] as Watcher)).map((e) => e.key),
      ["middle", "stop"],
    );
  });
});

Deno.test("Store.close() ends every watcher's stream and drops every callback", async (t) => {
  await t.step("streams end after their queued events", async () => {
    const store = new Store();
    const a = store.watch("g", "k");
    const b = store.watch("*", "*");
    const reader = store.watch("other", "*").stream.getReader();
    const pending = reader.read();
    store.set("g", "k", "v");
    store.close();
    store.close();
    assert.deepEqual((await Array.fromAsync(a)).map(brief), ["set g/k=v"]);
    assert.deepEqual((await Array.fromAsync(b)).map(brief), ["set g/k=v"]);
    assert.equal((await pending).done, true);
    reader.releaseLock();
  });

  await t.step("a for await loop over a watcher ends", async () => {
    const store = new Store();
    const watcher = store.watch("g", "*");
    const received: string[] = [];
    const loop = (async () => {
      for await (const event of watcher) received.push(brief(event));
      return "ended";
    })();
    store.set("g", "a", "1");
    await Promise.resolve();
    store.close();
    assert.equal(await loop, "ended");
    assert.deepEqual(received, ["set g/a=1"]);
  });

  await t.step("callbacks are dropped, even during an event", () => {
    const store = new Store();
    const calls: string[] = [];
    store.onChange(() => {
      calls.push("closer");
      store.close();
    });
    store.onChange(() => calls.push("dropped"));
    store.set("g", "k", "v");
    assert.deepEqual(calls, ["closer"]);
    assert.throws(() => store.set("g", "k", "w"), StoreClosedError);
    assert.deepEqual(calls, ["closer"]);
  });

  await t.step("unregistering after close does nothing", () => {
    const store = new Store();
    const off = store.onChange(() => {});
    store.close();
    off();
    off();
  });

  await t.step("a disposed store closes its watchers", async () => {
    let watcher: Watcher;
    {
      using store = new Store();
      watcher = store.watch("g", "k");
      store.set("g", "k", "v");
    }
    assert.deepEqual((await Array.fromAsync(watcher)).map(brief), [
      "set g/k=v",
    ]);
  });
});

Deno.test("Store events take timestamp and expiresAt from the store clock", () => {
  const clock = new FakeClock(5_000);
  using store = clockedStore(clock);
  const seen: StoreEvent[] = [];
  store.onChange((event) => seen.push(event));
  store.set("g", "plain", "v");
  clock.advance(250);
  store.setWithTTL("g", "ttl", "v", 1_500);
  clock.advance(1);
  store.setWithTTL("g", "frac", "v", 0.25);
  clock.now = 42;
  store.delete("g", "plain");
  clock.now = 100_000;
  store.deleteGroup("g");
  assert.deepEqual(seen.map((e) => [e.type, e.key, e.timestamp, e.expiresAt]), [
    ["set", "plain", 5_000, undefined],
    ["set", "ttl", 5_250, 6_750],
    ["set", "frac", 5_251, 5_252],
    ["delete", "plain", 42, undefined],
    ["delete_group", "", 100_000, undefined],
  ]);
  // A plain set has no expiresAt property at all, not an undefined one.
  assert.equal("expiresAt" in (seen[0] as StoreEvent), false);
  // set() clears an expiry: its event has no expiresAt either.
  store.setWithTTL("g", "k", "v", 10);
  store.set("g", "k", "w");
  assert.equal("expiresAt" in (seen.at(-1) as StoreEvent), false);
});

Deno.test("Store emits nothing for a failed write", async (t) => {
  await t.step("bad arguments", async () => {
    using store = new Store();
    store.set("g", "k", "v");
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    const watcher = store.watch("*", "*");
    const call = (fn: (...a: unknown[]) => unknown, ...args: unknown[]) =>
      assert.throws(() => fn.apply(store, args), TypeError);
    call(store.set as (...a: unknown[]) => unknown, "g", "k", 1);
    call(store.set as (...a: unknown[]) => unknown, "g", "\uD800", "v");
    call(store.setWithTTL as (...a: unknown[]) => unknown, 1, "k", "v", 10);
    call(store.setWithTTL as (...a: unknown[]) => unknown, "g", "k", "v", "1");
    call(store.delete as (...a: unknown[]) => unknown, "g", null);
    call(store.deleteGroup as (...a: unknown[]) => unknown, undefined);
    call(store.get as (...a: unknown[]) => unknown, "g", 2);
    assert.throws(() => store.setWithTTL("g", "k", "v", 0), RangeError);
    assert.throws(() => store.setWithTTL("g", "k", "v", -5), RangeError);
    assert.throws(() => store.setWithTTL("g", "k", "v", NaN), RangeError);
    assert.deepEqual(seen, []);
    assert.deepEqual(await drain(store, watcher), []);
    assert.equal(store.get("g", "k"), "v");
  });

  await t.step("a clock that returns a non-finite number", () => {
    let now = 0;
    using store = new Store(":memory:", {
      clock: () => now,
      purgeIntervalMs: 0,
    });
    store.set("g", "k", "v");
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    now = NaN;
    assert.throws(() => store.set("g", "k", "w"), RangeError);
    assert.throws(() => store.setWithTTL("g", "t", "v", 10), RangeError);
    assert.throws(() => store.delete("g", "k"), RangeError);
    assert.throws(() => store.deleteGroup("g"), RangeError);
    assert.deepEqual(seen, []);
    now = 0;
    assert.equal(store.get("g", "k"), "v");
  });

  await t.step("a closed store", async () => {
    const store = new Store();
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    const watcher = store.watch("*", "*");
    store.close();
    assert.throws(() => store.set("g", "k", "v"), StoreClosedError);
    assert.throws(() => store.setWithTTL("g", "k", "v", 1), StoreClosedError);
    assert.throws(() => store.delete("g", "k"), StoreClosedError);
    assert.throws(() => store.deleteGroup("g"), StoreClosedError);
    assert.throws(() => store.get("g", "k"), StoreClosedError);
    assert.throws(() => store.purgeExpired(), StoreClosedError);
    assert.throws(
      () => store.transaction((tx) => tx.set("g", "k", "v")),
      StoreClosedError,
    );
    assert.deepEqual(seen, []);
    assert.deepEqual(await Array.fromAsync(watcher), []);
  });

  await t.step("a write SQLite refuses (the file is locked)", async () => {
    using dir = tempDir();
    const path = dir.file("locked.db");
    using store = new Store(path, { busyTimeoutMs: 0, purgeIntervalMs: 0 });
    store.set("g", "k", "v");
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    const watcher = store.watch("*", "*");
    const other = new DatabaseSync(path);
    try {
      other.exec("BEGIN IMMEDIATE");
      assert.throws(() => store.set("g", "k", "w"), StoreError);
      assert.throws(() => store.delete("g", "k"), StoreError);
      assert.throws(
        () => store.transaction((tx) => tx.set("g", "x", "1")),
        StoreError,
      );
      other.exec("ROLLBACK");
    } finally {
      other.close();
    }
    assert.deepEqual(seen, []);
    assert.deepEqual(await drain(store, watcher), []);
    assert.equal(store.get("g", "k"), "v");
  });
});

Deno.test("Store.transaction() events arrive after COMMIT, in order", async (t) => {
  await t.step("nothing during fn, everything in order after", async () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.set("g", "old", "o");
    const seen: string[] = [];
    store.onChange((event) => seen.push(brief(event)));
    const watcher = store.watch("*", "*");
    const result = store.transaction((tx) => {
      tx.set("g", "a", "1");
      tx.setWithTTL("g", "b", "2", 10);
      tx.delete("g", "a");
      // Store methods called inside fn join the transaction.
      store.set("h", "c", "3");
      tx.deleteGroup("h");
      tx.delete("g", "missing");
      assert.deepEqual(seen, []);
      return "done";
    });
    assert.equal(result, "done");
    const expected = [
      "set g/a=1",
      "set g/b=2",
      "delete g/a",
      "set h/c=3",
      "delete_group h/",
    ];
    assert.deepEqual(seen, expected);
    assert.deepEqual((await drain(store, watcher)).map(brief), expected);
  });

  await t.step("a callback reading the store sees the committed value", () => {
    using store = new Store();
    store.set("g", "k", "before");
    const reads: (string | undefined)[] = [];
    const counts: number[] = [];
    store.onChange((event) => {
      reads.push(store.get(event.group, event.key));
      counts.push(store.count("g"));
      // Delivery happens outside the transaction: a new one may start.
      assert.equal(store.transaction(() => "inner"), "inner");
    });
    store.transaction((tx) => {
      tx.set("g", "k", "after");
      tx.set("g", "k2", "x");
    });
    assert.deepEqual(reads, ["after", "x"]);
    assert.deepEqual(counts, [2, 2]);
  });

  await t.step("a rolled-back transaction emits nothing", async () => {
    using store = new Store();
    const seen: StoreEvent[] = [];
    store.onChange((event) => seen.push(event));
    const watcher = store.watch("*", "*");
    const boom = new Error("boom");
    assert.throws(
      () =>
        store.transaction((tx) => {
          tx.set("g", "a", "1");
          store.set("g", "b", "2");
          throw boom;
        }),
      (error) => error === boom,
    );
    assert.deepEqual(seen, []);
    assert.deepEqual(await drain(store, watcher), []);
    assert.equal(store.count("g"), 0);
  });

  await t.step("a throwing callback does not undo the transaction", () => {
    const reported: unknown[] = [];
    using store = new Store(":memory:", {
      onCallbackError: (error) => reported.push(error),
    });
    const calls: string[] = [];
    store.onChange(() => {
      throw new Error("boom");
    });
    store.onChange((event) => calls.push(event.key));
    const result = store.transaction((tx) => {
      tx.set("g", "a", "1");
      tx.set("g", "b", "2");
      return 7;
    });
    assert.equal(result, 7);
    assert.deepEqual(calls, ["a", "b"]);
    assert.equal(reported.length, 2);
    assert.equal(store.count("g"), 2);
  });

  await t.step("expiries found inside a transaction arrive after it", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    store.setWithTTL("g", "a", "1", 10);
    store.setWithTTL("g", "b", "2", 10);
    clock.advance(10);
    const seen: string[] = [];
    store.onChange((event) => seen.push(brief(event)));
    store.transaction((tx) => {
      assert.equal(tx.get("g", "a"), undefined);
      assert.equal(tx.delete("g", "b"), false);
      tx.set("g", "c", "3");
      assert.deepEqual(seen, []);
    });
    assert.deepEqual(seen, ["expire g/a", "expire g/b", "set g/c=3"]);
  });
});

Deno.test("Store.onChange() and watch() registered inside a callback hear only what commits after", async () => {
  using store = new Store();
  let watcher: ReturnType<Store["watch"]> | undefined;
  const heard: string[] = [];
  store.onChange((e) => {
    if (e.key !== "a" || watcher !== undefined) return;
    watcher = store.watch("g", "*");
    store.onChange((later) => heard.push(later.key));
  });
  // a and b commit together; the listeners appear while a is handed out.
  store.transaction((tx) => {
    tx.set("g", "a", "1");
    tx.set("g", "b", "2");
  });
  store.set("g", "c", "3");
  store.close();
  assert.deepEqual((await Array.fromAsync(watcher!)).map((e) => e.key), ["c"]);
  assert.deepEqual(heard, ["c"]);
});
