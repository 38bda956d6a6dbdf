/**
 * The {@linkcode Store}: one SQLite connection, its lifecycle, reads and
 * writes of grouped string values with optional expiry, and the events they
 * emit.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import {
  assertText,
  assertTTL,
  decodeText,
  describe,
  isWhole,
  textColumn,
} from "./codec.ts";
import { StoreClosedError, StoreError } from "./errors.ts";
import { EventHub, type StoreEvent, type Watcher } from "./events.ts";
import { ChangeFeed, type ChangeRetention } from "./feed.ts";
import {
  createTables,
  enableChangeFeed,
  isBusy,
  MEMORY_PATH,
  openDatabase,
  prepareRows,
  retryBusy,
  type Row,
  type RowStatement,
} from "./schema.ts";
import {
  executeTemplate,
  parseTemplate,
  type Template,
  TemplateCache,
} from "./template.ts";

/**
 * Options for {@linkcode Store}.
 */
export interface StoreOptions {
  /**
   * How often expired keys are purged in the background, in milliseconds;
   * `0` turns the background purge off. The timer never keeps a process
   * alive. Default `60_000`.
   */
  purgeIntervalMs?: number;
  /**
   * How long a write waits for another connection's lock before failing
   * (`PRAGMA busy_timeout`), in milliseconds. Default `5_000`.
   */
  busyTimeoutMs?: number;
  /**
   * `PRAGMA synchronous` of a file-backed store: `"normal"` (default) may lose
   * the last commits on power loss but never corrupts; `"full"` syncs every
   * commit.
   */
  durability?: "normal" | "full";
  /**
   * The time in milliseconds since the epoch. Every expiry decision and every
   * event timestamp uses it. Default `Date.now`.
   */
  clock?: () => number;
  /**
   * Receives an error thrown by an {@linkcode Store.prototype.onChange}
   * callback, with the event being delivered. Default: the web-standard
   * `reportError()`.
   */
  onCallbackError?: (error: unknown, event: StoreEvent) => void;
  /**
   * Turns on the cross-process change feed (file-backed stores only): every
   * committed change to the file, by any connection (other processes,
   * Workers, the Go sibling, the `sqlite3` shell), is logged by triggers in
   * the file, and this store delivers the changes made elsewhere to its
   * watchers and callbacks like its own, each event with its `seq`. Default
   * `false`.
   */
  changeFeed?: boolean;
  /**
   * How often, in milliseconds, a store with the change feed looks for
   * commits by other connections (`PRAGMA data_version`, cheap). Default
   * `50`.
   */
  changePollMs?: number;
  /**
   * How much of the change log the purge timer keeps: a row goes once it is
   * older than `maxAgeMs` or more than `maxRows` rows behind the newest.
   * Defaults: 10,000 rows, 24 hours.
   */
  changeRetention?: ChangeRetention;
}

/**
 * Options for {@linkcode Store.prototype.watch}.
 */
export interface WatchOptions {
  /**
   * Resume after this change-log `seq` (needs the `changeFeed` option): the
   * watcher first replays the logged events after it, then continues live.
   */
  since?: number;
}

/**
 * Options for {@linkcode Store.prototype.render}.
 */
export interface RenderOptions {
  /**
   * What `{{ .name }}` does when the group has no live key `name`, as Go's
   * `missingkey` option: `"default"` prints `<no value>`, `"zero"` prints
   * nothing and `"error"` throws a {@linkcode TemplateError}. Default
   * `"default"`.
   */
  missingKey?: "default" | "zero" | "error";
}

/**
 * Options for {@linkcode Store.prototype.list}.
 */
export interface ListOptions {
  /** The most entries in one page, from 1 to 10,000. Default `100`. */
  limit?: number;
  /** The `cursor` of the previous page; absent for the first page. */
  cursor?: string | undefined;
  /** Only keys starting with this string (literal). Default `""`. */
  prefix?: string;
  /** Walk in descending key order. Default `false`. */
  reverse?: boolean;
}

/**
 * One page of {@linkcode Store.prototype.list}.
 */
export interface ListPage {
  /** `[key, value]` pairs in key order (descending with `reverse`). */
  entries: [string, string][];
  /** Pass as `cursor` to read the next page; `undefined` on the last page. */
  cursor: string | undefined;
}

const DEFAULT_PURGE_INTERVAL_MS = 60_000;
const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 10_000;
// In SQLite's ordering every BLOB sorts after every TEXT, so an empty BLOB is
// an upper bound above any key while keeping the query an index range scan.
const ABOVE_ALL_TEXT = new Uint8Array(0);
const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
// setInterval stores the delay in 32 bits; a larger one fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;
// Rows per purge batch: small enough that one batch stays far under the
// 20 ms event-loop stall budget, large enough to amortise the statement.
const PURGE_BATCH = 1_000;
const DEFAULT_CHANGE_POLL_MS = 50;
const DEFAULT_CHANGE_RETENTION_ROWS = 10_000;
const DEFAULT_CHANGE_RETENTION_MS = 24 * 60 * 60 * 1000;

const LIVE = "(expires_at IS NULL OR expires_at > ?)";
const VALUE = textColumn("value");
const KEY = textColumn("key");
const GRP = textColumn("grp");

const SQL = {
  // get and getAll read plain text with its byte length (see codec.ts).
  get:
    "SELECT value, expires_at, octet_length(value) FROM kv WHERE grp = ? AND key = ?",
  getBytes: "SELECT CAST(value AS BLOB) FROM kv WHERE grp = ? AND key = ?",
  expireOne:
    "DELETE FROM kv WHERE grp = ? AND key = ? AND expires_at IS NOT NULL AND expires_at <= ?",
  set: `INSERT INTO kv (grp, key, value, expires_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (grp, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
  expiry: "SELECT expires_at FROM kv WHERE grp = ? AND key = ?",
  delete: "DELETE FROM kv WHERE grp = ? AND key = ? RETURNING expires_at",
  deleteGroup: "DELETE FROM kv WHERE grp = ?",
  count: `SELECT count(*) FROM kv WHERE grp = ? AND ${LIVE}`,
  getAll:
    `SELECT key, value, octet_length(key) + octet_length(value) FROM kv WHERE grp = ? AND ${LIVE} ORDER BY key`,
  getAllBytes:
    `SELECT ${KEY}, ${VALUE} FROM kv WHERE grp = ? AND ${LIVE} ORDER BY key`,
  // Prefix scans bind ABOVE_ALL_TEXT as the end when the prefix has none.
  countPrefix: `SELECT count(*) FROM kv WHERE grp >= ? AND grp < ? AND ${LIVE}`,
  groupHasLive: `SELECT 1 FROM kv WHERE grp = ? AND ${LIVE} LIMIT 1`,
  namespaceStats: "SELECT keys, groups FROM kv_namespace_stats WHERE ns = ?",
  recountNamespace: `INSERT INTO kv_namespace_stats (ns, keys, groups)
    SELECT ?1, count(*), count(DISTINCT grp) FROM kv WHERE grp >= ?2 AND grp < ?3
    ON CONFLICT (ns) DO UPDATE SET keys = excluded.keys, groups = excluded.groups
    RETURNING keys, groups`,
  purgeRange:
    `DELETE FROM kv INDEXED BY kv_expires_at WHERE expires_at IS NOT NULL AND expires_at <= ? AND grp >= ? AND grp < ? RETURNING ${GRP}, ${KEY}`,
  groupsPrefix:
    `SELECT DISTINCT ${GRP} FROM kv WHERE grp >= ? AND grp < ? AND ${LIVE} ORDER BY grp`,
  setExpiry: `UPDATE kv SET expires_at = ? WHERE grp = ? AND key = ? AND ${LIVE}
    RETURNING ${VALUE}`,
  listFrom:
    `SELECT ${KEY}, ${VALUE} FROM kv WHERE grp = ? AND key >= ? AND key < ? AND ${LIVE} ORDER BY key LIMIT ?`,
  listAfter:
    `SELECT ${KEY}, ${VALUE} FROM kv WHERE grp = ? AND key > ? AND key >= ? AND key < ? AND ${LIVE} ORDER BY key LIMIT ?`,
  listFromReverse:
    `SELECT ${KEY}, ${VALUE} FROM kv WHERE grp = ? AND key >= ? AND key < ? AND ${LIVE} ORDER BY key DESC LIMIT ?`,
  listBeforeReverse:
    `SELECT ${KEY}, ${VALUE} FROM kv WHERE grp = ? AND key >= ? AND key < ? AND key < ? AND ${LIVE} ORDER BY key DESC LIMIT ?`,
  begin: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  rollback: "ROLLBACK",
  purge:
    `DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ${PURGE_BATCH})`,
  purgeReturning:
    `DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ${PURGE_BATCH}) RETURNING ${GRP}, ${KEY}`,
} as const;

type Statements = Record<keyof typeof SQL, RowStatement>;

/**
 * The view of a store inside {@linkcode Store.prototype.transaction}: the
 * same methods with the same semantics, all running inside one SQLite write
 * transaction. Reads see the transaction's own writes. It may be used only
 * until the function it was passed to returns.
 *
 * @example Move a value atomically
 * ```ts
 * import { Store, type Transaction } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * store.set("inbox", "msg", "hello");
 * const move = (tx: Transaction) => {
 *   const value = tx.get("inbox", "msg");
 *   if (value === undefined) return false;
 *   tx.delete("inbox", "msg");
 *   tx.set("archive", "msg", value);
 *   return true;
 * };
 * assert.equal(store.transaction(move), true);
 * assert.equal(store.get("archive", "msg"), "hello");
 * ```
 */
export interface Transaction {
  /** As {@linkcode Store.prototype.get}. */
  get(group: string, key: string): string | undefined;
  /** As {@linkcode Store.prototype.set}. */
  set(group: string, key: string, value: string): void;
  /** As {@linkcode Store.prototype.setWithTTL}. */
  setWithTTL(group: string, key: string, value: string, ttlMs: number): void;
  /** As {@linkcode Store.prototype.delete}. */
  delete(group: string, key: string): boolean;
  /** As {@linkcode Store.prototype.deleteGroup}. */
  deleteGroup(group: string): number;
  /** As {@linkcode Store.prototype.count}. */
  count(group: string): number;
  /** As {@linkcode Store.prototype.getAll}. */
  getAll(group: string): Map<string, string>;
  /** As {@linkcode Store.prototype.exists}. */
  exists(group: string, key: string): boolean;
}

const TRANSACTION_METHODS = [
  "get",
  "set",
  "setWithTTL",
  "delete",
  "deleteGroup",
  "count",
  "getAll",
  "exists",
] as const satisfies readonly (keyof Transaction)[];

/**
 * Builds a {@linkcode Transaction} whose methods call `target`'s until
 * `end()` is called, after which they throw {@linkcode StoreError}. Shared by
 * the store and the scoped view, whose transactions differ only in the
 * target.
 */
export function transactionView(
  target: Transaction,
): { tx: Transaction; end(): void } {
  let live = true;
  const view = {} as Record<keyof Transaction, unknown>;
  for (const name of TRANSACTION_METHODS) {
    const method = target[name] as (...args: unknown[]) => unknown;
    view[name] = (...args: unknown[]) => {
      if (!live) {
        throw new StoreError(
          `Cannot use transaction: it ended when its function returned`,
        );
      }
      return method.apply(target, args);
    };
  }
  return { tx: view as unknown as Transaction, end: () => live = false };
}

/** Store operations the scoped view needs that are not public API. */
export interface StoreInternals {
  /**
   * Runs `fn` inside a write transaction: the running one if there is one,
   * else a new `BEGIN IMMEDIATE` transaction committed when `fn` returns.
   */
  atomic<T>(op: string, fn: () => T): T;
  /** Whether `group` holds a live key. */
  groupHasLive(op: string, group: string): boolean;
  /**
   * Rows and non-empty groups of a namespace, expired rows included, as the
   * schema's triggers count them: constant time, whatever its size.
   */
  namespaceStats(op: string, namespace: string): [number, number];
  /** Deletes the expired rows of groups starting with `prefix` (non-empty). */
  purgeExpiredIn(op: string, prefix: string): void;
  /**
   * Counts a namespace's rows and groups afresh (a range scan) and stores
   * the result, correcting any drift, such as an `INSERT OR REPLACE` by hand
   * (a replace fires no delete trigger).
   */
  recountNamespace(op: string, namespace: string): [number, number];
  /** Watches `key` (or `"*"`) in every group of a namespace. */
  watchNamespace(op: string, namespace: string, key: string): Watcher;
  /** Registers a callback for the events of a namespace only. */
  onNamespaceChange(
    op: string,
    namespace: string,
    fn: (event: StoreEvent) => void,
  ): () => void;
}

let internalsOf!: (store: Store) => StoreInternals;

/**
 * Reaches the {@linkcode StoreInternals} of a store; for `scope.ts` only.
 *
 * @param store An open or closed store.
 * @returns Its internal operations.
 */
export function storeInternals(store: Store): StoreInternals {
  return internalsOf(store);
}

/**
 * An embedded key-value store on the runtime's built-in SQLite. Values are
 * strings, organised by group and key; a key may expire. Files are
 * interchangeable with the Go sibling `go-store`.
 *
 * A key is live while it has no expiry or its expiry is after `clock()`.
 * Reads never see expired keys; `get` deletes the expired key it finds, and
 * a background timer purges the rest.
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

  #db: DatabaseSync | undefined;
  #stmt: Statements;
  #clock: () => number;
  #busyTimeoutMs: number;
  #hub: EventHub;
  #timer: ReturnType<typeof setInterval> | undefined;
  #purging = false;
  #templates = new TemplateCache<Template>(parseTemplate);
  /** Events of the running transaction, delivered after COMMIT. */
  #pending: StoreEvent[] | undefined;
  #inTransaction = false;
  #feed: ChangeFeed | undefined;
  #feedTimer: ReturnType<typeof setInterval> | undefined;
  /** Events committed and not yet handed to the hub, in commit order. */
  #outbox: StoreEvent[] = [];
  #draining = false;
  /** Where in the outbox the event being handed out is. */
  #handing = 0;
  /** With the change feed: the seq of the last event handed to the hub. */
  #handedSeq = 0;

  static {
    internalsOf = (store) => ({
      atomic: (op, fn) => {
        store.#open(op);
        return store.#atomic(op, fn);
      },
      groupHasLive: (op, group) => {
        const now = store.#now(op);
        return store.#run(
          op,
          () => store.#stmt.groupHasLive.get(group, now),
        ) !==
          undefined;
      },
      namespaceStats: (op, namespace) => {
        const row = store.#run(
          op,
          () => store.#stmt.namespaceStats.get(namespace),
        ) as [number, number] | undefined;
        return row ?? [0, 0];
      },
      recountNamespace: (op, namespace) => {
        const prefix = `${namespace}:`;
        const end = prefixEnd(prefix) as string;
        const row = store.#run(
          op,
          () => store.#stmt.recountNamespace.get(namespace, prefix, end),
        ) as [number, number];
        return [row[0], row[1]];
      },
      purgeExpiredIn: (op, prefix) => {
        const now = store.#now(op);
        const end = prefixEnd(prefix) as string;
        store.#feed?.markStatement();
        const rows = store.#run(
          op,
          () => store.#stmt.purgeRange.all(now, prefix, end),
        ) as [unknown, unknown][];
        for (const row of rows) {
          store.#emit("expire", decodeText(row[0]), decodeText(row[1]), now);
        }
      },
      watchNamespace: (op, namespace, key) => {
        store.#open(op);
        assertText(op, "key", key);
        store.#catchUp();
        return store.#hub.watch(`${namespace}:*`, key, {
          namespace,
          skip: store.#committedBefore(),
        });
      },
      onNamespaceChange: (op, namespace, fn) => {
        store.#open(op);
        store.#catchUp();
        return store.#hub.onChange(fn, {
          namespace,
          skip: store.#committedBefore(),
        });
      },
    });
  }

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
   * @param options Timers, durability and the clock.
   * @throws {TypeError} When `path` is not a non-empty string or an option has
   * the wrong type.
   * @throws {RangeError} When a numeric option is out of range.
   * @throws {StoreError} When the file cannot be opened or is not a store.
   */
  constructor(path: string = MEMORY_PATH, options: StoreOptions = {}) {
    assertText("open store", "path", path);
    if (path === "") {
      throw new TypeError(
        'Cannot open store: path must be a file path or ":memory:", received an empty string',
      );
    }
    const purgeIntervalMs = integer(
      "purgeIntervalMs",
      options.purgeIntervalMs,
      DEFAULT_PURGE_INTERVAL_MS,
      MAX_TIMER_MS,
    );
    const busyTimeoutMs = integer(
      "busyTimeoutMs",
      options.busyTimeoutMs,
      DEFAULT_BUSY_TIMEOUT_MS,
      MAX_TIMER_MS,
    );
    const durability = options.durability ?? "normal";
    if (durability !== "normal" && durability !== "full") {
      throw new TypeError(
        `Cannot open store: durability must be "normal" or "full", received ${
          JSON.stringify(durability)
        }`,
      );
    }
    const clock = options.clock ?? Date.now;
    if (typeof clock !== "function") {
      throw new TypeError(
        `Cannot open store: clock must be a function, received ${
          describe(clock)
        }`,
      );
    }
    const onCallbackError = options.onCallbackError;
    if (
      onCallbackError !== undefined && typeof onCallbackError !== "function"
    ) {
      throw new TypeError(
        `Cannot open store: onCallbackError must be a function, received ${
          describe(onCallbackError)
        }`,
      );
    }

    const changeFeed = options.changeFeed ?? false;
    if (typeof changeFeed !== "boolean") {
      throw new TypeError(
        `Cannot open store: changeFeed must be a boolean, received ${
          describe(changeFeed)
        }`,
      );
    }
    if (changeFeed && path === MEMORY_PATH) {
      throw new TypeError(
        "Cannot open store: changeFeed needs a file; an in-memory store has no other connections to hear from",
      );
    }
    const changePollMs = integer(
      "changePollMs",
      options.changePollMs,
      DEFAULT_CHANGE_POLL_MS,
      MAX_TIMER_MS,
    );
    const retention = {
      maxRows: integer(
        "changeRetention.maxRows",
        options.changeRetention?.maxRows,
        DEFAULT_CHANGE_RETENTION_ROWS,
      ),
      maxAgeMs: integer(
        "changeRetention.maxAgeMs",
        options.changeRetention?.maxAgeMs,
        DEFAULT_CHANGE_RETENTION_MS,
      ),
    };

    this.path = path;
    this.#clock = clock;
    this.#busyTimeoutMs = busyTimeoutMs;
    // A clock that cannot tell the time is refused now rather than at the
    // first expiry decision, which may be on a timer with nobody to tell.
    this.#now("open store");
    const db = openDatabase(path, { busyTimeoutMs, durability });
    this.#db = db;
    try {
      this.#stmt = prepareRows(db, SQL);
    } catch (error) {
      db.close();
      throw new StoreError(
        `Cannot open store at ${path}: ${
          error instanceof Error ? error.message : error
        }`,
        { cause: error },
      );
    }
    if (changeFeed) {
      try {
        retryBusy(busyTimeoutMs, () => enableChangeFeed(db));
        this.#feed = new ChangeFeed(db, retention);
      } catch (error) {
        db.close();
        throw new StoreError(
          `Cannot open store at ${path}: cannot set up the change feed: ${
            error instanceof Error ? error.message : error
          }`,
          { cause: error },
        );
      }
      if (changePollMs > 0) {
        this.#feedTimer = setInterval(() => this.#pollFeed(), changePollMs);
        unrefTimer(this.#feedTimer);
      }
    }
    this.#hub = new EventHub(
      onCallbackError === undefined ? {} : { onCallbackError },
    );
    if (purgeIntervalMs > 0) {
      this.#timer = setInterval(() => this.#backgroundPurge(), purgeIntervalMs);
      unrefTimer(this.#timer);
    }
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
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const read = () => this.#stmt.get.get(group, key);
    let row: Row | undefined;
    try {
      row = read();
    } catch (error) {
      row = this.#recover(op, error, read);
    }
    if (row === undefined) return undefined;
    const expiresAt = row[1] as number | null;
    if (expiresAt !== null) {
      const now = this.#now(op);
      if (expiresAt <= now) {
        return this.#write(op, () => {
          this.#feed?.markStatement();
          const { changes } = this.#run(
            op,
            () => this.#stmt.expireOne.run(group, key, now),
          );
          if (changes > 0) this.#emit("expire", group, key, now);
          return undefined;
        });
      }
    }
    const value = row[0] as string;
    if (isWhole(row[2] as number, value)) return value;
    const bytes = this.#run(op, () => this.#stmt.getBytes.get(group, key));
    return decodeText(bytes?.[0]);
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
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    assertText(op, "value", value);
    // The clock is read only for an event somebody would receive.
    const now = this.#hub.wants(group, key) ? this.#now(op) : 0;
    this.#write(op, () => {
      try {
        this.#stmt.set.run(group, key, value, null);
      } catch (error) {
        this.#recover(
          op,
          error,
          () => this.#stmt.set.run(group, key, value, null),
        );
      }
      this.#emit("set", group, key, now, value);
    });
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
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    assertText(op, "value", value);
    assertTTL(op, ttlMs);
    const now = this.#now(op);
    const expiresAt = this.#expiry(op, now, ttlMs);
    this.#write(op, () => {
      this.#run(op, () => this.#stmt.set.run(group, key, value, expiresAt));
      this.#emit("set", group, key, now, value, expiresAt);
    });
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
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const now = this.#now(op);
    return this.#write(op, () => {
      this.#feed?.markStatement();
      const row = this.#run(op, () => this.#stmt.delete.get(group, key)) as
        | [number | null]
        | undefined;
      if (row === undefined) return false;
      const expiresAt = row[0];
      if (expiresAt !== null && expiresAt <= now) {
        this.#emit("expire", group, key, now);
        return false;
      }
      this.#emit("delete", group, key, now);
      return true;
    });
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
    this.#open(op);
    assertText(op, "group", group);
    const now = this.#now(op);
    return this.#write(op, () => {
      this.#feed?.markStatement();
      const { changes } = this.#run(
        op,
        () => this.#stmt.deleteGroup.run(group),
      );
      if (changes > 0) this.#emit("delete_group", group, "", now);
      return Number(changes);
    });
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
    return this.#ttl("check key", group, key) !== undefined;
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
    this.#open(op);
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot ${op}: fn must be a function, received ${describe(fn)}`,
      );
    }
    if (this.#inTransaction) {
      throw new StoreError(
        `Cannot ${op}: a transaction is already running on this store; transactions do not nest`,
      );
    }
    const { tx, end } = transactionView(this);
    try {
      return this.#atomic(op, () => fn(tx));
    } finally {
      end();
    }
  }

  #atomic<T>(op: string, fn: () => T): T {
    if (this.#inTransaction) return fn();
    this.#run(op, () => this.#stmt.begin.run());
    this.#inTransaction = true;
    const pending: StoreEvent[] = [];
    this.#pending = pending;
    const feed = this.#feed;
    let result: T;
    try {
      if (feed !== undefined) this.#run(op, () => feed.beginTransaction());
      result = fn();
      if (isThenable(result)) {
        // Keep a late rejection of the abandoned promise from surfacing as
        // an unhandled one; the TypeError below is the caller's error.
        Promise.resolve(result).catch(() => {});
        throw new TypeError(
          `Cannot ${op}: the function returned a promise; transactions must be synchronous, so nothing it wrote was kept`,
        );
      }
      if (feed !== undefined) this.#run(op, () => feed.endTransaction());
      this.#run(op, () => this.#stmt.commit.run());
      feed?.committed();
    } catch (error) {
      if (this.#db?.isTransaction) this.#stmt.rollback.run();
      throw error;
    } finally {
      this.#inTransaction = false;
      this.#pending = undefined;
    }
    this.#deliver(pending);
    if (feed !== undefined) this.#deliverFeed();
    return result;
  }

  // With the change feed on, every write is a transaction, so that the log
  // rows it adds are known to be this store's own (nobody else writes while
  // it holds the lock), and delivered, from the log like everyone else's,
  // right after it commits.
  #write<T>(op: string, fn: () => T): T {
    return this.#feed === undefined ? fn() : this.#atomic(op, fn);
  }

  // Delivers the logged changes not yet delivered, in seq order: other
  // connections' commits and this store's own. With nobody listening it
  // reads nothing; #catchUp skips what was missed when someone registers.
  #deliverFeed(): void {
    const feed = this.#feed;
    if (feed === undefined || this.#db === undefined || !this.#hub.active) {
      return;
    }
    try {
      const now = this.#now("deliver changes");
      this.#deliver(feed.readNew(true, now));
    } catch (error) {
      // The write has committed; its caller must not see it fail. The next
      // poll reads the log again.
      if (!isBusy(error)) reportError(error);
    }
  }

  #pollFeed(): void {
    if (this.#db === undefined || this.#inTransaction) return;
    try {
      if (this.#feed?.changedElsewhere()) this.#deliverFeed();
    } catch (error) {
      if (!isBusy(error)) reportError(error);
    }
  }

  // The events still to be handed out, which committed before a listener
  // registering now: it must not receive them.
  #committedBefore(): StoreEvent[] {
    return this.#draining ? this.#outbox.slice(this.#handing + 1) : [];
  }

  // A listener registered now hears only what commits from now on, unless
  // it asks to replay: what is pending goes to those already listening, or
  // is skipped when there are none. Inside a transaction only what committed
  // before it counts; its own rows are delivered after its COMMIT.
  #catchUp(): void {
    const feed = this.#feed;
    if (feed === undefined) return;
    const op = "catch up with the change log";
    const active = this.#hub.active;
    const now = active ? this.#now(op) : 0;
    const events = this.#run(
      op,
      () => feed.readNew(active, now, this.#inTransaction),
    );
    this.#deliver(events);
  }

  // Hands events to the hub one at a time, in order. A callback that writes
  // (or a delivery that reads more of the change log) while events are
  // being handed out queues behind them instead of overtaking them.
  #deliver(events: readonly StoreEvent[]): void {
    if (events.length === 0) return;
    this.#outbox.push(...events);
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let i = 0; i < this.#outbox.length; i++) {
        this.#handing = i;
        const event = this.#outbox[i] as StoreEvent;
        if (event.seq !== undefined) this.#handedSeq = event.seq;
        this.#hub.emit(event);
      }
    } finally {
      this.#outbox.length = 0;
      this.#draining = false;
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
    this.#open(op);
    assertText(op, "group", group);
    const now = this.#now(op);
    const row = this.#run(
      op,
      () => this.#stmt.count.get(group, now),
    ) as [number];
    return row[0];
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
    this.#open(op);
    assertText(op, "group", group);
    return this.#getAll(op, group);
  }

  #getAll(op: string, group: string): Map<string, string> {
    const now = this.#now(op);
    const read = () => this.#stmt.getAll.all(group, now);
    let rows: Row[];
    try {
      rows = read();
    } catch (error) {
      rows = this.#recover(op, error, read);
    }
    const entries = new Map<string, string>();
    for (const row of rows) {
      const key = row[0] as string;
      const value = row[1] as string;
      if (!isWhole(row[2] as number, key, value)) {
        return this.#getAllBytes(op, group, now);
      }
      entries.set(key, value);
    }
    return entries;
  }

  // The slow path for a group holding a NUL somewhere: every row through
  // textColumn(), so no string comes back cut.
  #getAllBytes(op: string, group: string, now: number): Map<string, string> {
    const rows = this.#run(op, () => this.#stmt.getAllBytes.all(group, now));
    const entries = new Map<string, string>();
    for (const row of rows) {
      entries.set(decodeText(row[0]), decodeText(row[1]));
    }
    return entries;
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
    return this.#ttl("read TTL", group, key);
  }

  // What is left of a key's life: Infinity without expiry, undefined when it
  // is missing or expired. Reads the expiry only, never the value.
  #ttl(op: string, group: string, key: string): number | undefined {
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const now = this.#now(op);
    const row = this.#run(op, () => this.#stmt.expiry.get(group, key));
    if (row === undefined) return undefined;
    const expiresAt = row[0] as number | null;
    if (expiresAt === null) return Infinity;
    return expiresAt > now ? expiresAt - now : undefined;
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
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    if (ttlMs !== null) assertTTL(op, ttlMs);
    const now = this.#now(op);
    const expiresAt = ttlMs === null ? null : this.#expiry(op, now, ttlMs);
    return this.#write(op, () => {
      const row = this.#run(
        op,
        () => this.#stmt.setExpiry.get(expiresAt, group, key, now),
      );
      if (row === undefined) return false;
      this.#emit(
        "set",
        group,
        key,
        now,
        decodeText(row[0]),
        expiresAt ?? undefined,
      );
      return true;
    });
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
  list(group: string, options: ListOptions = {}): ListPage {
    const op = "list keys";
    this.#open(op);
    assertText(op, "group", group);
    const { cursor, prefix = "", reverse = false } = options;
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (typeof limit !== "number") {
      throw new TypeError(
        `Cannot ${op}: limit must be a number, received ${describe(limit)}`,
      );
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new RangeError(
        `Cannot ${op}: limit must be an integer from 1 to ${MAX_LIST_LIMIT}, received ${limit}`,
      );
    }
    if (cursor !== undefined) assertText(op, "cursor", cursor);
    assertText(op, "prefix", prefix);
    if (typeof reverse !== "boolean") {
      throw new TypeError(
        `Cannot ${op}: reverse must be a boolean, received ${
          describe(reverse)
        }`,
      );
    }
    const now = this.#now(op);
    const end = prefixEnd(prefix) ?? ABOVE_ALL_TEXT;
    // One row more than the page tells whether another page follows.
    const rows = this.#run(op, () => {
      const stmt = this.#stmt;
      if (!reverse) {
        return cursor === undefined
          ? stmt.listFrom.all(group, prefix, end, now, limit + 1)
          : stmt.listAfter.all(group, cursor, prefix, end, now, limit + 1);
      }
      return cursor === undefined
        ? stmt.listFromReverse.all(group, prefix, end, now, limit + 1)
        : stmt.listBeforeReverse.all(
          group,
          prefix,
          end,
          cursor,
          now,
          limit + 1,
        );
    }) as [unknown, unknown][];
    const more = rows.length > limit;
    if (more) rows.pop();
    const entries = rows.map((
      row,
    ): [string, string] => [decodeText(row[0]), decodeText(row[1])]);
    return {
      entries,
      cursor: more ? entries[entries.length - 1]?.[0] : undefined,
    };
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
    this.#open(op);
    assertText(op, "path", path);
    if (path === "" || path === MEMORY_PATH) {
      throw new TypeError(
        `Cannot ${op}: path must be a file path, received ${
          JSON.stringify(path)
        }`,
      );
    }
    if (this.#inTransaction) {
      throw new StoreError(
        `Cannot ${op}: a transaction is running; back up after it commits`,
      );
    }
    if (this.#run(op, () => pathExists(path))) {
      throw new StoreError(
        `Cannot ${op}: ${path} already exists; a backup never overwrites a file`,
      );
    }
    const source = this.#db as DatabaseSync;
    this.#run(op, () => copyInto(source, path));
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
  countAll(prefix = ""): number {
    const op = "count all keys";
    this.#open(op);
    assertText(op, "prefix", prefix);
    const now = this.#now(op);
    const end = prefixEnd(prefix) ?? ABOVE_ALL_TEXT;
    const row = this.#run(
      op,
      () => this.#stmt.countPrefix.get(prefix, end, now),
    ) as [number];
    return row[0];
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
  groups(prefix = ""): string[] {
    const op = "list groups";
    this.#open(op);
    assertText(op, "prefix", prefix);
    const now = this.#now(op);
    const end = prefixEnd(prefix) ?? ABOVE_ALL_TEXT;
    const rows = this.#run(
      op,
      () => this.#stmt.groupsPrefix.all(prefix, end, now),
    ) as [unknown][];
    return rows.map((row) => decodeText(row[0]));
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
  render(template: string, group: string, options: RenderOptions = {}): string {
    const op = "render template";
    this.#open(op);
    assertText(op, "template", template);
    assertText(op, "group", group);
    const missingKey = options.missingKey ?? "default";
    if (
      missingKey !== "default" && missingKey !== "zero" &&
      missingKey !== "error"
    ) {
      throw new RangeError(
        `Cannot ${op}: missingKey must be "default", "zero" or "error", received ${
          JSON.stringify(missingKey)
        }`,
      );
    }
    const tree = this.#template(template);
    return executeTemplate(tree, this.#getAll(op, group), missingKey);
  }

  #template(source: string): Template {
    return this.#templates.get(source);
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
    this.#open(op);
    const now = this.#now(op);
    let total = 0;
    for (;;) {
      const removed = this.#purgeBatch(op, now);
      total += removed;
      if (removed < PURGE_BATCH) return total;
    }
  }

  // One bounded batch, so that the background purge can yield to the event
  // loop between batches however large the backlog.
  #purgeBatch(op: string, now: number): number {
    return this.#write(op, () => {
      // Local events need each row; the change log records them itself.
      if (this.#feed !== undefined || !this.#hub.active) {
        this.#feed?.markStatement();
        const { changes } = this.#run(op, () => this.#stmt.purge.run(now));
        if (changes > 0) this.#feed?.retype("expire");
        return Number(changes);
      }
      const rows = this.#run(
        op,
        () => this.#stmt.purgeReturning.all(now),
      ) as [unknown, unknown][];
      for (const row of rows) {
        this.#emit("expire", decodeText(row[0]), decodeText(row[1]), now);
      }
      return rows.length;
    });
  }

  async #backgroundPurge(): Promise<void> {
    if (this.#purging) return;
    this.#purging = true;
    try {
      const op = "purge expired keys";
      // A clock that stopped telling the time fails every foreground call
      // that needs it; the timer has nobody to tell, so it skips the tick.
      if (!Number.isFinite(this.#safeClock())) return;
      while (this.#db !== undefined) {
        const removed = this.#purgeBatch(op, this.#now(op));
        if (removed < PURGE_BATCH) break;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      const feed = this.#feed;
      if (feed !== undefined && this.#db !== undefined) {
        this.#run(op, () => feed.trim());
      }
    } catch (error) {
      // Another connection holding the write lock past busyTimeoutMs is
      // routine for a shared file: the next tick of the timer retries. Any
      // other failure (a broken clock, a damaged file) must not pass
      // silently.
      if (!isBusy(error)) reportError(error);
    } finally {
      this.#purging = false;
    }
  }

  /**
   * Watches the events of one key (`key` `"*"` for every key of the group;
   * `("*", "*")` for every event). The watcher is a bounded stream: it queues
   * up to 16 unread events and drops (and counts) the rest, so a slow reader
   * never slows a writer.
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
   * @param group The group, or `"*"` for every group.
   * @param key The key, or `"*"` for every key.
   * @param options `since`: resume after a change-log `seq`, replaying what
   * the log holds after it (needs the `changeFeed` option).
   * @returns A registered {@linkcode Watcher}.
   * @throws {TypeError} When `group` or `key` is not a string, or `since` is
   * given without the change feed.
   * @throws {RangeError} When `since` is not a non-negative integer or is
   * after the newest change.
   * @throws {StoreError} When the log no longer holds every change after
   * `since` (it was trimmed by the retention limits).
   * @throws {StoreClosedError} After {@linkcode Store.prototype.close}.
   */
  watch(group: string, key: string, options: WatchOptions = {}): Watcher {
    const op = "watch";
    this.#open(op);
    assertText(op, "group", group);
    assertText(op, "key", key);
    const since = options.since;
    if (since !== undefined) {
      if (this.#feed === undefined) {
        throw new TypeError(
          `Cannot ${op}: since needs the changeFeed option, which keeps the change log`,
        );
      }
      if (typeof since !== "number") {
        throw new TypeError(
          `Cannot ${op}: since must be a number, received ${describe(since)}`,
        );
      }
      if (!Number.isSafeInteger(since) || since < 0) {
        throw new RangeError(
          `Cannot ${op}: since must be a non-negative integer, received ${since}`,
        );
      }
    }
    this.#catchUp();
    const feed = this.#feed;
    if (feed === undefined || since === undefined) {
      return this.#hub.watch(group, key, { skip: this.#committedBefore() });
    }
    const now = this.#now(op);
    // While events are being handed out, those not handed yet reach the
    // new watcher live: the replay stops before them.
    const upTo = this.#draining ? this.#handedSeq : undefined;
    const backlog = this.#run(
      op,
      () => feed.replay(since, { group, key }, now, upTo),
    );
    // A resumed watcher wants everything after `since`: the events still
    // being handed out reach it live, after its replay.
    return this.#hub.watch(group, key, { backlog });
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
    this.#hub.unwatch(watcher);
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
    this.#open("register change callback");
    this.#catchUp();
    return this.#hub.onChange(fn, { skip: this.#committedBefore() });
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
    const db = this.#db;
    if (db === undefined) return;
    this.#db = undefined;
    clearInterval(this.#timer);
    clearInterval(this.#feedTimer);
    this.#timer = this.#feedTimer = undefined;
    this.#hub.close();
    this.#templates.clear();
    db.close();
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

  // Whole milliseconds, as the Go sibling stores them, rounded up so a key
  // never expires before its TTL has passed.
  #expiry(op: string, now: number, ttlMs: number): number {
    const at = Math.ceil(now + ttlMs);
    // A TTL too small to move a large clock still leaves the key live now.
    const expiresAt = at > now ? at : Math.floor(now) + 1;
    if (!Number.isSafeInteger(expiresAt)) {
      throw new RangeError(
        `Cannot ${op}: ttlMs ${ttlMs} puts the expiry past the largest safe integer`,
      );
    }
    return expiresAt;
  }

  #open(op: string): void {
    if (this.#db === undefined) throw new StoreClosedError(op);
  }

  #safeClock(): number {
    try {
      return this.#clock();
    } catch {
      return NaN;
    }
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

  // SQLite failures become StoreError naming the operation; the original is
  // kept as the cause.
  #run<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      return this.#recover(op, error, fn);
    }
  }

  // The catch of every statement: another connection's lock is waited out
  // (bounded by busyTimeoutMs) by running the statement again; anything else
  // becomes a StoreError naming the operation.
  #recover<T>(op: string, error: unknown, fn: () => T): T {
    // The module's own errors already name the operation.
    if (
      error instanceof StoreError || error instanceof RangeError ||
      error instanceof TypeError
    ) throw error;
    if (isBusy(error)) {
      try {
        return retryBusy(this.#busyTimeoutMs, fn);
      } catch (again) {
        error = again;
      }
    }
    throw new StoreError(
      `Cannot ${op}: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }

  #emit(
    type: StoreEvent["type"],
    group: string,
    key: string,
    timestamp: number,
    value?: string,
    expiresAt?: number,
  ): void {
    const feed = this.#feed;
    if (feed !== undefined) {
      // Events come from the log; make it say what this store did.
      if (type === "delete" || type === "expire") feed.retype(type);
      else if (type === "delete_group") feed.logGroupDelete(group);
      return;
    }
    if (!this.#hub.wants(group, key)) return;
    const event: StoreEvent = { type, group, key, timestamp, origin: "local" };
    if (value !== undefined) event.value = value;
    if (expiresAt !== undefined) event.expiresAt = expiresAt;
    if (this.#pending !== undefined) this.#pending.push(event);
    else this.#deliver([event]);
  }
}

const BACKUP_SELECT = `SELECT ${GRP}, ${KEY}, ${VALUE}, expires_at FROM kv`;
const BACKUP_INSERT =
  "INSERT INTO kv (grp, key, value, expires_at) VALUES (?, ?, ?, ?)";

// Both sides in one transaction each: the read one pins a snapshot of the
// source, the write one makes the copy appear whole or not at all.
function copyInto(source: DatabaseSync, path: string): void {
  const target = new DatabaseSync(path);
  let created = false;
  let complete = false;
  try {
    const pages = target.prepare("PRAGMA page_count").get();
    if (pages?.page_count !== 0) {
      throw new Error(`${path} appeared while the backup started`);
    }
    created = true;
    target.exec("BEGIN IMMEDIATE");
    createTables(target);
    const insert = target.prepare(BACKUP_INSERT);
    const { select } = prepareRows(source, { select: BACKUP_SELECT });
    source.exec("BEGIN");
    try {
      for (const row of select.iterate()) {
        insert.run(
          decodeText(row[0]),
          decodeText(row[1]),
          decodeText(row[2]),
          row[3] as number | null,
        );
      }
    } finally {
      source.exec("COMMIT");
    }
    target.exec("COMMIT");
    complete = true;
  } finally {
    target.close();
    if (created && !complete) removeQuietly(path);
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Nothing to undo when the file was never created.
  }
}

function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function isThenable(value: unknown): boolean {
  return (typeof value === "object" || typeof value === "function") &&
    value !== null && typeof (value as { then?: unknown }).then === "function";
}

// A non-negative integer option; timers take at most MAX_TIMER_MS.
function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot open store: ${name} must be a number, received ${
        describe(value)
      }`,
    );
  }
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(
      `Cannot open store: ${name} must be ${
        max === Number.MAX_SAFE_INTEGER
          ? "a non-negative integer"
          : `an integer from 0 to ${max}`
      }, received ${value}`,
    );
  }
  return value;
}

// Deno 2.9 returns Node-style Timeout objects, whose unref() works, while
// Deno.unrefTimer() only knows the numeric ids of older releases.
function unrefTimer(timer: ReturnType<typeof setInterval>): void {
  if (typeof timer === "number") Deno.unrefTimer(timer);
  else (timer as { unref(): void }).unref();
}

/**
 * The smallest string greater than every string starting with `prefix`, in
 * SQLite's BINARY order (UTF-8 bytes, which is code point order), so that
 * `grp >= prefix AND grp < end` is an index range scan; `undefined` when no
 * such string exists (the prefix is all U+10FFFF).
 */
function prefixEnd(prefix: string): string | undefined {
  let rest = prefix;
  while (rest.length > 0) {
    const unit = rest.charCodeAt(rest.length - 1);
    const width = unit >= 0xdc00 && unit <= 0xdfff ? 2 : 1;
    const point = rest.codePointAt(rest.length - width) as number;
    rest = rest.slice(0, rest.length - width);
    if (point < 0x10ffff) {
      return rest + String.fromCodePoint(point === 0xd7ff ? 0xe000 : point + 1);
    }
  }
  return undefined;
}
