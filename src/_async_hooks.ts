/**
 * What `AsyncScopedStore` needs from an asynchronous store beyond its public
 * API: quota-checked writes that are atomic in the backend, and namespace
 * watchers and callbacks. `toAsync` and the etcd store provide them under
 * {@linkcode SCOPE_HOOKS}.
 *
 * @module
 */

import type { StoreEvent } from "./events.ts";

/** Quotas as numbers; `0` means unlimited. */
export interface Quota {
  readonly maxKeys: number;
  readonly maxGroups: number;
}

/** The scoped-view operations of one backend. */
export interface ScopeHooks {
  /** Throws `StoreClosedError` naming `op` once the store is closed. */
  open(op: string): void;
  /**
   * Writes `value` to `group` (already prefixed) unless that would take the
   * namespace past `quota`, atomically: concurrent writers never exceed it.
   * Throws `QuotaExceededError` naming `op` and writes nothing otherwise.
   */
  quotaWrite(
    op: string,
    namespace: string,
    quota: Quota,
    group: string,
    key: string,
    value: string,
    ttlMs: number | undefined,
  ): Promise<void>;
  /** Registers a callback for the events of one namespace. */
  onNamespaceChange(
    op: string,
    namespace: string,
    fn: (event: StoreEvent) => void,
  ): () => void;
}

/** The property under which a store offers its {@linkcode ScopeHooks}. */
export const SCOPE_HOOKS: unique symbol = Symbol("AsyncStore.scopeHooks");

/**
 * The hooks of a store, if it has any.
 *
 * @param store Anything.
 * @returns Its hooks, or `undefined`.
 */
export function scopeHooksOf(store: unknown): ScopeHooks | undefined {
  if (typeof store !== "object" || store === null) return undefined;
  return (store as { [SCOPE_HOOKS]?: ScopeHooks })[SCOPE_HOOKS];
}
