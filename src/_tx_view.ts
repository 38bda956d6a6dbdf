/**
 * The object a transaction's function receives: the store's (or scoped
 * view's) own methods, usable only until the function returns.
 *
 * @module
 */

import { StoreError } from "./errors.ts";
import type { Transaction } from "./store.ts";

const TRANSACTION_METHODS = [
  "get",
  "set",
  "setWithTTL",
  "delete",
  "deleteGroup",
  "count",
  "getAll",
  "exists",
  "increment",
  "setIfAbsent",
  "compareAndSet",
  "compareAndDelete",
  "getAndDelete",
] as const satisfies readonly (keyof Transaction)[];

/**
 * Builds a {@linkcode Transaction} whose methods call `target`'s until
 * `end()` is called, after which they throw {@linkcode StoreError}. Shared by
 * the store and the scoped view, whose transactions differ only in the
 * target.
 *
 * @param target The store or scoped view whose methods the view calls.
 * @returns The view, and the function that ends it.
 */
export function transactionView(
  target: Transaction,
): { tx: Transaction; end(): void } {
  let live = true;
  const view = {} as Record<keyof Transaction, unknown>;
  for (const name of TRANSACTION_METHODS) {
    const method = target[name] as (...args: unknown[]) => unknown;
    view[name] = (...args: unknown[]) => {
      if (!live) {
        throw new StoreError(
          `Cannot use transaction: it ended when its function returned`,
        );
      }
      return method.apply(target, args);
    };
  }
  return { tx: view as unknown as Transaction, end: () => live = false };
}
