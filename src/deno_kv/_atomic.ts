/**
 * The decisions of the atomic counter, from what a key holds now.
 *
 * @module
 */

import { addToCounter } from "../_counter.ts";
import { expiryOf } from "../_time.ts";
import type { Current, Decision } from "./_txn.ts";

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
    const value = addToCounter(op, group, key, c.value, delta);
    const expiresAt = c.value !== undefined
      ? c.expiresAt
      : ttlMs === undefined
      ? undefined
      : expiryOf(op, c.now, ttlMs);
    return {
      result: Number(value),
      change: { type: "set", group, key, value, expiresAt },
    };
  };
}
