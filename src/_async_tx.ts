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

import { assertText, assertTTL, describe } from "./_check.ts";
import { StoreError } from "./errors.ts";
import { expiryOf } from "./_time.ts";

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
}

/** Reaches the namespace usage of a transaction; for scoped views. */
export const TX_USAGE: unique symbol = Symbol("AsyncTransaction.usage");

/** A transaction that can also report namespace usage. */
export interface UsageTransaction extends AsyncTransaction {
  /** Live keys per group under `prefix`, the transaction's writes included. */
  [TX_USAGE](prefix: string): Promise<Map<string, number>>;
}

const MAX_ATTEMPTS = 64;

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
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const overlay = new Overlay(begin(), now);
    let result: T;
    try {
      result = await fn(overlay.view);
    } finally {
      overlay.live = false;
    }
    if (await overlay.attempt.commit(overlay.plan())) return result;
    // Others are writing the same keys: back off a little, with jitter.
    await new Promise((r) =>
      setTimeout(r, Math.random() * Math.min(2 ** attempt, 100))
    );
  }
  throw new StoreError(
    `Cannot ${op}: it conflicted with other writers ${MAX_ATTEMPTS} times in a row`,
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
    const at = entry.expiresAt;
    return at === undefined || at > this.#now("read value") ? entry : undefined;
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

  #makeView(): UsageTransaction {
    const text = (op: string, name: string, value: unknown) => {
      this.#check();
      assertText(op, name, value);
    };
    return {
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
