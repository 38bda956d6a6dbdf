/**
 * The cost of the change feed: `set` on a file store with the feed off, the
 * feed on, and on a file that another store keeps the change log of (so its
 * triggers run), against raw `node:sqlite` on the same kind of file.
 *
 * Run with `deno task bench` (see `store_bench.ts`).
 *
 * @module
 */

import { cycle, N, openRaw, openStore, tempFile, UPSERT } from "./_shared.ts";

const KEYS = Array.from({ length: N }, (_, i) => `key-${i}`);
const GROUP = "feed";

function seeded(name: string, changeFeed: boolean) {
  const path = tempFile(`${name}.db`);
  const store = openStore(path, { changeFeed, changePollMs: 0 });
  store.transaction((tx) => {
    for (const key of KEYS) tx.set(GROUP, key, "seed");
  });
  return store;
}

const off = seeded("feed-off", false);
const on = seeded("feed-on", true);
const raw = openRaw(tempFile("feed-raw.db"));
raw.exec(
  "CREATE TABLE IF NOT EXISTS entries (group_name TEXT NOT NULL, entry_key TEXT NOT NULL, entry_value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (group_name, entry_key))",
);
const upsert = raw.prepare(UPSERT);
for (const key of KEYS) upsert.run(GROUP, key, "seed", null);

const offNext = cycle(N);
const onNext = cycle(N);
const rawNext = cycle(N);
// Every write changes its row: a value that differs on each pass.
let pass = 0;
const value = (i: number) => (i === 0 ? `${++pass}` : `${pass}`);

Deno.bench({
  group: "file set, change feed",
  name: "raw node:sqlite upsert (file, WAL, synchronous=NORMAL)",
  baseline: true,
  fn: () => {
    const i = rawNext();
    upsert.run(GROUP, KEYS[i]!, value(i), null);
  },
});

Deno.bench({
  group: "file set, change feed",
  name: "Store.set (changeFeed off)",
  fn: () => {
    const i = offNext();
    off.set(GROUP, KEYS[i]!, value(i));
  },
});

Deno.bench({
  group: "file set, change feed",
  name: "Store.set (changeFeed on)",
  fn: () => {
    const i = onNext();
    on.set(GROUP, KEYS[i]!, value(i));
  },
});
