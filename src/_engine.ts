/**
 * The SQLite engine under a store: one connection, its statements, the reads,
 * and the one write path. Every mutation, whatever API asked for it, is a
 * {@linkcode Mutation} applied by {@linkcode Engine.prototype.apply} inside
 * one transaction with one busy-retry policy, and comes back as the events
 * of what committed. Nothing here knows about listeners or timers.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { decodeText, isWhole } from "./codec.ts";
import { StoreClosedError, StoreError } from "./errors.ts";
import type { StoreEvent } from "./events.ts";
import { ChangeFeed, type ChangeRetention } from "./_feed.ts";
import {
  dataSql,
  type DataStatement,
  PURGE_BATCH,
  scanEnd,
  type TableNames,
} from "./_sql.ts";
import {
  disableChangeFeed,
  enableChangeFeed,
  isBusy,
  isSchemaChange,
  MEMORY_PATH,
  openDatabase,
  prepareRows,
  readSchema,
  retryBusy,
  type Row,
  type RowStatement,
  settleSchema,
} from "./schema.ts";
import { copyInto } from "./_backup.ts";
import { lazyRows } from "./_lazy_rows.ts";
import { type AtomicMutation, executeAtomic } from "./_atomic_exec.ts";
import { event, setEvent } from "./_local_events.ts";
import { type ExportCursor, openCursor } from "./_transfer.ts";
import type { Replay } from "./_watch_queue.ts";
import type { WatchFilter } from "./_hub.ts";

/** One change a write asks for. */
export type Mutation =
  | {
    kind: "set";
    group: string;
    key: string;
    value: string;
    expiresAt: number | null;
  }
  | { kind: "setExpiry"; group: string; key: string; expiresAt: number | null }
  | { kind: "delete"; group: string; key: string }
  | { kind: "deleteGroup"; group: string }
  | { kind: "expireKey"; group: string; key: string }
  | {
    kind: "purge";
    prefix?: string;
    /** Rows per batch; default {@linkcode PURGE_BATCH}. Not with prefix. */
    limit?: number;
  }
  | AtomicMutation;

export type { AtomicMutation };

/** What {@linkcode Engine.prototype.apply} did. */
export interface Applied {
  /**
   * Per mutation: 1 when a set, expiry change or delete took effect on a
   * live key (else 0), the rows removed by a group delete or a purge.
   */
  counts: number[];
  /**
   * Per mutation: the value an atomic mutation hands back (the new counter
   * of an increment, the value a getAndDelete took), else `undefined`.
   */
  values: (string | undefined)[];
  /**
   * The events of what committed, in commit order; empty inside a
   * transaction, whose events come with its commit.
   */
  events: StoreEvent[];
}

/** How the engine opens its file; every field is already validated. */
export interface EngineOptions {
  /** How long a write waits for another connection's lock. */
  busyTimeoutMs: number;
  /** `PRAGMA synchronous` of a file. */
  durability: "normal" | "full";
  /** Whether to keep and read the change log. */
  changeFeed: boolean;
  /** How much of the change log to keep. */
  retention: Required<ChangeRetention>;
  /** Whether anyone listens, so that unread log rows may be skipped. */
  listening: () => boolean;
  /** `true`: read-only; `undefined`: read-only when the file is. */
  readOnly?: boolean | undefined;
}

/** A running explicit transaction. */
interface Tx {
  /** Own events so far. */
  readonly events: StoreEvent[];
  /** With the feed: the last seq before the transaction. */
  readonly start: number;
  /** With the feed: the last seq of its last statement. */
  mark: number;
}

type Statements = Record<DataStatement, RowStatement>;

// What a read-only connection prepares: the reads. (A write would not
// prepare on the views standing for tables, and nextExpiry names an index
// the file may lack.)
const READS: ReadonlySet<DataStatement> = new Set([
  "get",
  "getBytes",
  "expiry",
  "count",
  "getAll",
  "getAllBytes",
  "countPrefix",
  "groupsPrefix",
  "groupHasLive",
  "listFrom",
  "listAfter",
  "listFromReverse",
  "listBeforeReverse",
  "probe",
]);

function prepare(
  db: DatabaseSync,
  schema: TableNames,
  readOnly: boolean,
): Statements {
  const sql = dataSql(schema);
  if (!readOnly) return lazyRows(db, sql);
  const reads = Object.fromEntries(
    Object.entries(sql).filter(([name]) => READS.has(name as DataStatement)),
  );
  // Every other statement refuses, should a path reach one unguarded.
  const refuse = (): never => {
    throw new StoreError("Cannot write: the store is open read-only");
  };
  const refusing = { run: refuse, get: refuse, all: refuse, iterate: refuse };
  const statements = {} as Statements;
  for (const name of Object.keys(sql) as DataStatement[]) {
    statements[name] = refusing as unknown as RowStatement;
  }
  return Object.assign(statements, prepareRows(db, reads));
}

const NO_EVENTS: StoreEvent[] = [];

/** One connection to a store's database. */
export class Engine {
  /** The path the connection was opened with. */
  readonly path: string;
  #db: DatabaseSync | undefined;
  /** The data table the statements are prepared for: kv or entries. */
  #schema: TableNames;
  #stmt: Statements;
  #busyTimeoutMs: number;
  #feed: ChangeFeed | undefined;
  #listening: () => boolean;
  #tx: Tx | undefined;
  #readOnly: "option" | "file" | undefined;
  /** What the last atomic mutation handed back. */
  #returned: string | undefined;

  /**
   * Opens (or creates) the database at `path`.
   *
   * @param path A file path or `":memory:"`.
   * @param options Validated settings.
   * @throws {StoreError} When the file cannot be opened or is not a store.
   */
  constructor(path: string, options: EngineOptions) {
    this.path = path;
    this.#busyTimeoutMs = options.busyTimeoutMs;
    this.#listening = options.listening;
    const { db, schema, readOnly } = openDatabase(path, options);
    this.#db = db;
    this.#schema = schema;
    this.#readOnly = readOnly;
    try {
      // The feed's triggers first: adding them changes the schema, which
      // would make statements prepared before compile again.
      if (options.changeFeed) {
        retryBusy(
          options.busyTimeoutMs,
          () => enableChangeFeed(db, schema, options.retention.maxRows),
        );
      }
      this.#stmt = prepare(db, schema, readOnly !== undefined);
      if (options.changeFeed) {
        this.#feed = new ChangeFeed(db, options.retention);
      }
    } catch (error) {
      db.close();
      const what = options.changeFeed ? "cannot set up the change feed: " : "";
      throw new StoreError(
        `Cannot open store at ${path}: ${what}${message(error)}`,
        { cause: error },
      );
    }
  }

  /** @returns Whether {@linkcode Engine.prototype.close} was called. */
  get closed(): boolean {
    return this.#db === undefined;
  }

  /** @returns Whether an explicit transaction is running. */
  get inTransaction(): boolean {
    return this.#tx !== undefined;
  }

  /** @returns Whether the connection only reads. */
  get readOnly(): boolean {
    return this.#readOnly !== undefined;
  }

  /**
   * Throws when the connection only reads.
   *
   * @param op The operation, for the message.
   * @throws {StoreError} When the store is open read-only.
   */
  writable(op: string): void {
    if (this.#readOnly === undefined) return;
    throw new StoreError(
      `Cannot ${op}: the store at ${this.path} is open read-only (${
        this.#readOnly === "option"
          ? "readOnly option"
          : "its file or folder is not writable"
      })`,
    );
  }

  /**
   * The newest seq in the change log.
   *
   * @param op The operation, for error messages.
   * @returns The last seq; 0 without the feed or before any change.
   */
  lastSeq(op: string): number {
    const feed = this.#feed;
    return feed === undefined ? 0 : this.run(op, () => feed.lastSeq());
  }

  /** @returns Whether the change feed is on. */
  get hasFeed(): boolean {
    return this.#feed !== undefined;
  }

  /**
   * Runs a statement (or a few that may run again) under the busy-retry
   * policy: another connection's lock is waited out, up to busyTimeoutMs,
   * by running it again; any other SQLite failure becomes a
   * {@linkcode StoreError} naming the operation, with the original as its
   * cause.
   *
   * @param op The operation, for the message.
   * @param fn The statement.
   * @returns What `fn` returned.
   */
  run<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      return this.#recover(op, error, fn);
    }
  }

  #recover<T>(op: string, error: unknown, fn: () => T, settled = false): T {
    // The module's own errors already name the operation.
    if (
      error instanceof StoreError || error instanceof RangeError ||
      error instanceof TypeError
    ) throw error;
    if (!settled && isSchemaChange(error)) {
      this.#settle(op, error);
      try {
        return fn();
      } catch (again) {
        return this.#recover(op, again, fn, true);
      }
    }
    if (isBusy(error)) {
      try {
        return retryBusy(this.#busyTimeoutMs, fn);
      } catch (again) {
        // The connection that held the lock may have changed the schema
        // (opened the change feed, or moved kv into entries) meanwhile.
        if (!settled && isSchemaChange(again)) {
          return this.#recover(op, again, fn);
        }
        error = again;
      }
    }
    const why = isBusy(error)
      ? `database is locked: another connection held ${this.path} for longer than busyTimeoutMs (${this.#busyTimeoutMs} ms)`
      : message(error);
    throw new StoreError(`Cannot ${op}: ${why}`, { cause: error });
  }

  // Another connection changed the schema under the prepared statements:
  // typically go-store v0.2.1+ opening the file, which moves the rows of kv
  // into entries and drops kv with this module's triggers. Finds the data
  // table again, puts the triggers and counts back, and prepares the
  // statements for it, so the statement that noticed runs again on the rows'
  // new home. No write is lost: the move is one transaction, and a write
  // either committed before it (and was moved) or failed and runs again.
  #settle(op: string, cause: unknown): void {
    const db = this.#db as DatabaseSync;
    try {
      const schema = this.readOnly ? readSchema(this.path, db) : retryBusy(
        this.#busyTimeoutMs,
        () =>
          settleSchema(this.path, db, {
            create: false,
            changeFeed: this.#feed !== undefined,
          }),
      );
      this.#stmt = prepare(db, schema, this.readOnly);
      this.#schema = schema;
    } catch (error) {
      throw new StoreError(
        `Cannot ${op}: the store's table changed underneath it and cannot be found again: ${
          message(error)
        }`,
        { cause: error instanceof StoreError ? error : cause },
      );
    }
  }

  // ---------------------------------------------------------------------
  // The write path

  /**
   * Applies mutations as one transaction: SQLite's own for a single
   * statement, `BEGIN IMMEDIATE … COMMIT` for more (and for every write
   * with the change feed, whose log rows must be known as this store's), or
   * the running explicit transaction. Nothing is reported done that did not
   * commit: every failure, COMMIT's included, throws.
   *
   * @param op The operation, for error messages.
   * @param now The store clock: what is expired, and the events' timestamp.
   * @param mutations What to change, in order.
   * @param report `false` when nobody could receive the events, so that a
   * purge need not read back the rows it removed.
   * @returns The counts, and the events of what committed.
   * @throws {StoreError} When SQLite fails; nothing is written.
   */
  apply(
    op: string,
    now: number,
    mutations: readonly Mutation[],
    report = true,
  ): Applied {
    this.writable(op);
    const tx = this.#tx;
    if (tx !== undefined) {
      const values: (string | undefined)[] = [];
      const counts = this.#applyAll(op, now, mutations, tx, report, values);
      return { counts, values, events: [] };
    }
    if (mutations.length === 1 && this.#feed === undefined) {
      // Unreported, nothing is pushed: the shared empty list stays empty.
      const events: StoreEvent[] = report ? [] : NO_EVENTS;
      const m = mutations[0] as Mutation;
      let count: number;
      try {
        count = this.#execute(op, m, now, events, report);
      } catch (error) {
        // A failed statement changed nothing, so running it again is safe.
        count = this.#recover(op, error, () => {
          events.length = 0;
          return this.#execute(op, m, now, events, report);
        });
      }
      // One-element literals: a push would first grow an empty array to 17
      // slots.
      return { counts: [count], values: [this.#returned], events };
    }
    const values: (string | undefined)[] = [];
    let counts: number[] = [];
    const { events } = this.transaction(op, (t) => {
      counts = this.#applyAll(op, now, mutations, t, report, values);
    });
    return { counts, values, events };
  }

  /**
   * Runs `fn` inside one `BEGIN IMMEDIATE` transaction, committed when it
   * returns and rolled back when it throws; mutations applied meanwhile join
   * it. Transactions do not nest.
   *
   * @param op The operation, for error messages.
   * @param fn The work; it must be synchronous.
   * @returns What `fn` returned, and the events of what committed: first
   * other connections' logged changes that committed before it (with the
   * feed), then its own.
   * @throws {StoreError} When SQLite fails, COMMIT included; nothing is
   * written.
   */
  transaction<T>(
    op: string,
    fn: (tx: Tx) => T,
  ): { result: T; events: StoreEvent[] } {
    this.writable(op);
    const db = this.#db as DatabaseSync;
    const feed = this.#feed;
    // get(), not run(), for BEGIN, COMMIT and ROLLBACK: they return no row,
    // so one step runs each to the end and its error is thrown, without
    // run()'s result object (about 1 µs of node:sqlite's time each).
    const start = this.run(op, () => {
      this.#stmt.begin.get();
      try {
        return feed?.lastSeq() ?? 0;
      } catch (error) {
        this.#stmt.rollback.get();
        throw error;
      }
    });
    const tx: Tx = { events: [], start, mark: start };
    this.#tx = tx;
    let result: T;
    try {
      result = fn(tx);
      this.run(op, () => this.#stmt.commit.get());
    } catch (error) {
      // fn may have closed the store, which ended the transaction with it.
      if (!this.closed && db.isTransaction) this.#stmt.rollback.get();
      throw error;
    } finally {
      this.#tx = undefined;
    }
    if (feed === undefined) return { result, events: tx.events };
    feed.recordOwn(start + 1, tx.mark);
    let events = tx.events;
    try {
      // Rows other connections committed before this one come first.
      const wanted = this.#listening();
      const before = this.run(op, () => feed.readNew(start, wanted));
      if (before.length > 0) events = before.concat(events);
    } catch (error) {
      // Committed: the caller must not see a failure. Those rows are read
      // again with the next delivery, and ours with them, from the log: in
      // seq order, and once (handed out now, ours would come again then).
      if (!isBusy(error)) reportError(error);
      return { result, events: [] };
    }
    feed.skipTo(tx.mark);
    return { result, events };
  }

  #applyAll(
    op: string,
    now: number,
    mutations: readonly Mutation[],
    tx: Tx,
    report: boolean,
    values: (string | undefined)[],
  ): number[] {
    // Some failures (SQLITE_FULL, a trigger's RAISE(ROLLBACK)) end the whole
    // transaction: what follows would commit on its own, outside it.
    if (!(this.#db as DatabaseSync).isTransaction) {
      throw new StoreError(
        `Cannot ${op}: SQLite rolled the transaction back after an earlier statement failed; nothing it wrote is kept`,
      );
    }
    const counts: number[] = [];
    for (const m of mutations) {
      const from = tx.events.length;
      counts.push(this.run(op, () => {
        tx.events.length = from;
        return this.#execute(op, m, now, tx.events, report);
      }));
      values.push(this.#returned);
      if (this.#feed !== undefined) this.#logged(op, m, now, tx, from, report);
    }
    return counts;
  }

  #execute(
    op: string,
    m: Mutation,
    now: number,
    out: StoreEvent[],
    report: boolean,
  ): number {
    const s = this.#stmt;
    this.#returned = undefined;
    // Events are built only for someone: a listener, or the change log's
    // numbering and retyping, which reads them.
    const emit = report || this.#feed !== undefined;
    switch (m.kind) {
      case "set":
        // get(), not run(): the upsert returns no row, so its one step runs
        // it to the end, an autocommit's COMMIT included, and no error is
        // lost; run() would also build a result object nobody reads, which
        // takes node:sqlite about a fifth of a :memory: upsert's time.
        s.set.get(m.group, m.key, m.value, m.expiresAt);
        if (emit) out.push(setEvent(m.group, m.key, now, m.value, m.expiresAt));
        return 1;
      case "setExpiry": {
        const row = s.setExpiry.all(m.expiresAt, m.group, m.key, now)[0];
        if (row === undefined) return 0;
        if (emit) {
          const value = decodeText(row[0]);
          out.push(setEvent(m.group, m.key, now, value, m.expiresAt));
        }
        return 1;
      }
      case "delete": {
        const row = s.delete.all(m.group, m.key)[0];
        if (row === undefined) return 0;
        const expiresAt = row[0] as number | null;
        const expired = expiresAt !== null && expiresAt <= now;
        const type = expired ? "expire" : "delete";
        if (emit) out.push(event(type, m.group, m.key, now));
        return expired ? 0 : 1;
      }
      case "deleteGroup": {
        const changes = Number(s.deleteGroup.run(m.group).changes);
        if (emit && changes > 0) {
          out.push(event("delete_group", m.group, "", now));
        }
        return changes;
      }
      case "expireKey": {
        const { changes } = s.expireOne.run(m.group, m.key, now);
        if (changes === 0) return 0;
        if (emit) out.push(event("expire", m.group, m.key, now));
        return 1;
      }
      case "purge":
        return this.#purge(m, now, out, report);
      default: {
        const done = executeAtomic(op, s, m, now, emit ? out : undefined);
        this.#returned = done.value;
        return done.count;
      }
    }
  }

  #purge(
    m: Mutation & { kind: "purge" },
    now: number,
    out: StoreEvent[],
    report: boolean,
  ): number {
    const s = this.#stmt;
    const { prefix, limit = PURGE_BATCH } = m;
    let rows: Row[];
    if (prefix !== undefined) {
      rows = s.purgeRange.all(now, prefix, scanEnd(prefix));
    } else if (!report) {
      // Without listeners nobody needs the rows.
      return Number(s.purge.run(now, limit).changes);
    } else {
      rows = s.purgeReturning.all(now, limit);
    }
    for (const row of rows) {
      out.push(event("expire", decodeText(row[0]), decodeText(row[1]), now));
    }
    return rows.length;
  }

  // With the feed: makes the log say what this store did, and numbers the
  // events with their seqs.
  #logged(
    op: string,
    m: Mutation,
    now: number,
    tx: Tx,
    from: number,
    report: boolean,
  ): void {
    const feed = this.#feed as ChangeFeed;
    const events = tx.events;
    const mark = tx.mark;
    this.run(op, () => {
      const first = events[from];
      if (m.kind === "deleteGroup" && first !== undefined) {
        feed.collapseGroupDelete(mark, m.group);
      } else if (m.kind === "purge") {
        feed.retype(mark, "expire");
      } else if (first !== undefined && first.type !== "set") {
        feed.retype(mark, first.type);
      }
      tx.mark = feed.lastSeq();
    });
    const logged = tx.mark - mark;
    if (m.kind === "purge" || logged !== events.length - from) {
      // Rows without a one-to-one event (a purge, or a trigger of someone
      // else's): the log itself says which rows and in which order.
      const returned = events.splice(from);
      if (!report) return;
      let rows = this.run(op, () => feed.rows(mark, tx.mark, now));
      if (rows.length < logged && returned.length === logged) {
        // The trim trigger cut this very statement's first rows (it logged
        // more than the retention keeps): number the rows it returned,
        // which SQLite yields in the order it logged them.
        rows = returned;
        for (let i = 0; i < rows.length; i++) {
          (rows[i] as StoreEvent).seq = mark + 1 + i;
        }
      }
      for (const e of rows) events.push(e);
      return;
    }
    for (let i = from; i < events.length; i++) {
      (events[i] as StoreEvent).seq = mark + 1 + i - from;
    }
  }

  // ---------------------------------------------------------------------
  // The change feed

  /**
   * Reads what other connections logged since the last read; inside a
   * transaction only what committed before it.
   *
   * @param op The operation, for error messages.
   * @param wanted `false` to skip the rows (nobody listens).
   * @returns The events, in seq order, each with the time of its write;
   * none without the feed.
   */
  readFeed(op: string, wanted: boolean): StoreEvent[] {
    const feed = this.#feed;
    if (feed === undefined) return [];
    const upTo = this.#tx?.start;
    return this.run(op, () => feed.readNew(upTo, wanted));
  }

  /**
   * Whether another connection committed since the last call.
   *
   * @returns `false` without the feed.
   */
  changedElsewhere(): boolean {
    const changed = this.#feed?.changedElsewhere() ?? false;
    // Other programs' writes reach the log only through triggers on the
    // table they write: when the table moved (go-store moving kv into
    // entries), they are put back now rather than at this store's next call.
    if (changed && this.#tx === undefined) {
      this.run("read the change log", () => this.#stmt.probe.get());
    }
    return changed;
  }

  /**
   * The logged events after `since`, for a watcher that resumes, read a
   * page at a time as its reader reads.
   *
   * @param op The operation, for error messages.
   * @param since The last seq seen.
   * @param filter What the watcher watches.
   * @returns The replay; a page read after close throws
   * {@linkcode StoreClosedError}.
   * @throws {RangeError} When `since` is after the newest seq.
   * @throws {StoreError} When the log no longer holds every row after it.
   */
  replay(op: string, since: number, filter: WatchFilter): Replay<StoreEvent> {
    const feed = this.#feed as ChangeFeed;
    const log = this.run(op, () => feed.replay(since, filter));
    return {
      next: () => {
        if (this.closed) {
          throw new StoreClosedError(
            `read the change log after seq ${log.position}`,
          );
        }
        return this.run(op, () => log.next());
      },
      extend: () => log.extend(),
      stop: () => log.stop(),
      covers: (event) => log.covers(event),
    };
  }

  /**
   * Copies the pages the WAL holds into the file, as far as other
   * connections allow, without waiting for them: after a large write, so
   * that SQLite's own checkpoint (run inside whichever commit crosses its
   * threshold) does not land, whole, inside one call.
   *
   * @param op The operation, for error messages.
   */
  checkpoint(op: string): void {
    if (this.path === MEMORY_PATH || this.#tx !== undefined) return;
    this.run(op, () => this.#stmt.checkpoint.get());
  }

  /**
   * Trims the change log to its retention.
   *
   * @param op The operation, for error messages.
   */
  trimFeed(op: string): void {
    const feed = this.#feed;
    if (feed !== undefined) this.run(op, () => feed.trim());
  }

  // ---------------------------------------------------------------------
  // Reads

  /**
   * Reads a key's value and expiry.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param key The key.
   * @returns The value and expiry, or `undefined` when there is no row.
   */
  read(
    op: string,
    group: string,
    key: string,
  ): [value: string, expiresAt: number | null] | undefined {
    // The hot path: no closure and no new array unless the text was cut.
    let row: Row | undefined;
    try {
      row = this.#stmt.get.get(group, key);
    } catch (error) {
      row = this.#recover(op, error, () => this.#stmt.get.get(group, key));
    }
    if (row === undefined) return undefined;
    if (!isWhole(row[2] as number, row[0] as string)) {
      const bytes = this.run(op, () => this.#stmt.getBytes.get(group, key));
      row[0] = decodeText(bytes?.[0]);
    }
    return row as [string, number | null];
  }

  /**
   * Reads a key's expiry only.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param key The key.
   * @returns `null` for no expiry, `undefined` when there is no row.
   */
  expiry(op: string, group: string, key: string): number | null | undefined {
    const row = this.run(op, () => this.#stmt.expiry.get(group, key));
    return row === undefined ? undefined : row[0] as number | null;
  }

  /**
   * The earliest expiry of any row, expired or not.
   *
   * @param op The operation, for error messages.
   * @returns The expiry, ms epoch, or `undefined` when no row has one.
   */
  nextExpiry(op: string): number | undefined {
    const row = this.run(op, () => this.#stmt.nextExpiry.get());
    return (row?.[0] as number | null | undefined) ?? undefined;
  }

  /**
   * The live entries of a group, in key order.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param now The store clock.
   * @returns The entries.
   */
  getAll(op: string, group: string, now: number): Map<string, string> {
    const rows = this.run(op, () => this.#stmt.getAll.all(group, now));
    const entries = new Map<string, string>();
    for (const row of rows) {
      const key = row[0] as string;
      const value = row[1] as string;
      if (!isWhole(row[2] as number, key, value)) {
        return this.#getAllBytes(op, group, now);
      }
      entries.set(key, value);
    }
    return entries;
  }

  // The slow path for a group holding a NUL somewhere: every row through
  // textColumn(), so no string comes back cut.
  #getAllBytes(op: string, group: string, now: number): Map<string, string> {
    const rows = this.run(op, () => this.#stmt.getAllBytes.all(group, now));
    const entries = new Map<string, string>();
    for (const row of rows) {
      entries.set(decodeText(row[0]), decodeText(row[1]));
    }
    return entries;
  }

  /**
   * Runs a statement that returns one number (a count).
   *
   * @param op The operation, for error messages.
   * @param name The statement.
   * @param params Its parameters.
   * @returns The first column of the first row, or 0.
   */
  number(
    op: string,
    name: "count" | "countPrefix",
    ...params: (string | number | Uint8Array)[]
  ): number {
    const row = this.run(op, () => this.#stmt[name].get(...params));
    return (row?.[0] as number | undefined) ?? 0;
  }

  /**
   * Runs a statement that returns rows of text.
   *
   * @param op The operation, for error messages.
   * @param name The statement.
   * @param params Its parameters.
   * @returns The rows, every column decoded.
   */
  texts(
    op: string,
    name:
      | "groupsPrefix"
      | "listFrom"
      | "listAfter"
      | "listFromReverse"
      | "listBeforeReverse",
    ...params: (string | number | Uint8Array)[]
  ): string[][] {
    const rows = this.run(op, () => this.#stmt[name].all(...params));
    return rows.map((row) => row.map(decodeText));
  }

  /**
   * Whether a group holds a live key.
   *
   * @param op The operation, for error messages.
   * @param group The group.
   * @param now The store clock.
   * @returns `true` when it does.
   */
  groupHasLive(op: string, group: string, now: number): boolean {
    const row = this.run(op, () => this.#stmt.groupHasLive.get(group, now));
    return row !== undefined;
  }

  /**
   * A namespace's rows and non-empty groups, expired rows included, as the
   * schema's triggers count them: constant time, whatever its size.
   *
   * @param op The operation, for error messages.
   * @param namespace The namespace.
   * @returns `[rows, groups]`.
   */
  namespaceStats(op: string, namespace: string): [number, number] {
    const row = this.run(op, () => this.#stmt.namespaceStats.get(namespace));
    return row === undefined ? [0, 0] : [row[0] as number, row[1] as number];
  }

  /**
   * Counts a namespace's rows and groups afresh (a range scan) and stores
   * the result, correcting any drift, such as an `INSERT OR REPLACE` by hand
   * (a replace fires no delete trigger).
   *
   * @param op The operation, for error messages.
   * @param namespace The namespace.
   * @returns `[rows, groups]`.
   */
  recountNamespace(op: string, namespace: string): [number, number] {
    const prefix = `${namespace}:`;
    const row = this.run(
      op,
      () =>
        this.#stmt.recountNamespace.all(namespace, prefix, scanEnd(prefix))[0],
    ) as Row;
    return [row[0] as number, row[1] as number];
  }

  /**
   * Copies a snapshot of the database into a new file.
   *
   * @param op The operation, for error messages.
   * @param path Where the copy goes; must not exist.
   */
  backup(op: string, path: string): void {
    const db = this.#db as DatabaseSync;
    this.run(op, () => copyInto(db, this.#schema, path));
  }

  /**
   * Opens one snapshot of the live entries for an export.
   *
   * @param op The operation, for error messages.
   * @param prefix Only groups starting with it.
   * @param now The clock: what is live is decided once.
   * @returns The cursor; close it when done.
   */
  exportCursor(op: string, prefix: string, now: number): ExportCursor {
    const db = this.#db as DatabaseSync;
    const busyTimeoutMs = this.#busyTimeoutMs;
    const source = { db, path: this.path, busyTimeoutMs, names: this.#schema };
    return openCursor(op, source, prefix, now);
  }

  /**
   * Removes the change log and its triggers from the file.
   *
   * @param op The operation, for error messages.
   */
  dropFeed(op: string): void {
    this.writable(op);
    const db = this.#db as DatabaseSync;
    this.run(op, () => disableChangeFeed(db, this.#schema));
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    const db = this.#db;
    if (db === undefined) return;
    this.#db = undefined;
    db.close();
  }
}

/** Rows per purge batch, re-exported for the purge loop. */
export { PURGE_BATCH };

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
