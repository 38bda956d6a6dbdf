/**
 * The baseline for bench/sse.ts: the live-config demo's event stream as it
 * was before the demo moved to `eventStreamResponse`, copied from
 * `examples/live_config/server.ts` at commit bfb50c3 (the parent of b900fb1,
 * found with `git log -S "class EventStream" --oneline`), lines 164-166 and
 * 381-521: the `events` route function, the `EventStream` class, `frame` and
 * `dropComment`, unchanged but for `export` on `events` and `EventStream`.
 * It has no `id:` lines, so a client cannot resume, and a client that falls
 * 16 events behind gets `: dropped N`.
 *
 * @module
 */

import type { AsyncScopedStore, StoreEvent, Watcher } from "@core/store";

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(": heartbeat\n\n");
const CONNECTED = encoder.encode(": connected\n\n");

/**
 * The event route's answer: the tenant's events matching `?group=` and
 * `?key=`, as `text/event-stream`, until the client leaves or the app closes.
 */
export function events(
  scoped: AsyncScopedStore,
  url: URL,
  heartbeatMs: number,
  streams: Set<EventStream>,
): Response {
  const group = url.searchParams.get("group") || "*";
  const key = url.searchParams.get("key") || "*";
  const stream = new EventStream(
    scoped.watch(group, key),
    scoped.namespace.length + 1,
    heartbeatMs,
    streams,
  );
  return new Response(stream.body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // Tell buffering reverse proxies (nginx) to pass events through.
      "x-accel-buffering": "no",
    },
  });
}

/**
 * One client's event stream: reads the watcher only as fast as the client
 * reads the response, so a slow client costs writers nothing; its watcher
 * drops instead, and the gap is reported in place.
 */
export class EventStream {
  readonly body: ReadableStream<Uint8Array>;
  #reader: ReadableStreamDefaultReader<StoreEvent>;
  #watcher: Watcher;
  #prefixLength: number;
  #registry: Set<EventStream>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #timer: ReturnType<typeof setInterval> | undefined;
  #finished = false;
  /** Drops already scheduled for a `: dropped` comment. */
  #counted = 0;
  /** Pending gaps: events still to send before the comment, and its count. */
  #gaps: { before: number; count: number }[] = [];

  constructor(
    watcher: Watcher,
    prefixLength: number,
    heartbeatMs: number,
    registry: Set<EventStream>,
  ) {
    this.#watcher = watcher;
    this.#reader = watcher.stream.getReader();
    this.#prefixLength = prefixLength;
    this.#registry = registry;
    registry.add(this);
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        controller.enqueue(CONNECTED);
        this.#timer = setInterval(() => {
          // Skip the beat while the client has not read the last chunk:
          // a stalled client must not make the queue grow.
          if ((controller.desiredSize ?? 0) > 0) controller.enqueue(HEARTBEAT);
        }, heartbeatMs);
      },
      pull: (controller) => this.#pull(controller),
      cancel: () => this.#stop(),
    });
  }

  /** Ends the response gracefully (the server or app is closing). */
  end(): void {
    if (this.#finished) return;
    this.#stop();
    this.#controller.close();
  }

  async #pull(
    controller: ReadableStreamDefaultController<Uint8Array>,
  ): Promise<void> {
    // Checked right before each read, nothing being read in between: new
    // drops happened while the watcher held `capacity` unread events, all
    // of them older than the dropped ones and still queued now.
    const dropped = this.#watcher.dropped;
    if (dropped > this.#counted) {
      this.#gaps.push({
        before: this.#watcher.capacity,
        count: dropped - this.#counted,
      });
      this.#counted = dropped;
    }
    const result = await this.#reader.read();
    if (this.#finished) return;
    if (result.done) {
      // The watcher ended (the store closed): report what is left, end.
      const rest = this.#gaps.map((gap) => dropComment(gap.count)).join("");
      if (rest !== "") controller.enqueue(encoder.encode(rest));
      this.#stop();
      controller.close();
      return;
    }
    let text = frame(result.value, this.#prefixLength);
    for (const gap of this.#gaps) gap.before--;
    while (this.#gaps[0] !== undefined && this.#gaps[0].before <= 0) {
      text += dropComment(this.#gaps.shift()!.count);
    }
    controller.enqueue(encoder.encode(text));
  }

  #stop(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#timer);
    this.#registry.delete(this);
    // Cancelling the watcher's stream unwatches it; a pending read resolves
    // as done.
    this.#reader.cancel().catch(() => {});
  }
}

function frame(event: StoreEvent, prefixLength: number): string {
  const data: Record<string, unknown> = {
    type: event.type,
    group: event.group.slice(prefixLength),
    key: event.key,
  };
  if (event.value !== undefined) data.value = event.value;
  if (event.expiresAt !== undefined) data.expiresAt = event.expiresAt;
  data.timestamp = event.timestamp;
  data.origin = event.origin;
  if (event.seq !== undefined) data.seq = event.seq;
  return `event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function dropComment(count: number): string {
  return `: dropped ${count}\n\n`;
}
