/**
 * Property 1, concurrent writers: 4 subprocesses (`deno run`) and 4 Workers,
 * each with its own Store on one file, run 5,000 mixed writes each at the
 * same moment. No error may reach a caller (a lock is waited for through
 * `busy_timeout`), every return value must match the writer's own
 * bookkeeping, the final file must hold exactly what the writes imply, and
 * the shared namespace's quotas must hold at every instant sampled.
 *
 * Needs --allow-run; run by `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { ScopedStore, Store } from "../../mod.ts";
import { tempDir } from "../_helpers.ts";
import { linesOf } from "../fixtures/reliability_lines.ts";
import type { OpenCommand } from "../fixtures/reliability_open_race_child.ts";
import {
  expectedOwnState,
  LONG_TTL_MS,
  type MixedJob,
  type MixedReport,
} from "../fixtures/reliability_mixed_writes.ts";

const PROCESS = new URL(
  "../fixtures/reliability_writer_process.ts",
  import.meta.url,
);
const WORKER = new URL(
  "../fixtures/reliability_writer_worker.ts",
  import.meta.url,
);
const OPS = 5_000;
const NAMESPACE = "shared";
const MAX_KEYS = 150;
const MAX_GROUPS = 6;
/**
 * One round per seed, fixed so that a failure's plans replay (the
 * interleaving itself cannot be replayed); each writer derives its own seed.
 */
const ROUNDS: {
  seed: number;
  durability: "normal" | "full";
  busyTimeoutMs: number;
}[] = [
  { seed: 0x5eed_0001, durability: "normal", busyTimeoutMs: 5_000 },
  { seed: 0x5eed_0101, durability: "full", busyTimeoutMs: 5_000 },
  { seed: 0x5eed_0201, durability: "normal", busyTimeoutMs: 5_000 },
  // Every commit synced, and a shorter wait: a writer that only polls the
  // lock (as SQLite's busy handler does, every 100 ms) while seven others
  // keep it busy is starved.
  { seed: 0x5eed_0301, durability: "full", busyTimeoutMs: 1_000 },
];

interface Writer {
  ready: Promise<void>;
  go(): Promise<void>;
  report: Promise<MixedReport>;
  close(): Promise<void>;
}

function processWriter(job: MixedJob): Writer {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      PROCESS.pathname,
      JSON.stringify(job),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = linesOf(child.stdout).getReader();
  const nextLine = async (what: string): Promise<string> => {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(
        `${job.id} ended before ${what}; stderr: ${await stderr}`,
      );
    }
    return value;
  };
  const ready = nextLine("ready").then((line) => {
    if (line !== "ready") throw new Error(`${job.id} said ${line}`);
  });
  const writer = child.stdin.getWriter();
  const report = ready.then(() => nextLine("its report")).then((line) =>
    JSON.parse(line) as MixedReport
  );
  // Awaited only once every writer is ready; never an unhandled rejection.
  report.catch(() => {});
  return {
    ready,
    go: async () => {
      await writer.write(new TextEncoder().encode("go\n"));
      await writer.close();
    },
    report,
    close: async () => {
      await reader.cancel().catch(() => {});
      await writer.close().catch(() => {});
      const status = await child.status;
      const errors = await stderr;
      assert.equal(status.code, 0, `${job.id} exited with stderr: ${errors}`);
    },
  };
}

function workerWriter(job: MixedJob): Writer {
  const worker = new Worker(WORKER, { type: "module" });
  const messages: ((data: unknown) => void)[] = [];
  const failed = new Promise<never>((_, reject) => {
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`${job.id}: ${event.message}`));
    };
  });
  failed.catch(() => {});
  worker.onmessage = (event) => messages.shift()?.(event.data);
  const next = () =>
    Promise.race([
      new Promise<unknown>((resolve) => messages.push(resolve)),
      failed,
    ]);
  const ready = next().then((data) => {
    if (data !== "ready") {
      throw new Error(`${job.id} failed to open: ${JSON.stringify(data)}`);
    }
  });
  worker.postMessage(job);
  const report = ready.then(() => next()) as Promise<MixedReport>;
  report.catch(() => {});
  return {
    ready,
    go: () => {
      worker.postMessage("go");
      return Promise.resolve();
    },
    report,
    close: () => {
      worker.terminate();
      return Promise.resolve();
    },
  };
}

/** Samples the namespace's live keys and groups from its own connection. */
function quotaMonitor(path: string) {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 5000");
  const sample = db.prepare(
    "SELECT count(*) AS keys, count(DISTINCT group_name) AS groups FROM entries WHERE group_name >= ? AND group_name < ?",
  );
  let maxKeys = 0;
  let maxGroups = 0;
  let samples = 0;
  const timer = setInterval(() => {
    const row = sample.get(`${NAMESPACE}:`, `${NAMESPACE};`) as {
      keys: number;
      groups: number;
    };
    maxKeys = Math.max(maxKeys, row.keys);
    maxGroups = Math.max(maxGroups, row.groups);
    samples++;
  }, 2);
  return {
    stop() {
      clearInterval(timer);
      db.close();
      return { maxKeys, maxGroups, samples };
    },
  };
}

function sorted<T>(items: T[]): T[] {
  return items.map((item) => [JSON.stringify(item), item] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, item]) => item);
}

Deno.test("4 processes and 4 Workers writing one file at once lose nothing and keep the quota", async (t) => {
  for (const round of ROUNDS) {
    await t.step(
      `seed ${
        round.seed.toString(16)
      }, durability ${round.durability}, busyTimeoutMs ${round.busyTimeoutMs}`,
      () => raceRound(round.seed, round.durability, round.busyTimeoutMs),
    );
  }
});

async function raceRound(
  seed: number,
  durability: "normal" | "full",
  busyTimeoutMs: number,
): Promise<void> {
  using dir = tempDir();
  // Not created beforehand: the writers also race to create the schema.
  const path = dir.file("race.db");
  const job = (id: string, i: number): MixedJob => ({
    path,
    id,
    seed: seed + i,
    ops: OPS,
    namespace: NAMESPACE,
    maxKeys: MAX_KEYS,
    maxGroups: MAX_GROUPS,
    durability,
    busyTimeoutMs,
  });
  const jobs = [
    ...["p0", "p1", "p2", "p3"].map(job),
    ...["w0", "w1", "w2", "w3"].map((id, i) => job(id, i + 4)),
  ];
  const writers = jobs.map((j) =>
    j.id.startsWith("p") ? processWriter(j) : workerWriter(j)
  );
  let reports: MixedReport[];
  let monitored: { maxKeys: number; maxGroups: number; samples: number };
  const started = performance.now();
  try {
    await Promise.all(writers.map((w) => w.ready));
    const monitor = quotaMonitor(path);
    try {
      await Promise.all(writers.map((w) => w.go()));
      reports = await Promise.all(writers.map((w) => w.report));
    } finally {
      monitored = monitor.stop();
    }
  } finally {
    await Promise.all(writers.map((w) => w.close()));
  }
  const elapsed = Math.round(performance.now() - started);

  // No error reached any caller, and every return value was right.
  assert.deepEqual(reports.flatMap((r) => r.errors), []);
  for (const r of reports) {
    assert.equal(
      Object.values(r.counts).reduce((a, b) => a + b, 0),
      OPS,
      `${r.id} ran every operation`,
    );
  }

  const db = new DatabaseSync(path);
  try {
    assert.deepEqual(
      db.prepare("PRAGMA integrity_check").all().map((r) => ({ ...r })),
      [{ integrity_check: "ok" }],
    );

    // Own keys: exactly what the plans imply.
    const expected = new Map<string, [string, boolean]>();
    for (const j of jobs) {
      for (const [k, v] of expectedOwnState(j)) expected.set(k, v);
    }
    const own = db.prepare(
      "SELECT group_name AS grp, entry_key AS key, entry_value AS value, expires_at IS NOT NULL AS ttl FROM entries WHERE group_name NOT LIKE 'shared:%'",
    ).all() as { grp: string; key: string; value: string; ttl: number }[];
    assert.deepEqual(
      sorted(own.map((r) => [`${r.grp}\t${r.key}`, r.value, r.ttl === 1])),
      sorted([...expected].map(([k, [v, ttl]]) => [k, v, ttl])),
    );

    // Scoped keys: exactly the ones each writer saw stored and not deleted.
    const scoped = db.prepare(
      "SELECT substr(group_name, 8) AS grp, entry_key AS key, entry_value AS value FROM entries WHERE group_name LIKE 'shared:%'",
    ).all() as { grp: string; key: string; value: string }[];
    assert.deepEqual(
      sorted(scoped.map((r) => [r.grp, r.key, r.value])),
      sorted(reports.flatMap((r) => r.scopedLive)),
    );
    const groups = new Set(scoped.map((r) => r.grp)).size;
    assert.ok(scoped.length <= MAX_KEYS, `${scoped.length} keys`);
    assert.ok(groups <= MAX_GROUPS, `${groups} groups`);
    assert.ok(monitored.maxKeys <= MAX_KEYS, `saw ${monitored.maxKeys} keys`);
    assert.ok(
      monitored.maxGroups <= MAX_GROUPS,
      `saw ${monitored.maxGroups} groups`,
    );
    // The race was real: the quota was reached and writes were refused.
    const refused = reports.reduce((n, r) => n + r.refused, 0);
    assert.ok(refused > 0, "some scoped writes were refused");
    assert.ok(monitored.maxKeys === MAX_KEYS || groups === MAX_GROUPS);

    // The trigger-kept counts the quota relies on agree with the rows.
    const stats = db.prepare(
      "SELECT keys, groups FROM kv_namespace_stats WHERE ns = ?",
    ).get(NAMESPACE);
    assert.deepEqual({ ...stats }, { keys: scoped.length, groups });

    // TTL keys are live now and gone after their hour.
    const ttlKeys = [...expected.values()].filter(([, ttl]) => ttl).length;
    let now = Date.now();
    using store = new Store(path, { clock: () => now, purgeIntervalMs: 0 });
    const scope = new ScopedStore(store, NAMESPACE);
    assert.equal(store.countAll("g"), expected.size);
    assert.equal(scope.countAll(), scoped.length);
    now += LONG_TTL_MS + 60_000;
    assert.equal(store.countAll("g"), expected.size - ttlKeys);

    console.log(
      `  8 writers × ${OPS} ops in ${elapsed} ms (writers: ${
        reports.map((r) => `${r.id} ${r.elapsedMs} ms`).join(", ")
      }); ${expected.size} own keys (${ttlKeys} with TTL), ${scoped.length}/${MAX_KEYS} scoped keys in ${groups}/${MAX_GROUPS} groups, ${refused} scoped writes refused; quota sampled ${monitored.samples} times, max ${monitored.maxKeys} keys / ${monitored.maxGroups} groups`,
    );
  } finally {
    db.close();
  }
}

const OPEN_RACE = new URL(
  "../fixtures/reliability_open_race_child.ts",
  import.meta.url,
);
const OPEN_ROUNDS = 50;

interface Racer {
  open(command: OpenCommand): Promise<string>;
  close(): Promise<void>;
}

function processRacer(): Racer {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", OPEN_RACE.pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = linesOf(child.stdout).getReader();
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  return {
    async open(command) {
      await writer.write(encoder.encode(`${JSON.stringify(command)}\n`));
      const { value, done } = await reader.read();
      if (done) throw new Error(`the racer died: ${await stderr}`);
      return JSON.parse(value) as string;
    },
    async close() {
      await writer.write(encoder.encode("exit\n")).catch(() => {});
      await writer.close().catch(() => {});
      await reader.cancel().catch(() => {});
      const status = await child.status;
      assert.equal(status.code, 0, await stderr);
    },
  };
}

function workerRacer(): Racer {
  const worker = new Worker(OPEN_RACE, { type: "module" });
  let pending: ((answer: string) => void) | undefined;
  let failure: Error | undefined;
  worker.onmessage = (event) => pending?.(event.data as string);
  worker.onerror = (event) => {
    event.preventDefault();
    failure = new Error(event.message);
    pending?.(`the Worker failed: ${event.message}`);
  };
  return {
    open(command) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve) => {
        pending = resolve;
        worker.postMessage(command);
      });
    },
    close() {
      worker.terminate();
      return Promise.resolve();
    },
  };
}

Deno.test("4 processes and 4 Workers opening one new file at the same instant all succeed", async () => {
  using dir = tempDir();
  const racers = [
    ...Array.from({ length: 4 }, processRacer),
    ...Array.from({ length: 4 }, workerRacer),
  ];
  const failures: string[] = [];
  const started = performance.now();
  try {
    // A first round, not raced, lets every racer load and compile.
    await Promise.all(
      racers.map((racer, i) =>
        racer.open({ path: dir.file("warm.db"), at: 0, id: `r${i}` })
      ),
    );
    for (let round = 0; round < OPEN_ROUNDS; round++) {
      const path = dir.file(`open-${round}.db`);
      const at = Date.now() + 40;
      const answers = await Promise.all(
        racers.map((racer, i) => racer.open({ path, at, id: `r${i}` })),
      );
      answers.forEach((answer, i) => {
        if (answer !== "ok") {
          failures.push(
            `round ${round}, ${i < 4 ? "process" : "Worker"} r${i}: ${answer}`,
          );
        }
      });
      if (failures.length === 0) {
        using store = new Store(path, { purgeIntervalMs: 0 });
        assert.equal(store.count("plain"), racers.length, path);
        assert.equal(new ScopedStore(store, "race").countAll(), 4, path);
      }
    }
  } finally {
    await Promise.all(racers.map((racer) => racer.close()));
  }
  console.log(
    `  ${OPEN_ROUNDS} rounds × ${racers.length} simultaneous opens of a new file in ${
      Math.round(performance.now() - started)
    } ms; ${failures.length} failed`,
  );
  assert.deepEqual(failures, []);
});
