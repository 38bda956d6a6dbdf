/**
 * The event hub: fans committed changes out to watchers and change
 * callbacks, through one delivery queue that orders every listener's view.
 *
 * Every published event takes the next position. A listener registered when
 * the last published position is N receives exactly the events after N, in
 * position order, however registrations, writes and deliveries interleave:
 * events published while others are being handed out (by a callback that
 * writes, say) queue behind them instead of overtaking them.
 *
 * Watchers are indexed by what they watch, so delivering an event costs time
 * in proportion to the listeners it reaches, not to the listeners
 * registered. For one event, watchers are served first, most specific first,
 * then the callbacks:
 *
 * 1. watchers of the event's group and key;
 * 2. watchers of the event's group, key `"*"`;
 * 3. prefix watchers of the event's namespace (prefix `${namespace}:`) and
 *    key, then of that namespace and key `"*"`;
 * 4. watchers of other group prefixes the event's group starts with, by key
 *    then `"*"`, in the order the prefixes were first watched;
 * 5. watchers of group `"*"` and the event's key;
 * 6. watchers of group `"*"`, key `"*"`;
 * 7. change callbacks, in registration order.
 *
 * Nothing here touches SQLite: any backend can publish into a hub.
 *
 * @module
 */

import { StoreClosedError } from "./errors.ts";
import { createWatcher, type StoreEvent, type Watcher } from "./events.ts";
import { assertFunction } from "./_check.ts";
import { assertNamespace, namespaceOf } from "./_namespace.ts";
import { type Replay, WATCHER_CAPACITY, WatchQueue } from "./_watch_queue.ts";

/** What a watcher watches. */
export interface WatchFilter {
  /** A group, or `"*"`; ignored with `prefix`. */
  readonly group: string;
  /** A key, or `"*"`. */
  readonly key: string;
  /** Every group whose name starts with this instead of `group`. */
  readonly prefix?: string | undefined;
}

/**
 * Whether a watcher of `filter` receives `event`: the rule the hub's
 * routing follows, for the replays of a log that do not pass through it.
 *
 * @param filter What the watcher watches.
 * @param event The event.
 * @returns Whether it is one of the watcher's.
 */
export function watches(filter: WatchFilter, event: StoreEvent): boolean {
  const { group, key, prefix } = filter;
  return (prefix !== undefined
    ? event.group.startsWith(prefix)
    : group === "*" || event.group === group) &&
    // A group deletion is no event of any one key, not even of "".
    (key === "*" || (event.key === key && event.type !== "delete_group"));
}

/** Options for {@linkcode EventHub}. */
export interface EventHubOptions {
  /**
   * Receives the error thrown by a change callback, with the event being
   * delivered. Without it the error goes to the global `reportError()`. If
   * this handler throws in turn, that error goes to `reportError()`.
   */
  onCallbackError?: (error: unknown, event: StoreEvent) => void;
}

/** Options for {@linkcode EventHub.prototype.watch}. */
export interface HubWatchOptions {
  /**
   * Watch every group whose name starts with this prefix instead of the
   * `group` argument, which is then only kept as the watcher's label.
   */
  prefix?: string | undefined;
  /** Unread events queued before live ones are dropped; checked. */
  capacity?: number | undefined;
  /**
   * A log to hand out before any live event, read a page at a time as the
   * watcher's reader reads (a replay of the change log).
   */
  replay?: Replay<StoreEvent> | undefined;
}

/** Options for {@linkcode EventHub.prototype.onChange}. */
export interface OnChangeOptions {
  /** Only call back for events whose group is in this namespace. */
  namespace?: string;
}

/** A registered watcher: its queue and the last position it must not get. */
interface WatchEntry {
  readonly queue: WatchQueue<StoreEvent>;
  readonly from: number;
}

/** The watchers of one group, one namespace, or of every group. */
interface Level {
  /** Watchers of every key. */
  readonly all: Set<WatchEntry>;
  /** Watchers of one key, by key; never holds `"*"`. */
  readonly byKey: Map<string, Set<WatchEntry>>;
}

interface CallbackEntry {
  readonly fn: (event: StoreEvent) => void;
  readonly namespace: string | undefined;
  readonly from: number;
  live: boolean;
}

function newLevel(): Level {
  return { all: new Set(), byKey: new Map() };
}

function hasWatchers(level: Level | undefined, key: string): boolean {
  return level !== undefined && (level.all.size > 0 || level.byKey.has(key));
}

function isEmpty(level: Level): boolean {
  return level.all.size === 0 && level.byKey.size === 0;
}

function serve(entries: Set<WatchEntry>, event: StoreEvent, at: number): void {
  for (const entry of entries) {
    if (at > entry.from) entry.queue.offer(event);
  }
}

function serveLevel(
  level: Level | undefined,
  event: StoreEvent,
  at: number,
): void {
  if (level === undefined) return;
  // A group deletion is no event of any one key, not even of the key "".
  if (event.type !== "delete_group") {
    const exact = level.byKey.get(event.key);
    if (exact !== undefined) serve(exact, event, at);
  }
  serve(level.all, event, at);
}

/**
 * Fans published events out to watchers and callbacks, in one order.
 */
export class EventHub {
  #onCallbackError: EventHubOptions["onCallbackError"];
  /** Watchers of a named group, by group; never holds `"*"`. */
  #groups = new Map<string, Level>();
  /** Watchers of the prefix `${namespace}:`, by namespace. */
  #namespaces = new Map<string, Level>();
  /** Watchers of any other group prefix, by prefix. */
  #prefixes = new Map<string, Level>();
  /** Watchers of group `"*"`. */
  #everyGroup: Level = newLevel();
  /** Every registered watcher, with how to take it out of the index. */
  #watchers = new Map<Watcher, () => void>();
  /** Replaced, never mutated, so that delivery iterates a snapshot. */
  #callbacks: readonly CallbackEntry[] = [];
  #closed = false;
  /** Events published and not yet handed out, oldest first. */
  #queue: StoreEvent[] = [];
  /** The position of the event before the first in the queue. */
  #base = 0;
  #draining = false;
  /** While set, published events take their positions but wait. */
  #held = false;

  /** @param options Where errors thrown by change callbacks go. */
  constructor(options?: EventHubOptions) {
    this.#onCallbackError = options?.onCallbackError;
  }

  /**
   * Whether any watcher or callback is registered; when `false`, a writer
   * can skip building events altogether.
   *
   * @returns `true` if an event published now could reach anyone.
   */
  get active(): boolean {
    return this.#watchers.size > 0 || this.#callbacks.length > 0;
  }

  /**
   * The position of the last published event; a listener registered now
   * receives the events after it.
   *
   * @returns A count of the events published so far.
   */
  get position(): number {
    return this.#base + this.#queue.length;
  }

  /**
   * Registers a watcher for the events of `group` and `key`; `"*"` means
   * every group or every key, and only those exact strings are wildcards.
   *
   * @param group The group to watch, or `"*"`.
   * @param key The key to watch, or `"*"`.
   * @param options A group prefix to watch instead of `group`, the
   * watcher's capacity and a log to replay first.
   * @returns The watcher, already registered.
   * @throws {StoreClosedError} If the hub is closed.
   */
  watch(group: string, key: string, options?: HubWatchOptions): Watcher {
    if (this.#closed) throw new StoreClosedError("watch for changes");
    const prefix = options?.prefix;
    let index: Map<string, Level> | undefined;
    let name = group;
    if (prefix !== undefined) {
      // A namespace's prefix is found from the event's group at once; any
      // other prefix is compared with every event's group.
      const namespace = namespaceOf(prefix);
      const isNamespace = namespace !== undefined &&
        prefix.length === namespace.length + 1;
      index = isNamespace ? this.#namespaces : this.#prefixes;
      name = isNamespace ? namespace : prefix;
    } else if (group !== "*") {
      index = this.#groups;
    }
    const level = index?.get(name) ?? (index ? newLevel() : this.#everyGroup);
    index?.set(name, level);
    const set = key === "*" ? level.all : level.byKey.get(key) ?? new Set();
    if (key !== "*") level.byKey.set(key, set);

    const queue = new WatchQueue<StoreEvent>(
      options?.capacity ?? WATCHER_CAPACITY,
    );
    if (options?.replay !== undefined) queue.replayFirst(options.replay);
    const entry: WatchEntry = { queue, from: this.position };
    const watcher = createWatcher(group, key, queue, this);
    set.add(entry);
    this.#watchers.set(watcher, () => {
      set.delete(entry);
      // Drop emptied entries so that short-lived watches on ever new groups
      // do not grow the index.
      if (set.size === 0 && key !== "*") level.byKey.delete(key);
      if (index !== undefined && isEmpty(level)) index.delete(name);
      queue.end();
    });
    return watcher;
  }

  /**
   * Unregisters a watcher: it receives no more events and its stream ends
   * once the queued events are read. Idempotent; a watcher of another hub is
   * ignored.
   *
   * @param watcher The watcher to unregister.
   */
  unwatch(watcher: Watcher): void {
    const remove = this.#watchers.get(watcher);
    if (remove === undefined) return;
    this.#watchers.delete(watcher);
    remove();
  }

  /**
   * Registers a callback for every event after the current position, or
   * with `options.namespace` for the events of that namespace. A callback
   * that throws does not stop the others.
   *
   * @param fn Called with each matching event (frozen and shared).
   * @param options `namespace`: only events of that namespace.
   * @returns A function that unregisters the callback; idempotent.
   * @throws {TypeError} If `fn` is not a function or the namespace is
   * invalid.
   * @throws {StoreClosedError} If the hub is closed.
   */
  onChange(
    fn: (event: StoreEvent) => void,
    options?: OnChangeOptions,
  ): () => void {
    assertFunction("register change callback", "fn", fn);
    const namespace = options?.namespace;
    if (namespace !== undefined) {
      assertNamespace("register change callback", namespace);
    }
    if (this.#closed) {
      throw new StoreClosedError("register a change callback");
    }
    const entry: CallbackEntry = {
      fn,
      namespace,
      from: this.position,
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
   * Whether an event of `group` and `key` could reach anyone. It may answer
   * `true` for an event nobody ends up receiving, never `false` for one
   * somebody would.
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
    for (const [prefix, level] of this.#prefixes) {
      if (group.startsWith(prefix) && hasWatchers(level, key)) return true;
    }
    if (this.#namespaces.size === 0) return false;
    const namespace = namespaceOf(group);
    return namespace !== undefined &&
      hasWatchers(this.#namespaces.get(namespace), key);
  }

  /**
   * Appends committed events to the delivery queue, each at the next
   * position, and hands them out unless a delivery is already running (it
   * will reach them). Never waits for a consumer. Freezes each event.
   *
   * @param events Committed events, in commit order.
   */
  publish(events: readonly StoreEvent[]): void {
    if (this.#closed || events.length === 0) return;
    if (!this.active && !this.#draining) {
      // Nobody could receive them, now or later: only the count matters.
      this.#base += events.length;
      return;
    }
    if (events.length === 1 && !this.#held && !this.#draining) {
      // The common case, one write's event with nothing waiting: handed out
      // at once, without a trip through the queue.
      const at = this.#base + 1;
      this.#base = at;
      this.#draining = true;
      try {
        this.#handOut(Object.freeze(events[0] as StoreEvent), at);
      } finally {
        this.#draining = false;
      }
      // What its callbacks published meanwhile waited behind it.
      if (this.#queue.length > 0) this.#drain();
      return;
    }
    // One push per event: a spread of a huge batch overflows the stack.
    for (const event of events) this.#queue.push(Object.freeze(event));
    if (!this.#held) this.#drain();
  }

  /**
   * Holds delivery: events published meanwhile take their positions (a
   * listener registered after them does not receive them) but nobody is
   * called until {@linkcode EventHub.prototype.release}. A store holds it
   * through a transaction, so that no callback runs (and writes) inside it.
   *
   * @returns Whether this call took the hold (`false` when already held).
   */
  hold(): boolean {
    if (this.#held) return false;
    this.#held = true;
    return true;
  }

  /** Ends a hold and hands out what waited, unless a delivery runs. */
  release(): void {
    this.#held = false;
    if (this.#queue.length > 0) this.#drain();
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let i = 0; i < this.#queue.length; i++) {
        this.#handOut(this.#queue[i] as StoreEvent, this.#base + i + 1);
      }
    } finally {
      this.#base += this.#queue.length;
      this.#queue = [];
      this.#draining = false;
    }
  }

  #handOut(event: StoreEvent, at: number): void {
    let namespace: string | undefined | null = null;
    if (this.#watchers.size > 0) {
      // Enqueueing runs no user code synchronously (reads resolve in later
      // microtasks), so the sets cannot change while they are iterated.
      if (this.#groups.size > 0) {
        serveLevel(this.#groups.get(event.group), event, at);
      }
      if (this.#namespaces.size > 0) {
        namespace = namespaceOf(event.group);
        if (namespace !== undefined) {
          serveLevel(this.#namespaces.get(namespace), event, at);
        }
      }
      for (const [prefix, level] of this.#prefixes) {
        if (event.group.startsWith(prefix)) serveLevel(level, event, at);
      }
      serveLevel(this.#everyGroup, event, at);
    }
    if (this.#callbacks.length === 0) return;
    for (const entry of this.#callbacks) {
      if (!entry.live || at <= entry.from) continue;
      if (entry.namespace !== undefined) {
        if (namespace === null) namespace = namespaceOf(event.group);
        if (entry.namespace !== namespace) continue;
      }
      try {
        entry.fn(event);
      } catch (error) {
        this.#report(error, event);
      }
    }
  }

  /**
   * Ends every watcher's stream (after its queued events) and drops every
   * callback. Idempotent. Afterwards `publish` and `unwatch` do nothing,
   * while `watch` and `onChange` throw {@linkcode StoreClosedError}.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Marking the entries stops a delivery in progress from calling the rest.
    for (const entry of this.#callbacks) entry.live = false;
    this.#callbacks = [];
    const removals = [...this.#watchers.values()];
    this.#watchers.clear();
    for (const remove of removals) remove();
    this.#groups.clear();
    this.#namespaces.clear();
    this.#prefixes.clear();
    this.#everyGroup = newLevel();
    this.#queue = [];
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
