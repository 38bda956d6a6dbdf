/**
 * {@linkcode AsyncScopedStore}: the namespaced view with quotas of
 * `ScopedStore`, over an {@linkcode AsyncStore} (local or etcd).
 *
 * @module
 */

import {
  assertAtomicArgs,
  assertDelta,
  assertFunction,
  assertOptions,
  assertText,
  assertTTL,
  ATOMIC_OPS,
  describe,
  readWatchOptions,
} from "./_check.ts";
import { WATCH_OPTIONS } from "./_options.ts";
import { assertNamespace, readQuota } from "./_namespace.ts";
import { QuotaExceededError } from "./errors.ts";
import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import type { AsyncStore } from "./async.ts";
import {
  type AsyncTransaction,
  TX_USAGE,
  type UsageTransaction,
} from "./_async_tx.ts";
import { type Quota, type ScopeHooks, scopeHooksOf } from "./_async_hooks.ts";
import type { QuotaConfig } from "./scope.ts";
import type {
  ListOptions,
  ListPage,
  RenderOptions,
  WatchOptions,
} from "./store.ts";

/** The names of the atomic operations. */
type AtomicName =
  | "increment"
  | "setIfAbsent"
  | "compareAndSet"
  | "compareAndDelete"
  | "getAndDelete";

/** What runs an atomic operation: the store, or one of its transactions. */
type AtomicTarget = Pick<AsyncStore, AtomicName>;

/**
 * A namespaced view of an {@linkcode AsyncStore}, with the semantics of
 * `ScopedStore`: every group `g` is stored as `${namespace}:g`, arguments
 * are checked with the same messages, and a write that would add a live key
 * or a group beyond the {@linkcode QuotaConfig} throws
 * {@linkcode QuotaExceededError} and writes nothing. The check and the write
 * are atomic in the backend: on etcd, instances racing to add keys to one
 * namespace never exceed its quota together.
 *
 * The store must come from {@linkcode toAsync} or `EtcdStore.open`, which
 * provide the atomic quota check and namespace watchers.
 *
 * @example A tenant with a quota
 * ```ts
 * import {
 *   AsyncScopedStore,
 *   QuotaExceededError,
 *   Store,
 *   toAsync,
 * } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * await using store = toAsync(new Store());
 * const acme = new AsyncScopedStore(store, "acme", { maxKeys: 1 });
 * await acme.set("config", "theme", "dark");
 * assert.equal(await store.get("acme:config", "theme"), "dark");
 * await assert.rejects(acme.set("config", "lang", "en"), QuotaExceededError);
 * ```
 */
export class AsyncScopedStore {
  /** The namespace; groups are stored as `${namespace}:${group}`. */
  readonly namespace: string;
  /** The underlying store. */
  readonly store: AsyncStore;

  #prefix: string;
  #quota: Quota;
  #hooks: ScopeHooks;

  /**
   * Creates a view of `store` limited to `namespace`.
   *
   * @example Create a view
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1", { maxGroups: 10 });
   * assert.equal(tenant.namespace, "t1");
   * assert.throws(() => new AsyncScopedStore(store, "no spaces"), TypeError);
   * ```
   *
   * @param store A store from {@linkcode toAsync} or `EtcdStore.open`.
   * @param namespace Letters, digits and `-` only (`/^[A-Za-z0-9-]+$/`).
   * @param quota Optional limits; `0` or absent means unlimited.
   * @throws {TypeError} When `store` is not such a store or `namespace` is
   * not a valid namespace.
   * @throws {RangeError} When a quota is not a non-negative integer.
   */
  constructor(store: AsyncStore, namespace: string, quota?: QuotaConfig) {
    const hooks = scopeHooksOf(store);
    if (hooks === undefined) {
      throw new TypeError(
        `Cannot create scoped store: store must be an AsyncStore from toAsync() or EtcdStore.open(), received ${
          describe(store)
        }`,
      );
    }
    assertNamespace("create scoped store", namespace);
    const limits = readQuota("create scoped store", quota);
    this.store = store;
    this.namespace = namespace;
    this.#prefix = `${namespace}:`;
    this.#quota = limits;
    this.#hooks = hooks;
  }

  /**
   * As `AsyncStore.get`, in this namespace.
   *
   * @example Get
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "k", "v");
   * assert.equal(await tenant.get("g", "k"), "v");
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns The live value, or `undefined`.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async get(group: string, key: string): Promise<string | undefined> {
    return await this.store.get(this.#key("get value", group, key), key);
  }

  /**
   * As `AsyncStore.set`, in this namespace and within its quota.
   *
   * @example Set
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * await new AsyncScopedStore(store, "t1").set("g", "k", "v");
   * assert.equal(await store.get("t1:g", "k"), "v");
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param value The value.
   * @throws {TypeError} When an argument is not a string.
   * @throws {QuotaExceededError} When the write would exceed a quota.
   * @throws {StoreClosedError} After the store is closed.
   */
  set(group: string, key: string, value: string): Promise<void> {
    return this.#set("set value", group, key, value, []);
  }

  /**
   * As `AsyncStore.setWithTTL`, in this namespace and within its quota.
   *
   * @example Set with a TTL
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.setWithTTL("g", "k", "v", 60_000);
   * assert.ok((await tenant.ttl("g", "k"))! <= 60_000);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live in milliseconds, positive and finite.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {QuotaExceededError} When the write would exceed a quota.
   * @throws {StoreClosedError} After the store is closed.
   */
  setWithTTL(
    group: string,
    key: string,
    value: string,
    ttlMs: number,
  ): Promise<void> {
    return this.#set("set value with TTL", group, key, value, [ttlMs]);
  }

  // `ttl` is empty for `set`, so that `setWithTTL` checks even an absent TTL.
  async #set(
    op: string,
    group: string,
    key: string,
    value: string,
    ttl: [] | [number],
  ): Promise<void> {
    const stored = this.#key(op, group, key);
    assertText(op, "value", value);
    if (ttl.length === 1) assertTTL(op, ttl[0]);
    await this.#write(op, stored, key, value, ttl[0]);
  }

  /**
   * As `AsyncStore.increment`, in this namespace and within its quota:
   * creating a counter adds a key. Atomic in the backend; with a quota, the
   * check and the increment are one optimistic transaction.
   *
   * @example A counter per tenant
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1", { maxKeys: 10 });
   * assert.equal(await tenant.increment("stats", "writes"), 1);
   * assert.equal(await tenant.increment("stats", "writes", 4), 5);
   * assert.equal(await store.get("t1:stats", "writes"), "5");
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param delta What to add: a safe integer, `1` by default.
   * @param ttlMs The time to live of an entry the increment creates.
   * @returns The new value.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `delta` is not a safe integer or `ttlMs` is
   * not positive and finite.
   * @throws {QuotaExceededError} When creating the counter would exceed a
   * quota; nothing is written.
   * @throws {StoreError} When the live value is not a decimal safe integer or
   * the result would pass ±`Number.MAX_SAFE_INTEGER`.
   * @throws {StoreClosedError} After the store is closed.
   */
  async increment(
    group: string,
    key: string,
    delta = 1,
    ttlMs?: number,
  ): Promise<number> {
    const op = ATOMIC_OPS.increment;
    const stored = this.#key(op, group, key);
    assertDelta(op, delta);
    assertAtomicArgs(op, { ttlMs });
    return await this.#adding(
      op,
      stored,
      key,
      (s) => s.increment(stored, key, delta, ttlMs),
    );
  }

  /**
   * As `AsyncStore.setIfAbsent`, in this namespace and within its quota.
   *
   * @example Set if absent
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1", { maxKeys: 10 });
   * assert.equal(await tenant.setIfAbsent("locks", "job", "a"), true);
   * assert.equal(await tenant.setIfAbsent("locks", "job", "b"), false);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live in milliseconds; without it, no expiry.
   * @returns `true` when it wrote.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not positive and finite.
   * @throws {QuotaExceededError} When the write would exceed a quota;
   * nothing is written.
   * @throws {StoreClosedError} After the store is closed.
   */
  async setIfAbsent(
    group: string,
    key: string,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.setIfAbsent;
    const stored = this.#key(op, group, key);
    assertAtomicArgs(op, { value: [value], ttlMs });
    return await this.#adding(
      op,
      stored,
      key,
      (s) => s.setIfAbsent(stored, key, value, ttlMs),
    );
  }

  /**
   * As `AsyncStore.compareAndSet`, in this namespace; expecting no entry
   * (`undefined`), it is held to the quota as a new key is.
   *
   * @example Compare and set
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * assert.equal(await tenant.compareAndSet("g", "k", undefined, "1"), true);
   * assert.equal(await tenant.compareAndSet("g", "k", "0", "2"), false);
   * assert.equal(await tenant.get("g", "k"), "1");
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param expected The live value it must find, or `undefined` for none.
   * @param value The new value.
   * @param ttlMs Time to live of the new value; without it, no expiry.
   * @returns `true` when the live value was `expected` and is replaced.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not positive and finite.
   * @throws {QuotaExceededError} When expecting no entry and the write would
   * exceed a quota; nothing is written.
   * @throws {StoreClosedError} After the store is closed.
   */
  async compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.compareAndSet;
    const stored = this.#key(op, group, key);
    assertAtomicArgs(op, { expected: [expected, true], value: [value], ttlMs });
    const swap = (s: AtomicTarget) =>
      s.compareAndSet(stored, key, expected, value, ttlMs);
    if (expected !== undefined) return await swap(this.store);
    return await this.#adding(op, stored, key, swap);
  }

  /**
   * As `AsyncStore.compareAndDelete`, in this namespace.
   *
   * @example Compare and delete
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("locks", "job", "me");
   * assert.equal(await tenant.compareAndDelete("locks", "job", "you"), false);
   * assert.equal(await tenant.compareAndDelete("locks", "job", "me"), true);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param expected The live value it must find.
   * @returns `true` when the live value was `expected` and is deleted.
   * @throws {TypeError} When an argument is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async compareAndDelete(
    group: string,
    key: string,
    expected: string,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.compareAndDelete;
    const stored = this.#key(op, group, key);
    return await this.store.compareAndDelete(stored, key, expected);
  }

  /**
   * As `AsyncStore.getAndDelete`, in this namespace.
   *
   * @example Get and delete
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("tokens", "t", "user-1");
   * assert.equal(await tenant.getAndDelete("tokens", "t"), "user-1");
   * assert.equal(await tenant.getAndDelete("tokens", "t"), undefined);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns The live value, or `undefined`.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async getAndDelete(group: string, key: string): Promise<string | undefined> {
    const op = ATOMIC_OPS.getAndDelete;
    return await this.store.getAndDelete(this.#key(op, group, key), key);
  }

  /**
   * As `AsyncStore.delete`, in this namespace.
   *
   * @example Delete
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "k", "v");
   * assert.equal(await tenant.delete("g", "k"), true);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns `true` when a live key was removed.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async delete(group: string, key: string): Promise<boolean> {
    return await this.store.delete(this.#key("delete key", group, key), key);
  }

  /**
   * As `AsyncStore.deleteGroup`, in this namespace.
   *
   * @example Delete a group
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "a", "1");
   * assert.equal(await tenant.deleteGroup("g"), 1);
   * ```
   *
   * @param group The group, without the namespace.
   * @returns How many keys were removed.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async deleteGroup(group: string): Promise<number> {
    return await this.store.deleteGroup(this.#group("delete group", group));
  }

  /**
   * As `AsyncStore.count`, in this namespace.
   *
   * @example Count
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "a", "1");
   * assert.equal(await tenant.count("g"), 1);
   * ```
   *
   * @param group The group, without the namespace.
   * @returns The number of live keys in the group.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async count(group: string): Promise<number> {
    return await this.store.count(this.#group("count keys", group));
  }

  /**
   * As `AsyncStore.getAll`, in this namespace.
   *
   * @example Get all
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "a", "1");
   * assert.deepEqual([...await tenant.getAll("g")], [["a", "1"]]);
   * ```
   *
   * @param group The group, without the namespace.
   * @returns The live entries, in ascending key order.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async getAll(group: string): Promise<Map<string, string>> {
    return await this.store.getAll(this.#group("get all values", group));
  }

  /**
   * As `AsyncStore.snapshot`, for a group of this namespace.
   *
   * @example Entries and their position
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "a", "1");
   * const { entries } = await tenant.snapshot("g");
   * assert.deepEqual([...entries], [["a", "1"]]);
   * ```
   *
   * @param group The group, without the namespace.
   * @returns The live entries and the last change's position.
   * @throws {TypeError} When `group` is not a string, or the store has no
   * `snapshot`.
   * @throws {StoreClosedError} After the store is closed.
   */
  async snapshot(group: string): Promise<GroupSnapshot> {
    const op = "read a snapshot";
    const stored = this.#group(op, group);
    if (this.store.snapshot === undefined) {
      throw new TypeError(`Cannot ${op}: the store has no snapshot method`);
    }
    return await this.store.snapshot(stored);
  }

  /**
   * As `AsyncStore.render`, over a group of this namespace.
   *
   * @example Render
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("user", "name", "Ada");
   * assert.equal(await tenant.render("Hi {{ .name }}", "user"), "Hi Ada");
   * ```
   *
   * @param template The Go template source.
   * @param group The group, without the namespace.
   * @param options `missingKey`: what a missing key prints.
   * @returns The rendered text.
   * @throws {TypeError} When `template` or `group` is not a string.
   * @throws {TemplateError} When the template cannot be parsed or executed.
   * @throws {StoreClosedError} After the store is closed.
   */
  async render(
    template: string,
    group: string,
    options?: RenderOptions,
  ): Promise<string> {
    const op = "render template";
    assertText(op, "template", template);
    return await this.store.render(template, this.#group(op, group), options);
  }

  /**
   * As `AsyncStore.exists`, in this namespace.
   *
   * @example Exists
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * assert.equal(await tenant.exists("g", "k"), false);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns `true` when the key is live.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async exists(group: string, key: string): Promise<boolean> {
    return await this.store.exists(this.#key("check key", group, key), key);
  }

  /**
   * As `AsyncStore.ttl`, in this namespace.
   *
   * @example Time to live
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "k", "v");
   * assert.equal(await tenant.ttl("g", "k"), Infinity);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns Milliseconds left, `Infinity` without expiry, or `undefined`.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  async ttl(group: string, key: string): Promise<number | undefined> {
    return await this.store.ttl(this.#key("read TTL", group, key), key);
  }

  /**
   * As `AsyncStore.expire`, in this namespace; quotas do not apply.
   *
   * @example Clear an expiry
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.setWithTTL("g", "k", "v", 100);
   * assert.equal(await tenant.expire("g", "k", null), true);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param ttlMs Milliseconds from now, or `null` to clear the expiry.
   * @returns `true` when the key was live and its expiry changed.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {StoreClosedError} After the store is closed.
   */
  async expire(
    group: string,
    key: string,
    ttlMs: number | null,
  ): Promise<boolean> {
    // The store checks ttlMs, with the same message.
    const stored = this.#key("set expiry", group, key);
    return await this.store.expire(stored, key, ttlMs);
  }

  /**
   * As `AsyncStore.list`, over a group of this namespace.
   *
   * @example Page through a group
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("g", "a", "1");
   * await tenant.set("g", "b", "2");
   * const page = await tenant.list("g", { limit: 1 });
   * assert.deepEqual(page.entries, [["a", "1"]]);
   * ```
   *
   * @param group The group, without the namespace.
   * @param options Page size, cursor, key prefix and direction.
   * @returns The page and the cursor of the next one.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `limit` is out of range.
   * @throws {StoreClosedError} After the store is closed.
   */
  async list(group: string, options?: ListOptions): Promise<ListPage> {
    return await this.store.list(this.#group("list keys", group), options);
  }

  /**
   * Counts the live keys of every group in this namespace.
   *
   * @example Count a namespace
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("a", "k", "1");
   * await store.set("t10:a", "k", "not t1");
   * assert.equal(await tenant.countAll(), 1);
   * ```
   *
   * @returns The number of live keys in the namespace.
   * @throws {StoreClosedError} After the store is closed.
   */
  async countAll(): Promise<number> {
    this.#hooks.open("count all keys");
    return await this.store.countAll(this.#prefix);
  }

  /**
   * Lists this namespace's groups that hold a live key, without the prefix.
   *
   * @example Groups
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * await tenant.set("b", "k", "1");
   * await tenant.set("a", "k", "2");
   * assert.deepEqual(await tenant.groups(), ["a", "b"]);
   * ```
   *
   * @returns Group names, ascending.
   * @throws {StoreClosedError} After the store is closed.
   */
  async groups(): Promise<string[]> {
    this.#hooks.open("list groups");
    const start = this.#prefix.length;
    return (await this.store.groups(this.#prefix)).map((g) => g.slice(start));
  }

  /**
   * As `AsyncStore.transaction`, with a transaction whose groups are in
   * this namespace and whose writes are checked against the quota (counting
   * its own earlier writes). `fn` may run more than once.
   *
   * @example A scoped transaction
   * ```ts
   * import {
   *   AsyncScopedStore,
   *   QuotaExceededError,
   *   Store,
   *   toAsync,
   * } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1", { maxKeys: 2 });
   * await assert.rejects(
   *   tenant.transaction(async (tx) => {
   *     await tx.set("g", "a", "1");
   *     await tx.set("g", "b", "2");
   *     await tx.set("g", "c", "3");
   *   }),
   *   QuotaExceededError,
   * );
   * assert.equal(await tenant.countAll(), 0);
   * ```
   *
   * @typeParam T What `fn` returns.
   * @param fn The work; receives a namespaced transaction.
   * @returns What `fn` returned.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {QuotaExceededError} When a write inside exceeds a quota and
   * `fn` lets it propagate; nothing is written.
   * @throws {StoreError} When the transaction is used after `fn` settled.
   * @throws {StoreClosedError} After the store is closed.
   */
  async transaction<T>(
    fn: (tx: AsyncTransaction) => T | Promise<T>,
  ): Promise<T> {
    const op = "run transaction";
    this.#hooks.open(op);
    assertFunction(op, "fn", fn);
    return await this.store.transaction((tx) =>
      fn(this.#scopedTx(tx as UsageTransaction))
    );
  }

  /**
   * Watches events of this namespace: one key of one group, every key of a
   * group (`key` `"*"`), or, with `group` `"*"`, every group of the
   * namespace. Events carry the full group, `${namespace}:${group}`.
   *
   * @example Watch a namespace
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * const watcher = tenant.watch("*", "*");
   * await store.set("t2:g", "k", "other tenant");
   * await tenant.set("g", "k", "mine");
   * for await (const event of watcher) {
   *   assert.equal(event.group, "t1:g");
   *   break;
   * }
   * ```
   *
   * @param group A group without the namespace, or `"*"` for all of them.
   * @param key A key, or `"*"` for every key.
   * @param options `since`: resume after an event's `seq`, as the store's
   * `watch` does; `capacity` sizes the queue; with `prefix`, `group` is a
   * prefix of the groups (without the namespace) to watch.
   * @returns A registered {@linkcode Watcher}.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  watch(group: string, key: string, options?: WatchOptions): Watcher {
    const op = "watch";
    const stored = this.#key(op, group, key);
    assertOptions(op, "options", options, WATCH_OPTIONS);
    const checked = readWatchOptions(op, options);
    // The namespace's groups all start with its prefix.
    if (!checked.prefix && group !== "*") {
      return this.store.watch(stored, key, options);
    }
    return this.store.watch(checked.prefix ? stored : this.#prefix, key, {
      ...(options as WatchOptions),
      prefix: true,
    });
  }

  /**
   * As `AsyncStore.onChange`, for this namespace's events only.
   *
   * @example Namespace callbacks
   * ```ts
   * import { AsyncScopedStore, Store, toAsync } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * await using store = toAsync(new Store());
   * const tenant = new AsyncScopedStore(store, "t1");
   * const groups: string[] = [];
   * tenant.onChange((event) => groups.push(event.group));
   * await store.set("t2:g", "k", "v");
   * await tenant.set("g", "k", "v");
   * assert.deepEqual(groups, ["t1:g"]);
   * ```
   *
   * @param fn Called after each committed write of the namespace.
   * @returns A function that unregisters `fn`; idempotent.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {StoreClosedError} After the store is closed.
   */
  onChange(fn: (event: StoreEvent) => void): () => void {
    this.#hooks.open("register change callback");
    return this.#hooks.onNamespaceChange(
      "register change callback",
      this.namespace,
      fn,
    );
  }

  // Checks in the order ScopedStore does, so errors are the same: closed
  // store, then group, then key.
  #group(op: string, group: string): string {
    this.#hooks.open(op);
    assertText(op, "group", group);
    return this.#prefix + group;
  }

  #key(op: string, group: string, key: string): string {
    const stored = this.#group(op, group);
    assertText(op, "key", key);
    return stored;
  }

  async #write(
    op: string,
    stored: string,
    key: string,
    value: string,
    ttlMs: number | undefined,
  ): Promise<void> {
    const { maxKeys, maxGroups } = this.#quota;
    if (maxKeys === 0 && maxGroups === 0) {
      if (ttlMs === undefined) return await this.store.set(stored, key, value);
      return await this.store.setWithTTL(stored, key, value, ttlMs);
    }
    await this.#hooks.quotaWrite(
      op,
      this.namespace,
      this.#quota,
      stored,
      key,
      value,
      ttlMs,
    );
  }

  // Runs an operation that may add a key: on the store without quotas;
  // with them, in one transaction after the quota check, so that writers
  // racing on any backend never take the namespace past its quota.
  async #adding<T>(
    op: string,
    stored: string,
    key: string,
    write: (target: AtomicTarget) => Promise<T>,
  ): Promise<T> {
    const { maxKeys, maxGroups } = this.#quota;
    if (maxKeys === 0 && maxGroups === 0) return await write(this.store);
    return await this.store.transaction(async (tx) => {
      await this.#txCheck(tx as UsageTransaction, op, stored, key);
      return await write(tx);
    });
  }

  // The atomic operations of a scoped transaction: checked as the view's
  // own, then the quota, then the transaction's operation.
  #scopedAtomic(tx: UsageTransaction): Pick<AsyncTransaction, AtomicName> {
    const ops = ATOMIC_OPS;
    const adding = async <T>(
      op: string,
      stored: string,
      key: string,
      write: () => Promise<T>,
    ) => {
      await this.#txCheck(tx, op, stored, key);
      return await write();
    };
    return {
      increment: (group, key, delta = 1, ttlMs) => {
        const stored = this.#key(ops.increment, group, key);
        assertDelta(ops.increment, delta);
        assertAtomicArgs(ops.increment, { ttlMs });
        return adding(
          ops.increment,
          stored,
          key,
          () => tx.increment(stored, key, delta, ttlMs),
        );
      },
      setIfAbsent: (group, key, value, ttlMs) => {
        const stored = this.#key(ops.setIfAbsent, group, key);
        assertAtomicArgs(ops.setIfAbsent, { value: [value], ttlMs });
        return adding(
          ops.setIfAbsent,
          stored,
          key,
          () => tx.setIfAbsent(stored, key, value, ttlMs),
        );
      },
      compareAndSet: (group, key, expected, value, ttlMs) => {
        const op = ops.compareAndSet;
        const stored = this.#key(op, group, key);
        assertAtomicArgs(op, {
          expected: [expected, true],
          value: [value],
          ttlMs,
        });
        const swap = () =>
          tx.compareAndSet(stored, key, expected, value, ttlMs);
        return expected === undefined ? adding(op, stored, key, swap) : swap();
      },
      compareAndDelete: (group, key, expected) =>
        tx.compareAndDelete(
          this.#key(ops.compareAndDelete, group, key),
          key,
          expected,
        ),
      getAndDelete: (group, key) =>
        tx.getAndDelete(this.#key(ops.getAndDelete, group, key), key),
    };
  }

  #scopedTx(tx: UsageTransaction): AsyncTransaction {
    const g = (op: string, group: string) => this.#group(op, group);
    return {
      ...this.#scopedAtomic(tx),
      get: (group, key) => tx.get(g("get value", group), key),
      set: async (group, key, value) => {
        const stored = this.#key("set value", group, key);
        assertText("set value", "value", value);
        await this.#txCheck(tx, "set value", stored, key);
        await tx.set(stored, key, value);
      },
      setWithTTL: async (group, key, value, ttlMs) => {
        const op = "set value with TTL";
        const stored = this.#key(op, group, key);
        assertText(op, "value", value);
        assertTTL(op, ttlMs);
        await this.#txCheck(tx, op, stored, key);
        await tx.setWithTTL(stored, key, value, ttlMs);
      },
      delete: (group, key) => tx.delete(g("delete key", group), key),
      deleteGroup: (group) => tx.deleteGroup(g("delete group", group)),
      count: (group) => tx.count(g("count keys", group)),
      getAll: (group) => tx.getAll(g("get all values", group)),
      exists: (group, key) => tx.exists(g("check key", group), key),
    };
  }

  async #txCheck(
    tx: UsageTransaction,
    op: string,
    stored: string,
    key: string,
  ): Promise<void> {
    const { maxKeys, maxGroups } = this.#quota;
    if (maxKeys === 0 && maxGroups === 0) return;
    if (await tx.exists(stored, key)) return;
    const usage = await tx[TX_USAGE](this.#prefix);
    let keys = 0;
    for (const n of usage.values()) keys += n;
    if (maxKeys > 0 && keys >= maxKeys) {
      throw new QuotaExceededError(op, this.namespace, "maxKeys", maxKeys);
    }
    if (maxGroups > 0 && usage.size >= maxGroups && !usage.has(stored)) {
      throw new QuotaExceededError(op, this.namespace, "maxGroups", maxGroups);
    }
  }
}
