/**
 * The command line as a real process: a 1,000,000-key export in bounded
 * memory, and `watch` ended by signals. Needs --allow-run; run by
 * `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Store } from "@core/store";
import { tempDir } from "../_helpers.ts";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;
const CHILD = new URL("../fixtures/cli_child.ts", import.meta.url).pathname;
// Far less than the export's text (about 100 MiB for 1,000,000 keys): an
// export that held its records would die of it.
const HEAP_MIB = 32;

// Rows generated inside SQLite: a million inserts from JavaScript would
// take longer than the export they set up.
function seed(path: string, keys: number): void {
  new Store(path).close();
  const db = new DatabaseSync(path);
  try {
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
      INSERT INTO entries (group_name, entry_key, entry_value, expires_at)
      SELECT 'group-' || (i % 1000), 'key-' || i, 'value ' || i || ' ' || ?,
        CASE WHEN i % 10 = 0 THEN 4102444800000 END
      FROM n`,
    ).run(keys, "x".repeat(40));
  } finally {
    db.close();
  }
}

interface ExportRun {
  code: number;
  lines: number;
  bytes: number;
  peakMiB: number;
  /** Resident set size every 100 ms, in MiB. */
  samples: number[];
  seconds: number;
}

// Runs `export` in a child with a capped heap, counting its output as it
// streams (never holding it), and reads the child's own peak RSS.
async function exportIn(path: string): Promise<ExportRun> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      // All, only because Deno reads /proc/self (the peak RSS) under it.
      "--allow-all",
      `--v8-flags=--max-old-space-size=${HEAP_MIB}`,
      CHILD,
      "export",
      path,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let lines = 0;
  let bytes = 0;
  for await (const chunk of child.stdout) {
    bytes += chunk.length;
    for (const byte of chunk) if (byte === 0x0a) lines++;
  }
  const { code } = await child.status;
  const text = await stderr;
  const peak = /peak-rss-kib (\d+)/.exec(text)?.[1];
  const samples = /rss-mib-samples ([\d,]*)/.exec(text)?.[1];
  assert.ok(peak !== undefined && samples !== undefined, text);
  return {
    code,
    lines,
    bytes,
    peakMiB: Number(peak) / 1024,
    samples: samples.split(",").map(Number),
    seconds: (performance.now() - started) / 1000,
  };
}

Deno.test("cli export streams 1,000,000 keys in bounded memory", async () => {
  using dir = tempDir();
  const small = dir.file("small.db");
  const large = dir.file("large.db");
  seed(small, 1_000);
  seed(large, 1_000_000);
  const baseline = await exportIn(small);
  const run = await exportIn(large);
  // The export runs at a steady pace, so the samples' halves are its first
  // and second 500,000 records: memory that grew with the data would be
  // some 50 MiB higher in the second (and with the heap capped, records held
  // in JavaScript would end the process).
  const half = Math.floor(run.samples.length / 2);
  const first = Math.max(...run.samples.slice(0, half));
  const second = Math.max(...run.samples.slice(half));
  console.log(
    `export, heap capped at ${HEAP_MIB} MiB: 1,000 keys: peak RSS ` +
      `${baseline.peakMiB.toFixed(1)} MiB; 1,000,000 keys ` +
      `(${(run.bytes / 2 ** 20).toFixed(0)} MiB of NDJSON): peak RSS ` +
      `${run.peakMiB.toFixed(1)} MiB, ${run.seconds.toFixed(1)} s; RSS peak ` +
      `in the first half ${first} MiB, in the second ${second} MiB`,
  );
  assert.equal(baseline.code, 0);
  assert.equal(baseline.lines, 1_000);
  assert.equal(run.code, 0);
  assert.equal(run.lines, 1_000_000);
  assert.ok(run.samples.length >= 10, `${run.samples.length} samples`);
  assert.ok(second - first < 24, `RSS grew from ${first} to ${second} MiB`);
  assert.ok(
    run.peakMiB - baseline.peakMiB < 96,
    `peak RSS ${run.peakMiB.toFixed(1)} MiB`,
  );
});

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("cli watch prints another process's writes and exits 0 on SIGINT or SIGTERM", async (t) => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    await t.step(signal, async () => {
      using dir = tempDir();
      const db = dir.file("watched.db");
      new Store(db).close();
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", CLI, "watch", db, "g"],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).spawn();
      let out = "";
      let err = "";
      const read = async (
        stream: ReadableStream<Uint8Array>,
        to: "out" | "err",
      ) => {
        const decoder = new TextDecoder();
        for await (const chunk of stream) {
          const text = decoder.decode(chunk, { stream: true });
          if (to === "out") out += text;
          else err += text;
        }
      };
      const reading = Promise.all([
        read(child.stdout, "out"),
        read(child.stderr, "err"),
      ]);
      await until(() => err.includes("watching"), "watch to be ready");
      {
        using writer = new Store(db);
        writer.set("g", "k", "v");
        writer.set("elsewhere", "k", "v");
        writer.setWithTTL("g", "t", "w", 60_000);
      }
      await until(() => out.split("\n").length >= 3, "two events");
      const sent = performance.now();
      child.kill(signal);
      const { code } = await child.status;
      const exitMs = performance.now() - sent;
      await reading;
      assert.equal(code, 0, err);
      assert.ok(
        exitMs < 5_000,
        `exited ${exitMs.toFixed(0)} ms after ${signal}`,
      );
      const events = out.trimEnd().split("\n").map((line) => JSON.parse(line));
      assert.deepEqual(
        events.map((e) => [e.type, e.group, e.key, e.seq]),
        [["set", "g", "k", 1], ["set", "g", "t", 3]],
      );
      assert.equal(typeof events[1].expiresAt, "number");
    });
  }
});

Deno.test("deno task cli resolves relative paths from the directory it is run in", async () => {
  using dir = tempDir();
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const task = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "--config", config, "cli", ...args],
      cwd: dir.path,
      // deno task keeps an INIT_CWD it inherits, and this suite itself runs
      // under deno task: give the child the one a shell in `dir` would.
      env: { INIT_CWD: dir.path },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const set = await task("set", "rel.db", "config", "theme", "dark");
  assert.equal(set.code, 0, new TextDecoder().decode(set.stderr));
  using store = new Store(dir.file("rel.db"));
  assert.equal(store.get("config", "theme"), "dark");
  const get = await task("get", "rel.db", "config", "theme");
  assert.equal(new TextDecoder().decode(get.stdout), "dark\n");
});
