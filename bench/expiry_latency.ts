/**
 * How late `expire` events arrive: 10,000 keys with deadlines spread over
 * 10 seconds, one callback recording, for each event, the delay from the
 * key's deadline to its delivery. Default options, a file store. Also times
 * setWithTTL with and without a listener, beside a raw upsert, in one run.
 *
 * ```sh
 * deno run --allow-read --allow-write bench/expiry_latency.ts [keys] [spreadMs]
 * ```
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { Store } from "../mod.ts";

const KEYS = Number(Deno.args[0] ?? 10_000);
const SPREAD_MS = Number(Deno.args[1] ?? 10_000);
const dir = Deno.makeTempDirSync();

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ??
    NaN;
}

async function latency(): Promise<number[]> {
  using store = new Store(`${dir}/latency.db`);
  const delays: number[] = [];
  const deadlines = new Map<string, number>();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => done = resolve);
  store.onChange((event) => {
    if (event.type === "set" && event.expiresAt !== undefined) {
      deadlines.set(event.key, event.expiresAt);
      return;
    }
    if (event.type !== "expire") return;
    const deadline = deadlines.get(event.key);
    if (deadline === undefined) return;
    delays.push(Date.now() - deadline);
    if (delays.length === KEYS) done();
  });
  // One transaction, so that writing the keys takes far less than the
  // second before the first deadline.
  const start = Date.now() + 1_000;
  store.transaction((tx) => {
    for (let i = 0; i < KEYS; i++) {
      const at = start + Math.floor((i * SPREAD_MS) / KEYS);
      tx.setWithTTL("g", `k${i}`, "v", at - Date.now());
    }
  });
  const limit = setTimeout(done, SPREAD_MS + 5_000);
  await finished;
  clearTimeout(limit);
  return delays.sort((a, b) => a - b);
}

function cost(): Record<string, number> {
  const n = 20_000;
  const time = (fn: (i: number) => void) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn(i);
    return ((performance.now() - t0) * 1e6) / n;
  };
  const raw = new DatabaseSync(":memory:");
  raw.exec(
    "CREATE TABLE kv (grp TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (grp, key))",
  );
  const upsert = raw.prepare(
    "INSERT INTO kv VALUES (?, ?, ?, ?) ON CONFLICT (grp, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
  );
  using quiet = new Store(":memory:", { purgeIntervalMs: 0 });
  using heard = new Store(":memory:", { purgeIntervalMs: 0 });
  heard.onChange(() => {});
  const results: Record<string, number> = {};
  for (let round = 0; round < 3; round++) {
    results.raw = time((i) =>
      upsert.run("g", `k${i % 1000}`, "v", Date.now() + 60_000)
    );
    results.quiet = time((i) =>
      quiet.setWithTTL("g", `k${i % 1000}`, "v", 60_000)
    );
    results.heard = time((i) =>
      heard.setWithTTL("g", `k${i % 1000}`, "v", 60_000)
    );
  }
  raw.close();
  return results;
}

const delays = await latency();
const c = cost();
console.log(
  `expire delay over ${delays.length} of ${KEYS} keys in ${SPREAD_MS} ms: p50 ${
    percentile(delays, 0.5)
  } ms, p99 ${percentile(delays, 0.99)} ms, max ${delays.at(-1)} ms`,
);
console.log(
  `setWithTTL ns/op: raw upsert ${c.raw?.toFixed(0)}, store without listeners ${
    c.quiet?.toFixed(0)
  } (${(c.quiet! / c.raw!).toFixed(2)}x raw), with a callback ${
    c.heard?.toFixed(0)
  } (${(c.heard! / c.raw!).toFixed(2)}x raw)`,
);
Deno.removeSync(dir, { recursive: true });
