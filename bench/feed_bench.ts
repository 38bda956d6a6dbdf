/**
 * The cost of the change feed: `set` on a file store with the feed off and
 * with the feed on, against raw `node:sqlite` on the same kind of file, and
 * against the same raw upsert on a file holding the change log's triggers:
 * the floor of a log written by triggers in the writer's transaction. Each
 * logged write also writes a page of the log, so it puts two pages in the WAL
 * where a plain write puts one, and SQLite's checkpoints (every 1,000 pages)
 * come twice as often.
 *
 * Run with `deno task bench` (see `store_bench.ts`).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { Store } from "@core/store";
import {
  atExit,
  cycle,
  N,
  openRaw,
  openStore,
  tempFile,
  UPSERT,
} from "./_shared.ts";
import { E, G } from "./_names.ts";

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

// The floor: the same file as the store's with the feed on (its triggers
// made by a Store), written by raw node:sqlite.
const logged = (() => {
  const path = tempFile("feed-raw-logged.db");
  new Store(path, { changeFeed: true, purgeIntervalMs: 0 }).close();
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=NORMAL");
  atExit(() => db.close());
  const statement = db.prepare(UPSERT);
  db.exec("BEGIN");
  for (const key of KEYS) statement.run(GROUP, key, "seed", null);
  db.exec("COMMIT");
  return statement;
})();

const offNext = cycle(N);
const onNext = cycle(N);
const rawNext = cycle(N);
const loggedNext = cycle(N);
// Every write changes its row: a value that differs on each pass.
let pass = 0;
const value = (i: number) => (i === 0 ? `${++pass}` : `${pass}`);

Deno.bench({
  group: G.feed,
  name: E.rawUpsert,
  baseline: true,
  fn: () => {
    const i = rawNext();
    upsert.run(GROUP, KEYS[i]!, value(i), null);
  },
});

Deno.bench({
  group: G.feed,
  name: E.rawLogged,
  fn: () => {
    const i = loggedNext();
    logged.run(GROUP, KEYS[i]!, value(i), null);
  },
});

Deno.bench({
  group: G.feed,
  name: E.feedOff,
  fn: () => {
    const i = offNext();
    off.set(GROUP, KEYS[i]!, value(i));
  },
});

Deno.bench({
  group: G.feed,
  name: E.feedOn,
  fn: () => {
    const i = onNext();
    on.set(GROUP, KEYS[i]!, value(i));
  },
});
