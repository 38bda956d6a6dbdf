/**
 * How the Deno KV store lays out its keys and values. Every key starts with
 * the store's prefix `P`:
 *
 * - `[P, "h"]`: the head, the `seq` of the last logged change. Every write
 *   that changes what readers see checks and bumps it in its atomic
 *   operation, which makes the writes serializable and numbers them.
 * - `[P, "e", group, key]`: an entry, `{ v, x }` (value and deadline) or,
 *   for a value too large for one Deno KV value, `{ c: [id, n], x }`.
 * - `[P, "e", group, MARK]`: the group's deletion marker (`MARK` is an empty
 *   `Uint8Array`, which sorts before every string, so a scan of the group
 *   reads it first). An entry is live only if its versionstamp is not older
 *   than the marker's: writing the marker deletes a group of any size in
 *   one atomic operation; the old entries are removed afterwards.
 * - `[P, "c", id, i]`: chunk `i` of a large value, immutable.
 * - `[P, "l", seq]`: the change log, one event per `seq`, trimmed to the
 *   last {@linkcode LOG_SIZE} in the same atomic operation.
 * - `[P, "x", expiresAt, group, key]`: the expiry index, for expiry on time
 *   and `purgeExpired`.
 * - `[P, "g", seq, id]`: chunks no entry uses any more, removed once the log
 *   entry at `seq` is trimmed (older log events may still name them).
 * - `[P, "d", group]`: a group deletion whose old entries are still being
 *   removed, so that housekeeping finishes what a killed writer began.
 * - `[P, "s", id]`: a large value being staged, chunks written before the
 *   commit that names them (see `_kv.ts`).
 *
 * Deno KV orders string key parts by UTF-8 bytes, which is code point
 * order, as SQLite, Go and etcd sort; NUL in a part is escaped by Deno KV.
 *
 * @module
 */

import { utf8Length } from "../_utf8.ts";

/** The marker key part: sorts before every string. */
export const MARK: Uint8Array = new Uint8Array(0);

/** Log entries kept: `since` can resume this far back. */
export const LOG_SIZE = 10_000;

/** A value of at most this many UTF-16 units is stored inline. */
export const INLINE_UNITS = 16_384;

/** Bytes per chunk of a large value (Deno KV holds 65,536 per value). */
export const CHUNK_BYTES = 60_000;

/** Deno KV's limits on one atomic operation and one key. */
export const LIMITS = {
  mutations: 1_000,
  checks: 100,
  bytes: 819_200,
  keyBytes: 2_048,
} as const;

/** A large value, by chunk id and count. */
export type ChunkRef = readonly [id: string, count: number];

/** An entry as stored. */
export interface StoredEntry {
  /** The value, when inline. */
  readonly v?: string;
  /** The chunks, when not. */
  readonly c?: ChunkRef;
  /** The deadline, ms epoch; absent without expiry. */
  readonly x?: number;
}

/** A logged change. */
export interface LogRecord {
  /** The event type. */
  readonly t: "set" | "delete" | "delete_group" | "expire";
  readonly g: string;
  readonly k: string;
  readonly v?: string;
  readonly c?: ChunkRef;
  readonly x?: number;
  /** The store clock at the write. */
  readonly ts: number;
}

/** The keys of one store prefix. */
export class KeySpace {
  /** The prefix part of every key. */
  readonly prefix: string;
  /** The head key. */
  readonly head: Deno.KvKey;
  #overhead: number;

  /** @param prefix The store's prefix. */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.head = [prefix, "h"];
    // Tuple encoding: a tag and a terminator per string part, plus the
    // index key's deadline (a number part) and "x".
    this.#overhead = byteLength(prefix) + 24;
  }

  /**
   * The entry key.
   *
   * @param group The group.
   * @param key The key.
   * @returns The Deno KV key.
   */
  entry(group: string, key: string): Deno.KvKey {
    return [this.prefix, "e", group, key];
  }

  /**
   * The group's deletion marker.
   *
   * @param group The group.
   * @returns The Deno KV key.
   */
  marker(group: string): Deno.KvKey {
    return [this.prefix, "e", group, MARK];
  }

  /**
   * The record of a group deletion whose old entries are still being
   * removed.
   *
   * @param group The group.
   * @returns The Deno KV key.
   */
  cleanup(group: string): Deno.KvKey {
    return [this.prefix, "d", group];
  }

  /**
   * Every pending group cleanup.
   *
   * @returns The selector.
   */
  cleanups(): Deno.KvListSelector {
    return { prefix: [this.prefix, "d"] };
  }

  /**
   * The selector of one group: its marker, then its entries.
   *
   * @param group The group.
   * @returns The selector.
   */
  group(group: string): Deno.KvListSelector {
    return { prefix: [this.prefix, "e", group] };
  }

  /**
   * The selector of every group from `prefix` on (the caller stops at the
   * first group not starting with it).
   *
   * @param prefix A group prefix.
   * @returns The selector.
   */
  groupsFrom(prefix: string): Deno.KvListSelector {
    const base = [this.prefix, "e"];
    return prefix === ""
      ? { prefix: base }
      : { prefix: base, start: [...base, prefix] };
  }

  /**
   * The key of chunk `i` of a large value.
   *
   * @param id The value's chunk id.
   * @param i The chunk's index.
   * @returns The Deno KV key.
   */
  chunk(id: string, i: number): Deno.KvKey {
    return [this.prefix, "c", id, i];
  }

  /**
   * The chunks of one large value.
   *
   * @param id The chunk id.
   * @returns The selector.
   */
  chunks(id: string): Deno.KvListSelector {
    return { prefix: [this.prefix, "c", id] };
  }

  /**
   * The log entry at `seq`.
   *
   * @param seq A change's position.
   * @returns The Deno KV key.
   */
  log(seq: number): Deno.KvKey {
    return [this.prefix, "l", seq];
  }

  /**
   * The log entries after `since`, up to `last`.
   *
   * @param since The position to read after.
   * @param last The last position to read.
   * @returns The selector.
   */
  logRange(since: number, last: number): Deno.KvListSelector {
    return { start: this.log(since + 1), end: this.log(last + 1) };
  }

  /**
   * The expiry index entry of a key.
   *
   * @param expiresAt Its deadline.
   * @param group The group.
   * @param key The key.
   * @returns The Deno KV key.
   */
  expiry(expiresAt: number, group: string, key: string): Deno.KvKey {
    return [this.prefix, "x", expiresAt, group, key];
  }

  /**
   * The expiry index up to and including `now`, earliest first.
   *
   * @param now The time.
   * @returns The selector.
   */
  expiredBy(now: number): Deno.KvListSelector {
    return { start: [this.prefix, "x", 0], end: [this.prefix, "x", now + 1] };
  }

  /**
   * The whole expiry index, earliest first.
   *
   * @returns The selector.
   */
  expiries(): Deno.KvListSelector {
    return { prefix: [this.prefix, "x"] };
  }

  /**
   * The garbage record of chunks freed at `seq`.
   *
   * @param seq The change that freed them.
   * @param id The chunk id.
   * @returns The Deno KV key.
   */
  garbage(seq: number, id: string): Deno.KvKey {
    return [this.prefix, "g", seq, id];
  }

  /**
   * The garbage freed before `seq`.
   *
   * @param seq A position.
   * @returns The selector.
   */
  garbageBefore(seq: number): Deno.KvListSelector {
    return { start: [this.prefix, "g", 0], end: [this.prefix, "g", seq] };
  }

  /**
   * The staging record of a large value being written.
   *
   * @param id The chunk id.
   * @returns The Deno KV key.
   */
  stage(id: string): Deno.KvKey {
    return [this.prefix, "s", id];
  }

  /**
   * Every staging record.
   *
   * @returns The selector.
   */
  stages(): Deno.KvListSelector {
    return { prefix: [this.prefix, "s"] };
  }

  /**
   * Whether a group and key fit in a Deno KV key (with the index's parts).
   *
   * @param group The group.
   * @param key The key.
   * @returns The bytes they take, when too many; else `0`.
   */
  oversize(group: string, key: string): number {
    const bytes = partBytes(group) + partBytes(key) + this.#overhead;
    return bytes > LIMITS.keyBytes ? bytes : 0;
  }
}

/**
 * The UTF-8 length of a string.
 *
 * @param text The string.
 * @returns Its bytes.
 */
export function byteLength(text: string): number {
  return utf8Length(text);
}

// A string key part as tuple-encoded: NUL bytes are escaped as two bytes.
function partBytes(text: string): number {
  let nul = 0;
  for (let i = text.indexOf("\0"); i !== -1; i = text.indexOf("\0", i + 1)) {
    nul++;
  }
  return byteLength(text) + nul;
}

/**
 * Whether an entry is live at `now` and not deleted with its group.
 *
 * @param entry The entry, with its versionstamp.
 * @param marker The group marker's versionstamp, if any.
 * @param now The store clock.
 * @returns `true` when live.
 */
export function isLive(
  entry: { stored: StoredEntry; versionstamp: string },
  marker: string | null | undefined,
  now: number,
): boolean {
  if (!isCurrent(entry.versionstamp, marker)) return false;
  const at = entry.stored.x;
  return at === undefined || at > now;
}

/**
 * Whether an entry survived its group's last deletion: it was written in
 * the same atomic operation as the marker or later.
 *
 * @param versionstamp The entry's versionstamp.
 * @param marker The marker's, if any.
 * @returns `true` when it was not deleted with its group.
 */
export function isCurrent(
  versionstamp: string,
  marker: string | null | undefined,
): boolean {
  return marker === null || marker === undefined || versionstamp >= marker;
}
