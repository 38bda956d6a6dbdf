/**
 * The cross-process change feed: the `kv_changes` log that triggers append
 * to in every writer's transaction, read in seq order. The engine decides
 * when; this file knows the log's SQL.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { decodeText, textColumn } from "./codec.ts";
import { StoreError } from "./errors.ts";
import type { EventType, StoreEvent } from "./events.ts";
import { watches, type WatchFilter } from "./_hub.ts";
import { type Replay, REPLAY_BYTES, REPLAY_PAGE } from "./_watch_queue.ts";
import { NOW_MS, prepareRows, type Row, type RowStatement } from "./schema.ts";

/** How long the log keeps rows; a row goes when either limit passes it. */
export interface ChangeRetention {
  /** The most rows kept. Default `10_000`. */
  maxRows?: number;
  /** The oldest row kept, in milliseconds. Default 24 hours. */
  maxAgeMs?: number;
}

// Rows read per statement, so a large backlog is read in bounded steps.
const READ_BATCH = 1_000;

const SQL = {
  lastSeq: "SELECT max(seq) FROM kv_changes",
  firstSeq: "SELECT min(seq) FROM kv_changes",
  dataVersion: "PRAGMA data_version",
  read: `SELECT seq, type, ${textColumn("grp")}, ${textColumn("key")}, ${
    textColumn("value")
  }, expires_at, timestamp
    FROM kv_changes WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ${READ_BATCH}`,
  // The sizes of a page's rows, so that a page of large values can end
  // early; SQLite tells a value's length without reading it.
  pageSizes: `SELECT seq,
    coalesce(octet_length(value), 0) + octet_length(grp) + octet_length(key)
    FROM kv_changes WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ${REPLAY_PAGE}`,
  // With the oldest seq kept, read in the same statement: a trim between
  // the two could not then hide a gap.
  page: `SELECT seq, type, ${textColumn("grp")}, ${textColumn("key")}, ${
    textColumn("value")
  }, expires_at, timestamp, (SELECT min(seq) FROM kv_changes)
    FROM kv_changes WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ${REPLAY_PAGE}`,
  retype: "UPDATE kv_changes SET type = ?1 WHERE seq > ?2 AND type <> ?1",
  dropSince: "DELETE FROM kv_changes WHERE seq > ?",
  // The seq is given: the trim trigger may have emptied the log under a
  // large group, and an empty table would number the row 1.
  logGroupDelete:
    `INSERT INTO kv_changes (seq, type, grp, key, timestamp) VALUES (?, 'delete_group', ?, '', ${NOW_MS})`,
  // Rows are timed by the triggers with SQLite's clock, so age is measured
  // with it too. The newest row stays, whatever its age, so that seqs never
  // go back.
  trim: `DELETE FROM kv_changes WHERE (seq <= ? OR timestamp < ${NOW_MS} - ?)
    AND seq < (SELECT max(seq) FROM kv_changes)`,
} as const;

/**
 * One store's view of the change log of its file: what it has delivered,
 * and which rows it wrote itself.
 */
export class ChangeFeed {
  readonly #stmt: Record<keyof typeof SQL, RowStatement>;
  readonly #maxRows: number;
  readonly #maxAgeMs: number;
  /** The last seq read (delivered or skipped). */
  #delivered: number;
  #dataVersion: unknown;
  /**
   * The seq ranges `[from, to]` this store committed, oldest first, adjacent
   * ones merged; pruned as the log is trimmed. Replays tell own rows by them.
   */
  #own: [number, number][] = [];

  /**
   * Prepares the feed's statements on a connection whose file has the log.
   *
   * @param db The store's connection.
   * @param retention How much of the log to keep.
   */
  constructor(db: DatabaseSync, retention: Required<ChangeRetention>) {
    this.#stmt = prepareRows(db, SQL);
    this.#maxRows = retention.maxRows;
    this.#maxAgeMs = retention.maxAgeMs;
    this.#delivered = this.lastSeq();
    this.#dataVersion = this.#stmt.dataVersion.get()?.[0];
  }

  /**
   * The newest seq in the log (0 for none yet).
   *
   * @returns The last seq in the file.
   */
  lastSeq(): number {
    return (this.#stmt.lastSeq.get()?.[0] as number | undefined) ?? 0;
  }

  /**
   * Gives the rows after `after` the type the store knows they have: the
   * triggers can only guess between delete and expire, by SQLite's clock.
   *
   * @param after The last seq before the statement.
   * @param type `"delete"` or `"expire"`.
   */
  retype(after: number, type: EventType): void {
    this.#stmt.retype.run(type, after);
  }

  /**
   * Replaces the per-row deletes after `after` by one `delete_group` row,
   * which takes the first freed seq, so seqs stay contiguous.
   *
   * @param after The last seq before the group deletion.
   * @param group The deleted group.
   */
  collapseGroupDelete(after: number, group: string): void {
    this.#stmt.dropSince.run(after);
    this.#stmt.logGroupDelete.run(after + 1, group);
  }

  /**
   * The rows after `after`, as this store's own events, just written.
   *
   * @param after The last seq before the statement.
   * @param to The last seq of the statement.
   * @param now The events' timestamp, the store clock at the write.
   * @returns The events, in seq order.
   */
  rows(after: number, to: number, now: number): StoreEvent[] {
    return this.#read(after, to, now);
  }

  /**
   * Records a committed range of seqs as this store's own.
   *
   * @param from The first seq of the range.
   * @param to The last seq of the range.
   */
  recordOwn(from: number, to: number): void {
    if (to < from) return;
    const last = this.#own.at(-1);
    if (last !== undefined && last[1] === from - 1) last[1] = to;
    else this.#own.push([from, to]);
  }

  /**
   * Whether another connection committed since the last call
   * (`PRAGMA data_version`); cheap enough to poll.
   *
   * @returns `true` when there may be new rows to read.
   */
  changedElsewhere(): boolean {
    const version = this.#stmt.dataVersion.get()?.[0];
    if (version === this.#dataVersion) return false;
    this.#dataVersion = version;
    return true;
  }

  /**
   * Reads the rows after the last one read, up to `upTo`, in seq order.
   *
   * @param upTo The last seq to read; default the newest.
   * @param wanted `false` when nobody listens: the rows are skipped.
   * @returns The new events.
   */
  readNew(upTo: number | undefined, wanted: boolean): StoreEvent[] {
    const last = upTo ?? this.lastSeq();
    if (last <= this.#delivered) return [];
    // Advanced only once the rows are read, so a failed read (a busy
    // database) is read again by the next delivery.
    const events = wanted ? this.#read(this.#delivered, last) : [];
    this.#delivered = last;
    return events;
  }

  /**
   * Marks every row up to `seq` as read, such as this store's own rows
   * delivered straight from its write.
   *
   * @param seq The last seq read.
   */
  skipTo(seq: number): void {
    if (seq > this.#delivered) this.#delivered = seq;
  }

  /**
   * A replay of the logged events after `since` for a watcher that resumes:
   * up to the last row read, or to the end of the log once extended, read a
   * page at a time.
   *
   * @param since The last seq the watcher's owner saw.
   * @param filter The group (or group prefix) and key watched.
   * @returns The replay; its events carry the time of their write as the log
   * recorded it.
   * @throws {RangeError} When `since` is after the newest seq.
   * @throws {StoreError} When the log no longer holds every row after
   * `since`.
   */
  replay(since: number, filter: WatchFilter): LogReplay {
    const last = this.#delivered;
    if (since > last) {
      throw new RangeError(
        `Cannot watch: since ${since} is after the newest change, seq ${last}`,
      );
    }
    const first = this.#stmt.firstSeq.get()?.[0] as number | null;
    // Every seq after `since` must still be there: the oldest row must come
    // right after it, unless nothing happened since.
    if (since < last && (first === null || first > since + 1)) {
      throw trimmed(since, first ?? last + 1);
    }
    return new LogReplay(since, last, filter, () => this.#delivered, (
      after,
      until,
    ) => {
      const rows = this.#stmt.page.all(after, this.#pageEnd(after, until));
      // An empty page is the end of the replay: rows trimmed away entirely
      // must not pass for one.
      const oldest =
        (rows.length > 0 ? rows[0]?.[7] : this.#stmt.firstSeq.get()?.[0]) as
          | number
          | null
          | undefined;
      if (oldest === null || oldest === undefined || oldest > after + 1) {
        throw trimmed(after, oldest ?? until + 1);
      }
      return rows.map((row) => this.#event(row, undefined));
    });
  }

  // The last seq of the next page after `after`: up to REPLAY_PAGE rows,
  // fewer once their bytes pass REPLAY_BYTES (at least one).
  #pageEnd(after: number, until: number): number {
    const sizes = this.#stmt.pageSizes.all(after, until);
    let bytes = 0;
    for (let i = 0; i < sizes.length; i++) {
      bytes += (sizes[i] as Row)[1] as number;
      if (i > 0 && bytes > REPLAY_BYTES) {
        return (sizes[i - 1] as Row)[0] as number;
      }
    }
    return until;
  }

  /**
   * Deletes the rows past the retention limits.
   *
   * @returns How many rows were deleted.
   */
  trim(): number {
    const { changes } = this.#stmt.trim.run(
      this.lastSeq() - this.#maxRows,
      this.#maxAgeMs,
    );
    const first = (this.#stmt.firstSeq.get()?.[0] as number | null) ?? 0;
    while ((this.#own[0]?.[1] ?? Infinity) < first) this.#own.shift();
    return Number(changes);
  }

  #isOwn(seq: number): boolean {
    // Deliveries read the newest rows, so search from the newest range.
    for (let i = this.#own.length - 1; i >= 0; i--) {
      const [from, to] = this.#own[i] as [number, number];
      if (seq > to) return false;
      if (seq >= from) return true;
    }
    return false;
  }

  // `now` is given for rows this store just wrote: their events carry the
  // store clock, as every live event of its own; any other row carries the
  // time the log recorded for its write.
  #read(from: number, to: number, now?: number): StoreEvent[] {
    const events: StoreEvent[] = [];
    for (let after = from; after < to;) {
      const rows = this.#stmt.read.all(after, to);
      for (const row of rows) events.push(this.#event(row, now));
      if (rows.length < READ_BATCH) break;
      after = rows[rows.length - 1]?.[0] as number;
    }
    return events;
  }

  #event(row: Row, now: number | undefined): StoreEvent {
    const type = row[1] as EventType;
    const seq = row[0] as number;
    const event: StoreEvent = {
      type,
      group: decodeText(row[2]),
      key: decodeText(row[3]),
      timestamp: now ?? row[6] as number,
      origin: now !== undefined || this.#isOwn(seq) ? "local" : "remote",
      seq,
    };
    if (type === "set") event.value = decodeText(row[4]);
    if (row[5] !== null) event.expiresAt = row[5] as number;
    return event;
  }
}

function trimmed(since: number, oldest: number): StoreError {
  return new StoreError(
    `Cannot watch: the change log no longer holds the changes after seq ${since}; the oldest kept is seq ${oldest}`,
  );
}

/**
 * A replay of the change log after a seq for one watcher, read a page at a
 * time ({@linkcode Replay}).
 */
export class LogReplay implements Replay<StoreEvent> {
  /** The last seq read. */
  #after: number;
  /** The last seq to read; `undefined` once extended. */
  #until: number | undefined;
  #ended = false;
  readonly #match: (event: StoreEvent) => boolean;
  readonly #delivered: () => number;
  readonly #page: (after: number, until: number) => StoreEvent[];

  /**
   * @param since The last seq the watcher's owner saw.
   * @param until The last seq to read unless extended.
   * @param filter What the watcher watches.
   * @param delivered The last seq the store has delivered: how far an
   * extended replay reads (never rows of a transaction still open).
   * @param page Reads the events of up to a page of rows after `after`, up
   * to `until`; throws when rows right after `after` were trimmed.
   */
  constructor(
    since: number,
    until: number,
    filter: WatchFilter,
    delivered: () => number,
    page: (after: number, until: number) => StoreEvent[],
  ) {
    this.#after = since;
    this.#until = until;
    this.#delivered = delivered;
    this.#page = page;
    this.#match = (event) => watches(filter, event);
  }

  /** @returns The last seq read. */
  get position(): number {
    return this.#after;
  }

  /** @returns The next page's events for the watcher, or `undefined`. */
  next(): StoreEvent[] | undefined {
    if (this.#ended) return undefined;
    const until = this.#until ?? this.#delivered();
    const events = this.#after < until ? this.#page(this.#after, until) : [];
    const last = events.at(-1)?.seq;
    if (last === undefined) {
      // Nothing left up to the bound (rows may lack there, such as those a
      // group deletion collapsed): every seq up to it is read.
      this.#after = Math.max(this.#after, until);
      this.#ended = true;
      return undefined;
    }
    this.#after = last;
    const matched = events.filter(this.#match);
    // Frozen as every event a consumer gets (the hub freezes live ones).
    for (const event of matched) Object.freeze(event);
    return matched;
  }

  /** Reads on to the last row the store has delivered, as it moves. */
  extend(): void {
    this.#until = undefined;
  }

  /** Reads no further than the last row the store has delivered now. */
  stop(): void {
    this.#until ??= this.#delivered();
  }

  /**
   * @param event A live event.
   * @returns Whether its row was read.
   */
  covers(event: StoreEvent): boolean {
    return event.seq !== undefined && event.seq <= this.#after;
  }
}
