/**
 * {@linkcode DenoKvStore}: the store on Deno KV, for services on Deno
 * Deploy (where a SQLite file neither persists nor is shared between
 * isolates) and for any Deno program that prefers Deno KV's file. It
 * implements {@linkcode AsyncStore}, so code written against
 * `toAsync(new Store(path))` or `EtcdStore` runs on it unchanged, and
 * `AsyncScopedStore` gives it tenants with quotas. Deno KV needs
 * `--unstable-kv` (or `"unstable": ["kv"]` in deno.json).
 *
 * What it adds to Deno KV, and how:
 *
 * - **Exact expiry.** The deadline is stored with the value and decides
 *   every read; Deno KV's `expireIn` (set a minute past it) only cleans up.
 *   While anybody listens, a timer set for the earliest deadline of an
 *   expiry index deletes keys at their deadline, with `expire` events.
 * - **Large values.** A value of more than 16,384 UTF-16 units is stored
 *   as UTF-8 chunks of 60,000 bytes under a fresh id, named by the entry.
 *   Chunks that fit in the entry's atomic operation are written in it;
 *   larger values (up to 16 MiB) are written first and named by the
 *   commit, so no reader ever sees part of a value; housekeeping removes
 *   chunks nothing names any more (replaced values, killed writers).
 * - **Events, numbered.** Every write logs its events (one `seq` each) in
 *   its atomic operation, which checks that the log's last entry (the
 *   head) is still the one the write started from: `seq` is a safe integer
 *   in commit order, every store on the database reads the same log, and
 *   `watch(…, { since })` resumes exactly after a `seq` (the log keeps the
 *   last 10,000; older gives `StoreError`). Each store polls the head every
 *   10 ms while anybody listens, because locally Deno KV's `watch` never
 *   sees another process's writes.
 * - **`deleteGroup` of any size, atomically.** One Deno KV atomic
 *   operation holds at most 1,000 mutations; instead of deleting the keys,
 *   `deleteGroup` writes the group's marker, and an entry is live only if
 *   its versionstamp is not older than the marker's. Readers read the
 *   marker with the entry (one `getMany`) or first in a group's scan, so
 *   the whole group disappears at one commit; the old entries are removed
 *   afterwards, in batches, and a pending record lets housekeeping finish
 *   what a killed writer began.
 * - **Serializable writes.** As every write checks the head it read,
 *   transactions (optimistic, re-run on conflict) and quotas hold under
 *   races between stores and processes. The price: writers to one store
 *   serialize on the head, as on one SQLite file.
 *
 * Where it differs from the local store: a `transaction` must fit in one
 * Deno KV atomic operation (1,000 mutations, 800 KiB; past that,
 * `StoreError` and nothing written); `disableChangeFeed` does nothing (the
 * log is how stores share events).
 *
 * @example Open a store on a Deno KV database
 * ```ts
 * import { DenoKvStore } from "@core/store/deno-kv";
 * import assert from "node:assert/strict";
 *
 * await using store = await DenoKvStore.open({ path: ":memory:" });
 * await store.set("config", "theme", "dark");
 * assert.equal(await store.get("config", "theme"), "dark");
 * ```
 *
 * @module
 */

import type { AsyncStore } from "./async.ts";
import { type AsyncTransaction, runOptimistic } from "./_async_tx.ts";
import { SCOPE_HOOKS, type ScopeHooks } from "./_async_hooks.ts";
import {
  assertAtomicArgs,
  assertDelta,
  assertFilePath,
  assertOptions,
  assertText,
  assertTTL,
  ATOMIC_OPS,
  checkRender,
  checkSince,
  readWatchOptions,
} from "./_check.ts";
import { WATCH_OPTIONS } from "./_options.ts";
import { StoreClosedError, StoreError } from "./errors.ts";
import { expiryOf, readClock, unrefTimer } from "./_time.ts";
import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import { EventHub } from "./_hub.ts";
import type {
  ListOptions,
  ListPage,
  RenderOptions,
  WatchOptions,
} from "./store.ts";
import { executeTemplate, parseTemplate } from "./template.ts";
import { pager } from "./_paging.ts";
import { importRecords } from "./_transfer.ts";
import type * as transfer from "./transfer.ts";
import { isCurrent, KeySpace } from "./deno_kv/_keys.ts";
import { busy, type Committed, KvOps } from "./deno_kv/_kv.ts";
import { Feed } from "./deno_kv/_feed.ts";
import { cleanupGroup, housekeep, purgeExpired } from "./deno_kv/_clean.ts";
import {
  type Current,
  type Decision,
  DenoKvAttempt,
  liveUsage,
  quotaWrite,
  writeBlind,
  type WriteContext,
  writeKey,
} from "./deno_kv/_txn.ts";
import {
  importBatch,
  recordStream,
  snapshot,
  writeBackup,
} from "./deno_kv/_transfer.ts";
import { checkOpen } from "./deno_kv/_options.ts";
import { incrementBy } from "./deno_kv/_atomic.ts";

// The types this entry's API names, for callers that import only it.
export type {
  AsyncStore,
  AsyncTransaction,
  EventType,
  ExportOptions,
  ExportRecord,
  ImportOptions,
  ImportResult,
  ImportSource,
  ListOptions,
  ListPage,
  RenderLimits,
  RenderOptions,
  StoreEvent,
  Watcher,
  WatchOptions,
} from "../mod.ts";

/** Options for {@linkcode DenoKvStore.open}. */
export interface DenoKvStoreOptions {
  /**
   * The database to open with `Deno.openKv(path)`; absent (and no `kv`):
   * the default database, which on Deno Deploy is the project's.
   */
  path?: string;
  /** A database the caller opened and owns: `close()` leaves it open. */
  kv?: Deno.Kv;
  /**
   * The first part of every key this store writes: stores with different
   * prefixes on one database never see each other. Default `"store"`.
   */
  prefix?: string;
  /** The time in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /**
   * How often expired keys are purged (with `expire` events) and
   * leftovers removed, in milliseconds; `0` turns it off. Default `60_000`.
   */
  purgeIntervalMs?: number;
  /** Receives an error thrown by a change callback, with its event. */
  onCallbackError?: (error: unknown, event: StoreEvent) => void;
}

/**
 * The store on Deno KV. Open it with {@linkcode DenoKvStore.open}; every
 * method is that of {@linkcode AsyncStore}, plus the atomic operations.
 *
 * @example Two stores on one database see each other's writes
 * ```ts
 * import { DenoKvStore } from "@core/store/deno-kv";
 * import assert from "node:assert/strict";
 *
 * using kv = await Deno.openKv(":memory:");
 * await using a = await DenoKvStore.open({ kv });
 * await using b = await DenoKvStore.open({ kv });
 * await a.set("config", "theme", "dark");
 * assert.equal(await b.get("config", "theme"), "dark");
 * ```
 */
export class DenoKvStore implements AsyncStore {
  #kv: Deno.Kv;
  #owned: boolean;
  #ops: KvOps;
  #hub: EventHub;
  #feed: Feed;
  #clock: () => number;
  #ctx: WriteContext;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #chores: Promise<unknown> = Promise.resolve();

  private constructor(
    kv: Deno.Kv,
    owned: boolean,
    options: ReturnType<typeof checkOpen>,
  ) {
    this.#kv = kv;
    this.#owned = owned;
    this.#clock = options.clock;
    this.#ops = new KvOps(kv, new KeySpace(options.prefix));
    this.#hub = new EventHub({ onCallbackError: options.onCallbackError });
    this.#feed = new Feed(this.#ops, this.#hub, options.clock);
    this.#ctx = {
      ops: this.#ops,
      now: (op) => this.#now(op),
      delivered: (c: Committed) => this.#feed.committed(c),
      saw: (seq) => this.#feed.saw(seq),
    };
    if (options.purgeIntervalMs > 0) {
      this.#timer = setInterval(() => this.#chore(), options.purgeIntervalMs);
      unrefTimer(this.#timer);
    }
  }

  /**
   * Opens the store: checks the options, opens the database (unless given
   * one) and reads the head of the change log.
   *
   * @example On a file, closed with the store
   * ```ts
   * import { DenoKvStore } from "@core/store/deno-kv";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * {
   *   await using store = await DenoKvStore.open({ path: `${dir}/app.kv` });
   *   await store.setWithTTL("session", "s1", "ada", 60_000);
   *   assert.equal(await store.exists("session", "s1"), true);
   * }
   * await Deno.remove(dir, { recursive: true });
   * ```
   *
   * @param options Path or handle, prefix, clock and purge interval.
   * @returns The open store.
   * @throws {TypeError} When an option has the wrong type, or both `path`
   * and `kv` are given.
   * @throws {RangeError} When `purgeIntervalMs` is out of range, or the
   * clock returns no finite number.
   */
  static async open(options: DenoKvStoreOptions = {}): Promise<DenoKvStore> {
    const checked = checkOpen(options);
    readClock("open store", checked.clock);
    // Two processes creating one new file at once: one waits.
    const kv = checked.kv ?? await busy(() => Deno.openKv(checked.path));
    const store = new DenoKvStore(kv, checked.kv === undefined, checked);
    try {
      store.#feed.saw((await store.#ops.head()).seq);
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** @ignore What `AsyncScopedStore` needs; not public API. */
  get [SCOPE_HOOKS](): ScopeHooks {
    return {
      open: (op) => this.#open(op),
      quotaWrite: async (op, namespace, quota, group, key, value, ttlMs) => {
        this.#open(op);
        await quotaWrite(this.#ctx, {
          op,
          namespace,
          quota,
          group,
          key,
          value,
          ttlMs,
        });
      },
      onNamespaceChange: (op, namespace, fn) => {
        this.#open(op);
        const off = this.#hub.onChange(fn, { namespace });
        this.#feed.listen();
        return off;
      },
    };
  }

  /**
   * The value of a live key; an expired key found is deleted, with an
   * `expire` event.
   *
   * @param group The group.
   * @param key The key.
   * @returns The value, or `undefined` when missing or expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async get(group: string, key: string): Promise<string | undefined> {
    const op = "get value";
    this.#checkKey(op, group, key);
    if (this.#ops.keys.oversize(group, key)) return undefined;
    for (let attempt = 0; attempt < 64; attempt++) {
      const now = this.#now(op);
      const read = await this.#ops.read(group, key);
      const { entry } = read;
      if (entry === undefined || !isCurrent(entry.versionstamp, read.marker)) {
        return undefined;
      }
      const at = entry.stored.x;
      if (at !== undefined && at <= now) {
        return await this.#write(op, group, key, (c) => ({
          result: c.value,
          change: c.expired ? { type: "expire", group, key } : undefined,
        }));
      }
      const stored = entry.stored;
      const value = stored.c === undefined
        ? stored.v ?? ""
        : await this.#ops.value(stored);
      if (value !== undefined) return value;
    }
    throw new StoreError(`Cannot ${op}: the value kept changing while read`);
  }

  /**
   * Stores a value with no expiry.
   *
   * @param group The group.
   * @param key The key.
   * @param value The value; any string (past 16,384 UTF-16 units it is
   * stored in chunks; at most 16 MiB).
   * @throws {TypeError} When an argument is not a string or holds a lone
   * surrogate; nothing is written.
   * @throws {RangeError} When group and key are past Deno KV's key size or
   * the value past 16 MiB.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async set(group: string, key: string, value: string): Promise<void> {
    const op = "set value";
    this.#checkWrite(op, group, key, value);
    await writeBlind(this.#ctx, op, () => ({ type: "set", group, key, value }));
  }

  /**
   * Stores a value that expires `ttlMs` from now by the store's clock.
   *
   * @param group The group.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live in milliseconds, positive and finite.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async setWithTTL(
    group: string,
    key: string,
    value: string,
    ttlMs: number,
  ): Promise<void> {
    const op = "set value with TTL";
    this.#checkWrite(op, group, key, value);
    assertTTL(op, ttlMs);
    await writeBlind(this.#ctx, op, (now) => ({
      type: "set",
      group,
      key,
      value,
      expiresAt: expiryOf(op, now, ttlMs),
    }));
  }

  /**
   * Deletes a key.
   *
   * @param group The group.
   * @param key The key.
   * @returns `true` when a live key was removed (an expired one removed is
   * reported as an `expire` event).
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async delete(group: string, key: string): Promise<boolean> {
    const op = "delete key";
    this.#checkKey(op, group, key);
    if (this.#ops.keys.oversize(group, key)) return false;
    return await this.#write(op, group, key, (c) => ({
      result: c.live,
      change: c.live
        ? { type: "delete", group, key }
        : c.expired
        ? { type: "expire", group, key }
        : undefined,
    }), false);
  }

  /**
   * Deletes every key of a group at one commit, reported as one
   * `delete_group` event, whatever its size: the group's marker makes its
   * entries dead for every reader at once; they are removed afterwards,
   * before this resolves.
   *
   * @param group The group.
   * @returns How many keys were removed, expired ones included.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async deleteGroup(group: string): Promise<number> {
    const op = "delete group";
    this.#open(op);
    assertText(op, "group", group);
    for (let attempt = 1; attempt <= 64; attempt++) {
      const head = await this.#ops.head();
      this.#feed.saw(head.seq);
      const entries = await this.#ops.scan(op, this.#ops.keys.group(group));
      if (entries.length === 0) return 0;
      const committed = await this.#ops.commit(op, head, [{
        change: { type: "delete_group", group, key: "" },
      }], this.#now(op));
      if (committed === undefined) {
        await new Promise((r) => setTimeout(r, Math.random() * attempt * 4));
        continue;
      }
      await this.#feed.committed(committed);
      await cleanupGroup(this.#ops, group);
      return entries.length;
    }
    throw new StoreError(`Cannot ${op}: it conflicted with other writers`);
  }

  /**
   * Tells whether a key is live.
   *
   * @param group The group.
   * @param key The key.
   * @returns `true` when present and not expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async exists(group: string, key: string): Promise<boolean> {
    return await this.#ttl("check key", group, key) !== undefined;
  }

  /**
   * How long a key has left to live.
   *
   * @param group The group.
   * @param key The key.
   * @returns Milliseconds left; `Infinity` without expiry; `undefined` when
   * missing or expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async ttl(group: string, key: string): Promise<number | undefined> {
    return await this.#ttl("read TTL", group, key);
  }

  async #ttl(op: string, group: string, key: string) {
    this.#checkKey(op, group, key);
    if (this.#ops.keys.oversize(group, key)) return undefined;
    const now = this.#now(op);
    const { entry, marker } = await this.#ops.read(group, key);
    if (entry === undefined || !isCurrent(entry.versionstamp, marker)) {
      return undefined;
    }
    const at = entry.stored.x;
    if (at === undefined) return Infinity;
    return at > now ? at - now : undefined;
  }

  /**
   * Counts the live keys of a group.
   *
   * @param group The group.
   * @returns The number of live keys.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async count(group: string): Promise<number> {
    const op = "count keys";
    this.#open(op);
    assertText(op, "group", group);
    const now = this.#now(op);
    const entries = await this.#ops.scan(op, this.#ops.keys.group(group));
    return entries.filter((e) => e.stored.x === undefined || e.stored.x > now)
      .length;
  }

  /**
   * Every live entry of a group, read at one moment for the group.
   *
   * @param group The group.
   * @returns A new map, in code point order of the keys.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async getAll(group: string): Promise<Map<string, string>> {
    const op = "get all values";
    this.#open(op);
    assertText(op, "group", group);
    return await this.#map(op, group);
  }

  /**
   * A group's live entries and the change-log position they reflect, as
   * `Store.prototype.snapshot`. Deno KV lists no range at one version, so
   * the entries are read between two reads of the log's head, again until
   * both agree (no write came between); after three tries the last first
   * head is the position, and the few changes replayed after it may already
   * be in the entries (each overwrites a key, so a copy still ends equal).
   *
   * @param group The group.
   * @returns The entries in key order, and the position.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async snapshot(group: string): Promise<GroupSnapshot> {
    const op = "read a snapshot";
    this.#open(op);
    assertText(op, "group", group);
    for (let attempt = 1;; attempt++) {
      const before = (await this.#ops.head()).seq;
      const entries = await this.#map(op, group);
      const after = (await this.#ops.head()).seq;
      if (before === after || attempt === 3) {
        return { entries, position: before };
      }
    }
  }

  async #map(op: string, group: string): Promise<Map<string, string>> {
    const live = await this.#ops.liveGroup(op, group, this.#now(op));
    return new Map(live.map(({ entry, value }) => [entry.key, value]));
  }

  /**
   * Sets or clears the expiry of a live key; the value stays.
   *
   * @param group The group.
   * @param key The key.
   * @param ttlMs Milliseconds from now, or `null` to remove the expiry.
   * @returns `true` when the key was live and its expiry changed.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async expire(
    group: string,
    key: string,
    ttlMs: number | null,
  ): Promise<boolean> {
    const op = "set expiry";
    this.#checkKey(op, group, key);
    if (ttlMs !== null) assertTTL(op, ttlMs);
    if (this.#ops.keys.oversize(group, key)) return false;
    return await this.#write(op, group, key, (c) => {
      if (c.value === undefined) return { result: false };
      const expiresAt = ttlMs === null ? undefined : expiryOf(op, c.now, ttlMs);
      return {
        result: true,
        change: { type: "set", group, key, value: c.value, expiresAt },
      };
    });
  }

  /**
   * Adds `delta` to a counter, atomically: a missing or expired entry
   * counts as `0`, and `ttlMs` applies only when this creates the entry
   * (a fixed window); an existing entry keeps its expiry. The value is
   * stored as its decimal string.
   *
   * @example A fixed-window rate limit
   * ```ts
   * import { DenoKvStore } from "@core/store/deno-kv";
   * import assert from "node:assert/strict";
   *
   * await using store = await DenoKvStore.open({ path: ":memory:" });
   * assert.equal(await store.increment("hits", "10.0.0.1", 1, 60_000), 1);
   * assert.equal(await store.increment("hits", "10.0.0.1"), 2);
   * assert.equal(await store.get("hits", "10.0.0.1"), "2");
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param delta A safe integer; default `1`.
   * @param ttlMs Time to live of a new entry, in milliseconds.
   * @returns The new value.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `delta` is not a safe integer or `ttlMs` not
   * positive and finite.
   * @throws {StoreError} When the stored value is not a decimal safe
   * integer or the result would not be one; nothing is written.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async increment(
    group: string,
    key: string,
    delta = 1,
    ttlMs?: number,
  ): Promise<number> {
    const op = ATOMIC_OPS.increment;
    this.#checkKey(op, group, key);
    assertDelta(op, delta);
    this.#checkTTL(op, ttlMs);
    this.#checkSize(op, group, key);
    return await this.#write(op, group, key, incrementBy(op, delta, ttlMs));
  }

  /**
   * Stores a value only if no live entry exists (an expired one counts as
   * absent), atomically: a lock or an idempotency key taken once.
   *
   * @example Take a lock once
   * ```ts
   * import { DenoKvStore } from "@core/store/deno-kv";
   * import assert from "node:assert/strict";
   *
   * await using store = await DenoKvStore.open({ path: ":memory:" });
   * assert.equal(await store.setIfAbsent("locks", "job", "a", 30_000), true);
   * assert.equal(await store.setIfAbsent("locks", "job", "b", 30_000), false);
   * assert.equal(await store.get("locks", "job"), "a");
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live, in milliseconds; absent: no expiry.
   * @returns `true` when it wrote.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not positive and finite.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async setIfAbsent(
    group: string,
    key: string,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.setIfAbsent;
    this.#checkKey(op, group, key);
    assertAtomicArgs(op, { value: [value] });
    this.#checkTTL(op, ttlMs);
    this.#checkSize(op, group, key);
    return await this.#write(op, group, key, (c) => {
      if (c.live) return { result: false };
      const expiresAt = ttlMs === undefined
        ? undefined
        : expiryOf(op, c.now, ttlMs);
      return {
        result: true,
        change: { type: "set", group, key, value, expiresAt },
      };
    }, false);
  }

  /**
   * Replaces a value only if the live value equals `expected`
   * (`undefined`: no live entry), atomically.
   *
   * @example Swap only if unchanged
   * ```ts
   * import { DenoKvStore } from "@core/store/deno-kv";
   * import assert from "node:assert/strict";
   *
   * await using store = await DenoKvStore.open({ path: ":memory:" });
   * assert.equal(await store.compareAndSet("g", "k", undefined, "1"), true);
   * assert.equal(await store.compareAndSet("g", "k", "0", "2"), false);
   * assert.equal(await store.compareAndSet("g", "k", "1", "2"), true);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param expected The value it must hold, or `undefined` for none.
   * @param value The new value.
   * @param ttlMs Time to live of the new value; absent: no expiry.
   * @returns `true` when it replaced the value.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not positive and finite.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.compareAndSet;
    this.#checkKey(op, group, key);
    assertAtomicArgs(op, { expected: [expected, true], value: [value] });
    this.#checkTTL(op, ttlMs);
    this.#checkSize(op, group, key);
    return await this.#write(op, group, key, (c) => {
      if (c.value !== expected) return { result: false };
      const expiresAt = ttlMs === undefined
        ? undefined
        : expiryOf(op, c.now, ttlMs);
      return {
        result: true,
        change: { type: "set", group, key, value, expiresAt },
      };
    });
  }

  /**
   * Deletes a key only if its live value equals `expected`, atomically: a
   * lock released only by its holder.
   *
   * @example Release a lock held by "a"
   * ```ts
   * import { DenoKvStore } from "@core/store/deno-kv";
   * import assert from "node:assert/strict";
   *
   * await using store = await DenoKvStore.open({ path: ":memory:" });
   * await store.set("locks", "job", "a");
   * assert.equal(await store.compareAndDelete("locks", "job", "b"), false);
   * assert.equal(await store.compareAndDelete("locks", "job", "a"), true);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @param expected The value it must hold.
   * @returns `true` when it deleted the key.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async compareAndDelete(
    group: string,
    key: string,
    expected: string,
  ): Promise<boolean> {
    const op = ATOMIC_OPS.compareAndDelete;
    this.#checkKey(op, group, key);
    assertAtomicArgs(op, { expected: [expected, false] });
    if (this.#ops.keys.oversize(group, key)) return false;
    return await this.#write(
      op,
      group,
      key,
      (c) =>
        c.value === expected
          ? { result: true, change: { type: "delete", group, key } }
          : { result: false },
    );
  }

  /**
   * Returns the live value and deletes it in the same step, atomically: a
   * one-time token consumed once.
   *
   * @example Consume a token
   * ```ts
   * import { DenoKvStore } from "@core/store/deno-kv";
   * import assert from "node:assert/strict";
   *
   * await using store = await DenoKvStore.open({ path: ":memory:" });
   * await store.setWithTTL("tokens", "t1", "ada", 60_000);
   * assert.equal(await store.getAndDelete("tokens", "t1"), "ada");
   * assert.equal(await store.getAndDelete("tokens", "t1"), undefined);
   * ```
   *
   * @param group The group.
   * @param key The key.
   * @returns The live value, or `undefined`.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async getAndDelete(group: string, key: string): Promise<string | undefined> {
    const op = ATOMIC_OPS.getAndDelete;
    this.#checkKey(op, group, key);
    if (this.#ops.keys.oversize(group, key)) return undefined;
    return await this.#write(op, group, key, (c) => ({
      result: c.value,
      change: c.live
        ? { type: "delete", group, key }
        : c.expired
        ? { type: "expire", group, key }
        : undefined,
    }));
  }

  /**
   * One page of a group in key order.
   *
   * @param group The group.
   * @param options Page size, cursor, key prefix and direction.
   * @returns The page and the cursor of the next one.
   * @throws {TypeError} When an argument or option has the wrong type.
   * @throws {RangeError} When `limit` is not an integer from 1 to 10,000.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async list(group: string, options: ListOptions = {}): Promise<ListPage> {
    const op = "list keys";
    this.#open(op);
    assertText(op, "group", group);
    const page = pager(op, options);
    return page(await this.#map(op, group));
  }

  /**
   * Streams the live entries of the groups starting with `prefix`, in group
   * and key order, as of one moment (read when the stream is first pulled).
   *
   * @param options `prefix`: only groups starting with it.
   * @returns A stream of records.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  exportEntries(
    options: transfer.ExportOptions = {},
  ): ReadableStream<transfer.ExportRecord> {
    const op = "export entries";
    this.#open(op);
    const prefix = options.prefix ?? "";
    assertText(op, "prefix", prefix);
    const now = this.#now(op);
    return recordStream(() => snapshot(this.#ops, op, prefix, now));
  }

  /**
   * Writes records, each keeping its exact `expiresAt`; expired ones are
   * skipped. A batch commits in atomic operations of at most 100 records,
   * so a larger batch is not all-or-nothing.
   *
   * @param source A stream or (async) iterable of records.
   * @param options `batchSize`: records read before writing (default
   * 1,000).
   * @returns How many records were imported and skipped.
   * @throws {TypeError} When `source` is not iterable or an option has the
   * wrong type.
   * @throws {RangeError} When `batchSize` is out of range.
   * @throws {ImportError} When a record is malformed or the source fails.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async importEntries(
    source: transfer.ImportSource,
    options: transfer.ImportOptions = {},
  ): Promise<transfer.ImportResult> {
    this.#open("import entries");
    return await importRecords(
      source,
      options,
      (records) => importBatch(this.#ctx, records),
    );
  }

  /**
   * Writes a standalone SQLite copy of the live entries, which the local
   * store and the Go sibling open.
   *
   * @param path Where to write the copy; must not exist yet.
   * @throws {TypeError} When `path` is not a non-empty string.
   * @throws {StoreError} When `path` exists.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async backup(path: string): Promise<void> {
    const op = "back up store";
    this.#open(op);
    assertFilePath(op, path);
    if (await exists(path)) {
      throw new StoreError(
        `Cannot ${op}: ${path} already exists; a backup never overwrites a file`,
      );
    }
    const now = this.#now(op);
    writeBackup(path, await snapshot(this.#ops, op, "", now), now);
  }

  /**
   * Counts the live keys of the groups starting with `prefix`.
   *
   * @param prefix A literal group prefix; `""` (the default) for all.
   * @returns The number of live keys.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async countAll(prefix = ""): Promise<number> {
    const usage = await this.#usage("count all keys", prefix);
    let n = 0;
    for (const count of usage.values()) n += count;
    return n;
  }

  /**
   * The groups starting with `prefix` that hold a live key.
   *
   * @param prefix A literal group prefix; `""` (the default) for all.
   * @returns Group names in code point order.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async groups(prefix = ""): Promise<string[]> {
    return [...(await this.#usage("list groups", prefix)).keys()];
  }

  async #usage(op: string, prefix: string) {
    this.#open(op);
    assertText(op, "prefix", prefix);
    return await liveUsage(this.#ops, prefix, this.#now(op));
  }

  /**
   * Renders a Go `text/template` over the live entries of a group.
   *
   * @param template The template source.
   * @param group The group.
   * @param options `missingKey`: what a missing key prints; step limits.
   * @returns The rendered text.
   * @throws {TypeError} When `template` or `group` is not a string.
   * @throws {RangeError} When `missingKey` is not one of the three modes.
   * @throws {TemplateError} When the template cannot be parsed or executed.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async render(
    template: string,
    group: string,
    options: RenderOptions = {},
  ): Promise<string> {
    const op = "render template";
    this.#open(op);
    assertText(op, "template", template);
    assertText(op, "group", group);
    const missingKey = checkRender(op, options);
    const tree = parseTemplate(template);
    return executeTemplate(
      tree,
      await this.#map(op, group),
      missingKey,
      options,
    );
  }

  /**
   * Deletes every expired key now (each unless written meanwhile), with
   * `expire` events; then removes leftovers (old entries of deleted groups,
   * unused chunks, values a killed writer staged).
   *
   * @returns How many keys were removed.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async purgeExpired(): Promise<number> {
    const op = "purge expired keys";
    this.#open(op);
    const now = this.#now(op);
    const removed = await purgeExpired(this.#ops, op, now, this.#ctx.delivered);
    await housekeep(this.#ops, now);
    return removed;
  }

  /**
   * Runs `fn` as one all-or-nothing Deno KV atomic operation,
   * optimistically: its writes commit only if no write reached the store
   * since its first read; otherwise `fn` runs again (so it may run more
   * than once and must have no other side effects).
   *
   * @typeParam T What `fn` returns.
   * @param fn The work; receives an {@linkcode AsyncTransaction}.
   * @returns What the committed run of `fn` returned.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {StoreError} Past Deno KV's limits on one atomic operation,
   * after 64 conflicts in a row, or when the transaction is used after `fn`
   * settled.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  async transaction<T>(
    fn: (tx: AsyncTransaction) => T | Promise<T>,
  ): Promise<T> {
    this.#open("run transaction");
    return await runOptimistic(
      fn,
      () => new DenoKvAttempt(this.#ctx),
      (op) => this.#now(op),
    );
  }

  /**
   * Watches one key, a group (`key` `"*"`) or everything (`"*", "*"`),
   * with the writes of every store on the database. With `since`, the
   * watcher follows the change log from after that `seq` on its own.
   *
   * @param group The group, or `"*"`.
   * @param key The key, or `"*"`.
   * @param options `since`: an event's `seq` to resume after; `capacity`
   * and `prefix` as for `Store.prototype.watch`.
   * @returns A registered {@linkcode Watcher}.
   * @throws {TypeError} When `group` or `key` is not a string, or `prefix`
   * not a boolean.
   * @throws {RangeError} When `since` is not a non-negative integer, or
   * `capacity` is out of range.
   * @throws {StoreError} When the log no longer holds the changes after
   * `since`.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  watch(group: string, key: string, options?: WatchOptions): Watcher {
    const op = "watch";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    assertOptions(op, "options", options, WATCH_OPTIONS);
    const { since, capacity, prefix } = readWatchOptions(op, options);
    const after = checkSince(op, since);
    const target = { capacity, prefix: prefix ? group : undefined };
    if (after !== undefined) {
      return this.#feed.resume(after, { group, key, ...target });
    }
    const watcher = this.#hub.watch(group, key, target);
    this.#feed.listen();
    return watcher;
  }

  /**
   * Stops a watcher; idempotent.
   *
   * @param watcher A watcher of this store.
   * @returns A settled promise.
   */
  unwatch(watcher: Watcher): Promise<void> {
    this.#feed.unwatch(watcher);
    return Promise.resolve();
  }

  /**
   * Calls `fn` with every event of the store, from every store on the
   * database, in `seq` order; this store's writes resolve after their
   * events were handed out.
   *
   * @param fn The callback; errors it throws go to `onCallbackError`.
   * @returns A function that unregisters `fn`; idempotent.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  onChange(fn: (event: StoreEvent) => void): () => void {
    this.#open("register change callback");
    const off = this.#hub.onChange(fn);
    this.#feed.listen();
    return off;
  }

  /**
   * Does nothing: the change log is how stores on one database share
   * their events. Kept so that code written for `AsyncStore` runs.
   *
   * @returns A settled promise.
   * @throws {StoreClosedError} After {@linkcode DenoKvStore.prototype.close}.
   */
  disableChangeFeed(): Promise<void> {
    this.#open("disable the change feed");
    return Promise.resolve();
  }

  /**
   * Closes the store: ends every watcher's stream, drops every callback,
   * stops polling and closes the database unless the caller gave it.
   * Calling it again does nothing.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#hub.close();
    await this.#feed.close();
    await this.#chores;
    if (this.#owned) this.#kv.close();
  }

  /** Closes the store at the end of an `await using` block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #chore(): void {
    this.#chores = this.#chores.then(async () => {
      if (!this.#closed) await this.purgeExpired();
    }).catch(() => {});
  }

  #write<T>(
    op: string,
    group: string,
    key: string,
    decide: (current: Current) => Decision<T>,
    needValue = true,
  ): Promise<T> {
    return writeKey(this.#ctx, op, group, key, decide, { needValue });
  }

  #checkKey(op: string, group: string, key: string): void {
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
  }

  #checkWrite(op: string, group: string, key: string, value: string): void {
    this.#checkKey(op, group, key);
    assertText(op, "value", value);
    this.#checkSize(op, group, key);
  }

  // As the local store: a TTL putting the expiry past the safe integers is
  // refused before anything is read.
  #checkTTL(op: string, ttlMs: unknown): void {
    assertAtomicArgs(op, { ttlMs });
    if (ttlMs !== undefined) expiryOf(op, this.#now(op), ttlMs as number);
  }

  #checkSize(op: string, group: string, key: string): void {
    const bytes = this.#ops.keys.oversize(group, key);
    if (bytes > 0) {
      throw new RangeError(
        `Cannot ${op}: group and key take ${bytes} bytes as a Deno KV key; Deno KV keys hold at most 2048`,
      );
    }
  }

  #open(op: string): void {
    if (this.#closed) throw new StoreClosedError(op);
  }

  #now(op: string): number {
    return readClock(op, this.#clock);
  }
}

// Deno 2.9 returns Node-style Timeout objects, whose unrefTimer() works.

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
