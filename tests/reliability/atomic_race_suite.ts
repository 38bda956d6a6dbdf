/**
 * The atomic operations race for real: several subprocesses (and Workers),
 * each with its own Store on one file, call them at the same moment.
 * Whatever the interleaving, every count is handed out once, every key is
 * won once, every token is taken once, and compare-and-set loops lose no
 * addition.
 *
 * Needs --allow-run; run by `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import { Store } from "../../mod.ts";
import { assertCountsOnce, tempDir, winnersOf } from "../_helpers.ts";
import type { RaceJob, RaceReport } from "../fixtures/atomic_race_child.ts";

const CHILD = new URL("../fixtures/atomic_race_child.ts", import.meta.url);
const TIME_LIMIT_MS = 120_000;

function inProcess(job: RaceJob): Promise<RaceReport> {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      CHILD.pathname,
      JSON.stringify(job),
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIME_LIMIT_MS),
  }).output().then((output) => {
    const err = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `racer ${job.id} failed: ${err}`);
    return JSON.parse(new TextDecoder().decode(output.stdout));
  });
}

function inWorker(job: RaceJob): Promise<RaceReport> {
  const worker = new Worker(CHILD, { type: "module" });
  return new Promise<RaceReport>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`worker racer ${job.id} timed out`)),
      TIME_LIMIT_MS,
    );
    worker.onmessage = (e: MessageEvent<RaceReport>) => {
      clearTimeout(timer);
      resolve(e.data);
    };
    worker.onerror = (e) => {
      clearTimeout(timer);
      e.preventDefault();
      reject(new Error(`worker racer ${job.id}: ${e.message}`));
    };
    worker.postMessage(job);
  }).finally(() => worker.terminate());
}

/** Starts the racers at one moment: subprocesses first, then Workers. */
async function raceAll(
  base: Omit<RaceJob, "id" | "startAt">,
  processes: number,
  workers = 0,
): Promise<RaceReport[]> {
  // Time for every `deno run` to start before the common moment.
  const startAt = Date.now() + 2_500;
  const jobs = Array.from(
    { length: processes + workers },
    (_, id) => ({ ...base, id, startAt }),
  );
  return await Promise.all(
    jobs.map((job) => job.id < processes ? inProcess(job) : inWorker(job)),
  );
}

Deno.test("Store.increment hands every count out exactly once to racing processes", async (t) => {
  for (const changeFeed of [false, true]) {
    await t.step(changeFeed ? "with the change feed" : "plain", async () => {
      using dir = tempDir();
      const path = dir.file("race.db");
      new Store(path).close();
      const reports = await raceAll(
        { kind: "increment", path, count: 1_000, changeFeed },
        4,
      );
      assertCountsOnce(reports, 4_000);
      using store = new Store(path);
      assert.equal(store.get("race", "n"), "4000");
    });
  }
  await t.step("two processes and two Workers", async () => {
    using dir = tempDir();
    const path = dir.file("race.db");
    new Store(path).close();
    const reports = await raceAll(
      { kind: "increment", path, count: 1_000, changeFeed: true },
      2,
      2,
    );
    const all = reports.flatMap((r) => r.results as number[]);
    assert.deepEqual(
      all.sort((a, b) => a - b),
      Array.from({ length: 4_000 }, (_, i) => i + 1),
    );
  });
});

Deno.test("Store.setIfAbsent lets exactly one racing process win each key", async () => {
  using dir = tempDir();
  const path = dir.file("race.db");
  new Store(path).close();
  const reports = await raceAll(
    { kind: "setIfAbsent", path, count: 300, changeFeed: false },
    4,
  );
  using store = new Store(path);
  const winners = winnersOf(reports);
  assert.equal(winners.size, 300);
  for (const [key, id] of winners) {
    assert.equal(store.get("race", key), `p${id}`, `${key} holds its winner`);
  }
});

Deno.test("Store.getAndDelete hands each token to exactly one racing process", async () => {
  using dir = tempDir();
  const path = dir.file("race.db");
  {
    using store = new Store(path);
    store.transaction((tx) => {
      for (let i = 0; i < 500; i++) tx.set("race", `t${i}`, `v${i}`);
    });
  }
  const reports = await raceAll(
    { kind: "getAndDelete", path, count: 500, changeFeed: false },
    4,
  );
  const taken = reports.flatMap((r) => r.results as string[]);
  assert.equal(taken.length, 500);
  assert.equal(new Set(taken).size, 500);
  using store = new Store(path);
  assert.equal(store.count("race"), 0);
});

Deno.test("Store.compareAndSet loops of racing processes lose no addition", async () => {
  using dir = tempDir();
  const path = dir.file("race.db");
  new Store(path).close();
  const reports = await raceAll(
    { kind: "compareAndSet", path, count: 400, changeFeed: false },
    3,
  );
  using store = new Store(path);
  assert.equal(store.get("race", "total"), "1200");
  const tries = reports.flatMap((r) => r.results as number[]);
  assert.equal(tries.length, 1_200);
  assert.ok(tries.every((n) => n >= 1));
});
