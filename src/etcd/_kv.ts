/**
 * The etcd operations the store is built from: reading live entries (the
 * deadline decides, whatever the lease), scanning ranges at one revision,
 * writes tagged so that a retried one is recognised, and the leases that
 * clean expired keys up.
 *
 * @module
 */

import { StoreError } from "../errors.ts";
import type { EtcdClient, Json, KeyValue } from "./_client.ts";
import { rangeResult } from "./_client.ts";
import {
  guard,
  Markers,
  outcome,
  type WriteResult,
  type WriteTxn,
} from "./_once.ts";
import {
  decodeValue,
  encodeValue,
  fromBase64,
  type KeySpace,
  prefixEnd,
  type StoredValue,
  toBase64,
} from "./_keys.ts";

/** Entries read at one revision. */
export interface Scan {
  entries: Entry[];
  revision: number;
}

/** A value to write, with its deadline and the TTL that gave it. */
export interface Put {
  readonly group: string;
  readonly key: string;
  readonly value: string;
  /** The deadline, ms epoch, if any. */
  readonly expiresAt?: number | undefined;
  /** The time to live that gave the deadline, for the lease. */
  readonly ttlMs?: number | undefined;
  /**
   * Keep the key's lease (`ignore_lease`): the key exists and keeps its
   * deadline, as an increment of a live counter does.
   */
  readonly keepLease?: boolean | undefined;
}

/**
 * What a key held when this instance last read or wrote it: a guess for a
 * compare (`modRevision` 0: absent), never taken as the truth.
 */
export interface Recent {
  readonly modRevision: number;
  /** The stored bytes; `undefined` when absent. */
  readonly bytes: Uint8Array | undefined;
  /** The store revision at which it held. */
  readonly at: number;
}

/** A live or expired entry as read, with its revision. */
export interface Entry {
  readonly group: string;
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly stored: StoredValue;
  readonly modRevision: number;
}

/** etcd's default limits on one transaction. */
export const MAX_TXN_OPS = 128;
/** The changes a write may make: one operation is its marker. */
export const MAX_TXN_CHANGES = MAX_TXN_OPS - 1;
/** etcd's default `--max-request-bytes`, 1.5 MiB. */
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/**
 * What a pair of a range says its key holds (no pair: absent), at `at`.
 *
 * @param pair The key's pair, or `undefined`.
 * @param at The revision of the read.
 * @returns The state to remember.
 */
export function recentOf(pair: KeyValue | undefined, at: number): Recent {
  return { modRevision: pair?.modRevision ?? 0, bytes: pair?.value, at };
}

const PAGE = 1_000;
// Enough keys for a service's hot counters and locks; older ones are
// forgotten first, and large values never kept: at most 4 MiB in all.
const RECENT_KEYS = 1_024;
const RECENT_BYTES = 4_096;
// Leases are shared by the keys whose deadlines fall in one bucket, and
// outlive every deadline in it by a margin: they only clean up.
const LEASE_BUCKET_MS = 5_000;
const LEASE_MARGIN_S = 2;

let tagCounter = 0;
const instance = crypto.randomUUID().slice(0, 8);

/**
 * What the write path asks of the event pump: to run a write and remember
 * its revision as this instance's own (so its events say `"local"`).
 */
export interface OwnWrites {
  /** Runs `write`, which resolves to its revision (`0`: nothing written). */
  own(write: () => Promise<number>): Promise<number>;
}

/** Reads and writes of one store prefix. */
export class Kv {
  readonly client: EtcdClient;
  readonly keys: KeySpace;
  readonly pump: OwnWrites;
  #leases = new Map<number, Promise<string>>();
  #markers: Markers;
  #recent = new Map<string, Recent>();

  constructor(client: EtcdClient, keys: KeySpace, pump: OwnWrites) {
    this.#markers = new Markers(client, keys.writeMarkers);
    this.client = client;
    this.keys = keys;
    this.pump = pump;
  }

  /**
   * A tag no other write carries.
   *
   * @returns The tag.
   */
  tag(): string {
    return `${instance}.${(++tagCounter).toString(36)}`;
  }

  /**
   * Reads one key.
   *
   * @param op The operation.
   * @param group The group.
   * @param key The key.
   * @returns The entry, expired or not, and the revision read.
   */
  async read(
    op: string,
    group: string,
    key: string,
  ): Promise<{ entry: Entry | undefined; revision: number }> {
    const bytes = this.keys.key(group, key);
    const result = await this.client.range(op, bytes);
    const kv = result.kvs[0];
    this.note(bytes, recentOf(kv, result.revision));
    return {
      entry: kv === undefined ? undefined : this.#entry(kv, group, key),
      revision: result.revision,
    };
  }

  /**
   * Reads what a key holds now, and remembers it.
   *
   * @param op The operation.
   * @param key The etcd key.
   * @returns Its revision and bytes, at the revision read.
   */
  async readRecent(op: string, key: Uint8Array): Promise<Recent> {
    const result = await this.client.range(op, key);
    const state = recentOf(result.kvs[0], result.revision);
    this.note(key, state);
    return state;
  }

  /**
   * What a key held when last read or written here, if remembered.
   *
   * @param key The etcd key.
   * @returns Its revision and bytes then, or `undefined`.
   */
  recent(key: Uint8Array): Recent | undefined {
    return this.#recent.get(toBase64(key));
  }

  /**
   * Remembers what a key holds, as read or written.
   *
   * @param key The etcd key.
   * @param state What it held, and at which revision.
   */
  note(key: Uint8Array, state: Recent): void {
    const id = toBase64(key);
    const known = this.#recent.get(id);
    // A read answered after a newer write must not win over it.
    if (known !== undefined && known.at > state.at) return;
    this.#recent.delete(id);
    if ((state.bytes?.length ?? 0) > RECENT_BYTES) return;
    this.#recent.set(id, state);
    if (this.#recent.size > RECENT_KEYS) {
      this.#recent.delete(this.#recent.keys().next().value as string);
    }
  }

  /**
   * Reads, in one round trip at one revision, a key and upper bounds of its
   * namespace's usage: rows and (with `groups`) group names, expired
   * included.
   *
   * @param op The operation.
   * @param group The key's group.
   * @param key The key.
   * @param prefix The namespace's group prefix.
   * @param groups Whether to list the namespace's keys for its groups.
   * @returns The entry, the bounds and the revision.
   */
  async bounds(
    op: string,
    group: string,
    key: string,
    prefix: string,
    groups: boolean,
  ): Promise<
    {
      entry: Entry | undefined;
      rows: number;
      groups: Set<string>;
      revision: number;
    }
  > {
    const start = this.keys.groupsStart(prefix);
    const range = {
      key: toBase64(start),
      range_end: toBase64(prefixEnd(start)),
    };
    const success: Json[] = [
      { request_range: { key: toBase64(this.keys.key(group, key)) } },
      { request_range: { ...range, count_only: true } },
    ];
    if (groups) success.push({ request_range: { ...range, keys_only: true } });
    const answer = await this.client.txn(op, { compare: [], success });
    const [one, count, names] = answer.responses.map((r: Json) =>
      rangeResult(r.response_range ?? {})
    );
    const kv = one?.kvs[0];
    const seen = new Set<string>();
    for (const name of names?.kvs ?? []) {
      const parsed = this.keys.parse(name.key);
      if (parsed !== undefined) seen.add(parsed[0]);
    }
    return {
      entry: kv === undefined ? undefined : this.#entry(kv, group, key),
      rows: count?.count ?? 0,
      groups: seen,
      revision: answer.revision,
    };
  }

  /**
   * Reads every entry from `start` up to `end`, page by page, all at one
   * revision.
   *
   * @param op The operation.
   * @param start The first key.
   * @param end The end of the range.
   * @returns The entries (expired ones included) and the revision.
   */
  async scan(
    op: string,
    start: Uint8Array,
    end: Uint8Array,
  ): Promise<Scan> {
    const entries: Entry[] = [];
    let from = start;
    let revision: number | undefined;
    for (;;) {
      const page = await this.client.range(op, from, {
        end,
        limit: PAGE,
        ...(revision === undefined ? {} : { revision }),
      });
      revision ??= page.revision;
      for (const kv of page.kvs) {
        const parsed = this.keys.parse(kv.key);
        if (parsed === undefined) continue;
        const entry = this.#entry(kv, parsed[0], parsed[1]);
        if (entry !== undefined) entries.push(entry);
      }
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) return { entries, revision };
      from = new Uint8Array([...last.key, 0]);
    }
  }

  /**
   * Reads the entries of one group.
   *
   * @param op The operation.
   * @param group The group.
   * @returns Its entries, in key order, and the revision.
   */
  scanGroup(op: string, group: string): Promise<Scan> {
    const start = this.keys.groupStart(group);
    return this.scan(op, start, prefixEnd(start));
  }

  /**
   * Reads the entries of every group starting with `prefix`.
   *
   * @param op The operation.
   * @param prefix A group prefix.
   * @returns The entries, in group then key order, and the revision.
   */
  scanGroups(op: string, prefix: string): Promise<Scan> {
    const start = this.keys.groupsStart(prefix);
    return this.scan(op, start, prefixEnd(start));
  }

  /**
   * The data entries among raw pairs.
   *
   * @param kvs Pairs of a range.
   * @returns Their entries, in order; other keys are left out.
   */
  entries(kvs: readonly KeyValue[]): Entry[] {
    const out: Entry[] = [];
    for (const kv of kvs) {
      const parsed = this.keys.parse(kv.key);
      if (parsed === undefined) continue;
      const entry = this.#entry(kv, parsed[0], parsed[1]);
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  #entry(kv: KeyValue, group: string, key: string): Entry | undefined {
    const stored = decodeValue(kv.value);
    if (stored === undefined) return undefined;
    return { group, key, bytes: kv.key, stored, modRevision: kv.modRevision };
  }

  /**
   * A lease that outlives `expiresAt` (by the real clock, `ttlMs` from
   * now), shared with other keys of the same bucket.
   *
   * @param op The operation.
   * @param ttlMs The key's time to live.
   * @returns The lease id.
   */
  lease(op: string, ttlMs: number): Promise<string> {
    const now = Date.now();
    const bucket = Math.ceil((now + ttlMs) / LEASE_BUCKET_MS);
    let lease = this.#leases.get(bucket);
    if (lease === undefined) {
      const seconds = Math.ceil((bucket * LEASE_BUCKET_MS - now) / 1000) +
        LEASE_MARGIN_S;
      lease = this.client.grant(op, Math.min(seconds, 2 ** 31 - 1));
      lease.catch(() => this.#leases.delete(bucket));
      for (const old of this.#leases.keys()) {
        if (old * LEASE_BUCKET_MS < now) this.#leases.delete(old);
      }
      this.#leases.set(bucket, lease);
    }
    return lease;
  }

  /** Forgets the cached leases, after etcd said one was gone. */
  forgetLeases(): void {
    this.#leases.clear();
  }

  /**
   * A put request of a value with its deadline.
   *
   * @param op The operation.
   * @param put What to write.
   * @returns The request and the stored bytes.
   */
  async putRequest(
    op: string,
    { group, key, value, expiresAt, ttlMs, keepLease }: Put,
  ): Promise<{ request: Json; key: Uint8Array; bytes: Uint8Array }> {
    const keyBytes = this.keys.key(group, key);
    const bytes = encodeValue(value, expiresAt, this.tag());
    const request: Json = { key: toBase64(keyBytes), value: toBase64(bytes) };
    if (keepLease) request.ignore_lease = true;
    else if (ttlMs !== undefined) request.lease = await this.lease(op, ttlMs);
    return { request, key: keyBytes, bytes };
  }

  /**
   * Writes one value through {@linkcode Kv.prototype.write}, if `compare`
   * holds, and remembers what it wrote.
   *
   * @param op The operation.
   * @param entry What to write.
   * @param compare What must hold.
   * @param failure Reads to run when it does not.
   * @returns The write's outcome.
   * @throws {StoreUnavailableError} As {@linkcode Kv.prototype.write}.
   */
  async put(
    op: string,
    entry: Put,
    compare: Json[] = [],
    failure?: Json[],
  ): Promise<WriteResult> {
    for (let attempt = 0;; attempt++) {
      const put = await this.putRequest(op, entry);
      try {
        const result = await this.write(op, {
          compare,
          success: [{ request_put: put.request }],
          failure,
        });
        if (result.succeeded) {
          const { revision } = result;
          this.note(put.key, {
            modRevision: revision,
            bytes: put.bytes,
            at: revision,
          });
        }
        return result;
      } catch (error) {
        // A lease etcd let go early (clocks differ): take a fresh one.
        if (attempt > 0 || !/lease expired/.test(String(error))) throw error;
        this.forgetLeases();
      }
    }
  }

  /**
   * Deletes one key, if `compare` holds, and tells what it held.
   *
   * @param op The operation.
   * @param key The etcd key.
   * @param compare What must hold.
   * @param failure Reads to run when it does not.
   * @returns The write's outcome, and the bytes the key held just before
   * (`undefined`: absent, or the compares failed).
   * @throws {StoreUnavailableError} As {@linkcode Kv.prototype.write}.
   */
  async take(
    op: string,
    key: Uint8Array,
    compare: Json[] = [],
    failure?: Json[],
  ): Promise<{ result: WriteResult; prev: Uint8Array | undefined }> {
    const result = await this.write(op, {
      compare,
      success: [{
        request_delete_range: { key: toBase64(key), prev_kv: true },
      }],
      failure,
    });
    if (!result.succeeded) return { result, prev: undefined };
    this.note(key, { modRevision: 0, bytes: undefined, at: result.revision });
    let prev: Uint8Array | undefined;
    if (result.responses === undefined) {
      // Applied by a copy whose answer was lost: what it deleted is what
      // the key held just before.
      prev = (await this.readAt(op, key, result.revision - 1))[0]?.value;
    } else {
      const answer = result.responses[0]?.response_delete_range;
      if (Number(answer?.deleted ?? 0) > 0) {
        prev = fromBase64(answer.prev_kvs?.[0]?.value);
      }
    }
    return { result, prev };
  }

  /**
   * Runs a transaction as a write of this instance: guarded by a marker so
   * that sending it again is safe (see `_once.ts`), its events delivered
   * before it resolves.
   *
   * @param op The operation.
   * @param txn The compares and writes.
   * @returns Whether its compares held, its revision and its answers.
   * @throws {StoreUnavailableError} When no member answered in time (its
   * `outcome` says whether it may have been applied).
   */
  async write(op: string, txn: WriteTxn): Promise<WriteResult> {
    const marker = this.#markers.next();
    let result: WriteResult | undefined;
    await this.pump.own(async () => {
      for (let attempt = 0;; attempt++) {
        const body = guard(txn, marker, await this.#markers.lease(op));
        try {
          result = outcome(op, txn, await this.client.txn(op, body, true));
          break;
        } catch (error) {
          if (!isLeaseGone(error)) throw error;
          // Refused as a whole: nothing was applied. The markers' lease is
          // taken afresh once; a key's lease, by the caller.
          this.#markers.forget();
          this.forgetLeases();
          if (attempt > 0) {
            throw new StoreError(
              `Cannot ${op}: its lease expired on the way; try again`,
              { cause: error },
            );
          }
        }
      }
      return result.succeeded && txn.success.length > 0 ? result.revision : 0;
    });
    return result as WriteResult;
  }

  /**
   * Reads one key as it was at a revision: what a write whose answer was
   * lost found there.
   *
   * @param op The operation.
   * @param key The key.
   * @param end The end of a range, if any.
   * @param revision The revision.
   * @returns The pairs.
   */
  async readAt(
    op: string,
    key: Uint8Array,
    revision: number,
    end?: Uint8Array,
  ): Promise<KeyValue[]> {
    const result = await this.client.range(op, key, {
      revision,
      ...(end === undefined ? {} : { end }),
    });
    return result.kvs;
  }

  /**
   * Deletes expired entries if they are unchanged, in transactions of at
   * most 64.
   *
   * @param op The operation.
   * @param expired Entries read as expired.
   * @returns How many were deleted.
   */
  async purge(op: string, expired: readonly Entry[]): Promise<number> {
    let removed = 0;
    for (let i = 0; i < expired.length; i += 64) {
      const chunk = expired.slice(i, i + 64);
      // One compare per key: a key written since it was read stays.
      for (const entry of chunk) {
        const { succeeded } = await this.write(op, {
          compare: [modEquals(entry.bytes, entry.modRevision)],
          success: [{
            request_delete_range: { key: toBase64(entry.bytes) },
          }],
        });
        if (succeeded) removed++;
      }
    }
    return removed;
  }
}

/**
 * A compare that holds while a key is unchanged (0: absent).
 *
 * @param key The key.
 * @param modRevision The revision it had when read.
 * @returns The compare.
 */
export function modEquals(key: Uint8Array, modRevision: number): Json {
  return {
    key: toBase64(key),
    target: "MOD",
    result: "EQUAL",
    mod_revision: modRevision,
  };
}

/**
 * A compare that holds while no key of a range was written after
 * `revision`. Deletions are not seen: use it only where they cannot hurt.
 *
 * @param start The range start.
 * @param revision The revision read.
 * @returns The compare.
 */
export function unchangedSince(start: Uint8Array, revision: number): Json {
  return {
    key: toBase64(start),
    range_end: toBase64(prefixEnd(start)),
    target: "MOD",
    result: "LESS",
    mod_revision: revision + 1,
  };
}

export { rangeResult };

function isLeaseGone(error: unknown): boolean {
  return error instanceof Error && /lease not found/i.test(error.message);
}
