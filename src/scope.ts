/**
 * {@linkcode ScopedStore}: a namespaced view of a {@linkcode Store} for
 * multi-tenant services, with optional quotas on live keys and groups.
 *
 * @module
 */

import {
  assertFunction,
  assertOptions,
  assertText,
  assertTTL,
  describe,
  readWatchOptions,
} from "./_check.ts";
import { WATCH_OPTIONS } from "./_options.ts";
import { coreOf, type StoreCore } from "./_core.ts";
import * as atomic from "./_atomic.ts";
import { ATOMIC_OPS } from "./_atomic.ts";
import { assertNamespace, namespacePrefix, readQuota } from "./_namespace.ts";
import { transactionView } from "./_tx_view.ts";
import { QuotaExceededError } from "./errors.ts";
import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import type {
  ListOptions,
  ListPage,
  RenderOptions,
  Store,
  Transaction,
  WatchOptions,
} from "./store.ts";

/**
 * Limits on what one namespace may hold. `0` or absent means unlimited.
 */
export interface QuotaConfig {
  /** The most live keys the namespace may hold, across its groups. */
  maxKeys?: number;
  /** The most groups holding a live key the namespace may have. */
  maxGroups?: number;
}

/**
 * A namespaced view of a store: every group `g` is stored as
 * `${namespace}:g`, so tenants sharing one store (or one file) never see each
 * other's data. With a {@linkcode QuotaConfig}, a write that would add a live
 * key or a group beyond the quota throws {@linkcode QuotaExceededError} and
 * writes nothing; the check and the write run in one `BEGIN IMMEDIATE`
 * transaction, so the quota holds across processes sharing the file.
 *
 * Methods have the same signatures and semantics as {@linkcode Store}'s.
 * Events carry the full stored group, `${namespace}:${group}`.
 *
 * @example Two tenants, one store
 * ```ts
 * import { ScopedStore, Store } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const acme = new ScopedStore(store, "acme", { maxKeys: 100 });
 * const globex = new ScopedStore(store, "globex");
 * acme.set("config", "theme", "dark");
 * globex.set("config", "theme", "light");
 *
 * assert.equal(acme.get("config", "theme"), "dark");
 * assert.equal(store.get("acme:config", "theme"), "dark");
 * assert.deepEqual(globex.groups(), ["config"]);
 * ```
 */
export class ScopedStore {
  /** The namespace; groups are stored as `${namespace}:${group}`. */
  readonly namespace: string;
  /** The underlying store. */
  readonly store: Store;

  #prefix: string;
  #maxKeys: number;
  #maxGroups: number;
  #core: StoreCore;

  /**
   * Creates a view of `store` limited to `namespace`.
   *
   * @param store The shared store.
   * @param namespace Letters, digits and `-` only (`/^[A-Za-z0-9-]+$/`).
   * @param quota Optional limits; `0` or absent means unlimited.
   * @throws {TypeError} When `store` is not a {@linkcode Store} or
   * `namespace` is not a valid namespace.
   * @throws {RangeError} When a quota is not a non-negative integer.
   */
  constructor(store: Store, namespace: string, quota?: QuotaConfig) {
    const op = "create scoped store";
    const core = coreOf(store);
    if (core === undefined) {
      throw new TypeError(
        `Cannot ${op}: store must be a Store, received ${describe(store)}`,
      );
    }
    assertNamespace(op, namespace);
    const { maxKeys, maxGroups } = readQuota(op, quota);
    this.store = store;
    this.namespace = namespace;
    this.#prefix = namespacePrefix(namespace);
    this.#maxKeys = maxKeys;
    this.#maxGroups = maxGroups;
    this.#core = core;
  }

  /**
   * As {@linkcode Store.prototype.get}, in this namespace.
   *
   * @example Get
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "k", "v");
   * assert.equal(tenant.get("g", "k"), "v");
   * assert.equal(new ScopedStore(store, "t2").get("g", "k"), undefined);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns The live value, or `undefined`.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  get(group: string, key: string): string | undefined {
    const op = "get value";
    const stored = this.#group(op, group);
    assertText(op, "key", key);
    return this.#core.get(op, stored, key);
  }

  /**
   * As {@linkcode Store.prototype.set}, in this namespace and within its
   * quota. Overwriting a live key never counts against the quota.
   *
   * @example Set within a quota
   * ```ts
   * import { QuotaExceededError, ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1", { maxKeys: 1 });
   * tenant.set("g", "k", "1");
   * tenant.set("g", "k", "2");
   * assert.throws(() => tenant.set("g", "other", "3"), QuotaExceededError);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param value The value.
   * @throws {TypeError} When an argument is not a string.
   * @throws {QuotaExceededError} When the write would exceed a quota;
   * nothing is written.
   * @throws {StoreClosedError} After the store is closed.
   */
  set(group: string, key: string, value: string): void {
    this.#set("set value", group, key, value);
  }

  /**
   * As {@linkcode Store.prototype.setWithTTL}, in this namespace and within
   * its quota.
   *
   * @example Set with a TTL
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * const tenant = new ScopedStore(store, "t1");
   * tenant.setWithTTL("g", "k", "v", 10);
   * now = 10;
   * assert.equal(tenant.get("g", "k"), undefined);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live in milliseconds, positive and finite.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {QuotaExceededError} When the write would exceed a quota;
   * nothing is written.
   * @throws {StoreClosedError} After the store is closed.
   */
  setWithTTL(group: string, key: string, value: string, ttlMs: number): void {
    this.#set("set value with TTL", group, key, value, [ttlMs]);
  }

  /**
   * As {@linkcode Store.prototype.delete}, in this namespace.
   *
   * @example Delete
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "k", "v");
   * assert.equal(tenant.delete("g", "k"), true);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns `true` when a live key was removed.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  delete(group: string, key: string): boolean {
    const op = "delete key";
    const stored = this.#group(op, group);
    assertText(op, "key", key);
    const core = this.#core;
    const [deleted] = core.write(op, core.now(op), [
      { kind: "delete", group: stored, key },
    ]);
    return deleted === 1;
  }

  /**
   * As {@linkcode Store.prototype.increment}, in this namespace and within
   * its quota: creating a counter adds a key.
   *
   * @example A counter per tenant
   * ```ts
   * import { QuotaExceededError, ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1", { maxKeys: 1 });
   * assert.equal(tenant.increment("stats", "writes"), 1);
   * assert.equal(tenant.increment("stats", "writes", 2), 3);
   * assert.equal(store.get("t1:stats", "writes"), "3");
   * assert.throws(() => tenant.increment("stats", "reads"), QuotaExceededError);
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
   * the result would pass ±`Number.MAX_SAFE_INTEGER`; nothing is written.
   * @throws {StoreClosedError} After the store is closed.
   */
  increment(group: string, key: string, delta = 1, ttlMs?: number): number {
    const op = ATOMIC_OPS.increment;
    const stored = this.#key(op, group, key);
    const run = atomic.increment(this.#core, stored, key, delta, ttlMs);
    return this.#adding(op, stored, key, run);
  }

  /**
   * As {@linkcode Store.prototype.setIfAbsent}, in this namespace and within
   * its quota. Finding a live entry is not an error: it returns `false`.
   *
   * @example Idempotency keys per tenant
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1", { maxKeys: 10 });
   * assert.equal(tenant.setIfAbsent("requests", "r-1", "done"), true);
   * assert.equal(tenant.setIfAbsent("requests", "r-1", "again"), false);
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
  setIfAbsent(
    group: string,
    key: string,
    value: string,
    ttlMs?: number,
  ): boolean {
    const op = ATOMIC_OPS.setIfAbsent;
    const stored = this.#key(op, group, key);
    const run = atomic.setIfAbsent(this.#core, op, stored, key, value, ttlMs);
    return this.#adding(op, stored, key, run);
  }

  /**
   * As {@linkcode Store.prototype.compareAndSet}, in this namespace; expecting
   * no entry (`undefined`), it is held to the quota as a new key is.
   *
   * @example Compare and set
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * assert.equal(tenant.compareAndSet("g", "k", undefined, "1"), true);
   * assert.equal(tenant.compareAndSet("g", "k", "1", "2"), true);
   * assert.equal(tenant.get("g", "k"), "2");
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
  compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ): boolean {
    const op = ATOMIC_OPS.compareAndSet;
    const stored = this.#key(op, group, key);
    const { run, adds } = atomic.compareAndSet(
      this.#core,
      stored,
      key,
      expected,
      value,
      ttlMs,
    );
    return adds ? this.#adding(op, stored, key, run) : run();
  }

  /**
   * As {@linkcode Store.prototype.compareAndDelete}, in this namespace.
   *
   * @example Compare and delete
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("locks", "job", "me");
   * assert.equal(tenant.compareAndDelete("locks", "job", "you"), false);
   * assert.equal(tenant.compareAndDelete("locks", "job", "me"), true);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @param expected The live value it must find.
   * @returns `true` when the live value was `expected` and is deleted.
   * @throws {TypeError} When an argument is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  compareAndDelete(group: string, key: string, expected: string): boolean {
    const op = ATOMIC_OPS.compareAndDelete;
    const stored = this.#key(op, group, key);
    return atomic.compareAndDelete(this.#core, stored, key, expected);
  }

  /**
   * As {@linkcode Store.prototype.getAndDelete}, in this namespace.
   *
   * @example Get and delete
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("tokens", "t", "user-1");
   * assert.equal(tenant.getAndDelete("tokens", "t"), "user-1");
   * assert.equal(tenant.getAndDelete("tokens", "t"), undefined);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns The live value, or `undefined`.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  getAndDelete(group: string, key: string): string | undefined {
    const op = ATOMIC_OPS.getAndDelete;
    const stored = this.#key(op, group, key);
    return atomic.getAndDelete(this.#core, stored, key);
  }

  /**
   * As {@linkcode Store.prototype.deleteGroup}, in this namespace.
   *
   * @example Delete a group
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "a", "1");
   * assert.equal(tenant.deleteGroup("g"), 1);
   * ```
   *
   * @param group The group, without the namespace.
   * @returns How many rows were removed.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  deleteGroup(group: string): number {
    const op = "delete group";
    const stored = this.#group(op, group);
    const core = this.#core;
    const [removed = 0] = core.write(op, core.now(op), [
      { kind: "deleteGroup", group: stored },
    ]);
    return removed;
  }

  /**
   * As {@linkcode Store.prototype.count}, in this namespace.
   *
   * @example Count
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "a", "1");
   * assert.equal(tenant.count("g"), 1);
   * ```
   *
   * @param group The group, without the namespace.
   * @returns The number of live keys in the group.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  count(group: string): number {
    const op = "count keys";
    return this.#core.count(op, this.#group(op, group));
  }

  /**
   * As {@linkcode Store.prototype.getAll}, in this namespace.
   *
   * @example Get all
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "a", "1");
   * store.set("g", "b", "not in the namespace");
   * assert.deepEqual([...tenant.getAll("g")], [["a", "1"]]);
   * ```
   *
   * @param group The group, without the namespace.
   * @returns The live entries, in ascending key order.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  getAll(group: string): Map<string, string> {
    const op = "get all values";
    return this.#core.getAll(op, this.#group(op, group));
  }

  /**
   * As {@linkcode Store.prototype.snapshot}, for a group of this namespace.
   *
   * @example Entries and their position
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "a", "1");
   * const { entries, position } = tenant.snapshot("g");
   * assert.deepEqual([...entries], [["a", "1"]]);
   * assert.equal(position, undefined); // no change feed, no positions
   * ```
   *
   * @param group The group, without the namespace.
   * @returns The live entries and the last change's `seq`.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  snapshot(group: string): GroupSnapshot {
    const op = "read a snapshot";
    return this.#core.snapshot(op, this.#group(op, group));
  }

  /**
   * As {@linkcode Store.prototype.render}, over a group of this namespace.
   *
   * @example Render
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("user", "name", "Ada");
   * assert.equal(tenant.render("Hi {{ .name }}", "user"), "Hi Ada");
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
  render(template: string, group: string, options?: RenderOptions): string {
    const op = "render template";
    assertText(op, "template", template);
    const stored = this.#group(op, group);
    return this.#core.render(op, template, stored, options ?? {});
  }

  /**
   * As {@linkcode Store.prototype.exists}, in this namespace.
   *
   * @example Exists
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "k", "v");
   * assert.equal(tenant.exists("g", "k"), true);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns `true` when the key is live.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  exists(group: string, key: string): boolean {
    const op = "check key";
    const stored = this.#group(op, group);
    assertText(op, "key", key);
    return this.#core.ttl(op, stored, key) !== undefined;
  }

  /**
   * As {@linkcode Store.prototype.ttl}, in this namespace.
   *
   * @example Time to live
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * const tenant = new ScopedStore(store, "t1");
   * tenant.setWithTTL("g", "k", "v", 100);
   * now = 40;
   * assert.equal(tenant.ttl("g", "k"), 60);
   * ```
   *
   * @param group The group, without the namespace.
   * @param key The key.
   * @returns Milliseconds left, `Infinity` without expiry, or `undefined`.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  ttl(group: string, key: string): number | undefined {
    const op = "read TTL";
    const stored = this.#group(op, group);
    assertText(op, "key", key);
    return this.#core.ttl(op, stored, key);
  }

  /**
   * As {@linkcode Store.prototype.expire}, in this namespace. Changing an
   * expiry never adds a key, so quotas do not apply.
   *
   * @example Clear an expiry
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.setWithTTL("g", "k", "v", 100);
   * assert.equal(tenant.expire("g", "k", null), true);
   * assert.equal(tenant.ttl("g", "k"), Infinity);
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
  expire(group: string, key: string, ttlMs: number | null): boolean {
    const op = "set expiry";
    const stored = this.#group(op, group);
    assertText(op, "key", key);
    if (ttlMs !== null) assertTTL(op, ttlMs);
    return this.#core.expire(op, stored, key, ttlMs);
  }

  /**
   * As {@linkcode Store.prototype.list}, over a group of this namespace.
   *
   * @example Page through a group
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("g", "a", "1");
   * tenant.set("g", "b", "2");
   * const page = tenant.list("g", { limit: 1 });
   * assert.deepEqual(page.entries, [["a", "1"]]);
   * assert.equal(page.cursor, "a");
   * ```
   *
   * @param group The group, without the namespace.
   * @param options Page size, cursor, key prefix and direction.
   * @returns The page and the cursor of the next one.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `limit` is out of range.
   * @throws {StoreClosedError} After the store is closed.
   */
  list(group: string, options?: ListOptions): ListPage {
    const op = "list keys";
    return this.#core.list(op, this.#group(op, group), options ?? {});
  }

  /**
   * Counts the live keys of every group in this namespace.
   *
   * @example Count a namespace
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("a", "k", "1");
   * tenant.set("b", "k", "2");
   * store.set("t10:a", "k", "not t1");
   * assert.equal(tenant.countAll(), 2);
   * ```
   *
   * @returns The number of live keys in the namespace.
   * @throws {StoreClosedError} After the store is closed.
   */
  countAll(): number {
    const op = "count all keys";
    this.#core.open(op);
    return this.#core.countAll(op, this.#prefix);
  }

  /**
   * Lists this namespace's groups that hold a live key, without the prefix.
   *
   * @example Groups
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * tenant.set("b", "k", "1");
   * tenant.set("a", "k", "2");
   * assert.deepEqual(tenant.groups(), ["a", "b"]);
   * ```
   *
   * @returns Group names, ascending.
   * @throws {StoreClosedError} After the store is closed.
   */
  groups(): string[] {
    const op = "list groups";
    this.#core.open(op);
    const start = this.#prefix.length;
    return this.#core.groups(op, this.#prefix).map((g) => g.slice(start));
  }

  /**
   * As {@linkcode Store.prototype.transaction}, with a transaction whose
   * groups are in this namespace and whose writes are checked against the
   * quota (counting the transaction's own earlier writes).
   *
   * @example A scoped transaction
   * ```ts
   * import { QuotaExceededError, ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1", { maxKeys: 2 });
   * assert.throws(() =>
   *   tenant.transaction((tx) => {
   *     tx.set("g", "a", "1");
   *     tx.set("g", "b", "2");
   *     tx.set("g", "c", "3");
   *   }), QuotaExceededError);
   * assert.equal(tenant.countAll(), 0);
   * ```
   *
   * @typeParam T What `fn` returns.
   * @param fn The work; receives a namespaced {@linkcode Transaction}.
   * @returns What `fn` returned.
   * @throws {TypeError} When `fn` is not a function or returns a thenable.
   * @throws {QuotaExceededError} When a write inside exceeds a quota and
   * `fn` lets it propagate; everything is rolled back.
   * @throws {StoreError} When nested or used after `fn` returned.
   * @throws {StoreClosedError} After the store is closed.
   */
  transaction<T>(fn: (tx: Transaction) => T): T {
    const op = "run transaction";
    this.#core.open(op);
    assertFunction(op, "fn", fn);
    const { tx, end } = transactionView(this);
    try {
      return this.#core.transaction(op, () => fn(tx));
    } finally {
      end();
    }
  }

  /**
   * Watches events of this namespace: one key of one group, every key of a
   * group (`key` `"*"`), or, with `group` `"*"`, every group of the
   * namespace. Events carry the full group, `${namespace}:${group}`.
   *
   * @example Watch a namespace
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * const watcher = tenant.watch("*", "*");
   * store.set("t2:g", "k", "other tenant");
   * tenant.set("g", "k", "mine");
   * for await (const event of watcher) {
   *   assert.equal(event.group, "t1:g");
   *   assert.equal(event.value, "mine");
   *   break;
   * }
   * ```
   *
   * @param group A group without the namespace, or `"*"` for all of them.
   * @param key A key, or `"*"` for every key.
   * @param options As for `Store.prototype.watch`: `since` resumes after a
   * change-log seq (needs the store's `changeFeed` option), `capacity` sizes
   * the queue, and with `prefix` `group` is a prefix of the groups (without
   * the namespace) to watch.
   * @returns A registered {@linkcode Watcher}.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After the store is closed.
   */
  watch(group: string, key: string, options?: WatchOptions): Watcher {
    const op = "watch";
    this.#core.open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    assertOptions(op, "options", options, WATCH_OPTIONS);
    const { since, capacity, prefix } = readWatchOptions(op, options);
    if (prefix || group === "*") {
      // The namespace's groups all start with its prefix.
      const stored = prefix ? this.#prefix + group : this.#prefix;
      return this.#core.watch(op, `${stored}*`, key, {
        since,
        capacity,
        prefix: stored,
      });
    }
    return this.#core.watch(op, this.#prefix + group, key, {
      since,
      capacity,
    });
  }

  /**
   * As {@linkcode Store.prototype.onChange}, for this namespace's events
   * only.
   *
   * @example Namespace callbacks
   * ```ts
   * import { ScopedStore, Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const tenant = new ScopedStore(store, "t1");
   * const groups: string[] = [];
   * tenant.onChange((event) => groups.push(event.group));
   * store.set("t2:g", "k", "v");
   * tenant.set("g", "k", "v");
   * assert.deepEqual(groups, ["t1:g"]);
   * ```
   *
   * @param fn Called synchronously after each committed write.
   * @returns A function that unregisters `fn`; idempotent.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {StoreClosedError} After the store is closed.
   */
  onChange(fn: (event: StoreEvent) => void): () => void {
    const op = "register change callback";
    this.#core.open(op);
    return this.#core.onChange(fn, this.namespace);
  }

  #group(op: string, group: string): string {
    this.#core.open(op);
    assertText(op, "group", group);
    return this.#prefix + group;
  }

  // Every write that could add a key funnels through here: without quotas it
  // is the plain store write; with them, the check and the write share one
  // write transaction.
  #set(
    op: string,
    group: string,
    key: string,
    value: string,
    ttl?: [ttlMs: number],
  ): void {
    const stored = this.#key(op, group, key);
    assertText(op, "value", value);
    if (ttl !== undefined) assertTTL(op, ttl[0]);
    const ttlMs = ttl?.[0];
    const core = this.#core;
    this.#adding(
      op,
      stored,
      key,
      () => core.set(op, stored, key, value, ttlMs),
    );
  }

  #key(op: string, group: string, key: string): string {
    const stored = this.#group(op, group);
    assertText(op, "key", key);
    return stored;
  }

  // Runs a write that may add a key: without quotas as it is; with them,
  // after the quota check and in the same write transaction.
  #adding<T>(op: string, stored: string, key: string, write: () => T): T {
    if (this.#maxKeys === 0 && this.#maxGroups === 0) return write();
    return this.#core.atomic(op, () => {
      this.#checkQuota(op, stored, key);
      return write();
    });
  }

  // Constant time in the common case: the triggers' row counts include
  // expired rows (and can only drift upwards), so while they are under the
  // quota the live counts are too. Only at the quota does it look closer:
  // it purges the namespace's expired rows and counts its rows afresh.
  #checkQuota(op: string, stored: string, key: string): void {
    const core = this.#core;
    const engine = core.engine;
    if (this.#within(engine.namespaceStats(op, this.namespace))) return;
    // Overwriting a live key adds neither a key nor a group.
    if (core.ttl(op, stored, key) !== undefined) return;
    const now = core.now(op);
    core.write(op, now, [{ kind: "purge", prefix: this.#prefix }]);
    const [keys, groups] = engine.recountNamespace(op, this.namespace);
    if (this.#maxKeys > 0 && keys >= this.#maxKeys) {
      throw new QuotaExceededError(
        op,
        this.namespace,
        "maxKeys",
        this.#maxKeys,
      );
    }
    if (
      this.#maxGroups > 0 && groups >= this.#maxGroups &&
      !engine.groupHasLive(op, stored, now)
    ) {
      throw new QuotaExceededError(
        op,
        this.namespace,
        "maxGroups",
        this.#maxGroups,
      );
    }
  }

  #within([keys, groups]: [number, number]): boolean {
    return (this.#maxKeys === 0 || keys < this.#maxKeys) &&
      (this.#maxGroups === 0 || groups < this.#maxGroups);
  }
}
