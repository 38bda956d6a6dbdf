/**
 * Writes of the Deno KV store that read first: a write of one key decided
 * from its current entry ({@linkcode writeKey}), an optimistic transaction
 * attempt ({@linkcode DenoKvAttempt}) and a quota-checked write
 * ({@linkcode quotaWrite}). Each reads the head first and commits through
 * `KvOps.commit`, which checks that the head did not move: every logical
 * write moves it, so a commit whose head held saw no write in between.
 *
 * @module
 */

import { QuotaExceededError, StoreError } from "../errors.ts";
import type { TxAttempt, TxEntry, TxPlan } from "../_async_tx.ts";
import type { Quota } from "../_async_hooks.ts";
import { expiryOf } from "../_time.ts";
import { isCurrent, isLive } from "./_keys.ts";
import {
  type Change,
  type Committed,
  type Encoded,
  type Entry,
  type Head,
  type KvOps,
  type Planned,
  toEntry,
} from "./_kv.ts";
import { cleanupGroup } from "./_clean.ts";

const MAX_ATTEMPTS = 64;

/** What a write needs besides the operations. */
export interface WriteContext {
  readonly ops: KvOps;
  /** The store's checked clock. */
  readonly now: (op: string) => number;
  /** Hands committed events out; resolves once they are. */
  readonly delivered: (committed: Committed) => Promise<void>;
  /** Notes a head read. */
  readonly saw: (seq: number) => void;
}

/** What a key's write decides from the current state of the key. */
export interface Decision<T> {
  readonly result: T;
  /** The change to make; none: write nothing. */
  readonly change?: Change | undefined;
}

/** The current state of a key as a write sees it. */
export interface Current {
  readonly group: string;
  readonly key: string;
  /** Whether a live entry is there. */
  readonly live: boolean;
  /** The live value, if any (and asked for). */
  readonly value: string | undefined;
  /** The live entry's deadline, if any. */
  readonly expiresAt: number | undefined;
  /** The stored entry, live, expired or deleted with its group. */
  readonly entry: Entry | undefined;
  /** Whether the stored entry is expired (and not deleted with its group). */
  readonly expired: boolean;
  readonly now: number;
}

/**
 * Writes one key from what it holds now, retried on a conflict: `decide`
 * sees the key's current state and returns the change (or none).
 *
 * @typeParam T What the write returns.
 * @param ctx The store's operations.
 * @param op The operation, for messages.
 * @param group The group.
 * @param key The key.
 * @param decide Decides the change; may throw to refuse.
 * @param options `prepare` reads more before `decide`, after the head (so
 * that the commit's head check covers it too); `needValue: false` spares
 * reading a large live value `decide` does not look at.
 * @returns What `decide` returned as the result.
 * @throws {StoreError} After 64 conflicts in a row.
 */
export async function writeKey<T>(
  ctx: WriteContext,
  op: string,
  group: string,
  key: string,
  decide: (current: Current) => Decision<T>,
  options: {
    prepare?: (current: Current) => Promise<void>;
    needValue?: boolean;
  } = {},
): Promise<T> {
  const { prepare, needValue = true } = options;
  let encoded: Encoded | undefined;
  let encodedValue: string | undefined;
  try {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const now = ctx.now(op);
      const read = await ctx.ops.read(group, key, true);
      ctx.saw(read.head.seq);
      const current = await currentOf(
        ctx.ops,
        [group, key],
        read,
        now,
        needValue,
      );
      if (current === undefined) continue;
      await prepare?.(current);
      const { result, change } = decide(current);
      if (change === undefined) return result;
      if (
        change.type === "set" &&
        (encoded === undefined || encodedValue !== change.value ||
          encoded.stored.x !== change.expiresAt)
      ) {
        await release(ctx.ops, encoded);
        encoded = await ctx.ops.encode(op, change.value, change.expiresAt, now);
        encodedValue = change.value;
      }
      const committed = await ctx.ops.commit(
        op,
        read.head,
        [{ change, old: read.entry }],
        now,
        change.type === "set" && encoded !== undefined
          ? { encoded: new Map([[0, encoded]]) }
          : {},
      );
      if (committed !== undefined) {
        encoded = undefined;
        await ctx.delivered(committed);
        return result;
      }
      await stagingHeld(ctx.ops, op, encoded);
      await backoff(attempt);
    }
  } finally {
    await release(ctx.ops, encoded);
  }
  throw new StoreError(
    `Cannot ${op}: it conflicted with other writers ${MAX_ATTEMPTS} times in a row`,
  );
}

async function currentOf(
  ops: KvOps,
  [group, key]: [string, string],
  read: { entry?: Entry; marker: string | null },
  now: number,
  needValue = true,
): Promise<Current | undefined> {
  const entry = read.entry;
  const current = entry !== undefined &&
    isCurrent(entry.versionstamp, read.marker);
  const live = current && isLive(entry, null, now);
  let value: string | undefined;
  if (live && needValue) {
    value = await ops.value(entry.stored);
    // A large value replaced meanwhile: read again.
    if (value === undefined) return undefined;
  }
  return {
    group,
    key,
    live,
    value,
    expiresAt: live ? entry.stored.x : undefined,
    entry,
    expired: current && !live,
    now,
  };
}

async function release(ops: KvOps, encoded: Encoded | undefined) {
  if (encoded !== undefined) await ops.unstage(encoded).catch(() => {});
}

// A staged value whose staging record housekeeping took away (its writer
// stalled for minutes) cannot commit any more.
async function stagingHeld(ops: KvOps, op: string, encoded?: Encoded) {
  const ref = encoded?.stored.c;
  if (encoded?.staged === undefined || ref === undefined) return;
  const stage = await ops.kv.get(ops.keys.stage(ref[0]));
  if (stage.versionstamp === encoded.staged) return;
  throw new StoreError(
    `Cannot ${op}: its staged chunks were removed as abandoned; nothing was written`,
  );
}

function backoff(attempt: number): Promise<void> {
  return new Promise((r) =>
    setTimeout(r, Math.random() * Math.min(2 ** attempt, 100))
  );
}

/** A transaction attempt: reads after one head, committed if it held. */
export class DenoKvAttempt implements TxAttempt {
  #ctx: WriteContext;
  #head: Promise<Head> | undefined;
  /** Stored entries read (live or not), by group and key. */
  #seen = new Map<string, { entry?: Entry; current: boolean }>();

  /** @param ctx The store's operations. */
  constructor(ctx: WriteContext) {
    this.#ctx = ctx;
  }

  #start(): Promise<Head> {
    this.#head ??= this.#ctx.ops.head();
    return this.#head;
  }

  async get(group: string, key: string): Promise<TxEntry | undefined> {
    await this.#start();
    const now = this.#ctx.now("get value");
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const read = await this.#ctx.ops.read(group, key);
      const current = await currentOf(this.#ctx.ops, [group, key], read, now);
      if (current === undefined) continue;
      this.#seen.set(id(group, key), {
        ...(read.entry ? { entry: read.entry } : {}),
        current: read.entry !== undefined &&
          isCurrent(read.entry.versionstamp, read.marker),
      });
      return current.value === undefined
        ? undefined
        : { value: current.value, expiresAt: current.expiresAt };
    }
    throw new StoreError("Cannot get value: it kept changing while read");
  }

  async getAll(group: string): Promise<Map<string, TxEntry>> {
    await this.#start();
    const ops = this.#ctx.ops;
    const now = this.#ctx.now("get all values");
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entries = await ops.scan("get all values", ops.keys.group(group));
      const live = await ops.withValues(entries, now);
      if (live === undefined) continue;
      for (const entry of entries) {
        this.#seen.set(id(group, entry.key), { entry, current: true });
      }
      const out = new Map<string, TxEntry>();
      for (const { entry, value } of live) {
        out.set(entry.key, { value, expiresAt: entry.stored.x });
      }
      return out;
    }
    throw new StoreError("Cannot get all values: they kept changing");
  }

  async usage(prefix: string): Promise<Map<string, number>> {
    await this.#start();
    return await liveUsage(this.#ctx.ops, prefix, this.#ctx.now("count keys"));
  }

  async commit(plan: TxPlan): Promise<boolean> {
    const op = "run transaction";
    const head = await this.#start();
    const now = this.#ctx.now(op);
    const planned = await this.#plan(plan, now);
    if (planned.length === 0) return true;
    const encoded = new Map<number, Encoded>();
    let committed: Committed | undefined;
    try {
      for (const [i, { change }] of planned.entries()) {
        if (change.type !== "set") continue;
        const { value, expiresAt } = change;
        encoded.set(i, await this.#ctx.ops.encode(op, value, expiresAt, now));
      }
      committed = await this.#ctx.ops.commit(op, head, planned, now, {
        encoded,
      });
    } finally {
      if (committed === undefined) {
        for (const e of encoded.values()) await release(this.#ctx.ops, e);
      }
    }
    if (committed === undefined) return false;
    await this.#ctx.delivered(committed);
    for (const group of plan.cleared.keys()) {
      await cleanupGroup(this.#ctx.ops, group);
    }
    return true;
  }

  async #plan(plan: TxPlan, now: number): Promise<Planned[]> {
    const planned: Planned[] = [];
    for (const group of plan.cleared.keys()) {
      planned.push({ change: { type: "delete_group", group, key: "" } });
    }
    await this.#readUnseen(plan);
    for (const [group, keys] of plan.keys) {
      const cleared = plan.cleared.has(group);
      for (const [key, entry] of keys) {
        const seen = this.#seen.get(id(group, key));
        const old = seen?.entry;
        if (entry !== null) {
          const { value, expiresAt } = entry;
          planned.push({
            change: { type: "set", group, key, value, expiresAt },
            old,
          });
          continue;
        }
        // Deleting what the group's deletion already removes logs nothing.
        if (cleared || old === undefined || !seen?.current) continue;
        const type = isLive(old, null, now) ? "delete" : "expire";
        planned.push({ change: { type, group, key }, old });
      }
    }
    return planned;
  }

  // The stored entries of the keys written without being read, for their
  // index entries and chunks; the deletions need the current ones only.
  async #readUnseen(plan: TxPlan): Promise<void> {
    const ops = this.#ctx.ops;
    const unseen: [string, string][] = [];
    for (const [group, keys] of plan.keys) {
      for (const key of keys.keys()) {
        if (!this.#seen.has(id(group, key))) unseen.push([group, key]);
      }
    }
    for (let i = 0; i < unseen.length; i += 5) {
      const some = unseen.slice(i, i + 5);
      const got = await ops.kv.getMany(
        some.flatMap(([g, k]) => [ops.keys.entry(g, k), ops.keys.marker(g)]),
      );
      some.forEach(([group, key], j) => {
        const entry = toEntry(group, key, got[2 * j]);
        const marker = got[2 * j + 1]?.versionstamp ?? null;
        const current = entry !== undefined &&
          isCurrent(entry.versionstamp, marker);
        this.#seen.set(id(group, key), {
          ...(entry ? { entry } : {}),
          current,
        });
      });
    }
  }
}

function id(group: string, key: string): string {
  return JSON.stringify([group, key]);
}

/**
 * Live keys per group of the groups starting with `prefix`.
 *
 * @param ops The store's operations.
 * @param prefix A group prefix.
 * @param now The store clock.
 * @returns Live keys by group, for groups with at least one.
 */
export async function liveUsage(
  ops: KvOps,
  prefix: string,
  now: number,
): Promise<Map<string, number>> {
  const entries = await ops.scan(
    "count all keys",
    ops.keys.groupsFrom(prefix),
    (group) => !group.startsWith(prefix),
  );
  const usage = new Map<string, number>();
  for (const entry of entries) {
    if (!isLive(entry, null, now)) continue;
    usage.set(entry.group, (usage.get(entry.group) ?? 0) + 1);
  }
  return usage;
}

/**
 * Writes a key of a namespace unless that takes the namespace past its
 * quota. The count and the write are one serializable step (the head
 * check), so racing writers from any process never exceed the quota.
 *
 * @param ctx The store's operations.
 * @param args What to write and the quota.
 * @throws {QuotaExceededError} When the write would pass the quota.
 */
export async function quotaWrite(
  ctx: WriteContext,
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
  const { op, namespace, quota, group, key, value, ttlMs } = args;
  let usage: Map<string, number> | undefined;
  await writeKey(ctx, op, group, key, (current) => {
    if (!current.live && usage !== undefined) {
      let keys = 0;
      for (const n of usage.values()) keys += n;
      const over = quota.maxKeys > 0 && keys >= quota.maxKeys
        ? "maxKeys"
        : quota.maxGroups > 0 && usage.size >= quota.maxGroups &&
            !usage.has(group)
        ? "maxGroups"
        : undefined;
      if (over !== undefined) {
        throw new QuotaExceededError(op, namespace, over, quota[over]);
      }
    }
    const expiresAt = ttlMs === undefined
      ? undefined
      : expiryOf(op, current.now, ttlMs);
    return {
      result: undefined,
      change: { type: "set", group, key, value, expiresAt },
    };
  }, {
    needValue: false,
    prepare: async (current) => {
      usage = current.live
        ? undefined
        : await liveUsage(ctx.ops, `${namespace}:`, current.now);
    },
  });
}
