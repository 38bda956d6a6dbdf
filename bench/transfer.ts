/**
 * Export and import through the store against the same work done directly
 * on `node:sqlite`: reading every live row of a file and writing it as
 * NDJSON, and parsing that NDJSON back into an empty file in transactions of
 * 1,000 rows. Prints each time and the ratio, best of `--runs` (default 3).
 *
 * ```sh
 * deno run --allow-read --allow-write bench/transfer.ts [--keys 200000] [--runs 3]
 * ```
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { fromNdjson, Store, toNdjson } from "@core/store";

const args = new Map<string, string>();
for (let i = 0; i < Deno.args.length; i += 2) {
  args.set(Deno.args[i] as string, Deno.args[i + 1] as string);
}
const KEYS = Number(args.get("--keys") ?? 200_000);
const RUNS = Number(args.get("--runs") ?? 3);
const BATCH = 1_000;
const dir = Deno.makeTempDirSync({ prefix: "core-store-transfer-" });
const source = `${dir}/source.db`;

function seed(path: string, keys: number): void {
  new Store(path).close();
  const db = new DatabaseSync(path);
  db.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
    INSERT INTO entries (group_name, entry_key, entry_value, expires_at)
    SELECT 'group-' || (i % 1000), 'key-' || i, 'value ' || i || ' ' || ?,
      CASE WHEN i % 10 = 0 THEN 4102444800000 END
    FROM n`,
  ).run(keys, "x".repeat(40));
  db.close();
}

// What raw code writes: the same lines from one read transaction.
function rawExport(path: string, out: string): void {
  const db = new DatabaseSync(path, { readOnly: true });
  const file = Deno.openSync(out, {
    write: true,
    create: true,
    truncate: true,
  });
  const encoder = new TextEncoder();
  db.exec("BEGIN");
  let chunk = "";
  for (
    const row of db.prepare(
      "SELECT group_name, entry_key, entry_value, expires_at FROM entries WHERE expires_at IS NULL OR expires_at > ?",
    ).iterate(Date.now())
  ) {
    chunk += JSON.stringify({
      group: row.group_name,
      key: row.entry_key,
      value: row.entry_value,
      expiresAt: row.expires_at,
    }) + "\n";
    if (chunk.length > 65_536) {
      file.writeSync(encoder.encode(chunk));
      chunk = "";
    }
  }
  file.writeSync(encoder.encode(chunk));
  db.exec("COMMIT");
  file.close();
  db.close();
}

async function storeExport(path: string, out: string): Promise<void> {
  using store = new Store(path, { purgeIntervalMs: 0 });
  const file = await Deno.open(out, {
    write: true,
    create: true,
    truncate: true,
  });
  await store.exportEntries().pipeThrough(toNdjson()).pipeTo(file.writable);
}

async function rawImport(input: string, path: string): Promise<void> {
  new Store(path).close();
  const db = new DatabaseSync(path);
  // As the store's default durability.
  db.exec("PRAGMA synchronous = NORMAL");
  const insert = db.prepare(
    "INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = excluded.expires_at",
  );
  const file = await Deno.open(input);
  let n = 0;
  db.exec("BEGIN IMMEDIATE");
  const lines = file.readable.pipeThrough(new TextDecoderStream());
  let rest = "";
  for await (const text of lines) {
    const parts = (rest + text).split("\n");
    rest = parts.pop() as string;
    for (const line of parts) {
      const r = JSON.parse(line);
      insert.run(r.group, r.key, r.value, r.expiresAt);
      if (++n % BATCH === 0) db.exec("COMMIT; BEGIN IMMEDIATE");
    }
  }
  db.exec("COMMIT");
  db.close();
}

async function storeImport(input: string, path: string): Promise<void> {
  using store = new Store(path, { purgeIntervalMs: 0 });
  const file = await Deno.open(input);
  await store.importEntries(file.readable.pipeThrough(fromNdjson()));
}

async function best(fn: (i: number) => unknown): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await fn(i);
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest;
}

seed(source, KEYS);
const rawOut = `${dir}/raw.ndjson`;
const storeOut = `${dir}/store.ndjson`;
const rawExportMs = await best(() => rawExport(source, rawOut));
const storeExportMs = await best(() => storeExport(source, storeOut));
const rawImportMs = await best((i) => rawImport(rawOut, `${dir}/raw-${i}.db`));
const storeImportMs = await best((i) =>
  storeImport(storeOut, `${dir}/store-${i}.db`)
);
Deno.removeSync(dir, { recursive: true });
const row = (name: string, store: number, raw: number) =>
  `| ${name} | ${(store / 1000).toFixed(2)} s | ${
    (raw / 1000).toFixed(2)
  } s | ${(store / raw).toFixed(2)}x |`;
console.log(`${KEYS.toLocaleString("en")} keys, best of ${RUNS}:\n`);
console.log("| operation | store | raw node:sqlite | ratio |");
console.log("| --- | ---: | ---: | ---: |");
console.log(row("export to NDJSON", storeExportMs, rawExportMs));
console.log(row("import from NDJSON", storeImportMs, rawImportMs));
