/// <reference lib="deno.unstable" />
/**
 * Benchmarks of a file-backed {@linkcode Store} (WAL) against raw
 * `node:sqlite` on a file set up the same way (the baseline of every group)
 * and Deno KV on a file: `get`, `set` with durability `"normal"` and
 * `"full"`, transactions, and a size sweep (10 to 1,000,000 keys) showing
 * that `get` and `set` cost the same whatever the size of the file.
 *
 * Run with `deno task bench` (see `store_bench.ts`).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import {
  arrays,
  buildFile,
  copyFile,
  cycle,
  DDL,
  GROUPS,
  KEYS,
  LARGE,
  N,
  NEW_VALUES,
  openKv,
  openRaw,
  openStore,
  sample,
  seed,
  seedKv,
  SELECT_ONE,
  spreadRow,
  tempFile,
  UPSERT,
  valueOf,
  VALUES,
  Walk,
} from "./_shared.ts";
import { E, G, SWEEP_SIZES } from "./_names.ts";

/**
 * A store file and a raw file holding the N keys of the spread layout, each
 * seeded and closed (so the WAL is checkpointed away) before it is opened
 * for the measurement: both start in the same state.
 */
function filePair(name: string, durability: "normal" | "full") {
  const storePath = tempFile(`store-${name}.db`);
  const rawPath = tempFile(`raw-${name}.db`);
  openStore(storePath).close(); // creates the file, its table and indexes
  seedFile(storePath, false);
  seedFile(rawPath, true);
  return {
    store: openStore(storePath, { durability }),
    raw: openRaw(rawPath, durability === "normal" ? "NORMAL" : "FULL"),
  };
}

function seedFile(path: string, createTable: boolean): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL");
  if (createTable) db.exec(DDL);
  seed(db, N, spreadRow);
  db.close();
}

const kv = await openKv(tempFile("kv.sqlite"));
if (kv !== undefined) await seedKv(kv, N, spreadRow);

// ------------------------------------------------------- file set and get

for (const durability of ["normal", "full"] as const) {
  const { store, raw } = filePair(durability, durability);
  const upsert = raw.prepare(UPSERT);
  const group = durability === "normal" ? G.fileSet : G.fileSetFull;
  const s = new Walk(N);
  const r = new Walk(N);
  Deno.bench({
    group,
    name: E.storeSet,
    fn() {
      const i = s.next();
      store.set(GROUPS[i]!, KEYS[i]!, (s.odd ? VALUES : NEW_VALUES)[i]!);
    },
  });
  Deno.bench({
    group,
    name: E.rawUpsert,
    baseline: true,
    fn() {
      const i = r.next();
      upsert.run(GROUPS[i]!, KEYS[i]!, (r.odd ? VALUES : NEW_VALUES)[i]!, null);
    },
  });
  if (kv !== undefined && durability === "normal") {
    const k = new Walk(N);
    Deno.bench({
      group,
      name: E.kvSet,
      async fn() {
        const i = k.next();
        await kv.set([GROUPS[i]!, KEYS[i]!], (k.odd ? VALUES : NEW_VALUES)[i]!);
      },
    });
  }
}

{
  const { store, raw } = filePair("get", "normal");
  const select = arrays(raw.prepare(SELECT_ONE));
  const s = cycle(N);
  const r = cycle(N);
  Deno.bench({
    group: G.fileGet,
    name: E.storeGet,
    fn() {
      const i = s();
      if (store.get(GROUPS[i]!, KEYS[i]!) === undefined) {
        throw new Error("miss");
      }
    },
  });
  Deno.bench({
    group: G.fileGet,
    name: E.rawGetArray,
    baseline: true,
    fn() {
      const i = r();
      const row = select.get(GROUPS[i]!, KEYS[i]!) as unknown as
        | [string]
        | undefined;
      if (row?.[0] === undefined) throw new Error("miss");
    },
  });
  if (kv !== undefined) {
    const k = cycle(N);
    Deno.bench({
      group: G.fileGet,
      name: E.kvGet,
      async fn() {
        const i = k();
        const entry = await kv.get<string>([GROUPS[i]!, KEYS[i]!]);
        if (entry.value === null) throw new Error("miss");
      },
    });
  }
}

// --------------------------------------------------------- transactions

/** Upserts the next `count` keys of `walk` in one transaction. */
function rawTransaction(
  raw: DatabaseSync,
): (walk: Walk, count: number) => void {
  const begin = raw.prepare("BEGIN IMMEDIATE");
  const commit = raw.prepare("COMMIT");
  const upsert = raw.prepare(UPSERT);
  return (walk, count) => {
    begin.run();
    for (let j = 0; j < count; j++) {
      const i = walk.next();
      upsert.run(
        GROUPS[i]!,
        KEYS[i]!,
        (walk.odd ? VALUES : NEW_VALUES)[i]!,
        null,
      );
    }
    commit.run();
  };
}

{
  const SIZE = 1_000;
  const { store, raw } = filePair("tx", "normal");
  const rawTx = rawTransaction(raw);
  const s = new Walk(N);
  const r = new Walk(N);
  Deno.bench({
    group: G.fileTx,
    name: E.storeTx,
    fn() {
      store.transaction((tx) => {
        for (let j = 0; j < SIZE; j++) {
          const i = s.next();
          tx.set(GROUPS[i]!, KEYS[i]!, (s.odd ? VALUES : NEW_VALUES)[i]!);
        }
      });
    },
  });
  Deno.bench({
    group: G.fileTx,
    name: E.rawTx,
    baseline: true,
    fn() {
      rawTx(r, SIZE);
    },
  });
  if (kv !== undefined) {
    const k = new Walk(N);
    Deno.bench({
      group: G.fileTx,
      name: E.kvAtomic,
      async fn() {
        const op = kv.atomic();
        for (let j = 0; j < SIZE; j++) {
          const i = k.next();
          op.set([GROUPS[i]!, KEYS[i]!], (k.odd ? VALUES : NEW_VALUES)[i]!);
        }
        if (!(await op.commit()).ok) throw new Error("commit failed");
      },
    });
  }
}

{
  // 10,000 separate sets with durability "full" sync the WAL 10,000 times;
  // a few iterations are plenty. Every iteration writes all N keys.
  const { store, raw } = filePair("full-tx", "full");
  const rawTx = rawTransaction(raw);
  // Both store entries write the same file: one walk, so that every write
  // changes the row whichever entry makes it.
  const s = new Walk(N);
  const r = new Walk(N);
  Deno.bench({
    group: G.fullTx,
    name: E.storeTx,
    fn() {
      store.transaction((tx) => {
        for (let j = 0; j < N; j++) {
          const i = s.next();
          tx.set(GROUPS[i]!, KEYS[i]!, (s.odd ? VALUES : NEW_VALUES)[i]!);
        }
      });
    },
  });
  Deno.bench({
    group: G.fullTx,
    name: E.separate,
    n: 1,
    warmup: 0,
    fn() {
      for (let j = 0; j < N; j++) {
        const i = s.next();
        store.set(GROUPS[i]!, KEYS[i]!, (s.odd ? VALUES : NEW_VALUES)[i]!);
      }
    },
  });
  Deno.bench({
    group: G.fullTx,
    name: E.rawTx,
    baseline: true,
    fn() {
      rawTx(r, N);
    },
  });
}

// ------------------------------------------------------------ size sweep

{
  // Reads and writes land on 10,000 keys drawn uniformly from the whole
  // file (every key, shuffled, for the smaller sizes). Writes overwrite
  // existing keys, so the size does not change while it is measured.
  for (const size of SWEEP_SIZES) {
    const storePath = tempFile(`sweep-${size}.db`);
    const rawPath = tempFile(`sweep-${size}-raw.db`);
    buildFile(storePath, size);
    copyFile(storePath, rawPath);
    const store = openStore(storePath);
    const raw = openRaw(rawPath);
    const picks = sample(size, N);
    const groups = picks.map(LARGE.group);
    const keys = picks.map(LARGE.key);
    const values = picks.map((i) => valueOf(i + 1));
    const seeded = picks.map(valueOf);
    const select = arrays(raw.prepare(SELECT_ONE));
    const upsert = raw.prepare(UPSERT);
    const gs = cycle(picks.length);
    const gr = cycle(picks.length);
    const ss = new Walk(picks.length);
    const sr = new Walk(picks.length);
    Deno.bench({
      group: G.sweepGet(size),
      name: E.storeGet,
      fn() {
        const i = gs();
        if (store.get(groups[i]!, keys[i]!) === undefined) {
          throw new Error("miss");
        }
      },
    });
    Deno.bench({
      group: G.sweepGet(size),
      name: E.rawGetArray,
      baseline: true,
      fn() {
        const i = gr();
        const row = select.get(groups[i]!, keys[i]!) as unknown as
          | [string]
          | undefined;
        if (row?.[0] === undefined) throw new Error("miss");
      },
    });
    Deno.bench({
      group: G.sweepSet(size),
      name: E.storeSet,
      fn() {
        const i = ss.next();
        store.set(groups[i]!, keys[i]!, (ss.odd ? seeded : values)[i]!);
      },
    });
    Deno.bench({
      group: G.sweepSet(size),
      name: E.rawUpsert,
      baseline: true,
      fn() {
        const i = sr.next();
        upsert.run(groups[i]!, keys[i]!, (sr.odd ? seeded : values)[i]!, null);
      },
    });
  }
}
