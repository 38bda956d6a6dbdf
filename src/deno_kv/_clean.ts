/**
 * What the Deno KV store removes after the fact: expired entries (with
 * `expire` events, through the one write path), the old entries of a
 * deleted group (already dead for readers: their versionstamps are older
 * than the group's marker), and chunks no entry or retained log event names
 * any more (replaced values, values a killed writer left staged).
 *
 * @module
 */

import { isCurrent, type LogRecord } from "./_keys.ts";
import { type Committed, type Entry, type KvOps, toEntry } from "./_kv.ts";

/** An expiry index entry found due. */
interface Due {
  readonly group: string;
  readonly key: string;
  readonly at: number;
}

/** Entries purged per atomic operation (one check each, of 100). */
const PURGE_BATCH = 50;
/** Dead entries removed per atomic operation. */
const CLEANUP_BATCH = 90;
/** Chunks unnamed and older than this by the store clock are removed. */
const STAGE_TTL_MS = 10 * 60_000;

/**
 * Deletes the entries expired by `now` with `expire` events, each only if
 * unchanged since read.
 *
 * @param ops The store's operations.
 * @param op The operation, for messages.
 * @param now The store clock.
 * @param delivered Hands the committed events out.
 * @param limit Deletes at most this many.
 * @returns How many entries were deleted.
 */
export async function purgeExpired(
  ops: KvOps,
  op: string,
  now: number,
  delivered: (committed: Committed) => Promise<void>,
  limit = Infinity,
): Promise<number> {
  let removed = 0;
  const due: Due[] = [];
  const limited = Number.isFinite(limit) ? { limit } : {};
  const index = await ops.collect(ops.keys.expiredBy(now), limited);
  for (const item of index) {
    const [, , at, group, key] = item.key as [
      string,
      string,
      number,
      string,
      string,
    ];
    due.push({ group, key, at });
  }
  for (let i = 0; i < due.length; i += PURGE_BATCH) {
    const batch = due.slice(i, i + PURGE_BATCH);
    removed += await purgeBatch(ops, op, now, batch, delivered);
  }
  return removed;
}

async function purgeBatch(
  ops: KvOps,
  op: string,
  now: number,
  due: Due[],
  delivered: (committed: Committed) => Promise<void>,
): Promise<number> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const head = await ops.head();
    const expired: Entry[] = [];
    const stale: Deno.KvKey[] = [];
    for (const { group, key, at } of due) {
      const { entry, marker } = await ops.read(group, key);

      const x = entry?.stored.x;
      if (
        entry !== undefined && isCurrent(entry.versionstamp, marker) &&
        x !== undefined && x <= now
      ) {
        expired.push(entry);
      }
      // An index entry of a value since replaced or removed is left over.
      if (x !== at) stale.push(ops.keys.expiry(at, group, key));
    }
    if (stale.length > 0) await deleteKeys(ops, stale);
    if (expired.length === 0) return 0;
    const committed = await ops.commit(
      op,
      head,
      expired.map((old) => ({
        change: { type: "expire", group: old.group, key: old.key },
        old,
      })),
      now,
      {
        checks: expired.map((e) => ({
          key: ops.keys.entry(e.group, e.key),
          versionstamp: e.versionstamp,
        })),
      },
    );
    if (committed !== undefined) {
      await delivered(committed);
      return expired.length;
    }
  }
  return 0;
}

/**
 * Removes the old entries of a deleted group (dead for readers since its
 * marker), their index entries, and then the marker itself.
 *
 * @param ops The store's operations.
 * @param group The group.
 */
export async function cleanupGroup(ops: KvOps, group: string): Promise<void> {
  const keys = ops.keys;
  for (let pass = 0; pass < 8; pass++) {
    const [marker, pending] = await ops.getMany([
      keys.marker(group),
      keys.cleanup(group),
    ]) as [Deno.KvEntryMaybe<number>, Deno.KvEntryMaybe<number>];
    if (marker.versionstamp === null) {
      if (pending.versionstamp !== null) await deleteKeys(ops, [pending.key]);
      return;
    }
    const dead: Entry[] = [];
    for (const item of await ops.collect(keys.group(group))) {
      const key = item.key[3];
      if (typeof key !== "string") continue;
      if (item.versionstamp >= marker.versionstamp) continue;
      const entry = toEntry(group, key, item);
      if (entry !== undefined) dead.push(entry);
    }
    let clean = true;
    for (let i = 0; i < dead.length; i += CLEANUP_BATCH) {
      const batch = dead.slice(i, i + CLEANUP_BATCH);
      if (!await removeDead(ops, batch)) clean = false;
    }
    if (!clean) continue;
    // Every entry older than the marker is gone and no new one can be
    // older: the marker has done its work.
    await ops.apply("delete group", (atomic) => {
      atomic.check(marker).delete(marker.key).delete(pending.key);
    });
    return;
  }
}

async function removeDead(
  ops: KvOps,
  batch: readonly Entry[],
): Promise<boolean> {
  const keys = ops.keys;
  const result = await ops.apply("delete group", (atomic) => {
    for (const entry of batch) {
      const key = keys.entry(entry.group, entry.key);
      atomic.check({ key, versionstamp: entry.versionstamp }).delete(key);
      // Their chunks stay for the log events naming them, if any.
      const x = entry.stored.x;
      if (x !== undefined) {
        atomic.delete(keys.expiry(x, entry.group, entry.key));
      }
    }
  });
  return result.ok;
}

/**
 * Housekeeping: finishes group cleanups a killed writer left, and removes
 * the chunks that no entry and no retained log event names and that are
 * older than a few minutes (values replaced, or staged by writers that died
 * before their commit). The chunk sweep reads every entry and the log, but
 * only when the store holds large values at all.
 *
 * @param ops The store's operations.
 * @param now The store clock.
 */
export async function housekeep(ops: KvOps, now: number): Promise<void> {
  const keys = ops.keys;
  for (const item of await ops.collect(keys.cleanups())) {
    await cleanupGroup(ops, item.key[2] as string);
  }
  const any = await ops.collect(keys.allChunks(), { limit: 1 });
  if (any.length === 0) return;
  const named = new Set<string>();
  const entries = await ops.scan("remove unused chunks", keys.groupsFrom(""));
  for (const entry of entries) {
    if (entry.stored.c !== undefined) named.add(entry.stored.c[0]);
  }
  for (const item of await ops.collect<LogRecord>(keys.wholeLog())) {
    if (item.value.c !== undefined) named.add(item.value.c[0]);
  }
  const chunks = await ops.collect<{ at: number } | Uint8Array>(
    keys.allChunks(),
  );
  const unused = new Map<string, number>();
  for (const item of chunks) {
    const id = item.key[2] as string;
    if (named.has(id)) continue;
    if (item.key.length === 3) {
      const at = (item.value as { at: number }).at;
      if (at > now - STAGE_TTL_MS) named.add(id);
      else unused.set(id, 0);
    } else if (unused.has(id)) {
      unused.set(id, (unused.get(id) as number) + 1);
    }
  }
  for (const [id, count] of unused) await ops.dropChunks([id, count]);
}

async function deleteKeys(ops: KvOps, keys: readonly Deno.KvKey[]) {
  for (let i = 0; i < keys.length; i += 500) {
    await ops.apply("remove leftovers", (atomic) => {
      for (const key of keys.slice(i, i + 500)) atomic.delete(key);
    });
  }
}
