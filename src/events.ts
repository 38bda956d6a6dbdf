/**
 * Change notification for the store. An {@linkcode EventHub} receives every
 * committed write as a {@linkcode StoreEvent} and hands it, synchronously and
 * without ever waiting on a consumer, to:
 *
 * - {@linkcode Watcher}s: bounded streams of the events of one group and key,
 *   one group, one namespace or everything; a watcher that falls 16 events
 *   behind drops the newest ones and counts them instead of slowing the
 *   writer down;
 * - change callbacks registered with {@linkcode EventHub.prototype.onChange},
 *   run in registration order during the write.
 *
 * Watchers are indexed by what they watch, so a write costs time in
 * proportion to the consumers it reaches, not to the consumers registered.
 *
 * @example Watch one group
 * ```ts
 * import { EventHub } from "./events.ts";
 * import assert from "node:assert/strict";
 *
 * const hub = new EventHub();
 * const watcher = hub.watch("config", "*");
 * hub.emit({ type: "set", group: "config", key: "theme", value: "dark", origin: "local", timestamp: 1 });
 * hub.emit({ type: "set", group: "other", key: "theme", value: "x", origin: "local", timestamp: 2 });
 *
 * for await (const event of watcher) {
 *   assert.equal(event.value, "dark");
 *   break; // leaving the loop unregisters the watcher
 * }
 * assert.equal(hub.active, false);
 * ```
 *
 * @module
 */

import { StoreClosedError } from "./errors.ts";

/**
 * What a write did: `set` stored a value, `delete` removed one key,
 * `delete_group` removed a whole group and `expire` reports a key removed
 * because its time to live ran out.
 *
 * @example Narrow on the type
 * ```ts
 * import type { EventType } from "./events.ts";
 * import assert from "node:assert/strict";
 *
 * const removals: EventType[] = ["delete", "delete_group", "expire"];
 * assert.equal(removals.includes("set"), false);
 * ```
 */
export type EventType = "set" | "delete" | "delete_group" | "expire";

/**
 * One committed write, as delivered to watchers and change callbacks. The hub
 * freezes the object and hands the same instance to every consumer.
 *
 * @example A set with a time to live
 * ```ts
 * import type { StoreEvent } from "./events.ts";
 * import assert from "node:assert/strict";
 *
 * const event: StoreEvent = {
 *   type: "set",
 *   group: "session",
 *   key: "token",
 *   value: "abc",
 *   expiresAt: 1_700_000_060_000,
 *   origin: "local", timestamp: 1_700_000_000_000,
 * };
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
  /** The store clock at emission, ms epoch. */
  timestamp: number;
  /**
   * Where the write was made: `"local"` by this store, `"remote"` by another
   * connection to the same file (delivered by the change feed).
   */
  origin: "local" | "remote";
  /** The write's position in the file's change log, when the feed is on. */
  seq?: number;
}

/** Options for {@linkcode EventHub}. */
export interface EventHubOptions {
  /**
   * Receives the error thrown by a change callback, with the event being
   * delivered. Without it the error goes to the global `reportError()`, which
   * dispatches an `error` event on `globalThis` (and, in Deno, ends the
   * process unless a listener calls `preventDefault()`). If this handler
   * throws in turn, that error goes to `reportError()`.
   */
  onCallbackError?: (error: unknown, event: StoreEvent) => void;
}

/** Options for {@linkcode EventHub.prototype.watch}. */
export interface HubWatchOptions {
  /**
   * Watch every group named `${namespace}:…` instead of the `group`
   * argument, which is then only kept as {@linkcode Watcher.prototype.group}
   * for display. Must match `/^[A-Za-z0-9-]+$/`.
   */
  namespace?: string;
  /**
   * Events to queue before any live one, such as a replay of the change
   * log. They are never dropped; live events are, while 16 or more events
   * (backlog included) wait unread.
   */
  backlog?: Iterable<StoreEvent>;
  /**
   * Events already on their way to the hub when the watcher registers (they
   * committed before it), which it must not receive.
   */
  skip?: Iterable<StoreEvent>;
}

/** Options for {@linkcode EventHub.prototype.onChange}. */
export interface OnChangeOptions {
  /** As {@linkcode HubWatchOptions.skip}: events the callback must not get. */
  skip?: Iterable<StoreEvent>;
  /**
   * Only call back for events whose group starts with `${namespace}:`. Must
   * match `/^[A-Za-z0-9-]+$/`.
   */
  namespace?: string;
}

/** Events a watcher holds for its reader before it starts dropping. */
const QUEUE_LIMIT = 16;
const NAMESPACE_PATTERN = /^[A-Za-z0-9-]+$/;
const INTERNAL: unique symbol = Symbol("Watcher.internal");

/*
 * The hub drives watchers through these instead of public methods, so that
 * nothing internal shows in the Watcher API. They are assigned once, in the
 * static block of Watcher, where its #private members are in reach.
 */
let createWatcher!: (
  group: string,
  key: string,
  unregister: (watcher: Watcher) => void,
) => Watcher;
let deliverTo!: (watcher: Watcher, event: StoreEvent) => void;
let queueTo!: (watcher: Watcher, event: StoreEvent) => void;
let skipFor!: (watcher: Watcher, events: Set<StoreEvent> | undefined) => void;
let endWatcher!: (watcher: Watcher) => void;

/**
 * A bounded stream of the events matching one watch, obtained from
 * {@linkcode EventHub.prototype.watch}. Read it through
 * {@linkcode Watcher.prototype.stream} or with `for await`.
 *
 * Delivery never waits for the reader: up to 16 unread events are queued, in
 * order; while the queue is full, newer events are dropped and counted in
 * {@linkcode Watcher.prototype.dropped}. A reader that keeps up loses
 * nothing.
 *
 * The watcher is unregistered from its hub, and stops receiving events, when
 * it is disposed, when {@linkcode EventHub.prototype.unwatch} is called, when
 * its stream is cancelled (which includes leaving a `for await` loop early)
 * and when the hub is closed. After disposal, `unwatch` and the hub's close
 * the stream still yields what was queued, then ends; cancelling discards
 * the queue, as cancelling any `ReadableStream` does.
 *
 * @example Dispose with `using`
 * ```ts
 * import { EventHub } from "./events.ts";
 * import assert from "node:assert/strict";
 *
 * const hub = new EventHub();
 * {
 *   using watcher = hub.watch("users", "alice");
 *   assert.equal(hub.active, true);
 *   hub.emit({ type: "delete", group: "users", key: "alice", origin: "local", timestamp: 1 });
 *   const reader = watcher.stream.getReader();
 *   assert.equal((await reader.read()).value?.type, "delete");
 *   reader.releaseLock();
 * }
 * assert.equal(hub.active, false);
 * ```
 */
export class Watcher implements AsyncIterable<StoreEvent>, Disposable {
  /**
   * The group given to {@linkcode EventHub.prototype.watch}; `"*"` for every
   * group. For a namespace watcher it is only a label.
   *
   * @example Read the watched group and key
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * using watcher = new EventHub().watch("users", "*");
   * assert.equal(watcher.group, "users");
   * assert.equal(watcher.key, "*");
   * ```
   */
  readonly group: string;
  /**
   * The key given to {@linkcode EventHub.prototype.watch}; `"*"` for every
   * key.
   *
   * @example Read the watched key
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * using watcher = new EventHub().watch("users", "alice");
   * assert.equal(watcher.key, "alice");
   * ```
   */
  readonly key: string;
  /**
   * The events, oldest first. Queues at most 16 unread events
   * (`CountQueuingStrategy`, high water mark 16). Cancelling it unregisters
   * the watcher.
   *
   * @example Read with a reader
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const watcher = hub.watch("g", "k");
   * hub.emit({ type: "set", group: "g", key: "k", value: "v", origin: "local", timestamp: 1 });
   * hub.unwatch(watcher);
   *
   * const reader = watcher.stream.getReader();
   * assert.equal((await reader.read()).value?.value, "v");
   * assert.equal((await reader.read()).done, true);
   * ```
   */
  readonly stream: ReadableStream<StoreEvent>;

  #controller: ReadableStreamDefaultController<StoreEvent>;
  #unregister: (watcher: Watcher) => void;
  #dropped = 0;
  #ended = false;
  #skip: Set<StoreEvent> | undefined;

  static {
    createWatcher = (group, key, unregister) =>
      new Watcher(INTERNAL, group, key, unregister);
    deliverTo = (watcher, event) => watcher.#deliver(event);
    queueTo = (watcher, event) => watcher.#controller.enqueue(event);
    skipFor = (watcher, events) => watcher.#skip = events;
    endWatcher = (watcher) => watcher.#end();
  }

  /** @ignore Watchers come from {@linkcode EventHub.prototype.watch}. */
  private constructor(
    token: typeof INTERNAL,
    group: string,
    key: string,
    unregister: (watcher: Watcher) => void,
  ) {
    // Mirrors the platform's "Illegal constructor" for plain-JS callers
    // that TypeScript's `private` does not stop.
    if (token !== INTERNAL) throw new TypeError("Illegal constructor");
    this.group = group;
    this.key = key;
    this.#unregister = unregister;
    let controller!: ReadableStreamDefaultController<StoreEvent>;
    this.stream = new ReadableStream<StoreEvent>(
      {
        start: (c) => {
          controller = c;
        },
        cancel: () => {
          // The stream is already closed; #end must not close it again.
          this.#ended = true;
          this.#unregister(this);
        },
      },
      new CountQueuingStrategy({ highWaterMark: QUEUE_LIMIT }),
    );
    // `start` runs synchronously inside the ReadableStream constructor.
    this.#controller = controller;
  }

  /**
   * How many events were dropped because 16 were already queued unread.
   *
   * @example Count what a slow reader missed
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const watcher = hub.watch("g", "*");
   * for (let i = 0; i < 20; i++) {
   *   hub.emit({ type: "set", group: "g", key: `k${i}`, value: "v", timestamp: i, origin: "local" });
   * }
   * assert.equal(watcher.dropped, 4);
   * await watcher.stream.cancel();
   * ```
   *
   * @returns The number of events dropped so far.
   */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Iterates over {@linkcode Watcher.prototype.stream}. Leaving the loop
   * early cancels the stream, which unregisters the watcher. The stream can
   * only be iterated (or read) by one consumer at a time.
   *
   * @example Stop after the first event
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const watcher = hub.watch("*", "*");
   * hub.emit({ type: "expire", group: "g", key: "k", origin: "local", timestamp: 1 });
   * for await (const event of watcher) {
   *   assert.equal(event.type, "expire");
   *   break;
   * }
   * assert.equal(hub.active, false);
   * ```
   *
   * @returns An iterator over the watcher's events.
   * @throws {TypeError} If the stream is already locked by another reader.
   */
  [Symbol.asyncIterator](): AsyncIterator<StoreEvent> {
    return this.stream[Symbol.asyncIterator]();
  }

  /**
   * Unregisters the watcher from its hub, as
   * {@linkcode EventHub.prototype.unwatch} does. Idempotent.
   *
   * @example Dispose explicitly
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const watcher = hub.watch("g", "k");
   * watcher[Symbol.dispose]();
   * assert.equal(hub.active, false);
   * assert.equal((await watcher.stream.getReader().read()).done, true);
   * ```
   */
  [Symbol.dispose](): void {
    this.#unregister(this);
  }

  #deliver(event: StoreEvent): void {
    if (this.#ended || this.#skip?.delete(event)) return;
    // desiredSize is null only for an errored stream, which we never cause.
    if ((this.#controller.desiredSize ?? 0) > 0) {
      this.#controller.enqueue(event);
    } else {
      this.#dropped++;
    }
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#controller.close();
  }
}

/** The watchers of one group, one namespace, or of every group. */
interface Level {
  /** Watchers of every key. */
  readonly all: Set<Watcher>;
  /** Watchers of one key, by key; never holds `"*"`. */
  readonly byKey: Map<string, Set<Watcher>>;
}

interface CallbackEntry {
  readonly fn: (event: StoreEvent) => void;
  readonly namespace: string | undefined;
  readonly skip: Set<StoreEvent> | undefined;
  live: boolean;
}

function newLevel(): Level {
  return { all: new Set(), byKey: new Map() };
}

function skipSet(
  events: Iterable<StoreEvent> | undefined,
): Set<StoreEvent> | undefined {
  if (events === undefined) return undefined;
  const set = new Set(events);
  return set.size === 0 ? undefined : set;
}

function hasWatchers(level: Level | undefined, key: string): boolean {
  return level !== undefined && (level.all.size > 0 || level.byKey.has(key));
}

function isEmpty(level: Level): boolean {
  return level.all.size === 0 && level.byKey.size === 0;
}

function deliverLevel(
  level: Level | undefined,
  key: string,
  event: StoreEvent,
): void {
  if (level === undefined) return;
  // A group deletion is no event of any one key, not even of the key "".
  const exact = event.type === "delete_group"
    ? undefined
    : level.byKey.get(key);
  if (exact !== undefined) {
    for (const watcher of exact) deliverTo(watcher, event);
  }
  for (const watcher of level.all) deliverTo(watcher, event);
}

function checkNamespace(namespace: string | undefined): void {
  if (namespace !== undefined && !NAMESPACE_PATTERN.test(namespace)) {
    throw new TypeError(
      `Cannot use namespace "${namespace}": it must match ${NAMESPACE_PATTERN}`,
    );
  }
}

/**
 * Fans committed writes out to {@linkcode Watcher}s and change callbacks. The
 * store owns one hub and calls {@linkcode EventHub.prototype.emit} after each
 * committed write.
 *
 * For one event, watchers are served first, most specific first, then the
 * callbacks:
 *
 * 1. watchers of the event's group and key;
 * 2. watchers of the event's group, key `"*"`;
 * 3. namespace watchers of the event's namespace (the part of the group
 *    before its first `:`) and key;
 * 4. namespace watchers of that namespace, key `"*"`;
 * 5. watchers of group `"*"` and the event's key;
 * 6. watchers of group `"*"`, key `"*"`;
 * 7. change callbacks, in registration order.
 *
 * Within each step watchers are served in registration order, and each
 * watcher receives a given event at most once. Keys match literally, so a
 * `delete_group` event (key `""`) reaches the key `"*"` watchers of the group
 * but not the watchers of one key.
 *
 * @example Watchers and callbacks
 * ```ts
 * import { EventHub, type StoreEvent } from "./events.ts";
 * import assert from "node:assert/strict";
 *
 * const hub = new EventHub();
 * const seen: StoreEvent[] = [];
 * const off = hub.onChange((event) => seen.push(event));
 * const watcher = hub.watch("g", "k");
 *
 * hub.emit({ type: "set", group: "g", key: "k", value: "1", origin: "local", timestamp: 1 });
 * assert.equal(seen.length, 1);
 *
 * off();
 * hub.close();
 * const reader = watcher.stream.getReader();
 * assert.equal((await reader.read()).value, seen[0]);
 * assert.equal((await reader.read()).done, true);
 * ```
 */
export class EventHub {
  #onCallbackError: EventHubOptions["onCallbackError"];
  /** Watchers of a named group, by group; never holds `"*"`. */
  #groups = new Map<string, Level>();
  /** Namespace watchers, by namespace. */
  #namespaces = new Map<string, Level>();
  /** Watchers of group `"*"`. */
  #everyGroup: Level = newLevel();
  /** Every registered watcher, with how to take it out of the index. */
  #watchers = new Map<Watcher, () => void>();
  /** Replaced, never mutated, so that emit can iterate a snapshot. */
  #callbacks: readonly CallbackEntry[] = [];
  #closed = false;
  #unwatch = (watcher: Watcher): void => this.unwatch(watcher);

  /**
   * Creates a hub with no watchers and no callbacks.
   *
   * @param options Where errors thrown by change callbacks go.
   */
  constructor(options?: EventHubOptions) {
    this.#onCallbackError = options?.onCallbackError;
  }

  /**
   * Whether any watcher or change callback is registered. When it is
   * `false`, {@linkcode EventHub.prototype.emit} does nothing, so a writer
   * can skip building the event altogether.
   *
   * @example Skip building events nobody listens to
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * assert.equal(hub.active, false);
   * const off = hub.onChange(() => {});
   * assert.equal(hub.active, true);
   * off();
   * assert.equal(hub.active, false);
   * ```
   *
   * @returns `true` if an event emitted now could reach anyone.
   */
  get active(): boolean {
    return this.#watchers.size > 0 || this.#callbacks.length > 0;
  }

  /**
   * Registers a watcher for the events of `group` and `key`. `key` `"*"`
   * means every key of the group and `group` `"*"` every group, so
   * `("*", "*")` receives every event. Only these exact strings are
   * wildcards; a group may otherwise contain any character, `*` and `:`
   * included.
   *
   * With `options.namespace`, the watcher instead receives the events of
   * every group starting with `${namespace}:`, of `key` (or of every key for
   * `"*"`); `group` is then only kept as the watcher's label.
   *
   * @example Watch a key, a group and a namespace
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const key = hub.watch("users", "alice");
   * const group = hub.watch("users", "*");
   * const tenant = hub.watch("acme:*", "*", { namespace: "acme" });
   *
   * hub.emit({ type: "set", group: "users", key: "bob", value: "1", origin: "local", timestamp: 1 });
   * hub.emit({ type: "set", group: "acme:users", key: "bob", value: "2", origin: "local", timestamp: 2 });
   * hub.close();
   *
   * assert.deepEqual((await Array.fromAsync(key)).length, 0);
   * assert.deepEqual((await Array.fromAsync(group)).map((e) => e.value), ["1"]);
   * assert.deepEqual((await Array.fromAsync(tenant)).map((e) => e.value), ["2"]);
   * ```
   *
   * @param group The group to watch, or `"*"` for every group.
   * @param key The key to watch, or `"*"` for every key.
   * @param options `namespace`: watch a namespace instead of `group`.
   * @returns The watcher, already registered.
   * @throws {TypeError} If `options.namespace` does not match
   * `/^[A-Za-z0-9-]+$/`.
   * @throws {StoreClosedError} If the hub is closed.
   */
  watch(group: string, key: string, options?: HubWatchOptions): Watcher {
    const namespace = options?.namespace;
    checkNamespace(namespace);
    if (this.#closed) throw new StoreClosedError("watch for changes");

    let index: Map<string, Level> | undefined;
    let name = group;
    if (namespace !== undefined) {
      index = this.#namespaces;
      name = namespace;
    } else if (group !== "*") {
      index = this.#groups;
    }
    const level = index?.get(name) ?? (index ? newLevel() : this.#everyGroup);
    index?.set(name, level);
    const set = key === "*" ? level.all : level.byKey.get(key) ?? new Set();
    if (key !== "*") level.byKey.set(key, set);

    const watcher = createWatcher(group, key, this.#unwatch);
    for (const event of options?.backlog ?? []) queueTo(watcher, event);
    skipFor(watcher, skipSet(options?.skip));
    set.add(watcher);
    this.#watchers.set(watcher, () => {
      set.delete(watcher);
      // Drop emptied entries so that short-lived watches on ever new groups
      // do not grow the index.
      if (set.size === 0 && key !== "*") level.byKey.delete(key);
      if (index !== undefined && isEmpty(level)) index.delete(name);
    });
    return watcher;
  }

  /**
   * Unregisters a watcher: it receives no more events and its stream ends
   * once the queued events are read. Idempotent; a watcher of another hub is
   * ignored.
   *
   * @example Unwatch, then read what was queued
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const watcher = hub.watch("g", "*");
   * hub.emit({ type: "delete_group", group: "g", key: "", origin: "local", timestamp: 1 });
   * hub.unwatch(watcher);
   * hub.unwatch(watcher);
   * hub.emit({ type: "delete_group", group: "g", key: "", origin: "local", timestamp: 2 });
   *
   * const events = await Array.fromAsync(watcher);
   * assert.deepEqual(events.map((e) => e.timestamp), [1]);
   * ```
   *
   * @param watcher The watcher to unregister.
   */
  unwatch(watcher: Watcher): void {
    const remove = this.#watchers.get(watcher);
    if (remove === undefined) return;
    this.#watchers.delete(watcher);
    remove();
    endWatcher(watcher);
  }

  /**
   * Registers a callback run synchronously by
   * {@linkcode EventHub.prototype.emit} for every event, or with
   * `options.namespace` for the events whose group starts with
   * `${namespace}:`. Callbacks run after the watchers are served, in
   * registration order (filtered and unfiltered alike).
   *
   * A callback that throws does not stop the others; its error goes to
   * {@linkcode EventHubOptions.onCallbackError}, or else to `reportError()`.
   * A callback may register and unregister callbacks and watchers: one
   * registered during an emit is first called for the next event, one
   * unregistered during an emit is not called again, even for the current
   * event.
   *
   * @example Namespaced and unfiltered callbacks
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const calls: string[] = [];
   * hub.onChange((e) => calls.push(`all ${e.group}`));
   * const off = hub.onChange((e) => calls.push(`acme ${e.group}`), { namespace: "acme" });
   *
   * hub.emit({ type: "delete", group: "acme:users", key: "k", origin: "local", timestamp: 1 });
   * hub.emit({ type: "delete", group: "users", key: "k", origin: "local", timestamp: 2 });
   * off();
   * off();
   * hub.emit({ type: "delete", group: "acme:users", key: "k", origin: "local", timestamp: 3 });
   *
   * assert.deepEqual(calls, ["all acme:users", "acme acme:users", "all users", "all acme:users"]);
   * ```
   *
   * @param fn Called with each matching event; must not mutate it (it is
   * frozen and shared).
   * @param options `namespace`: only events of that namespace.
   * @returns A function that unregisters the callback; idempotent.
   * @throws {TypeError} If `fn` is not a function or `options.namespace`
   * does not match `/^[A-Za-z0-9-]+$/`.
   * @throws {StoreClosedError} If the hub is closed.
   */
  onChange(
    fn: (event: StoreEvent) => void,
    options?: OnChangeOptions,
  ): () => void {
    if (typeof fn !== "function") {
      throw new TypeError("Cannot register change callback: not a function");
    }
    const namespace = options?.namespace;
    checkNamespace(namespace);
    if (this.#closed) {
      throw new StoreClosedError("register a change callback");
    }
    const entry: CallbackEntry = {
      fn,
      namespace,
      skip: skipSet(options?.skip),
      live: true,
    };
    this.#callbacks = [...this.#callbacks, entry];
    return () => {
      if (!entry.live) return;
      entry.live = false;
      this.#callbacks = this.#callbacks.filter((e) => e !== entry);
    };
  }

  /**
   * Whether an event of `group` and `key` would reach anyone: a callback, or
   * a watcher of that key, that group, its namespace or every group. Lets a
   * writer skip building events for the watchers of other groups, however
   * many there are. It may answer `true` for an event nobody ends up
   * receiving, never `false` for one somebody would.
   *
   * @example Watchers elsewhere cost nothing
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * using _watcher = hub.watch("other", "*");
   * assert.equal(hub.wants("config", "theme"), false);
   * assert.equal(hub.wants("other", "theme"), true);
   * ```
   *
   * @param group The event's group.
   * @param key The event's key.
   * @returns `false` when no watcher or callback could receive it.
   */
  wants(group: string, key: string): boolean {
    if (this.#callbacks.length > 0) return true;
    if (this.#watchers.size === 0) return false;
    if (
      hasWatchers(this.#everyGroup, key) ||
      hasWatchers(this.#groups.get(group), key)
    ) return true;
    if (this.#namespaces.size === 0) return false;
    const colon = group.indexOf(":");
    return colon > 0 &&
      hasWatchers(this.#namespaces.get(group.slice(0, colon)), key);
  }

  /**
   * Delivers a committed write to the matching watchers, then to the
   * matching callbacks (see {@linkcode EventHub} for the order). Never waits
   * for a consumer: a watcher with 16 unread events drops this one. Freezes
   * `event`, which is shared by every consumer. Does nothing when
   * {@linkcode EventHub.prototype.active} is `false` or the hub is closed.
   *
   * The cost is proportional to the number of matching watchers and of
   * callbacks, whatever the number of watchers on other groups.
   *
   * @example Emit after a write
   * ```ts
   * import { EventHub } from "./events.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const a = hub.watch("g", "k");
   * const b = hub.watch("g", "k");
   * const event = { type: "set" as const, group: "g", key: "k", value: "v", timestamp: 1, origin: "local" as const };
   * hub.emit(event);
   * hub.close();
   *
   * assert.equal(Object.isFrozen(event), true);
   * assert.deepEqual(await Array.fromAsync(a), [event]);
   * assert.deepEqual(await Array.fromAsync(b), [event]);
   * ```
   *
   * @param event The write; `key` is `""` for `delete_group`.
   */
  emit(event: StoreEvent): void {
    if (this.#closed || !this.active) return;
    Object.freeze(event);
    const { group, key } = event;
    // Namespaces contain no ":", so the only one a group can belong to is
    // the part before its first ":".
    const colon = group.indexOf(":");
    const namespace = colon > 0 ? group.slice(0, colon) : undefined;

    if (this.#watchers.size > 0) {
      // Enqueueing runs no user code synchronously (reads resolve in later
      // microtasks), so the sets cannot change while they are iterated.
      deliverLevel(this.#groups.get(group), key, event);
      if (namespace !== undefined && this.#namespaces.size > 0) {
        deliverLevel(this.#namespaces.get(namespace), key, event);
      }
      deliverLevel(this.#everyGroup, key, event);
    }

    for (const entry of this.#callbacks) {
      if (!entry.live) continue;
      if (entry.namespace !== undefined && entry.namespace !== namespace) {
        continue;
      }
      if (entry.skip?.delete(event)) continue;
      try {
        entry.fn(event);
      } catch (error) {
        this.#report(error, event);
      }
    }
  }

  /**
   * Ends every watcher's stream (after its queued events) and drops every
   * callback. Idempotent. Afterwards {@linkcode EventHub.prototype.emit} and
   * {@linkcode EventHub.prototype.unwatch} do nothing, while
   * {@linkcode EventHub.prototype.watch} and
   * {@linkcode EventHub.prototype.onChange} throw
   * {@linkcode StoreClosedError}.
   *
   * @example Close ends the streams
   * ```ts
   * import { EventHub } from "./events.ts";
   * import { StoreClosedError } from "./errors.ts";
   * import assert from "node:assert/strict";
   *
   * const hub = new EventHub();
   * const watcher = hub.watch("*", "*");
   * hub.onChange(() => assert.fail("dropped callbacks are not called"));
   * hub.close();
   * hub.emit({ type: "delete", group: "g", key: "k", origin: "local", timestamp: 1 });
   *
   * assert.equal(hub.active, false);
   * assert.deepEqual(await Array.fromAsync(watcher), []);
   * assert.throws(() => hub.watch("g", "k"), StoreClosedError);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Marking the entries stops an emit in progress from calling the rest.
    for (const entry of this.#callbacks) entry.live = false;
    this.#callbacks = [];
    const watchers = [...this.#watchers.keys()];
    this.#watchers.clear();
    this.#groups.clear();
    this.#namespaces.clear();
    this.#everyGroup = newLevel();
    for (const watcher of watchers) endWatcher(watcher);
  }

  #report(error: unknown, event: StoreEvent): void {
    const handler = this.#onCallbackError;
    if (handler === undefined) {
      reportError(error);
      return;
    }
    try {
      handler(error, event);
    } catch (handlerError) {
      reportError(handlerError);
    }
  }
}
