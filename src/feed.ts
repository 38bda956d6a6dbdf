/**
 * The cross-process change feed: reading the `kv_changes` log that triggers
 * append to in every writer's transaction, and telling this store's own rows
 * from everyone else's. The store decides when; this file knows the SQL.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { decodeText, textColumn } from "./codec.ts";
import { StoreError } from "./errors.ts";
import { NOW_MS, prepareRows, type Row, type RowStatement } from "./schema.ts";
import type { EventType, StoreEvent } from "./events.ts";

/** How long the log keeps rows; a row goes when either limit passes it. */
export interface ChangeRetention {
  /** The most rows kept. Default `10_000`. */
  maxRows?: number;
  /** The oldest row kept, in milliseconds. Default 24 hours. */
  maxAgeMs?: number;
}

/** What a watcher replaying the log wants to see. */
export interface ReplayFilter {
  /** A group, or `"*"`. */
  group: string;
  /** A key, or `"*"`. */
  key: string;
}

// Rows read per statement while catching up, so a large backlog is read in
// bounded steps.
const READ_BATCH = 1_000;

const SQL = {
  lastSeq: "SELECT max(seq) FROM kv_changes",
  firstSeq: "SELECT min(seq) FROM kv_changes",
  dataVersion: "PRAGMA data_version",
  read: `SELECT seq, type, ${textColumn("grp")}, ${textColumn("key")}, ${
    textColumn("value")
  }, expires_at
    FROM kv_changes WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ${READ_BATCH}`,
  retype: "UPDATE kv_changes SET type = ? WHERE seq > ?",
  dropSince: "DELETE FROM kv_changes WHERE seq > ?",
  logGroupDelete:
    `INSERT INTO kv_changes (type, grp, key, timestamp) VALUES ('delete_group', ?, '', ${NOW_MS})`,
  // Rows are timed by the triggers with SQLite's clock, so age is measured
  // with it too. The newest row stays, whatever its age, so that seqs never
  // go back.
  trim: `DELETE FROM kv_changes WHERE (seq <= ? OR timestamp < ${NOW_MS} - ?)
    AND seq < (SELECT max(seq) FROM kv_changes)`,
} as const;

/**
 * One store's view of the change log of its file.
 */
export class ChangeFeed {
  readonly #stmt: Record<keyof typeof SQL, RowStatement>;
  readonly #maxRows: number;
  readonly #maxAgeMs: number;
  /** The last seq delivered to this store's listeners. */
  #delivered: number;
  #dataVersion: unknown;
  /** The last seq before the running transaction, and before its statement. */
  #txStart = 0;
  #txEnd = 0;
  #mark = 0;
  #retyped = -1;
  /**
   * The seq ranges `[from, to]` this store committed, oldest first, adjacent
   * ones merged; pruned as the log is trimmed.
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
   * The newest seq the log has handed out (0 for none yet).
   *
   * @returns The last seq in the file.
   */
  lastSeq(): number {
    return (this.#stmt.lastSeq.get()?.[0] as number | undefined) ?? 0;
  }

  /** Notes where the running transaction starts in the log. */
  beginTransaction(): void {
    this.#txStart = this.#mark = this.lastSeq();
    this.#retyped = -1;
  }

  /** Notes where the next statement's log rows will start. */
  markStatement(): void {
    this.#mark = this.lastSeq();
  }

  /**
   * Gives the rows of the last marked statement the type the store knows
   * they have (the triggers can only guess between delete and expire).
   *
   * @param type `"delete"` or `"expire"`.
   */
  retype(type: EventType): void {
    // A purge reports every row of its statement; one update covers them.
    if (this.#retyped === this.#mark) return;
    this.#stmt.retype.run(type, this.#mark);
    this.#retyped = this.#mark;
  }

  /**
   * Replaces the per-row deletes of the last marked statement by one
   * `delete_group` row, as the store reports a group deletion.
   *
   * @param group The deleted group.
   */
  logGroupDelete(group: string): void {
    // The new row takes the first freed seq, so seqs stay contiguous.
    this.#stmt.dropSince.run(this.#mark);
    this.#stmt.logGroupDelete.run(group);
  }

  /** Notes where the running transaction ends, just before COMMIT. */
  endTransaction(): void {
    this.#txEnd = this.lastSeq();
  }

  /** Records the committed transaction's rows as this store's own. */
  committed(): void {
    const from = this.#txStart + 1;
    const to = this.#txEnd;
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
   * Reads the rows committed after the last delivered one, in seq order.
   *
   * @param wanted `false` when nobody listens: the rows are skipped.
   * @param now The store clock, the events' timestamp.
   * @param inTransaction `true` inside this store's running transaction,
   * whose own rows are not committed yet: only the rows before it are read.
   * @returns The new events.
   */
  readNew(wanted: boolean, now: number, inTransaction = false): StoreEvent[] {
    const last = inTransaction ? this.#txStart : this.lastSeq();
    if (last <= this.#delivered) return [];
    // Advanced only once the rows are read, so a failed read (a busy
    // database) is read again by the next delivery.
    const events = wanted ? this.#read(this.#delivered, last, now) : [];
    this.#delivered = last;
    return events;
  }

  /**
   * The logged events after `since`, up to what was last delivered, for a
   * watcher that resumes.
   *
   * @param since The last seq the watcher's owner saw.
   * @param filter The group and key watched.
   * @param now The store clock, the events' timestamp.
   * @param upTo The last seq already handed to listeners: later ones reach
   * the new watcher live. Default: the last seq read.
   * @returns The matching events, in seq order.
   * @throws {RangeError} When `since` is after the newest seq.
   * @throws {StoreError} When the log no longer holds every row after
   * `since`.
   */
  replay(
    since: number,
    filter: ReplayFilter,
    now: number,
    upTo = this.#delivered,
  ): StoreEvent[] {
    const last = upTo;
    if (since > last) {
      throw new RangeError(
        `Cannot watch: since ${since} is after the newest change, seq ${last}`,
      );
    }
    const first = this.#stmt.firstSeq.get()?.[0] as number | null;
    // Every seq after `since` must still be there: the oldest row must come
    // right after it, unless nothing happened since.
    if (since < last && (first === null || first > since + 1)) {
      throw new StoreError(
        `Cannot watch: the change log no longer holds the changes after seq ${since}; the oldest kept is seq ${
          first ?? last + 1
        }`,
      );
    }
    return this.#read(since, last, now).filter((event) =>
      (filter.group === "*" || event.group === filter.group) &&
      (filter.key === "*" || event.key === filter.key)
    );
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

  #read(from: number, to: number, now: number): StoreEvent[] {
    const events: StoreEvent[] = [];
    for (let after = from; after < to;) {
      const rows = this.#stmt.read.all(after, to);
      for (const row of rows) events.push(this.#event(row, now));
      if (rows.length < READ_BATCH) break;
      after = rows[rows.length - 1]?.[0] as number;
    }
    return events;
  }

  #event(row: Row, now: number): StoreEvent {
    const type = row[1] as EventType;
    const seq = row[0] as number;
    const event: StoreEvent = {
      type,
      group: decodeText(row[2]),
      key: decodeText(row[3]),
      timestamp: now,
      origin: this.#isOwn(seq) ? "local" : "remote",
      seq,
    };
    if (type === "set") event.value = decodeText(row[4]);
    if (row[5] !== null) event.expiresAt = row[5] as number;
    return event;
  }
}
