/**
 * The etcd store's atomic operations race for real on the local cluster:
 * separate processes, each with its own `EtcdStore` (own client, own write
 * markers), call them at the same moment; then increments run while the
 * leader is SIGKILLed and restarted. Every count is handed out once, every
 * key won once, every token taken once, no compare-and-set addition lost,
 * and an increment whose outcome is unknown says so instead of counting
 * twice.
 *
 * Needs --allow-run and the cluster; run by `deno task test:etcd`.
 */
import assert from "node:assert/strict";
import { StoreUnavailableError } from "@core/store";
import { EtcdStore } from "@core/store/etcd";
import { assertCountsOnce, winnersOf } from "../_helpers.ts";
import { endpoints, freshPrefix, kill, leader, restart } from "./_cluster.ts";
import type { EtcdRaceJob, EtcdRaceReport } from "./fixtures/atomic_racer.ts";

const RACER = new URL("./fixtures/atomic_racer.ts", import.meta.url);
const TIME_LIMIT_MS = 120_000;

function racer(job: EtcdRaceJob): Promise<EtcdRaceReport> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", RACER.pathname, JSON.stringify(job)],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIME_LIMIT_MS + 10_000),
  }).output().then((output) => {
    const err = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `racer ${job.id} failed: ${err}`);
    const report = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(report.timedOut, false, `racer ${job.id} ran out of time`);
    return report;
  });
}

/** Starts `n` racer processes at one moment on one prefix. */
function raceAll(
  kind: EtcdRaceJob["kind"],
  prefix: string,
  n: number,
  count: number,
): Promise<EtcdRaceReport[]> {
  // Time for every `deno run` to start before the common moment.
  const startAt = Date.now() + 3_000;
  const stopAt = startAt + TIME_LIMIT_MS;
  return Promise.all(
    Array.from({ length: n }, (_, id) =>
      racer({
        kind,
        endpoints: endpoints(),
        prefix,
        id,
        count,
        startAt,
        stopAt,
      })),
  );
}

async function open(prefix: string, requestTimeoutMs = 10_000) {
  return await EtcdStore.open({
    endpoints: endpoints(),
    prefix,
    purgeIntervalMs: 0,
    requestTimeoutMs,
  });
}

// 4 x 1,000 takes 60 to 90 s on a loaded 2-core machine (every conflict is
// a raft write: the marker records it); ETCD_RACE_INCREMENTS runs fewer.
const INCREMENTS = Number(Deno.env.get("ETCD_RACE_INCREMENTS") ?? "1000");

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

Deno.test("EtcdStore.increment hands every count out exactly once to racing processes", async () => {
  const prefix = freshPrefix();
  const reports = await raceAll("increment", prefix, 4, INCREMENTS);
  assertCountsOnce(reports, 4 * INCREMENTS);
  await using store = await open(prefix);
  assert.equal(await store.get("race", "n"), String(4 * INCREMENTS));
});

Deno.test("EtcdStore.setIfAbsent lets exactly one racing process win each key", async () => {
  const prefix = freshPrefix();
  const reports = await raceAll("setIfAbsent", prefix, 4, 300);
  await using store = await open(prefix);
  const winners = winnersOf(reports);
  assert.equal(winners.size, 300);
  const stored = await store.getAll("race");
  assert.equal(stored.size, 300);
  for (const [key, id] of winners) {
    assert.equal(stored.get(key), `p${id}`, `${key} holds its winner`);
  }
});

Deno.test("EtcdStore.getAndDelete hands each token to exactly one racing process", async () => {
  const prefix = freshPrefix();
  {
    await using store = await open(prefix);
    for (let i = 0; i < 500; i += 50) {
      await Promise.all(
        range(50).map((j) =>
          store.set("race", `t${i + j - 1}`, `v${i + j - 1}`)
        ),
      );
    }
    assert.equal((await store.getAll("race")).size, 500);
  }
  const reports = await raceAll("getAndDelete", prefix, 4, 500);
  const taken = reports.flatMap((r) => r.results as string[]);
  assert.equal(taken.length, 500);
  assert.equal(new Set(taken).size, 500);
  await using store = await open(prefix);
  assert.equal((await store.getAll("race")).size, 0);
});

Deno.test("EtcdStore.compareAndSet loops of racing processes lose no addition", async () => {
  const prefix = freshPrefix();
  const reports = await raceAll("compareAndSet", prefix, 3, 300);
  const tries = reports.flatMap((r) => r.results as number[]);
  assert.equal(tries.length, 900, "every loop ended in a swap");
  assert.ok(tries.some((n) => n > 1), "the loops did race");
  await using store = await open(prefix);
  assert.equal(await store.get("race", "total"), "900");
});

Deno.test("EtcdStore.increment never counts twice when the leader is SIGKILLed and restarted", async () => {
  const prefix = freshPrefix();
  const lead = await leader();
  const urls = endpoints();
  const others = [1, 2, 3].filter((i) => i !== lead);
  // Two instances with their own clients, both talking to the leader
  // first, with a timeout short enough that some answers are lost.
  const stores = await Promise.all([0, 1].map(() =>
    EtcdStore.open({
      endpoints: [lead, ...others].map((i) => urls[i - 1]!),
      prefix,
      purgeIntervalMs: 0,
      requestTimeoutMs: 1_000,
    })
  ));
  const acked: number[] = [];
  let unknown = 0;
  let notApplied = 0;
  const PER_STORE = 300;
  const stopAt = Date.now() + 60_000;
  let done = 0;
  const loop = async (store: EtcdStore) => {
    for (let i = 0; i < PER_STORE && Date.now() < stopAt; i++) {
      try {
        acked.push(await store.increment("fault", "n"));
      } catch (error) {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        if (error.outcome === "unknown") unknown++;
        else notApplied++;
      }
      done++;
    }
  };
  const until = async (n: number) => {
    while (done < n && Date.now() < stopAt) {
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  // The leader dies twice: once mid-run, then whichever member leads next.
  const killed: number[] = [];
  const faults = async () => {
    for (const [at, back] of [[100, 250], [350, 500]] as const) {
      await until(at);
      const victim = killed.length === 0 ? lead : await leader();
      killed.push(victim);
      await kill(victim);
      await until(back);
      await restart(victim);
    }
  };
  try {
    await Promise.all([...stores.map(loop), faults()]);
    for (const i of killed) await restart(i);
    const final = Number(await stores[0]!.get("fault", "n"));
    console.log(
      `leaders m${
        killed.join(", m")
      } killed and restarted: ${acked.length} acknowledged, ${unknown} unknown, ${notApplied} not applied, final ${final}`,
    );
    assert.equal(
      new Set(acked).size,
      acked.length,
      "a count was handed out twice",
    );
    assert.ok(
      acked.every((n) => n >= 1 && n <= final),
      "a count past the final value",
    );
    // Every count up to the final value was handed out once: to an
    // acknowledged caller, or to one told its outcome is unknown.
    assert.ok(final >= acked.length, "an acknowledged increment was lost");
    assert.ok(
      final - acked.length <= unknown,
      `${
        final - acked.length
      } increments applied without an answer, only ${unknown} unknown`,
    );
    assert.equal(killed.length, 2, "both kills happened mid-run");
    assert.ok(acked.length >= PER_STORE, `only ${acked.length} acknowledged`);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
    for (const i of [1, 2, 3]) await restart(i).catch(() => {});
  }
});
