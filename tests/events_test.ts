import assert from "node:assert/strict";
import { setImmediate } from "node:timers/promises";
import { type EventType, type StoreEvent, Watcher } from "../src/events.ts";
import { EventHub } from "../src/_hub.ts";
import { WatchQueue } from "../src/_watch_queue.ts";
import { StoreClosedError } from "../src/errors.ts";
import { catchReportedErrors, drain } from "./_helpers.ts";

let clock = 0;

function event(
  group: string,
  key: string,
  type: EventType = "set",
  value = `${group}/${key}`,
): StoreEvent {
  const e: StoreEvent = {
    type,
    group,
    key,
    timestamp: ++clock,
    origin: "local",
  };
  if (type === "set") e.value = value;
  return e;
}

/** Emits to `hub` and returns, per watcher, the groups/keys it received. */
async function route(
  hub: EventHub,
  watchers: Watcher[],
  events: StoreEvent[],
): Promise<string[][]> {
  for (const e of events) hub.publish([e]);
  return await Promise.all(
    watchers.map(async (w) =>
      (await drain(hub, w)).map((e) => `${e.group}/${e.key}`)
    ),
  );
}

Deno.test("EventHub.watch() delivers only the watched key of the watched group", async (t) => {
  await t.step("the exact key receives its events", async () => {
    const hub = new EventHub();
    const w = hub.watch("users", "alice");
    const [got] = await route(hub, [w], [
      event("users", "alice"),
      event("users", "alice", "delete"),
    ]);
    assert.deepEqual(got, ["users/alice", "users/alice"]);
  });

  await t.step(
    "another key, group or a group delete gets nothing",
    async () => {
      const hub = new EventHub();
      const w = hub.watch("users", "alice");
      const [got] = await route(hub, [w], [
        event("users", "bob"),
        event("admins", "alice"),
        event("users:x", "alice"),
        event("users", "", "delete_group"),
        event("*", "alice"),
      ]);
      assert.deepEqual(got, []);
    },
  );

  await t.step("keeps the group and key it was given", () => {
    const hub = new EventHub();
    using w = hub.watch("users", "alice");
    assert.equal(w.group, "users");
    assert.equal(w.key, "alice");
    assert.equal(w.dropped, 0);
  });
});

Deno.test('EventHub.watch() with key "*" delivers every key of the group', async () => {
  const hub = new EventHub();
  const w = hub.watch("users", "*");
  const [got] = await route(hub, [w], [
    event("users", "alice"),
    event("other", "alice"),
    event("users", "bob", "expire"),
    event("users", "", "delete_group"),
    event("users:sub", "alice"),
  ]);
  assert.deepEqual(got, ["users/alice", "users/bob", "users/"]);
});

Deno.test('EventHub.watch("*", "*") delivers every event', async () => {
  const hub = new EventHub();
  const w = hub.watch("*", "*");
  const [got] = await route(hub, [w], [
    event("a", "1"),
    event("b:c", "2", "delete"),
    event("d", "", "delete_group"),
    event("*", "*"),
  ]);
  assert.deepEqual(got, ["a/1", "b:c/2", "d/", "*/*"]);
});

Deno.test('EventHub.watch("*", key) delivers that key of every group', async () => {
  const hub = new EventHub();
  const w = hub.watch("*", "x");
  const [got] = await route(hub, [w], [
    event("a", "x"),
    event("a", "y"),
    event("ns:b", "x"),
    event("*", "x"),
  ]);
  assert.deepEqual(got, ["a/x", "ns:b/x", "*/x"]);
});

Deno.test("EventHub.watch() treats group names with * and : literally", async () => {
  const hub = new EventHub();
  const star = hub.watch("a*", "*");
  const colon = hub.watch("ns:a", "k*");
  const [gotStar, gotColon] = await route(hub, [star, colon], [
    event("a*", "1"),
    event("ab", "1"),
    event("ns:a", "k*"),
    event("ns:a", "kk"),
    event("ns:b", "k*"),
  ]);
  assert.deepEqual(gotStar, ["a*/1"]);
  assert.deepEqual(gotColon, ["ns:a/k*"]);
});

Deno.test("EventHub.watch() with a namespace delivers the groups under it", async (t) => {
  await t.step("every key of ns:… but not ns2:…, nsx or ns", async () => {
    const hub = new EventHub();
    const w = hub.watch("ns:*", "*", { prefix: "ns:" });
    assert.equal(w.group, "ns:*");
    const [got] = await route(hub, [w], [
      event("ns:a", "k"),
      event("ns2:a", "k"),
      event("nsx", "k"),
      event("ns", "k"),
      event("ns:b:c", "j", "delete"),
      event("ns:", "k"),
      event("x:ns:a", "k"),
    ]);
    assert.deepEqual(got, ["ns:a/k", "ns:b:c/j", "ns:/k"]);
  });

  await t.step("restricted to one key", async () => {
    const hub = new EventHub();
    const w = hub.watch("ns:*", "k", { prefix: "ns:" });
    const [got] = await route(hub, [w], [
      event("ns:a", "k"),
      event("ns:a", "j"),
      event("ns:b", "k"),
      event("ns2:a", "k"),
    ]);
    assert.deepEqual(got, ["ns:a/k", "ns:b/k"]);
  });

  await t.step("ignores the group argument for matching", async () => {
    const hub = new EventHub();
    const w = hub.watch("other", "*", { prefix: "ns:" });
    const [got] = await route(hub, [w], [event("other", "k")]);
    assert.deepEqual(got, []);
  });

  await t.step("serves any other group prefix, namespaced or not", async () => {
    const hub = new EventHub();
    const user = hub.watch("user", "*", { prefix: "user" });
    const deep = hub.watch("ns:a", "k", { prefix: "ns:a" });
    const all = hub.watch("", "*", { prefix: "" });
    assert.equal(hub.wants("team", "k"), true);
    hub.unwatch(all);
    assert.equal(hub.wants("team", "k"), false);
    assert.equal(hub.wants("ns:a1", "k"), true);
    assert.equal(hub.wants("ns:a1", "other"), false);
    const again = hub.watch("", "*", { prefix: "" });
    const [u, d, a] = await route(hub, [user, deep, again], [
      event("user:1", "k"),
      event("users", "x"),
      event("ns:ab", "k"),
      event("ns:b", "k"),
      event("ns:a", "other"),
    ]);
    assert.deepEqual(u, ["user:1/k", "users/x"]);
    assert.deepEqual(d, ["ns:ab/k"]);
    assert.equal(a?.length, 5);
  });
});

Deno.test("EventHub.emit() serves watchers most specific first, each once", async () => {
  const hub = new EventHub();
  const watchers: [string, Watcher][] = [
    ["global all", hub.watch("*", "*")],
    ["global key", hub.watch("*", "k")],
    ["namespace all", hub.watch("ns:*", "*", { prefix: "ns:" })],
    ["namespace key", hub.watch("ns:*", "k", { prefix: "ns:" })],
    ["group all", hub.watch("ns:g", "*")],
    ["exact", hub.watch("ns:g", "k")],
    ["exact again", hub.watch("ns:g", "k")],
  ];
  // Pending reads resolve in enqueue order, so their reactions reveal it.
  const order: string[] = [];
  const reads = watchers.map(([label, w]) => {
    const reader = w.stream.getReader();
    return reader.read().then((r) => {
      order.push(label);
      reader.releaseLock();
      return r.value;
    });
  });
  // A stream asks for its first event once it has started, a turn after it
  // was made; from then on a pending read takes an event as it is served.
  await setImmediate();
  const e = event("ns:g", "k");
  const calls: string[] = [];
  hub.onChange(() => calls.push(`callback after ${order.length} reads`));
  hub.publish([e]);
  const received = await Promise.all(reads);

  assert.deepEqual(order, [
    "exact",
    "exact again",
    "group all",
    "namespace key",
    "namespace all",
    "global key",
    "global all",
  ]);
  for (const got of received) assert.equal(got, e);
  assert.deepEqual(calls, ["callback after 0 reads"]);
  for (const [, w] of watchers) assert.deepEqual(await drain(hub, w), []);
});

Deno.test("EventHub.emit() hands one frozen event to every consumer", async (t) => {
  await t.step("two watchers on one key both receive it", async () => {
    const hub = new EventHub();
    const a = hub.watch("g", "k");
    const b = hub.watch("g", "k");
    const seen: StoreEvent[] = [];
    hub.onChange((e) => seen.push(e));
    const e = event("g", "k");
    hub.publish([e]);
    assert.equal(Object.isFrozen(e), true);
    assert.deepEqual(await drain(hub, a), [e]);
    assert.deepEqual(await drain(hub, b), [e]);
    assert.equal((await drain(hub, a)).length, 0);
    assert.equal(seen[0], e);
  });

  await t.step("does nothing, not even freeze, with no listener", () => {
    const hub = new EventHub();
    const e = event("g", "k");
    hub.publish([e]);
    assert.equal(Object.isFrozen(e), false);
  });

  await t.step("keeps expiresAt and timestamp as given", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "k");
    const e: StoreEvent = {
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      expiresAt: 2_000,
      timestamp: 1_000,
      origin: "local",
    };
    hub.publish([e]);
    assert.deepEqual(await drain(hub, w), [{
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      expiresAt: 2_000,
      timestamp: 1_000,
      origin: "local",
    }]);
  });
});

Deno.test("EventHub.emit() drops events past 16 queued and counts them", async (t) => {
  await t.step("20 unread events leave the first 16, in order", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "*");
    for (let i = 0; i < 20; i++) hub.publish([event("g", `k${i}`)]);
    assert.equal(w.dropped, 4);
    const got = (await drain(hub, w)).map((e) => e.key);
    assert.deepEqual(got, Array.from({ length: 16 }, (_, i) => `k${i}`));
    assert.equal(w.dropped, 4);
  });

  await t.step("delivers again once the reader makes room", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "*");
    const reader = w.stream.getReader();
    for (let i = 0; i < 17; i++) hub.publish([event("g", `a${i}`)]);
    assert.equal(w.dropped, 1);
    assert.equal((await reader.read()).value?.key, "a0");
    hub.publish([event("g", "b")]);
    hub.publish([event("g", "c")]);
    assert.equal(w.dropped, 2);
    hub.unwatch(w);
    const rest: string[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      rest.push(r.value.key);
    }
    assert.equal(rest.length, 16);
    assert.deepEqual(rest.slice(-2), ["a15", "b"]);
  });

  await t.step("a slow watcher does not affect another", async () => {
    const hub = new EventHub();
    const slow = hub.watch("g", "*");
    const fast = hub.watch("g", "*");
    const reader = fast.stream.getReader();
    let read = 0;
    for (let i = 0; i < 40; i++) {
      hub.publish([event("g", `k${i}`)]);
      assert.equal((await reader.read()).value?.key, `k${i}`);
      read++;
    }
    reader.releaseLock();
    assert.equal(read, 40);
    assert.equal(fast.dropped, 0);
    assert.equal(slow.dropped, 24);
    assert.equal((await drain(hub, slow)).length, 16);
    assert.deepEqual(await drain(hub, fast), []);
  });
});

Deno.test("EventHub.emit() loses nothing for a reader that keeps up", async () => {
  const hub = new EventHub();
  const w = hub.watch("g", "*");
  const received: number[] = [];
  const reading = (async () => {
    for await (const e of w) received.push(e.timestamp);
  })();
  const sent: number[] = [];
  for (let i = 0; i < 1_000; i++) {
    const e = event("g", "k");
    sent.push(e.timestamp);
    hub.publish([e]);
    // Bursts below the limit; the macrotask lets the reader drain.
    if (i % 10 === 9) await setImmediate();
  }
  hub.unwatch(w);
  await reading;
  assert.equal(w.dropped, 0);
  assert.deepEqual(received, sent);
});

Deno.test("EventHub.unwatch() ends the stream after the queued events", async (t) => {
  await t.step("queued events are read, then done", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "k");
    const first = event("g", "k");
    const second = event("g", "k");
    hub.publish([first]);
    hub.publish([second]);
    hub.unwatch(w);
    hub.publish([event("g", "k")]);
    assert.equal(hub.active, false);
    const reader = w.stream.getReader();
    assert.equal((await reader.read()).value, first);
    assert.equal((await reader.read()).value, second);
    assert.equal((await reader.read()).done, true);
  });

  await t.step("ends a pending read", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "k");
    const reader = w.stream.getReader();
    const pending = reader.read();
    hub.unwatch(w);
    assert.equal((await pending).done, true);
  });

  await t.step("is idempotent and keeps other watchers", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "k");
    const other = hub.watch("g", "k");
    hub.unwatch(w);
    hub.unwatch(w);
    w[Symbol.dispose]();
    await w.stream.cancel();
    assert.equal(hub.active, true);
    hub.publish([event("g", "k")]);
    assert.equal((await drain(hub, other)).length, 1);
    assert.deepEqual(await Array.fromAsync(w), []);
  });

  await t.step("ignores a watcher of another hub", async () => {
    const hub = new EventHub();
    const elsewhere = new EventHub();
    const w = elsewhere.watch("g", "k");
    hub.unwatch(w);
    assert.equal(elsewhere.active, true);
    elsewhere.publish([event("g", "k")]);
    assert.equal((await drain(elsewhere, w)).length, 1);
  });

  await t.step("lets a later watch of the same key work", async () => {
    const hub = new EventHub();
    hub.unwatch(hub.watch("g", "k"));
    hub.unwatch(hub.watch("ns:*", "k", { prefix: "ns:" }));
    const w = hub.watch("g", "k");
    const n = hub.watch("ns:*", "k", { prefix: "ns:" });
    hub.publish([event("g", "k")]);
    hub.publish([event("ns:g", "k")]);
    assert.equal((await drain(hub, w)).length, 1);
    assert.equal((await drain(hub, n)).length, 1);
  });
});

Deno.test("Watcher.stream.cancel() unregisters the watcher", async (t) => {
  await t.step("through the stream", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "k");
    hub.publish([event("g", "k")]);
    await w.stream.cancel();
    assert.equal(hub.active, false);
    hub.publish([event("g", "k")]);
    assert.equal(w.dropped, 0);
  });

  await t.step("through a reader", async () => {
    const hub = new EventHub();
    const w = hub.watch("*", "*");
    const reader = w.stream.getReader();
    await reader.cancel();
    assert.equal(hub.active, false);
  });

  await t.step("after unwatch, with events still queued", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "k");
    hub.publish([event("g", "k")]);
    hub.unwatch(w);
    await w.stream.cancel();
    assert.equal(hub.active, false);
  });
});

Deno.test("Watcher[Symbol.asyncIterator]() unregisters the watcher when the loop breaks early", async () => {
  const hub = new EventHub();
  const w = hub.watch("g", "*");
  for (let i = 0; i < 3; i++) hub.publish([event("g", `k${i}`)]);
  const got: string[] = [];
  for await (const e of w) {
    got.push(e.key);
    if (got.length === 2) break;
  }
  assert.deepEqual(got, ["k0", "k1"]);
  assert.equal(hub.active, false);
  hub.publish([event("g", "k")]);
  assert.equal(w.dropped, 0);
});

Deno.test("Watcher[Symbol.dispose]() unregisters the watcher at the end of a using block", async () => {
  const hub = new EventHub();
  let kept: Watcher;
  {
    using w = hub.watch("g", "k");
    kept = w;
    hub.publish([event("g", "k")]);
    assert.equal(hub.active, true);
  }
  assert.equal(hub.active, false);
  assert.equal((await Array.fromAsync(kept)).length, 1);
});

Deno.test("Watcher cannot be constructed directly", () => {
  const Ctor = Watcher as unknown as new (...args: unknown[]) => Watcher;
  assert.throws(() => new Ctor("g", "k", () => {}), TypeError);
});

Deno.test("EventHub.onChange() runs callbacks synchronously in registration order", () => {
  const hub = new EventHub();
  const calls: string[] = [];
  hub.onChange((e) => calls.push(`a ${e.key}`));
  hub.onChange((e) => calls.push(`b ${e.key}`));
  hub.onChange((e) => calls.push(`c ${e.key}`));
  hub.publish([event("g", "1")]);
  assert.deepEqual(calls, ["a 1", "b 1", "c 1"]);
  hub.publish([event("h", "2", "delete")]);
  assert.deepEqual(calls.slice(3), ["a 2", "b 2", "c 2"]);
});

Deno.test("EventHub.onChange() reports a throwing callback and runs the others", async (t) => {
  await t.step("to onCallbackError", () => {
    const reported: [unknown, StoreEvent][] = [];
    const hub = new EventHub({
      onCallbackError: (error, e) => reported.push([error, e]),
    });
    const calls: string[] = [];
    const boom = new Error("boom");
    hub.onChange(() => calls.push("before"));
    hub.onChange(() => {
      throw boom;
    });
    hub.onChange(() => calls.push("after"));
    const e = event("g", "k");
    hub.publish([e]);
    assert.deepEqual(calls, ["before", "after"]);
    assert.deepEqual(reported, [[boom, e]]);
  });

  await t.step("to reportError() by default", () => {
    using reported = catchReportedErrors();
    const hub = new EventHub();
    const calls: string[] = [];
    const boom = new Error("boom");
    hub.onChange(() => {
      throw boom;
    });
    hub.onChange(() => calls.push("after"));
    hub.publish([event("g", "k")]);
    assert.deepEqual(calls, ["after"]);
    assert.deepEqual(reported.errors, [boom]);
  });

  await t.step("to reportError() when onCallbackError throws", () => {
    using reported = catchReportedErrors();
    const handlerError = new Error("handler");
    const hub = new EventHub({
      onCallbackError: () => {
        throw handlerError;
      },
    });
    const calls: string[] = [];
    hub.onChange(() => {
      throw new Error("boom");
    });
    hub.onChange(() => calls.push("after"));
    hub.publish([event("g", "k")]);
    assert.deepEqual(calls, ["after"]);
    assert.deepEqual(reported.errors, [handlerError]);
  });
});

Deno.test("EventHub.onChange() allows registering and unregistering inside a callback", async (t) => {
  await t.step(
    "a callback added during emit starts with the next event",
    () => {
      const hub = new EventHub();
      const calls: string[] = [];
      let added = false;
      hub.onChange((e) => {
        calls.push(`first ${e.key}`);
        if (!added) {
          added = true;
          hub.onChange((e) => calls.push(`added ${e.key}`));
        }
      });
      hub.publish([event("g", "1")]);
      hub.publish([event("g", "2")]);
      assert.deepEqual(calls, ["first 1", "first 2", "added 2"]);
    },
  );

  await t.step("a callback can unregister itself", () => {
    const hub = new EventHub();
    const calls: string[] = [];
    const off = hub.onChange((e) => {
      calls.push(`once ${e.key}`);
      off();
    });
    hub.onChange((e) => calls.push(`other ${e.key}`));
    hub.publish([event("g", "1")]);
    hub.publish([event("g", "2")]);
    assert.deepEqual(calls, ["once 1", "other 1", "other 2"]);
  });

  await t.step("a later callback removed during emit is not called", () => {
    const hub = new EventHub();
    const calls: string[] = [];
    hub.onChange(() => {
      calls.push("first");
      offSecond();
    });
    const offSecond = hub.onChange(() => calls.push("second"));
    hub.onChange(() => calls.push("third"));
    hub.publish([event("g", "1")]);
    assert.deepEqual(calls, ["first", "third"]);
  });

  await t.step("a callback can watch, unwatch and close", async () => {
    const hub = new EventHub();
    const watched: Watcher[] = [];
    const existing = hub.watch("g", "*");
    hub.onChange((e) => {
      if (e.key === "1") watched.push(hub.watch("g", "*"));
      if (e.key === "2") hub.unwatch(existing);
      if (e.key === "3") hub.close();
    });
    const later: string[] = [];
    hub.onChange((e) => later.push(e.key));
    for (const key of ["1", "2", "3", "4"]) hub.publish([event("g", key)]);

    assert.deepEqual(later, ["1", "2"]);
    assert.deepEqual(
      (await Array.fromAsync(existing)).map((e) => e.key),
      ["1", "2"],
    );
    const [added] = watched;
    assert.ok(added);
    assert.deepEqual((await Array.fromAsync(added)).map((e) => e.key), [
      "2",
      "3",
    ]);
  });

  await t.step(
    "an event published by a callback queues behind the current one",
    () => {
      const hub = new EventHub();
      const calls: string[] = [];
      hub.onChange((e) => {
        calls.push(`a ${e.key}`);
        if (e.key === "outer") hub.publish([event("g", "inner")]);
      });
      hub.onChange((e) => calls.push(`b ${e.key}`));
      hub.publish([event("g", "outer")]);
      assert.deepEqual(calls, ["a outer", "b outer", "a inner", "b inner"]);
    },
  );
});

Deno.test("EventHub.onChange() returns an idempotent unregister function", () => {
  const hub = new EventHub();
  const calls: string[] = [];
  const offA = hub.onChange(() => calls.push("a"));
  hub.onChange(() => calls.push("b"));
  offA();
  offA();
  hub.publish([event("g", "k")]);
  assert.deepEqual(calls, ["b"]);
  assert.equal(hub.active, true);
});

Deno.test("EventHub.onChange() with a namespace sees only that namespace, in registration order", () => {
  const hub = new EventHub();
  const calls: string[] = [];
  hub.onChange((e) => calls.push(`all ${e.group}`));
  hub.onChange((e) => calls.push(`ns ${e.group}`), { namespace: "ns" });
  hub.onChange((e) => calls.push(`all2 ${e.group}`));
  hub.onChange((e) => calls.push(`ns2 ${e.group}`), { namespace: "ns2" });
  for (const group of ["ns:a", "ns2:a", "nsx", "ns", "ns:b:c"]) {
    hub.publish([event(group, "k")]);
  }
  assert.deepEqual(calls, [
    "all ns:a",
    "ns ns:a",
    "all2 ns:a",
    "all ns2:a",
    "all2 ns2:a",
    "ns2 ns2:a",
    "all nsx",
    "all2 nsx",
    "all ns",
    "all2 ns",
    "all ns:b:c",
    "ns ns:b:c",
    "all2 ns:b:c",
  ]);
  assert.throws(
    () => hub.onChange(() => {}, { namespace: "a:b" }),
    TypeError,
  );
  assert.throws(
    () => hub.onChange("nope" as unknown as () => void),
    TypeError,
  );
});

Deno.test("EventHub.close() ends every stream and drops every callback", async (t) => {
  await t.step("streams yield their queued events, then end", async () => {
    const hub = new EventHub();
    const exact = hub.watch("g", "k");
    const group = hub.watch("g", "*");
    const ns = hub.watch("ns:*", "*", { prefix: "ns:" });
    const all = hub.watch("*", "*");
    const calls: string[] = [];
    hub.onChange(() => calls.push("called"));
    hub.publish([event("g", "k")]);
    hub.close();
    hub.publish([event("g", "k")]);

    assert.equal(hub.active, false);
    assert.deepEqual(calls, ["called"]);
    assert.equal((await Array.fromAsync(exact)).length, 1);
    assert.equal((await Array.fromAsync(group)).length, 1);
    assert.deepEqual(await Array.fromAsync(ns), []);
    assert.equal((await Array.fromAsync(all)).length, 1);
  });

  await t.step("ends pending reads", async () => {
    const hub = new EventHub();
    const w = hub.watch("g", "k");
    const pending = w.stream.getReader().read();
    hub.close();
    assert.equal((await pending).done, true);
  });

  await t.step("later watch and onChange throw StoreClosedError", () => {
    const hub = new EventHub();
    hub.close();
    assert.throws(() => hub.watch("g", "k"), StoreClosedError);
    assert.throws(() => hub.onChange(() => {}), StoreClosedError);
    assert.equal(hub.active, false);
  });

  await t.step(
    "is idempotent; unwatch, dispose and cancel stay harmless",
    async () => {
      const hub = new EventHub();
      const w = hub.watch("g", "k");
      const off = hub.onChange(() => {});
      hub.close();
      hub.close();
      hub.unwatch(w);
      w[Symbol.dispose]();
      off();
      await w.stream.cancel();
      assert.equal(hub.active, false);
    },
  );
});

Deno.test("EventHub.active reports whether any watcher or callback is registered", async () => {
  const hub = new EventHub();
  assert.equal(hub.active, false);
  const a = hub.watch("g", "k");
  const b = hub.watch("ns:*", "*", { prefix: "ns:" });
  assert.equal(hub.active, true);
  hub.unwatch(a);
  assert.equal(hub.active, true);
  hub.unwatch(b);
  assert.equal(hub.active, false);
  const off = hub.onChange(() => {}, { namespace: "ns" });
  assert.equal(hub.active, true);
  off();
  assert.equal(hub.active, false);
  const c = hub.watch("*", "*");
  assert.equal(hub.active, true);
  await c.stream.cancel();
  assert.equal(hub.active, false);
  hub.onChange(() => {});
  hub.close();
  assert.equal(hub.active, false);
  assert.deepEqual(await Array.fromAsync(a), []);
  assert.deepEqual(await Array.fromAsync(b), []);
});

Deno.test("EventHub stays consistent while many tasks watch and unwatch during emits", async () => {
  const hub = new EventHub();
  const groups = ["g0", "g1", "ns:g2", "ns:g3"];
  let emitting = true;
  let emitted = 0;
  let heard = 0;
  const offWitness = hub.onChange(() => heard++);
  const emitter = (async () => {
    while (emitting) {
      for (let i = 0; i < 8; i++) {
        const n = emitted++;
        hub.publish([event(groups[n % 4]!, `k${n % 3}`, "set", String(n))]);
      }
      await setImmediate();
    }
  })();

  const selectors: [string, string, string | undefined][] = [
    ["g0", "*", undefined],
    ["g1", "k1", undefined],
    ["ns:*", "*", "ns"],
    ["ns:*", "k2", "ns"],
    ["*", "*", undefined],
    ["*", "k0", undefined],
  ];
  const task = async (t: number) => {
    for (let round = 0; round < 6; round++) {
      if ((t + round) % 5 === 0) {
        // A callback instead of a watcher for this round.
        let count = 0;
        const { promise, resolve } = Promise.withResolvers<void>();
        const off = hub.onChange(() => {
          if (++count === 10) resolve();
        }, round % 2 ? { namespace: "ns" } : {});
        await promise;
        off();
        continue;
      }
      const [group, key, namespace] = selectors[(t + round) % 6]!;
      const w = hub.watch(
        group,
        key,
        namespace === undefined ? {} : { prefix: `${namespace}:` },
      );
      let last = -1;
      const check = (e: StoreEvent) => {
        const n = Number(e.value);
        assert.ok(n > last, "events stay in order");
        last = n;
        if (namespace !== undefined) assert.ok(e.group.startsWith("ns:"));
        else if (group !== "*") assert.equal(e.group, group);
        if (key !== "*") assert.equal(e.key, key);
      };
      /** The next event, which a registered watcher must receive. */
      const next = async (reader: ReadableStreamDefaultReader<StoreEvent>) => {
        const r = await reader.read();
        assert.ok(!r.done, "a registered watcher's stream ended");
        return r.value;
      };
      let count = 0;
      switch (round % 3) {
        case 0:
          for await (const e of w) {
            check(e);
            if (++count === 5) break;
          }
          assert.equal(count, 5, "a registered watcher's stream ended");
          break;
        case 1: {
          const reader = w.stream.getReader();
          for (; count < 5; count++) check(await next(reader));
          await reader.cancel();
          break;
        }
        default: {
          const reader = w.stream.getReader();
          check(await next(reader));
          reader.releaseLock();
          hub.unwatch(w);
          for await (const e of w) check(e);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 60 }, (_, t) => task(t)));
  emitting = false;
  await emitter;
  offWitness();
  assert.equal(hub.active, false);
  assert.equal(
    heard,
    emitted,
    "a callback registered throughout heard every published event, once",
  );
});

/** A replay of `log` (events with seqs), `page` at a time, that counts. */
class FakeReplay {
  pages = 0;
  extended = false;
  #after = 0;
  #until: number;
  constructor(
    readonly log: StoreEvent[],
    readonly page: number,
    until: number,
    readonly fail?: Error,
  ) {
    this.#until = until;
  }
  next(): StoreEvent[] | undefined {
    const rows = this.log.filter((e) =>
      e.seq! > this.#after && e.seq! <= this.#until
    ).slice(0, this.page);
    if (rows.length === 0) return undefined;
    this.pages++;
    if (this.fail !== undefined && this.pages > 1) throw this.fail;
    this.#after = rows.at(-1)!.seq!;
    return rows;
  }
  extend(): void {
    this.extended = true;
    this.#until = Infinity;
  }
  stop(): void {
    this.#until = Math.min(this.#until, this.log.at(-1)?.seq ?? 0);
  }
  covers(e: StoreEvent): boolean {
    return e.seq! <= this.#after;
  }
}

function logged(from: number, to: number): StoreEvent[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    ...event("g", `k${from + i}`),
    seq: from + i,
  }));
}

Deno.test("EventHub.watch() with a replay reads it a page at a time, then live", async (t) => {
  await t.step(
    "a page is read only when the reader has read the last",
    async () => {
      const hub = new EventHub();
      const replay = new FakeReplay(logged(1, 100), 10, 100);
      const w = hub.watch("g", "*", { replay });
      assert.equal(replay.pages, 0);
      const reader = w.stream.getReader();
      assert.equal((await reader.read()).value?.seq, 1);
      assert.equal(replay.pages, 1);
      for (let i = 2; i <= 11; i++) {
        assert.equal((await reader.read()).value?.seq, i);
      }
      assert.equal(replay.pages, 2);
      reader.releaseLock();
      hub.unwatch(w);
      assert.deepEqual(
        (await drain(hub, w)).map((e) => e.seq),
        Array.from({ length: 89 }, (_, i) => i + 12),
      );
    },
  );

  await t.step(
    "live events during the replay come after it, none dropped",
    async () => {
      const hub = new EventHub();
      const replay = new FakeReplay(logged(1, 30), 8, 30);
      const w = hub.watch("g", "*", { replay, capacity: 4 });
      hub.publish(logged(31, 34));
      const got = await drain(hub, w);
      assert.deepEqual(got.map((e) => e.seq), logged(1, 34).map((e) => e.seq));
      assert.equal(w.dropped, 0);
      assert.equal(replay.extended, false);
    },
  );

  await t.step(
    "more live events than the capacity: the replay reads on in the log",
    async () => {
      const hub = new EventHub();
      const log = logged(1, 60);
      const replay = new FakeReplay(log, 8, 30);
      const w = hub.watch("g", "*", { replay, capacity: 4 });
      // The live events 31..60 are also in the log.
      hub.publish(log.slice(30, 60));
      assert.equal(replay.extended, true);
      const reader = w.stream.getReader();
      const seqs: number[] = [];
      for (let i = 0; i < 60; i++) seqs.push((await reader.read()).value!.seq!);
      assert.deepEqual(seqs, log.map((e) => e.seq));
      // The next read finds the log's end: the watcher is live from there,
      // and a live event the replay already read is skipped, a newer one is
      // not.
      const next = reader.read();
      await setImmediate();
      hub.publish([log[59]!, ...logged(61, 61)]);
      assert.equal((await next).value?.seq, 61);
      reader.releaseLock();
      assert.equal(w.dropped, 0);
      hub.unwatch(w);
    },
  );

  await t.step(
    "a replay that throws fails the stream with its error",
    async () => {
      const hub = new EventHub();
      const trimmed = new Error("trimmed");
      const w = hub.watch("g", "*", {
        replay: new FakeReplay(logged(1, 30), 10, 30, trimmed),
      });
      const reader = w.stream.getReader();
      for (let i = 1; i <= 10; i++) {
        assert.equal((await reader.read()).value?.seq, i);
      }
      await assert.rejects(reader.read(), trimmed);
      hub.unwatch(w);
    },
  );

  await t.step(
    "closing the hub reads a short replay at once",
    async () => {
      const hub = new EventHub();
      const replay = new FakeReplay(logged(1, 25), 10, 25);
      const w = hub.watch("g", "*", { replay });
      hub.close();
      assert.equal(replay.pages, 3);
      assert.equal((await Array.fromAsync(w)).length, 25);
    },
  );

  await t.step(
    "closing the hub reads four pages at once, the rest as the reader reads",
    async () => {
      const hub = new EventHub();
      const replay = new FakeReplay(logged(1, 100), 10, 100);
      const w = hub.watch("g", "*", { replay });
      hub.close();
      assert.equal(replay.pages, 4);
      assert.deepEqual(
        (await Array.fromAsync(w)).map((e) => e.seq),
        logged(1, 100).map((e) => e.seq),
      );
      assert.equal(replay.pages, 10);
    },
  );
});

Deno.test("WatchQueue.room() waits until the reader leaves fewer events unread", async (t) => {
  await t.step(
    "resolves once the reader has read below the limit",
    async () => {
      const queue = new WatchQueue<number>(4);
      for (let i = 0; i < 10; i++) queue.force(i);
      assert.equal(queue.unread, 10);
      let roomy = false;
      queue.room(8)?.then(() => roomy = true);
      const reader = queue.stream.getReader();
      for (let i = 0; i < 2; i++) await reader.read();
      await setImmediate();
      assert.equal(roomy, false);
      await reader.read();
      await setImmediate();
      assert.equal(roomy, true);
      assert.equal(queue.room(8), undefined);
      await reader.cancel();
    },
  );

  await t.step("resolves when the stream is cancelled", async () => {
    const queue = new WatchQueue<number>(4);
    for (let i = 0; i < 10; i++) queue.force(i);
    const room = queue.room(2);
    assert.ok(room instanceof Promise);
    await queue.stream.cancel();
    await room;
    assert.equal(queue.room(2), undefined);
  });
});
