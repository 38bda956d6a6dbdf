/**
 * Names of the benchmark groups and entries, shared by the benchmark modules
 * and by `targets.ts`, which finds them in `deno bench --json` output.
 *
 * @module
 */

/** Group names. */
export const G = {
  set: "set (:memory:)",
  get: "get (:memory:)",
  watched: "set + watcher + callback (:memory:)",
  otherWatchers: "set + 10,000 watchers on other groups (:memory:)",
  getAll: "getAll 10,000 keys (:memory:)",
  count: "count (100 groups x 1,000 keys)",
  countAll: "countAll(prefix) (100 groups x 1,000 keys)",
  groups: "groups(prefix) (100 groups x 1,000 keys)",
  scoped: "scoped set of new keys, quota (:memory:)",
  render: "render 20 fields (:memory:)",
  fileSet: "file set (normal)",
  fileSetFull: "file set (full)",
  fileGet: "file get",
  fileTx: "file transaction of 1,000 sets (normal)",
  fileIncrement: "file increment of existing counters vs set (normal)",
  fileSetIfAbsent: "file setIfAbsent of new keys vs set (normal)",
  fileGetAndDelete: "file getAndDelete of live keys vs delete (normal)",
  fullTx: "10,000 sets, durability full: 1 transaction vs separate",
  purge: "purgeExpired 100,000 of 1,000,000 (file)",
  feed: "file set, change feed",
  sweepGet: (size: number): string => `sweep get, ${fmt(size)} keys (file)`,
  sweepSet: (size: number): string => `sweep set, ${fmt(size)} keys (file)`,
} as const;

/** File sizes of the size sweep, in keys. */
export const SWEEP_SIZES = [10, 1_000, 100_000, 1_000_000] as const;

/** Entry names. */
export const E = {
  storeSet: "Store.set",
  storeGet: "Store.get",
  rawUpsert: "raw upsert",
  rawGetArray: "raw .get() setReturnArrays",
  rawGetObject: "raw .get() row object (reference)",
  kvSet: "Deno KV set",
  kvGet: "Deno KV get",
  watchedSet: "Store.set x 16, 1 watcher drained + 1 onChange",
  plainSetBatch: "Store.set x 16, no listeners (reference)",
  manyWatchers: "Store.set x 16, 10,000 watchers on other groups",
  noWatchers: "Store.set x 16, no watchers",
  oneWatcher: "Store.set x 16, 1 watcher on another group (reference)",
  storeGetAll: "Store.getAll",
  rawAllArrays: "raw .all() setReturnArrays",
  rawAllMap: "raw .all() setReturnArrays into a Map (same result)",
  rawAllObjects: "raw .all() row objects (reference)",
  kvList: "Deno KV list into a Map",
  storeCount: "Store.count",
  storeCountAll: "Store.countAll(prefix)",
  storeGroups: "Store.groups(prefix)",
  rawSame: "raw, same SQL",
  scoped10k: "ScopedStore.set, maxKeys 10,000 with 9,000 present",
  scoped100: "ScopedStore.set, maxKeys 100 with 90 present (reference)",
  unscoped: "Store.set of new keys, unscoped",
  rawQuota: "raw BEGIN IMMEDIATE + stats read + upsert + COMMIT",
  storeRender: "Store.render (cached template)",
  storeIncrement: "Store.increment",
  rawIncrement: "raw upsert ... RETURNING, + 1",
  txIncrement: "Store.transaction: get + set (the same read-modify-write)",
  storeSetNew: "Store.set of new keys",
  storeSetIfAbsent: "Store.setIfAbsent of new keys",
  rawSetIfAbsent: "raw INSERT ... ON CONFLICT DO NOTHING RETURNING",
  txSetIfAbsent: "Store.transaction: exists + set (the same check-then-write)",
  setIfAbsentLive: "Store.setIfAbsent of a live key, no write (reference)",
  storeDelete: "Store.delete of live keys",
  storeGetAndDelete: "Store.getAndDelete of live keys",
  rawGetAndDelete: "raw DELETE ... RETURNING value",
  txGetAndDelete: "Store.transaction: get + delete (the same take)",
  rawRender: "raw SELECT + string concatenation",
  storeTx: "Store.transaction",
  rawTx: "raw BEGIN IMMEDIATE + upserts + COMMIT",
  kvAtomic: "Deno KV atomic commit",
  separate: "Store.set x 10,000 separately",
  feedOff: "Store.set (changeFeed off)",
  feedOn: "Store.set (changeFeed on)",
  rawLogged: "raw upsert on a file with the change log's triggers (floor)",
  storePurge: "Store.purgeExpired()",
  rawPurge: "raw DELETE in batches of 2,000 (same SQL)",
  rawPurgeOne: "raw single DELETE (reference)",
} as const;

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}
