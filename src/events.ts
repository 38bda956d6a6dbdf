/**
 * The public face of change events: what a committed write looks like
 * ({@linkcode StoreEvent}) and the bounded stream a consumer reads
 * ({@linkcode Watcher}). Nothing here touches SQLite, so every backend shares
 * it; the fan-out and the delivery order live in `_hub.ts`.
 *
 * @module
 */

import type { WatchQueue } from "./_watch_queue.ts";

/**
 * What a write did: `set` stored a value, `delete` removed one key,
 * `delete_group` removed a whole group and `expire` reports a key removed
 * because its time to live ran out.
 *
 * @example Narrow on the type
 * ```ts
 * import type { EventType } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * const removals: EventType[] = ["delete", "delete_group", "expire"];
 * assert.equal(removals.includes("set"), false);
 * ```
 */
export type EventType = "set" | "delete" | "delete_group" | "expire";

/**
 * One committed write, as delivered to watchers and change callbacks. The
 * same frozen object is handed to every consumer.
 *
 * @example A set with a time to live
 * ```ts
 * import { Store, type StoreEvent } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * let now = 1_700_000_000_000;
 * using store = new Store(":memory:", { clock: () => now });
 * const seen: StoreEvent[] = [];
 * store.onChange((event) => seen.push(event));
 * store.setWithTTL("session", "token", "abc", 60_000);
 *
 * const [event] = seen;
 * assert.equal(event?.type, "set");
 * assert.equal(event.expiresAt! - event.timestamp, 60_000);
 * ```
 */
export interface StoreEvent {
  /** What the write did. */
  type: EventType;
  /** The group written to. */
  group: string;
  /** The key written to; `""` for `delete_group`. */
  key: string;
  /** The stored value; present for `set` only. */
  value?: string;
  /** For a `set` through `setWithTTL`: when the value expires, ms epoch. */
  expiresAt?: number;
  /**
   * When the write was made, ms epoch: the store clock for a live event of
   * this store, the time the change log (or the etcd record) holds for an
   * event read from it, such as a replay after `since`.
   */
  timestamp: number;
  /**
   * Where the write was made: `"local"` by this store, `"remote"` by another
   * connection to the same file (delivered by the change feed).
   */
  origin: "local" | "remote";
  /** The write's position in the file's change log, when the feed is on. */
  seq?: number;
}

/**
 * A group's live entries and the position of the last change they include,
 * read at one instant: a watch resuming `since` that position continues
 * exactly where the entries leave off.
 *
 * @example Entries, then what changed after them
 * ```ts
 * import { Store, type GroupSnapshot } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/app.db`;
 * using store = new Store(path, { changeFeed: true });
 * store.set("config", "theme", "dark");
 * const snapshot: GroupSnapshot = store.snapshot("config");
 * store.set("config", "theme", "light");
 * using watcher = store.watch("config", "*", { since: snapshot.position });
 * const reader = watcher.stream.getReader();
 * assert.deepEqual([...snapshot.entries], [["theme", "dark"]]);
 * assert.equal((await reader.read()).value?.value, "light");
 * reader.releaseLock();
 * ```
 */
export interface GroupSnapshot {
  /** The group's live entries, in key order. */
  entries: Map<string, string>;
  /**
   * The position (an event's `seq`: change-log seq or etcd revision) of the
   * last change the entries include; `undefined` for a store without
   * positions (a file store without the change feed).
   */
  position: number | undefined;
}

/** What a watcher asks of whoever registered it. */
export interface WatchSource {
  /** Stops delivering to `watcher` and ends its stream. */
  unwatch(watcher: Watcher): void;
}

const INTERNAL: unique symbol = Symbol("Watcher.internal");

/**
 * A bounded stream of the events matching one watch, from
 * `Store.prototype.watch` or `ScopedStore.prototype.watch`. Read it through
 * {@linkcode Watcher.prototype.stream} or with `for await`.
 *
 * Delivery never waits for the reader: up to
 * {@linkcode Watcher.prototype.capacity} (16 by default) unread events are queued, in
 * order; while the queue is full, newer events are dropped and counted in
 * {@linkcode Watcher.prototype.dropped}. A reader that keeps up loses
 * nothing.
 *
 * The watcher stops receiving events when it is disposed, when
 * `Store.prototype.unwatch` is called, when its stream is cancelled (which
 * includes leaving a `for await` loop early) and when the store is closed.
 * After disposal, `unwatch` and close, the stream still yields what was
 * queued, then ends; cancelling discards the queue, as cancelling any
 * `ReadableStream` does.
 *
 * @example Dispose with `using`
 * ```ts
 * import { Store } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * {
 *   using watcher = store.watch("users", "alice");
 *   store.delete("users", "alice"); // nothing to delete: no event
 *   store.set("users", "alice", "admin");
 *   const reader = watcher.stream.getReader();
 *   assert.equal((await reader.read()).value?.type, "set");
 *   reader.releaseLock();
 * }
 * ```
 */
export class Watcher implements AsyncIterable<StoreEvent>, Disposable {
  /**
   * The group given to `watch`; `"*"` for every group.
   *
   * @example Read the watched group and key
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * using watcher = store.watch("users", "*");
   * assert.equal(watcher.group, "users");
   * assert.equal(watcher.key, "*");
   * ```
   */
  readonly group: string;
  /**
   * The key given to `watch`; `"*"` for every key.
   *
   * @example Read the watched key
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * using watcher = store.watch("users", "alice");
   * assert.equal(watcher.key, "alice");
   * ```
   */
  readonly key: string;

  #queue: WatchQueue<StoreEvent>;
  #source: WatchSource;

  /** @ignore Watchers come from `Store.prototype.watch`. */
  constructor(
    token: typeof INTERNAL,
    group: string,
    key: string,
    queue: WatchQueue<StoreEvent>,
    source: WatchSource,
  ) {
    // Mirrors the platform's "Illegal constructor": only createWatcher()
    // holds the token.
    if (token !== INTERNAL) throw new TypeError("Illegal constructor");
    this.group = group;
    this.key = key;
    this.#queue = queue;
    this.#source = source;
    queue.onCancel = () => source.unwatch(this);
  }

  /**
   * The events, oldest first. Queues at most
   * {@linkcode Watcher.prototype.capacity} unread events
   * (`CountQueuingStrategy`). Cancelling it unregisters the watcher.
   *
   * @example Read with a reader
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const watcher = store.watch("g", "k");
   * store.set("g", "k", "v");
   * store.unwatch(watcher);
   *
   * const reader = watcher.stream.getReader();
   * assert.equal((await reader.read()).value?.value, "v");
   * assert.equal((await reader.read()).done, true);
   * ```
   *
   * @returns The watcher's stream of events.
   */
  get stream(): ReadableStream<StoreEvent> {
    return this.#queue.stream;
  }

  /**
   * How many unread events the watcher holds before it drops new ones: the
   * `capacity` option of `watch`, 16 by default. A service relaying events
   * (over SSE, say) can size its own buffers to match.
   *
   * @example Read the capacity
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * using watcher = store.watch("g", "*");
   * assert.equal(watcher.capacity, 16);
   * ```
   *
   * @returns The queue's capacity, in events.
   */
  get capacity(): number {
    return this.#queue.capacity;
  }

  /**
   * How many events were dropped because
   * {@linkcode Watcher.prototype.capacity} were already queued unread.
   *
   * @example Count what a slow reader missed
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const watcher = store.watch("g", "*");
   * for (let i = 0; i < 20; i++) store.set("g", `k${i}`, "v");
   * assert.equal(watcher.dropped, 4);
   * await watcher.stream.cancel();
   * ```
   *
   * @returns The number of events dropped so far.
   */
  get dropped(): number {
    return this.#queue.dropped;
  }

  /**
   * Iterates over {@linkcode Watcher.prototype.stream}. Leaving the loop
   * early cancels the stream, which unregisters the watcher. The stream can
   * only be iterated (or read) by one consumer at a time.
   *
   * @example Stop after the first event
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const watcher = store.watch("*", "*");
   * store.set("g", "k", "v");
   * for await (const event of watcher) {
   *   assert.equal(event.type, "set");
   *   break; // leaving the loop unregisters the watcher
   * }
   * ```
   *
   * @returns An iterator over the watcher's events.
   * @throws {TypeError} If the stream is already locked by another reader.
   */
  [Symbol.asyncIterator](): AsyncIterator<StoreEvent> {
    return this.#queue.stream[Symbol.asyncIterator]();
  }

  /**
   * Unregisters the watcher, as `Store.prototype.unwatch` does. Idempotent.
   *
   * @example Dispose explicitly
   * ```ts
   * import { Store } from "@core/store";
   * import assert from "node:assert/strict";
   *
   * using store = new Store();
   * const watcher = store.watch("g", "k");
   * watcher[Symbol.dispose]();
   * store.set("g", "k", "v");
   * assert.equal((await watcher.stream.getReader().read()).done, true);
   * ```
   */
  [Symbol.dispose](): void {
    this.#source.unwatch(this);
  }
}

/**
 * Makes a watcher reading `queue`; for the event hub only.
 *
 * @internal
 * @param group The watched group, or `"*"`.
 * @param key The watched key, or `"*"`.
 * @param queue The watcher's bounded queue.
 * @param source Who unregisters it.
 * @returns The new watcher.
 */
export function createWatcher(
  group: string,
  key: string,
  queue: WatchQueue<StoreEvent>,
  source: WatchSource,
): Watcher {
  return new Watcher(INTERNAL, group, key, queue, source);
}
