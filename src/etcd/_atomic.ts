/**
 * The five atomic operations of the etcd store, as compare-and-swap: each
 * decides from what the key holds, then writes in one guarded `txn` whose
 * compare is the key's `mod_revision` as read (0: absent), and whose failure
 * branch reads the key again, so that a conflict costs one round trip and
 * the retry starts from the truth. The first guess is what this instance
 * last read or wrote there (or "absent" where that is the likely case), so
 * an uncontended operation is one `txn`; a guess that says "nothing to
 * write" is confirmed by a read first, since a stale guess must never
 * answer. Writes go through the store's one write path (`Kv.put`/`Kv.take`:
 * marker, leases, events); an outcome that cannot be known throws
 * `StoreUnavailableError` and is never sent again.
 *
 * @module
 */

import type { AsyncTransaction } from "../_async_tx.ts";
import { conflictPause } from "../_async_tx.ts";
import {
  assertAtomicArgs,
  assertDelta,
  assertText,
  ATOMIC_OPS,
} from "../_check.ts";
import { addToCounter } from "../_counter.ts";
import { StoreError } from "../errors.ts";
import { expiryOf, isExpired } from "../_time.ts";
import type { Json } from "./_client.ts";
import { rangeResult } from "./_client.ts";
import { decodeValue, type StoredValue, toBase64 } from "./_keys.ts";
import { type Kv, modEquals, type Put, type Recent, recentOf } from "./_kv.ts";

/** The five operations, as `AsyncStore` declares them. */
export type AtomicOps = Pick<
  AsyncTransaction,
  | "increment"
  | "setIfAbsent"
  | "compareAndSet"
  | "compareAndDelete"
  | "getAndDelete"
>;

/** What the operations need of the store. */
export interface AtomicHost {
  /** The store's reads and writes. */
  readonly kv: Kv;
  /** Throws `StoreClosedError` naming `op` once the store is closed. */
  open(op: string): void;
  /** The store's checked clock. */
  now(op: string): number;
}

// What an operation decided from a live value: its answer, and the write
// that makes it true (none: the answer holds as read).
interface Plan<T> {
  readonly result: T;
  readonly write?: { readonly put: Put } | { readonly delete: true };
}

// More than a transaction's 64: a retry is one round trip and runs nothing
// of the caller's again, and under a tight race a writer can lose dozens in
// a row to writers that keep winning (each knows its own last write).
const MAX_CONFLICTS = 256;

type Decide<T> = (live: StoredValue | undefined, now: number) => Plan<T>;

/** The atomic operations of one etcd store. */
export class EtcdAtomic implements AtomicOps {
  #host: AtomicHost;

  /** @param host The store. */
  constructor(host: AtomicHost) {
    this.#host = host;
  }

  /** As `AsyncStore.increment`. */
  async increment(
    group: string,
    key: string,
    delta = 1,
    ttlMs?: number,
  ): Promise<number> {
    const op = ATOMIC_OPS.increment;
    this.#start(op, group, key);
    assertDelta(op, delta);
    assertAtomicArgs(op, { ttlMs });
    this.#fresh(op, "", ttlMs, this.#host.now(op));
    return await swap(this.#host, op, group, key, true, (live, now) => {
      const value = addToCounter(op, group, key, live?.value, delta);
      // An existing counter keeps its deadline and its lease.
      const put: Put = live === undefined
        ? { group, key, ...this.#fresh(op, value, ttlMs, now) }
        : {
          group,
          key,
          value,
          expiresAt: live.expiresAt,
          keepLease: live.expiresAt !== undefined,
        };
      return { result: Number(value), write: { put } };
    });
  }

  /** As `AsyncStore.setIfAbsent`. */
  async setIfAbsent(
    group: string,
    key: string,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.setIfAbsent;
    this.#start(op, group, key);
    assertAtomicArgs(op, { value: [value], ttlMs });
    return await this.#absentOnly(op, group, key, value, ttlMs);
  }

  /** As `AsyncStore.compareAndSet`. */
  async compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.compareAndSet;
    this.#start(op, group, key);
    assertAtomicArgs(op, { expected: [expected, true], value: [value], ttlMs });
    if (expected === undefined) {
      return await this.#absentOnly(op, group, key, value, ttlMs);
    }
    this.#fresh(op, value, ttlMs, this.#host.now(op));
    return await swap(
      this.#host,
      op,
      group,
      key,
      false,
      (live, now) =>
        live?.value !== expected ? { result: false } : {
          result: true,
          write: { put: { group, key, ...this.#fresh(op, value, ttlMs, now) } },
        },
    );
  }

  /** As `AsyncStore.compareAndDelete`. */
  async compareAndDelete(
    group: string,
    key: string,
    expected: string,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.compareAndDelete;
    this.#start(op, group, key);
    assertAtomicArgs(op, { expected: [expected, false] });
    return await swap(
      this.#host,
      op,
      group,
      key,
      false,
      (live) =>
        live?.value !== expected
          ? { result: false }
          : { result: true, write: { delete: true } },
    );
  }

  /** As `AsyncStore.getAndDelete`. */
  async getAndDelete(group: string, key: string): Promise<string | undefined> {
    const op = ATOMIC_OPS.getAndDelete;
    this.#start(op, group, key);
    const kv = this.#host.kv;
    // No compare needed: the delete hands back what it removed. An expired
    // entry is removed as `delete` removes it.
    const { prev } = await kv.take(op, kv.keys.key(group, key));
    return liveOf(prev, this.#host.now(op))?.value;
  }

  #start(op: string, group: unknown, key: unknown): void {
    this.#host.open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
  }

  // The entry a write creates; a TTL past the safe integers is refused
  // before anything is read.
  #fresh(op: string, value: string, ttlMs: unknown, now: number) {
    const ttl = ttlMs as number | undefined;
    const expiresAt = ttl === undefined ? undefined : expiryOf(op, now, ttl);
    return { value, expiresAt, ttlMs: ttl };
  }

  #absentOnly(
    op: string,
    group: string,
    key: string,
    value: string,
    ttlMs: number | undefined,
  ): Promise<boolean> {
    this.#fresh(op, value, ttlMs, this.#host.now(op));
    return swap(
      this.#host,
      op,
      group,
      key,
      true,
      (live, now) =>
        live !== undefined ? { result: false } : {
          result: true,
          write: { put: { group, key, ...this.#fresh(op, value, ttlMs, now) } },
        },
    );
  }
}

// One compare-and-swap, retried on conflict. `absent`: guess that the key
// is absent when this instance knows nothing of it.
async function swap<T>(
  host: AtomicHost,
  op: string,
  group: string,
  key: string,
  absent: boolean,
  decide: Decide<T>,
): Promise<T> {
  const kv = host.kv;
  const k = kv.keys.key(group, key);
  const failure: Json[] = [{ request_range: { key: toBase64(k) } }];
  let known: Recent | undefined = kv.recent(k) ??
    (absent ? { modRevision: 0, bytes: undefined, at: 0 } : undefined);
  let fresh = false;
  for (let conflicts = 0; conflicts < MAX_CONFLICTS;) {
    if (known === undefined) {
      known = await kv.readRecent(op, k);
      fresh = true;
    }
    let plan: Plan<T>;
    try {
      const now = host.now(op);
      plan = decide(liveOf(known.bytes, now), now);
    } catch (error) {
      // A bad value is reported only as read now, not as remembered.
      if (fresh || !(error instanceof StoreError)) throw error;
      known = undefined;
      continue;
    }
    if (plan.write === undefined) {
      if (fresh) return plan.result;
      known = undefined;
      continue;
    }
    const compare = [modEquals(k, known.modRevision)];
    const { result } = "put" in plan.write
      ? { result: await kv.put(op, plan.write.put, compare, failure) }
      : await kv.take(op, k, compare, failure);
    if (result.succeeded) return plan.result;
    known = fromFailure(kv, k, result.responses, result.revision);
    // A stale guess is no conflict. Another writer got there first: retry
    // at once on what the failure branch read, the freshest there is (a
    // pause would only make it stale while the winners go on); now and then
    // a short jittered pause, so that writers all losing to each other part.
    if (fresh && ++conflicts % 8 === 0) await conflictPause(conflicts / 8);
    fresh = known !== undefined;
  }
  throw new StoreError(
    `Cannot ${op}: key ${JSON.stringify(key)} in group ${
      JSON.stringify(group)
    } changed under it ${MAX_CONFLICTS} times in a row (other writers); nothing was written`,
  );
}

// What the failure branch read, in the revision of the failed compare;
// `undefined` when the answer is lost (a copy applied earlier).
function fromFailure(
  kv: Kv,
  k: Uint8Array,
  responses: Json[] | undefined,
  revision: number,
): Recent | undefined {
  const range = responses?.[0]?.response_range;
  if (range === undefined) return undefined;
  const state = recentOf(rangeResult(range).kvs[0], revision);
  kv.note(k, state);
  return state;
}

function liveOf(
  bytes: Uint8Array | undefined,
  now: number,
): StoredValue | undefined {
  if (bytes === undefined) return undefined;
  const stored = decodeValue(bytes);
  return isExpired(stored?.expiresAt, now) ? undefined : stored;
}
