/**
 * The etcd store next to the local file store, in the same run: p50 and p99
 * of `set`, `get`, `getAll` of 100 keys, watch delivery and a quota-checked
 * scoped `set`, both through {@linkcode AsyncStore}; then `increment` and
 * `compareAndSet` paired with raw `/v3/kv/txn` compare-and-swaps and with a
 * `transaction` (see `_etcd_atomic.ts`; `--atomic-only` runs just those).
 *
 * ```sh
 * deno task bench:etcd [--endpoints URL,URL,...] [--atomic-only]
 * # which is:
 * deno run --allow-read --allow-write --allow-net --allow-run --allow-env bench/etcd_bench.ts
 * ```
 *
 * Without `--endpoints` it starts a 3-member cluster on 127.0.0.1 with
 * `tests/etcd/cluster.sh` (ports from 23890, temporary data directories) and
 * stops it by PID at the end. Watch delivery is measured between two
 * instances on etcd (the writer and a listener, as two service instances
 * would be) and to a callback of the same store on the file (the local
 * store delivers synchronously during the write).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { AsyncScopedStore, type AsyncStore, Store, toAsync } from "@core/store";
import { EtcdStore } from "@core/store/etcd";
import { atomicPaired } from "./_etcd_atomic.ts";
import { setAgainstRaw, setAgainstRawTable } from "./_etcd_raw.ts";

const ROUNDS = { set: 500, get: 500, getAll: 200, watch: 300, scoped: 300 };

interface Figures {
  p50: number;
  p99: number;
}

function percentiles(samples: number[]): Figures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

async function time(n: number, fn: (i: number) => Promise<unknown>) {
  for (let i = 0; i < Math.min(50, n); i++) await fn(-1 - i);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await fn(i);
    samples.push(performance.now() - start);
  }
  return percentiles(samples);
}

async function measure(
  store: AsyncStore,
  listener: AsyncStore,
): Promise<Record<string, Figures>> {
  const out: Record<string, Figures> = {};
  out.set = await time(ROUNDS.set, (i) => store.set("bench", `k${i}`, "v"));
  out.get = await time(ROUNDS.get, (i) => store.get("bench", `k${i}`));
  for (let i = 0; i < 100; i++) await store.set("hundred", `k${i}`, "value");
  out["getAll (100 keys)"] = await time(
    ROUNDS.getAll,
    () => store.getAll("hundred"),
  );
  out["watch delivery"] = await watchDelivery(store, listener);
  const tenant = new AsyncScopedStore(store, "tenant", {
    maxKeys: 10_000,
    maxGroups: 100,
  });
  for (let i = 0; i < 100; i++) await tenant.set("g", `seed${i}`, "v");
  out["scoped set (quota-checked)"] = await time(
    ROUNDS.scoped,
    (i) => tenant.set("g", `k${i}`, "v"),
  );
  return out;
}

async function watchDelivery(
  store: AsyncStore,
  listener: AsyncStore,
): Promise<Figures> {
  let waiting: ((at: number) => void) | undefined;
  const off = listener.onChange((event) => {
    if (event.group === "watched") waiting?.(performance.now());
  });
  try {
    return await time(ROUNDS.watch, async (i) => {
      const heard = new Promise<number>((resolve) => waiting = resolve);
      await store.set("watched", `k${i}`, "v");
      await heard;
    });
  } finally {
    off();
  }
}

async function startCluster(state: string): Promise<string[]> {
  const script = new URL("../tests/etcd/cluster.sh", import.meta.url).pathname;
  const out = await new Deno.Command(script, {
    args: ["start", "3", state],
    env: { ETCD_BASE_PORT: "23890" },
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("the etcd cluster did not start");
  return (await Deno.readTextFile(`${state}/endpoints`)).trim().split(",");
}

async function stopCluster(state: string): Promise<void> {
  const script = new URL("../tests/etcd/cluster.sh", import.meta.url).pathname;
  await new Deno.Command(script, { args: ["stop", state] }).output();
  await Deno.remove(state, { recursive: true }).catch(() => {});
}

function table(local: Record<string, Figures>, etcd: Record<string, Figures>) {
  const ms = (n: number) => n.toFixed(3);
  const lines = [
    "| operation | file p50 (ms) | file p99 (ms) | etcd p50 (ms) | etcd p99 (ms) | etcd/file p50 |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const name of Object.keys(etcd)) {
    const f = local[name]!;
    const e = etcd[name]!;
    lines.push(
      `| ${name} | ${ms(f.p50)} | ${ms(f.p99)} | ${ms(e.p50)} | ${
        ms(e.p99)
      } | ${(e.p50 / f.p50).toFixed(0)}× |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      endpoints: { type: "string" },
      "atomic-only": { type: "boolean" },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "core-store-etcd-bench-" });
  const state = `${dir}/cluster`;
  let endpoints = values.endpoints?.split(",");
  const own = endpoints === undefined;
  try {
    endpoints ??= await startCluster(state);
    const prefix = `bench/${crypto.randomUUID()}/`;
    const options = { endpoints, prefix, purgeIntervalMs: 0 };
    if (values["atomic-only"]) {
      await using store = await EtcdStore.open(options);
      return await atomicPaired(store, endpoints[0]!);
    }
    const file = toAsync(new Store(`${dir}/bench.db`));
    const local = await measure(file, file);
    await file.close();
    const writer = await EtcdStore.open(options);
    const listener = await EtcdStore.open(options);
    const etcd = await measure(writer, listener);
    await writer.close();
    await listener.close();
    console.log(
      `etcd ${endpoints.length} members at ${
        endpoints.join(", ")
      }; file store in WAL mode, durability "normal"`,
    );
    console.log(table(local, etcd));
    // EtcdStore.set beside the raw requests it could be, in pairs.
    console.log();
    console.log(setAgainstRawTable(await setAgainstRaw(endpoints, prefix)));
    await using store = await EtcdStore.open(options);
    await atomicPaired(store, endpoints[0]!);
  } finally {
    if (own) await stopCluster(state);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

await main();
