/**
 * The atomic operations against the plain writes they should cost about as
 * much as, measured in pairs on one file-backed store (WAL, durability
 * `"normal"`): in each round every entry of a comparison runs one batch, in
 * an order that rotates each round, and each figure is the median over the
 * rounds of one entry's batch time over the other's. Entries that run side
 * by side see the same load, which `atomic_bench.ts` (where `deno bench`
 * runs its entries one after the other) cannot promise on a busy machine.
 *
 * - `increment` of existing counters / `set` of existing keys;
 * - `setIfAbsent` of new keys / `set` of new keys;
 * - `getAndDelete` / `delete` of live keys (written before the batch,
 *   outside the timed part);
 * - each against raw `node:sqlite` running the same one statement on a file
 *   set up the same way, and against a `transaction` doing the same
 *   read-modify-write by hand (the speed-up).
 *
 * Prints one JSON object. Run with:
 *
 * ```sh
 * deno run --allow-read --allow-write bench/atomic_paired.ts
 * ```
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { Store } from "@core/store";

const ROUNDS = 60;
const BATCH = 200;
const COUNTERS = 10_000;

const dir = Deno.makeTempDirSync({ prefix: "core_store_atomic_" });
const store = new Store(`${dir}/store.db`, { purgeIntervalMs: 0 });
store.transaction((tx) => {
  for (let i = 0; i < COUNTERS; i++) tx.set("c", `n${i}`, "0");
});
const raw = new DatabaseSync(`${dir}/raw.db`);
raw.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
raw.exec(
  `CREATE TABLE entries (group_name TEXT NOT NULL, entry_key TEXT NOT NULL,
  entry_value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (group_name, entry_key))`,
);
{
  const insert = raw.prepare("INSERT INTO entries VALUES ('c', ?, '0', NULL)");
  raw.exec("BEGIN");
  for (let i = 0; i < COUNTERS; i++) insert.run(`n${i}`);
  raw.exec("COMMIT");
}
const rawIncrement = raw.prepare(
  `INSERT INTO entries VALUES (?, ?, '1', NULL) ON CONFLICT(group_name, entry_key)
  DO UPDATE SET entry_value = CAST(CAST(entry_value AS INTEGER) + 1 AS TEXT) RETURNING entry_value`,
);
const rawInsert = raw.prepare(
  `INSERT INTO entries VALUES (?, ?, ?, NULL) ON CONFLICT(group_name, entry_key) DO NOTHING RETURNING 1`,
);
const rawTake = raw.prepare(
  "DELETE FROM entries WHERE group_name = ? AND entry_key = ? RETURNING entry_value, expires_at",
);

/** One entry: `setup` (untimed) and `run` get the batch's first index. */
interface Entry {
  setup?: (from: number) => void;
  run: (from: number) => void;
}

let fresh = 0;
const counter = (i: number) => `n${i % COUNTERS}`;
// Every entry that deletes takes keys of its own group, written untimed.
const livePool = (group: string, write: (g: string, k: string) => void) => ({
  setup: (from: number) => {
    if (group.startsWith("raw")) {
      raw.exec("BEGIN");
      for (let i = 0; i < BATCH; i++) write(group, `t${from + i}`);
      raw.exec("COMMIT");
      return;
    }
    store.transaction(() => {
      for (let i = 0; i < BATCH; i++) write(group, `t${from + i}`);
    });
  },
});
const rawSet = raw.prepare("INSERT INTO entries VALUES (?, ?, 'token', NULL)");

const ENTRIES: Record<string, Entry> = {
  set: {
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) {
        store.set("c", counter(i), (i & 1) === 0 ? "17" : "18");
      }
    },
  },
  increment: {
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) {
        store.increment("c", counter(i));
      }
    },
  },
  rawIncrement: {
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) {
        rawIncrement.all("c", counter(i));
      }
    },
  },
  txIncrement: {
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) {
        const key = counter(i);
        store.transaction((tx) => {
          tx.set("c", key, String(Number(tx.get("c", key) ?? "0") + 1));
        });
      }
    },
  },
  setNew: {
    run: () => {
      for (let i = 0; i < BATCH; i++) store.set("new-set", `k${fresh++}`, "v");
    },
  },
  setIfAbsent: {
    run: () => {
      for (let i = 0; i < BATCH; i++) {
        store.setIfAbsent("new-sia", `k${fresh++}`, "v");
      }
    },
  },
  rawSetIfAbsent: {
    run: () => {
      for (let i = 0; i < BATCH; i++) rawInsert.all("new", `k${fresh++}`, "v");
    },
  },
  txSetIfAbsent: {
    run: () => {
      for (let i = 0; i < BATCH; i++) {
        const key = `k${fresh++}`;
        store.transaction((tx) => {
          if (!tx.exists("new-tx", key)) tx.set("new-tx", key, "v");
        });
      }
    },
  },
  delete: {
    ...livePool("del", (g, k) => store.set(g, k, "token")),
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) store.delete("del", `t${i}`);
    },
  },
  getAndDelete: {
    ...livePool("gad", (g, k) => store.set(g, k, "token")),
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) {
        store.getAndDelete("gad", `t${i}`);
      }
    },
  },
  rawGetAndDelete: {
    ...livePool("raw", (g, k) => rawSet.run(g, k)),
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) rawTake.all("raw", `t${i}`);
    },
  },
  txGetAndDelete: {
    ...livePool("txd", (g, k) => store.set(g, k, "token")),
    run: (from) => {
      for (let i = from; i < from + BATCH; i++) {
        const key = `t${i}`;
        store.transaction((tx) => {
          if (tx.get("txd", key) !== undefined) tx.delete("txd", key);
        });
      }
    },
  },
};

const COMPARISONS = [
  ["set", "increment", "rawIncrement", "txIncrement"],
  ["setNew", "setIfAbsent", "rawSetIfAbsent", "txSetIfAbsent"],
  ["delete", "getAndDelete", "rawGetAndDelete", "txGetAndDelete"],
] as const;

const times = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  const from = round * BATCH;
  for (const names of COMPARISONS) {
    // Rotate who goes first, so that no entry always follows another.
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      const entry = ENTRIES[name]!;
      entry.setup?.(from);
      const start = performance.now();
      entry.run(from);
      const ms = performance.now() - start;
      if (round > 2) {
        // The first rounds warm the statements and the page cache up.
        let list = times.get(name);
        if (list === undefined) times.set(name, list = []);
        list.push(ms);
      }
    }
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[sorted.length >> 1]!;
}

/** The median over the rounds of `a`'s batch time over `b`'s. */
function ratio(a: string, b: string): number {
  const ta = times.get(a)!;
  const tb = times.get(b)!;
  return median(ta.map((t, i) => t / tb[i]!));
}

const perOpUs = (name: string) => median(times.get(name)!) / BATCH * 1000;

console.log(JSON.stringify(
  {
    rounds: ROUNDS,
    batch: BATCH,
    incrementOverSet: ratio("increment", "set"),
    setIfAbsentOverSet: ratio("setIfAbsent", "setNew"),
    getAndDeleteOverDelete: ratio("getAndDelete", "delete"),
    incrementOverRaw: ratio("increment", "rawIncrement"),
    setIfAbsentOverRaw: ratio("setIfAbsent", "rawSetIfAbsent"),
    getAndDeleteOverRaw: ratio("getAndDelete", "rawGetAndDelete"),
    transactionOverIncrement: ratio("txIncrement", "increment"),
    transactionOverSetIfAbsent: ratio("txSetIfAbsent", "setIfAbsent"),
    transactionOverGetAndDelete: ratio("txGetAndDelete", "getAndDelete"),
    perOpMicroseconds: Object.fromEntries(
      Object.keys(ENTRIES).map((name) => [name, perOpUs(name)]),
    ),
  },
  null,
  2,
));

store.close();
raw.close();
Deno.removeSync(dir, { recursive: true });
