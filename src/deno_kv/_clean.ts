/**
 * What the Deno KV store removes after the fact: expired entries (with
 * `expire` events, through the one write path), the old entries of a
 * deleted group (already dead for readers: their versionstamps are older
 * than the group's marker), chunks no entry or retained log event names any
 * more, and values a killed writer left staged.
 *
 * @module
 */

import { isCurrent, LOG_SIZE } from "./_keys.ts";
import { type Committed, type Entry, type KvOps, toEntry } from "./_kv.ts";

/** Entries purged per atomic operation (one check each, of 100). */
const PURGE_BATCH = 50;
/** Dead entries removed per atomic operation. */
const CLEANUP_BATCH = 90;
/** A staged value older than this by the store clock was abandoned. */
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
  const due: { group: string; key: string; at: number }[] = [];
  for await (const item of ops.kv.list(ops.keys.expiredBy(now))) {
    const [, , at, group, key] = item.key as [
      string,
      string,
      number,
      string,
      string,
    ];
    due.push({ group, key, at });
    if (due.length >= limit) break;
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
  due: { group: string; key: string; at: number }[],
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
    if (stale.length > 0) await deleteKeys(ops.kv, stale);
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
    const [marker, pending] = await ops.kv.getMany<[number, number]>([
      keys.marker(group),
      keys.cleanup(group),
    ]);
    if (marker.versionstamp === null) {
      if (pending.versionstamp !== null) {
        await deleteKeys(ops.kv, [pending.key]);
      }
      return;
    }
    const dead: Entry[] = [];
    for await (const item of ops.kv.list(keys.group(group))) {
      const key = item.key[3];
      if (typeof key !== "string") continue;
      if (item.versionstamp >= marker.versionstamp) continue;
      const entry = toEntry(group, key, item);
      if (entry !== undefined) dead.push(entry);
    }
    let clean = true;
    for (let i = 0; i < dead.length; i += CLEANUP_BATCH) {
      const batch = dead.slice(i, i + CLEANUP_BATCH);
      if (!await removeDead(ops, batch, marker.value)) clean = false;
    }
    if (!clean) continue;
    // Every entry older than the marker is gone and no new one can be
    // older: the marker has done its work.
    await ops.kv.atomic()
      .check(marker)
      .delete(marker.key)
      .delete(pending.key)
      .commit();
    return;
  }
}

async function removeDead(
  ops: KvOps,
  batch: readonly Entry[],
  seq: number,
): Promise<boolean> {
  const keys = ops.keys;
  const atomic = ops.kv.atomic();
  for (const entry of batch) {
    const key = keys.entry(entry.group, entry.key);
    atomic.check({ key, versionstamp: entry.versionstamp }).delete(key);
    const { x, c } = entry.stored;
    if (x !== undefined) atomic.delete(keys.expiry(x, entry.group, entry.key));
    // The log may still hold an event naming these chunks.
    if (c !== undefined) atomic.set(keys.garbage(seq, c[0]), c[1]);
  }
  return (await atomic.commit()).ok;
}

/**
 * Housekeeping: finishes group cleanups a killed writer left, removes the
 * chunks no retained log event names, and the values staged by writers
 * that died before their commit.
 *
 * @param ops The store's operations.
 * @param now The store clock.
 */
export async function housekeep(ops: KvOps, now: number): Promise<void> {
  const keys = ops.keys;
  for await (const item of ops.kv.list(keys.cleanups())) {
    await cleanupGroup(ops, item.key[2] as string);
  }
  const head = await ops.head();
  const before = head.seq - LOG_SIZE + 1;
  if (before > 0) {
    for await (const item of ops.kv.list<number>(keys.garbageBefore(before))) {
      await ops.dropChunks([item.key[3] as string, item.value], [item.key]);
    }
  }
  for await (
    const item of ops.kv.list<{ at: number; n: number }>(keys.stages())
  ) {
    if (item.value.at > now - STAGE_TTL_MS) continue;
    const id = item.key[2] as string;
    // Taken away only if its writer has not committed it meanwhile.
    const gone = await ops.kv.atomic().check(item).delete(item.key).commit();
    if (gone.ok) await ops.dropChunks([id, item.value.n]);
  }
}

async function deleteKeys(kv: Deno.Kv, keys: readonly Deno.KvKey[]) {
  for (let i = 0; i < keys.length; i += 500) {
    const atomic = kv.atomic();
    for (const key of keys.slice(i, i + 500)) atomic.delete(key);
    await atomic.commit();
  }
}
