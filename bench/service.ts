/**
 * The live-config service measured over loopback: `examples/live_config/`
 * in a child process on a file store in a temporary folder, driven by
 * `fetch` from this process with bounded loops.
 *
 * - Requests per second for `GET …/k/:key` and `PUT …/k/:key`, with 1 and
 *   with 32 clients each sending one request at a time (kept-alive
 *   connections), for `--seconds` each (default 3).
 * - Sequential `GET`s on one kept-alive raw socket, without `fetch`: the
 *   median of eight 0.7 s rounds, steadier than the figures above on a
 *   shared machine.
 * - Fan-out: 1,000 event streams open on one group; 20 PUTs one after
 *   another, each waiting until all 1,000 streams have its event; the delay
 *   from sending the PUT to the event's arrival at each stream, p50/p99/max
 *   over the 20,000 deliveries.
 *
 * The same scenarios run against a bare `Deno.serve` handler that answers a
 * constant (bench/_service_bare.ts): the most this machine does per request
 * over loopback. The ratio is the app's cost over that floor: the bare
 * server's rate over the app's for throughput, the app's delay over the bare
 * server's for events (`1.00x`: the app costs nothing on top). The machine's
 * load (`uptime`) is printed before and after, since on a shared machine the
 * figures mean little without it; `--rounds N` alternates the two servers N
 * times and reports each figure's median. Prints one JSON object, or the markdown
 * table with `--markdown`.
 *
 * Run: `deno task bench:service` (`deno run --allow-read --allow-write
 * --allow-net --allow-run bench/service.ts`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  load,
  quantile,
  type ServerChild,
  SseClient,
  startServer,
  stopServer,
} from "./_shared.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "1" },
    streams: { type: "string", default: "1000" },
    events: { type: "string", default: "20" },
    markdown: { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const STREAMS = Number(values.streams);
const EVENTS = Number(values.events);

const MAIN = new URL("../examples/live_config/main.ts", import.meta.url);
const BARE = new URL("./_service_bare.ts", import.meta.url);

/** A server child process and its base URL. */
function start(script: URL, db: string): Promise<ServerChild> {
  return startServer(
    script,
    ["--allow-net", "--allow-read", "--allow-write"],
    ["--port", "0", "--db", db],
  );
}

/** Requests per second with `clients` loops, for SECONDS. */
async function rate(
  clients: number,
  request: (client: number, i: number) => Promise<Response>,
): Promise<number> {
  const until = performance.now() + SECONDS * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < until; i++) {
        const response = await request(client, i);
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`status ${response.status}`);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/** Median requests per second of sequential GETs on one raw socket. */
async function rawRate(base: string, path: string): Promise<number> {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(new URL(base).port),
  });
  const request = new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nhost: bench\r\n\r\n`,
  );
  const buf = new Uint8Array(64 * 1024);
  const rounds: number[] = [];
  try {
    for (let round = 0; round < 8; round++) {
      const started = performance.now();
      let count = 0;
      while (performance.now() - started < 700) {
        await conn.write(request);
        // The response is a few hundred bytes: one read holds it.
        if (await conn.read(buf) === null) throw new Error("closed");
        count++;
      }
      rounds.push(count / ((performance.now() - started) / 1000));
    }
  } finally {
    conn.close();
  }
  rounds.sort((a, b) => a - b);
  return Math.round(rounds[4]!);
}

/** Opens STREAMS event streams, then times EVENTS PUTs to all of them. */
async function fanOut(base: string) {
  const waiting = new Map<string, { left: number; sent: number }>();
  const delays: number[] = [];
  let allHeard: () => void = () => {};
  const heard = (key: string) => {
    const pending = waiting.get(key);
    if (pending === undefined) return;
    delays.push(performance.now() - pending.sent);
    if (--pending.left === 0) allHeard();
  };
  // Open once the first bytes arrive: the demo's `retry:`, the bare
  // server's `: connected`.
  const clients: SseClient[] = [];
  for (let s = 0; s < STREAMS; s++) {
    const response = await fetch(`${base}/t/bench/events?group=fan`);
    clients.push(
      new SseClient(response, (frame) => {
        const key = frame.data.match(/"key":"([^"]*)"/)?.[1];
        if (key !== undefined) heard(key);
      }),
    );
  }
  await Promise.all(clients.map((client) => client.opened));
  for (let e = 0; e < EVENTS; e++) {
    const key = `e${e}`;
    const all = new Promise<void>((resolve) => allHeard = resolve);
    waiting.set(key, { left: STREAMS, sent: performance.now() });
    const response = await fetch(`${base}/t/bench/g/fan/k/${key}`, {
      method: "PUT",
      body: "v",
    });
    await response.arrayBuffer();
    await all;
    waiting.delete(key);
  }
  await Promise.all(clients.map((client) => client.cancel()));
  delays.sort((a, b) => a - b);
  return {
    streams: STREAMS,
    events: EVENTS,
    p50: Number(quantile(delays, 0.5).toFixed(1)),
    p99: Number(quantile(delays, 0.99).toFixed(1)),
    max: Number(delays[delays.length - 1]!.toFixed(1)),
  };
}

async function measure(script: URL) {
  const dir = Deno.makeTempDirSync({ prefix: "core_store_service_bench_" });
  const { base, child } = await start(script, `${dir}/live.db`);
  try {
    const url = (client: number, i: number) =>
      `${base}/t/bench/g/c${client}/k/k${i % 100}`;
    // Warm up, and give GET something to read.
    for (let c = 0; c < 32; c++) {
      for (let i = 0; i < 100; i++) {
        await (await fetch(url(c, i), { method: "PUT", body: "x" }))
          .arrayBuffer();
      }
    }
    const get = (client: number, i: number) => fetch(url(client, i));
    const put = (client: number, i: number) =>
      fetch(url(client, i), { method: "PUT", body: `value ${i}` });
    const result = {
      get1: Math.round(await rate(1, get)),
      get32: Math.round(await rate(32, get)),
      put1: Math.round(await rate(1, put)),
      put32: Math.round(await rate(32, put)),
      rawGet: await rawRate(base, new URL(url(0, 1)).pathname),
      fanOut: await fanOut(base),
    };
    return result;
  } finally {
    await stopServer(child);
    Deno.removeSync(dir, { recursive: true });
  }
}

const loadBefore = await load();
type Figures = Awaited<ReturnType<typeof measure>>;

/** Each figure's median over the rounds. */
function median(runs: Figures[]): Figures {
  const mid = (pick: (f: Figures) => number) =>
    runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
  return {
    get1: mid((f) => f.get1),
    get32: mid((f) => f.get32),
    put1: mid((f) => f.put1),
    put32: mid((f) => f.put32),
    rawGet: mid((f) => f.rawGet),
    fanOut: {
      streams: STREAMS,
      events: EVENTS,
      p50: mid((f) => f.fanOut.p50),
      p99: mid((f) => f.fanOut.p99),
      max: mid((f) => f.fanOut.max),
    },
  };
}

// Alternated, so that a change in the machine's load falls on both.
const appRuns: Figures[] = [];
const bareRuns: Figures[] = [];
for (let round = 0; round < ROUNDS; round++) {
  appRuns.push(await measure(MAIN));
  bareRuns.push(await measure(BARE));
}
const app = median(appRuns);
const bare = median(bareRuns);
const loadAfter = await load();
/** `a / b`, two decimals: the bare rate over the app's, or the app's delay over the bare one. */
const cost = (a: number, b: number) => Number((a / b).toFixed(2));
const result = {
  seconds: SECONDS,
  rounds: ROUNDS,
  cores: navigator.hardwareConcurrency,
  load: { before: loadBefore, after: loadAfter },
  app,
  bare,
  /** How many times the floor's cost the app's is, per scenario. */
  ratio: {
    get1: cost(bare.get1, app.get1),
    get32: cost(bare.get32, app.get32),
    put1: cost(bare.put1, app.put1),
    put32: cost(bare.put32, app.put32),
    rawGet: cost(bare.rawGet, app.rawGet),
    fanOutP50: cost(app.fanOut.p50, bare.fanOut.p50),
    fanOutP99: cost(app.fanOut.p99, bare.fanOut.p99),
  },
};

if (values.markdown) {
  const x = (ratio: number) => `${ratio.toFixed(2)}x`;
  const row = (name: string, a: number, b: number, ratio: number) =>
    `| ${name} | ${a.toLocaleString("en")} | ${b.toLocaleString("en")} | ${
      x(ratio)
    } |`;
  const { ratio } = result;
  console.log(
    [
      `Load (\`uptime\`): ${loadBefore} before, ${loadAfter} after; ${result.cores} cores, ${SECONDS} s a scenario, median of ${ROUNDS} alternated rounds.`,
      "",
      "| requests per second | app (main.ts) | bare `Deno.serve` | app cost |",
      "| --- | ---: | ---: | ---: |",
      row("GET, 1 client", app.get1, bare.get1, ratio.get1),
      row("GET, 32 clients", app.get32, bare.get32, ratio.get32),
      row("PUT, 1 client", app.put1, bare.put1, ratio.put1),
      row("PUT, 32 clients", app.put32, bare.put32, ratio.put32),
      row("GET, 1 raw socket (median)", app.rawGet, bare.rawGet, ratio.rawGet),
      "",
      `| PUT to event, ${
        STREAMS.toLocaleString("en")
      } streams (ms) | app (main.ts) | bare \`Deno.serve\` | app cost |`,
      "| --- | ---: | ---: | ---: |",
      `| p50 | ${app.fanOut.p50} | ${bare.fanOut.p50} | ${
        x(ratio.fanOutP50)
      } |`,
      `| p99 | ${app.fanOut.p99} | ${bare.fanOut.p99} | ${
        x(ratio.fanOutP99)
      } |`,
      `| max | ${app.fanOut.max} | ${bare.fanOut.max} | |`,
    ].join("\n"),
  );
} else {
  console.log(JSON.stringify(result));
}
