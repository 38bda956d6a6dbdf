/**
 * Error classes thrown by the store for conditions a caller may want to
 * catch. Wrong arguments are reported with the built-in `TypeError` and
 * `RangeError` instead.
 *
 * @module
 */

/**
 * Base class of every error the store raises for a store condition (as
 * opposed to a wrong argument). The underlying error, when there is one, is
 * kept in `cause`.
 *
 * @example Catch any store condition
 * ```ts
 * import { Store, StoreError } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * const store = new Store();
 * store.close();
 * assert.throws(() => store.get("g", "k"), StoreError);
 * ```
 */
export class StoreError extends Error {
  /**
   * Creates a store error.
   *
   * @param message What went wrong, naming the operation.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
  }
}

/**
 * Thrown by every method of a store after `close()`.
 *
 * @example Use after close
 * ```ts
 * import { Store, StoreClosedError } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * const store = new Store();
 * store.close();
 * assert.throws(() => store.set("g", "k", "v"), StoreClosedError);
 * ```
 */
export class StoreClosedError extends StoreError {
  /**
   * Creates the error for an operation attempted on a closed store.
   *
   * @param operation The operation that was refused, e.g. `"set value"`.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(operation: string, options?: ErrorOptions) {
    super(`Cannot ${operation}: the store is closed`, options);
    this.name = "StoreClosedError";
  }
}

/**
 * Thrown by `render` when a template cannot be parsed or executed. The
 * message starts with the template position as `line:col`.
 *
 * @example A template with an unclosed action
 * ```ts
 * import { Store, TemplateError } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * assert.throws(() => store.render("{{ .name", "g"), TemplateError);
 * ```
 */
export class TemplateError extends StoreError {
  /** 1-based line of the template where the problem was found. */
  readonly line: number;
  /** 1-based column (in UTF-16 code units) where the problem was found. */
  readonly column: number;

  /**
   * Creates a template error.
   *
   * @param message What is wrong with the template.
   * @param line 1-based line of the problem.
   * @param column 1-based column of the problem.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(
    message: string,
    line: number,
    column: number,
    options?: ErrorOptions,
  ) {
    super(`Cannot render template: ${line}:${column}: ${message}`, options);
    this.name = "TemplateError";
    this.line = line;
    this.column = column;
  }
}

/**
 * Thrown by a write through a `ScopedStore` that would take its namespace
 * past a quota. Nothing is written.
 *
 * @example Catch a full namespace
 * ```ts
 * import { QuotaExceededError, ScopedStore, Store } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const tenant = new ScopedStore(store, "acme", { maxKeys: 1 });
 * tenant.set("g", "a", "1");
 * assert.throws(() => tenant.set("g", "b", "2"), (error) =>
 *   error instanceof QuotaExceededError &&
 *   error.limit === "maxKeys" && error.max === 1 && error.namespace === "acme");
 * ```
 */
export class QuotaExceededError extends StoreError {
  /** The namespace whose quota was reached. */
  readonly namespace: string;
  /** Which quota was reached. */
  readonly limit: "maxKeys" | "maxGroups";
  /** The quota's value. */
  readonly max: number;

  /**
   * Creates the error for a write refused by a quota.
   *
   * @param operation The refused operation, e.g. `"set value"`.
   * @param namespace The namespace.
   * @param limit Which quota was reached.
   * @param max The quota's value.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(
    operation: string,
    namespace: string,
    limit: "maxKeys" | "maxGroups",
    max: number,
    options?: ErrorOptions,
  ) {
    super(
      `Cannot ${operation}: namespace "${namespace}" is at its ${limit} quota of ${max} ${
        limit === "maxKeys" ? "live key" : "group"
      }${max === 1 ? "" : "s"}`,
      options,
    );
    this.name = "QuotaExceededError";
    this.namespace = namespace;
    this.limit = limit;
    this.max = max;
  }
}

/**
 * Thrown by `importEntries` when a record is malformed or the source fails.
 * The batch holding that record is not written; the batches before it were
 * committed, and `imported` counts their records.
 *
 * @example A record with a number for a value
 * ```ts
 * import { ImportError, Store } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const records = [
 *   { group: "g", key: "a", value: "1", expiresAt: null },
 *   { group: "g", key: "b", value: 2, expiresAt: null },
 * ];
 * await assert.rejects(store.importEntries(records), (error) =>
 *   error instanceof ImportError && error.record === 2 &&
 *   error.imported === 0);
 * assert.equal(store.count("g"), 0);
 * ```
 */
export class ImportError extends StoreError {
  /** 1-based number of the record that stopped the import (its NDJSON line). */
  readonly record: number;
  /** Records committed by the batches before the failing one. */
  readonly imported: number;

  /**
   * Creates the error for an import stopped at a record.
   *
   * @param problem What is wrong with the record, or with the source.
   * @param record 1-based number of the record.
   * @param imported Records committed before it.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(
    problem: string,
    record: number,
    imported: number,
    options?: ErrorOptions,
  ) {
    super(
      `Cannot import entries: record ${record}: ${problem} (${imported} ${
        imported === 1 ? "record" : "records"
      } imported before it; nothing from its batch was written)`,
      options,
    );
    this.name = "ImportError";
    this.record = record;
    this.imported = imported;
  }
}

/**
 * What is known of a write when its backend stopped answering: `"unknown"`
 * (the request reached a server, so the write may have been applied, now or
 * later) or `"not-applied"` (nothing was written: a read, or a write no
 * server received).
 */
export type WriteOutcome = "unknown" | "not-applied";

/**
 * Thrown when a networked backend (such as the etcd store) did not answer
 * within its deadline. `outcome` says whether a write may have taken
 * effect: after `"unknown"`, read before writing again, since the write
 * may have been applied (it is never applied twice).
 *
 * @example Tell an ambiguous write from a refused one
 * ```ts
 * import { StoreError, StoreUnavailableError } from "@core/store";
 * import assert from "node:assert/strict";
 *
 * const error = new StoreUnavailableError(
 *   "set value",
 *   "no etcd member answered within 5000 ms",
 *   "unknown",
 * );
 * assert.ok(error instanceof StoreError);
 * assert.equal(error.outcome, "unknown");
 * assert.match(error.message, /may have been applied/);
 * ```
 */
export class StoreUnavailableError extends StoreError {
  /** Whether the write may have been applied. */
  readonly outcome: WriteOutcome;

  /**
   * Creates the error for an operation the backend did not answer.
   *
   * @param operation The operation, e.g. `"set value"`.
   * @param problem What failed, e.g. `"no etcd member answered within 5000 ms"`.
   * @param outcome Whether a write may have been applied.
   * @param options `cause`: the underlying error, if any.
   */
  constructor(
    operation: string,
    problem: string,
    outcome: WriteOutcome,
    options?: ErrorOptions,
  ) {
    super(
      `Cannot ${operation}: ${problem}${
        outcome === "unknown"
          ? "; the write may have been applied: read before trying again"
          : ""
      }`,
      options,
    );
    this.name = "StoreUnavailableError";
    this.outcome = outcome;
  }
}
