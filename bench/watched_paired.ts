/**
 * A `set` with a watcher (its reader drained between batches) and an
 * `onChange` callback, against a raw `node:sqlite` upsert and a `set` with no
 * listener, measured in pairs on `:memory:` stores seeded alike: in each
 * round every entry runs one batch of 16 writes, in an order that rotates
 * each round, and each figure is the median over the rounds of one entry's
 * time over the raw upsert's. The raw upsert also runs on a database made
 * with the store's own schema (its expiry index, namespace counts and their
 * triggers, copied from a file a store created): the floor a store's write
 * could reach. The raw upsert also runs through `.get()` instead of `.run()`,
 * as the store's `set` does: it returns no row, and `run()` builds a result
 * object that costs `node:sqlite` about a fifth of the upsert, so this is
 * raw code's own floor, the baseline with nothing left to take away. The
 * watcher holds 16 unread events, so the reader catches up (untimed) after
 * each batch: no event is dropped, and a lost one fails the run.
 *
 * `store_bench.ts` has the same entries under `deno bench`, which runs them
 * one after the other: on a busy machine they see different loads.
 *
 * Prints one JSON object. Run with:
 *
 * ```sh
 * deno run --allow-read --allow-write bench/watched_paired.ts
 * ```
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { Store } from "@core/store";
import {
  atExit,
  Drain,
  GROUPS,
  KEYS,
  N,
  NEW_VALUES,
  seed,
  seededRaw,
  seededStore,
  spreadRow,
  tempFile,
  UPSERT,
  VALUES,
  Walk,
} from "./_shared.ts";

const ROUNDS = 24;
const BATCHES = 300;
const BATCH = 16;
const WARM_ROUNDS = 3;

const watched = seededStore();
const watcher = watched.watch("*", "*");
const drain = new Drain(watcher);
let calls = 0;
watched.onChange(() => {
  calls++;
});
const plain = seededStore();
const upsert = seededRaw().prepare(UPSERT);
const upsertGet = seededRaw().prepare(UPSERT);

/** A raw :memory: database with the schema a store gives its file. */
function storeSchemaRaw(): DatabaseSync {
  const path = tempFile("schema.db");
  new Store(path, { purgeIntervalMs: 0 }).close();
  const file = new DatabaseSync(path);
  const ddl = file.prepare(
    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type <> 'table'",
  ).all() as { sql: string }[];
  file.close();
  const db = new DatabaseSync(":memory:");
  atExit(() => db.close());
  for (const { sql } of ddl) db.exec(sql);
  seed(db, N, spreadRow);
  return db;
}
const schemaUpsert = storeSchemaRaw().prepare(UPSERT);
const walks = {
  watched: new Walk(N),
  plain: new Walk(N),
  raw: new Walk(N),
  rawStoreSchema: new Walk(N),
  rawGet: new Walk(N),
};
let written = 0;

type Entry = keyof typeof walks;
const write: Record<Entry, (i: number, value: string) => void> = {
  watched: (i, value) => watched.set(GROUPS[i]!, KEYS[i]!, value),
  plain: (i, value) => plain.set(GROUPS[i]!, KEYS[i]!, value),
  raw: (i, value) => upsert.run(GROUPS[i]!, KEYS[i]!, value, null),
  rawStoreSchema: (i, value) =>
    schemaUpsert.run(GROUPS[i]!, KEYS[i]!, value, null),
  rawGet: (i, value) => upsertGet.get(GROUPS[i]!, KEYS[i]!, value, null),
};

async function batch(entry: Entry): Promise<number> {
  const walk = walks[entry];
  const fn = write[entry];
  const start = performance.now();
  for (let j = 0; j < BATCH; j++) {
    const i = walk.next();
    fn(i, (walk.odd ? VALUES : NEW_VALUES)[i]!);
  }
  const ms = performance.now() - start;
  if (entry === "watched") {
    written += BATCH;
    await drain.until(written);
    if (watcher.dropped !== 0 || calls !== written) {
      throw new Error(`lost events: ${watcher.dropped} dropped`);
    }
  } else {
    await null;
  }
  return ms;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

const entries: Entry[] = [
  "raw",
  "watched",
  "plain",
  "rawStoreSchema",
  "rawGet",
];
const ratios = {
  watched: [] as number[],
  plain: [] as number[],
  rawStoreSchema: [] as number[],
  rawGet: [] as number[],
  watchedOverRawGet: [] as number[],
};
const perWrite = { raw: [] as number[], watched: [] as number[] };
for (let round = 0; round < WARM_ROUNDS + ROUNDS; round++) {
  const total: Record<Entry, number> = {
    raw: 0,
    watched: 0,
    plain: 0,
    rawStoreSchema: 0,
    rawGet: 0,
  };
  for (let b = 0; b < BATCHES; b++) {
    for (let e = 0; e < entries.length; e++) {
      const entry = entries[(e + b + round) % entries.length]!;
      total[entry] += await batch(entry);
    }
  }
  if (round < WARM_ROUNDS) continue;
  ratios.watched.push(total.watched / total.raw);
  ratios.plain.push(total.plain / total.raw);
  ratios.rawStoreSchema.push(total.rawStoreSchema / total.raw);
  ratios.rawGet.push(total.rawGet / total.raw);
  ratios.watchedOverRawGet.push(total.watched / total.rawGet);
  perWrite.raw.push(total.raw * 1e6 / (BATCHES * BATCH));
  perWrite.watched.push(total.watched * 1e6 / (BATCHES * BATCH));
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
console.log(JSON.stringify({
  rounds: ROUNDS,
  writesPerRound: BATCHES * BATCH,
  watchedOverRaw: round3(median(ratios.watched)),
  plainOverRaw: round3(median(ratios.plain)),
  rawStoreSchemaOverRaw: round3(median(ratios.rawStoreSchema)),
  rawGetOverRaw: round3(median(ratios.rawGet)),
  watchedOverRawGet: round3(median(ratios.watchedOverRawGet)),
  rawNsPerWrite: Math.round(median(perWrite.raw)),
  watchedNsPerWrite: Math.round(median(perWrite.watched)),
}));
