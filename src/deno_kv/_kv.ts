/**
 * The Deno KV operations the store is built from: reads that decide
 * liveness (the deadline in the value, the group's deletion marker), and
 * the one write path, {@linkcode KvOps.prototype.commit}, which turns a list
 * of changes into one atomic operation: the entries, their expiry index,
 * the change log and the head, checked against the head read before.
 *
 * @module
 */

import { StoreError } from "../errors.ts";
import type { StoreEvent } from "../events.ts";
import { decodeUtf8, encodeUtf8 } from "../_utf8.ts";
import {
  CHUNK_BYTES,
  type ChunkRef,
  INLINE_UNITS,
  isCurrent,
  isLive,
  type KeySpace,
  LOG_SIZE,
  type LogRecord,
  type StoredEntry,
} from "./_keys.ts";

/** An entry as read, live or not. */
export interface Entry {
  readonly group: string;
  readonly key: string;
  readonly stored: StoredEntry;
  readonly versionstamp: string;
}

/** One change a write makes. */
export type Change =
  | {
    type: "set";
    group: string;
    key: string;
    value: string;
    expiresAt?: number | undefined;
  }
  | { type: "delete" | "expire"; group: string; key: string }
  | { type: "delete_group"; group: string; key: "" };

/** A change with the stored entry it replaces (live or not). */
export interface Planned {
  readonly change: Change;
  readonly old?: Entry | undefined;
}

/** The head as read: the last logged `seq` and its versionstamp. */
export interface Head {
  readonly seq: number;
  readonly versionstamp: string | null;
}

/** What one commit did. */
export interface Committed {
  readonly events: StoreEvent[];
  /** The `seq` of its first event. */
  readonly first: number;
  /** The `seq` of its last event. */
  readonly last: number;
}

/** A value encoded for writing: inline, or chunks (staged or not). */
export interface Encoded {
  readonly stored: StoredEntry;
  readonly chunks: readonly Uint8Array[];
  /**
   * For chunks too large for the commit itself, written beforehand: the
   * versionstamp of their staging record, which the commit checks.
   */
  readonly staged?: string;
}

/** Values past this size are staged before their commit. */
const STAGE_BYTES = 600_000;
/** The largest value this store takes. */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024;
/** Deno KV's `expireIn` outlives a deadline by this: it only cleans up. */
const EXPIRE_GRACE_MS = 60_000;
const MAX_ATTEMPTS = 64;

/** The reads and the write path over one Deno KV database. */
export class KvOps {
  readonly kv: Deno.Kv;
  readonly keys: KeySpace;

  /**
   * @param kv The database.
   * @param keys The store's key layout.
   */
  constructor(kv: Deno.Kv, keys: KeySpace) {
    this.kv = kv;
    this.keys = keys;
  }

  /**
   * Reads the head.
   *
   * @returns The head.
   */
  async head(): Promise<Head> {
    return toHead(await this.kv.get<number>(this.keys.head));
  }

  /**
   * Reads one entry with its group's marker (and the head), in one read.
   *
   * @param group The group.
   * @param key The key.
   * @param withHead Whether to read the head too.
   * @returns The entry (live or not), the marker's versionstamp, the head.
   */
  async read(
    group: string,
    key: string,
    withHead = false,
  ): Promise<{ entry?: Entry; marker: string | null; head: Head }> {
    const keys = [this.keys.entry(group, key), this.keys.marker(group)];
    if (withHead) keys.push(this.keys.head);
    const [e, m, h] = await this.kv.getMany(keys);
    const entry = toEntry(group, key, e);
    const head = h === undefined
      ? { seq: 0, versionstamp: null }
      : toHead(h as Deno.KvEntryMaybe<number>);
    return {
      ...(entry ? { entry } : {}),
      marker: m?.versionstamp ?? null,
      head,
    };
  }

  /**
   * The value of an entry, its chunks read if it has any.
   *
   * @param stored The stored entry.
   * @returns The value, or `undefined` when its chunks are gone (it was
   * replaced meanwhile: read again).
   */
  async value(stored: StoredEntry): Promise<string | undefined> {
    if (stored.c === undefined) return stored.v ?? "";
    const [id, count] = stored.c;
    const parts: Uint8Array[] = [];
    for await (const chunk of this.kv.list<Uint8Array>(this.keys.chunks(id))) {
      parts.push(chunk.value);
    }
    if (parts.length !== count) return undefined;
    let size = 0;
    for (const part of parts) size += part.length;
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    return decodeUtf8(bytes);
  }

  /**
   * The current entries (not deleted with their group) of the groups a
   * selector covers, in group and key order. A scan long enough to take
   * several reads is repeated when a group it covers was deleted meanwhile,
   * so that nobody sees part of a group.
   *
   * @param op The operation, for messages.
   * @param selector The groups.
   * @param stop Ends the scan at the first group it returns `true` for.
   * @returns The entries.
   */
  async scan(
    op: string,
    selector: Deno.KvListSelector,
    stop: (group: string) => boolean = () => false,
  ): Promise<Entry[]> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entries: Entry[] = [];
      const markers = new Map<string, string>();
      let read = 0;
      const list = this.kv.list<StoredEntry>(selector, { batchSize: 1_000 });
      for await (const item of list) {
        read++;
        const group = item.key[2] as string;
        if (stop(group)) break;
        const key = item.key[3];
        if (key instanceof Uint8Array) {
          markers.set(group, item.versionstamp);
          continue;
        }
        if (!isCurrent(item.versionstamp, markers.get(group))) continue;
        entries.push({
          group,
          key: key as string,
          stored: item.value,
          versionstamp: item.versionstamp,
        });
      }
      // One read is a snapshot; more are not: a group deleted meanwhile
      // changed its marker, and its entries may have gone one by one.
      if (read < 1_000 || await this.#markersHeld(entries, markers)) {
        return entries;
      }
    }
    throw new StoreError(
      `Cannot ${op}: groups kept being deleted while they were read`,
    );
  }

  async #markersHeld(
    entries: readonly Entry[],
    markers: ReadonlyMap<string, string>,
  ): Promise<boolean> {
    const groups = [...new Set(entries.map((e) => e.group))];
    for (let i = 0; i < groups.length; i += 10) {
      const some = groups.slice(i, i + 10);
      const now = await this.kv.getMany(some.map((g) => this.keys.marker(g)));
      for (let j = 0; j < some.length; j++) {
        const was = markers.get(some[j] as string) ?? null;
        if ((now[j]?.versionstamp ?? null) !== was) return false;
      }
    }
    return true;
  }

  /**
   * The live entries of one group with their values, read consistently.
   *
   * @param op The operation.
   * @param group The group.
   * @param now The store clock.
   * @returns The entries and values, in key order.
   */
  async liveGroup(
    op: string,
    group: string,
    now: number,
  ): Promise<{ entry: Entry; value: string }[]> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entries = await this.scan(op, this.keys.group(group));
      const out = await this.withValues(entries, now);
      if (out !== undefined) return out;
    }
    throw new StoreError(`Cannot ${op}: values kept changing while read`);
  }

  /**
   * The live entries among `entries`, with their values.
   *
   * @param entries Current entries.
   * @param now The store clock.
   * @returns Entries and values; `undefined` when a large value was
   * replaced meanwhile (read again).
   */
  async withValues(
    entries: readonly Entry[],
    now: number,
  ): Promise<{ entry: Entry; value: string }[] | undefined> {
    const out: { entry: Entry; value: string }[] = [];
    for (const entry of entries) {
      if (!isLive(entry, null, now)) continue;
      const value = entry.stored.c === undefined
        ? entry.stored.v ?? ""
        : await this.value(entry.stored);
      if (value === undefined) return undefined;
      out.push({ entry, value });
    }
    return out;
  }

  /**
   * Encodes a value: inline when small, else as chunks; past what one
   * atomic operation holds, the chunks are written now under a staging
   * record and only named by the commit.
   *
   * @param op The operation, for messages.
   * @param value The value.
   * @param expiresAt Its deadline.
   * @param now The store clock.
   * @returns The encoded value.
   * @throws {RangeError} When the value is past {@linkcode MAX_VALUE_BYTES}.
   */
  async encode(
    op: string,
    value: string,
    expiresAt: number | undefined,
    now: number,
  ): Promise<Encoded> {
    const x = expiresAt === undefined ? {} : { x: expiresAt };
    if (value.length <= INLINE_UNITS) {
      return { stored: { v: value, ...x }, chunks: [] };
    }
    const bytes = encodeUtf8(value);
    if (bytes.length > MAX_VALUE_BYTES) {
      throw new RangeError(
        `Cannot ${op}: value takes ${bytes.length} bytes; the Deno KV store holds values up to ${MAX_VALUE_BYTES} bytes (16 MiB)`,
      );
    }
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += CHUNK_BYTES) {
      chunks.push(bytes.subarray(i, i + CHUNK_BYTES));
    }
    const ref: ChunkRef = [crypto.randomUUID(), chunks.length];
    const stored = { c: ref, ...x };
    if (bytes.length <= STAGE_BYTES) return { stored, chunks };
    return { stored, chunks, staged: await this.#stage(ref[0], chunks, now) };
  }

  // Chunks written under a staging record: if the writer dies before its
  // commit names them, housekeeping finds the record and removes them.
  async #stage(
    id: string,
    chunks: readonly Uint8Array[],
    now: number,
  ): Promise<string> {
    const record = await this.kv.set(this.keys.stage(id), {
      at: now,
      n: chunks.length,
    });
    for (let i = 0; i < chunks.length; i += 10) {
      const atomic = this.kv.atomic();
      for (let j = i; j < Math.min(i + 10, chunks.length); j++) {
        atomic.set(this.keys.chunk(id, j), chunks[j]);
      }
      await atomic.commit();
    }
    return record.versionstamp;
  }

  /**
   * Removes the chunks of a staged value that was not committed.
   *
   * @param encoded The encoded value.
   */
  async unstage(encoded: Encoded): Promise<void> {
    const ref = encoded.stored.c;
    if (encoded.staged === undefined || ref === undefined) return;
    await this.dropChunks(ref, [this.keys.stage(ref[0])]);
  }

  /**
   * Deletes the chunks of a value, and other keys, in atomic operations.
   *
   * @param ref The chunks.
   * @param also Keys deleted with the last chunks.
   */
  async dropChunks(ref: ChunkRef, also: Deno.KvKey[] = []): Promise<void> {
    const keys: Deno.KvKey[] = [];
    for (let i = 0; i < ref[1]; i++) keys.push(this.keys.chunk(ref[0], i));
    keys.push(...also);
    for (let i = 0; i < keys.length; i += 500) {
      const atomic = this.kv.atomic();
      for (const key of keys.slice(i, i + 500)) atomic.delete(key);
      await atomic.commit();
    }
  }

  /**
   * The one write path: applies `planned` in one atomic operation if the
   * head (and every check) is unchanged, logging one event per change.
   *
   * @param op The operation, for messages.
   * @param head The head read before the changes were decided.
   * @param planned The changes, with the entries they replace.
   * @param now The store clock.
   * @param extra Checks of other keys, and encoded values by change index.
   * @returns What committed, or `undefined` on a conflict.
   * @throws {StoreError} When the operation is past Deno KV's limits.
   */
  async commit(
    op: string,
    head: Head,
    planned: readonly Planned[],
    now: number,
    extra: {
      checks?: readonly Deno.AtomicCheck[];
      encoded?: ReadonlyMap<number, Encoded>;
    } = {},
  ): Promise<Committed | undefined> {
    const atomic = this.kv.atomic().check({
      key: this.keys.head,
      versionstamp: head.versionstamp,
    });
    for (const check of extra.checks ?? []) atomic.check(check);
    const events: StoreEvent[] = [];
    let seq = head.seq;
    for (const [i, { change, old }] of planned.entries()) {
      seq++;
      const encoded = change.type === "set"
        ? extra.encoded?.get(i) ??
          await this.encode(op, change.value, change.expiresAt, now)
        : undefined;
      const record = this.#mutate(atomic, change, old, seq, now, encoded);
      atomic.set(this.keys.log(seq), record);
      if (seq > LOG_SIZE) atomic.delete(this.keys.log(seq - LOG_SIZE));
      events.push(toEvent(change, seq, now, "local"));
    }
    if (seq === head.seq) return { events, first: seq + 1, last: seq };
    atomic.set(this.keys.head, seq);
    let result: Deno.KvCommitResult | Deno.KvCommitError;
    try {
      result = await atomic.commit();
    } catch (error) {
      throw limitError(op, error);
    }
    if (!result.ok) return undefined;
    return { events, first: head.seq + 1, last: seq };
  }

  // The mutations of one change; returns its log record.
  #mutate(
    atomic: Deno.AtomicOperation,
    change: Change,
    old: Entry | undefined,
    seq: number,
    now: number,
    encoded: Encoded | undefined,
  ): LogRecord {
    const { group, key } = change;
    const keys = this.keys;
    if (change.type === "delete_group") {
      atomic.set(keys.marker(group), seq);
      atomic.set(keys.cleanup(group), seq);
      return { t: "delete_group", g: group, k: "", ts: now };
    }
    const oldAt = old?.stored.x;
    const oldChunks = old?.stored.c;
    if (oldChunks !== undefined) {
      atomic.set(keys.garbage(seq, oldChunks[0]), oldChunks[1]);
    }
    if (change.type !== "set" || encoded === undefined) {
      atomic.delete(keys.entry(group, key));
      if (oldAt !== undefined) atomic.delete(keys.expiry(oldAt, group, key));
      return { t: change.type as "delete", g: group, k: key, ts: now };
    }
    const { stored } = encoded;
    const at = stored.x;
    atomic.set(
      keys.entry(group, key),
      stored,
      at === undefined ? {} : { expireIn: at - now + EXPIRE_GRACE_MS },
    );
    if (oldAt !== undefined && oldAt !== at) {
      atomic.delete(keys.expiry(oldAt, group, key));
    }
    if (at !== undefined) {
      atomic.set(keys.expiry(at, group, key), stored.c ?? null);
    }
    if (stored.c !== undefined) {
      const id = stored.c[0];
      if (encoded.staged !== undefined) {
        // Housekeeping may have taken a stalled staging away: then fail.
        atomic.check({ key: keys.stage(id), versionstamp: encoded.staged });
        atomic.delete(keys.stage(id));
      } else {
        encoded.chunks.forEach((c, i) => atomic.set(keys.chunk(id, i), c));
      }
    }
    const body = stored.c === undefined ? { v: change.value } : { c: stored.c };
    return {
      t: "set",
      g: group,
      k: key,
      ...body,
      ...(at === undefined ? {} : { x: at }),
      ts: now,
    };
  }
}

/**
 * Builds the event of a change.
 *
 * @param change The change.
 * @param seq Its position.
 * @param timestamp The store clock at the write.
 * @param origin Who wrote it.
 * @returns The event.
 */
export function toEvent(
  change: Change,
  seq: number,
  timestamp: number,
  origin: "local" | "remote",
): StoreEvent {
  const event: StoreEvent = {
    type: change.type,
    group: change.group,
    key: change.key,
    timestamp,
    origin,
    seq,
  };
  if (change.type === "set") {
    event.value = change.value;
    if (change.expiresAt !== undefined) event.expiresAt = change.expiresAt;
  }
  return event;
}

function toHead(entry: Deno.KvEntryMaybe<number>): Head {
  return { seq: entry.value ?? 0, versionstamp: entry.versionstamp };
}

/**
 * An entry as read, or `undefined` when absent.
 *
 * @param group The group.
 * @param key The key.
 * @param e What Deno KV returned.
 * @returns The entry.
 */
export function toEntry(
  group: string,
  key: string,
  e: Deno.KvEntryMaybe<unknown> | undefined,
): Entry | undefined {
  if (e === undefined || e.versionstamp === null) return undefined;
  return {
    group,
    key,
    stored: e.value as StoredEntry,
    versionstamp: e.versionstamp,
  };
}

/**
 * Turns Deno KV's refusal of an oversized atomic operation into a
 * `StoreError` naming the operation; other errors pass.
 *
 * @param op The operation.
 * @param error What `commit` threw.
 * @returns The error to throw.
 */
export function limitError(op: string, error: unknown): unknown {
  const message = error instanceof Error ? error.message : String(error);
  if (!/too large|too many/i.test(message)) return error;
  return new StoreError(
    `Cannot ${op}: Deno KV refused it as one atomic operation (${message}); nothing was written`,
    { cause: error },
  );
}
