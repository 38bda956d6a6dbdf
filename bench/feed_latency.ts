/**
 * Latency of the change feed across processes: a child process sets 1,000
 * keys, one at a time, on a file store with the feed on; this process, with
 * its own store on the file and the default `changePollMs` (50 ms), measures
 * from each write (its value is the writer's `Date.now()` just before the
 * set) to the event's arrival. Prints JSON:
 * `{ pollMs, writes, p50, p99, max }` in milliseconds.
 *
 * Run: `deno run --allow-read --allow-write --allow-run bench/feed_latency.ts`
 *
 * @module
 */

import { Store } from "@core/store";

const WRITES = 1_000;
const POLL_MS = 50;

if (Deno.args[0] === "--writer") {
  // The child: one write every 2 ms, so commits land at every phase of the
  // reader's poll interval.
  using store = new Store(Deno.args[1] as string, {
    changeFeed: true,
    purgeIntervalMs: 0,
  });
  for (let i = 0; i < WRITES; i++) {
    store.set("latency", `k${i}`, `${Date.now()}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
} else {
  const dir = Deno.makeTempDirSync({ prefix: "core_store_feed_latency_" });
  const path = `${dir}/feed.db`;
  const store = new Store(path, {
    changeFeed: true,
    changePollMs: POLL_MS,
    purgeIntervalMs: 0,
  });
  const latencies: number[] = [];
  const heard = new Promise<void>((resolve) => {
    store.onChange((event) => {
      latencies.push(Date.now() - Number(event.value));
      if (latencies.length === WRITES) resolve();
    });
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      new URL(import.meta.url).pathname,
      "--writer",
      path,
    ],
  }).spawn();
  const keepAlive = setInterval(() => {}, 1_000);
  await heard;
  clearInterval(keepAlive);
  await child.status;
  store.close();
  Deno.removeSync(dir, { recursive: true });
  latencies.sort((a, b) => a - b);
  const at = (p: number) =>
    latencies[
      Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)
    ];
  console.log(JSON.stringify({
    pollMs: POLL_MS,
    writes: WRITES,
    p50: at(0.5),
    p99: at(0.99),
    max: latencies.at(-1),
  }));
}
