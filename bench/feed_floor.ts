/**
 * The floor under the change feed's cost, measured in pairs: a `set` on a
 * file store with the feed on against the same store with it off, beside
 * raw `node:sqlite` upserts on a plain file and on a file holding the log's
 * triggers (made by a `Store` with the feed on), and two raw variants that
 * show what the floor is made of: the same triggers without the trim
 * trigger, and a log row without the value; and the floor run as the store
 * runs it (`BEGIN IMMEDIATE`, the last seq, the upsert, the last seq,
 * `COMMIT`), which shows what the store's own statements add. Every file is
 * WAL with `synchronous = NORMAL` (the store's default), seeded with the
 * same 10,000 keys; every write changes its row.
 *
 * In each round every variant writes one batch, in an order that rotates
 * each round, from an empty WAL, with SQLite's automatic checkpoint at its
 * default (1,000 pages) everywhere: a variant that writes more pages pays for
 * more checkpoints, as it would in use. Each ratio is the median over the
 * rounds of one variant's batch time over another's. Then each variant
 * writes 300 more rows from an empty WAL, too few for a checkpoint, and the
 * WAL's size gives the frames (pages) and bytes each commit appends.
 *
 * Prints one JSON object. Run with:
 *
 * ```sh
 * deno run --allow-read --allow-write bench/feed_floor.ts
 * ```
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { Store } from "@core/store";
import { atExit, tempFile, UPSERT } from "./_shared.ts";

const KEYS = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);
const GROUP = "feed";
const ROUNDS = 25;
const COUNTED = 300;
const BATCH = 1_000;
const PAGE = 4_096;
const FRAME = PAGE + 24;

interface Variant {
  name: string;
  wal: string;
  write: (key: string, value: string) => void;
  checkpoint: () => void;
}

function file(name: string, changeFeed: boolean): string {
  const path = tempFile(`floor-${name}.db`);
  new Store(path, { changeFeed, purgeIntervalMs: 0 }).close();
  return path;
}

function raw(
  name: string,
  changeFeed: boolean,
  sql = "",
  framed = false,
): Variant {
  const path = file(name, changeFeed);
  const db = new DatabaseSync(path);
  atExit(() => db.close());
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  if (sql !== "") db.exec(sql);
  const upsert = db.prepare(UPSERT);
  db.exec("BEGIN");
  for (const key of KEYS) upsert.run(GROUP, key, "seed", null);
  db.exec("COMMIT");
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  return {
    name,
    wal: `${path}-wal`,
    write: framed
      ? framedWrite(db, upsert)
      : (key, value) => upsert.run(GROUP, key, value, null),
    checkpoint: () => checkpoint.get(),
  };
}

// The statements a store with the feed runs for one set: the seqs before and
// after, read in the write's own transaction, tell its log rows.
function framedWrite(
  db: DatabaseSync,
  upsert: StatementSync,
): Variant["write"] {
  const begin = db.prepare("BEGIN IMMEDIATE");
  const lastSeq = db.prepare("SELECT max(seq) FROM kv_changes");
  const commit = db.prepare("COMMIT");
  return (key, value) => {
    begin.run();
    lastSeq.get();
    upsert.run(GROUP, key, value, null);
    lastSeq.get();
    commit.run();
  };
}

function store(name: string, changeFeed: boolean): Variant {
  const path = file(name, changeFeed);
  const s = new Store(path, {
    changeFeed,
    changePollMs: 0,
    purgeIntervalMs: 0,
  });
  atExit(() => s.close());
  s.transaction((tx) => {
    for (const key of KEYS) tx.set(GROUP, key, "seed");
  });
  // A second connection empties the WAL between batches.
  const db = new DatabaseSync(path);
  atExit(() => db.close());
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  return {
    name,
    wal: `${path}-wal`,
    write: (key, value) => s.set(GROUP, key, value),
    checkpoint: () => checkpoint.get(),
  };
}

// The log row of an update without its value: the same trigger otherwise.
const NO_VALUE = `DROP TRIGGER entries_changes_update;
CREATE TRIGGER entries_changes_update AFTER UPDATE ON entries BEGIN
  INSERT INTO kv_changes (type, grp, key, value, expires_at, timestamp)
  VALUES ('set', NEW.group_name, NEW.entry_key, NULL, NEW.expires_at,
    CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END`;

const variants: Variant[] = [
  raw("raw upsert", false),
  raw("raw upsert, log triggers (floor)", true),
  raw(
    "raw upsert, log triggers, no trim trigger",
    true,
    "DROP TRIGGER kv_changes_trim",
  ),
  raw("raw upsert, log triggers, log row without value", true, NO_VALUE),
  raw("raw upsert, log triggers, in the store's transaction", true, "", true),
  store("Store.set, feed off", false),
  store("Store.set, feed on", true),
];

const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
const walPerCommit = new Map<string, { frames: number; bytes: number }>();
let pass = 0;
for (let round = 0; round < ROUNDS; round++) {
  pass++;
  for (let n = 0; n < variants.length; n++) {
    const v = variants[(n + round) % variants.length] as Variant;
    v.checkpoint();
    const from = (round * BATCH) % KEYS.length;
    const start = performance.now();
    for (let i = 0; i < BATCH; i++) {
      v.write(KEYS[from + i] as string, `${pass}-${i}`);
    }
    times.get(v.name)?.push(performance.now() - start);
  }
}
pass++;
for (const v of variants) {
  v.checkpoint();
  for (let i = 0; i < COUNTED; i++) v.write(KEYS[i] as string, `${pass}-${i}`);
  const bytes = Deno.statSync(v.wal).size - 32;
  walPerCommit.set(v.name, {
    frames: Math.round((bytes / FRAME / COUNTED) * 100) / 100,
    bytes: Math.round(bytes / COUNTED),
  });
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[values.length >> 1] ?? NaN;
const ratio = (a: string, b: string) => {
  const as = times.get(a) ?? [];
  const bs = times.get(b) ?? [];
  return Math.round(median(as.map((t, i) => t / (bs[i] ?? NaN))) * 1000) /
    1000;
};

console.log(JSON.stringify({
  rounds: ROUNDS,
  writesPerBatch: BATCH,
  usPerWrite: Object.fromEntries(
    variants.map((v) => [
      v.name,
      Math.round(median(times.get(v.name) ?? []) / BATCH * 1000 * 100) / 100,
    ]),
  ),
  walPerCommit: Object.fromEntries(walPerCommit),
  feedOnOverOff: ratio("Store.set, feed on", "Store.set, feed off"),
  floorOverRaw: ratio("raw upsert, log triggers (floor)", "raw upsert"),
  feedOnOverFloor: ratio(
    "Store.set, feed on",
    "raw upsert, log triggers (floor)",
  ),
  feedOffOverRaw: ratio("Store.set, feed off", "raw upsert"),
  noTrimOverRaw: ratio(
    "raw upsert, log triggers, no trim trigger",
    "raw upsert",
  ),
  framedOverFloor: ratio(
    "raw upsert, log triggers, in the store's transaction",
    "raw upsert, log triggers (floor)",
  ),
  feedOnOverFramed: ratio(
    "Store.set, feed on",
    "raw upsert, log triggers, in the store's transaction",
  ),
  noValueOverRaw: ratio(
    "raw upsert, log triggers, log row without value",
    "raw upsert",
  ),
}));
