/**
 * The decisions of the atomic counter, from what a key holds now.
 *
 * @module
 */

import { describe } from "../_check.ts";
import { StoreError } from "../errors.ts";
import { expiryOf } from "../_time.ts";
import type { Current, Decision } from "./_txn.ts";

/**
 * Checks an increment's `delta`.
 *
 * @param op The operation.
 * @param delta The argument.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not a safe integer.
 */
export function checkDelta(op: string, delta: unknown): void {
  if (typeof delta !== "number") {
    throw new TypeError(
      `Cannot ${op}: delta must be a number, received ${describe(delta)}`,
    );
  }
  if (!Number.isSafeInteger(delta)) {
    throw new RangeError(
      `Cannot ${op}: delta must be a safe integer, received ${delta}`,
    );
  }
}

// A counter's stored value: a decimal safe integer, nothing else.
function counter(op: string, group: string, key: string, value: string) {
  const n = /^-?(0|[1-9][0-9]*)$/.test(value) ? Number(value) : NaN;
  if (Number.isSafeInteger(n)) return n;
  throw new StoreError(
    `Cannot ${op}: group ${JSON.stringify(group)} key ${
      JSON.stringify(key)
    } holds ${JSON.stringify(value.slice(0, 40))}, not a decimal safe integer`,
  );
}

/**
 * The write of `increment`: the stored decimal plus `delta`; a new entry
 * takes `ttlMs`, an existing one keeps its expiry.
 *
 * @param op The operation.
 * @param delta A checked safe integer.
 * @param ttlMs A checked TTL for a new entry.
 * @returns The decision for `writeKey`.
 */
export function incrementBy(
  op: string,
  delta: number,
  ttlMs: number | undefined,
): (c: Current) => Decision<number> {
  return (c) => {
    const { group, key } = c;
    const base = c.value === undefined ? 0 : counter(op, group, key, c.value);
    const next = base + delta;
    if (!Number.isSafeInteger(next)) {
      throw new StoreError(
        `Cannot ${op}: group ${JSON.stringify(group)} key ${
          JSON.stringify(key)
        } would hold ${base} + ${delta}, past the safe integers`,
      );
    }
    const expiresAt = c.value !== undefined
      ? c.expiresAt
      : ttlMs === undefined
      ? undefined
      : expiryOf(op, c.now, ttlMs);
    const value = String(next);
    return {
      result: next,
      change: { type: "set", group, key, value, expiresAt },
    };
  };
}
