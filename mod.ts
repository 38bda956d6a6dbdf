/**
 * A fast, embedded key-value store for Deno services on the runtime's
 * built-in SQLite (`node:sqlite`). Values are strings organised by group and
 * key, with TTL expiry, Go `text/template` rendering of a group, namespaced
 * views with quotas, and change events. Database files are interchangeable
 * with the Go sibling `go-store`.
 *
 * @example Quick start
 * ```ts
 * import { Store } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store(); // ":memory:"; pass a file path to persist
 * store.set("user:42", "name", "Ada");
 * store.setWithTTL("session", "token", "abc", 60_000);
 *
 * assert.equal(store.get("user:42", "name"), "Ada");
 * assert.equal(store.render("Hello, {{ .name }}!", "user:42"), "Hello, Ada!");
 * ```
 *
 * @module
 */

export {
  type ChangeRetention,
  type ListOptions,
  type ListPage,
  type RenderLimits,
  type RenderOptions,
  Store,
  type StoreOptions,
  type Transaction,
  type WatchOptions,
} from "./src/store.ts";
export { type QuotaConfig, ScopedStore } from "./src/scope.ts";
export {
  type EventType,
  type GroupSnapshot,
  type StoreEvent,
  Watcher,
} from "./src/events.ts";
export {
  type ExportOptions,
  type ExportRecord,
  fromNdjson,
  type FromNdjsonOptions,
  type ImportOptions,
  type ImportResult,
  type ImportSource,
  toNdjson,
} from "./src/transfer.ts";
export {
  type AsyncStore,
  type AsyncTransaction,
  toAsync,
} from "./src/async.ts";
export { AsyncScopedStore } from "./src/async_scope.ts";
export {
  ImportError,
  QuotaExceededError,
  StoreClosedError,
  StoreError,
  StoreUnavailableError,
  TemplateError,
  type WriteOutcome,
} from "./src/errors.ts";
