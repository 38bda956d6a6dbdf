/**
 * Resident memory while 1,000,000 keys are written to a file store, one
 * `set` each, and read back with `get` (every value checked). The figure is
 * the peak RSS, sampled every 10,000 operations, minus the RSS once the
 * store is open; no garbage collection is forced, so garbage not yet
 * collected counts too.
 *
 * Prints one JSON object. Run with:
 *
 * ```sh
 * deno run --allow-read --allow-write bench/memory.ts
 * ```
 *
 * @module
 */

import { Store } from "@core/store";
import { LARGE, tempFile, valueOf } from "./_shared.ts";

const TOTAL = 1_000_000;
const SAMPLE_EVERY = 10_000;
const MiB = 1024 * 1024;

const path = tempFile("memory.db");
const store = new Store(path, { purgeIntervalMs: 0 });
const baseline = Deno.memoryUsage().rss;
let peak = baseline;
const sample = () => {
  const rss = Deno.memoryUsage().rss;
  if (rss > peak) peak = rss;
};

let start = performance.now();
for (let i = 0; i < TOTAL; i++) {
  store.set(LARGE.group(i), LARGE.key(i), valueOf(i));
  if (i % SAMPLE_EVERY === 0) sample();
}
const writeMs = performance.now() - start;
const afterWrite = Deno.memoryUsage().rss;

start = performance.now();
for (let i = 0; i < TOTAL; i++) {
  if (store.get(LARGE.group(i), LARGE.key(i)) !== valueOf(i)) {
    throw new Error(`key ${i} read back wrong`);
  }
  if (i % SAMPLE_EVERY === 0) sample();
}
const readMs = performance.now() - start;
sample();
const final = Deno.memoryUsage().rss;
store.close();
const fileBytes = Deno.statSync(path).size;

const mib = (bytes: number) => Math.round(bytes / MiB * 10) / 10;
console.log(JSON.stringify({
  keys: TOTAL,
  baselineMiB: mib(baseline),
  afterWriteMiB: mib(afterWrite),
  finalMiB: mib(final),
  peakMiB: mib(peak),
  growthMiB: mib(peak - baseline),
  writeSeconds: Math.round(writeMs / 10) / 100,
  readSeconds: Math.round(readMs / 10) / 100,
  fileMiB: mib(fileBytes),
}));
