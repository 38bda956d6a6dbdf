/**
 * {@linkcode AsyncStore}: one promise-based API over the local
 * {@linkcode Store} (through {@linkcode toAsync}) and the etcd-backed store
 * (`@core/store/etcd`), so that a service codes against one interface and
 * moves from a file to a cluster by changing how it opens its store.
 *
 * @module
 */

import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import {
  type AsyncTransaction,
  runOptimistic,
  type TxAttempt,
  type TxEntry,
  type TxPlan,
} from "./_async_tx.ts";
import { type Quota, SCOPE_HOOKS, type ScopeHooks } from "./_async_hooks.ts";
import { ScopedStore } from "./scope.ts";
import {
  type ListOptions,
  type ListPage,
  type RenderOptions,
  Store,
  type Transaction,
  type WatchOptions,
} from "./store.ts";
import { describe } from "./_check.ts";
import type * as transfer from "./transfer.ts";
import { coreOf, type StoreCore } from "./_core.ts";

export type { AsyncTransaction } from "./_async_tx.ts";

/**
 * The store API with promises: every {@linkcode Store} method under the same
 * name and with the same arguments, resolving to the same result and
 * rejecting with the same errors. Three exceptions keep stream and event code
 * identical to the local store's: {@linkcode AsyncStore.watch} returns its
 * {@linkcode Watcher} at once, {@linkcode AsyncStore.onChange} its
 * unsubscribe function and {@linkcode AsyncStore.exportEntries} its stream.
 *
 * {@linkcode AsyncStore.transaction} is optimistic: `fn` runs against a
 * private view (its reads see its own writes), and the writes commit only if
 * nothing it read changed meanwhile; otherwise `fn` runs again. So `fn` may
 * run more than once and must not have other side effects.
 *
 * The atomic operations (`increment`, `setIfAbsent`, `compareAndSet`,
 * `compareAndDelete`, `getAndDelete`, declared with the transaction's
 * methods) are atomic in the backend: one SQLite statement on a file; a
 * compare-and-swap `txn` on the key's revision, retried on conflict, on
 * etcd; an atomic operation checked on versionstamps on Deno KV.
 *
 * After a write resolves, the watchers and callbacks of this store have
 * received its events.
 *
 * @example One service, either backend
 * ```ts
 * import { type AsyncStore, Store, toAsync } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * async function greet(store: AsyncStore, name: string): Promise<string> {
 *   await store.set("user", "name", name);
 *   return await store.render("Hello, {{ .name }}!", "user");
 * }
 *
 * await using store = toAsync(new Store());
 * assert.equal(await greet(store, "Ada"), "Hello, Ada!");
 * ```
 */
export interface AsyncStore extends AsyncDisposable, AsyncTransaction {
  /** As {@linkcode Store.prototype.get}. */
  get(group: string, key: string): Promise<string | undefined>;
  /** As {@linkcode Store.prototype.set}. */
  set(group: string, key: string, value: string): Promise<void>;
  /** As {@linkcode Store.prototype.setWithTTL}. */
  setWithTTL(
    group: string,
    key: string,
    value: string,
    ttlMs: number,
  ): Promise<void>;
  /** As {@linkcode Store.prototype.delete}. */
  delete(group: string, key: string): Promise<boolean>;
  /** As {@linkcode Store.prototype.deleteGroup}. */
  deleteGroup(group: string): Promise<number>;
  /** As {@linkcode Store.prototype.exists}. */
  exists(group: string, key: string): Promise<boolean>;
  /**
   * Runs `fn` as one all-or-nothing transaction, optimistically: `fn` may
   * run more than once when others write what it read.
   */
  transaction<T>(fn: (tx: AsyncTransaction) => T | Promise<T>): Promise<T>;
  /** As {@linkcode Store.prototype.count}. */
  count(group: string): Promise<number>;
  /** As {@linkcode Store.prototype.getAll}. */
  getAll(group: string): Promise<Map<string, string>>;
  /**
   * As {@linkcode Store.prototype.snapshot}: the entries and position read
   * at one instant. Optional: a backend without it cannot start a stream
   * with its group's state without a gap.
   */
  snapshot?(group: string): Promise<GroupSnapshot>;
  /** As {@linkcode Store.prototype.ttl}. */
  ttl(group: string, key: string): Promise<number | undefined>;
  /** As {@linkcode Store.prototype.expire}. */
  expire(group: string, key: string, ttlMs: number | null): Promise<boolean>;
  /** As {@linkcode Store.prototype.list}. */
  list(group: string, options?: ListOptions): Promise<ListPage>;
  /**
   * As {@linkcode Store.prototype.exportEntries}: returns the stream at
   * once (argument errors are thrown), one snapshot of the live entries.
   */
  exportEntries(
    options?: transfer.ExportOptions,
  ): ReadableStream<transfer.ExportRecord>;
  /** As {@linkcode Store.prototype.importEntries}. */
  importEntries(
    source: transfer.ImportSource,
    options?: transfer.ImportOptions,
  ): Promise<transfer.ImportResult>;
  /** As {@linkcode Store.prototype.backup}. */
  backup(path: string): Promise<void>;
  /** As {@linkcode Store.prototype.countAll}. */
  countAll(prefix?: string): Promise<number>;
  /** As {@linkcode Store.prototype.groups}. */
  groups(prefix?: string): Promise<string[]>;
  /** As {@linkcode Store.prototype.render}. */
  render(
    template: string,
    group: string,
    options?: RenderOptions,
  ): Promise<string>;
  /** As {@linkcode Store.prototype.purgeExpired}. */
  purgeExpired(): Promise<number>;
  /** As {@linkcode Store.prototype.watch}; returns the watcher at once. */
  watch(group: string, key: string, options?: WatchOptions): Watcher;
  /** As {@linkcode Store.prototype.unwatch}. */
  unwatch(watcher: Watcher): Promise<void>;
  /** As {@linkcode Store.prototype.onChange}; returns the unsubscriber. */
  onChange(fn: (event: StoreEvent) => void): () => void;
  /**
   * As {@linkcode Store.prototype.disableChangeFeed}; on etcd, which keeps
   * its own history, it does nothing.
   */
  disableChangeFeed(): Promise<void>;
  /** Closes the store; calling it again does nothing. */
  close(): Promise<void>;
}

/**
 * Wraps a local {@linkcode Store} as an {@linkcode AsyncStore}. Every call
 * runs the synchronous method and settles at once, so the wrapper costs a
 * promise per call; closing the wrapper closes the store.
 *
 * Transactions accept asynchronous functions: the reads are checked again,
 * and the writes applied, inside one SQLite write transaction at the end.
 *
 * @example Wrap a store
 * ```ts
 * import { Store, toAsync } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * await using store = toAsync(new Store());
 * await store.set("g", "a", "1");
 * const n = await store.transaction(async (tx) => {
 *   await tx.set("g", "b", "2");
 *   return await tx.count("g");
 * });
 * assert.equal(n, 2);
 * ```
 *
 * @param store An open local store.
 * @returns The same store behind promises.
 * @throws {TypeError} When `store` is not a {@linkcode Store}.
 */
export function toAsync(store: Store): AsyncStore {
  if (!(store instanceof Store)) {
    throw new TypeError(
      `Cannot wrap store: store must be a Store, received ${describe(store)}`,
    );
  }
  return new LocalAsyncStore(store);
}

class LocalAsyncStore implements AsyncStore {
  #store: Store;
  #scopes = new Map<string, ScopedStore>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** @ignore What `AsyncScopedStore` needs; not public API. */
  get [SCOPE_HOOKS](): ScopeHooks {
    const core = coreOf(this.#store) as StoreCore;
    const plain = { maxKeys: 0, maxGroups: 0 };
    return {
      open: (op) => core.open(op),
      quotaWrite: (_op, namespace, quota, group, key, value, ttlMs) => {
        const scoped = this.#scoped(namespace, quota);
        const inner = group.slice(namespace.length + 1);
        if (ttlMs === undefined) scoped.set(inner, key, value);
        else scoped.setWithTTL(inner, key, value, ttlMs);
        return Promise.resolve();
      },
      onNamespaceChange: (_op, namespace, fn) =>
        this.#scoped(namespace, plain).onChange(fn),
    };
  }

  #scoped(namespace: string, quota: Quota): ScopedStore {
    const id = `${namespace} ${quota.maxKeys} ${quota.maxGroups}`;
    let scoped = this.#scopes.get(id);
    if (scoped === undefined) {
      scoped = new ScopedStore(this.#store, namespace, quota);
      if (this.#scopes.size >= 1024) this.#scopes.clear();
      this.#scopes.set(id, scoped);
    }
    return scoped;
  }

  async get(group: string, key: string) {
    return await this.#store.get(group, key);
  }
  async set(group: string, key: string, value: string) {
    return await this.#store.set(group, key, value);
  }
  async setWithTTL(group: string, key: string, value: string, ttlMs: number) {
    return await this.#store.setWithTTL(group, key, value, ttlMs);
  }
  async delete(group: string, key: string) {
    return await this.#store.delete(group, key);
  }
  async deleteGroup(group: string) {
    return await this.#store.deleteGroup(group);
  }
  async exists(group: string, key: string) {
    return await this.#store.exists(group, key);
  }
  async increment(group: string, key: string, delta?: number, ttlMs?: number) {
    return await this.#store.increment(group, key, delta, ttlMs);
  }
  async setIfAbsent(group: string, key: string, value: string, ttlMs?: number) {
    return await this.#store.setIfAbsent(group, key, value, ttlMs);
  }
  async compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ) {
    return await this.#store.compareAndSet(group, key, expected, value, ttlMs);
  }
  async compareAndDelete(group: string, key: string, expected: string) {
    return await this.#store.compareAndDelete(group, key, expected);
  }
  async getAndDelete(group: string, key: string) {
    return await this.#store.getAndDelete(group, key);
  }
  async count(group: string) {
    return await this.#store.count(group);
  }
  async getAll(group: string) {
    return await this.#store.getAll(group);
  }
  async snapshot(group: string) {
    return await this.#store.snapshot(group);
  }
  async ttl(group: string, key: string) {
    return await this.#store.ttl(group, key);
  }
  async expire(group: string, key: string, ttlMs: number | null) {
    return await this.#store.expire(group, key, ttlMs);
  }
  async list(group: string, options?: ListOptions) {
    return await this.#store.list(group, options);
  }
  exportEntries(
    options?: transfer.ExportOptions,
  ): ReadableStream<transfer.ExportRecord> {
    return this.#store.exportEntries(options);
  }
  async importEntries(
    source: transfer.ImportSource,
    options?: transfer.ImportOptions,
  ) {
    return await this.#store.importEntries(source, options);
  }
  async backup(path: string) {
    return await this.#store.backup(path);
  }
  async countAll(prefix?: string) {
    return await this.#store.countAll(prefix);
  }
  async groups(prefix?: string) {
    return await this.#store.groups(prefix);
  }
  async render(template: string, group: string, options?: RenderOptions) {
    return await this.#store.render(template, group, options);
  }
  async purgeExpired() {
    return await this.#store.purgeExpired();
  }
  watch(group: string, key: string, options?: WatchOptions): Watcher {
    return this.#store.watch(group, key, options);
  }
  async unwatch(watcher: Watcher) {
    return await this.#store.unwatch(watcher);
  }
  onChange(fn: (event: StoreEvent) => void): () => void {
    return this.#store.onChange(fn);
  }
  async disableChangeFeed() {
    return await this.#store.disableChangeFeed();
  }
  async close() {
    return await this.#store.close();
  }
  async [Symbol.asyncDispose]() {
    return await this.#store.close();
  }

  async transaction<T>(
    fn: (tx: AsyncTransaction) => T | Promise<T>,
  ): Promise<T> {
    const core = coreOf(this.#store) as StoreCore;
    core.open("run transaction");
    return await runOptimistic(
      fn,
      () => new LocalAttempt(this.#store),
      (op) => core.now(op),
    );
  }
}

/** A read whose result must be the same at commit time. */
type Check = (tx: Transaction) => boolean;

class LocalAttempt implements TxAttempt {
  #store: Store;
  #core: StoreCore;
  #checks: Check[] = [];

  constructor(store: Store) {
    this.#store = store;
    this.#core = coreOf(store) as StoreCore;
  }

  get(group: string, key: string): Promise<TxEntry | undefined> {
    const value = this.#store.get(group, key);
    // The expiry too: an increment keeps it, so it must not have changed.
    const expiry = () => this.#core.engine.expiry("get value", group, key);
    const expiresAt = value === undefined ? undefined : expiry() ?? undefined;
    this.#checks.push((tx) =>
      tx.get(group, key) === value &&
      (value === undefined || (expiry() ?? undefined) === expiresAt)
    );
    return Promise.resolve(
      value === undefined ? undefined : { value, expiresAt },
    );
  }

  getAll(group: string): Promise<Map<string, TxEntry>> {
    const entries = this.#store.getAll(group);
    const seen = JSON.stringify([...entries]);
    this.#checks.push((tx) => JSON.stringify([...tx.getAll(group)]) === seen);
    const result = new Map<string, TxEntry>();
    for (const [key, value] of entries) {
      result.set(key, { value, expiresAt: undefined });
    }
    return Promise.resolve(result);
  }

  usage(prefix: string): Promise<Map<string, number>> {
    const read = () => {
      const usage = new Map<string, number>();
      for (const group of this.#store.groups(prefix)) {
        usage.set(group, this.#store.count(group));
      }
      return usage;
    };
    const usage = read();
    const seen = JSON.stringify([...usage]);
    // Store methods called inside the transaction join it.
    this.#checks.push(() => JSON.stringify([...read()]) === seen);
    return Promise.resolve(usage);
  }

  commit(plan: TxPlan): Promise<boolean> {
    const op = "run transaction";
    return Promise.resolve(this.#store.transaction((tx) => {
      if (!this.#checks.every((check) => check(tx))) return false;
      for (const group of plan.cleared.keys()) tx.deleteGroup(group);
      for (const [group, keys] of plan.keys) {
        for (const [key, entry] of keys) {
          if (entry === null) tx.delete(group, key);
          else if (entry.ttlMs !== undefined) {
            tx.setWithTTL(group, key, entry.value, entry.ttlMs);
          } else if (entry.expiresAt === undefined) {
            tx.set(group, key, entry.value);
          } else {
            // A value that keeps the expiry it was read with (an increment).
            const { value, expiresAt } = entry;
            const core = this.#core;
            core.write(op, core.now(op), [
              { kind: "set", group, key, value, expiresAt },
            ]);
          }
        }
      }
      return true;
    }));
  }
}
