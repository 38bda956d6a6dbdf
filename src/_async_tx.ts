/**
 * Optimistic transactions for the asynchronous stores: the function runs
 * against a private overlay (its reads see its own writes), every read is
 * recorded by the backend, and the commit applies the writes only if no
 * recorded read has changed meanwhile; otherwise the function runs again.
 * Shared by `toAsync` (which checks the reads inside one SQLite transaction)
 * and the etcd store (which checks them with compare-and-swap).
 *
 * @module
 */

import {
  assertAtomicArgs,
  assertDelta,
  assertText,
  assertTTL,
  ATOMIC_OPS,
  describe,
} from "./_check.ts";
import { addToCounter } from "./_counter.ts";
import { StoreError } from "./errors.ts";
import { expiryOf, isExpired } from "./_time.ts";

/** A live value as a transaction sees it. */
export interface TxEntry {
  readonly value: string;
  /** When it expires by the transaction's clock, ms epoch. */
  readonly expiresAt: number | undefined;
  /** For a value written by the transaction: the TTL it was given. */
  readonly ttlMs?: number;
}

/** What one attempt reads from the backend; each read is recorded. */
export interface TxAttempt {
  /** The live entry of a key. */
  get(group: string, key: string): Promise<TxEntry | undefined>;
  /** The live entries of a group, in key order. */
  getAll(group: string): Promise<Map<string, TxEntry>>;
  /**
   * Live keys per group of every group starting with `prefix`. A commit may
   * ignore deletions under the prefix made after this read (they only lower
   * the counts), never additions.
   */
  usage(prefix: string): Promise<Map<string, number>>;
  /** Applies the plan if no recorded read changed; `false` on a conflict. */
  commit(plan: TxPlan): Promise<boolean>;
}

/** The writes of a transaction, reduced to each key's final state. */
export interface TxPlan {
  /** Groups deleted as a whole, with the keys they held when read. */
  readonly cleared: ReadonlyMap<string, readonly string[]>;
  /** Final values (`null`: deleted) by group, then key, in call order. */
  readonly keys: ReadonlyMap<string, ReadonlyMap<string, TxEntry | null>>;
}

/**
 * The view of an asynchronous store inside its `transaction`: the methods of
 * the synchronous `Transaction`, returning promises. Reads see the
 * transaction's own writes; nothing is visible to others before the commit.
 */
export interface AsyncTransaction {
  /** As `Transaction.prototype.get`. */
  get(group: string, key: string): Promise<string | undefined>;
  /** As `Transaction.prototype.set`. */
  set(group: string, key: string, value: string): Promise<void>;
  /** As `Transaction.prototype.setWithTTL`. */
  setWithTTL(
    group: string,
    key: string,
    value: string,
    ttlMs: number,
  ): Promise<void>;
  /** As `Transaction.prototype.delete`. */
  delete(group: string, key: string): Promise<boolean>;
  /** As `Transaction.prototype.deleteGroup`. */
  deleteGroup(group: string): Promise<number>;
  /** As `Transaction.prototype.count`. */
  count(group: string): Promise<number>;
  /** As `Transaction.prototype.getAll`. */
  getAll(group: string): Promise<Map<string, string>>;
  /** As `Transaction.prototype.exists`. */
  exists(group: string, key: string): Promise<boolean>;
  /** As `Transaction.prototype.increment`. */
  increment(
    group: string,
    key: string,
    delta?: number,
    ttlMs?: number,
  ): Promise<number>;
  /** As `Transaction.prototype.setIfAbsent`. */
  setIfAbsent(
    group: string,
    key: string,
    value: string,
    ttlMs?: number,
  ): Promise<boolean>;
  /** As `Transaction.prototype.compareAndSet`. */
  compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ): Promise<boolean>;
  /** As `Transaction.prototype.compareAndDelete`. */
  compareAndDelete(
    group: string,
    key: string,
    expected: string,
  ): Promise<boolean>;
  /** As `Transaction.prototype.getAndDelete`. */
  getAndDelete(group: string, key: string): Promise<string | undefined>;
}

/** The atomic operations, which a transaction offers too. */
type AtomicMethod =
  | "increment"
  | "setIfAbsent"
  | "compareAndSet"
  | "compareAndDelete"
  | "getAndDelete";

/** Reaches the namespace usage of a transaction; for scoped views. */
export const TX_USAGE: unique symbol = Symbol("AsyncTransaction.usage");

/** A transaction that can also report namespace usage. */
export interface UsageTransaction extends AsyncTransaction {
  /** Live keys per group under `prefix`, the transaction's writes included. */
  [TX_USAGE](prefix: string): Promise<Map<string, number>>;
}

/** How many conflicts in a row an optimistic write takes before it gives up. */
export const MAX_CONFLICTS = 64;

/**
 * The pause after a conflict: others are writing the same keys, so back off
 * a little, with jitter, longer as conflicts repeat.
 *
 * @param attempt How many conflicts in a row, from 1.
 * @returns A promise that settles after the pause.
 */
export function conflictPause(attempt: number): Promise<void> {
  return new Promise((r) =>
    setTimeout(r, Math.random() * Math.min(2 ** attempt, 100))
  );
}

/**
 * Runs `fn` optimistically until one attempt commits without conflict.
 *
 * @param fn The caller's work.
 * @param begin Starts an attempt.
 * @param now The store's checked clock.
 * @returns What the committed attempt's `fn` returned.
 * @throws {TypeError} When `fn` is not a function.
 * @throws {StoreError} When the transaction is used after `fn` settled, or
 * keeps conflicting.
 */
export async function runOptimistic<T>(
  fn: (tx: AsyncTransaction) => T | Promise<T>,
  begin: () => TxAttempt,
  now: (op: string) => number,
): Promise<T> {
  const op = "run transaction";
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot ${op}: fn must be a function, received ${describe(fn)}`,
    );
  }
  for (let attempt = 1; attempt <= MAX_CONFLICTS; attempt++) {
    const overlay = new Overlay(begin(), now);
    let result: T;
    try {
      result = await fn(overlay.view);
    } finally {
      overlay.live = false;
    }
    if (await overlay.attempt.commit(overlay.plan())) return result;
    await conflictPause(attempt);
  }
  throw new StoreError(
    `Cannot ${op}: it conflicted with other writers ${MAX_CONFLICTS} times in a row`,
  );
}

class Overlay {
  readonly attempt: TxAttempt;
  readonly view: UsageTransaction;
  live = true;
  #now: (op: string) => number;
  #cleared = new Map<string, string[]>();
  #keys = new Map<string, Map<string, TxEntry | null>>();

  constructor(attempt: TxAttempt, now: (op: string) => number) {
    this.attempt = attempt;
    this.#now = now;
    this.view = this.#makeView();
  }

  plan(): TxPlan {
    return { cleared: this.#cleared, keys: this.#keys };
  }

  #check(): void {
    if (!this.live) {
      throw new StoreError(
        "Cannot use transaction: it ended when its function returned",
      );
    }
  }

  async #get(group: string, key: string): Promise<TxEntry | undefined> {
    const own = this.#keys.get(group)?.get(key);
    if (own !== undefined) return this.#liveOr(own);
    if (this.#cleared.has(group)) return undefined;
    return await this.attempt.get(group, key);
  }

  #liveOr(entry: TxEntry | null): TxEntry | undefined {
    if (entry === null) return undefined;
    return isExpired(entry.expiresAt, this.#now("read value"))
      ? undefined
      : entry;
  }

  async #getAll(group: string): Promise<Map<string, TxEntry>> {
    const base = this.#cleared.has(group)
      ? new Map<string, TxEntry>()
      : await this.attempt.getAll(group);
    const own = this.#keys.get(group);
    if (own === undefined) return base;
    for (const [key, entry] of own) {
      const live = this.#liveOr(entry);
      if (live === undefined) base.delete(key);
      else base.set(key, live);
    }
    return new Map([...base].sort(([a], [b]) => compareText(a, b)));
  }

  #put(group: string, key: string, entry: TxEntry | null): void {
    let own = this.#keys.get(group);
    if (own === undefined) this.#keys.set(group, own = new Map());
    // Re-inserting keeps the map in the order of the last writes.
    own.delete(key);
    own.set(key, entry);
  }

  async #usage(prefix: string): Promise<Map<string, number>> {
    const usage = await this.attempt.usage(prefix);
    const groups = new Set<string>();
    for (const group of this.#cleared.keys()) groups.add(group);
    for (const group of this.#keys.keys()) groups.add(group);
    for (const group of groups) {
      if (!group.startsWith(prefix)) continue;
      const size = (await this.#getAll(group)).size;
      if (size > 0) usage.set(group, size);
      else usage.delete(group);
    }
    return usage;
  }

  // A value the transaction writes: with `ttlMs`, an expiry from now.
  #fresh(op: string, value: string, ttlMs: number | undefined): TxEntry {
    if (ttlMs === undefined) return { value, expiresAt: undefined };
    return { value, expiresAt: expiryOf(op, this.#now(op), ttlMs), ttlMs };
  }

  // Checks in the order the synchronous stores do: group, key, the rest.
  #keyed(op: string, group: unknown, key: unknown): void {
    this.#check();
    assertText(op, "group", group);
    assertText(op, "key", key);
  }

  // The atomic operations read the entry and record the write: the commit
  // applies it only if the entry is still what was read.
  #atomicView(): Pick<AsyncTransaction, AtomicMethod> {
    const ops = ATOMIC_OPS;
    return {
      increment: async (group, key, delta = 1, ttlMs) => {
        this.#keyed(ops.increment, group, key);
        assertDelta(ops.increment, delta);
        assertAtomicArgs(ops.increment, { ttlMs });
        const entry = await this.#get(group, key);
        const value = addToCounter(
          ops.increment,
          group,
          key,
          entry?.value,
          delta,
        );
        // An existing counter keeps its expiry, and the TTL it was given.
        const next = entry === undefined
          ? this.#fresh(ops.increment, value, ttlMs)
          : { ...entry, value };
        this.#put(group, key, next);
        return Number(value);
      },
      setIfAbsent: async (group, key, value, ttlMs) => {
        const op = ops.setIfAbsent;
        this.#keyed(op, group, key);
        assertAtomicArgs(op, { value: [value], ttlMs });
        if (await this.#get(group, key) !== undefined) return false;
        this.#put(group, key, this.#fresh(op, value, ttlMs));
        return true;
      },
      compareAndSet: async (group, key, expected, value, ttlMs) => {
        const op = ops.compareAndSet;
        this.#keyed(op, group, key);
        const args = { expected: [expected, true] as [unknown, boolean] };
        assertAtomicArgs(op, { ...args, value: [value], ttlMs });
        if ((await this.#get(group, key))?.value !== expected) return false;
        this.#put(group, key, this.#fresh(op, value, ttlMs));
        return true;
      },
      compareAndDelete: async (group, key, expected) => {
        const op = ops.compareAndDelete;
        this.#keyed(op, group, key);
        assertAtomicArgs(op, { expected: [expected, false] });
        if ((await this.#get(group, key))?.value !== expected) return false;
        this.#put(group, key, null);
        return true;
      },
      getAndDelete: async (group, key) => {
        this.#keyed(ops.getAndDelete, group, key);
        const entry = await this.#get(group, key);
        if (entry !== undefined) this.#put(group, key, null);
        return entry?.value;
      },
    };
  }

  #makeView(): UsageTransaction {
    const text = (op: string, name: string, value: unknown) => {
      this.#check();
      assertText(op, name, value);
    };
    return {
      ...this.#atomicView(),
      get: async (group, key) => {
        text("get value", "group", group);
        text("get value", "key", key);
        return (await this.#get(group, key))?.value;
      },
      set: (group, key, value) => {
        const op = "set value";
        text(op, "group", group);
        text(op, "key", key);
        text(op, "value", value);
        this.#put(group, key, { value, expiresAt: undefined });
        return Promise.resolve();
      },
      setWithTTL: (group, key, value, ttlMs) => {
        const op = "set value with TTL";
        text(op, "group", group);
        text(op, "key", key);
        text(op, "value", value);
        assertTTL(op, ttlMs);
        const expiresAt = expiryOf(op, this.#now(op), ttlMs);
        this.#put(group, key, { value, expiresAt, ttlMs });
        return Promise.resolve();
      },
      delete: async (group, key) => {
        text("delete key", "group", group);
        text("delete key", "key", key);
        const live = await this.#get(group, key) !== undefined;
        this.#put(group, key, null);
        return live;
      },
      deleteGroup: async (group) => {
        text("delete group", "group", group);
        const entries = await this.#getAll(group);
        if (!this.#cleared.has(group)) {
          const held = await this.attempt.getAll(group);
          this.#cleared.set(group, [...held.keys()]);
        }
        this.#keys.delete(group);
        return entries.size;
      },
      count: async (group) => {
        text("count keys", "group", group);
        return (await this.#getAll(group)).size;
      },
      getAll: async (group) => {
        text("get all values", "group", group);
        const entries = await this.#getAll(group);
        return new Map([...entries].map(([k, e]) => [k, e.value]));
      },
      exists: async (group, key) => {
        text("check key", "group", group);
        text("check key", "key", key);
        return await this.#get(group, key) !== undefined;
      },
      [TX_USAGE]: (prefix) => {
        this.#check();
        return this.#usage(prefix);
      },
    };
  }
}

/**
 * Orders strings by code point, as SQLite, Go and etcd (UTF-8 bytes) do;
 * JavaScript's `<` compares UTF-16 units, which differs above U+FFFF.
 *
 * @param a One string.
 * @param b The other.
 * @returns Negative, zero or positive.
 */
export function compareText(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}
