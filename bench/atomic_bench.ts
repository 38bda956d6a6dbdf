/**
 * Benchmarks of the atomic operations on a file-backed {@linkcode Store}
 * (WAL, durability `"normal"`), each group side by side with the plain write
 * it should cost about as much as, raw `node:sqlite` doing the same one
 * statement on a file set up the same way (the baseline), and a
 * `transaction` doing the same read-modify-write by hand:
 *
 * - `increment` of existing counters against `set`;
 * - `setIfAbsent` of new keys against `set` of new keys;
 * - `getAndDelete` of a live key against `delete` of a live key (the key is
 *   written before each, outside the timed part).
 *
 * Run with `deno task bench` (see `store_bench.ts`); `targets.ts` checks
 * the ratios.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { DDL, openRaw, openStore, tempFile } from "./_shared.ts";
import { E, G } from "./_names.ts";

const COUNTERS = 10_000;

const storePath = tempFile("atomic-store.db");
const rawPath = tempFile("atomic-raw.db");
openStore(storePath).close();
seed(storePath, false);
seed(rawPath, true);
const store = openStore(storePath);
const raw = openRaw(rawPath, "NORMAL");

// Counters "c"/n0… at 0.
function seed(path: string, createTable: boolean): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL");
  if (createTable) db.exec(DDL);
  const insert = db.prepare(
    "INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, NULL)",
  );
  db.exec("BEGIN");
  for (let i = 0; i < COUNTERS; i++) insert.run("c", `n${i}`, "0");
  db.exec("COMMIT");
  db.close();
}

function counter(): () => string {
  let i = 0;
  return () => `n${i++ % COUNTERS}`;
}

// ------------------------------------------------------------ increment

{
  const s = counter();
  const i = counter();
  const t = counter();
  const r = counter();
  let flip = 0;
  const rawIncrement = raw.prepare(
    `INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, '1', NULL)
    ON CONFLICT(group_name, entry_key) DO UPDATE SET entry_value = CAST(CAST(entry_value AS INTEGER) + 1 AS TEXT)
    RETURNING entry_value`,
  );
  Deno.bench({
    group: G.fileIncrement,
    name: E.storeSet,
    fn() {
      store.set("c", s(), (flip++ & 1) === 0 ? "17" : "18");
    },
  });
  Deno.bench({
    group: G.fileIncrement,
    name: E.storeIncrement,
    fn() {
      store.increment("c", i());
    },
  });
  Deno.bench({
    group: G.fileIncrement,
    name: E.rawIncrement,
    baseline: true,
    fn() {
      rawIncrement.all("c", r());
    },
  });
  Deno.bench({
    group: G.fileIncrement,
    name: E.txIncrement,
    fn() {
      const key = t();
      store.transaction((tx) => {
        const n = Number(tx.get("c", key) ?? "0") + 1;
        tx.set("c", key, String(n));
        return n;
      });
    },
  });
}

// ---------------------------------------------------------- setIfAbsent

{
  let s = 0;
  let a = 0;
  let t = 0;
  let r = 0;
  const rawInsert = raw.prepare(
    `INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, NULL)
    ON CONFLICT(group_name, entry_key) DO NOTHING RETURNING 1`,
  );
  Deno.bench({
    group: G.fileSetIfAbsent,
    name: E.storeSetNew,
    fn() {
      store.set("new-set", `k${s++}`, "value");
    },
  });
  Deno.bench({
    group: G.fileSetIfAbsent,
    name: E.storeSetIfAbsent,
    fn() {
      if (!store.setIfAbsent("new-sia", `k${a++}`, "value")) {
        throw new Error("the key was taken");
      }
    },
  });
  Deno.bench({
    group: G.fileSetIfAbsent,
    name: E.rawSetIfAbsent,
    baseline: true,
    fn() {
      rawInsert.all("new-raw", `k${r++}`, "value");
    },
  });
  Deno.bench({
    group: G.fileSetIfAbsent,
    name: E.txSetIfAbsent,
    fn() {
      const key = `k${t++}`;
      store.transaction((tx) => {
        if (tx.exists("new-tx", key)) return false;
        tx.set("new-tx", key, "value");
        return true;
      });
    },
  });
  const held = counter();
  Deno.bench({
    group: G.fileSetIfAbsent,
    name: E.setIfAbsentLive,
    fn() {
      store.setIfAbsent("c", held(), "value");
    },
  });
}

// --------------------------------------------------------- getAndDelete

// Each iteration first writes the key it takes, outside the timed part.
{
  const rawSet = raw.prepare(
    "INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, NULL)",
  );
  const rawTake = raw.prepare(
    "DELETE FROM entries WHERE group_name = ? AND entry_key = ? RETURNING entry_value, expires_at",
  );
  const token = "a one-time token value";
  Deno.bench({
    group: G.fileGetAndDelete,
    name: E.storeDelete,
    fn(b) {
      store.set("take", "k", token);
      b.start();
      const live = store.delete("take", "k");
      b.end();
      if (!live) throw new Error("not live");
    },
  });
  Deno.bench({
    group: G.fileGetAndDelete,
    name: E.storeGetAndDelete,
    fn(b) {
      store.set("take", "k", token);
      b.start();
      const value = store.getAndDelete("take", "k");
      b.end();
      if (value !== token) throw new Error("not live");
    },
  });
  Deno.bench({
    group: G.fileGetAndDelete,
    name: E.rawGetAndDelete,
    baseline: true,
    fn(b) {
      rawSet.run("take", "k", token);
      b.start();
      rawTake.all("take", "k");
      b.end();
    },
  });
  Deno.bench({
    group: G.fileGetAndDelete,
    name: E.txGetAndDelete,
    fn(b) {
      store.set("take", "k", token);
      b.start();
      const value = store.transaction((tx) => {
        const value = tx.get("take", "k");
        if (value !== undefined) tx.delete("take", "k");
        return value;
      });
      b.end();
      if (value !== token) throw new Error("not live");
    },
  });
}
