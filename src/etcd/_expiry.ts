/**
 * Expiry on time for the etcd store, as the local store has it: while the
 * store's event stream runs, the deadlines of the keys it has seen set with
 * a TTL are kept, and one unref'd timer, armed for the earliest, deletes the
 * keys due (each only if unchanged) so that their `expire` events reach every
 * instance's listeners at the deadline instead of when etcd's lease lets
 * them go. Every instance that listens does it; the first delete wins and the
 * others find the key changed.
 *
 * @module
 */

import { clockOrNaN, unrefTimer } from "../_time.ts";
import type { StoreEvent } from "../events.ts";
import type { Entry } from "./_kv.ts";

/** A key known to expire. */
interface Due {
  readonly entry: Entry;
  readonly deadline: number;
}

// Instances listening to one store all wake at a deadline; a little jitter
// lets the first one's event reach the others before they try too.
const JITTER_MS = 20;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The deadlines seen on the event stream, and the timer for them. */
export class ExpiryTimer {
  #clock: () => number;
  #keyOf: (group: string, key: string) => Uint8Array;
  #purge: (entries: Entry[]) => Promise<unknown>;
  #due = new Map<string, Due>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = Infinity;

  /**
   * @param clock The store's clock.
   * @param keyOf The etcd key of a group's key.
   * @param purge Deletes entries that are still as they were read.
   */
  constructor(
    clock: () => number,
    keyOf: (group: string, key: string) => Uint8Array,
    purge: (entries: Entry[]) => Promise<unknown>,
  ) {
    this.#clock = clock;
    this.#keyOf = keyOf;
    this.#purge = purge;
  }

  /**
   * Notes what delivered events say about deadlines.
   *
   * @param events Events of the store's stream, in order.
   */
  seen(events: readonly StoreEvent[]): void {
    for (const event of events) {
      const id = `${event.group}\0${event.key}`;
      if (event.type === "delete_group") {
        for (const [key, due] of this.#due) {
          if (due.entry.group === event.group) this.#due.delete(key);
        }
      } else if (event.type === "set" && event.expiresAt !== undefined) {
        this.#due.set(id, {
          deadline: event.expiresAt,
          entry: this.#entry(event),
        });
      } else {
        this.#due.delete(id);
      }
    }
    this.#arm();
  }

  /** Forgets every deadline and stops the timer. */
  clear(): void {
    this.#due.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #entry(event: StoreEvent): Entry {
    return {
      group: event.group,
      key: event.key,
      bytes: this.#keyOf(event.group, event.key),
      stored: { value: "", expiresAt: event.expiresAt, tag: "" },
      modRevision: event.seq as number,
    };
  }

  #arm(): void {
    let earliest = Infinity;
    for (const due of this.#due.values()) {
      if (due.deadline < earliest) earliest = due.deadline;
    }
    if (earliest === Infinity) return this.clear();
    if (this.#timer !== undefined && earliest >= this.#armedFor) return;
    clearTimeout(this.#timer);
    this.#armedFor = earliest;
    const now = clockOrNaN(this.#clock);
    const wait = Number.isFinite(now) ? Math.max(0, earliest - now) : 1_000;
    this.#timer = setTimeout(
      () => this.#fire(),
      Math.min(wait + Math.random() * JITTER_MS, MAX_TIMER_MS),
    );
    unrefTimer(this.#timer);
  }

  async #fire(): Promise<void> {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = clockOrNaN(this.#clock);
    const due: Entry[] = [];
    for (const [id, entry] of this.#due) {
      if (entry.deadline <= now) {
        due.push(entry.entry);
        this.#due.delete(id);
      }
    }
    if (due.length > 0) {
      try {
        await this.#purge(due);
      } catch {
        // No quorum now: the lease, a read or the purge timer removes them.
      }
    }
    this.#arm();
  }
}
