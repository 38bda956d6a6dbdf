/**
 * The bounded queue behind one {@linkcode Watcher}: a `ReadableStream` that
 * never makes a writer wait. Kept apart from the public class so that the
 * hub drives it through ordinary methods.
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
  #ended = false;

  /** @param capacity Unread events held before new ones are dropped. */
  constructor(capacity = WATCHER_CAPACITY) {
    this.capacity = capacity;
    let controller!: ReadableStreamDefaultController<T>;
    this.stream = new ReadableStream<T>(
      {
        start: (c) => {
          controller = c;
        },
        cancel: () => {
          // The stream is already closed; end() must not close it again.
          this.#ended = true;
          this.onCancel();
        },
      },
      new CountQueuingStrategy({ highWaterMark: capacity }),
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
    // desiredSize is null only for an errored stream, which we never cause.
    if ((this.#controller.desiredSize ?? 0) > 0) {
      this.#controller.enqueue(event);
    } else {
      this.dropped++;
    }
  }

  /**
   * Queues an event that must not be dropped (a replay before live events).
   *
   * @param event The event.
   */
  force(event: T): void {
    if (!this.#ended) this.#controller.enqueue(event);
  }

  /**
   * Ends the stream with an error: its reader learns that events were lost
   * instead of seeing an ordinary end. Discards what was queued.
   *
   * @param error What the reader's next read rejects with.
   */
  fail(error: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#controller.error(error);
  }

  /** Ends the stream once the queued events are read. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#controller.close();
  }
}
