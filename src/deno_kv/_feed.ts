/**
 * Events of the Deno KV store. Every write logs its events under `[P, "l",
 * seq]` in its own atomic operation, so the log is the one source of every
 * store's events, in commit order: a store hands its own events out as soon
 * as it committed them (after any logged event before them), and polls the
 * head every {@linkcode POLL_MS} while anybody listens to hand out the
 * others'. Deno KV's `watch` would not do: locally it never sees another
 * process's writes.
 *
 * A watcher resuming from `since` follows the log on its own, as the etcd
 * store's resumed watchers follow their own stream. While anybody listens,
 * a timer set for the earliest deadline of the expiry index purges keys at
 * their deadline, so `expire` events are on time in every process.
 *
 * @module
 */

import { clockOrNaN, unrefTimer } from "../_time.ts";
import { type EventHub, watches, type WatchFilter } from "../_hub.ts";
import { REPLAY_BYTES, REPLAY_PAGE, WatchQueue } from "../_watch_queue.ts";
import { createWatcher, type StoreEvent, type Watcher } from "../events.ts";
import { StoreError } from "../errors.ts";
import { LOG_SIZE, type LogRecord } from "./_keys.ts";
import type { Committed, KvOps } from "./_kv.ts";
import { purgeExpired } from "./_clean.ts";

/** How often the head is polled while anybody listens. */
export const POLL_MS = 10;

const JITTER_MS = 5;
/** Own seqs remembered to label replayed events. */
const OWN_LIMIT = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Fewer expired keys than this are purged per timer run. */
const TIMER_PURGE_LIMIT = 1_000;

/** What a resumed watcher wants. */
export interface ResumeFilter extends WatchFilter {
  /** Unread events queued before live ones are dropped. */
  readonly capacity: number;
}

/** The log reader behind a store's hub and its resumed watchers. */
export class Feed {
  #ops: KvOps;
  #hub: EventHub;
  #clock: () => number;
  /** The last seq handed to the hub. */
  #delivered = 0;
  /** Own events committed and not handed out yet, while anybody listens. */
  #own = new Map<number, StoreEvent>();
  #chain: Promise<void> = Promise.resolve();
  #poller: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  #expiry: ReturnType<typeof setTimeout> | undefined;
  #armedFor = Infinity;
  #resumed = new Map<
    Watcher,
    { queue: WatchQueue<StoreEvent>; stop: () => void }
  >();
  #closed = false;
  /** The seqs of this store's recent commits, to tell local from remote. */
  #ownSeqs = new Set<number>();
  /** The newest head seq this store has seen. */
  known = 0;

  /**
   * @param ops The store's operations.
   * @param hub The store's hub.
   * @param clock The store's clock (unchecked).
   */
  constructor(ops: KvOps, hub: EventHub, clock: () => number) {
    this.#ops = ops;
    this.#hub = hub;
    this.#clock = clock;
    ops.onCommitted = ({ first, last }) => {
      for (let seq = first; seq <= last; seq++) this.#ownSeqs.add(seq);
      for (const seq of this.#ownSeqs) {
        if (this.#ownSeqs.size <= OWN_LIMIT) break;
        this.#ownSeqs.delete(seq);
      }
    };
  }

  /**
   * Notes a head seq read by a write.
   *
   * @param seq The head.
   */
  saw(seq: number): void {
    if (seq > this.known) this.known = seq;
  }

  /**
   * Hands out the events of a commit of this store, after the logged
   * events before them.
   *
   * @param committed What committed.
   */
  async committed(committed: Committed): Promise<void> {
    this.saw(committed.last);
    if (committed.events.length === 0) return;
    if (!this.#hub.active) {
      this.#hub.publish(committed.events);
      if (this.#delivered === committed.first - 1) {
        this.#delivered = committed.last;
      }
      return;
    }
    for (const event of committed.events) {
      // The poll may have handed it out already, from the log.
      const seq = event.seq as number;
      if (seq > this.#delivered) this.#own.set(seq, event);
    }
    await this.#serial(() => this.#catchUp(committed.last));
  }

  /**
   * Starts polling and the expiry timer if anybody listens. The first read
   * of the head, at once, is where a new listener starts: the changes
   * committed after it (and this store's own, in any case) reach it;
   * `watch(…, { since })` is exact.
   */
  listen(): void {
    if (this.#closed || this.#polling || !this.#hub.active) return;
    this.#polling = true;
    this.#serial(async () => {
      // Should the read fail, start from the newest head seen.
      this.#delivered = this.known;
      const head = await this.#ops.head();
      this.saw(head.seq);
      const own = [...this.#own.values()]
        .filter((e) => (e.seq as number) <= head.seq)
        .sort((x, y) => (x.seq as number) - (y.seq as number));
      for (const e of own) this.#own.delete(e.seq as number);
      this.#delivered = head.seq;
      this.#hub.publish(own);
    });
    this.#schedule();
    this.#arm();
  }

  #schedule(): void {
    this.#poller = setTimeout(() => {
      this.#poller = undefined;
      if (this.#closed || !this.#hub.active) {
        this.#polling = false;
        this.#own.clear();
        return;
      }
      this.#serial(async () => {
        const head = await this.#ops.head();
        this.saw(head.seq);
        await this.#catchUp(head.seq);
      }).finally(() => {
        if (!this.#closed) this.#schedule();
      });
    }, POLL_MS);
    // Like an open etcd watch stream, polling for listeners keeps the
    // process alive; it stops when the last one leaves or the store closes.
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(fn).catch(() => {
      // A failed read is retried by the next poll; closing ends it.
    });
    this.#chain = run;
    return run;
  }

  async #catchUp(target: number): Promise<void> {
    if (this.#closed || this.#delivered >= target) return;
    const from = this.#delivered;
    const events: StoreEvent[] = [];
    let missing = false;
    for (let seq = from + 1; seq <= target; seq++) {
      if (!this.#own.has(seq)) missing = true;
    }
    if (missing) {
      if (this.#ops.pending.size > 0) {
        await Promise.allSettled([...this.#ops.pending]);
      }
      const logged = await this.readLog(from, target, "remote");
      for (const event of logged) {
        const own = this.#own.get(event.seq as number);
        events.push(own ?? event);
      }
    } else {
      for (let seq = from + 1; seq <= target; seq++) {
        events.push(this.#own.get(seq) as StoreEvent);
      }
    }
    for (let seq = from + 1; seq <= target; seq++) this.#own.delete(seq);
    this.#delivered = target;
    this.#hub.publish(events);
    this.#armFor(events);
  }

  /**
   * The logged events after `since` up to `last`, in order; those this
   * store wrote are marked local.
   *
   * @param since The position to read after.
   * @param last The last position.
   * @param origin The origin of events not in the own set.
   * @returns The events the log still holds.
   */
  async readLog(
    since: number,
    last: number,
    origin: "local" | "remote",
    budget = Infinity,
  ): Promise<StoreEvent[]> {
    const out: StoreEvent[] = [];
    const selector = this.#ops.keys.logRange(since, last);
    let size = 0;
    for (const item of await this.#ops.collect<LogRecord>(selector)) {
      const seq = item.key[2] as number;
      const event = await this.#event(item.value, seq, origin);
      if (event === undefined) continue;
      out.push(event);
      // String lengths for bytes: a bound, not a count.
      size += event.group.length + event.key.length +
        (event.value?.length ?? 0);
      if (size > budget) break;
    }
    return out;
  }

  async #event(
    r: LogRecord,
    seq: number,
    origin: "local" | "remote",
  ): Promise<StoreEvent | undefined> {
    const event: StoreEvent = {
      type: r.t,
      group: r.g,
      key: r.k,
      timestamp: r.ts,
      origin: this.#ownSeqs.has(seq) ? "local" : origin,
      seq,
    };
    if (r.t === "set") {
      const value = r.c === undefined
        ? r.v ?? ""
        : await this.#ops.value({ c: r.c });
      // Chunks outlive their log events; a missing one is past the log.
      if (value === undefined) return undefined;
      event.value = value;
      if (r.x !== undefined) event.expiresAt = r.x;
    }
    return event;
  }

  /**
   * A watcher following the log from after `since` on its own: the events
   * logged when it was asked for are replayed (never dropped), then live
   * ones follow (dropped past the capacity, as for every watcher). It reads
   * a page of the log per poll and none while its reader is a page behind,
   * so a watcher far behind holds about one page.
   *
   * @param since The position to resume after.
   * @param filter What it watches.
   * @returns The watcher.
   * @throws {StoreError} When the log no longer holds every change after
   * `since`.
   */
  resume(since: number, filter: ResumeFilter): Watcher {
    if (this.known - since > LOG_SIZE) {
      throw new StoreError(
        `Cannot watch: the change log keeps the last ${LOG_SIZE} changes; the changes after seq ${since} are gone`,
      );
    }
    const queue = new WatchQueue<StoreEvent>(filter.capacity);
    const watcher = createWatcher(filter.group, filter.key, queue, this);
    let cursor = since;
    let replayTo: number | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const step = async () => {
      // A reader behind by a page or more: the log keeps the rest.
      if (queue.unread >= REPLAY_PAGE) return;
      const head = await this.#ops.head();
      this.saw(head.seq);
      replayTo ??= head.seq;
      if (head.seq <= cursor) return;
      if (this.#ops.pending.size > 0) {
        await Promise.allSettled([...this.#ops.pending]);
      }
      const to = Math.min(head.seq, cursor + REPLAY_PAGE);
      const events = await this.readLog(cursor, to, "remote", REPLAY_BYTES);
      // Seqs are contiguous, and the log keeps the last LOG_SIZE: one it
      // no longer holds is a gap, whether the page was empty or not.
      const first = (events[0]?.seq ?? head.seq + 1) as number;
      if (first > cursor + 1 || head.seq - cursor > LOG_SIZE) {
        // Trimmed while it waited: no silent gap, and no ordinary end.
        queue.fail(
          new StoreError(
            `Cannot watch: the change log no longer holds the changes after seq ${cursor}`,
          ),
        );
        return this.unwatch(watcher);
      }
      for (const event of events) {
        if (!watches(filter, event)) continue;
        const frozen = Object.freeze(event);
        if ((event.seq as number) <= replayTo) queue.force(frozen);
        else queue.offer(frozen);
      }
      cursor = (events.at(-1)?.seq ?? cursor) as number;
    };
    const loop = () => {
      if (stopped || this.#closed) return;
      step().catch(() => {}).finally(() => {
        if (stopped || this.#closed) return;
        timer = setTimeout(loop, POLL_MS);
      });
    };
    this.#resumed.set(watcher, {
      queue,
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    });
    loop();
    return watcher;
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
    resumed.stop();
    resumed.queue.end();
  }

  /**
   * Stops polling, the timer and every resumed watcher, then waits for a
   * read in flight.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#poller);
    clearTimeout(this.#expiry);
    for (const watcher of [...this.#resumed.keys()]) this.unwatch(watcher);
    await this.#chain;
    await this.#purging;
  }

  #armFor(events: readonly StoreEvent[]): void {
    for (const event of events) {
      const at = event.expiresAt;
      if (at !== undefined && at < this.#armedFor) return this.#arm();
    }
  }

  #purging: Promise<unknown> = Promise.resolve();

  // Sets the timer for the earliest deadline of the index.
  #arm(): void {
    if (this.#closed || !this.#hub.active) return;
    this.#purging = this.#purging.then(async () => {
      let earliest = Infinity;
      const keys = this.#ops.keys;
      for (
        const item of await this.#ops.collect(keys.expiries(), { limit: 1 })
      ) {
        earliest = item.key[2] as number;
      }
      if (this.#closed || !this.#hub.active) return;
      clearTimeout(this.#expiry);
      this.#armedFor = earliest;
      if (earliest === Infinity) return;
      const now = clockOrNaN(this.#clock);
      const wait = Number.isFinite(now) ? Math.max(0, earliest - now) : 1_000;
      this.#expiry = setTimeout(
        () => this.#fire(),
        Math.min(wait + Math.random() * JITTER_MS, MAX_TIMER_MS),
      );
      unrefTimer(this.#expiry);
    }).catch(() => {});
  }

  #fire(): void {
    this.#expiry = undefined;
    this.#armedFor = Infinity;
    const now = clockOrNaN(this.#clock);
    if (this.#closed || !Number.isFinite(now)) return;
    this.#purging = this.#purging.then(() =>
      purgeExpired(
        this.#ops,
        "purge expired keys",
        now,
        (c) => this.committed(c),
        TIMER_PURGE_LIMIT,
      )
    ).catch(() => {});
    this.#arm();
  }
}
