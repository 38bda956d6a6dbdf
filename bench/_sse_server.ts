/**
 * The server side of bench/sse.ts, run as a child process. Two commands:
 *
 * - `serve --db FILE --stream helper|old [--retention ROWS]`: `Deno.serve`
 *   on 127.0.0.1 (a free port; prints `listening on http://…/`) over one
 *   file store with the change feed, scoped to tenant `bench` as the
 *   live-config demo is. The same routes whichever stream is measured:
 *   - `GET /events`: group `fan`'s events, through `eventStreamResponse`
 *     (`helper`) or the demo's previous `EventStream` (`old`,
 *     bench/_old_event_stream.ts); 15 s heartbeats for both.
 *   - `PUT /k/:key`: stores the body in group `fan`.
 *   - `POST /write?n=&from=&size=`: `n` writes of key `k` in group `fan`,
 *     values `"<from + i> <size x's>"`, made by this process, yielding to
 *     the event loop every 50 writes; answers `{"ms": …}`.
 *   - `GET /stats`: `Deno.memoryUsage()` now and its peak since the last
 *     `POST /stats/reset` (sampled every 10 ms and at each yield of
 *     `/write`), and the watchers the streams opened: how many, their
 *     capacities, and how many events they dropped in all.
 *   SIGTERM ends every stream and the server, then closes the store.
 * - `write --db FILE --n N --from F --size S`: the same writes as
 *   `POST /write`, made by this other process (the server hears them
 *   through the change feed), then exits.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  AsyncScopedStore,
  ScopedStore,
  Store,
  toAsync,
  type Watcher,
  type WatchOptions,
} from "@core/store";
import { eventStreamResponse } from "@core/store/sse";
import { events as oldEvents, type EventStream } from "./_old_event_stream.ts";

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    db: { type: "string" },
    stream: { type: "string", default: "helper" },
    retention: { type: "string", default: "50000" },
    n: { type: "string", default: "0" },
    from: { type: "string", default: "0" },
    size: { type: "string", default: "0" },
  },
});
if (values.db === undefined) throw new TypeError("--db is required");
const TENANT = "bench";
const GROUP = "fan";
const HEARTBEAT_MS = 15_000;

function open(path: string): Store {
  return new Store(path, {
    changeFeed: true,
    purgeIntervalMs: 0,
    changeRetention: { maxRows: Number(values.retention) },
  });
}

const value = (i: number, pad: string) => `${i} ${pad}`;

if (positionals[0] === "write") {
  using store = open(values.db);
  const scoped = new ScopedStore(store, TENANT);
  const pad = "x".repeat(Number(values.size));
  const from = Number(values.from);
  for (let i = 0; i < Number(values.n); i++) {
    scoped.set(GROUP, "k", value(from + i, pad));
  }
  Deno.exit(0);
}

const store = open(values.db);
const scoped = new AsyncScopedStore(toAsync(store), TENANT);
const stop = new AbortController();

// Every watcher a stream opens, whichever stream, to show what it holds.
const watchers: Watcher[] = [];
const watch = scoped.watch.bind(scoped);
scoped.watch = (group: string, key: string, options?: WatchOptions) => {
  const watcher = watch(group, key, options);
  watchers.push(watcher);
  return watcher;
};

const memory = { peakRss: 0, peakHeap: 0 };
function sample(): Deno.MemoryUsage {
  const now = Deno.memoryUsage();
  memory.peakRss = Math.max(memory.peakRss, now.rss);
  memory.peakHeap = Math.max(memory.peakHeap, now.heapUsed);
  return now;
}
const sampler = setInterval(sample, 10);

function stats() {
  const now = sample();
  return {
    rss: now.rss,
    heapUsed: now.heapUsed,
    peakRss: memory.peakRss,
    peakHeap: memory.peakHeap,
    watchers: watchers.length,
    capacities: [...new Set(watchers.map((w) => w.capacity))],
    dropped: watchers.reduce((sum, w) => sum + w.dropped, 0),
  };
}

async function write(url: URL): Promise<Response> {
  const n = Number(url.searchParams.get("n"));
  const from = Number(url.searchParams.get("from"));
  const pad = "x".repeat(Number(url.searchParams.get("size")));
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    await scoped.set(GROUP, "k", value(from + i, pad));
    if (i % 50 === 49) {
      sample();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
  return Response.json({ ms: performance.now() - started });
}

const oldStreams = new Set<EventStream>();
const eventsUrl = new URL(`http://x/events?group=${GROUP}`);

async function route(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (request.method === "GET" && url.pathname === "/events") {
    if (values.stream === "old") {
      return oldEvents(scoped, eventsUrl, HEARTBEAT_MS, oldStreams);
    }
    return await eventStreamResponse(scoped, GROUP, "*", {
      request,
      signal: stop.signal,
      heartbeatMs: HEARTBEAT_MS,
    });
  }
  if (request.method === "PUT" && url.pathname.startsWith("/k/")) {
    await scoped.set(GROUP, url.pathname.slice(3), await request.text());
    return new Response(null, { status: 204 });
  }
  if (request.method === "POST" && url.pathname === "/write") return write(url);
  if (url.pathname === "/stats") {
    if (request.method === "POST") {
      const now = Deno.memoryUsage();
      memory.peakRss = now.rss;
      memory.peakHeap = now.heapUsed;
    }
    return Response.json(stats());
  }
  return new Response("no such route", { status: 404 });
}

const server = Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  signal: stop.signal,
  onListen({ hostname, port }) {
    console.log(`sse bench server listening on http://${hostname}:${port}/`);
  },
}, route);

Deno.addSignalListener("SIGTERM", () => {
  stop.abort();
  for (const stream of [...oldStreams]) stream.end();
  clearInterval(sampler);
  server.finished.finally(() => {
    store.close();
    Deno.exit(0);
  });
});
