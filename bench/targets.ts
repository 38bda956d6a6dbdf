/**
 * Checks the performance targets: runs the benchmark suite
 * (`deno bench --json`), then the scripts `watchers.ts` (paired measurement
 * of 10,000 watchers on other groups), `purge_stall.ts`, `memory.ts`,
 * `atomic_paired.ts` (paired measurement of the atomic operations),
 * `watched_paired.ts` (a watched `set` and raw upserts in pairs),
 * `feed_floor.ts` (the change feed on and off, and its floor, in pairs) and
 * `go_store.ts` (against the Go sibling; skipped without Go), and prints one
 * line per target,
 *
 * ```text
 * PASS|FAIL <target> <measured ratio or figure> (limit …)
 * ```
 *
 * followed by `INFO` lines for the ratios reported without a limit. Every
 * ratio compares two entries of the same `deno bench` run (or, for the
 * watchers, two stores of the same script run).
 *
 * Run from the repository root with:
 *
 * ```sh
 * deno task bench:targets [--save FILE] [--from FILE] [--markdown]
 * # which is:
 * deno run --allow-read --allow-write --allow-run bench/targets.ts
 * ```
 *
 * It exits with status 1 when any target fails.
 *
 * - `--save FILE`: also write the raw results (bench JSON, script outputs)
 *   to FILE;
 * - `--from FILE`: read results saved by `--save` instead of measuring;
 * - `--markdown`: also print the tables of `bench/README.md`.
 *
 * @module
 */

import { E, G, SWEEP_SIZES } from "./_names.ts";

/** One entry of `deno bench --json`, reduced to what is compared. */
interface Entry {
  origin: string;
  group: string | null;
  name: string;
  baseline: boolean;
  /** Mean time per iteration, nanoseconds. */
  avg: number;
}

interface Stall {
  maxGapMs: number;
  idle: { maxGapMs: number };
  runs: {
    mode: string;
    maxGapMs: number;
    p99GapMs?: number;
    p50GapMs?: number;
    durationMs: number;
  }[];
  /** Absent from results saved before it was measured. */
  checkpointFloor?: {
    synchronous: string;
    framesPerCheckpoint: number;
    medianMs: number;
    maxMs: number;
  }[];
}

interface Memory {
  growthMiB: number;
  peakMiB: number;
  baselineMiB: number;
  writeSeconds: number;
  readSeconds: number;
}

interface Watchers {
  storesRatio: number;
  tenThousandWatchers: number;
  oneWatcher: number;
}

/** What `atomic_paired.ts` prints (the ratios used here). */
interface Atomic {
  incrementOverSet: number;
  setIfAbsentOverSet: number;
  getAndDeleteOverDelete: number;
  incrementOverRaw: number;
  setIfAbsentOverRaw: number;
  getAndDeleteOverRaw: number;
  transactionOverIncrement: number;
  transactionOverSetIfAbsent: number;
  transactionOverGetAndDelete: number;
}

/** What `feed_floor.ts` prints (the figures used here). */
interface FeedFloor {
  feedOnOverOff: number;
  floorOverRaw: number;
  feedOnOverFloor: number;
  walPerCommit: Record<string, { frames: number; bytes: number }>;
}

/** What `watched_paired.ts` prints. */
interface WatchedPaired {
  watchedOverRaw: number;
  plainOverRaw: number;
  /** Absent from results saved before it was measured. */
  watchedOverRawGet?: number;
}

/** One durability of `go_store.ts`, nanoseconds per operation. */
interface GoSide {
  ns: Record<string, number>;
}

interface GoStore {
  missing?: string;
  normal?: GoSide;
  full?: GoSide;
}

interface Results {
  deno: string;
  cpu: string;
  date: string;
  commands: string[];
  entries: Entry[];
  watchers: Watchers;
  stall: Stall;
  memory: Memory;
  /** Absent from results saved before it was measured. */
  goStore?: GoStore;
  /** Absent from results saved before it was measured. */
  atomic?: Atomic;
  /** Absent from results saved before it was measured. */
  watched?: WatchedPaired;
  /** Absent from results saved before it was measured. */
  feedFloor?: FeedFloor;
}

const args = [...Deno.args];
const flag = (name: string): boolean => {
  const at = args.indexOf(name);
  if (at < 0) return false;
  args.splice(at, 1);
  return true;
};
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined) throw new Error(`${name} needs a file name`);
  args.splice(at, 2);
  return value;
};
const markdown = flag("--markdown");
const save = option("--save");
const from = option("--from");
if (args.length > 0) {
  console.error(`Unknown arguments: ${args.join(" ")}`);
  Deno.exit(2);
}

const root = decodeURIComponent(new URL("..", import.meta.url).pathname);

/** The modules with the targets' groups (other `*_bench.ts` files are not run). */
const MODULES = [
  "bench/store_bench.ts",
  "bench/watchers_bench.ts",
  "bench/file_bench.ts",
  "bench/purge_bench.ts",
  "bench/feed_bench.ts",
  "bench/atomic_bench.ts",
];
const BENCH_ARGS = [
  "bench",
  "--unstable-kv",
  "--allow-read",
  "--allow-write",
  "--json",
  ...MODULES,
];
const SCRIPT_ARGS = ["run", "--allow-read", "--allow-write"];
// Builds and runs the Go side, whose environment it passes on.
const GO_ARGS = [...SCRIPT_ARGS, "--allow-run", "--allow-env"];

/**
 * Runs `deno` with `args` from the repository root and returns its standard
 * output. A failure is fatal unless `partial`: `deno bench` exits non-zero
 * when one benchmark throws, yet reports all the others.
 */
async function run(args: string[], partial = false): Promise<string> {
  console.error(`$ deno ${args.join(" ")}`);
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    const message = `deno ${args.join(" ")} exited with ${output.code}`;
    if (!partial || stdout.trim() === "") throw new Error(message);
    console.error(`${message}; reporting what it measured`);
  }
  return stdout;
}

async function measure(): Promise<Results> {
  const started = performance.now();
  const bench = JSON.parse(await run(BENCH_ARGS, true)) as {
    runtime: string;
    cpu: string;
    benches: {
      origin: string;
      group: string | null;
      name: string;
      baseline: boolean;
      results: { ok?: { avg: number }; failed?: unknown }[];
    }[];
  };
  const entries: Entry[] = [];
  for (const bench_ of bench.benches) {
    const ok = bench_.results[0]?.ok;
    if (ok === undefined) {
      console.error(`${bench_.group} / ${bench_.name} failed`);
      continue;
    }
    entries.push({
      origin: bench_.origin.slice(bench_.origin.lastIndexOf("/") + 1),
      group: bench_.group,
      name: bench_.name,
      baseline: bench_.baseline,
      avg: ok.avg,
    });
  }
  const watchers = JSON.parse(
    await run(["run", "bench/watchers.ts"]),
  ) as Watchers;
  const stall = JSON.parse(
    await run([...SCRIPT_ARGS, "bench/purge_stall.ts"]),
  ) as Stall;
  const memory = JSON.parse(
    await run([...SCRIPT_ARGS, "bench/memory.ts"]),
  ) as Memory;
  const atomic = JSON.parse(
    await run([...SCRIPT_ARGS, "bench/atomic_paired.ts"]),
  ) as Atomic;
  const watched = JSON.parse(
    await run([...SCRIPT_ARGS, "bench/watched_paired.ts"]),
  ) as WatchedPaired;
  const feedFloor = JSON.parse(
    await run([...SCRIPT_ARGS, "bench/feed_floor.ts"]),
  ) as FeedFloor;
  const goStore = JSON.parse(
    await run([...GO_ARGS, "bench/go_store.ts"]),
  ) as GoStore;
  console.error(
    `measured in ${Math.round((performance.now() - started) / 1000)} s`,
  );
  return {
    deno: bench.runtime,
    cpu: bench.cpu,
    date: new Date().toISOString(),
    commands: [
      `deno ${BENCH_ARGS.join(" ")}`,
      "deno run bench/watchers.ts",
      `deno ${SCRIPT_ARGS.join(" ")} bench/purge_stall.ts`,
      `deno ${SCRIPT_ARGS.join(" ")} bench/memory.ts`,
      `deno ${SCRIPT_ARGS.join(" ")} bench/atomic_paired.ts`,
      `deno ${SCRIPT_ARGS.join(" ")} bench/watched_paired.ts`,
      `deno ${SCRIPT_ARGS.join(" ")} bench/feed_floor.ts`,
      `deno ${GO_ARGS.join(" ")} bench/go_store.ts`,
    ],
    entries,
    watchers,
    stall,
    memory,
    atomic,
    watched,
    feedFloor,
    goStore,
  };
}

const results: Results = from === undefined
  ? await measure()
  : JSON.parse(await Deno.readTextFile(from));
if (save !== undefined) {
  await Deno.writeTextFile(save, JSON.stringify(results, null, 2) + "\n");
}

// ------------------------------------------------------------ the checks

function avg(group: string, name: string): number {
  const entry = results.entries.find((e) =>
    e.group === group && e.name === name
  );
  if (entry === undefined) throw new Error(`no result for ${group} / ${name}`);
  return entry.avg;
}

/** How many times slower `name` is than `than`, both in `group`. */
function ratio(group: string, name: string, than: string): number {
  return avg(group, name) / avg(group, than);
}

interface Line {
  status: "PASS" | "FAIL" | "INFO";
  target: string;
  measured: string;
  limit?: string;
}

const lines: Line[] = [];

function x(value: number, digits?: number): string {
  return `${value.toFixed(digits ?? (value < 10 ? 2 : 1))}x`;
}

/** A target that `measure()` must keep at or under `limit`. */
function atMost(
  target: string,
  measure: () => number,
  limit: number,
  unit: "x" | " ms" | " MiB" = "x",
  strictlyUnder = false,
): void {
  const show = (v: number, digits?: number) =>
    unit === "x" ? x(v, digits) : `${v.toFixed(digits ?? 1)}${unit}`;
  try {
    const value = measure();
    const pass = strictlyUnder ? value < limit : value <= limit;
    // One more digit when rounding would show the value equal to the limit.
    const digits = show(value) === show(limit) ? 3 : undefined;
    lines.push({
      status: pass ? "PASS" : "FAIL",
      target,
      measured: show(value, digits),
      limit: `${strictlyUnder ? "<" : "<="} ${show(limit)}`,
    });
  } catch (error) {
    lines.push({
      status: "FAIL",
      target,
      measured: `missing (${(error as Error).message})`,
      limit: `<= ${show(limit)}`,
    });
  }
}

/** A ratio that must be at least `limit`. */
function atLeast(target: string, measure: () => number, limit: number): void {
  try {
    const value = measure();
    lines.push({
      status: value >= limit ? "PASS" : "FAIL",
      target,
      measured: x(value, x(value) === x(limit) ? 2 : undefined),
      limit: `>= ${x(limit)}`,
    });
  } catch (error) {
    lines.push({
      status: "FAIL",
      target,
      measured: `missing (${(error as Error).message})`,
      limit: `>= ${x(limit)}`,
    });
  }
}

function info(target: string, measure: () => number | string): void {
  try {
    const value = measure();
    lines.push({
      status: "INFO",
      target,
      measured: typeof value === "number" ? x(value) : value,
    });
  } catch (error) {
    lines.push({
      status: "INFO",
      target,
      measured: `missing (${(error as Error).message})`,
    });
  }
}

atMost(
  "get (:memory:) / raw node:sqlite get",
  () => ratio(G.get, E.storeGet, E.rawGetArray),
  1.3,
);
atMost(
  "set (:memory:) / raw node:sqlite upsert",
  () => ratio(G.set, E.storeSet, E.rawUpsert),
  1.3,
);
atMost(
  "set with a drained watcher and a callback / raw upsert (paired)",
  () => {
    if (results.watched === undefined) throw new Error("not measured");
    return results.watched.watchedOverRaw;
  },
  1.2,
);
atMost(
  "set with 10,000 watchers on other groups / the same set with none (paired)",
  () => results.watchers.tenThousandWatchers,
  1.1,
);
atMost(
  "getAll 10,000 / raw .all() setReturnArrays into a Map (same result)",
  () => ratio(G.getAll, E.storeGetAll, E.rawAllMap),
  1.2,
);
atLeast(
  "Deno KV get / Store.get (:memory:)",
  () => ratio(G.get, E.kvGet, E.storeGet),
  20,
);
atLeast(
  "Deno KV set / Store.set (:memory:)",
  () => ratio(G.set, E.kvSet, E.storeSet),
  20,
);
atLeast(
  "Deno KV get / Store.get (file)",
  () => ratio(G.fileGet, E.kvGet, E.storeGet),
  5,
);
atLeast(
  "Deno KV set / Store.set (file)",
  () => ratio(G.fileSet, E.kvSet, E.storeSet),
  5,
);
const atomic = (): Atomic => {
  if (results.atomic === undefined) throw new Error("not measured");
  return results.atomic;
};
atMost(
  "file increment / file set, existing keys (paired)",
  () => atomic().incrementOverSet,
  1.3,
);
atMost(
  "file getAndDelete / file delete, live keys (paired)",
  () => atomic().getAndDeleteOverDelete,
  1.3,
);
atMost(
  "file setIfAbsent / file set, new keys (paired)",
  () => atomic().setIfAbsentOverSet,
  1.2,
);
atMost(
  "longest event-loop stall during the background purge (100,000 of 1,000,000)",
  () => results.stall.maxGapMs,
  20,
  " ms",
);
const feedFloor = (): FeedFloor => {
  if (results.feedFloor === undefined) throw new Error("not measured");
  return results.feedFloor;
};
atMost(
  "file set, change feed on / off (paired)",
  () => feedFloor().feedOnOverOff,
  1.4,
);
atMost(
  "file set with the change feed / raw upsert with the log's triggers (the floor, paired)",
  () => feedFloor().feedOnOverFloor,
  1.2,
);
// Where a Go result is missing (no Go on the machine) there is no target.
function goRatio(durability: "normal" | "full", a: string, b: string) {
  const side = results.goStore?.[durability];
  if (side === undefined) {
    throw new Error(results.goStore?.missing ?? "no go_store.ts results");
  }
  return (side.ns[a] as number) / (side.ns[b] as number);
}
if (results.goStore?.normal !== undefined) {
  atLeast(
    "go-store set / Store.set (file, durability normal)",
    () => goRatio("normal", "go.set", "store.set"),
    3,
  );
}
atMost(
  "RSS growth writing and reading back 1,000,000 keys (file)",
  () => results.memory.growthMiB,
  100,
  " MiB",
  true,
);

info(
  "set with a drained watcher and a callback / raw upsert (deno bench, unpaired)",
  () => ratio(G.watched, E.watchedSet, `${E.rawUpsert} x 16`),
);
info(
  "set with no listener / raw upsert (paired, the same run of watched_paired.ts)",
  () => {
    if (results.watched === undefined) throw new Error("not measured");
    return results.watched.plainOverRaw;
  },
);
info(
  "set with a drained watcher and a callback / raw upsert through .get(), raw code's floor (paired, the same run)",
  () => {
    const ratio = results.watched?.watchedOverRawGet;
    if (ratio === undefined) throw new Error("not measured");
    return ratio;
  },
);
info(
  "the feed's floor: raw upsert with the log's triggers / raw upsert (paired, same run)",
  () => feedFloor().floorOverRaw,
);
info(
  "WAL per commit, raw upsert / with the log's triggers / Store.set feed off / on",
  () => {
    const wal = feedFloor().walPerCommit;
    return [
      "raw upsert",
      "raw upsert, log triggers (floor)",
      "Store.set, feed off",
      "Store.set, feed on",
    ].map((name) =>
      `${wal[name]?.frames ?? "-"} pages (${wal[name]?.bytes ?? "-"} B)`
    ).join(" / ");
  },
);
info(
  "file set, change feed on / off (deno bench, unpaired)",
  () => ratio(G.feed, E.feedOn, E.feedOff),
);
info(
  "raw upsert with the change log's triggers / raw upsert (file, deno bench, unpaired)",
  () => ratio(G.feed, E.rawLogged, E.rawUpsert),
);
info(
  "go-store get / Store.get (file, durability normal)",
  () => goRatio("normal", "go.get", "store.get"),
);
info(
  "go-store set / raw upsert (file, normal); with statements prepared once",
  () =>
    `${x(goRatio("normal", "go.set", "raw.set"))}; ${
      x(goRatio("normal", "go.setPrepared", "raw.set"))
    }`,
);
info(
  "go-store set / Store.set (file, durability full: both wait for the disk)",
  () => goRatio("full", "go.set", "store.set"),
);
info(
  "speed-up of increment over a transaction's get + set (file, paired)",
  () => atomic().transactionOverIncrement,
);
info(
  "speed-up of setIfAbsent over a transaction's exists + set (file, paired)",
  () => atomic().transactionOverSetIfAbsent,
);
info(
  "speed-up of getAndDelete over a transaction's get + delete (file, paired)",
  () => atomic().transactionOverGetAndDelete,
);
info(
  "file increment / raw upsert ... RETURNING (paired)",
  () => atomic().incrementOverRaw,
);
info(
  "file setIfAbsent / raw INSERT ... DO NOTHING (paired)",
  () => atomic().setIfAbsentOverRaw,
);
info(
  "file getAndDelete / raw DELETE ... RETURNING (paired)",
  () => atomic().getAndDeleteOverRaw,
);
info(
  "file increment / file set (deno bench, sequential)",
  () => ratio(G.fileIncrement, E.storeIncrement, E.storeSet),
);
info(
  "file setIfAbsent / file set of new keys (deno bench, sequential)",
  () => ratio(G.fileSetIfAbsent, E.storeSetIfAbsent, E.storeSetNew),
);
info(
  "file getAndDelete / file delete (deno bench, sequential)",
  () => ratio(G.fileGetAndDelete, E.storeGetAndDelete, E.storeDelete),
);
info(
  "getAll 10,000 / fastest raw form (.all() setReturnArrays, no Map)",
  () => ratio(G.getAll, E.storeGetAll, E.rawAllArrays),
);
info(
  "raw rows into a Map / raw rows alone (the Map's own cost)",
  () => ratio(G.getAll, E.rawAllMap, E.rawAllArrays),
);
info(
  "Deno KV set / raw upsert (:memory:), the ceiling for the store",
  () => ratio(G.set, E.kvSet, E.rawUpsert),
);
info(
  "Deno KV get / raw get (:memory:), the ceiling for the store",
  () => ratio(G.get, E.kvGet, E.rawGetArray),
);
info(
  "set with 1 watcher on another group / with none (paired)",
  () => results.watchers.oneWatcher,
);
info(
  "set x 16 with 10,000 other watchers / with none (deno bench, sequential)",
  () => ratio(G.otherWatchers, E.manyWatchers, E.noWatchers),
);
info(
  "scoped set of new keys (maxKeys 10,000, 9,000 present) / unscoped set",
  () => ratio(G.scoped, E.scoped10k, E.unscoped),
);
info(
  "scoped set, 9,000 present / none present (quota check constant time)",
  () =>
    ratio(
      G.scoped,
      E.scoped10k,
      "ScopedStore.set, maxKeys 10,000 with none present (reference)",
    ),
);
info(
  "scoped set / raw BEGIN IMMEDIATE + stats read + upsert + COMMIT",
  () => ratio(G.scoped, E.scoped10k, E.rawQuota),
);
info(
  "10,000 separate sets / 1 transaction of 10,000 (file, durability full)",
  () => ratio(G.fullTx, E.separate, E.storeTx),
);
info(
  "1 transaction of 10,000 sets (full) / raw",
  () => ratio(G.fullTx, E.storeTx, E.rawTx),
);
info(
  "file set, durability normal / raw",
  () => ratio(G.fileSet, E.storeSet, E.rawUpsert),
);
info(
  "file set, durability full / raw",
  () => ratio(G.fileSetFull, E.storeSet, E.rawUpsert),
);
info(
  "file get / raw",
  () => ratio(G.fileGet, E.storeGet, E.rawGetArray),
);
info(
  "transaction of 1,000 sets (file) / raw",
  () => ratio(G.fileTx, E.storeTx, E.rawTx),
);
info(
  "Deno KV atomic of 1,000 sets / Store.transaction (file)",
  () => ratio(G.fileTx, E.kvAtomic, E.storeTx),
);
info("count / raw", () => ratio(G.count, E.storeCount, E.rawSame));
info(
  "countAll(prefix) / raw",
  () => ratio(G.countAll, E.storeCountAll, E.rawSame),
);
info("groups(prefix) / raw", () => ratio(G.groups, E.storeGroups, E.rawSame));
info(
  "purgeExpired 100,000 of 1,000,000 / raw batched DELETE",
  () => ratio(G.purge, E.storePurge, E.rawPurge),
);
info(
  "background purge of the 100,000: time to clear (no listeners)",
  () => `${(results.stall.runs[0]?.durationMs ?? NaN).toFixed(0)} ms`,
);
info(
  "render 20 fields / raw",
  () => ratio(G.render, E.storeRender, E.rawRender),
);
info(
  "background purge stall, p50 / p99 / max per run (no listeners; expire counter)",
  () =>
    results.stall.runs.map((run) =>
      `${run.p50GapMs ?? "-"} / ${run.p99GapMs ?? "-"} / ${run.maxGapMs} ms`
    ).join("; "),
);
info(
  "raw PASSIVE checkpoint after 1,000 rows purged, median / max (synchronous NORMAL; OFF): the floor of one checkpoint slice",
  () =>
    (results.stall.checkpointFloor ?? []).map((floor) =>
      `${floor.medianMs} / ${floor.maxMs} ms`
    ).join("; ") || "not measured",
);
info(
  "event-loop probe alone, longest gap (noise floor)",
  () => `${results.stall.idle.maxGapMs.toFixed(1)} ms`,
);
for (const op of ["get", "set"] as const) {
  const group = op === "get" ? G.sweepGet : G.sweepSet;
  const name = op === "get" ? E.storeGet : E.storeSet;
  const raw = op === "get" ? E.rawGetArray : E.rawUpsert;
  const base = SWEEP_SIZES[0];
  for (const size of SWEEP_SIZES.slice(1)) {
    info(
      `sweep ${op} (file): ${
        size.toLocaleString("en-US")
      } keys / ${base} keys (raw: ${
        (() => {
          try {
            return x(avg(group(size), raw) / avg(group(base), raw));
          } catch {
            return "missing";
          }
        })()
      })`,
      () => avg(group(size), name) / avg(group(base), name),
    );
  }
}

for (const line of lines) {
  const limit = line.limit === undefined ? "" : ` (limit ${line.limit})`;
  console.log(`${line.status} ${line.target} ${line.measured}${limit}`);
}
const failed = lines.filter((line) => line.status === "FAIL").length;
const checked = lines.filter((line) => line.status !== "INFO").length;
console.log(
  `${
    checked - failed
  } of ${checked} targets met (${results.deno}, ${results.date})`,
);

if (markdown) {
  console.log();
  console.log(renderMarkdown());
}

if (failed > 0) Deno.exit(1);

// -------------------------------------------------------------- markdown

function renderMarkdown(): string {
  const out: string[] = [];
  out.push(`Run: ${results.date}, ${results.deno}, ${results.cpu}.`);
  out.push("");
  out.push("| target | measured | limit | result |");
  out.push("| --- | ---: | ---: | --- |");
  for (const line of lines.filter((l) => l.status !== "INFO")) {
    out.push(
      `| ${line.target} | ${line.measured} | ${line.limit} | ${line.status} |`,
    );
  }
  out.push("");
  out.push("| reported ratio | measured |");
  out.push("| --- | ---: |");
  for (const line of lines.filter((l) => l.status === "INFO")) {
    out.push(`| ${line.target} | ${line.measured} |`);
  }
  out.push("");
  out.push(
    "| group | entry | time / baseline's |",
  );
  out.push("| --- | --- | ---: |");
  const groups = [...new Set(results.entries.map((e) => e.group ?? ""))];
  for (const group of groups) {
    const members = results.entries.filter((e) => (e.group ?? "") === group);
    const base = members.find((e) => e.baseline);
    for (const entry of members) {
      const value = base === undefined
        ? "-"
        : entry === base
        ? "1 (baseline)"
        : x(entry.avg / base.avg);
      out.push(`| ${group} | ${entry.name} | ${value} |`);
    }
  }
  return out.join("\n");
}
