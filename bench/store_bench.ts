/// <reference lib="deno.unstable" />
/**
 * Per-operation benchmarks of {@linkcode Store} on `:memory:` against the
 * same work done directly on `node:sqlite` with prepared statements (the
 * floor, `baseline: true` in every group, so `deno bench` prints how many
 * times slower the store is) and, where it has the same operation, against
 * Deno KV (`Deno.openKv(":memory:")`, what users would pick instead).
 *
 * Run with (from the repository root):
 *
 * ```sh
 * deno task bench
 * # which is:
 * deno bench --unstable-kv --allow-read --allow-write bench/
 * ```
 *
 * Without `--unstable-kv` the Deno KV entries are skipped. All data is
 * deterministic: every measured function walks precomputed keys with a
 * counter. `bench/targets.ts` turns the output into the targets' ratios.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { ScopedStore, type Store } from "@core/store";
import {
  arrays,
  atExit,
  cycle,
  Drain,
  GROUPS,
  KEYS,
  LIVE,
  N,
  NEW_VALUES,
  openKv,
  openRaw,
  openStore,
  seed,
  seededRaw,
  seededStore,
  seedKv,
  SELECT_GROUP,
  SELECT_ONE,
  spreadRow,
  tempFile,
  UPSERT,
  valueOf,
  VALUES,
  Walk,
} from "./_shared.ts";
import { E, G } from "./_names.ts";

const kv = await openKv(":memory:");
if (kv !== undefined) await seedKv(kv, N, spreadRow);

// ---------------------------------------------------------------- set, get

{
  const store = seededStore();
  const upsert = seededRaw().prepare(UPSERT);
  const s = new Walk(N);
  const r = new Walk(N);
  Deno.bench({
    group: G.set,
    name: E.storeSet,
    fn() {
      const i = s.next();
      store.set(GROUPS[i]!, KEYS[i]!, (s.odd ? VALUES : NEW_VALUES)[i]!);
    },
  });
  Deno.bench({
    group: G.set,
    name: E.rawUpsert,
    baseline: true,
    fn() {
      const i = r.next();
      upsert.run(GROUPS[i]!, KEYS[i]!, (r.odd ? VALUES : NEW_VALUES)[i]!, null);
    },
  });
  if (kv !== undefined) {
    const k = new Walk(N);
    Deno.bench({
      group: G.set,
      name: E.kvSet,
      async fn() {
        const i = k.next();
        await kv.set([GROUPS[i]!, KEYS[i]!], (k.odd ? VALUES : NEW_VALUES)[i]!);
      },
    });
  }
}

{
  const store = seededStore();
  const raw = seededRaw();
  const selectArray = arrays(raw.prepare(SELECT_ONE));
  const selectObject = raw.prepare(SELECT_ONE);
  const s = cycle(N);
  const a = cycle(N);
  const o = cycle(N);
  Deno.bench({
    group: G.get,
    name: E.storeGet,
    fn() {
      const i = s();
      if (store.get(GROUPS[i]!, KEYS[i]!) === undefined) {
        throw new Error("miss");
      }
    },
  });
  Deno.bench({
    group: G.get,
    name: E.rawGetArray,
    baseline: true,
    fn() {
      const i = a();
      const row = selectArray.get(GROUPS[i]!, KEYS[i]!) as unknown as
        | [string]
        | undefined;
      if (row?.[0] === undefined) throw new Error("miss");
    },
  });
  Deno.bench({
    group: G.get,
    name: E.rawGetObject,
    fn() {
      const i = o();
      const row = selectObject.get(GROUPS[i]!, KEYS[i]!);
      if (row?.entry_value === undefined) throw new Error("miss");
    },
  });
  if (kv !== undefined) {
    const k = cycle(N);
    Deno.bench({
      group: G.get,
      name: E.kvGet,
      async fn() {
        const i = k();
        const entry = await kv.get<string>([GROUPS[i]!, KEYS[i]!]);
        if (entry.value === null) throw new Error("miss");
      },
    });
  }
}

// ------------------------------------------------ set + watcher + callback

{
  // The watcher holds up to 16 unread events, so the writes are timed in
  // batches of 16, each followed (untimed) by the reader catching up: every
  // event is queued, none dropped. The reader has a read pending when each
  // batch starts, as a live consumer would.
  const BATCH = 16;
  const store = seededStore();
  const watcher = store.watch("*", "*");
  const drain = new Drain(watcher);
  let calls = 0;
  store.onChange(() => {
    calls++;
  });
  const plain = seededStore();
  const upsert = seededRaw().prepare(UPSERT);
  const s = new Walk(N);
  const p = new Walk(N);
  const r = new Walk(N);
  let written = 0;

  Deno.bench({
    group: G.watched,
    name: E.watchedSet,
    async fn(b) {
      b.start();
      for (let j = 0; j < BATCH; j++) {
        const i = s.next();
        store.set(GROUPS[i]!, KEYS[i]!, (s.odd ? VALUES : NEW_VALUES)[i]!);
      }
      b.end();
      written += BATCH;
      await drain.until(written);
      if (watcher.dropped !== 0 || calls !== written) {
        throw new Error(`lost events: ${watcher.dropped} dropped`);
      }
    },
  });
  Deno.bench({
    group: G.watched,
    name: E.plainSetBatch,
    async fn(b) {
      b.start();
      for (let j = 0; j < BATCH; j++) {
        const i = p.next();
        plain.set(GROUPS[i]!, KEYS[i]!, (p.odd ? VALUES : NEW_VALUES)[i]!);
      }
      b.end();
      await null;
    },
  });
  Deno.bench({
    group: G.watched,
    name: `${E.rawUpsert} x ${BATCH}`,
    baseline: true,
    async fn(b) {
      b.start();
      for (let j = 0; j < BATCH; j++) {
        const i = r.next();
        upsert.run(
          GROUPS[i]!,
          KEYS[i]!,
          (r.odd ? VALUES : NEW_VALUES)[i]!,
          null,
        );
      }
      b.end();
      await null;
    },
  });
}

// ---------------------------------------------------------------- getAll

{
  const BIG = "big";
  const row = (i: number): [string, string, string] => [
    BIG,
    KEYS[i]!,
    VALUES[i]!,
  ];
  const store = openStore();
  store.transaction((tx) => {
    for (let i = 0; i < N; i++) tx.set(BIG, KEYS[i]!, VALUES[i]!);
  });
  const raw = openRaw();
  seed(raw, N, row);
  const allArrays = arrays(raw.prepare(SELECT_GROUP));
  const allObjects = raw.prepare(SELECT_GROUP);

  Deno.bench({
    group: G.getAll,
    name: E.storeGetAll,
    fn() {
      if (store.getAll(BIG).size !== N) throw new Error("short");
    },
  });
  Deno.bench({
    group: G.getAll,
    name: E.rawAllArrays,
    baseline: true,
    fn() {
      if (allArrays.all(BIG).length !== N) throw new Error("short");
    },
  });
  Deno.bench({
    group: G.getAll,
    name: E.rawAllMap,
    fn() {
      const rows = allArrays.all(BIG) as unknown as [string, string][];
      const map = new Map<string, string>();
      for (const row of rows) map.set(row[0], row[1]);
      if (map.size !== N) throw new Error("short");
    },
  });
  Deno.bench({
    group: G.getAll,
    name: E.rawAllObjects,
    fn() {
      if (allObjects.all(BIG).length !== N) throw new Error("short");
    },
  });
  if (kv !== undefined) {
    await seedKv(kv, N, row);
    Deno.bench({
      group: G.getAll,
      name: E.kvList,
      async fn() {
        const map = new Map<string, string>();
        for await (const entry of kv.list<string>({ prefix: [BIG] })) {
          map.set(entry.key[1] as string, entry.value);
        }
        if (map.size !== N) throw new Error("short");
      },
    });
  }
}

// ------------------------------------------------ count, countAll, groups

{
  // 100 groups of 1,000 keys: tenants t0..t9 with groups g0..g9 each. The
  // prefix "t3:" selects 10 groups (10,000 keys).
  const GROUP_COUNT = 100;
  const PER_GROUP = 1_000;
  const groupOf = (g: number) => `t${Math.floor(g / 10)}:g${g % 10}`;
  const row = (i: number): [string, string, string] => [
    groupOf(Math.floor(i / PER_GROUP)),
    `k${(i % PER_GROUP).toString().padStart(4, "0")}`,
    valueOf(i),
  ];
  const total = GROUP_COUNT * PER_GROUP;
  const store = openStore();
  store.transaction((tx) => {
    for (let i = 0; i < total; i++) tx.set(...row(i));
  });
  const raw = openRaw();
  seed(raw, total, row);
  const GROUP = "t3:g3";
  const PREFIX = "t3:";
  const END = "t3;"; // the smallest string above every "t3:…"
  const count = arrays(
    raw.prepare(
      `SELECT count(*) FROM entries WHERE group_name = ? AND ${LIVE}`,
    ),
  );
  const countPrefix = arrays(
    raw.prepare(
      `SELECT count(*) FROM entries WHERE group_name >= ? AND group_name < ? AND ${LIVE}`,
    ),
  );
  const groupsPrefix = arrays(
    raw.prepare(
      `SELECT DISTINCT group_name FROM entries WHERE group_name >= ? AND group_name < ? AND ${LIVE} ORDER BY group_name`,
    ),
  );
  const check = (value: number, expected: number) => {
    if (value !== expected) throw new Error(`${value} != ${expected}`);
  };

  Deno.bench({
    group: G.count,
    name: E.storeCount,
    fn() {
      check(store.count(GROUP), PER_GROUP);
    },
  });
  Deno.bench({
    group: G.count,
    name: E.rawSame,
    baseline: true,
    fn() {
      const row = count.get(GROUP, Date.now()) as unknown as [number];
      check(row[0], PER_GROUP);
    },
  });
  Deno.bench({
    group: G.countAll,
    name: E.storeCountAll,
    fn() {
      check(store.countAll(PREFIX), 10 * PER_GROUP);
    },
  });
  Deno.bench({
    group: G.countAll,
    name: E.rawSame,
    baseline: true,
    fn() {
      const row = countPrefix.get(PREFIX, END, Date.now()) as unknown as [
        number,
      ];
      check(row[0], 10 * PER_GROUP);
    },
  });
  Deno.bench({
    group: G.groups,
    name: E.storeGroups,
    fn() {
      check(store.groups(PREFIX).length, 10);
    },
  });
  Deno.bench({
    group: G.groups,
    name: E.rawSame,
    baseline: true,
    fn() {
      const rows = groupsPrefix.all(PREFIX, END, Date.now()) as unknown as [
        string,
      ][];
      const names = rows.map((row) => row[0]);
      check(names.length, 10);
    },
  });
}

// ------------------------------------------------- scoped set under quota

/**
 * A raw :memory: database with exactly the store's schema (table, indexes,
 * the triggers that keep per-namespace counts), read from a file the store
 * created.
 */
function rawWithStoreSchema(): DatabaseSync {
  const path = tempFile("schema.db");
  openStore(path).close();
  const file = new DatabaseSync(path);
  const statements = file.prepare(
    "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid",
  ).all() as { sql: string }[];
  file.close();
  const db = new DatabaseSync(":memory:");
  for (const { sql } of statements) db.exec(sql);
  return db;
}

{
  // Timed in batches of 100 new keys (9,000 present, so the namespace never
  // exceeds 9,100 of its 10,000); the batch is deleted again, untimed.
  const BATCH = 100;
  const PRESENT = 9_000;
  const QUOTA = 10_000;
  const NS = "acme";
  const NEW_GROUP = "new";
  const NEW_KEYS = Array.from({ length: BATCH }, (_, j) => `new-${j}`);
  const present = (i: number): [string, string, string] => [
    `${NS}:g${Math.floor(i / 1_000)}`,
    `k${(i % 1_000).toString().padStart(4, "0")}`,
    valueOf(i),
  ];
  const withPresent = (count: number): Store => {
    const store = openStore();
    store.transaction((tx) => {
      for (let i = 0; i < count; i++) tx.set(...present(i));
    });
    return store;
  };

  const full = withPresent(PRESENT);
  const scoped = new ScopedStore(full, NS, { maxKeys: QUOTA });
  const empty = withPresent(0);
  const scopedEmpty = new ScopedStore(empty, NS, { maxKeys: QUOTA });
  const unscoped = withPresent(PRESENT);
  const stored = `${NS}:${NEW_GROUP}`;

  const raw = rawWithStoreSchema();
  atExit(() => raw.close());
  seed(raw, PRESENT, present);
  const begin = raw.prepare("BEGIN IMMEDIATE");
  const commit = raw.prepare("COMMIT");
  const stats = arrays(
    raw.prepare("SELECT keys, groups FROM kv_namespace_stats WHERE ns = ?"),
  );
  const upsert = raw.prepare(UPSERT);
  const clear = raw.prepare("DELETE FROM entries WHERE group_name = ?");

  const scopedBatch = (view: ScopedStore, b: Deno.BenchContext) => {
    b.start();
    for (let j = 0; j < BATCH; j++) {
      view.set(NEW_GROUP, NEW_KEYS[j]!, VALUES[j]!);
    }
    b.end();
    if (view.deleteGroup(NEW_GROUP) !== BATCH) throw new Error("lost keys");
  };

  Deno.bench({
    group: G.scoped,
    name: E.scoped10k,
    fn(b) {
      scopedBatch(scoped, b);
    },
  });
  Deno.bench({
    group: G.scoped,
    name: E.unscoped,
    fn(b) {
      b.start();
      for (let j = 0; j < BATCH; j++) {
        unscoped.set(stored, NEW_KEYS[j]!, VALUES[j]!);
      }
      b.end();
      if (unscoped.deleteGroup(stored) !== BATCH) throw new Error("lost");
    },
  });
  Deno.bench({
    group: G.scoped,
    name: "ScopedStore.set, maxKeys 10,000 with none present (reference)",
    fn(b) {
      scopedBatch(scopedEmpty, b);
    },
  });
  Deno.bench({
    group: G.scoped,
    name: E.rawQuota,
    baseline: true,
    fn(b) {
      b.start();
      for (let j = 0; j < BATCH; j++) {
        begin.run();
        const row = stats.get(NS) as unknown as [number, number];
        if (row[0] >= QUOTA) throw new Error("over quota");
        upsert.run(stored, NEW_KEYS[j]!, VALUES[j]!, null);
        commit.run();
      }
      b.end();
      if (clear.run(stored).changes !== BATCH) throw new Error("lost keys");
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

  // The floor any template engine could reach: the same SELECT of the
  // group, then the fixed text and the values concatenated in plain JS.
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
    group: G.render,
    name: E.storeRender,
    fn() {
      if (store.render(template, RENDER_GROUP).length !== expected.length) {
        throw new Error("bad render");
      }
    },
  });
  Deno.bench({
    group: G.render,
    name: E.rawRender,
    baseline: true,
    fn() {
      if (concatenate().length !== expected.length) {
        throw new Error("bad render");
      }
    },
  });
}
