/**
 * Benchmarks of {@linkcode Store} against the same SQL run directly on
 * `node:sqlite` with prepared statements. In every group the raw
 * `node:sqlite` entry is the baseline, so `deno bench` prints how many times
 * slower (or faster) the store is than the bare database work.
 *
 * Run with:
 *
 * ```sh
 * deno bench --allow-read --allow-write bench/
 * ```
 *
 * All data is deterministic: keys and values are precomputed and each
 * measured function walks them with a counter.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { Store } from "@core/store";

// The exact table the store (and its Go sibling) writes. The store also adds
// a partial index on expires_at (WHERE expires_at IS NOT NULL), which rows
// without expiry, as here, never enter; the raw baselines do without it.
const DDL = `CREATE TABLE kv (
  grp TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (grp, key)
)`;

const UPSERT = `INSERT INTO kv (grp, key, value, expires_at) VALUES (?, ?, ?, ?)
  ON CONFLICT(grp, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`;
const SELECT_ONE = "SELECT value FROM kv WHERE grp = ? AND key = ?";
const SELECT_GROUP = "SELECT key, value FROM kv WHERE grp = ? ORDER BY key";

/** Number of keys present before every measurement. */
const N = 10_000;
/** Keys spread over 100 groups of 100 keys, for `set`, `get` and file sets. */
const GROUPS: string[] = [];
const KEYS: string[] = [];
const VALUES: string[] = [];
for (let i = 0; i < N; i++) {
  GROUPS.push(`user:${(i % 100).toString().padStart(3, "0")}`);
  KEYS.push(`field-${i.toString().padStart(5, "0")}`);
  VALUES.push(`value number ${i} with some payload text`);
}
/** A group holding all N keys, for `getAll`. */
const BIG_GROUP = "big";

// node:sqlite's type declarations predate setReturnArrays().
type ArrayStatement = StatementSync & {
  setReturnArrays(enabled: boolean): void;
};

function arrays(statement: StatementSync): StatementSync {
  (statement as ArrayStatement).setReturnArrays(true);
  return statement;
}

// Everything opened here is closed (and the temp dir removed) at exit.
const cleanups: (() => void)[] = [];
globalThis.addEventListener("unload", () => {
  for (const cleanup of cleanups.reverse()) cleanup();
});

function openStore(
  path = ":memory:",
  durability: "normal" | "full" = "normal",
): Store {
  const store = new Store(path, { purgeIntervalMs: 0, durability });
  cleanups.push(() => store.close());
  return store;
}

function openRaw(
  path = ":memory:",
  synchronous?: "NORMAL" | "FULL",
): DatabaseSync {
  const db = new DatabaseSync(path);
  if (synchronous === undefined) {
    db.exec(DDL);
  } else {
    // A file, already created and seeded by seedFile().
    db.exec("PRAGMA journal_mode=WAL");
    db.exec(`PRAGMA synchronous=${synchronous}`);
  }
  cleanups.push(() => db.close());
  return db;
}

/** Inserts the N rows `rows(i)` in one transaction. */
function seed(db: DatabaseSync, rows: (i: number) => [string, string, string]) {
  const insert = db.prepare(UPSERT);
  db.exec("BEGIN");
  for (let i = 0; i < N; i++) insert.run(...rows(i), null);
  db.exec("COMMIT");
}

const spread = (i: number): [string, string, string] => [
  GROUPS[i]!,
  KEYS[i]!,
  VALUES[i]!,
];
const oneGroup = (i: number): [string, string, string] => [
  BIG_GROUP,
  KEYS[i]!,
  VALUES[i]!,
];

/**
 * Seeds a database file through a connection of its own, then closes it, so
 * that the WAL is checkpointed and removed: the store's file and the raw one
 * start the measurement in the same state. `createTable` is false for a file
 * the store already created (with its table and expiry index).
 */
function seedFile(path: string, createTable: boolean) {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL");
  if (createTable) db.exec(DDL);
  seed(db, spread);
  db.close();
}

// ---------------------------------------------------------------- set

{
  const store = openStore();
  for (let i = 0; i < N; i++) store.set(GROUPS[i]!, KEYS[i]!, VALUES[i]!);
  const raw = openRaw();
  seed(raw, spread);
  const upsert = raw.prepare(UPSERT);

  let s = 0;
  Deno.bench({
    group: "set",
    name: "Store.set (:memory:)",
    fn() {
      const i = s;
      s = i + 1 === N ? 0 : i + 1;
      store.set(GROUPS[i]!, KEYS[i]!, VALUES[N - 1 - i]!);
    },
  });
  let r = 0;
  Deno.bench({
    group: "set",
    name: "raw node:sqlite upsert (:memory:)",
    baseline: true,
    fn() {
      const i = r;
      r = i + 1 === N ? 0 : i + 1;
      upsert.run(GROUPS[i]!, KEYS[i]!, VALUES[N - 1 - i]!, null);
    },
  });
}

// ---------------------------------------------------------------- get

{
  const store = openStore();
  for (let i = 0; i < N; i++) store.set(GROUPS[i]!, KEYS[i]!, VALUES[i]!);
  const raw = openRaw();
  seed(raw, spread);
  const selectObject = raw.prepare(SELECT_ONE);
  const selectArray = arrays(raw.prepare(SELECT_ONE));

  let s = 0;
  Deno.bench({
    group: "get",
    name: "Store.get (:memory:)",
    fn() {
      const i = s;
      s = i + 1 === N ? 0 : i + 1;
      if (store.get(GROUPS[i]!, KEYS[i]!) === undefined) {
        throw new Error("miss");
      }
    },
  });
  let o = 0;
  Deno.bench({
    group: "get",
    name: "raw node:sqlite .get() row object",
    fn() {
      const i = o;
      o = i + 1 === N ? 0 : i + 1;
      const row = selectObject.get(GROUPS[i]!, KEYS[i]!);
      if (row?.value === undefined) throw new Error("miss");
    },
  });
  let a = 0;
  Deno.bench({
    group: "get",
    name: "raw node:sqlite .get() setReturnArrays",
    baseline: true,
    fn() {
      const i = a;
      a = i + 1 === N ? 0 : i + 1;
      const row = selectArray.get(GROUPS[i]!, KEYS[i]!) as unknown as
        | [string]
        | undefined;
      if (row?.[0] === undefined) throw new Error("miss");
    },
  });
}

// ---------------------------------------------------------------- getAll

{
  const store = openStore();
  for (let i = 0; i < N; i++) store.set(BIG_GROUP, KEYS[i]!, VALUES[i]!);
  const raw = openRaw();
  seed(raw, oneGroup);
  const allArrays = arrays(raw.prepare(SELECT_GROUP));
  const allObjects = raw.prepare(SELECT_GROUP);

  Deno.bench({
    group: "getAll",
    name: "Store.getAll (10,000-key group)",
    fn() {
      if (store.getAll(BIG_GROUP).size !== N) throw new Error("short");
    },
  });
  Deno.bench({
    group: "getAll",
    name: "raw node:sqlite .all() setReturnArrays",
    baseline: true,
    fn() {
      if (allArrays.all(BIG_GROUP).length !== N) throw new Error("short");
    },
  });
  Deno.bench({
    group: "getAll",
    name: "raw node:sqlite .all() row objects (reference)",
    fn() {
      if (allObjects.all(BIG_GROUP).length !== N) throw new Error("short");
    },
  });
  Deno.bench({
    group: "getAll",
    name: "raw node:sqlite .all() setReturnArrays + Map (reference)",
    fn() {
      const rows = allArrays.all(BIG_GROUP) as unknown as [string, string][];
      const map = new Map<string, string>();
      for (const row of rows) map.set(row[0], row[1]);
      if (map.size !== N) throw new Error("short");
    },
  });
}

// ---------------------------------------------------------------- file set

const dir = Deno.makeTempDirSync({ prefix: "store_bench_" });
// Registered first, so it runs last: after every connection is closed.
cleanups.unshift(() => Deno.removeSync(dir, { recursive: true }));

for (const durability of ["normal", "full"] as const) {
  const group = durability === "normal" ? "file set" : "file set (full)";
  const synchronous = durability === "normal" ? "NORMAL" : "FULL";
  const storePath = `${dir}/store-${durability}.db`;
  const rawPath = `${dir}/raw-${durability}.db`;
  openStore(storePath).close(); // creates the file, its table and index
  seedFile(storePath, false);
  seedFile(rawPath, true);
  const store = openStore(storePath, durability);
  const raw = openRaw(rawPath, synchronous);
  const upsert = raw.prepare(UPSERT);

  let s = 0;
  Deno.bench({
    group,
    name: `Store.set (file, durability "${durability}")`,
    fn() {
      const i = s;
      s = i + 1 === N ? 0 : i + 1;
      store.set(GROUPS[i]!, KEYS[i]!, VALUES[N - 1 - i]!);
    },
  });
  let r = 0;
  Deno.bench({
    group,
    name: `raw node:sqlite upsert (WAL, synchronous=${synchronous})`,
    baseline: true,
    fn() {
      const i = r;
      r = i + 1 === N ? 0 : i + 1;
      upsert.run(GROUPS[i]!, KEYS[i]!, VALUES[N - 1 - i]!, null);
    },
  });
}

// ---------------------------------------------------------------- render

{
  const FIELDS = 20;
  const RENDER_GROUP = "profile";
  // Text before each field, and after the last one.
  const texts: string[] = [];
  for (let f = 0; f < FIELDS; f++) {
    texts.push(f === 0 ? "Profile: " : `, f${f}=`);
  }
  texts.push(".");
  let template = "";
  for (let f = 0; f < FIELDS; f++) template += `${texts[f]}{{ .f${f} }}`;
  template += texts[FIELDS];

  const store = openStore();
  const raw = openRaw();
  const insert = raw.prepare(UPSERT);
  for (let f = 0; f < FIELDS; f++) {
    store.set(RENDER_GROUP, `f${f}`, `value of field ${f}`);
    insert.run(RENDER_GROUP, `f${f}`, `value of field ${f}`, null);
  }
  const selectGroup = arrays(raw.prepare(SELECT_GROUP));
  const names = Array.from({ length: FIELDS }, (_, f) => `f${f}`);

  // NOTE: this baseline skips template execution entirely: it runs the same
  // SELECT of the group and concatenates the fixed text with the values in
  // plain JS, the floor any template engine could reach.
  const concatenate = (): string => {
    const rows = selectGroup.all(RENDER_GROUP) as unknown as [
      string,
      string,
    ][];
    const data = new Map<string, string>();
    for (const row of rows) data.set(row[0], row[1]);
    let out = "";
    for (let f = 0; f < FIELDS; f++) out += texts[f]! + data.get(names[f]!)!;
    return out + texts[FIELDS]!;
  };

  const expected = store.render(template, RENDER_GROUP); // parses and caches
  if (concatenate() !== expected) {
    throw new Error(`render baseline differs: ${concatenate()} / ${expected}`);
  }
  Deno.bench({
    group: "render",
    name: "Store.render (20 fields, cached template)",
    fn() {
      if (store.render(template, RENDER_GROUP).length !== expected.length) {
        throw new Error("bad render");
      }
    },
  });
  Deno.bench({
    group: "render",
    name: "raw node:sqlite SELECT + string concatenation",
    baseline: true,
    fn() {
      if (concatenate().length !== expected.length) {
        throw new Error("bad render");
      }
    },
  });
}
