/**
 * Property 2, crash safety: a child process writes and prints each key once
 * its write has returned; the test kills it with SIGKILL at a seeded random
 * moment, reopens the file and finds every printed key with its value, and
 * `PRAGMA integrity_check` says "ok". 20 kills with single writes and 20 with
 * transactions (all of a transaction or none of it), alternating the
 * `"full"` and `"normal"` durability: a SIGKILL is a process crash, which
 * WAL with `synchronous=NORMAL` survives too (only a power loss or OS crash
 * may cost it the last commits).
 *
 * Needs --allow-run; run by `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as delay } from "node:timers/promises";
import { Store } from "../../mod.ts";
import { tempDir } from "../_helpers.ts";
import { BATCH_ROWS, crashValue } from "../fixtures/reliability_crash_child.ts";
import { linesOf } from "../fixtures/reliability_lines.ts";
import { mulberry32 } from "../fixtures/reliability_prng.ts";

const CHILD = new URL(
  "../fixtures/reliability_crash_child.ts",
  import.meta.url,
);
const RUNS = 20;
const SEED = 0xc0ffee;

interface Crash {
  /** Every line the child printed before it died. */
  printed: string[];
  /** How many lines were read when the kill was sent. */
  killedAfter: number;
}

/** Runs the child until `killAfter` lines (plus `delayMs`), then kills it. */
async function crash(
  path: string,
  mode: "set" | "tx",
  durability: "normal" | "full",
  killAfter: number,
  delayMs: number,
): Promise<Crash> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      CHILD.pathname,
      path,
      mode,
      durability,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = linesOf(child.stdout).getReader();
  const printed: string[] = [];
  try {
    while (printed.length < killAfter) {
      const { value, done } = await reader.read();
      if (done) break;
      printed.push(value);
    }
    // Meanwhile the child goes on writing: the kill lands anywhere.
    if (delayMs > 0) await delay(delayMs);
  } finally {
    child.kill("SIGKILL");
  }
  const killedAfter = printed.length;
  const status = await child.status;
  // Lines printed before the kill and not read yet are committed too.
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    printed.push(value);
  }
  const errors = await stderr;
  assert.equal(status.signal, "SIGKILL", `the child died early: ${errors}`);
  assert.ok(killedAfter >= killAfter, `the child stopped early: ${errors}`);
  return { printed, killedAfter };
}

function integrity(path: string): string {
  const db = new DatabaseSync(path);
  try {
    return db.prepare("PRAGMA integrity_check").all()
      .map((row) => String(row.integrity_check)).join("\n");
  } finally {
    db.close();
  }
}

Deno.test("a writer killed with SIGKILL loses no set that returned", async () => {
  using dir = tempDir();
  const random = mulberry32(SEED);
  console.log(`  seed ${SEED}`);
  const summary: string[] = [];
  const started = performance.now();
  for (let run = 0; run < RUNS; run++) {
    const durability = run % 2 === 0 ? "full" : "normal";
    const path = dir.file(`set-${run}.db`);
    const killAfter = random.int(1, 300);
    const delayMs = random.chance(0.5) ? random.int(1, 20) : 0;
    const { printed, killedAfter } = await crash(
      path,
      "set",
      durability,
      killAfter,
      delayMs,
    );
    const context =
      `run ${run} (${durability}, killed after ${killedAfter} lines + ${delayMs} ms)`;

    assert.equal(integrity(path), "ok", context);
    // Raw rows: the keys present are exactly k0..k(m-1), every value whole.
    const rows = new Map<number, [string, boolean]>();
    {
      const db = new DatabaseSync(path);
      for (
        const row of db.prepare(
          "SELECT entry_key AS key, entry_value AS value, expires_at FROM entries WHERE group_name = 'crash'",
        ).all()
      ) {
        rows.set(Number(String(row.key).slice(1)), [
          String(row.value),
          row.expires_at !== null,
        ]);
      }
      db.close();
    }
    for (let i = 0; i < rows.size; i++) {
      assert.deepEqual(rows.get(i), [crashValue(i), i % 4 === 3], context);
    }
    // Every printed key, through the store.
    using store = new Store(path, { purgeIntervalMs: 0 });
    for (const line of printed) {
      const i = Number(line.slice(1));
      assert.equal(
        store.get("crash", line),
        crashValue(i),
        `${context}: ${line}`,
      );
    }
    assert.equal(store.count("crash"), rows.size, context);
    assert.ok(rows.size >= printed.length, context);
    summary.push(`${printed.length}/${rows.size}`);
  }
  console.log(
    `  ${RUNS} kills survived in ${
      Math.round(performance.now() - started)
    } ms; printed/committed keys per run: ${summary.join(" ")}`,
  );
});

Deno.test("a transaction killed with SIGKILL is kept whole or not at all", async () => {
  using dir = tempDir();
  const random = mulberry32(SEED + 1);
  console.log(`  seed ${SEED + 1}`);
  const summary: string[] = [];
  const started = performance.now();
  for (let run = 0; run < RUNS; run++) {
    const durability = run % 2 === 0 ? "full" : "normal";
    const path = dir.file(`tx-${run}.db`);
    const killAfter = random.int(1, 25);
    const delayMs = random.chance(0.5) ? random.int(1, 20) : 0;
    const { printed, killedAfter } = await crash(
      path,
      "tx",
      durability,
      killAfter,
      delayMs,
    );
    const context =
      `run ${run} (${durability}, killed after ${killedAfter} lines + ${delayMs} ms)`;

    assert.equal(integrity(path), "ok", context);
    using store = new Store(path, { purgeIntervalMs: 0 });
    const batches = Number(store.get("meta", "batches") ?? "0");
    // Every printed batch committed; the rows are exactly the committed
    // batches' rows, so no transaction was kept in part.
    assert.ok(batches >= printed.length, context);
    assert.deepEqual(
      printed,
      Array.from({ length: printed.length }, (_, n) => `b${n}`),
    );
    assert.equal(store.count("rows"), batches * BATCH_ROWS, context);
    assert.equal(
      store.get("meta", "hot"),
      batches === 0 ? undefined : String(batches - 1),
      context,
    );
    for (let n = 0; n < batches; n++) {
      for (let j = 0; j < BATCH_ROWS; j++) {
        assert.equal(
          store.get("rows", `b${n}:${j}`),
          crashValue(n * BATCH_ROWS + j),
          `${context}: b${n}:${j}`,
        );
      }
    }
    summary.push(`${printed.length}/${batches}`);
  }
  console.log(
    `  ${RUNS} kills survived in ${
      Math.round(performance.now() - started)
    } ms; printed/committed transactions per run: ${summary.join(" ")}`,
  );
});
