/**
 * Events of the etcd store: etcd watch streams turned into
 * {@linkcode StoreEvent}s, in revision order, with `seq` the revision and
 * `origin` `"local"` for the revisions this instance wrote.
 *
 * One stream, on the whole store prefix, runs while anybody listens and
 * feeds the store's hub. A watcher resuming from `since` gets a stream of
 * its own, starting at `since + 1`, so it never depends on what this
 * instance happened to see.
 *
 * @module
 */

import { isExpired, unrefTimer } from "../_time.ts";
import { decodeUtf8 } from "../_utf8.ts";
import { StoreError } from "../errors.ts";
import { type EventHub, watches } from "../_hub.ts";
import { REPLAY_PAGE, WatchQueue } from "../_watch_queue.ts";
import type { ExpiryTimer } from "./_expiry.ts";
import { createWatcher, type StoreEvent, type Watcher } from "../events.ts";
import { type EtcdClient, type Json, keyValue } from "./_client.ts";
import { decodeValue, type KeySpace, prefixEnd, toBase64 } from "./_keys.ts";

const OWN_LIMIT = 10_000;

/** Builds events from watch answers and runs the streams. */
export class EventPump {
  #client: EtcdClient;
  #keys: KeySpace;
  #hub: EventHub;
  #clock: () => number;
  #own = new Set<number>();
  #pending = new Set<Promise<unknown>>();
  #running: AbortController | undefined;
  #delivered = 0;
  #waiters: { revision: number; resolve: () => void }[] = [];
  #resumed = new Map<
    Watcher,
    { queue: WatchQueue<StoreEvent>; stop: AbortController }
  >();
  /** The highest revision known to be compacted away. */
  compacted = 0;
  /** Deletes keys at their deadline while the main stream runs. */
  expiry: ExpiryTimer | undefined;

  constructor(
    client: EtcdClient,
    keys: KeySpace,
    hub: EventHub,
    clock: () => number,
  ) {
    this.#client = client;
    this.#keys = keys;
    this.#hub = hub;
    this.#clock = clock;
  }

  /**
   * Runs a write of this instance, so that the events of its revision are
   * known as local and are delivered before it resolves.
   *
   * @param write The write; resolves to its revision (0: nothing written).
   * @returns The revision.
   */
  async own(write: () => Promise<number>): Promise<number> {
    const promise = write();
    this.#pending.add(promise);
    let revision: number;
    try {
      revision = await promise;
    } finally {
      this.#pending.delete(promise);
    }
    if (revision > 0) {
      this.#own.add(revision);
      if (this.#own.size > OWN_LIMIT) {
        this.#own.delete(this.#own.values().next().value as number);
      }
      await this.#settle(revision);
    }
    return revision;
  }

  /**
   * Starts the main stream if somebody listens, from after `revision`.
   *
   * @param revision The newest revision the store has seen.
   */
  listen(revision: number): void {
    if (this.#running !== undefined || !this.#hub.active) return;
    const stop = new AbortController();
    this.#running = stop;
    const start = Math.max(revision + 1, this.#delivered + 1);
    this.#follow(stop, start, {
      publish: (events) => {
        this.#hub.publish(events);
        this.expiry?.seen(events);
      },
      active: () => this.#hub.active,
      advanced: (last) => {
        this.#delivered = last;
        this.#release(last);
      },
      // Nothing can replay what etcd compacted: go on from what it has.
      compacted: "skip",
    }).finally(() => {
      if (this.#running === stop) this.#running = undefined;
      this.expiry?.clear();
      this.#release(Infinity);
    });
  }

  // Follows the store's prefix from `start`, on one member after another,
  // until `stop` aborts or nobody listens. Listeners leave without telling,
  // so a quiet stream is looked at now and then: it must not keep the
  // process alive for nobody.
  async #follow(
    stop: AbortController,
    start: number,
    to: {
      publish: (events: StoreEvent[]) => void;
      active: () => boolean;
      /** Awaited after each message: the stream is read no faster. */
      room?: () => Promise<void> | undefined;
      advanced?: (revision: number) => void;
      /** `"skip"` goes on from the oldest revision kept; a function ends. */
      compacted: "skip" | ((revision: number) => void);
    },
  ): Promise<void> {
    let next = start;
    const root = this.#keys.root;
    const idle = setInterval(() => {
      if (!to.active()) stop.abort();
    }, 1_000);
    unrefTimer(idle);
    try {
      while (!stop.signal.aborted && to.active()) {
        try {
          await this.#client.watch(
            {
              key: toBase64(root),
              range_end: toBase64(prefixEnd(root)),
              start_revision: next,
              prev_kv: true,
            },
            async (result) => {
              const revision = await this.#handle(result, to.publish);
              if (revision > 0) {
                next = revision + 1;
                to.advanced?.(revision);
              }
              if (!to.active()) stop.abort();
              else await to.room?.();
            },
            stop.signal,
          );
        } catch (error) {
          if (stop.signal.aborted || this.#client.closedSignal.aborted) return;
          if (error instanceof Compacted) {
            if (to.compacted !== "skip") return to.compacted(error.revision);
            next = error.revision;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      clearInterval(idle);
    }
  }

  /**
   * A watcher of its own stream, replaying the changes after `since` (never
   * dropped, as a local replay), then live. Its stream is read no faster
   * than its reader reads once a page of events waits unread. When etcd has
   * compacted the revisions after `since`, the stream fails with a
   * `StoreError` rather than ending as if the store closed.
   *
   * @param group The watched group or `"*"`; a label with a prefix.
   * @param key The watched key or `"*"`.
   * @param since The revision to resume after.
   * @param target The queue's capacity, and a group prefix to watch
   * instead of `group`.
   * @returns The watcher.
   */
  resume(
    group: string,
    key: string,
    since: number,
    target: { capacity: number; prefix: string | undefined },
  ): Watcher {
    const queue = new WatchQueue<StoreEvent>(target.capacity);
    const watcher = createWatcher(group, key, queue, this);
    const stop = new AbortController();
    this.#resumed.set(watcher, { queue, stop });
    // What had happened when the watcher was asked for is its replay.
    const head = this.#client.revision;
    const { prefix } = target;
    const filter = { group, key, prefix };
    this.#follow(stop, since + 1, {
      publish: (events) => {
        for (const event of events) {
          if (!watches(filter, event)) continue;
          if ((event.seq as number) <= head) queue.force(Object.freeze(event));
          else queue.offer(Object.freeze(event));
        }
      },
      active: () => this.#resumed.has(watcher),
      // A reader a page behind: etcd holds the rest (the stream is not read
      // meanwhile, and etcd catches a slow watcher up from its history).
      room: () => queue.room(REPLAY_PAGE),
      compacted: (revision) =>
        queue.fail(
          new StoreError(
            `Cannot watch: etcd compacted the history up to revision ${revision}; cannot resume after ${since}`,
          ),
        ),
    }).finally(() => this.unwatch(watcher));
    return watcher;
  }

  /**
   * Learns how far etcd has compacted its history: a watch from revision 1
   * is refused with the compaction revision, or created when nothing was
   * compacted.
   */
  async probeCompaction(): Promise<void> {
    const root = this.#keys.root;
    try {
      await this.#client.range("open store", root, { revision: 1 });
      return;
    } catch (error) {
      if (!/compacted/.test(String(error))) throw error;
    }
    // The watch is created, then cancelled with the compaction revision.
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), 2_000);
    try {
      await this.#client.watch(
        { key: toBase64(root), start_revision: 1 },
        (result) => {
          if (result.canceled && result.compact_revision !== undefined) {
            this.compacted = Number(result.compact_revision) - 1;
            stop.abort();
          }
        },
        stop.signal,
      );
    } catch {
      // Aborted once answered, or unreachable: nothing more to learn.
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Unregisters a watcher of the hub or a resumed one.
   *
   * @param watcher The watcher.
   */
  unwatch(watcher: Watcher): void {
    const resumed = this.#resumed.get(watcher);
    if (resumed === undefined) return this.#hub.unwatch(watcher);
    this.#resumed.delete(watcher);
    resumed.stop.abort();
    resumed.queue.end();
  }

  /** Stops every stream and ends every resumed watcher. */
  close(): void {
    this.#running?.abort();
    this.expiry?.clear();
    for (const watcher of [...this.#resumed.keys()]) this.unwatch(watcher);
    this.#release(Infinity);
  }

  // Turns one watch answer into events; returns the last revision in it.
  async #handle(
    result: Json,
    publish: (events: StoreEvent[]) => void,
  ): Promise<number> {
    if (result.compact_revision !== undefined && result.canceled) {
      const revision = Number(result.compact_revision);
      this.compacted = Math.max(this.compacted, revision - 1);
      throw new Compacted(revision);
    }
    const events: Json[] = result.events ?? [];
    if (events.length === 0) return 0;
    // A revision of ours is only known once its write answered.
    if (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    let last = 0;
    let batch: Json[] = [];
    for (const event of events) {
      const revision = Number(event.kv?.mod_revision ?? 0);
      if (batch.length > 0 && revision !== last) {
        publish(this.#events(batch, last));
        batch = [];
      }
      batch.push(event);
      last = revision;
    }
    publish(this.#events(batch, last));
    return last;
  }

  // The events of one revision. Deletions of a group named by the marker
  // of the same revision become one delete_group event.
  #events(batch: Json[], revision: number): StoreEvent[] {
    const keys = this.#keys;
    const wholeGroups = new Set<string>();
    for (const event of batch) {
      const kv = keyValue(event.kv);
      if (event.type !== "DELETE" && same(kv.key, keys.groupMarker)) {
        for (const group of JSON.parse(text(kv.value))) wholeGroups.add(group);
      }
    }
    const origin = this.#own.has(revision) ? "local" : "remote";
    const timestamp = this.#clock();
    const out: StoreEvent[] = [];
    const done = new Set<string>();
    for (const event of batch) {
      const kv = keyValue(event.kv);
      const parsed = keys.parse(kv.key);
      if (parsed === undefined) continue;
      const [group, key] = parsed;
      const base = { group, timestamp, origin, seq: revision } as const;
      if (event.type !== "DELETE") {
        const stored = decodeValue(kv.value);
        if (stored === undefined) continue;
        const e: StoreEvent = {
          type: "set",
          key,
          value: stored.value,
          ...base,
        };
        if (stored.expiresAt !== undefined) e.expiresAt = stored.expiresAt;
        out.push(e);
      } else if (wholeGroups.has(group)) {
        if (done.has(group)) continue;
        done.add(group);
        out.push({ type: "delete_group", key: "", ...base });
      } else {
        const prev = event.prev_kv === undefined
          ? undefined
          : decodeValue(keyValue(event.prev_kv).value);
        const expired = isExpired(prev?.expiresAt, timestamp);
        out.push({ type: expired ? "expire" : "delete", key, ...base });
      }
    }
    return out;
  }

  // Waits, at most a little, until the main stream has delivered `revision`.
  async #settle(revision: number): Promise<void> {
    if (this.#running === undefined || this.#delivered >= revision) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        resolve();
      }, 5_000);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push({ revision, resolve: done });
    });
  }

  #release(revision: number): void {
    const ready = this.#waiters.filter((w) => w.revision <= revision);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.revision > revision);
    for (const waiter of ready) waiter.resolve();
  }
}

/** A watch refused because its start revision was compacted away. */
export class Compacted extends Error {
  /** The oldest revision still available. */
  readonly revision: number;
  /** @param revision The compaction revision. */
  constructor(revision: number) {
    super(`revision compacted (the oldest available is ${revision})`);
    this.revision = revision;
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function text(bytes: Uint8Array): string {
  return decodeUtf8(bytes);
}
