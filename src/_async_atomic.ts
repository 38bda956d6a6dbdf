/**
 * The atomic operations for any asynchronous backend, built on its
 * optimistic `transaction`: each reads the key and writes it in one
 * transaction, which commits only if the key did not change meanwhile, so
 * racing callers never lose an update. A backend with a cheaper native form
 * (one SQLite statement, one etcd compare-and-swap) uses its own; one without
 * delegates to these, with the same semantics and messages.
 *
 * @module
 */

import type { AsyncTransaction } from "./_async_tx.ts";
import { ATOMIC_OPS } from "./_check.ts";

/** What the operations need of a backend. */
export interface AtomicHost {
  /** Throws `StoreClosedError` naming `op` once the store is closed. */
  open(op: string): void;
  /** The backend's optimistic transaction. */
  transaction<T>(fn: (tx: AsyncTransaction) => Promise<T>): Promise<T>;
}

/** The five operations, as `AsyncStore` declares them. */
export type AtomicOps = Pick<
  AsyncTransaction,
  | "increment"
  | "setIfAbsent"
  | "compareAndSet"
  | "compareAndDelete"
  | "getAndDelete"
>;

/**
 * The atomic operations of `host`, each one optimistic transaction. The
 * transaction's view checks the arguments with the store's messages.
 *
 * @param host The backend.
 * @returns The operations.
 */
export function atomicViaTransaction(host: AtomicHost): AtomicOps {
  const run = <T>(op: string, fn: (tx: AsyncTransaction) => Promise<T>) => {
    try {
      host.open(op);
    } catch (error) {
      return Promise.reject(error);
    }
    return host.transaction(fn);
  };
  return {
    increment: (group, key, delta, ttlMs) =>
      run(
        ATOMIC_OPS.increment,
        (tx) => tx.increment(group, key, delta, ttlMs),
      ),
    setIfAbsent: (group, key, value, ttlMs) =>
      run(
        ATOMIC_OPS.setIfAbsent,
        (tx) => tx.setIfAbsent(group, key, value, ttlMs),
      ),
    compareAndSet: (group, key, expected, value, ttlMs) =>
      run(
        ATOMIC_OPS.compareAndSet,
        (tx) => tx.compareAndSet(group, key, expected, value, ttlMs),
      ),
    compareAndDelete: (group, key, expected) =>
      run(
        ATOMIC_OPS.compareAndDelete,
        (tx) => tx.compareAndDelete(group, key, expected),
      ),
    getAndDelete: (group, key) =>
      run(ATOMIC_OPS.getAndDelete, (tx) => tx.getAndDelete(group, key)),
  };
}
