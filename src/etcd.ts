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
 *   takes at most 128 changes, 128 keys read and 1.5 MiB (etcd's limits);
 * - a watcher resuming from `since` has a stream of its own; a `since` that
 *   etcd has compacted away gives `StoreError`.
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
import {
  type AsyncTransaction,
  compareText,
  expiryOf,
  runOptimistic,
} from "./_async_tx.ts";
import { SCOPE_HOOKS, type ScopeHooks } from "./_async_hooks.ts";
import { assertText, assertTTL, describe } from "./codec.ts";
import { StoreClosedError, StoreError } from "./errors.ts";
import { EventHub, type StoreEvent, type Watcher } from "./events.ts";
import type {
  ListOptions,
  ListPage,
  RenderOptions,
  WatchOptions,
} from "./store.ts";
import { Store } from "./store.ts";
import { executeTemplate, parseTemplate, type Template } from "./template.ts";
import { EtcdClient } from "./etcd/_client.ts";
import { EventPump } from "./etcd/_events.ts";
import {
  decodeValue,
  fromBase64,
  KeySpace,
  prefixEnd,
  toBase64,
  utf8,
} from "./etcd/_keys.ts";
import { type Entry, Kv, modEquals } from "./etcd/_kv.ts";
import { EtcdAttempt, quotaWrite } from "./etcd/_txn.ts";
import {
  checkList,
  checkOpen,
  checkRender,
  checkSince,
} from "./etcd/_options.ts";

export type { AsyncStore, AsyncTransaction } from "./async.ts";
export type { EventType, StoreEvent, Watcher } from "./events.ts";
export type {
  ListOptions,
  ListPage,
  RenderOptions,
  WatchOptions,
} from "./store.ts";

/** Options for {@linkcode EtcdStore.open}. */
export interface EtcdStoreOptions {
  /** Client URLs of the cluster's members, such as `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Keeps this store's keys apart in the cluster. Default `"store/"`. */
  prefix?: string;
  /** The time in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /**
   * How often expired keys are purged (with `expire` events), in
   * milliseconds; `0` turns it off. Leases remove expired keys anyway.
   * Default `60_000`.
   */
  purgeIntervalMs?: number;
  /** How long one call may take, failover included. Default `5_000`. */
  requestTimeoutMs?: number;
  /** A user, when the cluster has authentication on. */
  username?: string;
  /** The user's password. */
  password?: string;
  /** Receives an error thrown by a change callback, with its event. */
  onCallbackError?: (error: unknown, event: StoreEvent) => void;
}

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
   * @param options Endpoints, prefix, clock, timeouts and credentials.
   * @returns The open store.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When a numeric option is out of range.
   * @throws {StoreError} When no member answers within `requestTimeoutMs`.
   */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(checkOpen(options));
    try {
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
      watchNamespace: (op, namespace, key) => {
        this.#open(op);
        assertText(op, "key", key);
        const watcher = this.#hub.watch(`${namespace}:*`, key, { namespace });
        this.#pump.listen(this.#client.revision);
        return watcher;
      },
      onNamespaceChange: (op, namespace, fn) => {
        this.#open(op);
        const off = this.#hub.onChange(fn, { namespace });
        this.#pump.listen(this.#client.revision);
        return off;
      },
    };
  }

  /** As `Store.prototype.get`. @param group The group. @param key The key. @returns The live value. */
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

  /** As `Store.prototype.set`. @param group The group. @param key The key. @param value The value. */
  async set(group: string, key: string, value: string): Promise<void> {
    const op = "set value";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    assertText(op, "value", value);
    await this.#put(op, group, key, value, undefined, undefined);
  }

  /** As `Store.prototype.setWithTTL`. @param group The group. @param key The key. @param value The value. @param ttlMs The time to live. */
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
    await this.#put(op, group, key, value, expiresAt, ttlMs);
  }

  async #put(
    op: string,
    group: string,
    key: string,
    value: string,
    expiresAt: number | undefined,
    ttlMs: number | undefined,
    compare: unknown[] = [],
  ): Promise<boolean> {
    for (let attempt = 0;; attempt++) {
      const put = await this.#kv.putRequest(
        op,
        group,
        key,
        value,
        expiresAt,
        ttlMs,
      );
      try {
        const { succeeded } = await this.#kv.write(
          op,
          { compare, success: [{ request_put: put.request }] },
          put,
        );
        return succeeded;
      } catch (error) {
        // A lease etcd let go early (clocks differ): take a fresh one.
        if (attempt > 0 || !/lease expired/.test(String(error))) throw error;
        this.#kv.forgetLeases();
      }
    }
  }

  /** As `Store.prototype.delete`. @param group The group. @param key The key. @returns Whether a live key went. */
  async delete(group: string, key: string): Promise<boolean> {
    const op = "delete key";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const k = this.#kv.keys.key(group, key);
    const { responses } = await this.#kv.write(op, {
      compare: [],
      success: [{ request_delete_range: { key: toBase64(k), prev_kv: true } }],
    });
    const answer = responses[0]?.response_delete_range;
    if (Number(answer?.deleted ?? 0) === 0) return false;
    const prev = answer.prev_kvs?.[0];
    const stored = decodeValue(fromBase64(prev?.value));
    const at = stored?.expiresAt;
    return at === undefined || at > this.#now(op);
  }

  /** As `Store.prototype.deleteGroup`: one `delete_group` event. @param group The group. @returns How many keys went. */
  async deleteGroup(group: string): Promise<number> {
    const op = "delete group";
    this.#open(op);
    assertText(op, "group", group);
    const keys = this.#kv.keys;
    const start = keys.groupStart(group);
    const { responses } = await this.#kv.write(op, {
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
    return Number(responses[0]?.response_delete_range?.deleted ?? 0);
  }

  /** As `Store.prototype.exists`. @param group The group. @param key The key. @returns Whether the key is live. */
  async exists(group: string, key: string): Promise<boolean> {
    return await this.#ttl("check key", group, key) !== undefined;
  }

  /** As `Store.prototype.ttl`. @param group The group. @param key The key. @returns Milliseconds left. */
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

  /** As `Store.prototype.count`. @param group The group. @returns Live keys. */
  async count(group: string): Promise<number> {
    const op = "count keys";
    this.#open(op);
    assertText(op, "group", group);
    return (await this.#live(op, group)).length;
  }

  /** As `Store.prototype.getAll`. @param group The group. @returns Live entries in key order. */
  async getAll(group: string): Promise<Map<string, string>> {
    const op = "get all values";
    this.#open(op);
    assertText(op, "group", group);
    return this.#map(await this.#live(op, group));
  }

  #map(entries: Entry[]): Map<string, string> {
    return new Map(entries.map((e) => [e.key, e.stored.value]));
  }

  async #live(op: string, group: string): Promise<Entry[]> {
    const now = this.#now(op);
    const { entries } = await this.#kv.scanGroup(op, group);
    return entries.filter((e) => !this.#expiredAt(e, now));
  }

  /** As `Store.prototype.expire`. @param group The group. @param key The key. @param ttlMs New TTL or `null`. @returns Whether the key was live. */
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
      const ttl = ttlMs ?? undefined;
      if (await this.#put(op, group, key, value, expiresAt, ttl, compare)) {
        return true;
      }
    }
    throw new StoreError(`Cannot ${op}: the key kept changing`);
  }

  /** As `Store.prototype.list`. @param group The group. @param options Paging. @returns One page. */
  async list(group: string, options: ListOptions = {}): Promise<ListPage> {
    const op = "list keys";
    this.#open(op);
    assertText(op, "group", group);
    const { limit, cursor, prefix, reverse } = checkList(op, options);
    let entries = [...this.#map(await this.#live(op, group))]
      .filter(([key]) => key.startsWith(prefix));
    if (reverse) entries.reverse();
    if (cursor !== undefined) {
      entries = entries.filter(([key]) =>
        reverse ? compareText(key, cursor) < 0 : compareText(key, cursor) > 0
      );
    }
    const page = entries.slice(0, limit);
    return {
      entries: page,
      cursor: entries.length > limit ? page.at(-1)?.[0] : undefined,
    };
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
    assertText(op, "path", path);
    if (path === "" || path === ":memory:") {
      throw new TypeError(
        `Cannot ${op}: path must be a file path, received ${
          JSON.stringify(path)
        }`,
      );
    }
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

  /** As `Store.prototype.countAll`. @param prefix A group prefix. @returns Live keys. */
  async countAll(prefix = ""): Promise<number> {
    const op = "count all keys";
    this.#open(op);
    assertText(op, "prefix", prefix);
    const now = this.#now(op);
    const { entries } = await this.#kv.scanGroups(op, prefix);
    return entries.filter((e) => !this.#expiredAt(e, now)).length;
  }

  /** As `Store.prototype.groups`. @param prefix A group prefix. @returns Groups with a live key. */
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

  /** As `Store.prototype.render`. @param template The template. @param group The group. @param options `missingKey`. @returns The text. */
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
    return executeTemplate(tree, data, missingKey);
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

  /** As `Store.prototype.purgeExpired`. @returns How many keys went. */
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

  /** As `AsyncStore.transaction`: optimistic, `fn` may run more than once. @param fn The work. @returns What `fn` returned. */
  async transaction<T>(
    fn: (tx: AsyncTransaction) => T | Promise<T>,
  ): Promise<T> {
    this.#open("run transaction");
    const now = () => this.#now("run transaction");
    return await runOptimistic(fn, () => new EtcdAttempt(this.#kv, now), now);
  }

  /** As `Store.prototype.watch`; `since` resumes after an etcd revision. @param group The group or `"*"`. @param key The key or `"*"`. @param options `since`. @returns The watcher. */
  watch(group: string, key: string, options: WatchOptions = {}): Watcher {
    const op = "watch";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const since = checkSince(op, options.since);
    if (since === undefined) {
      const watcher = this.#hub.watch(group, key);
      this.#pump.listen(this.#client.revision);
      return watcher;
    }
    if (since < this.#pump.compacted) {
      throw new StoreError(
        `Cannot ${op}: etcd compacted the history up to revision ${
          this.#pump.compacted + 1
        }; cannot resume after ${since}`,
      );
    }
    return this.#pump.resume(group, key, since);
  }

  /** As `Store.prototype.unwatch`. @param watcher The watcher. */
  unwatch(watcher: Watcher): Promise<void> {
    this.#pump.unwatch(watcher);
    return Promise.resolve();
  }

  /** As `Store.prototype.onChange`. @param fn The callback. @returns Its unsubscriber. */
  onChange(fn: (event: StoreEvent) => void): () => void {
    this.#open("register change callback");
    const off = this.#hub.onChange(fn);
    this.#pump.listen(this.#client.revision);
    return off;
  }

  /** Closes the store: ends the watchers, drops callbacks, stops the streams. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#timer);
    this.#pump.close();
    this.#hub.close();
    this.#client.close();
    return Promise.resolve();
  }

  /** Closes the store at the end of an `await using` block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #open(op: string): void {
    if (this.#closed) throw new StoreClosedError(op);
  }

  #now(op: string): number {
    const now = this.#clock();
    if (typeof now !== "number" || !Number.isFinite(now)) {
      throw new RangeError(
        `Cannot ${op}: clock() must return a finite number of milliseconds, received ${
          typeof now === "number" ? now : describe(now)
        }`,
      );
    }
    return now;
  }

  #expired(op: string, entry: Entry): boolean {
    return this.#expiredAt(entry, this.#now(op));
  }

  #expiredAt(entry: Entry, now: number): boolean {
    const at = entry.stored.expiresAt;
    return at !== undefined && at <= now;
  }
}

// Deno 2.9 returns Node-style Timeout objects, whose unref() works, while
// Deno.unrefTimer() only knows the numeric ids of older releases.
function unrefTimer(timer: ReturnType<typeof setInterval>): void {
  if (typeof timer === "number") Deno.unrefTimer(timer);
  else (timer as { unref(): void }).unref();
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
