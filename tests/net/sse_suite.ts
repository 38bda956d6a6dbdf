/**
 * The SSE helper over real sockets: `Deno.serve` on 127.0.0.1 and `fetch`
 * clients; a writer in another process. Needs network and subprocess
 * permissions (in `deno task test:net`).
 */
import assert from "node:assert/strict";
import { Store, type Watcher, type WatchOptions } from "@core/store";
import { eventStreamResponse } from "@core/store/sse";
import { frameEvent, SseReader, tempDir } from "../_helpers.ts";

function serve(
  store: Store,
  watchers: Watcher[] = [],
): Deno.HttpServer<Deno.NetAddr> & { url: string; stop: AbortController } {
  const stop = new AbortController();
  const source = {
    watch(group: string, key: string, options?: WatchOptions) {
      const watcher = store.watch(group, key, options);
      watchers.push(watcher);
      return watcher;
    },
    getAll: (group: string) => store.getAll(group),
    snapshot: (group: string) => store.snapshot(group),
  };
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: stop.signal, onListen() {} },
    (request) =>
      eventStreamResponse(source, "g", "*", {
        request,
        signal: stop.signal,
      }),
  );
  return Object.assign(server, {
    url: `http://127.0.0.1:${server.addr.port}/events`,
    stop,
  });
}

Deno.test("eventStreamResponse() over HTTP resumes with changes another process made while the client was away", async () => {
  using dir = tempDir();
  const path = dir.file("p.db");
  using store = new Store(path, { changeFeed: true });
  const server = serve(store);
  try {
    const first = await fetch(server.url);
    const sse = new SseReader(first.body!);
    store.set("g", "k", "mine");
    const [seen] = await sse.take(1);
    await sse.cancel();
    const code = `
      import { Store } from "@core/store";
      using s = new Store(${JSON.stringify(path)}, { changeFeed: true });
      for (let i = 0; i < 50; i++) s.set("g", "k" + i, "other " + i);`;
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      cwd: new URL("../../", import.meta.url).pathname,
      stdout: "null",
      stderr: "inherit",
    }).output();
    assert.equal(child.code, 0);
    const again = await fetch(server.url, {
      headers: { "last-event-id": seen!.id! },
    });
    const resumed = new SseReader(again.body!);
    const frames = await resumed.take(50);
    assert.deepEqual(
      frames.map((f) => [frameEvent(f).value, frameEvent(f).origin]),
      Array.from({ length: 50 }, (_, i) => [`other ${i}`, "remote"]),
    );
    await resumed.cancel();
  } finally {
    server.stop.abort();
    await server.finished;
  }
});

Deno.test("eventStreamResponse() over HTTP: a client that stops reading gets all 2,000 writes, in order, when it reads again", async () => {
  using dir = tempDir();
  using store = new Store(dir.file("s.db"), { changeFeed: true });
  const watchers: Watcher[] = [];
  const server = serve(store, watchers);
  try {
    const response = await fetch(server.url);
    const sse = new SseReader(response.body!);
    store.set("g", "k", "first");
    await sse.take(1);
    // Large values fill the socket buffers, so the server really stalls.
    const big = "x".repeat(2_000);
    for (let i = 0; i < 2_000; i++) {
      store.set("g", "k", `${i} ${big}`);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    assert.ok(watchers.at(-1)!.dropped > 0, "the server stopped buffering");
    const frames = await sse.take(2_000, 30_000);
    assert.ok(frames.every((f) => f.event === "set"));
    assert.deepEqual(
      frames.map((f) => frameEvent(f).value!.split(" ")[0]),
      Array.from({ length: 2_000 }, (_, i) => String(i)),
    );
    await sse.cancel();
  } finally {
    server.stop.abort();
    await server.finished;
  }
});

Deno.test("eventStreamResponse() over HTTP ends its streams on server shutdown, and 500 aborted streams leave writes as fast", async () => {
  using store = new Store();
  const watchers: Watcher[] = [];
  const server = serve(store, watchers);
  const writes = (n: number) => {
    const start = performance.now();
    for (let i = 0; i < n; i++) store.set("g", "k", String(i));
    return performance.now() - start;
  };
  try {
    writes(5_000); // warm up
    const before = Math.min(writes(20_000), writes(20_000));
    const clients = await Promise.all(
      Array.from({ length: 500 }, async () => {
        const abort = new AbortController();
        const response = await fetch(server.url, { signal: abort.signal });
        const sse = new SseReader(response.body!);
        return { abort, sse };
      }),
    );
    store.set("g", "k", "hello");
    for (const { sse } of clients) await sse.take(1);
    for (const { abort } of clients) abort.abort();
    // The server notices a client gone when it writes to its socket, and
    // then releases its watcher: writes are soon as fast as before.
    let after = Infinity;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
      store.set("g", "probe", "x");
      await new Promise((r) => setTimeout(r, 100));
      after = Math.min(writes(20_000), writes(20_000));
      if (after < before * 2 + 5) break;
    }
    assert.ok(
      after < before * 2 + 5,
      `20,000 writes: ${before.toFixed(1)} ms before, ${
        after.toFixed(1)
      } ms after`,
    );
    console.log(
      `20,000 writes: ${before.toFixed(1)} ms with no stream, ${
        after.toFixed(1)
      } ms after 500 streams were opened and aborted`,
    );

    const open = await fetch(server.url);
    const sse = new SseReader(open.body!);
    store.set("g", "k", "last");
    await sse.take(1);
    const started = performance.now();
    server.stop.abort();
    await server.finished;
    assert.deepEqual(await sse.rest(5_000), []);
    assert.ok(sse.done);
    assert.ok(performance.now() - started < 2_000, "shutdown was prompt");
  } finally {
    server.stop.abort();
    await server.finished;
  }
});
