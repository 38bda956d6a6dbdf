/**
 * A file `set` and `get` of this module against go-store's, and against raw
 * `node:sqlite`: where the Go sibling's time goes, and what floor both
 * share.
 *
 * The Go side (`bench/go/main.go`) runs go-store's SQL as go-store runs it:
 * `database/sql` with one connection, `journal_mode=WAL` and
 * `busy_timeout=5000` and no other pragma, and each call an `Exec` or
 * `QueryRow` of SQL text, which `database/sql` prepares again on every call
 * (through mattn/go-sqlite3 on the system SQLite; go-store itself links
 * modernc.org/sqlite, which is not available offline). The same Go program
 * also runs the same SQL through statements prepared once, which shows what
 * the preparation costs it. The Deno side runs `Store.set`/`Store.get` and
 * the raw prepared statements on a file set up the same way (WAL, the same
 * `synchronous`). Each side runs in turn, rounds interleaved, and each
 * figure is the best round.
 *
 * Prints one JSON object. Needs Go and go-sqlite3 (`bash
 * tests/go/install_go.sh`); without them it prints `{"missing": "…"}`. Run
 * with:
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-run --allow-env bench/go_store.ts
 * ```
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { Store } from "@core/store";
import { arrays, tempFile, UPSERT } from "./_shared.ts";

const KEYS = 10_000;
const OPS = 10_000;
// With durability full every commit waits for the disk.
const OPS_FULL = 300;
const ROUNDS = 3;
const GROUP = "go";
const key = Array.from({ length: KEYS }, (_, i) => `key-${i}`);

const root = decodeURIComponent(new URL("..", import.meta.url).pathname);

// Offline: Debian's Go source tree in GOPATH mode, as tests/go/ builds.
function goEnv(): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    GOPATH: "/usr/share/gocode",
    GO111MODULE: "off",
    GOFLAGS: "",
    GOCACHE: Deno.env.get("GOCACHE") ?? "/tmp/core-store-gocache",
  };
}

async function buildGo(): Promise<string | undefined> {
  const binary = tempFile("go_store_bench");
  try {
    const output = await new Deno.Command("go", {
      args: ["build", "-tags", "libsqlite3", "-o", binary, "."],
      cwd: `${root}bench/go`,
      env: goEnv(),
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!output.success) {
      console.error(new TextDecoder().decode(output.stderr));
      return undefined;
    }
    return binary;
  } catch {
    return undefined;
  }
}

function seeded(name: string): string {
  const path = tempFile(name);
  using store = new Store(path, { purgeIntervalMs: 0 });
  store.transaction(() => {
    for (const k of key) store.set(GROUP, k, "seed");
  });
  return path;
}

interface GoResult {
  ns: Record<"set" | "get" | "setPrepared" | "getPrepared", number>;
}

async function runGo(
  binary: string,
  path: string,
  synchronous: string,
  ops: number,
): Promise<GoResult> {
  const output = await new Deno.Command(binary, {
    args: [
      ...["-path", path, "-keys", `${KEYS}`, "-ops", `${ops}`, "-rounds", "1"],
      ...["-synchronous", synchronous],
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${binary} exited ${output.code}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

function time(ops: number, fn: (i: number) => void): number {
  const start = performance.now();
  for (let i = 0; i < ops; i++) fn(i);
  return (performance.now() - start) * 1e6 / ops;
}

const binary = await buildGo();
if (binary === undefined) {
  console.log(JSON.stringify({ missing: "go or go-sqlite3" }));
  Deno.exit(0);
}

/** One durability, the same on every side. */
async function compare(durability: "normal" | "full", ops: number) {
  const synchronous = durability.toUpperCase();
  const goPath = seeded(`go-${durability}.db`);
  const store = new Store(seeded(`store-${durability}.db`), {
    purgeIntervalMs: 0,
    durability,
  });
  const raw = new DatabaseSync(seeded(`raw-${durability}.db`));
  raw.exec("PRAGMA journal_mode=WAL");
  raw.exec("PRAGMA busy_timeout=5000");
  raw.exec(`PRAGMA synchronous=${synchronous}`);
  const upsert = raw.prepare(UPSERT);
  const select = arrays(raw.prepare(
    "SELECT entry_value, expires_at FROM entries WHERE group_name = ? AND entry_key = ?",
  ));
  const best: Record<string, number> = {};
  const keep = (name: string, ns: number) => {
    best[name] = Math.min(best[name] ?? Infinity, ns);
  };
  for (let round = 0; round < ROUNDS; round++) {
    const go = await runGo(binary as string, goPath, synchronous, ops);
    for (const [name, ns] of Object.entries(go.ns)) keep(`go.${name}`, ns);
    const v = `round ${round}`;
    const k = (i: number) => key[i % KEYS]!;
    keep("store.set", time(ops, (i) => store.set(GROUP, k(i), `${v} ${i}`)));
    keep(
      "raw.set",
      time(ops, (i) => upsert.run(GROUP, k(i), `${v} ${i}`, null)),
    );
    keep("store.get", time(ops, (i) => store.get(GROUP, k(i))));
    keep("raw.get", time(ops, (i) => select.get(GROUP, k(i))));
  }
  store.close();
  raw.close();
  const ratio = (a: string, b: string) =>
    Math.round((best[a]! / best[b]!) * 100) / 100;
  return {
    durability,
    ns: Object.fromEntries(
      Object.entries(best).map(([name, ns]) => [name, Math.round(ns)]),
    ),
    "go.set / store.set": ratio("go.set", "store.set"),
    "go.get / store.get": ratio("go.get", "store.get"),
    "go.set / raw.set": ratio("go.set", "raw.set"),
    "go.setPrepared / raw.set": ratio("go.setPrepared", "raw.set"),
    "store.set / raw.set": ratio("store.set", "raw.set"),
    "store.get / raw.get": ratio("store.get", "raw.get"),
  };
}

console.log(JSON.stringify({
  normal: await compare("normal", OPS),
  full: await compare("full", OPS_FULL),
}));
