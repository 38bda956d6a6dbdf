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
 * @module
 */

/** Unread events a watcher holds before it starts dropping. */
export const WATCHER_CAPACITY = 16;

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
          this.onCancel();
        },
      },
      new CountQueuingStrategy({ highWaterMark: 0 }),
    );
    // `start` runs synchronously inside the ReadableStream constructor.
    this.#controller = controller;
  }

  /**
   * Queues a live event, or counts it as dropped when the reader is
   * `capacity` events behind.
   *
   * @param event The event.
   */
  offer(event: T): void {
    if (this.#ended) return;
    if (this.#buffer.length - this.#head >= this.capacity) this.dropped++;
    else this.#add(event);
  }

  /**
   * Queues an event that must not be dropped (a replay before live events).
   *
   * @param event The event.
   */
  force(event: T): void {
    if (!this.#ended) this.#add(event);
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
    this.#controller.error(error);
  }

  /** Ends the stream once the queued events are read. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#head === this.#buffer.length) this.#close();
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
  #pull(): void {
    if (this.#done) return;
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
    if (this.#ended && this.#head === this.#buffer.length) this.#close();
  }

  #close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller.close();
  }
}
