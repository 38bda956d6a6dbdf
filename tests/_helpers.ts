/** Small test helpers shared by the suites. */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  type AsyncStore,
  ScopedStore,
  Store,
  StoreError,
  type StoreEvent,
  type StoreOptions,
  type Watcher,
} from "@core/store";

/** A temporary directory removed (with its files) at the end of a `using`. */
export interface TempDir extends Disposable {
  readonly path: string;
  file(name: string): string;
}

/** Creates a temporary directory for one test. */
export function tempDir(): TempDir {
  const path = Deno.makeTempDirSync({ prefix: "core-store-test-" });
  return {
    path,
    file: (name) => `${path}/${name}`,
    [Symbol.dispose]() {
      Deno.removeSync(path, { recursive: true });
    },
  };
}

/** A clock the test moves by hand. */
export class FakeClock {
  now: number;
  constructor(start = 1_700_000_000_000) {
    this.now = start;
  }
  readonly fn = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** Runs one SQL query on a file through its own raw connection. */
export function rawQuery(
  path: string,
  sql: string,
  ...params: (string | number | null)[]
): Record<string, unknown>[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(sql).all(...params).map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

/**
 * Resolves with the next value a callback registration receives that
 * `accept` takes. With `ms`, rejects if none came within `ms`; its timer
 * also holds the event loop open meanwhile.
 */
export function nextValue<T>(
  register: (fn: (value: T) => void) => () => void,
  accept: (value: T) => boolean = () => true,
  ms?: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = ms === undefined ? undefined : setTimeout(() => {
      off();
      reject(new Error(`no matching value within ${ms} ms`));
    }, ms);
    const off = register((value) => {
      if (!accept(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/**
 * Awaits a promise that only an unref'd timer (such as the store's purge)
 * can settle: holds the event loop open meanwhile, as a real service would.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1_000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

/**
 * Writes `n` entries with the TTLs `ttlOf(i)`, each keyed by its deadline,
 * and waits for their expire events.
 *
 * @returns How late each expire event came after its deadline, in ms, in the
 * order they came (negative: early).
 */
export async function expireLateness(
  store: Pick<AsyncStore, "onChange" | "setWithTTL">,
  n: number,
  ttlOf: (i: number) => number,
): Promise<number[]> {
  const late: number[] = [];
  const done = new Promise<void>((resolve) => {
    store.onChange((e) => {
      if (e.type !== "expire") return;
      late.push(Date.now() - Number(e.key));
      if (late.length === n) resolve();
    });
  });
  for (let i = 0; i < n; i++) {
    const ttl = ttlOf(i);
    // The deadline the store takes is at least this one.
    await store.setWithTTL("t", String(Date.now() + ttl), "v", ttl);
  }
  await keepAlive(done);
  return late;
}

/** An in-memory store on `clock` with the background purge off. */
export function clockedStore(
  clock: FakeClock = new FakeClock(),
  options: StoreOptions = {},
): Store {
  return new Store(":memory:", {
    clock: clock.fn,
    purgeIntervalMs: 0,
    ...options,
  });
}

/** Unregisters `watcher` and returns every event it still held. */
export function drain(
  source: { unwatch(watcher: Watcher): void },
  watcher: Watcher,
): Promise<StoreEvent[]> {
  source.unwatch(watcher);
  return Array.fromAsync(watcher);
}

/** `type group/key=value` (no `=value` without one), for order checks. */
export function brief(event: StoreEvent): string {
  const value = event.value === undefined ? "" : `=${event.value}`;
  return `${event.type} ${event.group}/${event.key}${value}`;
}

/** Records {@linkcode brief} of every event `source` calls back with. */
export function record(
  source: { onChange(fn: (event: StoreEvent) => void): unknown },
): string[] {
  const seen: string[] = [];
  source.onChange((event) => seen.push(brief(event)));
  return seen;
}

/**
 * Catches what `reportError()` reports until disposed: uncaught, each would
 * end the test process.
 */
export function catchReportedErrors(): { errors: unknown[] } & Disposable {
  const errors: unknown[] = [];
  const listener = (event: ErrorEvent) => {
    event.preventDefault();
    errors.push(event.error);
  };
  globalThis.addEventListener("error", listener);
  return {
    errors,
    [Symbol.dispose]() {
      globalThis.removeEventListener("error", listener);
    },
  };
}

/** Open file descriptors of this process (Linux), to catch a leaked handle. */
export function openFds(): number | undefined {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].length;
  } catch {
    return undefined;
  }
}

/** Lets promises, stream callbacks and due timers run. */
export function yieldNow(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Every row and the quota counts of a file, compactly (values may be huge). */
export function dump(path: string): string {
  const bytes = (column: string) =>
    `hex(substr(CAST(${column} AS BLOB), 1, 48)) AS ${column}, length(CAST(${column} AS BLOB)) AS ${column}_bytes`;
  return JSON.stringify([
    rawQuery(
      path,
      `SELECT ${bytes("group_name")}, ${bytes("entry_key")}, ${
        bytes("entry_value")
      }, expires_at FROM entries ORDER BY group_name, entry_key`,
    ),
    rawQuery(path, "SELECT * FROM kv_namespace_stats ORDER BY ns"),
  ]);
}

/** A file store holding a little of everything, as {@linkcode populated} opens it. */
export interface Populated extends Disposable {
  readonly store: Store;
  /** `acme`, with maxKeys 2 and maxGroups 1, both used up. */
  readonly scope: ScopedStore;
  readonly clock: FakeClock;
  /** Every event the store emitted since the fixture was made. */
  readonly events: StoreEvent[];
  /** Makes the clock return what `fn` returns (or throws), or heals it. */
  breakClock(fn: (() => unknown) | undefined): void;
}

/** A file store holding a little of everything, with its events recorded. */
export function populated(path: string): Populated {
  const clock = new FakeClock();
  let broken: (() => unknown) | undefined;
  const store = new Store(path, {
    clock: () => (broken === undefined ? clock.now : broken()) as number,
    purgeIntervalMs: 0,
  });
  store.set("g", "k", "v");
  store.setWithTTL("g", "t", "soon", 1_000);
  store.set("__proto__", "constructor", "x");
  const scope = new ScopedStore(store, "acme", { maxKeys: 2, maxGroups: 1 });
  scope.set("x", "a", "1");
  scope.set("x", "b", "2");
  const events: StoreEvent[] = [];
  store.onChange((event) => events.push(event));
  return {
    store,
    scope,
    clock,
    events,
    breakClock(fn) {
      broken = fn;
    },
    [Symbol.dispose]() {
      store.close();
    },
  };
}

/**
 * Asserts that `fn` throws what `expected` accepts, and that nothing was
 * written: the file's rows and quota counts are the same and no event was
 * emitted.
 */
export function refuses(
  fixture: Populated,
  path: string,
  fn: () => unknown,
  expected: (error: unknown) => boolean,
  what: string,
): void {
  const before = dump(path);
  fixture.events.length = 0;
  let threw: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (error) {
    threw = error;
  }
  assert.ok(
    threw !== undefined,
    `${what}: did not throw (returned ${String(returned)})`,
  );
  assert.ok(
    expected(threw),
    `${what}: threw ${
      threw instanceof Error ? `${threw.name}: ${threw.message}` : threw
    }`,
  );
  assert.equal(dump(path), before, `${what}: the file changed`);
  assert.deepEqual(fixture.events, [], `${what}: emitted events`);
}

/** Expects `promise` to reject as `fn` throws on a local `Store`. */
export async function sameError(
  promise: Promise<unknown>,
  fn: (store: Store) => unknown,
): Promise<void> {
  using local = new Store();
  let expected: unknown;
  try {
    fn(local);
  } catch (error) {
    expected = error;
  }
  assert.ok(expected instanceof Error, "the local store must throw");
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.equal(error.constructor, expected.constructor);
    assert.equal(error.message, expected.message);
    return true;
  });
}

/** One Server-Sent Events frame, as an `EventSource` would dispatch it. */
export interface SseFrame {
  /** The `id:` line, when the frame has one. */
  id?: string;
  /** The `event:` line; `"message"` without one. */
  event: string;
  /** The `data:` lines, joined by newlines. */
  data: string;
}

/**
 * Parses a `text/event-stream` body as the HTML standard says (lines end
 * at CR, LF or CRLF), frame by frame; comments and `retry:` are counted.
 */
export class SseReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #pending: Promise<ReadableStreamReadResult<string>> | undefined;
  #frames: SseFrame[] = [];
  #current: { id?: string; event?: string; data: string[] } = { data: [] };
  /** Comment lines (heartbeats) seen so far. */
  comments = 0;
  /** Every `retry:` value seen, in order. */
  retries: string[] = [];
  /** Whether the body ended. */
  done = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Reads until `n` frames arrived (or the body ends; or `ms` passes). */
  async take(n: number, ms = 10_000): Promise<SseFrame[]> {
    const deadline = Date.now() + ms;
    while (this.#frames.length < n && !this.done) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`SseReader: ${this.#frames.length} of ${n} frames`);
      }
      // A read cut short by the deadline is kept for the next call.
      const pending = this.#pending ?? this.#reader.read();
      this.#pending = pending;
      let timer: ReturnType<typeof setTimeout> | undefined;
      // A connection cut (a server shutting down) ends the body too.
      const read = await Promise.race([
        pending.catch(() => ({ done: true as const, value: undefined })),
        new Promise<"late">((r) => timer = setTimeout(() => r("late"), left)),
      ]).finally(() => clearTimeout(timer));
      if (read === "late") continue;
      this.#pending = undefined;
      if (read.done) this.done = true;
      else this.#feed(read.value);
    }
    return this.#frames.splice(0, n);
  }

  /** Reads the next frame. */
  async next(ms?: number): Promise<SseFrame | undefined> {
    return (await this.take(1, ms))[0];
  }

  /** Reads until the body ends, returning the frames left. */
  async rest(ms = 10_000): Promise<SseFrame[]> {
    const deadline = Date.now() + ms;
    while (!this.done && Date.now() < deadline) {
      await this.take(this.#frames.length + 1, deadline - Date.now())
        .then((got) => this.#frames.unshift(...got), () => {});
    }
    return this.#frames.splice(0);
  }

  /** Cancels the body, as a client going away. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  #feed(text: string): void {
    this.#buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      // A lone CR at the end may be the start of a CRLF.
      if (
        match === null || (match[0] === "\r" && match.index ===
            this.#buffer.length - 1)
      ) return;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      this.#line(line);
    }
  }

  #line(line: string): void {
    const frame = this.#current;
    if (line === "") {
      if (frame.data.length > 0 || frame.event !== undefined) {
        const out: SseFrame = {
          event: frame.event ?? "message",
          data: frame.data.join("\n"),
        };
        if (frame.id !== undefined) out.id = frame.id;
        this.#frames.push(out);
      }
      this.#current = { data: [] };
      return;
    }
    if (line.startsWith(":")) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") frame.data.push(value);
    else if (field === "event") frame.event = value;
    else if (field === "id") frame.id = value;
    else if (field === "retry") this.retries.push(value);
  }
}

/** The StoreEvent a frame carries, parsed. */
export function frameEvent(frame: SseFrame): StoreEvent {
  return JSON.parse(frame.data) as StoreEvent;
}

/**
 * Reads a resumed watcher's stream until it fails because the change log no
 * longer holds the changes after `seq` (any seq when omitted), and returns
 * the events read before; the check fails if the stream ends or fails
 * otherwise, or none of that happens within 10 s.
 */
export async function readUntilTrimmed(
  reader: ReadableStreamDefaultReader<StoreEvent>,
  seq?: number,
): Promise<StoreEvent[]> {
  const events: StoreEvent[] = [];
  const deadline = setTimeout(() => reader.cancel(), 10_000);
  const after = seq === undefined ? "seq \\d+" : `seq ${seq}\\b`;
  try {
    await assert.rejects(
      async () => {
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          events.push(r.value);
        }
      },
      (error) =>
        error instanceof StoreError &&
        new RegExp(`no longer holds the changes after ${after}`).test(
          error.message,
        ),
    );
  } finally {
    clearTimeout(deadline);
  }
  return events;
}

/** What one racing process reports: its results, in the order it got them. */
export interface RaceResults {
  results: readonly (number | string)[];
}

/**
 * Checks that racing processes were handed the counts 1 to `total` each
 * exactly once, every process its own in rising order.
 */
export function assertCountsOnce(
  reports: readonly RaceResults[],
  total: number,
): void {
  const all = reports.flatMap((r) => r.results as number[]);
  assert.equal(all.length, total);
  assert.deepEqual(
    all.sort((a, b) => a - b),
    Array.from({ length: total }, (_, i) => i + 1),
  );
  for (const r of reports) {
    const own = r.results as number[];
    assert.ok(own.every((n, i) => i === 0 || n > own[i - 1]!), "rising");
  }
}

/**
 * Which racing process (its index) won each key it reports, checking that
 * none was won twice.
 */
export function winnersOf(
  reports: readonly RaceResults[],
): Map<string, number> {
  const winners = new Map<string, number>();
  reports.forEach((r, id) => {
    for (const key of r.results as string[]) {
      assert.equal(winners.get(key), undefined, `${key} won twice`);
      winners.set(key, id);
    }
  });
  return winners;
}
