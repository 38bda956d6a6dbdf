/**
 * Server-Sent Events measured over loopback: `eventStreamResponse`
 * (`@core/store/sse`) in a server child process (bench/_sse_server.ts,
 * `Deno.serve` on 127.0.0.1, one file store with the change feed, scoped as
 * the live-config demo is), read by `fetch` clients in this process that
 * parse frames as `EventSource` does and resume with `Last-Event-ID`.
 *
 * 1. Fan-out: `--streams` (1,000) streams open, then `--events` (50) PUTs
 *    one after another, each waiting until every stream has its event. Two
 *    delays: from sending the PUT to each stream's receipt (p50/p99 over
 *    streams x events), and to the last stream's receipt (p50/p99 over the
 *    events). Side by side: the same server with the demo's previous
 *    hand-written stream (bench/_old_event_stream.ts); the ratio is the
 *    helper's delay over the old one's (`1.00x`: no worse). Each client
 *    must receive every event exactly once, in order.
 * 2. A stalled client: it connects and does not read the body while
 *    `--stall` (20,000) writes of `--size` (2,000) byte values are made
 *    (by the server process; and, a second case, half by the server and
 *    half by another process), then it reads: the time until it has all of
 *    them, checked in order, none lost, none repeated, no resync. The
 *    server's memory (`Deno.memoryUsage()` sampled every 10 ms in the
 *    server): RSS and heap before the client connects, the peak while it
 *    stalls, the peak while it catches up; and the same with `--small`
 *    (2,000) writes, to show it does not grow with the writes.
 * 3. Resume after a restart: `--clients` (1,000) streams, each with the
 *    id of one event; the server is SIGKILLed, another process writes
 *    `--missed` (200) changes to the file, the server starts again on it,
 *    and all clients reconnect at once with `Last-Event-ID`. Per client,
 *    the time from the reconnect until it has all the missed changes
 *    (checked exactly: the next frame after them is a new write), p50/p99,
 *    and until the last client has them. Side by side: the same clients
 *    opening fresh streams (the time to the first bytes), the cost of the
 *    connections alone.
 *
 * `--rounds N` (3) repeats everything, alternating which fan-out stream
 * goes first, and reports each figure's median. The load (`uptime`) is
 * printed before and after. Prints one JSON object, or markdown tables with
 * `--markdown`.
 *
 * Run: `deno task bench:sse` (`deno run --allow-read --allow-write
 * --allow-net=127.0.0.1 --allow-run bench/sse.ts`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  load,
  median,
  quantile,
  type ServerChild,
  SseClient,
  type SseFrame,
  startServer,
  stopServer,
} from "./_shared.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    streams: { type: "string", default: "1000" },
    events: { type: "string", default: "50" },
    stall: { type: "string", default: "20000" },
    small: { type: "string", default: "2000" },
    size: { type: "string", default: "2000" },
    clients: { type: "string", default: "1000" },
    missed: { type: "string", default: "200" },
    fill: { type: "string", default: "8" },
    "resume-size": { type: "string", default: "100" },
    markdown: { type: "boolean", default: false },
  },
});
const ROUNDS = Number(flags.rounds);
const STREAMS = Number(flags.streams);
const EVENTS = Number(flags.events);
const STALL = Number(flags.stall);
const SMALL = Number(flags.small);
const SIZE = Number(flags.size);
const CLIENTS = Number(flags.clients);
const MISSED = Number(flags.missed);
const FILL = Number(flags.fill);
const RESUME_SIZE = Number(flags["resume-size"]);
/** The longest any one wait may take before the run fails. */
const WAIT_MS = 60_000;

const SERVER = new URL("./_sse_server.ts", import.meta.url);
const SERVER_FLAGS = ["--allow-read", "--allow-write", "--allow-net=127.0.0.1"];
const WRITER_FLAGS = ["--allow-read", "--allow-write"];
const dir = Deno.makeTempDirSync({ prefix: "core_store_sse_bench_" });
let files = 0;

function serve(db: string, stream: "helper" | "old"): Promise<ServerChild> {
  return startServer(SERVER, SERVER_FLAGS, [
    "serve",
    "--db",
    db,
    "--stream",
    stream,
  ]);
}

/** Another process's writes to `db`, as the server's `POST /write`. */
async function writeElsewhere(
  db: string,
  n: number,
  from: number,
  size = SIZE,
) {
  const args = ["run", ...WRITER_FLAGS, SERVER.pathname, "write"];
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: [
      ...args,
      "--db",
      db,
      "--n",
      `${n}`,
      "--from",
      `${from}`,
      "--size",
      `${size}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`the writer exited with ${code}`);
}

async function call(url: string, init?: RequestInit): Promise<unknown> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.status === 204 ? undefined : await response.json();
}

/** Resolves when `done()` holds, checked at each call of the returned poke. */
function until(
  what: string,
): { wait: Promise<void>; poke: (ok: boolean) => void } {
  let poke!: (ok: boolean) => void;
  const wait = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out: ${what}`)),
      WAIT_MS,
    );
    poke = (ok) => {
      if (!ok) return;
      clearTimeout(timer);
      resolve();
    };
  });
  return { wait, poke };
}

const ms = (n: number) => Number(n.toFixed(1));
const mib = (bytes: number) => Number((bytes / 2 ** 20).toFixed(1));

// ------------------------------------------------------------ 1. fan-out

/** One server with STREAMS clients, timing one PUT at a time. */
async function fan(stream: "helper" | "old") {
  const db = `${dir}/fan${files++}.db`;
  const { base, child } = await serve(db, stream);
  const clients: SseClient[] = [];
  const seen = Array.from({ length: STREAMS }, () => [] as string[]);
  const keys: string[] = [];
  let current = { key: "", sent: 0, left: 0 };
  let heard = { wait: Promise.resolve(), poke: (_: boolean) => {} };
  const each: number[] = [];
  const all: number[] = [];
  try {
    for (let s = 0; s < STREAMS; s++) {
      const response = await fetch(`${base}/events`);
      clients.push(
        new SseClient(response, (frame: SseFrame) => {
          if (frame.event !== "set") return;
          const key = JSON.parse(frame.data).key as string;
          seen[s]!.push(key);
          if (key !== current.key) return;
          if (current.sent > 0) each.push(performance.now() - current.sent);
          heard.poke(--current.left === 0);
        }),
      );
    }
    await Promise.all(clients.map((c) => c.opened));
  } catch (error) {
    await stopServer(child);
    throw error;
  }
  return {
    /** PUTs `key` and waits until every stream has it; `timed` records it. */
    async put(key: string, timed: boolean): Promise<void> {
      keys.push(key);
      heard = until(`every ${stream} stream hears ${key}`);
      const sent = performance.now();
      current = { key, sent: timed ? sent : 0, left: STREAMS };
      await call(`${base}/k/${key}`, { method: "PUT", body: "v" });
      await heard.wait;
      if (timed) all.push(performance.now() - sent);
    },
    /** Checks every stream got every key once, in order; the figures. */
    result() {
      const wrong = seen.findIndex((got) => got.join() !== keys.join());
      if (wrong >= 0) {
        throw new Error(`${stream}: stream ${wrong} got ${seen[wrong]}`);
      }
      each.sort((a, b) => a - b);
      all.sort((a, b) => a - b);
      return {
        each: { p50: ms(quantile(each, 0.5)), p99: ms(quantile(each, 0.99)) },
        all: { p50: ms(quantile(all, 0.5)), p99: ms(quantile(all, 0.99)) },
      };
    },
    async close(): Promise<void> {
      await Promise.all(clients.map((c) => c.cancel()));
      await stopServer(child);
    },
  };
}

/**
 * Both servers up with STREAMS clients each; the PUTs alternate between
 * them (which one goes first alternates too), so that both see the same
 * load on a shared machine.
 */
async function fanOut() {
  const helper = await fan("helper");
  try {
    const old = await fan("old");
    try {
      for (let e = 0; e < EVENTS + 3; e++) {
        // The first three warm up.
        const pair = e % 2 === 0 ? [helper, old] : [old, helper];
        for (const server of pair) await server.put(`e${e}`, e >= 3);
      }
      return { helper: helper.result(), old: old.result() };
    } finally {
      await old.close();
    }
  } finally {
    await helper.close();
  }
}

// ------------------------------------------------------------ 2. a stalled client

interface Stats {
  rss: number;
  heapUsed: number;
  peakRss: number;
  peakHeap: number;
  watchers: number;
  capacities: number[];
  dropped: number;
}

/**
 * A client's frame handler that checks it receives exactly `n` `set`
 * events, the i-th value starting with `expected(i)`, with rising ids after
 * `lastId`, then one more whose value is `"after"` (a write made once all
 * clients had the `n`), and nothing else.
 */
function exactly(
  label: string,
  n: number,
  expected: (i: number) => string,
  lastId: number,
  events: { all: () => void; after: () => void },
) {
  const state = { count: 0, lastId, bad: undefined as string | undefined };
  const fail = (why: string) => {
    state.bad ??= `${label}: ${why}`;
    events.all();
    events.after();
  };
  const onFrame = (frame: SseFrame) => {
    const got = frame.event === "set"
      ? JSON.parse(frame.data).value
      : undefined;
    if (state.count++ >= n) {
      if (got !== "after" || state.count > n + 1) {
        fail(`an extra ${frame.event} frame`);
      } else events.after();
      return;
    }
    const id = Number(frame.id);
    if (frame.event !== "set") {
      return fail(`a ${frame.event} frame: ${frame.data}`);
    }
    if (!(id > state.lastId)) {
      return fail(`id ${frame.id} after ${state.lastId}`);
    }
    const want = expected(state.count - 1);
    if (!got.startsWith(want)) return fail(`${got.slice(0, 12)} for ${want}`);
    state.lastId = id;
    if (state.count === n) events.all();
  };
  return { state, onFrame };
}

/**
 * `writes` writes while one client is connected: stalled (its body unread
 * until they are done) or, the floor, reading all along. `elsewhere`: the
 * second half of the writes by another process.
 */
async function stall(
  writes: number,
  options: { reading?: boolean; elsewhere?: boolean } = {},
) {
  const db = `${dir}/stall${files++}.db`;
  const { base, child } = await serve(db, "helper");
  let response: Response | undefined;
  try {
    // Warm up the server's write and event paths, then take the baseline.
    const warm = await fetch(`${base}/events`);
    await call(`${base}/write?n=200&from=0&size=${SIZE}`, { method: "POST" });
    await warm.body!.cancel();
    const before = await call(`${base}/stats`, { method: "POST" }) as Stats;
    response = await fetch(`${base}/events`);
    const from = 1_000_000;
    const done = until(`the client reads ${writes}`);
    const next = until("the frame after the writes");
    let allAt = 0;
    // First FILL values of 1 MiB, to fill the socket buffers between the
    // server and the client: only then does the server stall.
    const expected = (i: number) => i < FILL ? `${i} ` : `${from + i - FILL} `;
    const { state, onFrame } = exactly(
      "stall",
      FILL + writes,
      expected,
      0,
      {
        all: () => {
          allAt = performance.now();
          done.poke(true);
        },
        after: () => next.poke(true),
      },
    );
    const read = () => new SseClient(response!, onFrame);
    const client = options.reading ? read() : undefined;
    const here = options.elsewhere ? writes / 2 : writes;
    await call(`${base}/write?n=${FILL}&from=0&size=${2 ** 20}`, {
      method: "POST",
    });
    await call(`${base}/write?n=${here}&from=${from}&size=${SIZE}`, {
      method: "POST",
    });
    if (options.elsewhere) await writeElsewhere(db, writes - here, from + here);
    // The other process's writes reach the server by the feed's polling.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const written = performance.now();
    const during = await call(`${base}/stats`, { method: "POST" }) as Stats;
    const reader = client ?? read();
    await done.wait;
    await call(`${base}/k/k`, { method: "PUT", body: "after" });
    await next.wait;
    const after = await call(`${base}/stats`) as Stats;
    await reader.cancel();
    response = undefined;
    if (state.bad !== undefined) throw new Error(state.bad);
    return {
      catchUpMs: ms(Math.max(0, allAt - written)),
      dropped: during.dropped - before.dropped,
      rssBaseMiB: mib(before.rss),
      rssStallMiB: mib(during.peakRss - before.rss),
      rssCatchUpMiB: mib(after.peakRss - before.rss),
      heapBaseMiB: mib(before.heapUsed),
      heapStallMiB: mib(during.peakHeap - before.heapUsed),
      heapCatchUpMiB: mib(after.peakHeap - before.heapUsed),
    };
  } finally {
    await response?.body?.cancel().catch(() => {});
    await stopServer(child);
  }
}

// ------------------------------------------------------------ 3. resume after a restart

async function resume() {
  const db = `${dir}/resume${files++}.db`;
  let server = await serve(db, "helper");
  const clients: SseClient[] = [];
  try {
    const ids: string[] = [];
    const first = until("every client hears the first write");
    let heard = 0;
    for (let c = 0; c < CLIENTS; c++) {
      const response = await fetch(`${server.base}/events`);
      clients.push(
        new SseClient(response, (frame) => {
          if (frame.event !== "set") return;
          ids[c] = frame.id!;
          first.poke(++heard === CLIENTS);
        }),
      );
    }
    await Promise.all(clients.map((c) => c.opened));
    await call(`${server.base}/k/first`, { method: "PUT", body: "v" });
    await first.wait;
    await stopServer(server.child, "SIGKILL");
    await Promise.all(clients.map((c) => c.closed));
    clients.length = 0;
    await writeElsewhere(db, MISSED, 0, RESUME_SIZE);
    server = await serve(db, "helper");

    const times: number[] = [];
    const states: { bad: string | undefined }[] = [];
    const caughtUp = until(`${CLIENTS} clients catch up`);
    const exact = until("every client hears the write after");
    let after = 0;
    const started = performance.now();
    await Promise.all(ids.map(async (id, c) => {
      const response = await fetch(`${server.base}/events`, {
        headers: { "last-event-id": id },
      });
      const { state, onFrame } = exactly(
        `client ${c}`,
        MISSED,
        (i) => `${i} `,
        Number(id),
        {
          all: () => {
            times.push(performance.now() - started);
            caughtUp.poke(times.length >= CLIENTS);
          },
          after: () => exact.poke(++after >= CLIENTS),
        },
      );
      states[c] = state;
      clients[c] = new SseClient(response, onFrame);
    }));
    await caughtUp.wait;
    const allMs = performance.now() - started;
    await call(`${server.base}/k/after`, { method: "PUT", body: "after" });
    await exact.wait;
    const bad = states.find((s) => s.bad !== undefined);
    if (bad !== undefined) throw new Error(bad.bad);
    await Promise.all(clients.map((c) => c.cancel()));
    clients.length = 0;

    // The floor: the same number of fresh streams, to their first bytes.
    const fresh: number[] = [];
    const freshStarted = performance.now();
    await Promise.all(ids.map(async (_, c) => {
      const client = new SseClient(
        await fetch(`${server.base}/events`),
        () => {},
      );
      clients[c] = client;
      await client.opened;
      fresh.push(performance.now() - freshStarted);
    }));
    const freshAll = performance.now() - freshStarted;
    times.sort((a, b) => a - b);
    fresh.sort((a, b) => a - b);
    return {
      clients: CLIENTS,
      missed: MISSED,
      p50: ms(quantile(times, 0.5)),
      p99: ms(quantile(times, 0.99)),
      all: ms(allMs),
      freshP50: ms(quantile(fresh, 0.5)),
      freshP99: ms(quantile(fresh, 0.99)),
      freshAll: ms(freshAll),
    };
  } finally {
    await Promise.all(clients.map((c) => c?.cancel()));
    await stopServer(server.child);
  }
}

// ------------------------------------------------------------ the run

type Fan = Awaited<ReturnType<typeof fanOut>>["helper"];
type Stall = Awaited<ReturnType<typeof stall>>;
type Resume = Awaited<ReturnType<typeof resume>>;

/** Each numeric field's median over the runs (nested one level). */
function medians<T extends object>(runs: T[]): T {
  const out: Record<string, unknown> = {};
  for (const [name, first] of Object.entries(runs[0]!)) {
    const pick = (run: T) => (run as Record<string, unknown>)[name];
    if (typeof first === "number") {
      out[name] = median(runs.map((r) => pick(r) as number));
    } else if (typeof first === "object" && first !== null) {
      out[name] = medians(runs.map((r) => pick(r) as object));
    } else out[name] = first;
  }
  return out as T;
}

const loadBefore = await load();
const runs = {
  helper: [] as Fan[],
  old: [] as Fan[],
  stall: [] as Stall[],
  stallReading: [] as Stall[],
  small: [] as Stall[],
  smallReading: [] as Stall[],
  mixed: [] as Stall[],
  resume: [] as Resume[],
};
try {
  for (let round = 0; round < ROUNDS; round++) {
    const fanned = await fanOut();
    runs.helper.push(fanned.helper);
    runs.old.push(fanned.old);
    runs.stall.push(await stall(STALL));
    runs.stallReading.push(await stall(STALL, { reading: true }));
    runs.small.push(await stall(SMALL));
    runs.smallReading.push(await stall(SMALL, { reading: true }));
    runs.mixed.push(await stall(STALL, { elsewhere: true }));
    runs.resume.push(await resume());
    console.error(`round ${round + 1} of ${ROUNDS} done`);
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}
const loadAfter = await load();
const helper = medians(runs.helper);
const old = medians(runs.old);
const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
const result = {
  rounds: ROUNDS,
  cores: navigator.hardwareConcurrency,
  load: { before: loadBefore, after: loadAfter },
  fanOut: {
    streams: STREAMS,
    events: EVENTS,
    helper,
    old,
    /** The helper's delay over the old stream's: 1.00 is "no worse". */
    ratio: {
      eachP50: ratio(helper.each.p50, old.each.p50),
      eachP99: ratio(helper.each.p99, old.each.p99),
      allP50: ratio(helper.all.p50, old.all.p50),
      allP99: ratio(helper.all.p99, old.all.p99),
    },
  },
  stall: {
    size: SIZE,
    server: medians(runs.stall),
    serverReading: medians(runs.stallReading),
    small: medians(runs.small),
    smallReading: medians(runs.smallReading),
    mixed: medians(runs.mixed),
  },
  resume: medians(runs.resume),
};

if (flags.markdown) {
  const f = result.fanOut;
  const s = result.stall;
  const r = result.resume;
  const x = (n: number) => `${n.toFixed(2)}x`;
  const stallRow = (name: string, v: Stall) =>
    `| ${name} | ${v.catchUpMs} | ${
      v.dropped.toLocaleString("en")
    } | ${v.rssBaseMiB} | +${v.rssStallMiB} | +${v.rssCatchUpMiB} | +${v.heapStallMiB} | +${v.heapCatchUpMiB} |`;
  console.log([
    `Load (\`uptime\`): ${loadBefore} before, ${loadAfter} after; ${result.cores} cores; median of ${ROUNDS} rounds.`,
    "",
    `| PUT to event, ${
      STREAMS.toLocaleString("en")
    } streams, ${EVENTS} PUTs (ms) | \`eventStreamResponse\` | old \`EventStream\` | ratio |`,
    "| --- | ---: | ---: | ---: |",
    `| to each stream, p50 | ${f.helper.each.p50} | ${f.old.each.p50} | ${
      x(f.ratio.eachP50)
    } |`,
    `| to each stream, p99 | ${f.helper.each.p99} | ${f.old.each.p99} | ${
      x(f.ratio.eachP99)
    } |`,
    `| to the last stream, p50 | ${f.helper.all.p50} | ${f.old.all.p50} | ${
      x(f.ratio.allP50)
    } |`,
    `| to the last stream, p99 | ${f.helper.all.p99} | ${f.old.all.p99} | ${
      x(f.ratio.allP99)
    } |`,
    "",
    `| stalled client, ${
      SIZE.toLocaleString("en")
    }-byte values | catch-up (ms) | dropped by the watcher | RSS before (MiB) | RSS peak, stalled | RSS peak, catching up | heap peak, stalled | heap peak, catching up |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    stallRow(`${STALL.toLocaleString("en")} writes by the server`, s.server),
    stallRow(`the same, a client reading all along`, s.serverReading),
    stallRow(`${SMALL.toLocaleString("en")} writes by the server`, s.small),
    stallRow(`the same, a client reading all along`, s.smallReading),
    stallRow(
      `${STALL.toLocaleString("en")} writes, half by another process`,
      s.mixed,
    ),
    "",
    `| resume after a restart, ${
      r.clients.toLocaleString("en")
    } clients, ${r.missed} missed changes (ms) | p50 | p99 | all |`,
    "| --- | ---: | ---: | ---: |",
    `| reconnect with \`Last-Event-ID\` until caught up | ${r.p50} | ${r.p99} | ${r.all} |`,
    `| fresh streams, to the first bytes | ${r.freshP50} | ${r.freshP99} | ${r.freshAll} |`,
  ].join("\n"));
} else {
  console.log(JSON.stringify(result));
}
