/**
 * Writes applied at most once, however often they are sent. A request to a
 * member that stops answering may still be applied later (a paused member
 * proposes it when it resumes), so a write sent again elsewhere must not
 * apply a second time, and a lost answer must be recoverable.
 *
 * Every write transaction carries a marker key no other write uses: the
 * transaction runs only while the marker is absent (`create_revision` 0),
 * and writes it in the same revision, `"1"` when its own compares held and
 * `"0"` when they did not. Any later copy then finds the marker and changes
 * nothing, and its answer carries the marker: whether (and at which
 * revision) the first copy committed. Markers are attached to one lease of
 * the client, re-granted long before it ends, so they go away.
 *
 * @module
 */

import { StoreUnavailableError } from "../errors.ts";
import type { EtcdClient, Json } from "./_client.ts";
import { fromBase64, toBase64 } from "./_keys.ts";

/** A write transaction as the store builds it, before guarding. */
export interface WriteTxn {
  readonly compare: Json[];
  readonly success: Json[];
  /** Reads to run when the compares fail, such as what the key holds now. */
  readonly failure?: Json[] | undefined;
}

/** What a guarded write did, from its first application. */
export interface WriteResult {
  /** Whether its compares held (and its writes were applied). */
  readonly succeeded: boolean;
  /** The revision it committed at. */
  readonly revision: number;
  /**
   * The answers to its `success` operations, or to its `failure` ones when
   * its compares failed; `undefined` when this copy
   * found the write already applied by an earlier one, whose answers are
   * lost (read the keys at `revision - 1` for what they held).
   */
  readonly responses: Json[] | undefined;
}

// A marker outlives every retry of its write by far: the lease lives at
// least this many request timeouts, and a new one is taken when a third of
// it has passed.
const TTL_TIMEOUTS = 12;
const MIN_TTL_S = 60;

let counter = 0;
const instance = Array.from(
  crypto.getRandomValues(new Uint8Array(8)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");

/** The markers of one client, and their lease. */
export class Markers {
  #client: EtcdClient;
  #prefix: Uint8Array;
  #lease: { id: Promise<string>; until: number } | undefined;

  /**
   * @param client The client.
   * @param prefix Where markers live: `prefix + "m/w/"` of the store.
   */
  constructor(client: EtcdClient, prefix: Uint8Array) {
    this.#client = client;
    this.#prefix = prefix;
  }

  /**
   * A marker key no other write uses.
   *
   * @returns Its bytes.
   */
  next(): Uint8Array {
    const tag = new TextEncoder().encode(
      `${instance}.${(++counter).toString(36)}`,
    );
    const key = new Uint8Array(this.#prefix.length + tag.length);
    key.set(this.#prefix);
    key.set(tag, this.#prefix.length);
    return key;
  }

  /**
   * The lease markers are attached to, granted when first needed and again
   * once a third of its life has passed.
   *
   * @param op The operation, for error messages.
   * @returns The lease id.
   */
  lease(op: string): Promise<string> {
    const now = Date.now();
    if (this.#lease !== undefined && now < this.#lease.until) {
      return this.#lease.id;
    }
    const seconds = Math.max(
      MIN_TTL_S,
      Math.ceil(TTL_TIMEOUTS * this.#client.timeoutMs / 1000),
    );
    const id = this.#client.grant(op, seconds);
    const lease = { id, until: now + seconds * 1000 / 3 };
    this.#lease = lease;
    id.catch(() => {
      if (this.#lease === lease) this.#lease = undefined;
    });
    return id;
  }

  /** Forgets the lease, after etcd said it was gone. */
  forget(): void {
    this.#lease = undefined;
  }
}

/**
 * The transaction to send: `txn` guarded by `marker`.
 *
 * @param txn The compares and writes.
 * @param marker A key from {@linkcode Markers.prototype.next}.
 * @param lease The markers' lease.
 * @returns The guarded transaction.
 */
export function guard(txn: WriteTxn, marker: Uint8Array, lease: string): Json {
  const key = toBase64(marker);
  const mark = (value: string) => ({
    request_put: { key, value: btoa(value), lease },
  });
  const success = txn.compare.length === 0 ? [...txn.success, mark("1")] : [{
    request_txn: {
      compare: txn.compare,
      success: [...txn.success, mark("1")],
      failure: [...txn.failure ?? [], mark("0")],
    },
  }];
  return {
    compare: [{ key, target: "CREATE", result: "EQUAL", create_revision: 0 }],
    success,
    failure: [{ request_range: { key } }],
  };
}

/**
 * What a guarded write did, from the answer to one of its copies.
 *
 * @param op The operation, for error messages.
 * @param txn The write as given to {@linkcode guard}.
 * @param answer etcd's answer.
 * @returns Its outcome.
 * @throws {StoreUnavailableError} When the marker is gone too soon to tell.
 */
export function outcome(
  op: string,
  txn: WriteTxn,
  answer: { succeeded: boolean; revision: number; responses: Json[] },
): WriteResult {
  const { revision, responses } = answer;
  if (answer.succeeded) {
    if (txn.compare.length === 0) {
      return { succeeded: true, revision, responses: responses.slice(0, -1) };
    }
    const inner = responses[0]?.response_txn ?? {};
    const succeeded = inner.succeeded === true;
    const answers: Json[] = inner.responses ?? [];
    return { succeeded, revision, responses: answers.slice(0, -1) };
  }
  const kv = responses[0]?.response_range?.kvs?.[0];
  if (kv === undefined) {
    throw new StoreUnavailableError(
      op,
      "its marker expired before its outcome could be read",
      "unknown",
    );
  }
  const mark = new TextDecoder().decode(fromBase64(kv.value));
  return {
    succeeded: mark === "1",
    revision: Number(kv.mod_revision ?? 0),
    responses: undefined,
  };
}
