/**
 * The bounded queue behind one {@linkcode Watcher}: a `ReadableStream` that
 * never makes a writer wait. Kept apart from the public class so that the
 * hub drives it through ordinary methods.
 *
 * Unread events wait in a plain array, and the stream pulls them one read
 * at a time (a high-water mark of 0): a write that reaches a watcher costs
 * an array push, while the stream's own enqueue (several calls deep, with a
 * size function per chunk) runs when the reader reads. Only an event that
 * finds a read already waiting goes into the stream at once.
 *
 * A queue may first replay a log ({@linkcode Replay}): it reads a page when
 * its reader has read the last one, so a watcher far behind holds one page,
 * not everything it missed.
 *
 * @module
 */

/**
 * Events a queue hands out before its live ones, read a page at a time as
 * its reader reads: a replay of a change log, which also holds every live
 * event that arrives meanwhile.
 */
export interface Replay<T> {
  /**
   * Reads the next page; an empty page when none of its rows was for this
   * queue, `undefined` once the replay has read all it must.
   *
   * @returns The events, in order, or `undefined` at the end.
   */
  next(): T[] | undefined;
  /**
   * Makes the replay read on to the end of the log instead of stopping
   * where the log ended when it began: the live events that arrived
   * meanwhile were more than the queue holds, and the log has them all.
   */
  extend(): void;
  /**
   * Reads no further than the log's end now: the queue has ended, and what
   * is written after it is not the watcher's.
   */
  stop(): void;
  /**
   * @param event A live event.
   * @returns Whether the replay has read it already.
   */
  covers(event: T): boolean;
}

/**
 * Pages of a replay read at once when its queue ends, so that a watcher of
 * a store that closes still hands over a short replay; past them the next
 * read after the close rejects with the store's error.
 */
const END_PAGES = 4;
/** How long empty pages are read back to back before the loop is yielded. */
const SCAN_MS = 5;

/** Unread events a watcher holds before it starts dropping. */
export const WATCHER_CAPACITY = 16;

/**
 * Events a replay reads at a time, and holds unread before it waits for its
 * reader: what a watcher far behind costs, on every backend.
 */
export const REPLAY_PAGE = 256;

/**
 * Bytes of groups, keys and values past which a replay's page ends early
 * (after its first event), so that large values cannot make one page huge.
 */
export const REPLAY_BYTES = 8 * 1024 * 1024;

/**
 * One watcher's queue, as the hub sees it. Generic over what it carries so
 * that it sits below `events.ts`, which wraps it in the public `Watcher`.
 */
export class WatchQueue<T> {
  /** The events, oldest first. */
  readonly stream: ReadableStream<T>;
  /** Unread events held before new ones are dropped. */
  readonly capacity: number;
  /** Events dropped because the queue was full. */
  dropped = 0;
  /** Called when the reader cancels the stream. */
  onCancel: () => void = () => {};
  #controller: ReadableStreamDefaultController<T>;
  /** Unread events; those before `#head` were handed out. */
  #buffer: T[] = [];
  #head = 0;
  /** The stream asked for an event and none was there: a read waits. */
  #wanted = false;
  /** No event is taken any more. */
  #ended = false;
  /** The stream is closed, errored or cancelled. */
  #done = false;
  /** The log read first; kept after it ends to skip what it read. */
  #replay: Replay<T> | undefined;
  /** Pages of the replay are still to read. */
  #replaying = false;
  /** Live events that arrived during the replay, up to `capacity`. */
  #held: T[] = [];
  /** More live events arrived than it holds: the replay reads them. */
  #extended = false;
  /** Who waits for fewer than `limit` unread events. */
  #room: { limit: number; resolve: () => void } | undefined;

  /** @param capacity Unread events held before new ones are dropped. */
  constructor(capacity = WATCHER_CAPACITY) {
    this.capacity = capacity;
    let controller!: ReadableStreamDefaultController<T>;
    this.stream = new ReadableStream<T>(
      {
        start: (c) => {
          controller = c;
        },
        pull: () => this.#pull(),
        cancel: () => {
          this.#ended = true;
          this.#done = true;
          this.#buffer = [];
          this.#head = 0;
          this.#freeRoom();
          this.onCancel();
        },
      },
      new CountQueuingStrategy({ highWaterMark: 0 }),
    );
    // `start` runs synchronously inside the ReadableStream constructor.
    this.#controller = controller;
  }

  /** @returns The events queued and not yet read. */
  get unread(): number {
    return this.#buffer.length - this.#head;
  }

  /**
   * For a source that pushes a replay: waits until its reader has read
   * enough that fewer than `limit` events wait unread, or the stream ended.
   *
   * @param limit The unread events to stay under.
   * @returns `undefined` when there is room now, else a promise of it.
   */
  room(limit: number): Promise<void> | undefined {
    if (this.#done || this.unread < limit) return undefined;
    this.#room?.resolve();
    return new Promise((resolve) => {
      this.#room = { limit, resolve };
    });
  }

  #freeRoom(): void {
    const room = this.#room;
    if (room !== undefined && (this.#done || this.unread < room.limit)) {
      this.#room = undefined;
      room.resolve();
    }
  }

  /**
   * Queues a live event, or counts it as dropped when the reader is
   * `capacity` events behind.
   *
   * @param event The event.
   */
  offer(event: T): void {
    if (this.#ended) return;
    const replay = this.#replay;
    if (replay !== undefined) {
      if (this.#replaying) return this.#hold(replay, event);
      if (replay.covers(event)) return;
      // Live events come in log order: none after this one is covered.
      this.#replay = undefined;
    }
    if (this.#buffer.length - this.#head >= this.capacity) this.dropped++;
    else this.#add(event);
  }

  /**
   * Queues an event that must not be dropped (a replay pushed to the queue
   * before live events).
   *
   * @param event The event.
   */
  force(event: T): void {
    if (!this.#ended) this.#add(event);
  }

  /**
   * Hands out `replay`'s events before any live one. Called once, before
   * the first event.
   *
   * @param replay The log to read first.
   */
  replayFirst(replay: Replay<T>): void {
    this.#replay = replay;
    this.#replaying = true;
  }

  #hold(replay: Replay<T>, event: T): void {
    if (this.#extended) return;
    if (this.#held.length < this.capacity) return void this.#held.push(event);
    this.#held = [];
    this.#extended = true;
    replay.extend();
  }

  /**
   * Ends the stream with an error: its reader learns that events were lost
   * instead of seeing an ordinary end. Discards what was queued.
   *
   * @param error What the reader's next read rejects with.
   */
  fail(error: Error): void {
    if (this.#done) return;
    this.#ended = true;
    this.#done = true;
    this.#buffer = [];
    this.#head = 0;
    this.#replaying = false;
    this.#held = [];
    this.#controller.error(error);
    this.#freeRoom();
  }

  /**
   * Ends the stream once the queued events are read. Idempotent. A replay
   * still unread stops at the log's end now; up to {@linkcode END_PAGES}
   * pages of it are read at once (the end may be the store's closing, after
   * which its log cannot be read), the rest as the reader reads.
   */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const replay = this.#replay;
    if (this.#replaying && replay !== undefined) {
      replay.stop();
      try {
        for (let i = 0; i < END_PAGES && this.#replaying; i++) {
          this.#readPage(replay);
        }
      } catch (error) {
        return this.fail(asError(error));
      }
    }
    if (this.#drained()) this.#close();
  }

  // Reads one page into the buffer; `false` when it had no event for this
  // queue. The end of the replay hands over the events held meanwhile.
  #readPage(replay: Replay<T>): boolean {
    const page = replay.next();
    if (page === undefined) {
      this.#endReplay();
      return true;
    }
    for (const event of page) this.#buffer.push(event);
    return page.length > 0;
  }

  #endReplay(): void {
    this.#replaying = false;
    for (const event of this.#held) this.#buffer.push(event);
    this.#held = [];
  }

  #drained(): boolean {
    return this.#head === this.#buffer.length && !this.#replaying;
  }

  #add(event: T): void {
    if (this.#wanted) {
      this.#wanted = false;
      this.#controller.enqueue(event);
    } else {
      this.#buffer.push(event);
    }
  }

  // Called by the stream when a read finds nothing in its own queue.
  #pull(): void | Promise<void> {
    if (this.#done) return;
    if (this.#replaying && this.#head === this.#buffer.length) {
      return this.#readReplay(this.#replay as Replay<T>);
    }
    const buffer = this.#buffer;
    if (this.#head === buffer.length) {
      if (this.#ended) this.#close();
      else this.#wanted = true;
      return;
    }
    const event = buffer[this.#head] as T;
    // Handed-out slots are released in bulk, never one shift per read.
    if (++this.#head === buffer.length) {
      this.#buffer = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= buffer.length) {
      this.#buffer = buffer.slice(this.#head);
      this.#head = 0;
    }
    this.#controller.enqueue(event);
    if (this.#ended && this.#drained()) this.#close();
    this.#freeRoom();
  }

  // Reads pages until one has events for this queue or the replay ends,
  // yielding to the event loop when empty pages (a filter that matches
  // little) have held it for SCAN_MS. Called with an empty buffer only, so a
  // failure (the store closed, the log trimmed) loses no queued event.
  async #readReplay(replay: Replay<T>): Promise<void> {
    let start = performance.now();
    for (;;) {
      try {
        if (this.#readPage(replay)) break;
      } catch (error) {
        return this.fail(asError(error));
      }
      if (performance.now() - start < SCAN_MS) continue;
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (this.#done) return;
      // end() may have read the rest meanwhile.
      if (!this.#replaying) break;
      start = performance.now();
    }
    return this.#pull();
  }

  #close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller.close();
    this.#freeRoom();
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
