import assert from "node:assert/strict";
import {
  AsyncScopedStore,
  ScopedStore,
  Store,
  type StoreEvent,
  type StoreOptions,
  toAsync,
  type Watcher,
  type WatchOptions,
} from "@core/store";
import {
  type EventStreamOptions,
  eventStreamResponse,
  type EventStreamStore,
} from "@core/store/sse";
import {
  FakeClock,
  frameEvent,
  type SseFrame,
  SseReader,
  tempDir,
  yieldNow,
} from "./_helpers.ts";

/** A store that records the watchers the helper opens. */
function spy(store: EventStreamStore): EventStreamStore & {
  watchers: Watcher[];
} {
  const watchers: Watcher[] = [];
  return {
    watchers,
    watch(group: string, key: string, options?: WatchOptions) {
      const watcher = store.watch(group, key, options);
      watchers.push(watcher);
      return watcher;
    },
    getAll: (group: string) => store.getAll(group),
    snapshot: (group: string) =>
      (store.snapshot as NonNullable<EventStreamStore["snapshot"]>)(group),
  };
}

function feedStore(path: string, options: StoreOptions = {}): Store {
  return new Store(path, { changeFeed: true, purgeIntervalMs: 0, ...options });
}

async function open(
  store: EventStreamStore,
  group: string,
  key: string,
  options?: EventStreamOptions,
): Promise<{ response: Response; sse: SseReader }> {
  const response = await eventStreamResponse(store, group, key, options);
  return { response, sse: new SseReader(response.body!) };
}

function values(frames: SseFrame[]): (string | undefined)[] {
  return frames.map((f) => frameEvent(f).value);
}

Deno.test("eventStreamResponse() frames each event with its seq, type and JSON data", async (t) => {
  using dir = tempDir();
  const clock = new FakeClock();
  using store = feedStore(dir.file("f.db"), { clock: clock.fn });

  await t.step("headers as the issue says, retry set once", async () => {
    const { response, sse } = await open(store, "g", "*");
    assert.equal(response.status, 200);
    assert.deepEqual(Object.fromEntries(response.headers), {
      "cache-control": "no-store",
      "content-type": "text/event-stream; charset=utf-8",
      "x-accel-buffering": "no",
    });
    store.set("g", "a", "1");
    store.setWithTTL("g", "b", "2", 10);
    store.delete("g", "a");
    clock.advance(10);
    store.purgeExpired();
    store.set("g", "c", "3");
    store.deleteGroup("g");
    const frames = await sse.take(6);
    assert.deepEqual(
      frames.map((f) => [f.id, f.event]),
      [
        ["1", "set"],
        ["2", "set"],
        ["3", "delete"],
        ["4", "expire"],
        ["5", "set"],
        ["6", "delete_group"],
      ],
    );
    const first = frameEvent(frames[0]!);
    assert.deepEqual(first, {
      type: "set",
      group: "g",
      key: "a",
      value: "1",
      timestamp: clock.now - 10,
      origin: "local",
      seq: 1,
    });
    assert.equal(frameEvent(frames[1]!).expiresAt, clock.now);
    assert.deepEqual(sse.retries, ["1000"]);
    await sse.cancel();
  });

  await t.step(
    "values with CR, LF and data: lines cannot forge frames",
    async () => {
      const { sse } = await open(store, "h", "*");
      const hostile = [
        "x\n\nevent: delete\ndata: {}\n\n",
        "y\r\rid: 999\r\r",
        "z\r\n\r\nretry: 1\r\n: comment\r\ndata: forged",
        "\u2028\u2029\u0085 data:",
      ];
      for (const [i, value] of hostile.entries()) {
        store.set(
          "h",
          `k${i}`,
          value,
        );
      }
      const frames = await sse.take(hostile.length);
      assert.deepEqual(frames.map((f) => f.event), [
        "set",
        "set",
        "set",
        "set",
      ]);
      assert.deepEqual(values(frames), hostile);
      for (const frame of frames) assert.doesNotMatch(frame.data, /[\r\n]/);
      assert.deepEqual(sse.retries, ["1000"]);
      assert.equal(sse.comments, 0);
      await sse.cancel();
    },
  );
});

Deno.test("eventStreamResponse() resumes after Last-Event-ID exactly, whoever wrote meanwhile", async (t) => {
  using dir = tempDir();
  const path = dir.file("r.db");
  using store = feedStore(path);
  using other = feedStore(path);

  await t.step("the changes after the id, in order, then live", async () => {
    const first = await open(store, "g", "*");
    for (let i = 0; i < 3; i++) store.set("g", "k", `a${i}`);
    const seen = await first.sse.take(3);
    await first.sse.cancel();
    const lastId = seen.at(-1)!.id!;
    // While the client is away, this store and another connection write.
    for (let i = 0; i < 5; i++) other.set("g", `o${i}`, `b${i}`);
    store.set("elsewhere", "k", "not watched");
    store.set("g", "k", "c0");
    const request = new Request("http://localhost/events", {
      headers: { "last-event-id": lastId },
    });
    const again = await open(store, "g", "*", { request });
    const missed = await again.sse.take(6);
    assert.deepEqual(values(missed), ["b0", "b1", "b2", "b3", "b4", "c0"]);
    assert.deepEqual(
      missed.map((f) => frameEvent(f).origin),
      ["remote", "remote", "remote", "remote", "remote", "local"],
    );
    const ids = missed.map((f) => Number(f.id));
    assert.ok(
      ids.every((id, i) => id > Number(lastId) && id > (ids[i - 1] ?? 0)),
    );
    other.set("g", "live", "d0");
    assert.deepEqual(values(await again.sse.take(1)), ["d0"]);
    await again.sse.cancel();
  });

  await t.step("lastEventId overrides the header", async () => {
    const request = new Request("http://localhost/", {
      headers: { "last-event-id": "1" },
    });
    const last = store.snapshot("g").position!;
    const { sse } = await open(store, "g", "*", {
      request,
      lastEventId: String(last - 1),
    });
    const [frame] = await sse.take(1);
    assert.equal(frame?.id, String(last));
    await sse.cancel();
  });

  await t.step("on the scoped and asynchronous fronts", async () => {
    const async = toAsync(store);
    const fronts: EventStreamStore[] = [
      new ScopedStore(store, "t"),
      async,
      new AsyncScopedStore(async, "t"),
    ];
    for (const front of fronts) {
      const group = front === async ? "t:g" : "g";
      const since = String(store.snapshot("t:g").position);
      other.set("t:g", "k", `while away ${since}`);
      const { sse } = await open(front, group, "*", { lastEventId: since });
      const [frame] = await sse.take(1);
      assert.equal(frameEvent(frame!).value, `while away ${since}`);
      await sse.cancel();
    }
  });
});

Deno.test("eventStreamResponse() lets a stalled client catch up from the log, losing nothing", async (t) => {
  await t.step(
    "2,000 writes while stalled: all of them, in order, no resync",
    async () => {
      using dir = tempDir();
      using store = feedStore(dir.file("s.db"));
      const source = spy(store);
      const { sse } = await open(source, "g", "*");
      store.set("g", "k", "first");
      await sse.take(1);
      for (let i = 0; i < 2_000; i++) {
        store.set("g", "k", String(i));
        if (i % 100 === 0) await yieldNow();
      }
      // Stalled: the helper stopped reading its watcher, which holds 16
      // events at most; the rest waits in the log.
      const stalled = source.watchers.at(-1)!;
      assert.equal(stalled.capacity, 16);
      const frames = await sse.take(2_000);
      assert.deepEqual(
        values(frames),
        Array.from({ length: 2_000 }, (_, i) => String(i)),
      );
      assert.ok(frames.every((f) => f.event === "set"));
      store.set("g", "k", "live");
      assert.deepEqual(values(await sse.take(1)), ["live"]);
      await sse.cancel();
    },
  );

  await t.step(
    "stalled before its first event: a burst and then 2,000 writes, all of them, no resync",
    async () => {
      using dir = tempDir();
      using store = feedStore(dir.file("f.db"));
      const source = spy(store);
      // The client never reads before the writes: no position was sent.
      const { sse } = await open(source, "g", "*");
      store.transaction((tx) => {
        for (let i = 0; i < 100; i++) tx.set("g", "k", `burst ${i}`);
      });
      for (let i = 0; i < 2_000; i++) {
        store.set("g", "k", String(i));
        if (i % 100 === 0) await yieldNow();
      }
      assert.ok(
        source.watchers[0]!.dropped > 0,
        "the burst overflowed the watcher",
      );
      const frames = await sse.take(2_100);
      assert.deepEqual(values(frames), [
        ...Array.from({ length: 100 }, (_, i) => `burst ${i}`),
        ...Array.from({ length: 2_000 }, (_, i) => String(i)),
      ]);
      assert.ok(frames.every((f) => f.event === "set"));
      assert.deepEqual(
        frames.map((f) => Number(f.id)),
        frames.map((_, i) => i + 1),
      );
      await sse.cancel();
    },
  );

  await t.step(
    "20,000 writes while stalled: the server holds one queue",
    async () => {
      using dir = tempDir();
      using store = feedStore(dir.file("m.db"), {
        changeRetention: { maxRows: 50_000 },
      });
      const source = spy(store);
      const { sse } = await open(source, "g", "*");
      store.set("g", "k", "first");
      await sse.take(1);
      for (let i = 0; i < 20_000; i++) {
        store.set("g", "k", String(i));
        if (i % 500 === 0) await yieldNow();
      }
      // What is held for the client: a watcher's 16 (or one page of the log
      // it replays) and one chunk of the body.
      assert.equal(source.watchers.at(-1)!.capacity, 16);
      const frames = await sse.take(20_000, 60_000);
      assert.equal(frames.at(-1) && frameEvent(frames.at(-1)!).value, "19999");
      assert.ok(frames.every((f, i) => frameEvent(f).value === String(i)));
      await sse.cancel();
    },
  );
});

Deno.test("eventStreamResponse() sends one resync when the log cannot fill the gap, then goes on live", async (t) => {
  await t.step("a position trimmed by retention", async () => {
    using dir = tempDir();
    using store = feedStore(dir.file("t.db"), {
      changeRetention: { maxRows: 10 },
    });
    // The log trims itself every 64th row.
    for (let i = 0; i < 200; i++) store.set("g", "k", String(i));
    const { sse } = await open(store, "g", "*", { lastEventId: "3" });
    store.set("g", "k", "live");
    const [resync, live] = await sse.take(2);
    assert.equal(resync?.event, "resync");
    assert.match(JSON.parse(resync!.data).reason, /no longer holds/);
    assert.equal(live?.id, "201");
    assert.equal(frameEvent(live!).value, "live");
    await sse.cancel();
  });

  await t.step("a stall longer than the retention", async () => {
    using dir = tempDir();
    using store = feedStore(dir.file("u.db"), {
      changeRetention: { maxRows: 100 },
    });
    const { sse } = await open(store, "g", "*");
    store.set("g", "k", "first");
    await sse.take(1);
    for (let i = 0; i < 1_000; i++) store.set("g", "k", String(i));
    await yieldNow();
    store.set("g", "k", "after");
    // The events the watcher queued before it dropped are not sent: after
    // its first drop nothing it holds is known to be gapless.
    const frames = await sse.take(2);
    assert.deepEqual(frames.map((f) => f.event), ["resync", "set"]);
    assert.equal(frames[1]?.id, "1002");
    assert.equal(frameEvent(frames[1]!).value, "after");
    await sse.cancel();
  });

  await t.step(
    "a store without the change feed, or an id of no store",
    async () => {
      using store = new Store();
      for (const lastEventId of ["7", "abc", "-1", "1e3"]) {
        const { sse } = await open(store, "g", "*", { lastEventId });
        store.set("g", "k", lastEventId);
        const [resync, live] = await sse.take(2);
        assert.equal(resync?.event, "resync");
        assert.equal(live?.id, undefined);
        assert.equal(frameEvent(live!).value, lastEventId);
        await sse.cancel();
      }
    },
  );
});

Deno.test("eventStreamResponse() with snapshot starts with the entries, then the changes after them", async (t) => {
  await t.step(
    "no gap and no repeat while another connection writes",
    async () => {
      using dir = tempDir();
      const path = dir.file("n.db");
      using store = feedStore(path);
      using other = feedStore(path);
      for (let i = 0; i < 100; i++) other.set("g", `k${i % 30}`, `a${i}`);
      const { sse } = await open(store, "g", "*", { snapshot: true });
      for (let i = 0; i < 100; i++) {
        other.set("g", `k${i % 40}`, `b${i}`);
        if (i % 7 === 0) other.delete("g", `k${i % 30}`);
      }
      other.set("g", "end", "end");
      const [snap] = await sse.take(1);
      assert.equal(snap?.event, "snapshot");
      const { entries, position } = JSON.parse(snap!.data);
      assert.equal(snap?.id, String(position));
      const copy = new Map<string, string>(Object.entries(entries));
      let last = position as number;
      for (;;) {
        const event = frameEvent((await sse.next())!);
        assert.ok(event.seq! > last, "every change comes after the position");
        last = event.seq!;
        if (event.type === "set") copy.set(event.key, event.value!);
        else copy.delete(event.key);
        if (event.key === "end") break;
      }
      assert.deepEqual(copy, store.getAll("g"));
      await sse.cancel();
    },
  );

  await t.step("one key, no positions, and an asynchronous store", async () => {
    using store = new Store();
    store.set("g", "a", "1");
    store.set("g", "b", "2");
    const keyed = await open(store, "g", "a", { snapshot: true });
    const [frame] = await keyed.sse.take(1);
    assert.equal(frame?.id, undefined);
    assert.deepEqual(JSON.parse(frame!.data), {
      entries: { a: "1" },
      position: null,
    });
    await keyed.sse.cancel();
    const pending = eventStreamResponse(toAsync(store), "g", "*", {
      snapshot: true,
    });
    assert.ok(pending instanceof Promise);
    const sse = new SseReader((await pending).body!);
    const [snap] = await sse.take(1);
    assert.deepEqual(JSON.parse(snap!.data).entries, { a: "1", b: "2" });
    await sse.cancel();
    assert.throws(
      () => eventStreamResponse(store, "*", "*", { snapshot: true }),
      /Cannot stream events: snapshot needs one group/,
    );
  });
});

Deno.test("eventStreamResponse() ends promptly and releases its watcher", async (t) => {
  using store = new Store();

  await t.step(
    "when the request aborts, the signal aborts or the store closes",
    async () => {
      const client = new AbortController();
      const server = new AbortController();
      const source = spy(store);
      const request = new Request("http://localhost/", {
        signal: client.signal,
      });
      const byRequest = await open(source, "g", "*", { request });
      const bySignal = await open(source, "g", "*", { signal: server.signal });
      client.abort();
      server.abort();
      assert.deepEqual(await byRequest.sse.rest(1_000), []);
      assert.deepEqual(await bySignal.sse.rest(1_000), []);
      assert.ok(byRequest.sse.done && bySignal.sse.done);
      store.set("g", "k", "v");
      for (const w of source.watchers) assert.equal(w.dropped, 0);
      const early = new AbortController();
      early.abort();
      const aborted = await open(store, "g", "*", { signal: early.signal });
      assert.deepEqual(await aborted.sse.rest(1_000), []);
    },
  );

  await t.step(
    "500 streams opened and aborted leave no watcher behind",
    async () => {
      const source = spy(store);
      const clients: AbortController[] = [];
      const readers: SseReader[] = [];
      for (let i = 0; i < 500; i++) {
        const client = new AbortController();
        clients.push(client);
        readers.push(
          (await open(source, "g", "*", { signal: client.signal })).sse,
        );
      }
      for (const client of clients) client.abort();
      for (const sse of readers) await sse.rest(1_000);
      for (let i = 0; i < 100; i++) store.set("g", "k", String(i));
      assert.equal(source.watchers.length, 500);
      assert.ok(source.watchers.every((w) => w.dropped === 0));
    },
  );

  await t.step("the store closing ends the stream", async () => {
    using local = new Store();
    const { sse } = await open(local, "g", "*");
    local.set("g", "k", "v");
    await sse.take(1);
    local.close();
    assert.deepEqual(await sse.rest(1_000), []);
    assert.ok(sse.done);
    assert.throws(() => eventStreamResponse(local, "g", "*"), {
      name: "StoreClosedError",
    });
  });
});

Deno.test("eventStreamResponse() sends a heartbeat comment while idle", async () => {
  using store = new Store();
  const { sse } = await open(store, "g", "*", { heartbeatMs: 20 });
  const deadline = Date.now() + 5_000;
  while (sse.comments < 2 && Date.now() < deadline) {
    await sse.take(1, 50).catch(() => {});
  }
  assert.ok(sse.comments >= 2, `comments ${sse.comments}`);
  store.set("g", "k", "v");
  assert.deepEqual(values(await sse.take(1)), ["v"]);
  await sse.cancel();
});

Deno.test("eventStreamResponse() rejects bad arguments before streaming", () => {
  using store = new Store();
  const bad: [() => unknown, ErrorConstructor | RegExp][] = [
    [() => eventStreamResponse({} as Store, "g", "*"), TypeError],
    [() => eventStreamResponse(null as unknown as Store, "g", "*"), TypeError],
    [() => eventStreamResponse(store, 1 as unknown as string, "*"), TypeError],
    [
      () => eventStreamResponse(store, "g", null as unknown as string),
      TypeError,
    ],
    [
      () => eventStreamResponse(store, "g", "*", 3 as EventStreamOptions),
      TypeError,
    ],
    [
      () => eventStreamResponse(store, "g", "*", { heartbeatMs: -1 }),
      RangeError,
    ],
    [
      () => eventStreamResponse(store, "g", "*", { heartbeatMs: 1.5 }),
      RangeError,
    ],
    [
      () =>
        eventStreamResponse(store, "g", "*", {
          heartbeatMs: "5" as unknown as number,
        }),
      TypeError,
    ],
    [
      () =>
        eventStreamResponse(store, "g", "*", {
          snapshot: "yes" as unknown as boolean,
        }),
      TypeError,
    ],
    [
      () =>
        eventStreamResponse(store, "g", "*", {
          request: {} as Request,
        }),
      TypeError,
    ],
    [
      () =>
        eventStreamResponse(store, "g", "*", {
          signal: {} as AbortSignal,
        }),
      TypeError,
    ],
  ];
  for (const [call, error] of bad) {
    assert.throws(call, error);
  }
  const events: StoreEvent[] = [];
  store.onChange((e) => events.push(e));
  assert.deepEqual(events, []);
});
