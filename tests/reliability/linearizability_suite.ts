/**
 * A file Store stays linearizable across processes while its writers are
 * SIGKILLed: several `deno run` workers (each its own Store on one file)
 * run random get/set/delete/compareAndSet/increment/getAndDelete on 3 keys,
 * streaming every call and return to this process; a random worker is
 * SIGKILLed every 0.3–1 s and replaced (every other one with the change
 * feed's triggers on, half with `durability: "normal"`, so that the write
 * paths meet on one file), and the whole history is then
 * checked by the Porcupine-style checker of the etcd fault suite. An
 * operation in flight at a kill (called, never returned) is given an unknown
 * outcome: it may have committed or not.
 *
 * The times come from `now()` in each worker: the machine's one monotonic
 * clock plus the wall time the process started at, so every process reads
 * the same clock as long as nobody steps the wall clock. Each worker
 * measures how far its `now()` is from the wall clock when it starts, and
 * this process does at the start and the end of the run (a step during the
 * run would show there); every interval is widened by the largest skew seen
 * (plus 10 µs), so that an order the checker relies on is one that really
 * happened.
 *
 * Needs --allow-run; run by `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import { tempDir } from "../_helpers.ts";
import {
  check,
  clockSkew,
  now,
  type Operation,
  type Verdict,
} from "../fixtures/linearizability.ts";
import type {
  FileWorkerJob,
  FileWorkerLine,
} from "../fixtures/linearizability_file_worker.ts";
import type { OpName } from "../fixtures/linearizability_workload.ts";
import { mulberry32, randomSeed } from "../fixtures/reliability_prng.ts";
import { Store } from "../../mod.ts";

const WORKER = new URL(
  "../fixtures/linearizability_file_worker.ts",
  import.meta.url,
);
const WORKERS = 4;
const KEYS = ["k0", "k1", "k2"];
const OPS: OpName[] = [
  "get",
  "get",
  "set",
  "delete",
  "compareAndSet",
  "compareAndSet",
  "increment",
  "getAndDelete",
];

/** One worker process and what it streamed. */
class Worker {
  readonly client: number;
  readonly lines: FileWorkerLine[] = [];
  /** Bytes after the last newline: a line cut by the kill. */
  cut = "";
  stderr = "";
  killed = false;
  #child: Deno.ChildProcess;
  #read: Promise<void>;
  #exited = false;

  constructor(job: FileWorkerJob) {
    this.client = job.client;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        WORKER.pathname,
        JSON.stringify(job),
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).spawn();
    this.#child.status.then(() => this.#exited = true);
    this.#read = Promise.all([
      this.#lines(),
      new Response(this.#child.stderr).text().then((t) => {
        this.stderr = t;
      }),
    ]).then(() => {});
  }

  async #lines(): Promise<void> {
    const text = this.#child.stdout.pipeThrough(new TextDecoderStream());
    for await (const chunk of text) {
      const parts = (this.cut + chunk).split("\n");
      this.cut = parts.pop()!;
      for (const part of parts) this.lines.push(JSON.parse(part));
    }
  }

  /** It opened its store, runs operations and has not exited. */
  get running(): boolean {
    return !this.killed && !this.#exited && this.lines.length > 1;
  }

  kill(): void {
    this.killed = true;
    this.#child.kill("SIGKILL");
  }

  /** Waits for the exit and the end of both streams. */
  async finish(): Promise<Deno.CommandStatus> {
    const status = await this.#child.status;
    await this.#read;
    return status;
  }
}

/** What a run recorded. */
interface Run {
  seed: number;
  history: Operation[];
  kills: number;
  processes: number;
  /** Reads in flight at a kill: they constrain nothing, so are left out. */
  droppedReads: number;
  errors: string[];
  skew: number;
}

/** Turns the workers' streams into one history. */
function historyOf(workers: readonly Worker[], widen: number): Run["history"] {
  const history: Operation[] = [];
  for (const worker of workers) {
    const calls = new Map<number, Extract<FileWorkerLine, { call: number }>>();
    for (const line of worker.lines) {
      if ("call" in line) calls.set(line.call, line);
      else if ("ret" in line) {
        const call = calls.get(line.ret)!;
        calls.delete(line.ret);
        history.push({
          client: worker.client,
          key: call.key,
          input: call.input,
          output: line.output,
          call: call.at - widen,
          ret: line.at + widen,
        });
      } else if ("error" in line) calls.delete(line.error);
    }
    for (const call of calls.values()) {
      if (call.input.op === "get") continue;
      history.push({
        client: worker.client,
        key: call.key,
        input: call.input,
        output: undefined,
        call: call.at - widen,
        ret: Infinity,
        unknown: true,
      });
    }
  }
  return history;
}

/** Counts what no history holds: reads cut by a kill, and errors. */
function losses(workers: readonly Worker[]) {
  let droppedReads = 0;
  const errors: string[] = [];
  for (const worker of workers) {
    const open = new Map<number, string>();
    for (const line of worker.lines) {
      if ("call" in line) open.set(line.call, line.input.op);
      else if ("ret" in line) open.delete(line.ret);
      else if ("error" in line) {
        open.delete(line.error);
        errors.push(`client ${worker.client}: ${line.message}`);
      }
    }
    for (const op of open.values()) if (op === "get") droppedReads++;
  }
  return { droppedReads, errors };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `WORKERS` workers on one file for `runMs`, SIGKILLing a random
 * running one every 0.3–1 s and starting another in its place.
 */
async function run(runMs: number, broken: boolean): Promise<Run> {
  using dir = tempDir();
  const path = dir.file("lin.db");
  new Store(path).close();
  const seed = randomSeed();
  const random = mulberry32(seed);
  const skews = [clockSkew()];
  const until = now() + runMs;
  const workers: Worker[] = [];
  const start = () => {
    const client = workers.length;
    workers.push(
      new Worker({
        path,
        client,
        seed: seed + client + 1,
        keys: KEYS,
        ops: OPS,
        until,
        broken,
        // Both write paths, and both durabilities, on the one file.
        changeFeed: client % 2 === 1,
        durability: client % 4 < 2 ? "full" : "normal",
      }),
    );
  };
  for (let i = 0; i < WORKERS; i++) start();
  let kills = 0;
  try {
    while (now() < until - 1_000) {
      await sleep(random.int(300, 1_000));
      const running = workers.filter((w) => w.running);
      if (running.length === 0) continue;
      random.pick(running).kill();
      kills++;
      start();
    }
  } finally {
    for (const worker of workers) {
      const status = await worker.finish();
      if (worker.killed && status.signal === "SIGKILL") continue;
      assert.equal(status.code, 0, `worker ${worker.client}: ${worker.stderr}`);
      assert.ok("bye" in worker.lines.at(-1)!, `worker ${worker.client} ends`);
    }
  }
  skews.push(clockSkew());
  for (const worker of workers) {
    const hello = worker.lines[0];
    if (hello !== undefined && "hello" in hello) skews.push(hello.skew);
  }
  const skew = Math.max(...skews.map(Math.abs));
  assert.ok(skew < 1, `the clocks of the processes differ by ${skew} ms`);
  return {
    seed,
    history: historyOf(workers, skew + 0.01),
    kills,
    processes: workers.length,
    skew,
    ...losses(workers),
  };
}

/**
 * Unknown writes of a unique value that a later operation saw: read it, or
 * returned it plus its own delta. A lower bound of those that committed.
 */
function committed(history: readonly Operation[]): number {
  const seen = new Set<string>();
  for (const op of history) {
    if (op.unknown || op.output === undefined) continue;
    seen.add(String(op.output));
    if (op.input.op === "increment") {
      seen.add(String((op.output as number) - op.input.delta));
    }
  }
  return history.filter((op) =>
    op.unknown && "value" in op.input && seen.has(op.input.value)
  ).length;
}

/** Checks the run's history and says in one line what it found. */
function verdictOf(run: Run): Verdict {
  const started = performance.now();
  const verdict = check(run.history);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `seed ${run.seed}: ${verdict.operations} operations from ${run.processes} processes, ${run.kills} SIGKILLs, ${verdict.unknown} unknown outcomes (at least ${
      committed(run.history)
    } seen to have committed), ${run.droppedReads} reads cut by a kill left out, ${run.errors.length} errors${
      run.errors.length === 0 ? "" : ` (${run.errors[0]})`
    }, clock skew ≤ ${
      (run.skew * 1000).toFixed(1)
    } µs, checked in ${seconds} s: ${
      verdict.ok ? "linearizable" : `NOT linearizable (${verdict.detail})`
    }`,
  );
  return verdict;
}

Deno.test("Store stays linearizable across processes while writers are SIGKILLed", async () => {
  const result = await run(9_000, false);
  const verdict = verdictOf(result);
  assert.ok(verdict.ok, `seed ${result.seed}: ${verdict.detail}`);
  assert.deepEqual(result.errors, []);
  assert.ok(result.kills >= 5, `${result.kills} kills`);
  assert.ok(verdict.unknown >= 1, "some kill cut an operation");
  for (const op of OPS) {
    assert.ok(result.history.some((o) => o.input.op === op), `${op} ran`);
  }
});

Deno.test("the cross-process check flags compareAndSet, increment and getAndDelete done as a read, then a write", async () => {
  const result = await run(4_000, true);
  const verdict = verdictOf(result);
  assert.equal(verdict.ok, false, `seed ${result.seed}`);
  assert.match(verdict.detail ?? "", /no order explains/);
});
