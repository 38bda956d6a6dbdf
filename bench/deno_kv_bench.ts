/**
 * The Deno KV store next to raw `Deno.Kv` calls doing the same work on the
 * same file, and next to the local store on a SQLite file, in one run:
 * `get`, `set`, and `getAll` of 1,000 keys (against a raw `kv.list` of
 * them). Rounds alternate between the contenders so that a shared, busy
 * machine slows them alike; each figure is the best round's mean time per
 * call (the round least disturbed by other work on the machine).
 *
 * ```sh
 * deno task bench:kv
 * # which is:
 * deno run --allow-read --allow-write --allow-sys=loadavg bench/deno_kv_bench.ts
 * ```
 *
 * What the store's `set` pays beyond a raw `kv.set`: one `getMany` before
 * it (the head, the entry it replaces and the group's marker), and in its
 * atomic operation a check of the head, the head itself, a change-log entry
 * and the log's trim. Its `get` reads the group's marker with the entry
 * (one `getMany` of two keys instead of a `get` of one), which is what
 * makes `deleteGroup` of any size atomic for readers.
 *
 * @module
 */

import { Store, toAsync } from "@core/store";
import { DenoKvStore } from "@core/store/deno-kv";

const ROUNDS = 15;
const CALLS = { get: 400, set: 200, getAll: 10 };
const KEYS = 1_000;

type Contender = (i: number) => Promise<unknown>;

async function race(
  contenders: Record<string, Contender>,
  calls: number,
): Promise<Record<string, number>> {
  const means: Record<string, number[]> = {};
  for (const fn of Object.values(contenders)) {
    for (let i = 0; i < 50; i++) await fn(i);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const start = performance.now();
      for (let i = 0; i < calls; i++) await fn(round * calls + i);
      (means[name] ??= []).push((performance.now() - start) / calls);
    }
  }
  const out: Record<string, number> = {};
  for (const [name, samples] of Object.entries(means)) {
    out[name] = Math.min(...samples);
  }
  return out;
}

function load(): string {
  try {
    return Deno.loadavg().map((n) => n.toFixed(2)).join(" ");
  } catch {
    return "unknown (run with --allow-sys=loadavg)";
  }
}

const dir = await Deno.makeTempDir({ prefix: "deno-kv-bench-" });
try {
  const raw = await Deno.openKv(`${dir}/raw.kv`);
  const store = await DenoKvStore.open({
    path: `${dir}/store.kv`,
    purgeIntervalMs: 0,
  });
  const file = toAsync(new Store(`${dir}/store.db`, { purgeIntervalMs: 0 }));
  const key = (i: number) => `k${String(i % KEYS).padStart(4, "0")}`;
  const value = (i: number) => `value number ${i}`;
  // The same 1,000 keys in every contender.
  for (let i = 0; i < KEYS; i += 100) {
    const atomic = raw.atomic();
    for (let j = i; j < i + 100; j++) {
      atomic.set(["raw", "g", key(j)], value(j));
    }
    await atomic.commit();
  }
  const records = Array.from({ length: KEYS }, (_, i) => ({
    group: "g",
    key: key(i),
    value: value(i),
    expiresAt: null,
  }));
  await store.importEntries(records);
  await file.importEntries(records);

  const before = load();
  const get = await race({
    "raw kv.get": (i) => raw.get(["raw", "g", key(i)]),
    "DenoKvStore.get": (i) => store.get("g", key(i)),
    "file store get": (i) => file.get("g", key(i)),
  }, CALLS.get);
  const set = await race({
    "raw kv.set": (i) => raw.set(["raw", "g", key(i)], value(i)),
    "DenoKvStore.set": (i) => store.set("g", key(i), value(i)),
    "file store set": (i) => file.set("g", key(i), value(i)),
  }, CALLS.set);
  const getAll = await race({
    "raw kv.list": (_) => Array.fromAsync(raw.list({ prefix: ["raw", "g"] })),
    "DenoKvStore.getAll": (_) => store.getAll("g"),
    "file store getAll": (_) => file.getAll("g"),
  }, CALLS.getAll);
  const after = load();

  const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
  const rows: [string, Record<string, number>, string, string][] = [
    ["get", get, "raw kv.get", "DenoKvStore.get"],
    ["set", set, "raw kv.set", "DenoKvStore.set"],
    ["getAll (1,000 keys)", getAll, "raw kv.list", "DenoKvStore.getAll"],
  ];
  console.log(`load average before ${before}, after ${after}`);
  console.log(
    "| operation | raw Deno.Kv | DenoKvStore | ratio | file store | Deno KV / file |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const [name, figures, rawName, storeName] of rows) {
    const fileName = Object.keys(figures).find((k) => k.startsWith("file"))!;
    const r = figures[rawName]!;
    const s = figures[storeName]!;
    const f = figures[fileName]!;
    console.log(
      `| ${name} | ${us(r)} | ${us(s)} | ${(s / r).toFixed(2)}x | ${us(f)} | ${
        (s / f).toFixed(1)
      }x |`,
    );
  }
  raw.close();
  await store.close();
  await file.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}
