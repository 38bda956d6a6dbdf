/**
 * {@linkcode EtcdStore}: the store on an etcd cluster, for services that run
 * on more than one machine. It implements {@linkcode AsyncStore}, so code
 * written against `toAsync(new Store(path))` runs on it unchanged, and
 * `AsyncScopedStore` gives it tenants with quotas that hold across every
 * instance. It speaks etcd's JSON gateway with `fetch`: no dependency.
 *
 * Where it differs from the local store:
 *
 * - an event's `seq` is the etcd revision of its write: strictly increasing
 *   between writes, not contiguous (other writes to the cluster take
 *   revisions too), and shared by the events of one transaction;
 * - `transaction` is optimistic and its `fn` may run more than once; it
 *   takes at most 127 changes, 128 keys read and 1.5 MiB (etcd's limits);
 * - a watcher resuming from `since` has a stream of its own; a `since` that
 *   etcd has compacted away gives `StoreError`.
 * - a write whose answer is lost is sent to another member; each write
 *   carries a marker key (leased, under the prefix) so that it applies at
 *   most once, and when no member can tell in time the call fails with
 *   `StoreUnavailableError` whose `outcome` is `"unknown"`.
 *
 * @example Open and refuse bad options
 * ```ts
 * import { EtcdStore } from "@core/store/etcd";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(EtcdStore.open({ endpoints: [] }), TypeError);
 * ```
 *
 * @module
 */

import type { AsyncStore } from "./async.ts";
import { type AsyncTransaction, runOptimistic } from "./_async_tx.ts";
import { pager } from "./_paging.ts";
import { SCOPE_HOOKS, type ScopeHooks } from "./_async_hooks.ts";
import {
  assertFilePath,
  assertOptions,
  assertText,
  assertTTL,
  readWatchOptions,
} from "./_check.ts";
import { WATCH_OPTIONS } from "./_options.ts";
import { StoreClosedError, StoreError } from "./errors.ts";
import { expiryOf, isExpired, readClock, unrefTimer } from "./_time.ts";
import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import { EventHub } from "./_hub.ts";
import {
  type ListOptions,
  type ListPage,
  type RenderOptions,
  Store,
  type WatchOptions,
} from "./store.ts";
import { executeTemplate, parseTemplate, type Template } from "./template.ts";
import { EtcdAtomic } from "./etcd/_atomic.ts";
import { EtcdClient, type Json } from "./etcd/_client.ts";
import { EventPump } from "./etcd/_events.ts";
import { ExpiryTimer } from "./etcd/_expiry.ts";
import {
  decodeValue,
  KeySpace,
  prefixEnd,
  toBase64,
  utf8,
} from "./etcd/_keys.ts";
import { type Entry, Kv, modEquals, type Put } from "./etcd/_kv.ts";
import { EtcdAttempt, quotaWrite } from "./etcd/_txn.ts";
import { exportStream, importBatch } from "./etcd/_transfer.ts";
import { importRecords } from "./_transfer.ts";
import type * as transfer from "./transfer.ts";
import {
  checkOpen,
  checkRender,
  checkSince,
  type EtcdStoreOptions,
} from "./etcd/_options.ts";

export type { EtcdStoreOptions };

// The types this entry's API names, for callers that import only it.
export type {
  AsyncStore,
  AsyncTransaction,
  EventType,
  ExportOptions,
  ExportRecord,
  GroupSnapshot,
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

const TEMPLATE_CACHE_SIZE = 256;

/**
 * The store on an etcd cluster. Open it with {@linkcode EtcdStore.open};
 * every method is that of {@linkcode AsyncStore}.
 *
 * @example Use a cluster
 * ```ts ignore
 * import { EtcdStore } from "@core/store/etcd";
 * import assert from "node:assert/strict";
 *
 * await using store = await EtcdStore.open({
 *   endpoints: ["http://127.0.0.1:2379"],
 * });
 * await store.set("config", "theme", "dark");
 * assert.equal(await store.get("config", "theme"), "dark");
 * ```
 */
export class EtcdStore implements AsyncStore {
  #client: EtcdClient;
  #kv: Kv;
  #hub: EventHub;
  #pump: EventPump;
  #clock: () => number;
  #closed = false;
  #atomic: EtcdAtomic;
  #timer: ReturnType<typeof setInterval> | undefined;
  #templates = new Map<string, Template>();

  private constructor(options: Required<EtcdStoreOptions>) {
    this.#clock = options.clock;
    this.#client = new EtcdClient({
      endpoints: options.endpoints,
      timeoutMs: options.requestTimeoutMs,
      username: options.username || undefined,
      password: options.password,
    });
    const keys = new KeySpace(options.prefix);
    this.#hub = new EventHub({ onCallbackError: options.onCallbackError });
    this.#pump = new EventPump(this.#client, keys, this.#hub, options.clock);
    this.#kv = new Kv(this.#client, keys, this.#pump);
    this.#atomic = new EtcdAtomic({
      kv: this.#kv,
      open: (op) => this.#open(op),
      now: (op) => this.#now(op),
    });
    this.#pump.expiry = new ExpiryTimer(
      options.clock,
      (group, key) => keys.key(group, key),
      (entries) => this.#kv.purge("purge expired keys", entries),
    );
    if (options.purgeIntervalMs > 0) {
      this.#timer = setInterval(() => {
        this.purgeExpired().catch(() => {});
      }, options.purgeIntervalMs);
      unrefTimer(this.#timer);
    }
  }

  /**
   * Connects to a cluster: checks the options, reaches a member and learns
   * the current revision.
   *
   * @example Two instances of a service on one cluster
   * ```ts ignore
   * import { EtcdStore } from "@core/store/etcd";
   * import assert from "node:assert/strict";
   *
   * const endpoints = ["http://127.0.0.1:2379"];
   * await using a = await EtcdStore.open({ endpoints, prefix: "app/" });
   * await using b = await EtcdStore.open({ endpoints, prefix: "app/" });
   * const heard = new Promise((resolve) => b.onChange(resolve));
   * await a.set("config", "theme", "dark");
   * assert.equal(((await heard) as { origin: string }).origin, "remote");
   * assert.equal(await b.get("config", "theme"), "dark");
   * ```
   *
   * @param options Endpoints, prefix, clock, timeouts and credentials.
   * @returns The open store.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When a numeric option is out of range.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(checkOpen(options));
    try {
      // A clock that cannot tell the time is refused now, not on a timer.
      store.#now("open store");
      const root = store.#kv.keys.root;
      const result = await store.#client.range("open store", root, {
        end: prefixEnd(root),
        countOnly: true,
      });
      store.#client.seen(result.revision);
      await store.#pump.probeCompaction();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** @ignore What `AsyncScopedStore` needs; not public API. */
  get [SCOPE_HOOKS](): ScopeHooks {
    return {
      quotaWrite: (op, namespace, quota, group, key, value, ttlMs) => {
        this.#open(op);
        return quotaWrite(this.#kv, (o) => this.#now(o), {
          op,
          namespace,
          quota,
          group,
          key,
          value,
          ttlMs,
        });
      },
      open: (op) => this.#open(op),
      onNamespaceChange: (op, namespace, fn) => {
        this.#open(op);
        const off = this.#hub.onChange(fn, { namespace });
        this.#pump.listen(this.#client.revision);
        return off;
      },
    };
  }

  /**
   * The value of a live key, as `Store.prototype.get`; an expired key
   * found is deleted, with an `expire` event.
   *
   * @param group The group.
   * @param key The key.
   * @returns The value, or `undefined` when the key is missing or expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async get(group: string, key: string): Promise<string | undefined> {
    const op = "get value";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const { entry } = await this.#kv.read(op, group, key);
    if (entry === undefined) return undefined;
    if (!this.#expired(op, entry)) return entry.stored.value;
    await this.#kv.purge(op, [entry]);
    return undefined;
  }

  /**
   * Stores a value with no expiry, as `Store.prototype.set`; the key's
   * lease, if any, is dropped.
   *
   * @param group The group.
   * @param key The key.
   * @param value The value; any string.
   * @throws {TypeError} When an argument is not a string or holds a lone
   * surrogate; nothing is written.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async set(group: string, key: string, value: string): Promise<void> {
    const op = "set value";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    assertText(op, "value", value);
    await this.#put(op, { group, key, value });
  }

  /**
   * Stores a value that expires `ttlMs` from now by the store's clock, as
   * `Store.prototype.setWithTTL`. The deadline is stored with the value;
   * a lease that outlives it removes the key from etcd later.
   *
   * @param group The group.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Time to live in milliseconds, positive and finite.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async setWithTTL(
    group: string,
    key: string,
    value: string,
    ttlMs: number,
  ): Promise<void> {
    const op = "set value with TTL";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    assertText(op, "value", value);
    assertTTL(op, ttlMs);
    const expiresAt = expiryOf(op, this.#now(op), ttlMs);
    await this.#put(op, { group, key, value, expiresAt, ttlMs });
  }

  async #put(
    op: string,
    entry: Put,
    compare: Json[] = [],
  ): Promise<boolean> {
    return (await this.#kv.put(op, entry, compare)).succeeded;
  }

  /**
   * Deletes a key, as `Store.prototype.delete`.
   *
   * @param group The group.
   * @param key The key.
   * @returns `true` when a live key was removed (an expired one removed is
   * reported as an `expire` event).
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async delete(group: string, key: string): Promise<boolean> {
    const op = "delete key";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const { prev } = await this.#kv.take(op, this.#kv.keys.key(group, key));
    if (prev === undefined) return false;
    return !isExpired(decodeValue(prev)?.expiresAt, this.#now(op));
  }

  /**
   * Deletes every key of a group in one etcd revision, reported as one
   * `delete_group` event, as `Store.prototype.deleteGroup`.
   *
   * @param group The group.
   * @returns How many keys were removed, expired ones included.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async deleteGroup(group: string): Promise<number> {
    const op = "delete group";
    this.#open(op);
    assertText(op, "group", group);
    const keys = this.#kv.keys;
    const start = keys.groupStart(group);
    const { responses, revision } = await this.#kv.write(op, {
      compare: [],
      success: [
        {
          request_delete_range: {
            key: toBase64(start),
            range_end: toBase64(prefixEnd(start)),
          },
        },
        {
          request_put: {
            key: toBase64(keys.groupMarker),
            value: toBase64(utf8(JSON.stringify([group]))),
          },
        },
      ],
    });
    if (responses !== undefined) {
      return Number(responses[0]?.response_delete_range?.deleted ?? 0);
    }
    const before = await this.#client.range(op, start, {
      end: prefixEnd(start),
      revision: revision - 1,
      countOnly: true,
    });
    return before.count;
  }

  /**
   * Tells whether a key is live, as `Store.prototype.exists`.
   *
   * @param group The group.
   * @param key The key.
   * @returns `true` when the key is present and not expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async exists(group: string, key: string): Promise<boolean> {
    return await this.#ttl("check key", group, key) !== undefined;
  }

  /**
   * How long a key has left to live, as `Store.prototype.ttl`.
   *
   * @param group The group.
   * @param key The key.
   * @returns Milliseconds left; `Infinity` without expiry; `undefined` when
   * missing or expired.
   * @throws {TypeError} When `group` or `key` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async ttl(group: string, key: string): Promise<number | undefined> {
    return await this.#ttl("read TTL", group, key);
  }

  async #ttl(op: string, group: string, key: string) {
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const now = this.#now(op);
    const { entry } = await this.#kv.read(op, group, key);
    if (entry === undefined) return undefined;
    const at = entry.stored.expiresAt;
    if (at === undefined) return Infinity;
    return at > now ? at - now : undefined;
  }

  /**
   * Counts the live keys of a group, as `Store.prototype.count`.
   *
   * @param group The group.
   * @returns The number of live keys.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async count(group: string): Promise<number> {
    const op = "count keys";
    this.#open(op);
    assertText(op, "group", group);
    return (await this.#live(op, group)).length;
  }

  /**
   * Every live entry of a group, as `Store.prototype.getAll`.
   *
   * @param group The group.
   * @returns A new map, in code point order of the keys.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async getAll(group: string): Promise<Map<string, string>> {
    const op = "get all values";
    this.#open(op);
    assertText(op, "group", group);
    return this.#map(await this.#live(op, group));
  }

  /**
   * A group's live entries and the etcd revision they were read at, as
   * `Store.prototype.snapshot`: a watch `since` that revision continues
   * exactly after them.
   *
   * @param group The group.
   * @returns The entries in key order, and the revision.
   * @throws {TypeError} When `group` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreError} When no member answers within `requestTimeoutMs`.
   */
  async snapshot(group: string): Promise<GroupSnapshot> {
    const op = "read a snapshot";
    this.#open(op);
    assertText(op, "group", group);
    const now = this.#now(op);
    const { entries, revision } = await this.#kv.scanGroup(op, group);
    const live = entries.filter((e) => !this.#expiredAt(e, now));
    return { entries: this.#map(live), position: revision };
  }

  #map(entries: Entry[]): Map<string, string> {
    return new Map(entries.map((e) => [e.key, e.stored.value]));
  }

  async #live(op: string, group: string): Promise<Entry[]> {
    const now = this.#now(op);
    const { entries } = await this.#kv.scanGroup(op, group);
    return entries.filter((e) => !this.#expiredAt(e, now));
  }

  /**
   * Sets or clears the expiry of a live key, as `Store.prototype.expire`;
   * a compare-and-swap, so a concurrent write is never overwritten.
   *
   * @param group The group.
   * @param key The key.
   * @param ttlMs Milliseconds from now, or `null` to remove the expiry.
   * @returns `true` when the key was live and its expiry changed.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not a positive finite number.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async expire(
    group: string,
    key: string,
    ttlMs: number | null,
  ): Promise<boolean> {
    const op = "set expiry";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    if (ttlMs !== null) assertTTL(op, ttlMs);
    for (let attempt = 0; attempt < 64; attempt++) {
      const now = this.#now(op);
      const expiresAt = ttlMs === null ? undefined : expiryOf(op, now, ttlMs);
      const { entry } = await this.#kv.read(op, group, key);
      if (entry === undefined || this.#expiredAt(entry, now)) return false;
      const compare = [modEquals(entry.bytes, entry.modRevision)];
      const value = entry.stored.value;
      const put = { group, key, value, expiresAt, ttlMs: ttlMs ?? undefined };
      if (await this.#put(op, put, compare)) {
        return true;
      }
    }
    throw new StoreError(`Cannot ${op}: the key kept changing`);
  }

  /**
   * One page of a group in key order, as `Store.prototype.list`.
   *
   * @param group The group.
   * @param options Page size, cursor, key prefix and direction.
   * @returns The page and the cursor of the next one.
   * @throws {TypeError} When an argument or option has the wrong type.
   * @throws {RangeError} When `limit` is not an integer from 1 to 10,000.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async list(group: string, options: ListOptions = {}): Promise<ListPage> {
    const op = "list keys";
    this.#open(op);
    assertText(op, "group", group);
    const page = pager(op, options);
    return page(this.#map(await this.#live(op, group)));
  }

  /**
   * Streams the live entries of the groups starting with `prefix`, in group
   * and key order, all read at one etcd revision (one snapshot), page by
   * page, as `Store.prototype.exportEntries`.
   *
   * @param options `prefix`: only groups starting with it.
   * @returns A stream of records; it errors with `StoreError` when etcd
   * fails while it is read (or when the revision was compacted meanwhile).
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   */
  exportEntries(
    options: transfer.ExportOptions = {},
  ): ReadableStream<transfer.ExportRecord> {
    const op = "export entries";
    this.#open(op);
    return exportStream(this.#kv, () => this.#now(op), options.prefix ?? "");
  }

  /**
   * Writes records, as `Store.prototype.importEntries`: each record keeps
   * its exact `expiresAt`, an expired one is skipped. A batch commits in
   * etcd transactions of at most 127 records, so a batch larger than that
   * is not all-or-nothing.
   *
   * @param source A stream or (async) iterable of records.
   * @param options `batchSize`: records read before writing (default
   * 1,000).
   * @returns How many records were imported and skipped.
   * @throws {TypeError} When `source` is not iterable or an option has the
   * wrong type.
   * @throws {RangeError} When `batchSize` is out of range.
   * @throws {ImportError} When a record is malformed or the source fails.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async importEntries(
    source: transfer.ImportSource,
    options: transfer.ImportOptions = {},
  ): Promise<transfer.ImportResult> {
    const op = "import entries";
    this.#open(op);
    return await importRecords(
      source,
      options,
      (records) => importBatch(this.#kv, this.#now(op), records),
    );
  }

  /**
   * Writes a standalone SQLite copy of the store's live entries, which the
   * local store and the Go sibling can open.
   *
   * @param path Where to write the copy; must not exist yet.
   * @throws {TypeError} When `path` is not a non-empty string.
   * @throws {StoreError} When `path` exists or etcd fails.
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
    const { entries } = await this.#kv.scanGroups(op, "");
    using copy = new Store(path, { clock: () => now, purgeIntervalMs: 0 });
    copy.transaction((tx) => {
      for (const e of entries) {
        const at = e.stored.expiresAt;
        if (at === undefined) tx.set(e.group, e.key, e.stored.value);
        else if (at > now) {
          tx.setWithTTL(e.group, e.key, e.stored.value, at - now);
        }
      }
    });
  }

  /**
   * Counts the live keys of the groups starting with `prefix`, as
   * `Store.prototype.countAll`.
   *
   * @param prefix A literal group prefix; `""` (the default) for all.
   * @returns The number of live keys.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async countAll(prefix = ""): Promise<number> {
    const op = "count all keys";
    this.#open(op);
    assertText(op, "prefix", prefix);
    const now = this.#now(op);
    const { entries } = await this.#kv.scanGroups(op, prefix);
    return entries.filter((e) => !this.#expiredAt(e, now)).length;
  }

  /**
   * The groups starting with `prefix` that hold a live key, as
   * `Store.prototype.groups`.
   *
   * @param prefix A literal group prefix; `""` (the default) for all.
   * @returns Group names in code point order.
   * @throws {TypeError} When `prefix` is not a string.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async groups(prefix = ""): Promise<string[]> {
    const op = "list groups";
    this.#open(op);
    assertText(op, "prefix", prefix);
    const now = this.#now(op);
    const { entries } = await this.#kv.scanGroups(op, prefix);
    const groups: string[] = [];
    for (const e of entries) {
      if (!this.#expiredAt(e, now) && groups.at(-1) !== e.group) {
        groups.push(e.group);
      }
    }
    return groups;
  }

  /**
   * Renders a Go `text/template` over the live entries of a group, as
   * `Store.prototype.render`.
   *
   * @param template The template source.
   * @param group The group.
   * @param options `missingKey`: what a missing key prints.
   * @returns The rendered text.
   * @throws {TypeError} When `template` or `group` is not a string.
   * @throws {RangeError} When `missingKey` is not one of the three modes.
   * @throws {TemplateError} When the template cannot be parsed or executed.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
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
    const tree = this.#template(template);
    const data = this.#map(await this.#live(op, group));
    return executeTemplate(tree, data, missingKey, options);
  }

  #template(source: string): Template {
    let tree = this.#templates.get(source);
    if (tree !== undefined) this.#templates.delete(source);
    else {
      tree = parseTemplate(source);
      if (this.#templates.size >= TEMPLATE_CACHE_SIZE) {
        this.#templates.delete(this.#templates.keys().next().value as string);
      }
    }
    this.#templates.set(source, tree);
    return tree;
  }

  /**
   * Deletes every expired key now (each unless written meanwhile), with
   * `expire` events, as `Store.prototype.purgeExpired`.
   *
   * @returns How many keys were removed.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async purgeExpired(): Promise<number> {
    const op = "purge expired keys";
    this.#open(op);
    const now = this.#now(op);
    const { entries } = await this.#kv.scanGroups(op, "");
    return await this.#kv.purge(
      op,
      entries.filter((e) => this.#expiredAt(e, now)),
    );
  }

  /**
   * Runs `fn` as one all-or-nothing etcd transaction, optimistically: its
   * reads are recorded and its writes commit only if none of them changed
   * meanwhile; otherwise `fn` runs again, so it may run more than once and
   * must have no other side effects. At most 127 changes, 128 keys read and
   * 1.5 MiB.
   *
   * @typeParam T What `fn` returns.
   * @param fn The work; receives an {@linkcode AsyncTransaction}.
   * @returns What the committed run of `fn` returned.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {StoreError} Past etcd's limits, after 64 conflicts in a row,
   * or when the transaction is used after `fn` settled.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` says whether a write may have been applied.
   */
  async transaction<T>(
    fn: (tx: AsyncTransaction) => T | Promise<T>,
  ): Promise<T> {
    this.#open("run transaction");
    const now = () => this.#now("run transaction");
    return await runOptimistic(fn, () => new EtcdAttempt(this.#kv, now), now);
  }

  /**
   * As `Store.prototype.increment`: adds `delta` to the decimal counter at
   * `group`/`key` (missing or expired counts as `0`); `ttlMs` applies only
   * when the increment creates the entry. One compare-and-swap `txn` on the
   * key's revision when uncontended (a read first when this instance has
   * not seen the key lately), retried on conflict.
   *
   * @param group The group.
   * @param key The key.
   * @param delta A safe integer. Default `1`.
   * @param ttlMs The time to live of a new entry, in milliseconds.
   * @returns The new value.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `delta` is not a safe integer or `ttlMs` not
   * positive.
   * @throws {StoreError} When the stored value is not a decimal safe
   * integer, or the result would leave the safe range; or after 256
   * conflicts in a row.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` is `"unknown"` when the write may have
   * been applied, and it is not sent again.
   */
  increment(
    group: string,
    key: string,
    delta = 1,
    ttlMs?: number,
  ): Promise<number> {
    return this.#atomic.increment(group, key, delta, ttlMs);
  }

  /**
   * As `Store.prototype.setIfAbsent`: writes only when no live entry exists.
   *
   * @param group The group.
   * @param key The key.
   * @param value The value.
   * @param ttlMs Its time to live, in milliseconds.
   * @returns Whether it wrote.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not positive.
   * @throws {StoreError} After 256 conflicts in a row.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` is `"unknown"` when the write may have
   * been applied, and it is not sent again.
   */
  setIfAbsent(
    group: string,
    key: string,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    return this.#atomic.setIfAbsent(group, key, value, ttlMs);
  }

  /**
   * As `Store.prototype.compareAndSet`: replaces the live value only when it
   * equals `expected` (`undefined`: no live entry).
   *
   * @param group The group.
   * @param key The key.
   * @param expected The value it must hold, or `undefined` for none.
   * @param value The new value.
   * @param ttlMs Its time to live, in milliseconds; absent: no expiry.
   * @returns Whether it wrote.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `ttlMs` is not positive.
   * @throws {StoreError} After 256 conflicts in a row.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` is `"unknown"` when the write may have
   * been applied, and it is not sent again.
   */
  compareAndSet(
    group: string,
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs?: number,
  ): Promise<boolean> {
    return this.#atomic.compareAndSet(group, key, expected, value, ttlMs);
  }

  /**
   * As `Store.prototype.compareAndDelete`: deletes the live entry only when
   * it holds `expected`.
   *
   * @param group The group.
   * @param key The key.
   * @param expected The value it must hold.
   * @returns Whether it deleted.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {StoreError} After 256 conflicts in a row.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` is `"unknown"` when the write may have
   * been applied, and it is not sent again.
   */
  compareAndDelete(
    group: string,
    key: string,
    expected: string,
  ): Promise<boolean> {
    return this.#atomic.compareAndDelete(group, key, expected);
  }

  /**
   * As `Store.prototype.getAndDelete`: the live value, deleted in the same
   * step.
   *
   * @param group The group.
   * @param key The key.
   * @returns The value, or `undefined` when there was none.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   * @throws {StoreUnavailableError} When no member answers within
   * `requestTimeoutMs`; its `outcome` is `"unknown"` when the write may have
   * been applied, and it is not sent again.
   */
  getAndDelete(group: string, key: string): Promise<string | undefined> {
    return this.#atomic.getAndDelete(group, key);
  }

  /**
   * Watches the events of one key, a group (`key` `"*"`) or everything
   * (`"*", "*"`), as `Store.prototype.watch`. With `since`, the watcher has
   * an etcd watch of its own that replays every change after that revision,
   * then continues live.
   *
   * @param group The group, or `"*"`.
   * @param key The key, or `"*"`.
   * @param options `since`: an event's `seq` (an etcd revision) to resume
   * after; `capacity` and `prefix` as for `Store.prototype.watch`.
   * @returns A registered {@linkcode Watcher}.
   * @throws {TypeError} When `group` or `key` is not a string, or `prefix`
   * not a boolean.
   * @throws {RangeError} When `since` is not a non-negative integer, or
   * `capacity` is out of range.
   * @throws {StoreError} When etcd has compacted the revisions after `since`.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
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
    if (after === undefined) {
      const watcher = this.#hub.watch(group, key, target);
      this.#pump.listen(this.#client.revision);
      return watcher;
    }
    if (after < this.#pump.compacted) {
      throw new StoreError(
        `Cannot ${op}: etcd compacted the history up to revision ${
          this.#pump.compacted + 1
        }; cannot resume after ${after}`,
      );
    }
    return this.#pump.resume(group, key, after, target);
  }

  /**
   * Stops a watcher, as `Store.prototype.unwatch`; idempotent.
   *
   * @param watcher A watcher of this store.
   * @returns A settled promise.
   */
  unwatch(watcher: Watcher): Promise<void> {
    this.#pump.unwatch(watcher);
    return Promise.resolve();
  }

  /**
   * Calls `fn` with every event of the store, from every instance, in
   * revision order, as `Store.prototype.onChange`; this instance's writes
   * resolve after their events were handed out.
   *
   * @param fn The callback; errors it throws go to `onCallbackError`.
   * @returns A function that unregisters `fn`; idempotent.
   * @throws {TypeError} When `fn` is not a function.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   */
  onChange(fn: (event: StoreEvent) => void): () => void {
    this.#open("register change callback");
    const off = this.#hub.onChange(fn);
    this.#pump.listen(this.#client.revision);
    return off;
  }

  /**
   * Does nothing: etcd keeps the history `since` resumes from itself, and
   * compacts it by its own settings. Kept so that code written for
   * `AsyncStore` runs unchanged.
   *
   * @returns A settled promise.
   * @throws {StoreClosedError} After {@linkcode EtcdStore.prototype.close}.
   */
  disableChangeFeed(): Promise<void> {
    this.#open("disable the change feed");
    return Promise.resolve();
  }

  /**
   * Closes the store: ends every watcher's stream, drops every callback,
   * stops the etcd streams and aborts the requests in flight. Calling it
   * again does nothing.
   *
   * @returns A settled promise.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#timer);
    this.#pump.close();
    this.#hub.close();
    this.#client.close();
    return Promise.resolve();
  }

  /**
   * Closes the store at the end of an `await using` block.
   *
   * @returns A settled promise.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #open(op: string): void {
    if (this.#closed) throw new StoreClosedError(op);
  }

  #now(op: string): number {
    return readClock(op, this.#clock);
  }

  #expired(op: string, entry: Entry): boolean {
    return this.#expiredAt(entry, this.#now(op));
  }

  #expiredAt(entry: Entry, now: number): boolean {
    return isExpired(entry.stored.expiresAt, now);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
