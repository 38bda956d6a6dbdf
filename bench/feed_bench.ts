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
  "CREATE TABLE IF NOT EXISTS kv (grp TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (grp, key))",
);
const upsert = raw.prepare(UPSERT);
for (const key of KEYS) upsert.run(GROUP, key, "seed", null);

const offNext = cycle(N);
const onNext = cycle(N);
const rawNext = cycle(N);

Deno.bench({
  group: "file set, change feed",
  name: "raw node:sqlite upsert (file, WAL, synchronous=NORMAL)",
  baseline: true,
  fn: () => {
    upsert.run(GROUP, KEYS[rawNext()]!, "v", null);
  },
});

Deno.bench({
  group: "file set, change feed",
  name: "Store.set (changeFeed off)",
  fn: () => {
    off.set(GROUP, KEYS[offNext()]!, "v");
  },
});

Deno.bench({
  group: "file set, change feed",
  name: "Store.set (changeFeed on)",
  fn: () => {
    on.set(GROUP, KEYS[onNext()]!, "v");
  },
});
