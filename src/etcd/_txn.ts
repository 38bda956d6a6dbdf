/**
 * One optimistic attempt of an etcd-store transaction, and quota-checked
 * writes: reads recorded as compares, writes applied by one etcd `txn` only
 * while every compare holds.
 *
 * @module
 */

import { QuotaExceededError, StoreError } from "../errors.ts";
import {
  conflictPause,
  MAX_CONFLICTS,
  type TxAttempt,
  type TxEntry,
  type TxPlan,
} from "../_async_tx.ts";
import { expiryOf, isExpired } from "../_time.ts";
import type { Quota } from "../_async_hooks.ts";
import type { Json } from "./_client.ts";
import { utf8 } from "./_keys.ts";
import { prefixEnd, toBase64 } from "./_keys.ts";
import {
  type Entry,
  type Kv,
  MAX_REQUEST_BYTES,
  MAX_TXN_CHANGES,
  MAX_TXN_OPS,
  modEquals,
  unchangedSince,
} from "./_kv.ts";

const OP = "run transaction";

/** A transaction attempt against etcd. */
export class EtcdAttempt implements TxAttempt {
  #kv: Kv;
  #now: () => number;
  #compares: Json[] = [];
  #seen = new Set<string>();

  constructor(kv: Kv, now: () => number) {
    this.#kv = kv;
    this.#now = now;
  }

  async get(group: string, key: string): Promise<TxEntry | undefined> {
    const { entry } = await this.#kv.read("get value", group, key);
    this.#compare(this.#kv.keys.key(group, key), entry?.modRevision ?? 0);
    return this.#live(entry);
  }

  async getAll(group: string): Promise<Map<string, TxEntry>> {
    // New keys change the range's newest revision; deleted ones only their
    // own: both are compared.
    const start = this.#kv.keys.groupStart(group);
    const entries = await this.#scanUnchanged("get all values", start);
    const out = new Map<string, TxEntry>();
    for (const entry of entries) {
      this.#compare(entry.bytes, entry.modRevision);
      const live = this.#live(entry);
      if (live !== undefined) out.set(entry.key, live);
    }
    return out;
  }

  async usage(prefix: string): Promise<Map<string, number>> {
    // Quotas only care about keys added meanwhile.
    const start = this.#kv.keys.groupsStart(prefix);
    const entries = await this.#scanUnchanged("count all keys", start);
    return liveUsage(entries, this.#now());
  }

  // Reads the keys starting with `start`; the commit requires that none of
  // them has changed since (added or rewritten keys; deleted ones vanish).
  async #scanUnchanged(op: string, start: Uint8Array): Promise<Entry[]> {
    const { entries, revision } = await this.#kv.scan(
      op,
      start,
      prefixEnd(start),
    );
    this.#compares.push(unchangedSince(start, revision));
    return entries;
  }

  async commit(plan: TxPlan): Promise<boolean> {
    const kv = this.#kv;
    const ops: Json[] = [];
    let bytes = 0;
    for (const [group, held] of plan.cleared) {
      const rewritten = plan.keys.get(group);
      for (const key of held) {
        if (rewritten?.has(key)) continue;
        const k = kv.keys.key(group, key);
        bytes += k.length;
        ops.push({ request_delete_range: { key: toBase64(k) } });
      }
    }
    for (const [group, keys] of plan.keys) {
      for (const [key, entry] of keys) {
        if (entry === null) {
          const k = kv.keys.key(group, key);
          bytes += k.length;
          ops.push({ request_delete_range: { key: toBase64(k) } });
          continue;
        }
        const put = await kv.putRequest(OP, { group, key, ...entry });
        bytes += put.key.length + put.bytes.length;
        ops.push({ request_put: put.request });
      }
    }
    if (plan.cleared.size > 0) {
      const groups = utf8(JSON.stringify([...plan.cleared.keys()]));
      ops.push({
        request_put: {
          key: toBase64(kv.keys.groupMarker),
          value: toBase64(groups),
        },
      });
    }
    if (ops.length === 0) return true;
    limits(ops.length, this.#compares.length, bytes);
    const { succeeded } = await kv.write(OP, {
      compare: this.#compares,
      success: ops,
    });
    return succeeded;
  }

  #compare(key: Uint8Array, modRevision: number): void {
    const id = `${toBase64(key)}`;
    if (this.#seen.has(id)) return;
    this.#seen.add(id);
    this.#compares.push(modEquals(key, modRevision));
  }

  #live(entry: Entry | undefined): TxEntry | undefined {
    if (entry === undefined) return undefined;
    const at = entry.stored.expiresAt;
    if (isExpired(at, this.#now())) return undefined;
    return { value: entry.stored.value, expiresAt: at };
  }
}

function limits(ops: number, compares: number, bytes: number): void {
  if (ops > MAX_TXN_CHANGES) {
    throw new StoreError(
      `Cannot ${OP}: it makes ${ops} changes; etcd takes at most ${MAX_TXN_OPS} operations in one transaction, one of them the write's marker`,
    );
  }
  if (compares > MAX_TXN_OPS) {
    throw new StoreError(
      `Cannot ${OP}: it read ${compares} keys; etcd checks at most ${MAX_TXN_OPS} in one transaction`,
    );
  }
  if (bytes > MAX_REQUEST_BYTES) {
    throw new StoreError(
      `Cannot ${OP}: it writes ${bytes} bytes; etcd takes at most ${MAX_REQUEST_BYTES} bytes (1.5 MiB) in one request`,
    );
  }
}

/**
 * Live keys per group.
 *
 * @param entries Entries in group order.
 * @param now The clock.
 * @returns Live keys by group, for groups with at least one.
 */
export function liveUsage(
  entries: readonly Entry[],
  now: number,
): Map<string, number> {
  const usage = new Map<string, number>();
  for (const entry of entries) {
    if (isExpired(entry.stored.expiresAt, now)) continue;
    usage.set(entry.group, (usage.get(entry.group) ?? 0) + 1);
  }
  return usage;
}

// Counts the namespace's live keys and groups; at the quota, purges its
// expired keys and throws. Returns the revision counted at.
async function exactCheck(
  kv: Kv,
  op: string,
  namespace: string,
  quota: Quota,
  group: string,
  time: number,
): Promise<number> {
  const { entries, revision } = await kv.scanGroups(op, `${namespace}:`);
  const usage = liveUsage(entries, time);
  let keys = 0;
  for (const n of usage.values()) keys += n;
  const over = quota.maxKeys > 0 && keys >= quota.maxKeys
    ? "maxKeys"
    : quota.maxGroups > 0 && usage.size >= quota.maxGroups &&
        !usage.has(group)
    ? "maxGroups"
    : undefined;
  if (over === undefined) return revision;
  const expired = entries.filter((e) => isExpired(e.stored.expiresAt, time));
  await kv.purge(op, expired);
  throw new QuotaExceededError(op, namespace, over, quota[over]);
}

/**
 * Writes a key of a namespace unless that takes the namespace past its
 * quota, atomically across every instance: the write commits only if no
 * key of the namespace was written since the count.
 *
 * @param kv The store's operations.
 * @param now The store's checked clock.
 * @param args What to write and the quota.
 */
export async function quotaWrite(
  kv: Kv,
  now: (op: string) => number,
  args: {
    op: string;
    namespace: string;
    quota: Quota;
    group: string;
    key: string;
    value: string;
    ttlMs: number | undefined;
  },
): Promise<void> {
  const { op, namespace, quota, group, key, ttlMs } = args;
  const prefix = `${namespace}:`;
  for (let attempt = 1; attempt <= MAX_CONFLICTS; attempt++) {
    const time = now(op);
    const bound = await kv.bounds(op, group, key, prefix, quota.maxGroups > 0);
    const entry = bound.entry;
    const live = entry !== undefined &&
      !isExpired(entry.stored.expiresAt, time);
    const compare = [
      modEquals(kv.keys.key(group, key), entry?.modRevision ?? 0),
    ];
    if (!live) {
      // Rows and groups counted with expired ones are upper bounds: within
      // them, the quota holds without reading a single value.
      const rows = bound.rows - (entry === undefined ? 0 : 1);
      const others = bound.groups.size - (bound.groups.has(group) ? 1 : 0);
      let revision = bound.revision;
      if (
        (quota.maxKeys > 0 && rows >= quota.maxKeys) ||
        (quota.maxGroups > 0 && others >= quota.maxGroups)
      ) {
        revision = await exactCheck(kv, op, namespace, quota, group, time);
      }
      compare.push(unchangedSince(kv.keys.groupsStart(prefix), revision));
    }
    const expiresAt = ttlMs === undefined
      ? undefined
      : expiryOf(op, time, ttlMs);
    const { succeeded } = await kv.put(op, { ...args, expiresAt }, compare);
    if (succeeded) return;
    await conflictPause(attempt);
  }
  throw new StoreError(
    `Cannot ${op}: it conflicted with other writers to namespace "${namespace}" ${MAX_CONFLICTS} times in a row`,
  );
}
