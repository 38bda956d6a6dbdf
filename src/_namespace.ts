/**
 * Namespaces: a group `acme:users` belongs to namespace `acme`, the part
 * before its first `:`. Scoped stores, namespace watchers and the quota
 * counts all follow this one rule.
 *
 * @module
 */

import { assertOptions, describe } from "./_check.ts";
import type { Quota } from "./_async_hooks.ts";

// The names of a scoped store's quota (QuotaConfig in scope.ts).
const QUOTA_OPTIONS: Record<keyof Quota, true> = {
  maxKeys: true,
  maxGroups: true,
};

/** What a namespace may be made of; it never contains `:`. */
export const NAMESPACE_PATTERN: RegExp = /^[A-Za-z0-9-]+$/;

/**
 * Asserts that `namespace` is a valid namespace name.
 *
 * @param operation What the caller was doing.
 * @param namespace The argument.
 * @throws {TypeError} When it is not a string matching
 * {@linkcode NAMESPACE_PATTERN}.
 */
export function assertNamespace(
  operation: string,
  namespace: unknown,
): asserts namespace is string {
  if (typeof namespace !== "string" || !NAMESPACE_PATTERN.test(namespace)) {
    throw new TypeError(
      `Cannot ${operation}: namespace must match ${NAMESPACE_PATTERN}, received ${
        typeof namespace === "string"
          ? JSON.stringify(namespace)
          : describe(namespace)
      }`,
    );
  }
}

/**
 * The namespace a group belongs to.
 *
 * @param group Any group.
 * @returns The part before the first `:`, or `undefined` when the group has
 * no `:` after at least one character.
 */
export function namespaceOf(group: string): string | undefined {
  const colon = group.indexOf(":");
  return colon > 0 ? group.slice(0, colon) : undefined;
}

/**
 * The prefix every group of a namespace starts with.
 *
 * @param namespace A valid namespace.
 * @returns `${namespace}:`.
 */
export function namespacePrefix(namespace: string): string {
  return `${namespace}:`;
}

/**
 * Reads the quota argument of a scoped store, local or asynchronous.
 *
 * @param op The operation, for the message.
 * @param quota The caller's quota; `undefined` is unlimited.
 * @returns Both limits, `0` where absent (unlimited).
 * @throws {TypeError} When `quota` is not an object.
 * @throws {RangeError} When a limit is not a non-negative integer.
 */
export function readQuota(op: string, quota: unknown): Quota {
  if (quota === undefined) quota = {};
  if (typeof quota !== "object" || quota === null) {
    throw new TypeError(
      `Cannot ${op}: quota must be an object, received ${describe(quota)}`,
    );
  }
  assertOptions(op, "quota", quota, QUOTA_OPTIONS);
  const { maxKeys, maxGroups } = quota as Record<string, unknown>;
  return {
    maxKeys: quotaValue(op, "maxKeys", maxKeys),
    maxGroups: quotaValue(op, "maxGroups", maxGroups),
  };
}

function quotaValue(op: string, name: string, value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot ${op}: quota ${name} must be a non-negative integer, received ${
        typeof value === "number" ? value : describe(value)
      }`,
    );
  }
  return value;
}
