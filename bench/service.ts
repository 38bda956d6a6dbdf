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
 * figures mean little without it. Prints one JSON object, or the markdown
 * table with `--markdown`.
 *
 * Run: `deno task bench:service` (`deno run --allow-read --allow-write
 * --allow-net --allow-run bench/service.ts`).
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "3" },
    streams: { type: "string", default: "1000" },
    events: { type: "string", default: "20" },
    markdown: { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
const STREAMS = Number(values.streams);
const EVENTS = Number(values.events);

const MAIN = new URL("../examples/live_config/main.ts", import.meta.url);
const BARE = new URL("./_service_bare.ts", import.meta.url);

/** A server child process and its base URL. */
async function start(
  script: URL,
  db: string,
): Promise<{ base: string; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      script.pathname,
      "--port",
      "0",
      "--db",
      db,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server exited: ${seen}`);
    seen += value;
    const match = seen.match(/listening on (http:\S+)\//);
    if (match) {
      // Keep draining stdout so the child never blocks on it.
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return { base: match[1]!, child };
    }
  }
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGTERM");
  await child.status;
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

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Opens STREAMS event streams, then times EVENTS PUTs to all of them. */
async function fanOut(base: string) {
  const controller = new AbortController();
  const waiting = new Map<string, { left: number; sent: number }>();
  const delays: number[] = [];
  let allHeard: () => void = () => {};
  const heard = (key: string) => {
    const pending = waiting.get(key);
    if (pending === undefined) return;
    delays.push(performance.now() - pending.sent);
    if (--pending.left === 0) allHeard();
  };
  const connected: Promise<void>[] = [];
  for (let s = 0; s < STREAMS; s++) {
    connected.push((async () => {
      const response = await fetch(`${base}/t/bench/events?group=fan`, {
        signal: controller.signal,
      });
      const reader = response.body!.pipeThrough(new TextDecoderStream())
        .getReader();
      let text = "";
      let ready: () => void = () => {};
      const first = new Promise<void>((resolve) => ready = resolve);
      (async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            text += value;
            let end: number;
            while ((end = text.indexOf("\n\n")) >= 0) {
              const block = text.slice(0, end);
              text = text.slice(end + 2);
              if (block === ": connected") ready();
              const key = block.match(/"key":"([^"]*)"/)?.[1];
              if (key !== undefined) heard(key);
            }
          }
        } catch {
          // Aborted at the end.
        }
      })();
      await first;
    })());
  }
  await Promise.all(connected);
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
  controller.abort();
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
    await stop(child);
    Deno.removeSync(dir, { recursive: true });
  }
}

/** `uptime`'s load averages (1, 5, 15 minutes). */
async function load(): Promise<string> {
  const { stdout } = await new Deno.Command("uptime").output();
  return new TextDecoder().decode(stdout).match(/load average: (.*)$/m)?.[1] ??
    "unknown";
}

const loadBefore = await load();
const app = await measure(MAIN);
const bare = await measure(BARE);
const loadAfter = await load();
/** `a / b`, two decimals: the bare rate over the app's, or the app's delay over the bare one. */
const cost = (a: number, b: number) => Number((a / b).toFixed(2));
const result = {
  seconds: SECONDS,
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
      `Load (\`uptime\`): ${loadBefore} before, ${loadAfter} after; ${result.cores} cores, ${SECONDS} s a scenario.`,
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
