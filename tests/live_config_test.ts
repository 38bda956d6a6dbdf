/**
 * The live-config example (examples/live_config/) through its request
 * handler, as a client sees it, without opening a port: the real-port and
 * subprocess tests are in tests/net/live_config_suite.ts.
 */
import assert from "node:assert/strict";
import { ScopedStore, Store, type StoreEvent } from "@core/store";
import {
  createApp,
  decodeSegment,
  encodeSegment,
} from "../examples/live_config/server.ts";
import { parseFlags } from "../examples/live_config/main.ts";
import { PAGE_HTML } from "../examples/live_config/page.ts";
import { clockedStore, FakeClock, tempDir } from "./_helpers.ts";
import { BlockReader, eventBlock } from "./fixtures/live_config_sse.ts";

const T0 = 1_700_000_000_000;

/** A service over an in-memory store on a fake clock. */
function service(options: {
  maxKeys?: number;
  maxGroups?: number;
  heartbeatMs?: number;
  maxBodyBytes?: number;
  bodyTimeoutMs?: number;
} = {}) {
  const clock = new FakeClock(T0);
  const store = clockedStore(clock);
  const app = createApp({ store, ...options });
  const events: StoreEvent[] = [];
  // The write counters are the service's, not a tenant's data.
  store.onChange((event) => {
    if (event.group !== "_writes") events.push(event);
  });
  return {
    clock,
    store,
    app,
    /** Every event the store emitted, in order. */
    events,
    /** Sends one request to the handler. */
    call(
      method: string,
      path: string,
      body?: BodyInit,
      headers?: HeadersInit,
    ): Promise<Response> {
      const init: RequestInit = { method };
      if (body !== undefined) init.body = body;
      if (headers !== undefined) init.headers = headers;
      return app.handler(new Request(`http://localhost${path}`, init));
    },
    /** Opens an event stream and checks its headers and first block. */
    async watch(path: string): Promise<BlockReader> {
      const response = await this.call("GET", path);
      assert.equal(response.status, 200);
      assert.equal(
        response.headers.get("content-type"),
        "text/event-stream; charset=utf-8",
      );
      const reader = new BlockReader(response.body);
      assert.equal(await reader.next(), "retry: 1000");
      return reader;
    },
    [Symbol.dispose]() {
      app.close();
      store.close();
    },
  };
}

const key = (group: string, name: string) =>
  `/t/acme/g/${encodeSegment(group)}/k/${encodeSegment(name)}`;

async function expectError(
  response: Response | Promise<Response>,
  status: number,
  message: RegExp,
): Promise<Record<string, unknown>> {
  const res = await response;
  const body = await res.json();
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(
    res.headers.get("content-type"),
    "application/json; charset=utf-8",
  );
  assert.match(body.error, message);
  return body;
}

Deno.test("live config: PUT, GET and DELETE one key", async () => {
  using svc = service();
  const put = await svc.call("PUT", "/t/acme/g/config/k/theme", "dark");
  assert.equal(put.status, 204);
  assert.equal(put.body, null);

  const get = await svc.call("GET", "/t/acme/g/config/k/theme");
  assert.equal(get.status, 200);
  assert.equal(get.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(get.headers.get("cache-control"), "no-store");
  assert.equal(await get.text(), "dark");
  // Stored in the tenant's namespace.
  assert.equal(svc.store.get("acme:config", "theme"), "dark");

  const del = await svc.call("DELETE", "/t/acme/g/config/k/theme");
  assert.equal(del.status, 204);
  await expectError(
    svc.call("GET", "/t/acme/g/config/k/theme"),
    404,
    /^no live key "theme" in group "config"$/,
  );
  await expectError(
    svc.call("DELETE", "/t/acme/g/config/k/theme"),
    404,
    /no live key/,
  );
  assert.deepEqual(svc.events.map((e) => e.type), ["set", "delete"]);
});

Deno.test("live config: GET a group answers its live entries as one JSON object", async () => {
  using svc = service();
  const empty = await svc.call("GET", "/t/acme/g/config");
  assert.equal(empty.status, 200);
  assert.deepEqual(await empty.json(), {});

  const tenant = new ScopedStore(svc.store, "acme");
  tenant.set("config", "theme", "dark");
  tenant.set("config", "__proto__", "own key, not a prototype");
  tenant.setWithTTL("config", "flash", "soon gone", 10);
  tenant.set("other", "theme", "other group");
  new ScopedStore(svc.store, "globex").set("config", "theme", "other tenant");
  svc.clock.advance(10);

  const response = await svc.call("GET", "/t/acme/g/config");
  assert.equal(
    response.headers.get("content-type"),
    "application/json; charset=utf-8",
  );
  const text = await response.text();
  assert.equal(
    text,
    '{"__proto__":"own key, not a prototype","theme":"dark"}',
  );
});

Deno.test("live config: any string is a group or a key, one URL-encoded path segment", async (t) => {
  const names = [
    "",
    " ",
    "a/b",
    "a%2Fb",
    "100%",
    "?x=1#y",
    "&+=;,",
    "漢字",
    "😀👩‍👩‍👧",
    "*",
    ":",
    "t2:config",
    ".",
    "..",
    "...",
    "~.",
    "~~..",
    "~",
    ".hidden",
    "__proto__",
    "a\0b",
    "line\nbreak",
    "\\",
  ];
  await t.step("encodeSegment and decodeSegment are inverse", () => {
    for (const name of names) {
      const segment = encodeSegment(name);
      assert.doesNotMatch(segment, /\//, name);
      assert.equal(decodeSegment(segment), name, name);
    }
  });
  await t.step("each name round-trips as a group and as a key", async () => {
    using svc = service();
    const tenant = new ScopedStore(svc.store, "acme");
    for (const name of names) {
      const put = await svc.call("PUT", key(name, name), name);
      assert.equal(put.status, 204, JSON.stringify(name));
      assert.equal(tenant.get(name, name), name, JSON.stringify(name));
      const get = await svc.call("GET", key(name, name));
      assert.equal(await get.text(), name, JSON.stringify(name));
      const group = await svc.call("GET", `/t/acme/g/${encodeSegment(name)}`);
      assert.deepEqual(
        Object.entries(await group.json()),
        [[name, name]],
        JSON.stringify(name),
      );
    }
    assert.equal(tenant.countAll(), names.length);
    for (const name of names) {
      const del = await svc.call("DELETE", key(name, name));
      assert.equal(del.status, 204, JSON.stringify(name));
    }
    assert.equal(tenant.countAll(), 0);
  });
});

Deno.test("live config: the PUT body is the value, byte for byte", async () => {
  using svc = service();
  const values = [
    "",
    "\uFEFFbom first",
    "a\0b",
    "😀 漢字",
    "x".repeat(100_000),
  ];
  for (const value of values) {
    assert.equal((await svc.call("PUT", key("g", "k"), value)).status, 204);
    assert.equal(await (await svc.call("GET", key("g", "k"))).text(), value);
  }
  // Raw bytes, and a body in several chunks.
  const bytes = new TextEncoder().encode("€uro");
  const chunked = ReadableStream.from([bytes.slice(0, 2), bytes.slice(2)]);
  assert.equal(
    (await svc.call("PUT", key("g", "chunks"), chunked)).status,
    204,
  );
  assert.equal(svc.store.get("acme:g", "chunks"), "€uro");
  // No body at all is the empty string.
  assert.equal((await svc.call("PUT", key("g", "none"))).status, 204);
  assert.equal(svc.store.get("acme:g", "none"), "");
});

Deno.test("live config: PUT ?ttl= expires the key", async () => {
  using svc = service();
  const tenant = new ScopedStore(svc.store, "acme");
  assert.equal(
    (await svc.call("PUT", `${key("g", "k")}?ttl=1000`, "v")).status,
    204,
  );
  assert.equal(tenant.ttl("g", "k"), 1000);
  assert.equal(svc.events[0]?.expiresAt, T0 + 1000);
  svc.clock.advance(999);
  assert.equal(await (await svc.call("GET", key("g", "k"))).text(), "v");
  svc.clock.advance(1);
  await expectError(svc.call("GET", key("g", "k")), 404, /no live key/);
  // A PUT without ttl clears the expiry.
  await svc.call("PUT", `${key("g", "k")}?ttl=5`, "v");
  await svc.call("PUT", key("g", "k"), "v2");
  assert.equal(tenant.ttl("g", "k"), Infinity);
});

Deno.test("live config: POST render renders the body over the group", async () => {
  using svc = service();
  await svc.call("PUT", key("user", "name"), "Ada");
  await svc.call("PUT", key("user", "bio"), "<b>hi</b>");
  const ok = await svc.call(
    "POST",
    "/t/acme/g/user/render",
    "{{ .name }}: {{ .bio | html }} {{ .missing }}",
  );
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await ok.text(), "Ada: &lt;b&gt;hi&lt;/b&gt; <no value>");

  const zero = await svc.call(
    "POST",
    "/t/acme/g/user/render?missingKey=zero",
    "[{{ .missing }}]",
  );
  assert.equal(await zero.text(), "[]");

  const strict = await expectError(
    svc.call(
      "POST",
      "/t/acme/g/user/render?missingKey=error",
      "{{ .missing }}",
    ),
    400,
    /^Cannot render template: 1:4: .*missing/,
  );
  assert.equal(strict.line, 1);
  assert.equal(strict.column, 4);

  const broken = await expectError(
    svc.call("POST", "/t/acme/g/user/render", "ok\n{{ .name "),
    400,
    /^Cannot render template: 2:1: unclosed action/,
  );
  assert.deepEqual([broken.line, broken.column], [2, 1]);

  await expectError(
    svc.call("POST", "/t/acme/g/user/render?missingKey=loud", "x"),
    400,
    /missingKey must be "default", "zero" or "error"/,
  );
  // Another tenant's group of the same name is not the data.
  const other = await svc.call(
    "POST",
    "/t/globex/g/user/render",
    "{{ .name }}",
  );
  assert.equal(await other.text(), "<no value>");
});

Deno.test("live config: the event stream sends the tenant's events of a group exactly", async () => {
  using svc = service();
  await using stream = await svc.watch("/t/acme/events?group=config");
  assert.equal(svc.app.streams, 1);

  await svc.call("PUT", key("config", "theme"), "dark");
  await svc.call("PUT", `${key("config", "token")}?ttl=1000`, "abc");
  await svc.call("PUT", key("other", "theme"), "not this group");
  await svc.call("PUT", "/t/globex/g/config/k/theme", "not this tenant");
  svc.store.set("config", "theme", "not scoped");
  svc.clock.advance(1000);
  await svc.call("GET", key("config", "token")); // finds it expired
  await svc.call("DELETE", key("config", "theme"));
  await svc.call("PUT", key("config", 'a\0\n"b'), "line\nbreak");
  new ScopedStore(svc.store, "acme").deleteGroup("config");

  assert.deepEqual(await stream.take(6), [
    `event: set\ndata: {"type":"set","group":"acme:config","key":"theme","value":"dark","timestamp":${T0},"origin":"local"}`,
    `event: set\ndata: {"type":"set","group":"acme:config","key":"token","value":"abc","expiresAt":${
      T0 + 1000
    },"timestamp":${T0},"origin":"local"}`,
    `event: expire\ndata: {"type":"expire","group":"acme:config","key":"token","timestamp":${
      T0 + 1000
    },"origin":"local"}`,
    `event: delete\ndata: {"type":"delete","group":"acme:config","key":"theme","timestamp":${
      T0 + 1000
    },"origin":"local"}`,
    `event: set\ndata: {"type":"set","group":"acme:config","key":"a\\u0000\\n\\"b","value":"line\\nbreak","timestamp":${
      T0 + 1000
    },"origin":"local"}`,
    `event: delete_group\ndata: {"type":"delete_group","group":"acme:config","key":"","timestamp":${
      T0 + 1000
    },"origin":"local"}`,
  ]);
  await stream.cancel();
  assert.equal(svc.app.streams, 0);
});

Deno.test("live config: with the change feed, a write through another instance reaches the stream, with origin and seq", async () => {
  using dir = tempDir();
  const path = dir.file("shared.db");
  const clock = new FakeClock(T0);
  const options = { clock: clock.fn, purgeIntervalMs: 0, changeFeed: true };
  // Two service instances (processes, in production) on one file.
  using storeA = new Store(path, options);
  using storeB = new Store(path, options);
  const appA = createApp({ store: storeA });
  const appB = createApp({ store: storeB });
  try {
    const response = await appA.handler(
      new Request("http://localhost/t/acme/events?group=config"),
    );
    await using stream = new BlockReader(response.body);
    assert.equal(await stream.next(), "retry: 1000");
    const put = (app: typeof appA, value: string) =>
      app.handler(
        new Request("http://localhost/t/acme/g/config/k/theme", {
          method: "PUT",
          body: value,
        }),
      );
    assert.equal((await put(appB, "from B")).status, 204);
    // Delivered when A's feed polls the file: awaited, not slept for. An
    // event read from the log carries the time the log recorded for the
    // write (the system clock), not the reader's clock.
    const wall = Date.now();
    const [remote] = await stream.take(1);
    const stamp = Number(/"timestamp":(\d+)/.exec(remote ?? "")?.[1]);
    assert.ok(Math.abs(stamp - wall) < 5_000, `timestamp ${stamp}`);
    assert.equal(
      remote,
      `id: 1\nevent: set\ndata: {"type":"set","group":"acme:config","key":"theme","value":"from B","timestamp":${stamp},"origin":"remote","seq":1}`,
    );
    assert.equal((await put(appA, "from A")).status, 204);
    // Seq 2 went to B's write counter for the tenant.
    assert.deepEqual(await stream.take(1), [
      `id: 3\nevent: set\ndata: {"type":"set","group":"acme:config","key":"theme","value":"from A","timestamp":${T0},"origin":"local","seq":3}`,
    ]);
  } finally {
    appA.close();
    appB.close();
  }
});

Deno.test("live config: the event stream filters by key, or watches every group", async (t) => {
  using svc = service();
  const write = async () => {
    await svc.call("PUT", key("a", "theme"), "1");
    await svc.call("PUT", key("a", "other"), "2");
    await svc.call("PUT", key("b:c", "theme"), "3");
    await svc.call("PUT", "/t/globex/g/a/k/theme", "4");
    await svc.call("DELETE", key("a", "theme"));
  };
  await t.step("one key of one group", async () => {
    await using stream = await svc.watch("/t/acme/events?group=a&key=theme");
    await write();
    assert.deepEqual(await stream.take(2), [
      eventBlock({
        type: "set",
        group: "a",
        key: "theme",
        value: "1",
        timestamp: T0,
      }),
      eventBlock({ type: "delete", group: "a", key: "theme", timestamp: T0 }),
    ]);
  });
  await t.step("one key of every group", async () => {
    await using stream = await svc.watch("/t/acme/events?key=theme");
    await write();
    assert.deepEqual(await stream.take(3), [
      eventBlock({
        type: "set",
        group: "a",
        key: "theme",
        value: "1",
        timestamp: T0,
      }),
      eventBlock({
        type: "set",
        group: "b:c",
        key: "theme",
        value: "3",
        timestamp: T0,
      }),
      eventBlock({ type: "delete", group: "a", key: "theme", timestamp: T0 }),
    ]);
  });
  await t.step(
    "everything of the tenant; empty parameters mean every",
    async () => {
      await using stream = await svc.watch("/t/acme/events?group=&key=");
      await write();
      assert.deepEqual(await stream.take(4), [
        eventBlock({
          type: "set",
          group: "a",
          key: "theme",
          value: "1",
          timestamp: T0,
        }),
        eventBlock({
          type: "set",
          group: "a",
          key: "other",
          value: "2",
          timestamp: T0,
        }),
        eventBlock({
          type: "set",
          group: "b:c",
          key: "theme",
          value: "3",
          timestamp: T0,
        }),
        eventBlock({ type: "delete", group: "a", key: "theme", timestamp: T0 }),
      ]);
    },
  );
  await t.step(
    "a group with any characters, given as a query parameter",
    async () => {
      const group = "a/b ? & ..";
      await using stream = await svc.watch(
        `/t/acme/events?${new URLSearchParams({ group })}`,
      );
      await svc.call("PUT", key(group, "k"), "v");
      assert.deepEqual(await stream.take(1), [
        eventBlock({ type: "set", group, key: "k", value: "v", timestamp: T0 }),
      ]);
    },
  );
});

Deno.test("live config: the event stream sends a heartbeat and clears its timer when the client leaves", async () => {
  using svc = service({ heartbeatMs: 5 });
  const stream = await svc.watch("/t/acme/events");
  assert.equal(await stream.next(), ": heartbeat");
  assert.equal(await stream.next(), ": heartbeat");
  await svc.call("PUT", key("g", "k"), "v");
  // Heartbeats may come before the event; nothing else may.
  let block = await stream.next();
  while (block === ": heartbeat") block = await stream.next();
  assert.equal(
    block,
    eventBlock({
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      timestamp: T0,
    }),
  );
  await stream.cancel();
  assert.equal(svc.app.streams, 0);
  // The test's timer sanitizer fails if the heartbeat interval is still set.
});

Deno.test("live config: a slow client never slows writers, and never misses an event silently", async (t) => {
  const set = (i: number, seq?: number) =>
    eventBlock({
      type: "set",
      group: "g",
      key: `k${i}`,
      value: `${i}`,
      timestamp: T0,
      ...(seq === undefined ? {} : { seq }),
    });

  await t.step(
    "without positions, a client that fell behind gets a resync",
    async () => {
      using svc = service();
      const response = await svc.call("GET", "/t/acme/events?group=g");
      // 30 writes while the client reads nothing: each returns at once.
      for (let i = 0; i < 30; i++) {
        assert.equal(
          (await svc.call("PUT", key("g", `k${i}`), `${i}`)).status,
          204,
        );
      }
      assert.equal(svc.store.count("acme:g"), 30);
      await using stream = new BlockReader(response.body);
      const [retry, resync] = await stream.take(2);
      assert.equal(retry, "retry: 1000");
      assert.match(resync!, /^event: resync\ndata: \{"reason":/);
      await svc.call("PUT", key("g", "k30"), "30");
      assert.deepEqual(await stream.take(1), [set(30)]);
    },
  );

  await t.step(
    "with the change feed, it catches up from the log: every event, in order",
    async () => {
      using dir = tempDir();
      const clock = new FakeClock(T0);
      using store = new Store(dir.file("slow.db"), {
        clock: clock.fn,
        purgeIntervalMs: 0,
        changeFeed: true,
      });
      const app = createApp({ store });
      try {
        const response = await app.handler(
          new Request("http://localhost/t/acme/events?group=g"),
        );
        await using stream = new BlockReader(response.body);
        assert.equal(await stream.next(), "retry: 1000");
        const put = (i: number) =>
          app.handler(
            new Request(`http://localhost${key("g", `k${i}`)}`, {
              method: "PUT",
              body: `${i}`,
            }),
          );
        await put(0);
        assert.deepEqual(await stream.take(1), [set(0, 1)]);
        for (let i = 1; i < 60; i++) await put(i);
        // Caught up from the log, each with the time the log recorded; each
        // PUT's write counter took the seq after it.
        const blocks = await stream.take(59);
        const untimed = (block: string) =>
          block.replace(/"timestamp":\d+/, `"timestamp":${T0}`);
        assert.deepEqual(
          blocks.map(untimed),
          Array.from({ length: 59 }, (_, n) => set(n + 1, 2 * n + 3)),
        );
      } finally {
        app.close();
      }
    },
  );
});

Deno.test("live config: app.close() ends every open stream and refuses new ones", async () => {
  using svc = service({ heartbeatMs: 60_000 });
  const a = await svc.watch("/t/acme/events");
  const b = await svc.watch("/t/globex/events?group=g");
  await svc.call("PUT", key("g", "k"), "v");
  assert.deepEqual(await a.take(1), [
    eventBlock({
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      timestamp: T0,
    }),
  ]);
  assert.equal(svc.app.streams, 2);
  svc.app.close();
  svc.app.close();
  assert.equal(svc.app.streams, 0);
  // The streams end: the client reconnects elsewhere, from its last id.
  assert.deepEqual(await a.rest(), []);
  assert.deepEqual(await b.rest(), []);
  await expectError(svc.call("GET", "/t/acme/events"), 503, /shutting down/);
  // The store is the caller's: other routes still answer.
  assert.equal((await svc.call("PUT", key("g", "k"), "w")).status, 204);
});

Deno.test("live config: closing the store ends the streams; requests then answer 503", async () => {
  using svc = service();
  const stream = await svc.watch("/t/acme/events");
  await svc.call("PUT", key("g", "k"), "v");
  svc.store.close();
  assert.deepEqual(await stream.rest(), [
    eventBlock({
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      timestamp: T0,
    }),
  ]);
  assert.equal(svc.app.streams, 0);
  const requests: [string, string][] = [
    ["GET", "/t/acme/events"],
    ["GET", "/t/acme/g/g"],
    ["PUT", key("g", "k")],
    ["POST", "/t/acme/g/g/render"],
  ];
  for (const [method, path] of requests) {
    await expectError(
      svc.call(method, path, method === "GET" ? undefined : "x"),
      503,
      /the store is closed/,
    );
  }
});

Deno.test("live config: quotas answer 429 with the limit, and write nothing", async (t) => {
  await t.step("maxKeys", async () => {
    using svc = service({ maxKeys: 2 });
    await using stream = await svc.watch("/t/acme/events");
    assert.equal((await svc.call("PUT", key("g", "a"), "1")).status, 204);
    assert.equal((await svc.call("PUT", key("h", "b"), "2")).status, 204);
    const refused = await svc.call("PUT", key("g", "c"), "3");
    assert.equal(refused.status, 429);
    assert.deepEqual(await refused.json(), {
      error:
        'Cannot set value: namespace "acme" is at its maxKeys quota of 2 live keys',
      limit: "maxKeys",
      max: 2,
    });
    await expectError(
      svc.call("PUT", `${key("g", "c")}?ttl=100`, "3"),
      429,
      /maxKeys quota of 2/,
    );
    // Overwriting is not adding; another tenant has its own quota.
    assert.equal((await svc.call("PUT", key("g", "a"), "1b")).status, 204);
    assert.equal((await svc.call("PUT", "/t/globex/g/g/k/c", "3")).status, 204);
    assert.deepEqual(
      Object.fromEntries(new ScopedStore(svc.store, "acme").getAll("g")),
      { a: "1b" },
    );
    // The refused writes sent no event.
    assert.deepEqual(await stream.take(3), [
      eventBlock({
        type: "set",
        group: "g",
        key: "a",
        value: "1",
        timestamp: T0,
      }),
      eventBlock({
        type: "set",
        group: "h",
        key: "b",
        value: "2",
        timestamp: T0,
      }),
      eventBlock({
        type: "set",
        group: "g",
        key: "a",
        value: "1b",
        timestamp: T0,
      }),
    ]);
  });
  await t.step("maxGroups", async () => {
    using svc = service({ maxGroups: 1 });
    assert.equal((await svc.call("PUT", key("g", "a"), "1")).status, 204);
    assert.equal((await svc.call("PUT", key("g", "b"), "2")).status, 204);
    const body = await expectError(
      svc.call("PUT", key("h", "a"), "3"),
      429,
      /maxGroups quota of 1 group$/,
    );
    assert.equal(body.limit, "maxGroups");
    assert.equal(body.max, 1);
    // The write counters' group is no tenant's, in no quota.
    assert.deepEqual(svc.store.groups(), ["_writes", "acme:g"]);
  });
});

Deno.test("live config: bad input answers 400 naming the problem, and writes nothing", async (t) => {
  using svc = service();
  const cases: [string, string, BodyInit | undefined, RegExp][] = [
    [
      "PUT",
      `${key("g", "k")}?ttl=0`,
      "v",
      /^ttl must be a positive integer .*received "0"$/,
    ],
    ["PUT", `${key("g", "k")}?ttl=-5`, "v", /ttl must be .*"-5"/],
    ["PUT", `${key("g", "k")}?ttl=1.5`, "v", /ttl must be .*"1.5"/],
    ["PUT", `${key("g", "k")}?ttl=1e3`, "v", /ttl must be .*"1e3"/],
    ["PUT", `${key("g", "k")}?ttl=`, "v", /ttl must be .*""/],
    ["PUT", `${key("g", "k")}?ttl=soon`, "v", /ttl must be .*"soon"/],
    ["PUT", `${key("g", "k")}?ttl=9007199254740993`, "v", /ttl must be/],
    // A valid integer whose expiry is past the largest safe integer.
    [
      "PUT",
      `${key("g", "k")}?ttl=9007199254740000`,
      "v",
      /past the largest safe integer/,
    ],
    ["PUT", "/t/ac_me/g/g/k/k", "v", /namespace must match .*received "ac_me"/],
    ["PUT", "/t/%C3%BC/g/g/k/k", "v", /namespace must match .*received "ü"/],
    ["PUT", "/t//g/g/k/k", "v", /namespace must match .*received ""/],
    [
      "PUT",
      "/t/acme/g/100%/k/k",
      "v",
      /^group path segment "100%" is not valid percent-encoded UTF-8$/,
    ],
    ["PUT", "/t/acme/g/g/k/%FF", "v", /^key path segment "%FF" is not valid/],
    ["PUT", "/t/acme/g/g/k/%ED%A0%80", "v", /key path segment .* is not valid/],
    ["PUT", "/t/%zz/g/g/k/k", "v", /^tenant path segment "%zz" is not valid/],
    [
      "PUT",
      key("g", "k"),
      new Uint8Array([0x61, 0xff]),
      /^body is not valid UTF-8$/,
    ],
    [
      "PUT",
      key("g", "k"),
      new Uint8Array([0xed, 0xa0, 0x80]),
      /^body is not valid UTF-8$/,
    ],
    ["GET", "/t/a.b/g/g", undefined, /namespace must match/],
    ["GET", "/t/a.b/events", undefined, /namespace must match/],
    [
      "POST",
      "/t/acme/g/g/render",
      new Uint8Array([0xc3]),
      /body is not valid UTF-8/,
    ],
  ];
  for (const [method, path, body, message] of cases) {
    await t.step(`${method} ${path}`, async () => {
      await expectError(svc.call(method, path, body), 400, message);
    });
  }
  assert.deepEqual(svc.store.groups(), []);
  assert.deepEqual(svc.events, []);
});

Deno.test("live config: a body over maxBodyBytes answers 413", async () => {
  using svc = service({ maxBodyBytes: 8 });
  assert.equal((await svc.call("PUT", key("g", "k"), "12345678")).status, 204);
  // Declared too long, and streamed too long without a length.
  const declared = await expectError(
    svc.call("PUT", key("g", "k"), "123456789", { "content-length": "9" }),
    413,
    /^body is larger than 8 bytes$/,
  );
  assert.equal(declared.max, 8);
  await expectError(
    svc.call("PUT", key("g", "k"), "123456789"),
    413,
    /larger than 8 bytes/,
  );
  await expectError(
    svc.call(
      "PUT",
      key("g", "k"),
      ReadableStream.from([new Uint8Array(5), new Uint8Array(5)]),
    ),
    413,
    /larger than 8 bytes/,
  );
  await expectError(
    svc.call("POST", "/t/acme/g/g/render", "{{ .k }}{{ .k }}"),
    413,
    /larger than 8 bytes/,
  );
  assert.equal(svc.store.get("acme:g", "k"), "12345678");
});

Deno.test("live config: a body that has not arrived within bodyTimeoutMs answers 408, and nothing is written", async (t) => {
  using svc = service({ bodyTimeoutMs: 50 });
  const routes: [string, string][] = [
    ["PUT", key("g", "k")],
    ["POST", "/t/acme/g/g/render"],
  ];
  for (const [method, path] of routes) {
    await t.step(`${method} ${path}`, async () => {
      let cancelled = false;
      // Two bytes, then nothing: the client stalls.
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("ab"));
        },
        cancel() {
          cancelled = true;
        },
      });
      const started = performance.now();
      const response = await svc.call(method, path, body);
      const ms = performance.now() - started;
      assert.equal(response.headers.get("connection"), "close");
      await expectError(
        response,
        408,
        /^the request body did not arrive within 50 ms$/,
      );
      assert.ok(ms >= 45 && ms < 1_000, `${ms} ms`);
      assert.ok(cancelled, "the body was cancelled");
    });
  }
  // A body that arrives in time is unaffected by the deadline's timer.
  assert.equal((await svc.call("PUT", key("g", "k"), "on time")).status, 204);
  assert.equal(svc.store.get("acme:g", "k"), "on time");
  assert.equal(svc.events.length, 1);
});

Deno.test("live config: GET /t/:tenant/writes counts the tenant's committed writes, outside its quota and its events", async (t) => {
  using svc = service({ maxKeys: 2 });
  const writes = async (tenant: string) => {
    const response = await svc.call("GET", `/t/${tenant}/writes`);
    assert.equal(response.status, 200);
    return (await response.json()).writes;
  };
  await t.step("a tenant that never wrote has 0", async () => {
    assert.equal(await writes("acme"), 0);
  });
  await t.step("each PUT and DELETE that commits counts one", async () => {
    const stream = await svc.watch("/t/acme/events");
    assert.equal((await svc.call("PUT", key("g", "a"), "1")).status, 204);
    assert.equal((await svc.call("PUT", key("g", "a"), "2")).status, 204);
    assert.equal((await svc.call("DELETE", key("g", "a"))).status, 204);
    assert.equal(await writes("acme"), 3);
    // The tenant's stream of every group has its three events, no counter's.
    assert.deepEqual(
      (await stream.take(3)).map((block) => block.split("\n")[0]),
      ["event: set", "event: set", "event: delete"],
    );
    await stream.cancel();
  });
  await t.step("a refused write counts nothing", async () => {
    await expectError(svc.call("DELETE", key("g", "a")), 404, /no live key/);
    await expectError(
      svc.call("PUT", `${key("g", "a")}?ttl=0`, "x"),
      400,
      /ttl/,
    );
    assert.equal((await svc.call("PUT", key("g", "a"), "1")).status, 204);
    assert.equal((await svc.call("PUT", key("g", "b"), "1")).status, 204);
    // The counter is not one of the tenant's keys: the quota of 2 holds them.
    await expectError(svc.call("PUT", key("g", "c"), "1"), 429, /maxKeys/);
    assert.equal(await writes("acme"), 5);
  });
  await t.step("concurrent writes are each counted once", async () => {
    const statuses = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          svc.call("PUT", `/t/other/g/g/k/k${i % 2}`, `${i}`).then((r) =>
            r.status
          ),
      ),
    );
    assert.deepEqual(new Set(statuses), new Set([204]));
    assert.equal(await writes("other"), 40);
    assert.equal(await writes("acme"), 5);
  });
  await t.step(
    "a bad tenant is a 400, HEAD works, other methods 405",
    async () => {
      await expectError(
        svc.call("GET", "/t/not_a_tenant/writes"),
        400,
        /namespace/,
      );
      const head = await svc.call("HEAD", "/t/acme/writes");
      assert.equal(head.status, 200);
      assert.equal(
        head.headers.get("content-length"),
        String('{"writes":5}'.length),
      );
      await expectError(svc.call("POST", "/t/acme/writes"), 405, /not allowed/);
    },
  );
});

Deno.test("live config: unknown routes answer 404 and wrong methods 405 with Allow", async (t) => {
  using svc = service();
  await t.step("404", async () => {
    for (
      const path of [
        "/nope",
        "/t",
        "/t/acme",
        "/t/acme/",
        "/t/acme/g",
        "/t/acme/g/g/",
        "/t/acme/g/g/k",
        "/t/acme/g/g/keys/k",
        "/t/acme/g/g/k/k/extra",
        "/t/acme/events/more",
        "/x/acme/g/g",
        "/index.html",
      ]
    ) {
      await expectError(
        svc.call("GET", path),
        404,
        new RegExp(`^no route for GET `),
      );
    }
  });
  await t.step("405", async () => {
    const cases: [string, string, string][] = [
      ["POST", "/", "GET, HEAD"],
      ["PUT", "/t/acme/g/g", "GET, HEAD"],
      ["DELETE", "/t/acme/g/g", "GET, HEAD"],
      ["PATCH", key("g", "k"), "GET, HEAD, PUT, DELETE"],
      ["POST", key("g", "k"), "GET, HEAD, PUT, DELETE"],
      ["GET", "/t/acme/g/g/render", "POST"],
      ["HEAD", "/t/acme/g/g/render", "POST"],
      ["POST", "/t/acme/events", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const response = await svc.call(
        method,
        path,
        method === "GET" || method === "HEAD" ? undefined : "x",
      );
      assert.equal(response.status, 405, `${method} ${path}`);
      assert.equal(response.headers.get("allow"), allow);
      if (method === "HEAD") {
        assert.equal(response.body, null);
        continue;
      }
      assert.match(
        (await response.json()).error,
        /^method \w+ is not allowed here/,
      );
    }
  });
  assert.deepEqual(svc.store.groups(), []);
});

Deno.test("live config: GET / serves the live page", async () => {
  using svc = service();
  const response = await svc.call("GET", "/");
  assert.equal(response.status, 200);
  assert.equal(
    response.headers.get("content-type"),
    "text/html; charset=utf-8",
  );
  const html = await response.text();
  assert.equal(html, PAGE_HTML);
  assert.match(html, /new EventSource\(/);
  // The inline script at least parses.
  const script = html.match(/<script type="module">([\s\S]*)<\/script>/)?.[1];
  assert.ok(script);
  new Function(script);
  // The page encodes names as the server decodes them.
  const pageSegment = new Function(
    `return ${script.match(/const segment = ([\s\S]*?);\n/)?.[1]}`,
  )() as (name: string) => string;
  for (const name of ["", ".", "..", "~..", "a/b", "😀", "~"]) {
    assert.equal(pageSegment(name), encodeSegment(name), name);
  }
  // The page applies each event type to its rows: an expired key's row goes
  // when its expire event arrives, as a deleted key's does.
  const types = script.match(/for \(const type of (\[[^\]]*\])\)/)?.[1];
  assert.deepEqual(JSON.parse(types!), [
    "set",
    "delete",
    "delete_group",
    "expire",
  ]);
  const rows = new Map([["a", "1"], ["b", "2"], ["c", "3"]]);
  const applyTo = new Function(
    "entries",
    "changed",
    `${script.match(/function apply\(event\) \{[\s\S]*?\n\}/)?.[0]}
    return apply;`,
  )(rows, new Set()) as (event: Partial<StoreEvent>) => void;
  applyTo({ type: "expire", key: "b" });
  assert.deepEqual([...rows.keys()], ["a", "c"]);
  applyTo({ type: "set", key: "d", value: "4" });
  applyTo({ type: "delete", key: "a" });
  assert.deepEqual([...rows], [["c", "3"], ["d", "4"]]);
});

Deno.test("live config: createApp checks its options", () => {
  using store = new Store();
  assert.throws(
    () => createApp({ store: {} as Store }),
    {
      name: "TypeError",
      message: "createApp: options.store must be a Store or an AsyncStore",
    },
  );
  for (
    const options of [
      { maxKeys: -1 },
      { maxGroups: 1.5 },
      { heartbeatMs: 0 },
      { heartbeatMs: 2 ** 31 },
      { maxBodyBytes: -1 },
      { bodyTimeoutMs: 0 },
      { bodyTimeoutMs: 2 ** 31 },
    ]
  ) {
    assert.throws(() => createApp({ store, ...options }), RangeError);
  }
  createApp({ store, maxKeys: 0, maxGroups: 0, heartbeatMs: 1 }).close();
});

Deno.test("live config: a file-backed service's writes survive closing and reopening", async () => {
  using dir = tempDir();
  const path = dir.file("live.db");
  {
    using store = new Store(path);
    const app = createApp({ store });
    const put = (k: string, v: string) =>
      app.handler(
        new Request(`http://localhost/t/acme/g/config/k/${k}`, {
          method: "PUT",
          body: v,
        }),
      );
    assert.equal((await put("theme", "dark")).status, 204);
    assert.equal((await put(encodeSegment(".."), "dots")).status, 204);
    app.close();
  }
  using store = new Store(path);
  const app = createApp({ store });
  const response = await app.handler(
    new Request("http://localhost/t/acme/g/config"),
  );
  assert.deepEqual(await response.json(), { "..": "dots", theme: "dark" });
  app.close();
});

Deno.test("live config: main.ts flags", () => {
  assert.deepEqual(parseFlags([]), {
    port: 8000,
    hostname: "127.0.0.1",
    db: "./data/live-config.db",
    maxKeys: 0,
    maxGroups: 0,
    heartbeatMs: 15_000,
    changeFeed: false,
    etcd: undefined,
    etcdPrefix: "live-config/",
    kv: undefined,
    maxBodyBytes: 1024 * 1024,
    bodyTimeoutMs: 30_000,
    shutdownMs: 5_000,
    help: false,
  });
  assert.deepEqual(
    parseFlags([
      "--port=0",
      "--hostname",
      "0.0.0.0",
      "--db",
      "/tmp/x.db",
      "--max-keys",
      "10",
      "--max-groups=2",
      "--heartbeat-ms",
      "50",
      "--change-feed",
      "--etcd",
      "http://127.0.0.1:2379,http://127.0.0.1:22379",
      "--etcd-prefix=svc/",
      "--max-body-bytes=10",
      "--body-timeout-ms=200",
      "--shutdown-ms=0",
      "-h",
    ]),
    {
      port: 0,
      hostname: "0.0.0.0",
      db: "/tmp/x.db",
      maxKeys: 10,
      maxGroups: 2,
      heartbeatMs: 50,
      changeFeed: true,
      etcd: ["http://127.0.0.1:2379", "http://127.0.0.1:22379"],
      etcdPrefix: "svc/",
      kv: undefined,
      maxBodyBytes: 10,
      bodyTimeoutMs: 200,
      shutdownMs: 0,
      help: true,
    },
  );
  assert.equal(parseFlags(["--kv", "./d/x.kv"]).kv, "./d/x.kv");
  assert.throws(() => parseFlags(["--kv="]), RangeError);
  assert.throws(
    () => parseFlags(["--kv", "x.kv", "--etcd", "http://127.0.0.1:2379"]),
    /--kv and --etcd cannot be used together/,
  );
  // PORT from the environment is the default; --port wins over it.
  assert.equal(parseFlags([], { PORT: "8123" }).port, 8123);
  assert.equal(parseFlags(["--port", "9"], { PORT: "8123" }).port, 9);
  assert.throws(
    () => parseFlags([], { PORT: "http" }),
    /--port must be an integer/,
  );
  assert.throws(() => parseFlags(["--body-timeout-ms=0"]), RangeError);
  // Deno.serve has no header or idle timeout to set: a proxy's job.
  assert.throws(() => parseFlags(["--header-timeout-ms=10"]), TypeError);
  assert.throws(() => parseFlags(["--shutdown-ms=-1"]), RangeError);
  assert.throws(() => parseFlags(["--prot", "1"]), TypeError);
  assert.throws(() => parseFlags(["extra"]), TypeError);
  assert.throws(() => parseFlags(["--port"]), TypeError);
  assert.throws(
    () => parseFlags(["--port", "65536"]),
    /--port must be an integer from 0 to 65535/,
  );
  assert.throws(() => parseFlags(["--max-keys=-1"]), RangeError);
  assert.throws(() => parseFlags(["--max-groups", "1.5"]), RangeError);
  assert.throws(() => parseFlags(["--heartbeat-ms", "0"]), RangeError);
  assert.throws(() => parseFlags(["--db="]), RangeError);
  assert.throws(() => parseFlags(["--etcd="]), RangeError);
});

Deno.test("live config: HEAD answers as GET without a body, with GET's length", async () => {
  using svc = service();
  await svc.call("PUT", key("g", "k"), "dark ✓");
  const paths = ["/", "/t/acme/g/g", key("g", "k"), key("g", "missing")];
  for (const path of paths) {
    const get = await svc.call("GET", path);
    const body = new Uint8Array(await get.arrayBuffer());
    const head = await svc.call("HEAD", path);
    assert.equal(head.status, get.status, path);
    assert.equal(head.body, null, path);
    assert.equal(head.headers.get("content-length"), String(body.length));
    for (const name of ["content-type", "cache-control"]) {
      assert.equal(head.headers.get(name), get.headers.get(name), path);
    }
  }
  // HEAD of an event stream opens no stream.
  const head = await svc.call("HEAD", "/t/acme/events");
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  assert.equal(svc.app.streams, 0);
  assert.deepEqual(svc.events.map((e) => e.type), ["set"]);
});

Deno.test("live config: a path segment not in canonical form answers 400", async (t) => {
  using svc = service();
  new ScopedStore(svc.store, "bob").set("config", "pw", "secret");
  const cases: [string, RegExp][] = [
    [
      "/t/%62ob/g/config",
      /^tenant path segment "%62ob" is not in canonical form; use "bob"$/,
    ],
    [
      "/t/bob/g/%63onfig/k/pw",
      /^group path segment "%63onfig" .* use "config"$/,
    ],
    ["/t/bob/g/config/k/%70w", /^key path segment "%70w" .* use "pw"$/],
    ["/t/bob/g/a%2fb", /^group path segment "a%2fb" .* use "a%2Fb"$/],
    ["/t/bob/g/%7E..", /^group path segment "%7E\.\." .* use "~\.\."$/],
    ["/t/bob/g/config/k/%2A", /^key path segment "%2A" .* use "\*"$/],
  ];
  for (const [path, message] of cases) {
    await t.step(path, async () => {
      await expectError(svc.call("GET", path), 400, message);
      if (path.includes("/k/")) {
        await expectError(svc.call("PUT", path, "x"), 400, /canonical/);
        await expectError(svc.call("DELETE", path), 400, /canonical/);
      }
    });
  }
  // Deno.serve hands the handler the raw target: dot segments and "\\" in
  // it would name another tenant after URL parsing.
  const raw = [
    "http://localhost/t/alice/%2e%2e/bob/g/config",
    "http://localhost/t/alice\\..\\bob/g/config",
    "http://localhost/t/alice/.%2e/bob/g/config",
    "http://localhost/t/alice/g/%2e%2e/%2e%2e/bob/g/config/k/pw",
    "http://localhost/t/alice/../bob/g/config",
    "http://localhost/t/bob/g/config/k/pw#x",
  ];
  for (const url of raw) {
    await t.step(url, async () => {
      const request = new Request(url);
      // A Request built by hand is normalised; give the handler the raw url,
      // as Deno.serve does.
      Object.defineProperty(request, "url", { value: url });
      await expectError(svc.app.handler(request), 400, /not in canonical form/);
    });
  }
  assert.equal(svc.store.count("bob:config"), 1);
  assert.equal((await svc.call("GET", "/t/bob/g/config/k/pw")).status, 200);
});

Deno.test("live config: a file store deleted or replaced under the app refuses writes with 503", async (t) => {
  for (const damage of ["deleted", "replaced"] as const) {
    await t.step(damage, async () => {
      using dir = tempDir();
      const path = dir.file("live.db");
      using store = new Store(path);
      const app = createApp({ store });
      const call = (method: string, body?: string) =>
        app.handler(
          new Request("http://localhost/t/acme/g/g/k/k", {
            method,
            body: body ?? null,
          }),
        );
      assert.equal((await call("PUT", "before")).status, 204);
      if (damage === "deleted") Deno.removeSync(path);
      else {
        Deno.renameSync(path, `${path}.old`);
        Deno.writeFileSync(path, new Uint8Array());
      }
      const logged: unknown[] = [];
      const original = console.error;
      console.error = (...args: unknown[]) => logged.push(args.join(" "));
      try {
        for (const method of ["PUT", "DELETE", "PUT"]) {
          await expectError(
            call(method, method === "PUT" ? "after" : undefined),
            503,
            new RegExp(
              `^the database file ${
                damage === "deleted" ? "was deleted" : "was replaced"
              }`,
            ),
          );
        }
      } finally {
        console.error = original;
      }
      assert.equal(logged.length, 1);
      assert.match(
        String(logged[0]),
        new RegExp(
          `live\\.db ${
            damage === "deleted" ? "was deleted" : "was replaced"
          }.*503`,
        ),
      );
      // Reads still answer from the open store; nothing was written.
      const get = await call("GET");
      assert.equal(await get.text(), "before");
      app.close();
    });
  }
});

Deno.test("live config: a body trickled in many small chunks is read whole, and refused past the limit", async () => {
  using svc = service({ maxBodyBytes: 3000 });
  // Each chunk a 1-byte view of its own 64 KiB buffer, as a trickled body
  // arrives through Deno.serve.
  const chunks = (n: number) =>
    ReadableStream.from(
      Array.from({ length: n }, (_, i) => {
        const big = new Uint8Array(64 * 1024);
        big[i % 100] = 0x61 + (i % 26);
        return big.subarray(i % 100, i % 100 + 1);
      }),
    );
  assert.equal(
    (await svc.call("PUT", key("g", "k"), chunks(3000))).status,
    204,
  );
  const value = svc.store.get("acme:g", "k")!;
  assert.equal(value.length, 3000);
  assert.equal(value.slice(0, 27), "abcdefghijklmnopqrstuvwxyza");
  await expectError(
    svc.call("PUT", key("g", "k"), chunks(3001)),
    413,
    /larger than 3000 bytes/,
  );
  // A body that fails mid-way (the client left) is a quiet 400.
  const broken = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([0x61]));
      controller.error(new Error("connection reset"));
    },
  });
  await expectError(
    svc.call("PUT", key("g", "k"), broken),
    400,
    /^the request body could not be read$/,
  );
  assert.equal(svc.store.get("acme:g", "k"), value);
});
