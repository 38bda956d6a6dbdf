/**
 * The counter rule of `increment`, shared by every backend: which stored
 * values are counters, and what adding to one gives. The SQLite engine tests
 * the same rule in SQL ({@linkcode counterSql}), so that a file's increment
 * stays one statement.
 *
 * @module
 */

import { StoreError } from "./errors.ts";

/** The largest counter, as for every number the store hands back. */
const MAX = Number.MAX_SAFE_INTEGER;

// The decimal form `String(n)` gives a safe integer: no sign on positive
// numbers, no leading zeros, no "-0", no spaces.
const DECIMAL = /^(?:0|-?[1-9][0-9]{0,15})$/;

/**
 * Whether a stored value is a counter: a safe integer in the decimal form
 * `String(n)` writes.
 *
 * @param value A stored value.
 * @returns `true` for `"0"`, `"42"`, `"-7"`; `false` for `"abc"`, `"1.5"`,
 * `" 7"`, `"007"`, `"+1"`, `"-0"` and anything past ±`MAX_SAFE_INTEGER`.
 */
export function isCounter(value: string): boolean {
  return DECIMAL.test(value) && Math.abs(Number(value)) <= MAX;
}

/**
 * The same rule as {@linkcode isCounter}, as an SQL condition: the value
 * reads back unchanged through an integer, and that integer is safe.
 *
 * @param column The value column, trusted (never user input).
 * @returns An SQL boolean expression.
 */
export function counterSql(column: string): string {
  const n = `CAST(${column} AS INTEGER)`;
  return `(${column} = CAST(${n} AS TEXT) AND ${n} BETWEEN -${MAX} AND ${MAX})`;
}

/**
 * The SQL condition that a counter plus `delta` stays a safe integer.
 *
 * @param column The value column, trusted.
 * @param delta The parameter that holds the delta, such as `?5`.
 * @returns An SQL boolean expression.
 */
export function sumInRangeSql(column: string, delta: string): string {
  return `CAST(${column} AS INTEGER) + ${delta} BETWEEN -${MAX} AND ${MAX}`;
}

/**
 * Adds `delta` to a stored counter, or explains why it cannot.
 *
 * @param op The operation, for the message.
 * @param group The group, for the message.
 * @param key The key, for the message.
 * @param stored The live value, or `undefined` (counts as `0`).
 * @param delta A checked safe integer.
 * @returns The new value, in decimal.
 * @throws {StoreError} When `stored` is not a counter, or the sum is not a
 * safe integer.
 */
export function addToCounter(
  op: string,
  group: string,
  key: string,
  stored: string | undefined,
  delta: number,
): string {
  const problem = counterProblem(op, group, key, stored, delta);
  if (problem !== undefined) throw problem;
  return String((stored === undefined ? 0 : Number(stored)) + delta);
}

/**
 * The error {@linkcode addToCounter} would throw, if any.
 *
 * @param op The operation, for the message.
 * @param group The group, for the message.
 * @param key The key, for the message.
 * @param stored The live value, or `undefined`.
 * @param delta A checked safe integer.
 * @returns The error, or `undefined` when the increment can be done.
 */
export function counterProblem(
  op: string,
  group: string,
  key: string,
  stored: string | undefined,
  delta: number,
): StoreError | undefined {
  const where = `key ${JSON.stringify(key)} in group ${JSON.stringify(group)}`;
  if (stored === undefined) return undefined;
  if (!isCounter(stored)) {
    return new StoreError(
      `Cannot ${op}: ${where} holds ${
        quote(stored)
      }, which is not a decimal safe integer; nothing was written`,
    );
  }
  const sum = Number(stored) + delta;
  if (Math.abs(sum) > MAX) {
    const bound = sum > 0
      ? "Number.MAX_SAFE_INTEGER"
      : "-Number.MAX_SAFE_INTEGER";
    return new StoreError(
      `Cannot ${op}: ${where} holds ${stored}, and adding ${delta} would pass ${bound}; nothing was written`,
    );
  }
  return undefined;
}

function quote(value: string): string {
  return value.length > 40
    ? `${JSON.stringify(value.slice(0, 40))}… (${value.length} characters)`
    : JSON.stringify(value);
}
