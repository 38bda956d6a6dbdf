/**
 * Server-Sent Events from a store: {@linkcode eventStreamResponse} turns a
 * watch into a `text/event-stream` `Response` that a browser's
 * `EventSource` reads, resumes after a reconnect from the last `id` it saw,
 * and that never drops an event silently.
 *
 * Every event frame carries `id: <seq>` (the change-log seq on a file store,
 * the revision on etcd), `event: <type>` and `data: <the StoreEvent as one
 * line of JSON>`. A reconnecting `EventSource` sends the last id back as
 * `Last-Event-ID`, and the stream replays exactly the changes after it from
 * the store's log, then continues live. When the log no longer holds that
 * position (trimmed by retention, a compacted etcd revision, a store without
 * the change feed), the stream says so with one `event: resync` and
 * continues live: the client refetches.
 *
 * A client that stops reading costs the server one watcher's queue: the
 * helper stops reading the watcher, which drops and counts, and when the
 * client reads again it catches up from the log after the last id it was
 * sent.
 *
 * @example Serve a group's changes
 * ```ts
 * import { Store } from "@core/store";
 * import { eventStreamResponse } from "@core/store/sse";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const response = eventStreamResponse(store, "config", "*") as Response;
 * store.set("config", "theme", "dark");
 * const reader = response.body!.pipeThrough(new TextDecoderStream())
 *   .getReader();
 * let text = "";
 * while (!text.includes("event: set")) text += (await reader.read()).value;
 * assert.match(text, /data: \{"type":"set","group":"config","key":"theme"/);
 * await reader.cancel();
 * ```
 *
 * @module
 */

import { StoreClosedError, StoreError } from "./errors.ts";
import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import type { WatchOptions } from "./store.ts";

// The types this entry's API names, for callers that import only it.
export type {
  EventType,
  GroupSnapshot,
  StoreEvent,
  Watcher,
  WatchOptions,
} from "../mod.ts";

/**
 * Options for {@linkcode eventStreamResponse}.
 *
 * @example Resume from an explicit position, with a faster heartbeat
 * ```ts
 * import { Store } from "@core/store";
 * import { eventStreamResponse, type EventStreamOptions } from "@core/store/sse";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const stop = new AbortController();
 * const options: EventStreamOptions = {
 *   heartbeatMs: 5_000,
 *   signal: stop.signal,
 * };
 * const response = eventStreamResponse(store, "g", "*", options) as Response;
 * assert.equal(response.headers.get("cache-control"), "no-store");
 * stop.abort(); // the stream ends, and its watcher is released
 * assert.equal((await response.body!.getReader().read()).done, true);
 * ```
 */
export interface EventStreamOptions {
  /**
   * The incoming request: its `Last-Event-ID` header is the position to
   * resume after, and its `signal` ends the stream.
   */
  request?: Request | undefined;
  /**
   * The position to resume after (an event's `seq`), instead of the
   * request's `Last-Event-ID` header.
   */
  lastEventId?: string | undefined;
  /**
   * Ends the stream too when it aborts: pass the server's shutdown signal,
   * since a server waits for open responses to finish.
   */
  signal?: AbortSignal | undefined;
  /**
   * How long, in milliseconds, the stream may stay silent before it sends
   * a comment line, so that proxies keep the connection; `0` never does.
   * Default 15,000.
   */
  heartbeatMs?: number | undefined;
  /**
   * Starts the stream with the group's entries and their position, as an
   * `event: snapshot` frame (`{"entries": {key: value, …}, "position":
   * p}`), read at one instant so that the changes after it follow with
   * neither a gap nor a repeat. Needs one group (not `"*"`); with a key,
   * only that key's entry. Ignored when resuming. Default `false`.
   */
  snapshot?: boolean | undefined;
}

/**
 * What {@linkcode eventStreamResponse} uses of a store: its `watch`, and
 * `snapshot` (or, lacking it, `getAll`) for `options.snapshot`. Every
 * `Store`, `ScopedStore`, `AsyncStore` (`toAsync`, `EtcdStore`) and
 * `AsyncScopedStore` is one.
 *
 * @example A store is an event source
 * ```ts
 * import { Store } from "@core/store";
 * import type { EventStreamStore } from "@core/store/sse";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const source: EventStreamStore = store;
 * assert.equal(typeof source.watch, "function");
 * ```
 */
export interface EventStreamStore {
  /** As `Store.prototype.watch`. */
  watch(group: string, key: string, options?: WatchOptions): Watcher;
  /** As `Store.prototype.snapshot`, or its asynchronous counterpart. */
  snapshot?(group: string): GroupSnapshot | Promise<GroupSnapshot>;
  /** As `Store.prototype.getAll`, or its asynchronous counterpart. */
  getAll(group: string): Map<string, string> | Promise<Map<string, string>>;
}

type Source = EventStreamStore;

const OP = "stream events";
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Frames gathered into one chunk, unless one revision's events need more. */
const BATCH = 256;
/** What a watcher queues by default: a stalled client costs this much. */
const WATCHER_CAPACITY = 16;
/** What a watcher reading a backlog queues, so that it rarely drops. */
const CATCH_UP_CAPACITY = 8_192;
/** Set once, in the first chunk: how long EventSource waits to reconnect. */
const RETRY_MS = 1_000;
const HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  "x-accel-buffering": "no",
} as const;
const encoder = new TextEncoder();

/**
 * Streams the events of `group` and `key` (`"*"` for every group or every
 * key, as `watch`) as Server-Sent Events. The response is lossless: each
 * event is framed with its position as `id:`, a client resuming with
 * `Last-Event-ID` receives exactly the changes after it, a client that
 * reads slowly catches up from the log instead of losing events, and
 * whenever the log cannot fill a gap the stream sends `event: resync`.
 * Positions need the store's change log: a file store opened with
 * `changeFeed: true`, or etcd; without one, events carry no `id:`.
 *
 * The stream ends when the request's signal or `options.signal` aborts,
 * when the client goes away, and when the store closes; its watcher is then
 * released.
 *
 * @example A route for `Deno.serve`
 * ```ts
 * import { Store } from "@core/store";
 * import { eventStreamResponse } from "@core/store/sse";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const handler = (request: Request) =>
 *   eventStreamResponse(store, "config", "*", { request, snapshot: true });
 * const client = new AbortController();
 * const response = await handler(
 *   new Request("http://localhost/events", { signal: client.signal }),
 * );
 * assert.equal(
 *   response.headers.get("content-type"),
 *   "text/event-stream; charset=utf-8",
 * );
 * const reader = response.body!.pipeThrough(new TextDecoderStream())
 *   .getReader();
 * let text = "";
 * while (!text.includes("event: snapshot")) text += (await reader.read()).value;
 * assert.match(text, /data: \{"entries":\{\},"position":null\}/);
 * client.abort();
 * await reader.cancel();
 * ```
 *
 * @param store A `Store`, `ScopedStore`, `AsyncStore` (such as `toAsync`'s
 * or an `EtcdStore`) or `AsyncScopedStore`.
 * @param group The group, or `"*"` for every group.
 * @param key The key, or `"*"` for every key.
 * @param options The request, a resume position, a signal, the heartbeat
 * and whether to start with a snapshot.
 * @returns The response; a promise of it when the snapshot is read from an
 * asynchronous store.
 * @throws {TypeError} When an argument or option has the wrong type, or
 * `snapshot` is asked for every group.
 * @throws {RangeError} When `heartbeatMs` is not an integer from 0 to
 * 2,147,483,647.
 * @throws {StoreClosedError} When the store is closed.
 */
export function eventStreamResponse(
  store: EventStreamStore,
  group: string,
  key: string,
  options?: EventStreamOptions,
): Response | Promise<Response> {
  const source = checkSource(store);
  text("group", group);
  text("key", key);
  const settings = readOptions(options);
  if (settings.snapshot && group === "*") {
    throw new TypeError(
      `Cannot ${OP}: snapshot needs one group, received "*"`,
    );
  }
  const stream = new EventStream(source, group, key, settings);
  const started = stream.start();
  if (started instanceof Promise) return started.then(() => stream.response);
  return stream.response;
}

interface Settings {
  resume: string | undefined;
  signals: AbortSignal[];
  heartbeatMs: number;
  snapshot: boolean;
}

function checkSource(store: unknown): Source {
  const s = store as Partial<Source> | null;
  if (
    typeof s !== "object" || s === null || typeof s.watch !== "function" ||
    typeof s.getAll !== "function"
  ) {
    throw new TypeError(
      `Cannot ${OP}: store must be a Store, ScopedStore, AsyncStore or AsyncScopedStore, received ${
        s === null ? "null" : typeof s
      }`,
    );
  }
  return s as Source;
}

function text(name: string, value: unknown): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Cannot ${OP}: ${name} must be a string, received ${
        value === null ? "null" : typeof value
      }`,
    );
  }
}

function readOptions(options: EventStreamOptions | undefined): Settings {
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${OP}: options must be an object, received ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  const { request, lastEventId, signal, heartbeatMs, snapshot } = options;
  if (request !== undefined && !(request instanceof Request)) {
    throw new TypeError(`Cannot ${OP}: request must be a Request`);
  }
  if (lastEventId !== undefined) text("lastEventId", lastEventId);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${OP}: signal must be an AbortSignal`);
  }
  if (snapshot !== undefined && typeof snapshot !== "boolean") {
    throw new TypeError(
      `Cannot ${OP}: snapshot must be a boolean, received ${typeof snapshot}`,
    );
  }
  const heartbeat = heartbeatMs ?? 15_000;
  if (typeof heartbeat !== "number") {
    throw new TypeError(
      `Cannot ${OP}: heartbeatMs must be a number, received ${typeof heartbeat}`,
    );
  }
  if (
    !Number.isInteger(heartbeat) || heartbeat < 0 || heartbeat > MAX_TIMER_MS
  ) {
    throw new RangeError(
      `Cannot ${OP}: heartbeatMs must be an integer from 0 to ${MAX_TIMER_MS}, received ${heartbeat}`,
    );
  }
  const header = request?.headers.get("last-event-id") ?? undefined;
  const resume = (lastEventId ?? header)?.trim();
  return {
    resume: resume === "" ? undefined : resume,
    signals: [request?.signal, signal].filter((s) => s !== undefined),
    heartbeatMs: heartbeat,
    snapshot: snapshot === true,
  };
}

/** A position the log may replay from: a non-negative safe integer. */
function position(id: string): number | undefined {
  if (!/^[0-9]{1,16}$/.test(id)) return undefined;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * One event's frame: the data is JSON, so no value can end the frame. The
 * fields come in one order whichever backend built the event: `type`,
 * `group`, `key`, `value`, `expiresAt`, `timestamp`, `origin`, `seq`.
 */
function eventFrame(event: StoreEvent, withId: boolean): string {
  const id = withId && event.seq !== undefined ? `id: ${event.seq}\n` : "";
  const data: Partial<StoreEvent> = {
    type: event.type,
    group: event.group,
    key: event.key,
  };
  if (event.value !== undefined) data.value = event.value;
  if (event.expiresAt !== undefined) data.expiresAt = event.expiresAt;
  data.timestamp = event.timestamp;
  data.origin = event.origin;
  if (event.seq !== undefined) data.seq = event.seq;
  return `${id}event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function snapshotFrame(snapshot: GroupSnapshot, key: string): string {
  const entries: Record<string, string> = {};
  for (const [k, v] of snapshot.entries) {
    if (key === "*" || k === key) entries[k] = v;
  }
  const at = snapshot.position;
  const data = JSON.stringify({ entries, position: at ?? null });
  return `${
    at === undefined ? "" : `id: ${at}\n`
  }event: snapshot\ndata: ${data}\n\n`;
}

function resyncFrame(reason: string): string {
  return `event: resync\ndata: ${JSON.stringify({ reason })}\n\n`;
}

type Read = ReadableStreamReadResult<StoreEvent>;
type Next = StoreEvent[] | "heartbeat" | "end" | "failed";

/** One client's stream: a watcher, reopened from the log when needed. */
class EventStream {
  readonly response: Response;
  #source: Source;
  #group: string;
  #key: string;
  #settings: Settings;
  #watcher: Watcher | undefined;
  #reader: ReadableStreamDefaultReader<StoreEvent> | undefined;
  #pending: Promise<Read> | undefined;
  /** The position of the last complete frame sent, when known. */
  #last: number | undefined;
  /** Frames to send before the next events: retry, snapshot, resync. */
  #head: string[] = [`retry: ${RETRY_MS}\n\n`];
  /** Whether the last batch emptied the watcher's queue. */
  #drained = false;
  #ended = false;
  /** When the last chunk was sent, for the heartbeat. */
  #sentAt = performance.now();
  /** Ends the read in progress with a heartbeat; undefined between reads. */
  #beat: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #unlisten: (() => void)[] = [];

  constructor(source: Source, group: string, key: string, settings: Settings) {
    this.#source = source;
    this.#group = group;
    this.#key = key;
    this.#settings = settings;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      cancel: () => this.#end(),
    }, { highWaterMark: 1 });
    this.response = new Response(body, { headers: HEADERS });
  }

  /**
   * Opens the first watcher: after the resume position, after a snapshot,
   * or live. Errors of the store (closed) reach the caller.
   *
   * @returns A promise when an asynchronous snapshot is read first.
   */
  start(): void | Promise<void> {
    for (const signal of this.#settings.signals) {
      if (signal.aborted) return this.#end();
      const end = () => this.#end();
      signal.addEventListener("abort", end, { once: true });
      this.#unlisten.push(() => signal.removeEventListener("abort", end));
    }
    const { resume, snapshot } = this.#settings;
    if (resume !== undefined) {
      const at = position(resume);
      if (at !== undefined && this.#tryWatch(at)) return;
      this.#head.push(resyncFrame(
        at === undefined
          ? `Last-Event-ID ${
            JSON.stringify(resume)
          } is no position of this store`
          : `the change log no longer holds the changes after ${at}`,
      ));
    }
    if (snapshot) return this.#fromSnapshot();
    this.#watch(undefined);
  }

  // Opens a watcher after `since`; false when the log cannot replay it.
  #tryWatch(since: number, capacity?: number): boolean {
    try {
      this.#watch(since, capacity);
      return true;
    } catch (error) {
      if (error instanceof StoreClosedError) throw error;
      // No change log (a TypeError), trimmed (a StoreError), or ahead of
      // the log (a RangeError: a position of another store).
      if (
        error instanceof TypeError || error instanceof RangeError ||
        error instanceof StoreError
      ) return false;
      throw error;
    }
  }

  #watch(since: number | undefined, capacity?: number): void {
    const options: WatchOptions = {};
    if (since !== undefined) options.since = since;
    if (capacity !== undefined) options.capacity = capacity;
    const watcher = this.#source.watch(this.#group, this.#key, options);
    this.#release();
    this.#watcher = watcher;
    this.#reader = watcher.stream.getReader();
    this.#last = since;
  }

  #release(): void {
    const reader = this.#reader;
    this.#reader = undefined;
    this.#pending = undefined;
    this.#watcher = undefined;
    // Cancelling the stream unregisters its watcher.
    reader?.cancel().catch(() => {});
  }

  #fromSnapshot(): void | Promise<void> {
    const source = this.#source;
    if (source.snapshot === undefined) {
      // Without positions: watch first, then read. Every event overwrites
      // a key or a group, so the few the entries already include leave the
      // client's copy equal to the store's.
      this.#watch(undefined);
      const send = (entries: Map<string, string>) =>
        void this.#head.push(
          snapshotFrame({ entries, position: undefined }, this.#key),
        );
      const entries = source.getAll(this.#group);
      return entries instanceof Promise ? entries.then(send) : send(entries);
    }
    const use = (snapshot: GroupSnapshot) => {
      this.#head.push(snapshotFrame(snapshot, this.#key));
      const at = snapshot.position;
      if (at === undefined) return this.#watch(undefined);
      if (this.#tryWatch(at)) return;
      // Trimmed between the two reads: a burst beyond the retention.
      this.#head.push(resyncFrame("the change log moved past the snapshot"));
      this.#watch(undefined);
    };
    const snapshot = source.snapshot(this.#group);
    return snapshot instanceof Promise ? snapshot.then(use) : use(snapshot);
  }

  async #pull(): Promise<void> {
    try {
      while (!this.#ended) {
        if (this.#head.length > 0) return this.#send(this.#head.join(""));
        const next = await this.#next();
        if (this.#ended) return;
        if (next === "heartbeat") return this.#send(": heartbeat\n\n");
        if (next === "end") return this.#end();
        if (next === "failed") {
          await this.#resync("the store no longer holds the position");
        } else if ((this.#watcher as Watcher).dropped > 0) {
          // The client read more slowly than the watcher queues: after its
          // first drop the queue has a gap, so read it again from the log.
          await this.#catchUp(next);
        } else {
          this.#send(this.#frames(next));
          return this.#settle();
        }
      }
    } catch (error) {
      // The store failed (closed under the stream, say): end the response.
      this.#end();
      if (!(error instanceof StoreError)) throw error;
    }
  }

  #send(text: string): void {
    this.#sentAt = performance.now();
    this.#head = [];
    this.#controller.enqueue(encoder.encode(text));
  }

  #frames(batch: StoreEvent[]): string {
    let out = "";
    for (let i = 0; i < batch.length; i++) {
      const event = batch[i] as StoreEvent;
      // Events of one etcd revision share its seq: only the last carries
      // the id, so that a resume never skips the rest of the revision.
      const last = i === batch.length - 1 || batch[i + 1]?.seq !== event.seq;
      out += eventFrame(event, last);
      if (last && event.seq !== undefined) this.#last = event.seq;
    }
    return out;
  }

  // Caught up after a catch-up: back to a watcher of the default size,
  // from the last event sent, so a client stalled later costs only that.
  #settle(): void {
    const watcher = this.#watcher;
    if (
      !this.#drained || watcher === undefined ||
      watcher.capacity === WATCHER_CAPACITY || this.#last === undefined
    ) return;
    this.#tryWatch(this.#last);
  }

  async #catchUp(batch: StoreEvent[]): Promise<void> {
    // Nothing sent yet from a live watcher: the batch is the head of its
    // queue, so the log replays from just before the first event.
    const first = batch[0]?.seq;
    const since = this.#last ??
      (first !== undefined && first > 0 ? first - 1 : undefined);
    // A roomy queue while the backlog is read, so that the writes made
    // meanwhile are not dropped again; back to the default once caught up.
    if (since !== undefined && this.#tryWatch(since, CATCH_UP_CAPACITY)) {
      return;
    }
    await this.#resync(
      since === undefined
        ? "the client fell behind before any position was sent"
        : `the change log no longer holds the changes after ${since}`,
    );
  }

  async #resync(reason: string): Promise<void> {
    this.#release();
    this.#head.push(resyncFrame(reason));
    if (this.#settings.snapshot) await this.#fromSnapshot();
    else this.#watch(undefined);
  }

  // The events already queued, as one batch; "heartbeat" after a silence,
  // "end" when the watcher ended, "failed" when its stream errored.
  async #next(): Promise<Next> {
    const reader = this.#reader;
    if (reader === undefined) return "end";
    const pending = this.#pending ?? reader.read();
    this.#pending = pending;
    let first: Read | "heartbeat";
    try {
      first = await this.#wait(pending);
    } catch {
      this.#pending = undefined;
      return this.#ended ? "end" : "failed";
    }
    if (first === "heartbeat") return first;
    this.#pending = undefined;
    if (first.done) return "end";
    const batch = [first.value];
    while (batch.length < BATCH || batch.at(-1)?.seq === batch.at(-2)?.seq) {
      const next = reader.read();
      // A read of an event already queued settles within a few microtasks
      // (two with the watcher's queue): wait that long, no timer and no
      // race; still unsettled means the queue is empty (or failed: the next
      // pull reads that).
      let got: Read | undefined;
      next.then((read) => void (got = read), () => {});
      for (let tick = 0; tick < 4 && got === undefined; tick++) await null;
      if (got === undefined || got.done) {
        // Read by the next pull: a later event, the end or the failure.
        this.#pending = next;
        this.#drained = got === undefined;
        break;
      }
      batch.push(got.value);
    }
    return batch;
  }

  #wait(pending: Promise<Read>): Promise<Read | "heartbeat"> {
    if (this.#settings.heartbeatMs === 0) return pending;
    this.#arm();
    return new Promise((resolve, reject) => {
      const beat = () => resolve("heartbeat");
      this.#beat = beat;
      const done = () => {
        if (this.#beat === beat) this.#beat = undefined;
      };
      pending.then((read) => {
        done();
        resolve(read);
      }, (error) => {
        done();
        reject(error);
      });
    });
  }

  // One timer per stream, due when the stream will have been silent for
  // heartbeatMs, re-armed only when it fires: not one timer per event.
  #arm(): void {
    if (this.#timer !== undefined) return;
    const ms = this.#settings.heartbeatMs;
    const due = Math.max(0, ms - (performance.now() - this.#sentAt));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const beat = this.#beat;
      // No read in progress: the next one arms the timer again.
      if (this.#ended || beat === undefined) return;
      if (performance.now() - this.#sentAt < ms) return this.#arm();
      this.#beat = undefined;
      beat();
    }, due);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#beat = undefined;
    for (const unlisten of this.#unlisten) unlisten();
    this.#unlisten = [];
    this.#release();
    try {
      this.#controller.close();
    } catch {
      // Already closed or cancelled by the client.
    }
  }
}
