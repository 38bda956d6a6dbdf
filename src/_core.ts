/**
 * What a {@linkcode Store} and its scoped views share: the engine, the event
 * hub, the clock and the timers. Every method takes arguments already
 * checked by the public class that calls it, so each argument is checked
 * once, and every write goes through {@linkcode StoreCore.prototype.write}.
 *
 * @module
 */

import {
  assertBoolean,
  assertOptions,
  assertText,
  integerArg,
  oneOf,
} from "./_check.ts";
import { StoreClosedError, StoreError } from "./errors.ts";
import type { GroupSnapshot, StoreEvent, Watcher } from "./events.ts";
import {
  type Applied,
  type AtomicMutation,
  Engine,
  type Mutation,
  PURGE_BATCH,
} from "./_engine.ts";
import { EventHub } from "./_hub.ts";
import {
  LIST_OPTIONS,
  RENDER_OPTIONS,
  type RenderLimits,
  type RenderOptions,
  type ResolvedOptions,
} from "./_options.ts";
import { scanEnd } from "./_sql.ts";
import { PurgePace, syncWal } from "./_purge_pace.ts";
import { isBusy } from "./schema.ts";
import { expiryOf, readClock, unrefTimer } from "./_time.ts";
import {
  executeTemplate,
  parseTemplate,
  type Template,
  TemplateCache,
} from "./template.ts";

/** Options of a watch, checked by the caller except for `since`. */
export interface CoreWatchOptions {
  /** Watch every group whose name starts with this instead of `group`. */
  prefix?: string | undefined;
  /** Resume after this change-log seq. */
  since?: unknown;
  /** Unread events queued before live ones are dropped. */
  capacity?: number | undefined;
}

/** Options of a listing, not yet checked. */
export interface CoreListOptions {
  limit?: unknown;
  cursor?: unknown;
  prefix?: unknown;
  reverse?: unknown;
}

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 10_000;
// setTimeout stores the delay in 32 bits; a larger one fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

function isThenable(value: unknown): boolean {
  return (typeof value === "object" || typeof value === "function") &&
    value !== null && typeof (value as { then?: unknown }).then === "function";
}

/** The shared machinery of one open store. */
export class StoreCore {
  readonly #engine: Engine;
  readonly #hub: EventHub;
  readonly #clock: () => number;
  readonly #renderLimits: Required<RenderLimits>;
  #timers: ReturnType<typeof setInterval>[] = [];
  #purging = false;
  #pace = new PurgePace();
  #templates = new TemplateCache<Template>(parseTemplate);
  /** The deadline the expiry timer is armed for; Infinity when unarmed. */
  #armedAt = Infinity;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The least wait of the expiry timer, while the clock lags real time. */
  #backoff = 0;

  /**
   * Opens the engine and starts the timers.
   *
   * @param path The store's path.
   * @param options Checked options.
   */
  constructor(path: string, options: ResolvedOptions) {
    this.#clock = options.clock;
    this.#renderLimits = options.renderLimits;
    // A clock that cannot tell the time is refused now rather than at the
    // first expiry decision, which may be on a timer with nobody to tell.
    this.now("open store");
    const onCallbackError = options.onCallbackError;
    this.#hub = new EventHub(onCallbackError ? { onCallbackError } : {});
    this.#engine = new Engine(path, {
      ...options,
      listening: () => this.#hub.active,
    });
    if (options.changeFeed && options.changePollMs > 0) {
      this.#every(options.changePollMs, () => this.#pollFeed());
    }
    if (options.purgeIntervalMs > 0 && !this.#engine.readOnly) {
      this.#every(options.purgeIntervalMs, () => this.#backgroundPurge());
    }
    if (options.changeFeed) this.#armForNext("open store");
  }

  #every(ms: number, fn: () => unknown): void {
    const timer = setInterval(fn, ms);
    unrefTimer(timer);
    this.#timers.push(timer);
  }

  /**
   * Throws when the store is closed.
   *
   * @param op The operation, for the message.
   * @throws {StoreClosedError} After close.
   */
  open(op: string): void {
    if (this.#engine.closed) throw new StoreClosedError(op);
  }

  /**
   * Reads the clock.
   *
   * @param op The operation, for the message.
   * @returns The time, in milliseconds.
   * @throws {RangeError} When the clock returns no finite number.
   */
  now(op: string): number {
    return readClock(op, this.#clock);
  }

  /**
   * The one write path: applies mutations as one transaction and hands the
   * events of what committed to the listeners.
   *
   * @param op The operation, for error messages.
   * @param now The clock.
   * @param mutations What to change.
   * @returns Per mutation, what it counts (see `Applied` in `_engine.ts`).
   */
  write(op: string, now: number, mutations: readonly Mutation[]): number[] {
    return this.#apply(op, now, mutations).counts;
  }

  #apply(op: string, now: number, mutations: readonly Mutation[]): Applied {
    // Inside a transaction a listener may still register before the COMMIT
    // that delivers these events.
    const report = this.#engine.inTransaction || this.#reaches(mutations);
    const applied = this.#engine.apply(op, now, mutations, report);
    this.#hub.publish(applied.events);
    return applied;
  }

  /**
   * Applies one atomic read-modify-write of one key (an increment, a
   * conditional set or delete) through the write path.
   *
   * @param op The operation, for error messages.
   * @param ttlMs A checked time to live for what it writes, or `undefined`.
   * @param make Builds the mutation from the expiry of `ttlMs`.
   * @returns Whether it wrote (took a live value, for getAndDelete), and the
   * value it hands back.
   */
  modify(
    op: string,
    ttlMs: number | undefined,
    make: (expiresAt: number | null) => AtomicMutation,
  ): { done: boolean; value: string | undefined } {
    const now = this.now(op);
    const expiresAt = ttlMs === undefined ? null : expiryOf(op, now, ttlMs);
    const { counts, values } = this.#apply(op, now, [make(expiresAt)]);
    const done = counts[0] === 1;
    if (done && expiresAt !== null) this.#noteDeadline(expiresAt);
    return { done, value: values[0] };
  }

  // Whether the events of these mutations could reach a listener: for one
  // key's write, only a watcher of that key, group, namespace or every
  // group (or a callback), so that watchers elsewhere cost a write nothing.
  #reaches(mutations: readonly Mutation[]): boolean {
    if (!this.#hub.active) return false;
    const m = mutations[0];
    if (mutations.length !== 1 || m === undefined || m.kind === "purge") {
      return true;
    }
    return this.#hub.wants(m.group, m.kind === "deleteGroup" ? "" : m.key);
  }

  /**
   * Stores a value, with an expiry `ttlMs` from now or none.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param key The key.
   * @param value The value.
   * @param ttlMs A checked time to live, or `undefined` for none.
   */
  set(
    op: string,
    group: string,
    key: string,
    value: string,
    ttlMs: number | undefined,
  ): void {
    const now = this.now(op);
    const expiresAt = ttlMs === undefined ? null : expiryOf(op, now, ttlMs);
    this.write(op, now, [{ kind: "set", group, key, value, expiresAt }]);
    if (expiresAt !== null) this.#noteDeadline(expiresAt);
  }

  /**
   * Stores imported entries, with their own expiries, in one transaction;
   * those that have expired by the clock are skipped.
   *
   * @param op The operation, for error messages.
   * @param entries Checked entries; `expiresAt` in ms since the epoch.
   * @returns How many were written.
   */
  setEntries(
    op: string,
    entries: readonly {
      group: string;
      key: string;
      value: string;
      expiresAt: number | null;
    }[],
  ): number {
    this.open(op);
    const now = this.now(op);
    const live = entries.filter((e) =>
      e.expiresAt === null || e.expiresAt > now
    );
    if (live.length === 0) return 0;
    this.write(op, now, live.map((e) => ({ kind: "set", ...e })));
    let earliest = Infinity;
    for (const { expiresAt } of live) {
      if (expiresAt !== null && expiresAt < earliest) earliest = expiresAt;
    }
    if (earliest !== Infinity) this.#noteDeadline(earliest);
    return live.length;
  }

  /**
   * Changes the expiry of a live key.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param key The key.
   * @param ttlMs A checked time to live, or `null` for none.
   * @returns Whether the key was live.
   */
  expire(
    op: string,
    group: string,
    key: string,
    ttlMs: number | null,
  ): boolean {
    const now = this.now(op);
    const expiresAt = ttlMs === null ? null : expiryOf(op, now, ttlMs);
    const [changed] = this.write(op, now, [
      { kind: "setExpiry", group, key, expiresAt },
    ]);
    if (expiresAt !== null && changed === 1) this.#noteDeadline(expiresAt);
    return changed === 1;
  }

  /**
   * Runs `fn` in one transaction; events follow its COMMIT.
   *
   * @param op The operation, for error messages.
   * @param fn The work.
   * @returns What `fn` returned.
   * @throws {StoreError} When a transaction is already running, or SQLite
   * fails.
   * @throws {TypeError} When `fn` returns a promise; nothing is kept.
   */
  transaction<T>(op: string, fn: () => T): T {
    if (this.#engine.inTransaction) {
      throw new StoreError(
        `Cannot ${op}: a transaction is already running on this store; transactions do not nest`,
      );
    }
    const held = this.#hub.hold();
    try {
      return this.#transaction(op, fn);
    } finally {
      if (held) this.#hub.release();
    }
  }

  #transaction<T>(op: string, fn: () => T): T {
    const { result, events } = this.#engine.transaction(op, () => {
      const result = fn();
      if (isThenable(result)) {
        // Keep a late rejection of the abandoned promise from surfacing as
        // an unhandled one; the TypeError below is the caller's error.
        Promise.resolve(result).catch(() => {});
        throw new TypeError(
          `Cannot ${op}: the function returned a promise; transactions must be synchronous, so nothing it wrote was kept`,
        );
      }
      return result;
    });
    this.#hub.publish(events);
    return result;
  }

  /**
   * Runs `fn` inside the running transaction, or in a new one.
   *
   * @param op The operation, for error messages.
   * @param fn The work.
   * @returns What `fn` returned.
   */
  atomic<T>(op: string, fn: () => T): T {
    return this.#engine.inTransaction ? fn() : this.transaction(op, fn);
  }

  /** @returns Whether a transaction is running. */
  get inTransaction(): boolean {
    return this.#engine.inTransaction;
  }

  /** @returns The engine, for reads. */
  get engine(): Engine {
    return this.#engine;
  }

  /**
   * Whether an event of `group` and `key` could reach a listener.
   *
   * @param group The group.
   * @param key The key.
   * @returns `false` when nobody could receive it.
   */
  wants(group: string, key: string): boolean {
    return this.#hub.wants(group, key);
  }

  /**
   * The value of a live key; an expired one is deleted, with its event.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param key The key.
   * @returns The value, or `undefined`.
   */
  get(op: string, group: string, key: string): string | undefined {
    const row = this.#engine.read(op, group, key);
    if (row === undefined) return undefined;
    const expiresAt = row[1];
    if (expiresAt !== null) {
      const now = this.now(op);
      if (expiresAt <= now) {
        // Read-only, an expired key is only passed over.
        if (!this.#engine.readOnly) {
          this.write(op, now, [{ kind: "expireKey", group, key }]);
        }
        return undefined;
      }
    }
    return row[0];
  }

  /**
   * What is left of a key's life.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param key The key.
   * @returns `Infinity` without expiry, `undefined` when missing or expired.
   */
  ttl(op: string, group: string, key: string): number | undefined {
    const now = this.now(op);
    const expiresAt = this.#engine.expiry(op, group, key);
    if (expiresAt === undefined) return undefined;
    if (expiresAt === null) return Infinity;
    return expiresAt > now ? expiresAt - now : undefined;
  }

  /**
   * The live entries of a group.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @returns The entries, in key order.
   */
  getAll(op: string, group: string): Map<string, string> {
    return this.#engine.getAll(op, group, this.now(op));
  }

  /**
   * The live entries of a group and the change-log position they reflect,
   * read in one transaction.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @returns The entries, and the last seq (none without the feed).
   */
  snapshot(op: string, group: string): GroupSnapshot {
    // A write transaction: no other connection commits between the two
    // reads, and the events it committed before are published after it.
    return this.atomic(op, () => ({
      entries: this.getAll(op, group),
      position: this.#engine.hasFeed ? this.#engine.lastSeq(op) : undefined,
    }));
  }

  /**
   * Counts the live keys of one group.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @returns The count.
   */
  count(op: string, group: string): number {
    return this.#engine.number(op, "count", group, this.now(op));
  }

  /**
   * Counts the live keys of every group starting with `prefix`.
   *
   * @param op The operation, for error messages.
   * @param prefix A literal prefix.
   * @returns The count.
   */
  countAll(op: string, prefix: string): number {
    const now = this.now(op);
    return this.#engine.number(op, "countPrefix", prefix, scanEnd(prefix), now);
  }

  /**
   * The groups starting with `prefix` that hold a live key.
   *
   * @param op The operation, for error messages.
   * @param prefix A literal prefix.
   * @returns The groups, in order.
   */
  groups(op: string, prefix: string): string[] {
    const now = this.now(op);
    return this.#engine.texts(op, "groupsPrefix", prefix, scanEnd(prefix), now)
      .map((row) => row[0] as string);
  }

  /**
   * One page of a group's live entries.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param options Unchecked paging options.
   * @returns The entries and the next cursor.
   */
  list(
    op: string,
    group: string,
    options: CoreListOptions,
  ): { entries: [string, string][]; cursor: string | undefined } {
    assertOptions(op, "options", options, LIST_OPTIONS);
    const { cursor, prefix = "", reverse = false } = options;
    const limit = integerArg(
      op,
      "limit",
      options.limit ?? undefined,
      DEFAULT_LIST_LIMIT,
      1,
      MAX_LIST_LIMIT,
    );
    if (cursor !== undefined) assertText(op, "cursor", cursor);
    assertText(op, "prefix", prefix);
    assertBoolean(op, "reverse", reverse);
    const now = this.now(op);
    const end = scanEnd(prefix);
    const e = this.#engine;
    // One row more than the page tells whether another page follows.
    const n = limit + 1;
    const rows = reverse
      ? cursor === undefined
        ? e.texts(op, "listFromReverse", group, prefix, end, now, n)
        : e.texts(op, "listBeforeReverse", group, prefix, end, cursor, now, n)
      : cursor === undefined
      ? e.texts(op, "listFrom", group, prefix, end, now, n)
      : e.texts(op, "listAfter", group, cursor, prefix, end, now, n);
    const more = rows.length > limit;
    if (more) rows.pop();
    const entries = rows as [string, string][];
    return { entries, cursor: more ? entries.at(-1)?.[0] : undefined };
  }

  /**
   * Renders a template against a group's live entries, under the store's
   * budgets unless the call sets its own.
   *
   * @param op The operation, for error messages.
   * @param template The template source.
   * @param group The group.
   * @param options The call's unchecked `missingKey` and budgets.
   * @returns The rendered text.
   */
  render(
    op: string,
    template: string,
    group: string,
    options: RenderOptions,
  ): string {
    assertOptions(op, "options", options, RENDER_OPTIONS);
    const mode = oneOf(op, "missingKey", options.missingKey ?? undefined, [
      "default",
      "zero",
      "error",
    ]);
    const { maxOutputBytes, maxSteps } = options;
    const limits = {
      maxOutputBytes: maxOutputBytes === undefined
        ? this.#renderLimits.maxOutputBytes
        : maxOutputBytes,
      maxSteps: maxSteps === undefined ? this.#renderLimits.maxSteps : maxSteps,
    };
    const tree = this.#template(template);
    return executeTemplate(tree, this.getAll(op, group), mode, limits);
  }

  #template(source: string): Template {
    return this.#templates.get(source);
  }

  /**
   * Deletes every expired key, in bounded batches.
   *
   * @param op The operation, for error messages.
   * @returns How many keys were deleted.
   */
  purgeExpired(op: string): number {
    const now = this.now(op);
    let total = 0;
    for (;;) {
      const [removed = 0] = this.write(op, now, [{ kind: "purge" }]);
      total += removed;
      if (removed < PURGE_BATCH) return total;
    }
  }

  async #backgroundPurge(): Promise<void> {
    if (this.#purging) return;
    const op = "purge expired keys";
    try {
      // A clock that stopped telling the time fails every foreground call
      // that needs it; the timer has nobody to tell, so it skips the tick.
      if (!Number.isFinite(this.#safeClock())) return;
      await this.#purgeAll(op);
      if (!this.#engine.closed) this.#engine.trimFeed(op);
    } catch (error) {
      // Another connection holding the write lock past busyTimeoutMs is
      // routine for a shared file: the next tick retries. Any other failure
      // (a broken clock, a damaged file) must not pass silently. A deadline
      // that came while it ran waits for it, so it is tried again shortly.
      if (!isBusy(error)) reportError(error);
      else if (this.#deadlinesMatter()) this.#arm(this.#safeClock() + 5);
    }
  }

  // Purges in slices, yielding between them, until no expired row is left,
  // then arms the expiry timer for the next deadline. One purge runs at a
  // time: two would run their slices back to back. The first slice runs
  // now, and a failure in it throws; the promise is of the rest.
  #purgeAll(op: string): Promise<void> | undefined {
    if (this.#purging) return undefined;
    this.#purging = true;
    let more = false;
    try {
      more = this.#purgeSlice(op);
    } finally {
      if (!more) this.#purging = false;
    }
    if (!more) return void this.#armForNext(op);
    return (async () => {
      try {
        for (;;) {
          await nextTask();
          if (this.#engine.closed) break;
          if (this.#pace.takeCheckpoint()) await this.#checkpoint(op);
          else if (!this.#purgeSlice(op)) break;
        }
      } finally {
        this.#purging = false;
      }
      this.#armForNext(op);
    })();
  }

  // Purges for one slice of the event loop; `true` when there may be more
  // to do.
  #purgeSlice(op: string): boolean {
    return this.#pace.slice((limit) => {
      // A callback may have closed the store.
      if (this.#engine.closed) return 0;
      const now = this.now(op);
      const [removed = 0] = this.write(op, now, [{ kind: "purge", limit }]);
      return removed;
    });
  }

  // The checkpoint's own sync of the WAL is its costlier half; done first
  // off the event loop, it leaves the checkpoint little to wait for.
  async #checkpoint(op: string): Promise<void> {
    await syncWal(this.#engine.path);
    if (!this.#engine.closed) this.#engine.checkpoint(op);
  }

  // Expiry on time: while anyone could hear an `expire` event (a listener,
  // or other processes through this store's change feed), one unref'd timer
  // is armed for the earliest deadline in the file and re-armed by writes.
  // With nobody to tell, no timer runs and writes pay one comparison.
  #deadlinesMatter(): boolean {
    // A callback may have closed the store in the middle of a write or tick.
    // A read-only store deletes nothing, so it has no expiry to tell of.
    if (this.#engine.closed || this.#engine.readOnly) return false;
    return this.#hub.active || this.#engine.hasFeed;
  }

  #noteDeadline(expiresAt: number): void {
    if (expiresAt < this.#armedAt && this.#deadlinesMatter()) {
      this.#arm(expiresAt);
    }
  }

  #armForNext(op: string): void {
    if (!this.#deadlinesMatter()) return;
    const next = this.#engine.nextExpiry(op);
    if (next !== undefined && next < this.#armedAt) this.#arm(next);
  }

  #arm(at: number): void {
    clearTimeout(this.#expiryTimer);
    this.#armedAt = at;
    const wait = Math.min(
      Math.max(at - this.#safeClock(), this.#backoff, 0),
      MAX_TIMER_MS,
    );
    this.#expiryTimer = setTimeout(() => this.#onDeadline(), wait || 0);
    unrefTimer(this.#expiryTimer);
  }

  #onDeadline(): void {
    const due = this.#armedAt;
    this.#expiryTimer = undefined;
    this.#armedAt = Infinity;
    if (this.#engine.closed || !this.#deadlinesMatter()) return;
    const op = "expire keys on time";
    try {
      const clock = this.#safeClock();
      if (!Number.isFinite(clock)) return;
      // Fired before the store's clock reached the deadline: that clock
      // runs behind real time (a fake one, say). Back off, so that a clock
      // standing still costs no timer firing every millisecond.
      this.#backoff = clock < due
        ? Math.min(Math.max(2 * this.#backoff, 1), 1_000)
        : 0;
      // A transaction's own writes wait for its COMMIT; look again soon.
      if (this.#engine.inTransaction) return this.#arm(this.#clock() + 1);
      // While another purge runs, it arms the timer again when done.
      this.#purgeAll(op)?.catch((error) => this.#deadlineFailed(error));
    } catch (error) {
      this.#deadlineFailed(error);
    }
  }

  #deadlineFailed(error: unknown): void {
    if (!isBusy(error)) reportError(error);
    // Busy: another connection holds the lock; try again shortly.
    else this.#arm(this.#safeClock() + 5);
  }

  #safeClock(): number {
    try {
      return this.#clock();
    } catch {
      return NaN;
    }
  }

  /**
   * Registers a watcher, after delivering what other connections logged
   * (it committed before the watcher exists).
   *
   * @param op The operation, for error messages.
   * @param group The group, or `"*"`; a label with a prefix.
   * @param key The key, or `"*"`.
   * @param options A group prefix, a checked capacity and an unchecked
   * `since`.
   * @returns The watcher.
   */
  watch(
    op: string,
    group: string,
    key: string,
    options: CoreWatchOptions,
  ): Watcher {
    const { prefix, since, capacity } = options;
    if (since !== undefined) checkSince(op, since, this.#engine.hasFeed);
    this.#catchUp();
    this.#armForNext(op);
    const hubOptions = { prefix, capacity };
    if (since === undefined) return this.#hub.watch(group, key, hubOptions);
    const replay = this.#engine.replay(op, since as number, {
      group,
      key,
      prefix,
    });
    return this.#hub.watch(group, key, { ...hubOptions, replay });
  }

  /**
   * Registers a change callback, after delivering what other connections
   * logged.
   *
   * @param fn The callback (checked by the hub).
   * @param namespace Only the events of this namespace.
   * @returns The unregister function.
   */
  onChange(
    fn: (event: StoreEvent) => void,
    namespace?: string,
  ): () => void {
    this.#catchUp();
    const off = this.#hub.onChange(
      fn,
      namespace === undefined ? {} : { namespace },
    );
    this.#armForNext("register change callback");
    return off;
  }

  /**
   * Unregisters a watcher. Idempotent.
   *
   * @param watcher The watcher.
   */
  unwatch(watcher: Watcher): void {
    this.#hub.unwatch(watcher);
  }

  // A listener registered now hears only what commits from now on: what is
  // unread in the log goes to those already listening, or is skipped.
  #catchUp(): void {
    if (!this.#engine.hasFeed) return;
    const op = "catch up with the change log";
    const events = this.#engine.readFeed(op, this.#hub.active);
    this.#hub.publish(events);
    for (const event of events) {
      if (event.expiresAt !== undefined) this.#noteDeadline(event.expiresAt);
    }
  }

  #pollFeed(): void {
    const engine = this.#engine;
    if (engine.closed || engine.inTransaction) return;
    try {
      // Polled with nobody listening too: noticing another program's commit
      // also puts the log's triggers back on a data table it moved (see
      // Engine.changedElsewhere), and keys other processes wrote expire on
      // time here too.
      if (engine.changedElsewhere()) {
        if (this.#hub.active) this.#catchUp();
        else this.#armForNext("poll the change log");
      }
    } catch (error) {
      if (!isBusy(error)) reportError(error);
    }
  }

  /**
   * Copies the store into a new file.
   *
   * @param op The operation, for error messages.
   * @param path The new file.
   * @throws {StoreError} Inside a transaction, or when the copy fails.
   */
  backup(op: string, path: string): void {
    if (this.#engine.inTransaction) {
      throw new StoreError(
        `Cannot ${op}: a transaction is running; back up after it commits`,
      );
    }
    this.#engine.backup(op, path);
  }

  /**
   * Removes the change log from the file.
   *
   * @param op The operation, for error messages.
   * @throws {StoreError} When this store reads the feed or a transaction
   * is running.
   */
  disableChangeFeed(op: string): void {
    if (this.#engine.hasFeed || this.#engine.inTransaction) {
      throw new StoreError(
        `Cannot ${op}: ${
          this.#engine.hasFeed
            ? "this store was opened with the changeFeed option"
            : "a transaction is running"
        }`,
      );
    }
    this.#engine.dropFeed(op);
  }

  /** Stops the timers, ends the listeners and closes the engine. */
  close(): void {
    if (this.#engine.closed) return;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    this.#hub.close();
    this.#templates.clear();
    this.#engine.close();
  }
}

function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function checkSince(op: string, since: unknown, hasFeed: boolean): void {
  if (!hasFeed) {
    throw new TypeError(
      `Cannot ${op}: since needs the changeFeed option, which keeps the change log`,
    );
  }
  integerArg(op, "since", since, 0);
}

const registry = new WeakMap<object, StoreCore>();

/**
 * Links a public store object to its core, for scoped views.
 *
 * @param store The public object.
 * @param core Its core.
 */
export function registerCore(store: object, core: StoreCore): void {
  registry.set(store, core);
}

/**
 * The core behind a public store object.
 *
 * @param store A store.
 * @returns Its core, or `undefined` for anything else.
 */
export function coreOf(store: unknown): StoreCore | undefined {
  return typeof store === "object" && store !== null
    ? registry.get(store)
    : undefined;
}
