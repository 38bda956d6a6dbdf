/**
 * The {@linkcode Store}: one SQLite connection, its lifecycle, reads and
 * writes of grouped string values with optional expiry, and the events they
 * emit.
 *
 * @module
 */

import {
  assertFilePath,
  assertFunction,
  assertOptions,
  assertText,
  assertTTL,
  readWatchOptions,
} from "./_check.ts";
import { registerCore, StoreCore } from "./_core.ts";
import * as atomic from "./_atomic.ts";
import { ATOMIC_OPS } from "./_atomic.ts";
import type { ChangeRetention } from "./_feed.ts";
import {
  type ListOptions,
  type RenderLimits,
  type RenderOptions,
  resolveOptions,
  type StoreOptions,
  WATCH_OPTIONS,
  type WatchOptions,
} from "./_options.ts";
import { exportRecords, importRecords } from "./_transfer.ts";
import { type Transaction, transactionView } from "./_tx_view.ts";
import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import type * as transfer from "./transfer.ts";

export type {
  ChangeRetention,
  ListOptions,
  RenderLimits,
  RenderOptions,
  StoreOptions,
  Transaction,
  WatchOptions,
};

/**
 * One page of {@linkcode Store.prototype.list}.
 */
export interface ListPage {
  /** `[key, value]` pairs in key order (descending with `reverse`). */
  entries: [string, string][];
  /** Pass as `cursor` to read the next page; `undefined` on the last page. */
  cursor: string | undefined;
}

/**
 * An embedded key-value store on the runtime's built-in SQLite. Values are
 * strings, organised by group and key; a key may expire. Files are
 * interchangeable with the Go sibling `go-store`.
 *
 * A key is live while it has no expiry or its expiry is after `clock()`.
 * Reads never see expired keys; `get` deletes the expired key it finds, and
 * a background timer purges the rest (a store opened read-only, see
 * {@linkcode StoreOptions.readOnly}, only passes them over).
 *
 * @example Set, read and expire values
 * ```ts
 * import { Store } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * let now = 0;
 * using store = new Store(":memory:", { clock: () => now });
 * store.set("config", "theme", "dark");
 * store.setWithTTL("session", "token", "abc", 1_000);
 * assert.equal(store.get("config", "theme"), "dark");
 * now = 1_000;
 * assert.equal(store.get("session", "token"), undefined);
 * ```
 */
export class Store implements Disposable {
  /** The file path given to the constructor, or `":memory:"`. */
  readonly path: string;

  #core: StoreCore;

  /**
   * Opens the store at `path`, creating the file and its table when missing.
   * A file written before expiry support gets its `expires_at` column added,
   * keeping every row. File-backed stores run in WAL mode.
   *
   * @example Open a file-backed store
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * {
   *   using store = new Store(`${dir}/app.db`, { durability: "full" });
   *   store.set("g", "k", "v");
   * }
   * using reopened = new Store(`${dir}/app.db`);
   * assert.equal(reopened.get("g", "k"), "v");
   * ```
   *
   * @param path A file path, or `":memory:"` (the default) for a private
   * in-memory store.
   * @param options Timers, durability, the clock, read-only mode.
   * @throws {TypeError} When `path` is not a non-empty string, an option has
   * the wrong type, or an option name is unknown (the message names the
   * closest known one).
   * @throws {RangeError} When a numeric option is out of range.
   * @throws {StoreError} When the file cannot be opened (the message says
   * when the path is a directory or its folder does not exist) or is not a
   * store.
   */
  constructor(path?: string, options?: StoreOptions) {
    const file = path === undefined ? ":memory:" : path;
    const resolved = resolveOptions(file, options ?? {});
    this.path = file;
    this.#core = new StoreCore(file, resolved);
    registerCore(this, this.#core);
  }

  /**
   * Whether the store only reads: opened with `readOnly: true`, or by
   * itself because its file or folder cannot be written. A write then throws
   * a {@linkcode StoreError} naming the mode.
   *
   * @example Read a file opened read-only
   * ```ts
   * import { Store, StoreError } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * {
   *   using store = new Store(`${dir}/app.db`);
   *   store.set("config", "theme", "dark");
   * }
   * using store = new Store(`${dir}/app.db`, { readOnly: true });
   * assert.equal(store.readOnly, true);
   * assert.equal(store.get("config", "theme"), "dark");
   * assert.throws(() => store.set("config", "theme", "light"), StoreError);
   * ```
   *
   * @returns `true` when writes are refused.
   */
  get readOnly(): boolean {
    return this.#core.engine.readOnly;
  }

  /**
   * Returns the value of a live key.
   *
   * @example Missing group, missing key
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.set("g", "k", "v");
   * assert.equal(store.get("g", "k"), "v");
   * assert.equal(store.get("g", "other"), undefined);
   * assert.equal(store.get("other", "k"), undefined);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @returns The value, or `undefined` when the key is missing or expired (an
   * expired key is deleted and reported as an `expire` event).
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  get(group: string, key: string): string | undefined {
    const op = "get value";
    const core = this.#keyed(op, group, key);
    return core.get(op, group, key);
  }

  /**
   * Stores a value with no expiry, replacing the key's value and any expiry it
   * had.
   *
   * @example Overwrite clears an expiry
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * store.setWithTTL("g", "k", "old", 10);
   * store.set("g", "k", "new");
   * now = 100;
   * assert.equal(store.get("g", "k"), "new");
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param value The value; any string, NUL characters included.
   * @throws {TypeError} When an argument is not a string or holds a lone
   * surrogate; nothing is written.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; nothing is written.
   */
  set(group: string, key: string, value: string): void {
    const op = "set value";
    const core = this.#keyed(op, group, key);
    assertText(op, "value", value);
    core.set(op, group, key, value, undefined);
  }

  /**
   * Stores a value that expires `ttlMs` milliseconds from now (by the store's
   * clock), replacing the key's value and expiry.
   *
   * @example A value that expires
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 1_000;
   * using store = new Store(":memory:", { clock: () => now });
   * store.setWithTTL("cache", "page", "<html>", 500);
   * now = 1_499;
   * assert.equal(store.get("cache", "page"), "<html>");
   * now = 1_500;
   * assert.equal(store.get("cache", "page"), undefined);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live in milliseconds: a positive finite number. The
   * expiry is rounded up to a whole millisecond.
   * @throws {TypeError} When an argument has the wrong type; nothing is
   * written.
   * @throws {RangeError} When `ttlMs` is not a positive finite number; nothing
   * is written.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; nothing is written.
   */
  setWithTTL(group: string, key: string, value: string, ttlMs: number): void {
    const op = "set value with TTL";
    const core = this.#keyed(op, group, key);
    assertText(op, "value", value);
    assertTTL(op, ttlMs);
    core.set(op, group, key, value, ttlMs);
  }

  /**
   * Deletes a key.
   *
   * @example Delete reports whether a live key went
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.set("g", "k", "v");
   * assert.equal(store.delete("g", "k"), true);
   * assert.equal(store.delete("g", "k"), false);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @returns `true` when a live key was removed; `false` when there was none
   * (an expired row found is removed too, as an `expire` event).
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  delete(group: string, key: string): boolean {
    const op = "delete key";
    const core = this.#keyed(op, group, key);
    const [deleted] = core.write(op, core.now(op), [
      { kind: "delete", group, key },
    ]);
    return deleted === 1;
  }

  /**
   * Adds `delta` to a counter and returns the new value, in one SQLite
   * write statement: exact however many processes and Workers increment the
   * same key of the file. A missing or expired entry counts as `0`. `ttlMs`
   * applies only when the increment creates the entry, so a fixed window
   * does not slide; an existing entry keeps its expiry (or its lack of one).
   * The value is stored as its decimal string (`"42"`), which `get` and
   * `render` see. Emits a `set` event, as `set` does.
   *
   * @example A fixed-window counter
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * assert.equal(store.increment("hits", "1.2.3.4", 1, 60_000), 1);
   * assert.equal(store.increment("hits", "1.2.3.4"), 2);
   * assert.equal(store.increment("hits", "1.2.3.4", -5), -3);
   * assert.equal(store.get("hits", "1.2.3.4"), "-3");
   * now = 60_000;
   * assert.equal(store.increment("hits", "1.2.3.4"), 1);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param delta What to add: a safe integer, `1` by default.
   * @param ttlMs The time to live of an entry the increment creates, in
   * milliseconds (positive, finite); without it, no expiry.
   * @returns The new value.
   * @throws {TypeError} When an argument has the wrong type; nothing is
   * written.
   * @throws {RangeError} When `delta` is not a safe integer or `ttlMs` is
   * not positive and finite; nothing is written.
   * @throws {StoreError} When the live value is not a decimal safe integer
   * (`"abc"`, `"1.5"`, `" 7"`), when the result would pass
   * ±`Number.MAX_SAFE_INTEGER`, or when SQLite fails; nothing is written.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   */
  increment(group: string, key: string, delta = 1, ttlMs?: number): number {
    const core = this.#keyed(ATOMIC_OPS.increment, group, key);
    return atomic.increment(core, group, key, delta, ttlMs)();
  }

  /**
   * Stores a value only if the key has no live entry (an expired one counts
   * as absent), in one SQLite write statement: of several processes racing
   * for a key, exactly one wins. Emits a `set` event when it writes, as
   * `set` or `setWithTTL` does, and nothing otherwise.
   *
   * @example Take a lock once
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * assert.equal(store.setIfAbsent("locks", "job", "worker-1", 30_000), true);
   * assert.equal(store.setIfAbsent("locks", "job", "worker-2", 30_000), false);
   * assert.equal(store.get("locks", "job"), "worker-1");
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live in milliseconds (positive, finite); without
   * it, no expiry.
   * @returns `true` when it wrote, `false` when it left a live entry alone.
   * @throws {TypeError} When an argument has the wrong type; nothing is
   * written.
   * @throws {RangeError} When `ttlMs` is not positive and finite.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; nothing is written.
   */
  setIfAbsent(
    group: string,
    key: string,
    value: string,
    ttlMs?: number,
  ): boolean {
    const op = ATOMIC_OPS.setIfAbsent;
    const core = this.#keyed(op, group, key);
    return atomic.setIfAbsent(core, op, group, key, value, ttlMs)();
  }

  /**
   * Replaces the value only if the live value is `expected` (`undefined`:
   * only if there is no live entry), in one SQLite write statement. The new
   * value gets `ttlMs` when given, else no expiry, as `set` does. Emits a
   * `set` event when it writes, and nothing otherwise.
   *
   * @example Swap a value nobody changed
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * assert.equal(store.compareAndSet("cfg", "v", undefined, "1"), true);
   * assert.equal(store.compareAndSet("cfg", "v", "1", "2"), true);
   * assert.equal(store.compareAndSet("cfg", "v", "1", "3"), false);
   * assert.equal(store.get("cfg", "v"), "2");
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param expected The live value it must find, or `undefined` for none.
   * @param value The new value.
   * @param ttlMs Time to live of the new value in milliseconds (positive,
   * finite); without it, no expiry.
   * @returns `true` when the live value was `expected` and is replaced.
   * @throws {TypeError} When an argument has the wrong type; nothing is
   * written.
   * @throws {RangeError} When `ttlMs` is not positive and finite.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; nothing is written.
   */
  compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ): boolean {
    const core = this.#keyed(ATOMIC_OPS.compareAndSet, group, key);
    return atomic.compareAndSet(core, group, key, expected, value, ttlMs).run();
  }

  /**
   * Deletes the key only if its live value is `expected`, in one SQLite
   * write statement: a lock released only by its holder. Emits a `delete`
   * event when it deletes, and nothing otherwise.
   *
   * @example Release only your own lock
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.setIfAbsent("locks", "job", "worker-1", 30_000);
   * assert.equal(store.compareAndDelete("locks", "job", "worker-2"), false);
   * assert.equal(store.compareAndDelete("locks", "job", "worker-1"), true);
   * assert.equal(store.get("locks", "job"), undefined);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param expected The live value it must find.
   * @returns `true` when the live value was `expected` and is deleted.
   * @throws {TypeError} When an argument is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; nothing is deleted.
   */
  compareAndDelete(group: string, key: string, expected: string): boolean {
    const core = this.#keyed(ATOMIC_OPS.compareAndDelete, group, key);
    return atomic.compareAndDelete(core, group, key, expected);
  }

  /**
   * Deletes a key and returns the live value it held, in one SQLite write
   * statement: of several processes taking the same key, exactly one gets
   * the value. Emits the event `delete` emits (`delete`, or `expire` for an
   * expired row it removes).
   *
   * @example A one-time token
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.setWithTTL("tokens", "t-1", "user-42", 600_000);
   * assert.equal(store.getAndDelete("tokens", "t-1"), "user-42");
   * assert.equal(store.getAndDelete("tokens", "t-1"), undefined);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @returns The live value, or `undefined` when there was none.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; nothing is deleted.
   */
  getAndDelete(group: string, key: string): string | undefined {
    const core = this.#keyed(ATOMIC_OPS.getAndDelete, group, key);
    return atomic.getAndDelete(core, group, key);
  }

  /**
   * Deletes every key of a group.
   *
   * @example Empty a group
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.set("g", "a", "1");
   * store.set("g", "b", "2");
   * assert.equal(store.deleteGroup("g"), 2);
   * assert.equal(store.getAll("g").size, 0);
   * ```
   *
   * @param group The group.
   * @returns How many rows were removed, expired ones included.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  deleteGroup(group: string): number {
    const op = "delete group";
    const core = this.#open(op);
    assertText(op, "group", group);
    const [removed = 0] = core.write(op, core.now(op), [
      { kind: "deleteGroup", group },
    ]);
    return removed;
  }

  /**
   * Tells whether a key is live. Unlike {@linkcode Store.prototype.get} it
   * neither reads the value nor deletes an expired row.
   *
   * @example Exists
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * store.setWithTTL("g", "k", "v", 10);
   * assert.equal(store.exists("g", "k"), true);
   * now = 10;
   * assert.equal(store.exists("g", "k"), false);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @returns `true` when the key is present and not expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  exists(group: string, key: string): boolean {
    const op = "check key";
    const core = this.#keyed(op, group, key);
    return core.ttl(op, group, key) !== undefined;
  }

  /**
   * Runs `fn` inside one SQLite write transaction (`BEGIN IMMEDIATE`): when
   * it returns, the writes commit together and its result is returned; when
   * it throws, every write is rolled back and the error is rethrown. Events
   * are delivered after the commit, in order; a rolled-back transaction
   * emits none.
   *
   * `fn` must be synchronous: holding the write lock across an `await` would
   * block every other writer of the file. Store methods called directly
   * inside `fn` join the transaction.
   *
   * @example All or nothing
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * assert.throws(() =>
   *   store.transaction((tx) => {
   *     tx.set("g", "a", "1");
   *     throw new Error("changed my mind");
   *   })
   * );
   * assert.equal(store.get("g", "a"), undefined);
   * const n = store.transaction((tx) => {
   *   tx.set("g", "a", "1");
   *   tx.set("g", "b", "2");
   *   return tx.count("g");
   * });
   * assert.equal(n, 2);
   * ```
   *
   * @typeParam T What `fn` returns.
   * @param fn The work; receives a {@linkcode Transaction}.
   * @returns What `fn` returned.
   * @throws {TypeError} When `fn` is not a function, or returns a promise or
   * other thenable (the transaction is then rolled back).
   * @throws {StoreError} When called inside another transaction of this
   * store, when the transaction object is used after `fn` returned, or when
   * SQLite fails.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   */
  transaction<T>(fn: (tx: Transaction) => T): T {
    const op = "run transaction";
    const core = this.#open(op);
    assertFunction(op, "fn", fn);
    const { tx, end } = transactionView(this);
    try {
      return core.transaction(op, () => fn(tx));
    } finally {
      end();
    }
  }

  /**
   * Counts the live keys of a group.
   *
   * @example Expired keys do not count
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * store.set("g", "a", "1");
   * store.setWithTTL("g", "b", "2", 10);
   * assert.equal(store.count("g"), 2);
   * now = 10;
   * assert.equal(store.count("g"), 1);
   * ```
   *
   * @param group The group.
   * @returns The number of live keys.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  count(group: string): number {
    const op = "count keys";
    const core = this.#open(op);
    assertText(op, "group", group);
    return core.count(op, group);
  }

  /**
   * Returns every live entry of a group.
   *
   * @example Entries in key order
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.set("g", "b", "2");
   * store.set("g", "a", "1");
   * assert.deepEqual([...store.getAll("g")], [["a", "1"], ["b", "2"]]);
   * ```
   *
   * @param group The group.
   * @returns A new map of key to value, in ascending key order (by code
   * point, as SQLite and Go sort).
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  getAll(group: string): Map<string, string> {
    const op = "get all values";
    const core = this.#open(op);
    assertText(op, "group", group);
    return core.getAll(op, group);
  }
  /**
   * Reads a group's live entries and the change-log position they reflect,
   * in one transaction: `watch(group, "*", { since: position })` then
   * delivers exactly the changes after them, none missing and none twice.
   *
   * @example Entries, then the changes after them
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * const path = `${await Deno.makeTempDir()}/app.db`;
   * using store = new Store(path, { changeFeed: true });
   * store.set("config", "theme", "dark");
   * const { entries, position } = store.snapshot("config");
   * store.set("config", "lang", "en");
   * using watcher = store.watch("config", "*", { since: position });
   * const reader = watcher.stream.getReader();
   * assert.deepEqual([...entries], [["theme", "dark"]]);
   * assert.equal((await reader.read()).value?.key, "lang");
   * reader.releaseLock();
   * ```
   *
   * @param group The group.
   * @returns The entries in key order and the last change's `seq`
   * (`undefined` without the `changeFeed` option).
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  snapshot(group: string): GroupSnapshot {
    const op = "read a snapshot";
    const core = this.#open(op);
    assertText(op, "group", group);
    return core.snapshot(op, group);
  }

  /**
   * Reads how long a key has left to live.
   *
   * @example Time to live
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * store.setWithTTL("g", "k", "v", 1_000);
   * now = 400;
   * assert.equal(store.ttl("g", "k"), 600);
   * store.set("g", "forever", "v");
   * assert.equal(store.ttl("g", "forever"), Infinity);
   * assert.equal(store.ttl("g", "missing"), undefined);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @returns Milliseconds left; `Infinity` when the key has no expiry;
   * `undefined` when it is missing or expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  ttl(group: string, key: string): number | undefined {
    const op = "read TTL";
    const core = this.#keyed(op, group, key);
    return core.ttl(op, group, key);
  }

  /**
   * Sets (or, with `null`, clears) the expiry of a live key without changing
   * its value. Emits a `set` event carrying the new `expiresAt` (none when
   * cleared).
   *
   * @example Extend a session
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now });
   * store.setWithTTL("session", "s1", "alice", 1_000);
   * now = 900;
   * assert.equal(store.expire("session", "s1", 1_000), true);
   * now = 1_500;
   * assert.equal(store.get("session", "s1"), "alice");
   * assert.equal(store.expire("session", "s1", null), true);
   * assert.equal(store.ttl("session", "s1"), Infinity);
   * assert.equal(store.expire("session", "missing", 10), false);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param ttlMs Milliseconds from now, positive and finite; `null` to remove
   * the expiry.
   * @returns `true` when the key was live and its expiry changed.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  expire(group: string, key: string, ttlMs: number | null): boolean {
    const op = "set expiry";
    const core = this.#keyed(op, group, key);
    if (ttlMs !== null) assertTTL(op, ttlMs);
    return core.expire(op, group, key, ttlMs);
  }

  /**
   * Reads a group one page at a time, in key order. Paging is by key (never
   * by offset), so it stays stable while other keys are inserted or deleted
   * between pages: every key present throughout is seen exactly once.
   *
   * @example Walk a group in pages
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * for (const key of ["a1", "a2", "a3", "b1"]) store.set("g", key, key);
   * const first = store.list("g", { limit: 2, prefix: "a" });
   * assert.deepEqual(first.entries, [["a1", "a1"], ["a2", "a2"]]);
   * const second = store.list("g", { limit: 2, prefix: "a", cursor: first.cursor });
   * assert.deepEqual(second.entries, [["a3", "a3"]]);
   * assert.equal(second.cursor, undefined);
   * ```
   *
   * @param group The group.
   * @param options Page size, cursor, key prefix and direction.
   * @returns The page and the cursor of the next one.
   * @throws {TypeError} When an argument or option has the wrong type.
   * @throws {RangeError} When `limit` is not an integer from 1 to 10,000.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  list(group: string, options?: ListOptions): ListPage {
    const op = "list keys";
    const core = this.#open(op);
    assertText(op, "group", group);
    return core.list(op, group, options ?? {});
  }

  /**
   * Streams the live entries of one snapshot, taken now: in storage order,
   * or with a prefix in group and key order. A file store is read through a second, read-only connection
   * holding a read transaction until the stream ends or is cancelled (read
   * it to the end or cancel it); writes meanwhile are not seen, and memory
   * stays bounded whatever the size. An in-memory store is copied into
   * memory at once instead. Encode with {@linkcode toNdjson} for NDJSON.
   *
   * @example Export a group prefix
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 1_000;
   * using store = new Store(":memory:", { clock: () => now });
   * store.set("app:config", "theme", "dark");
   * store.setWithTTL("app:session", "s1", "ada", 500);
   * store.set("other", "k", "v");
   * const records = await Array.fromAsync(
   *   store.exportEntries({ prefix: "app:" }),
   * );
   * assert.deepEqual(records, [
   *   { group: "app:config", key: "theme", value: "dark", expiresAt: null },
   *   { group: "app:session", key: "s1", value: "ada", expiresAt: 1_500 },
   * ]);
   * ```
   *
   * @param options `prefix`: only groups starting with it.
   * @returns A stream of {@linkcode ExportRecord}s.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; the stream errors with it when
   * reading fails later.
   */
  exportEntries(
    options?: transfer.ExportOptions,
  ): ReadableStream<transfer.ExportRecord> {
    const op = "export entries";
    const core = this.#open(op);
    return exportRecords(
      options ?? {},
      (prefix) => core.engine.exportCursor(op, prefix, core.now(op)),
    );
  }

  /**
   * Writes records (as {@linkcode Store.prototype.exportEntries} yields, or
   * parsed by {@linkcode fromNdjson}) in transactions of `batchSize`, so
   * watchers and callbacks see each batch after it commits. A record whose
   * `expiresAt`
   * has passed is skipped; the others keep their exact `expiresAt`. A
   * malformed record stops the import: its batch is not written, the
   * batches before it stay.
   *
   * @example Copy one store into another
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using source = new Store();
   * using target = new Store();
   * source.set("g", "k", "v\0w");
   * const result = await target.importEntries(source.exportEntries());
   * assert.deepEqual(result, { imported: 1, skipped: 0 });
   * assert.equal(target.get("g", "k"), "v\0w");
   * ```
   *
   * @param source A stream or (async) iterable of records.
   * @param options `batchSize`: records per transaction (default 1,000).
   * @returns How many records were imported and skipped.
   * @throws {TypeError} When `source` is not iterable or an option has the
   * wrong type.
   * @throws {RangeError} When `batchSize` is out of range.
   * @throws {ImportError} When a record is malformed or the source fails.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails; that batch is rolled back.
   */
  async importEntries(
    source: transfer.ImportSource,
    options?: transfer.ImportOptions,
  ): Promise<transfer.ImportResult> {
    const op = "import entries";
    const core = this.#open(op);
    return await importRecords(
      source,
      options ?? {},
      (records) => core.setEntries(op, records),
    );
  }

  /**
   * Writes a consistent copy of the store to a new, standalone SQLite file
   * (rollback journal, no `-wal` file beside it) that this module and the Go
   * sibling can open. Works for file-backed and `:memory:` stores while other
   * connections write: the copy is one read snapshot.
   *
   * The rows are copied through this connection rather than with
   * `VACUUM INTO`, which Deno allows only with `--allow-all`.
   *
   * @example Back up an in-memory store
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * using store = new Store();
   * store.set("g", "k", "v");
   * store.backup(`${dir}/backup.db`);
   * using copy = new Store(`${dir}/backup.db`);
   * assert.equal(copy.get("g", "k"), "v");
   * ```
   *
   * @param path Where to write the copy; must not exist yet.
   * @throws {TypeError} When `path` is not a non-empty string.
   * @throws {StoreError} When `path` already exists, or SQLite fails (for
   * instance inside a transaction).
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   */
  backup(path: string): void {
    const op = "back up store";
    const core = this.#open(op);
    assertFilePath(op, path);
    core.backup(op, path);
  }

  /**
   * Counts the live keys of every group whose name starts with `prefix`. The
   * prefix is literal (`%`, `_` and `\` match only themselves) and the count
   * is a range scan of the primary key.
   *
   * @example Count a namespace
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.set("a:x", "k", "1");
   * store.set("a:y", "k", "2");
   * store.set("b:x", "k", "3");
   * assert.equal(store.countAll("a:"), 2);
   * assert.equal(store.countAll(), 3);
   * ```
   *
   * @param prefix The start of the group names to count; `""` (the default)
   * counts every group.
   * @returns The number of live keys.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  countAll(prefix?: string): number {
    const op = "count all keys";
    const core = this.#open(op);
    const from = prefix === undefined ? "" : prefix;
    assertText(op, "prefix", from);
    return core.countAll(op, from);
  }

  /**
   * Lists the groups that hold at least one live key and whose name starts
   * with `prefix` (literal, as in {@linkcode Store.prototype.countAll}).
   *
   * @example Groups of a namespace
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.set("a_b", "k", "1");
   * store.set("axb", "k", "2");
   * assert.deepEqual(store.groups("a_"), ["a_b"]);
   * assert.deepEqual(store.groups(), ["a_b", "axb"]);
   * ```
   *
   * @param prefix The start of the group names; `""` (the default) lists
   * every group.
   * @returns Distinct group names, ascending.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  groups(prefix?: string): string[] {
    const op = "list groups";
    const core = this.#open(op);
    const from = prefix === undefined ? "" : prefix;
    assertText(op, "prefix", from);
    return core.groups(op, from);
  }

  /**
   * Renders a Go `text/template` against the live entries of a group. Each
   * distinct template is parsed once and cached.
   *
   * Supported: `{{ .name }}`, `{{ index . "any key" }}`, comments, trim
   * markers, pipelines into `html`, `js`, `urlquery` and `json`, `if`/`else`,
   * `with` and `range $k, $v := .` (in key order).
   *
   * @example Render a group
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * store.set("user", "name", "Ada");
   * store.set("user", "bio", "<b>hi</b>");
   * assert.equal(
   *   store.render("{{ .name }}: {{ .bio | html }}", "user"),
   *   "Ada: &lt;b&gt;hi&lt;/b&gt;",
   * );
   * ```
   *
   * @param template The template source.
   * @param group The group whose live entries are the template's data.
   * @param options `missingKey`: what a missing key prints.
   * @returns The rendered text.
   * @throws {TypeError} When `template` or `group` is not a string.
   * @throws {RangeError} When `missingKey` is not one of the three modes.
   * @throws {TemplateError} When the template cannot be parsed or executed;
   * the message gives `line:col`.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  render(template: string, group: string, options?: RenderOptions): string {
    const op = "render template";
    const core = this.#open(op);
    assertText(op, "template", template);
    assertText(op, "group", group);
    return core.render(op, template, group, options ?? {});
  }

  /**
   * Deletes every expired row now, reporting each as an `expire` event.
   *
   * @example Purge
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let now = 0;
   * using store = new Store(":memory:", { clock: () => now, purgeIntervalMs: 0 });
   * store.setWithTTL("g", "a", "1", 10);
   * store.setWithTTL("g", "b", "2", 20);
   * store.set("g", "c", "3");
   * now = 15;
   * assert.equal(store.purgeExpired(), 1);
   * ```
   *
   * @returns How many rows were removed.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   * @throws {StoreError} When SQLite fails.
   */
  purgeExpired(): number {
    const op = "purge expired keys";
    return this.#open(op).purgeExpired(op);
  }

  /**
   * Watches the events of one key (`key` `"*"` for every key of the group;
   * `("*", "*")` for every event; with `prefix`, of every group whose name
   * starts with `group`). The watcher is a bounded stream: it queues up to
   * `capacity` (16) unread events and drops (and counts) the rest, so a slow
   * reader never slows a writer.
   *
   * @example Watch a group
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const watcher = store.watch("config", "*");
   * store.set("config", "theme", "dark");
   * for await (const event of watcher) {
   *   assert.equal(event.type, "set");
   *   assert.equal(event.value, "dark");
   *   break; // leaving the loop unwatches
   * }
   * ```
   *
   * @example Watch every group of a prefix, with a larger queue
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * using watcher = store.watch("user:", "*", { prefix: true, capacity: 100 });
   * store.set("user:1", "name", "Ada");
   * store.set("team:1", "name", "core");
   * store.set("user:2", "name", "Lin");
   * const reader = watcher.stream.getReader();
   * assert.equal((await reader.read()).value?.group, "user:1");
   * assert.equal((await reader.read()).value?.group, "user:2");
   * assert.equal(watcher.capacity, 100);
   * reader.releaseLock();
   * ```
   *
   * @param group The group, or `"*"` for every group.
   * @param key The key, or `"*"` for every key.
   * @param options `since`: resume after a change-log `seq`, replaying what
   * the log holds after it (needs the `changeFeed` option); `capacity`: the
   * unread events queued (1 to 65,536, default 16); `prefix`: `group` is a
   * group-name prefix.
   * @returns A registered {@linkcode Watcher}.
   * @throws {TypeError} When `group` or `key` is not a string, `prefix` not
   * a boolean, or `since` is given without the change feed.
   * @throws {RangeError} When `since` is not a non-negative integer or is
   * after the newest change, or `capacity` is out of range.
   * @throws {StoreError} When the log no longer holds every change after
   * `since` (it was trimmed by the retention limits).
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   */
  watch(group: string, key: string, options?: WatchOptions): Watcher {
    const op = "watch";
    const core = this.#keyed(op, group, key);
    assertOptions(op, "options", options, WATCH_OPTIONS);
    const { since, capacity, prefix } = readWatchOptions(op, options);
    return core.watch(op, group, key, {
      since,
      capacity,
      prefix: prefix ? group : undefined,
    });
  }

  /**
   * Stops a watcher; its stream ends after the events already queued.
   * Idempotent, and allowed after close.
   *
   * @example Unwatch
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const watcher = store.watch("g", "k");
   * store.set("g", "k", "1");
   * store.unwatch(watcher);
   * store.set("g", "k", "2");
   * const values = (await Array.fromAsync(watcher)).map((e) => e.value);
   * assert.deepEqual(values, ["1"]);
   * ```
   *
   * @param watcher A watcher from {@linkcode Store.prototype.watch}.
   */
  unwatch(watcher: Watcher): void {
    this.#core.unwatch(watcher);
  }

  /**
   * Calls `fn` synchronously, after each committed write, with its event; in
   * registration order. An error thrown by `fn` does not undo the write nor
   * stop the other callbacks; it goes to `onCallbackError` or
   * `reportError()`.
   *
   * @example Forward changes
   * ```ts
   * import { Store, type StoreEvent } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const seen: StoreEvent[] = [];
   * const off = store.onChange((event) => seen.push(event));
   * store.set("g", "k", "v");
   * off();
   * store.delete("g", "k");
   * assert.deepEqual(seen.map((e) => e.type), ["set"]);
   * ```
   *
   * @param fn The callback.
   * @returns A function that unregisters `fn`; calling it again does nothing.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   */
  onChange(fn: (event: StoreEvent) => void): () => void {
    return this.#open("register change callback").onChange(fn);
  }

  /**
   * Turns the change feed off for the file for good: removes the change log
   * and the triggers that fill it, so that no writer (this store, other
   * processes, the Go sibling) logs changes any more. While any store keeps
   * the `changeFeed` option, the log stays, trimmed to that store's
   * `changeRetention.maxRows` by a trigger whoever writes; stop those stores
   * first, as their watchers stop hearing changes.
   *
   * @example Remove the log of a file that once had the feed on
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * const path = `${await Deno.makeTempDir()}/app.db`;
   * new Store(path, { changeFeed: true }).close();
   * using store = new Store(path);
   * store.disableChangeFeed();
   * store.set("g", "k", "v");
   * assert.equal(store.get("g", "k"), "v");
   * ```
   *
   * @throws {StoreError} When this store has the `changeFeed` option, a
   * transaction is running, or SQLite fails.
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   */
  disableChangeFeed(): void {
    const op = "disable the change feed";
    this.#open(op).disableChangeFeed(op);
  }

  /**
   * Closes the store: stops the background purge, ends every watcher's
   * stream, drops every callback and closes the database. Calling it again
   * does nothing.
   *
   * @example Close twice
   * ```ts
   * import { Store, StoreClosedError } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * const store = new Store();
   * store.close();
   * store.close();
   * assert.throws(() => store.count("g"), StoreClosedError);
   * ```
   */
  close(): void {
    this.#core.close();
  }

  /**
   * Closes the store, so that `using store = new Store()` closes it at the
   * end of the block.
   *
   * @example Dispose
   * ```ts
   * import { Store, StoreClosedError } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * let outer: Store;
   * {
   *   using store = new Store();
   *   outer = store;
   * }
   * assert.throws(() => outer.get("g", "k"), StoreClosedError);
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  #keyed(op: string, group: string, key: string): StoreCore {
    const core = this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    return core;
  }

  #open(op: string): StoreCore {
    this.#core.open(op);
    return this.#core;
  }
}
