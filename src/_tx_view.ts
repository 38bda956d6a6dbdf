/**
 * The object a transaction's function receives: the store's (or scoped
 * view's) own methods, usable only until the function returns.
 *
 * @module
 */

import { StoreError } from "./errors.ts";

/**
 * The view of a store inside {@linkcode Store.prototype.transaction}: the
 * same methods with the same semantics, all running inside one SQLite write
 * transaction. Reads see the transaction's own writes. It may be used only
 * until the function it was passed to returns.
 *
 * @example Move a value atomically
 * ```ts
 * import { Store, type Transaction } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * store.set("inbox", "msg", "hello");
 * const move = (tx: Transaction) => {
 *   const value = tx.get("inbox", "msg");
 *   if (value === undefined) return false;
 *   tx.delete("inbox", "msg");
 *   tx.set("archive", "msg", value);
 *   return true;
 * };
 * assert.equal(store.transaction(move), true);
 * assert.equal(store.get("archive", "msg"), "hello");
 * ```
 */
export interface Transaction {
  /** As {@linkcode Store.prototype.get}. */
  get(group: string, key: string): string | undefined;
  /** As {@linkcode Store.prototype.set}. */
  set(group: string, key: string, value: string): void;
  /** As {@linkcode Store.prototype.setWithTTL}. */
  setWithTTL(group: string, key: string, value: string, ttlMs: number): void;
  /** As {@linkcode Store.prototype.delete}. */
  delete(group: string, key: string): boolean;
  /** As {@linkcode Store.prototype.deleteGroup}. */
  deleteGroup(group: string): number;
  /** As {@linkcode Store.prototype.count}. */
  count(group: string): number;
  /** As {@linkcode Store.prototype.getAll}. */
  getAll(group: string): Map<string, string>;
  /** As {@linkcode Store.prototype.exists}. */
  exists(group: string, key: string): boolean;
}

const TRANSACTION_METHODS = [
  "get",
  "set",
  "setWithTTL",
  "delete",
  "deleteGroup",
  "count",
  "getAll",
  "exists",
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
