/**
 * The five atomic operations of the synchronous stores (`Store`,
 * `ScopedStore` and their transactions): each checks its own arguments
 * (group and key are the caller's, which knows the namespace), then returns
 * the work as a function, so that a scoped view can run it after its quota
 * check, in the same transaction.
 *
 * @module
 */

import { assertAtomicArgs, assertDelta, ATOMIC_OPS } from "./_check.ts";

export { ATOMIC_OPS };
import type { StoreCore } from "./_core.ts";
import { expiryOf } from "./_time.ts";

// A TTL that puts the expiry past the safe integers is the caller's error:
// found now, before a scoped view's quota check could answer first.
function checkTTL(core: StoreCore, op: string, ttlMs: unknown): void {
  assertAtomicArgs(op, { ttlMs });
  if (ttlMs !== undefined) expiryOf(op, core.now(op), ttlMs as number);
}

/**
 * Checks an increment and returns it.
 *
 * @param core The store.
 * @param group The stored group, checked.
 * @param key The key, checked.
 * @param delta The unchecked delta.
 * @param ttlMs The unchecked TTL of a counter it creates, or `undefined`.
 * @returns The increment, which returns the new value.
 */
export function increment(
  core: StoreCore,
  group: string,
  key: string,
  delta: unknown,
  ttlMs: unknown,
): () => number {
  const op = ATOMIC_OPS.increment;
  assertDelta(op, delta);
  checkTTL(core, op, ttlMs);
  const ttl = ttlMs as number | undefined;
  return () => {
    const { value } = core.modify(op, ttl, (expiresAt) => ({
      kind: "increment",
      group,
      key,
      delta,
      expiresAt,
    }));
    return Number(value);
  };
}

/**
 * Checks a set-if-absent, or a compare-and-set expecting no entry, and
 * returns it.
 *
 * @param core The store.
 * @param op The operation, for the messages.
 * @param group The stored group, checked.
 * @param key The key, checked.
 * @param value The unchecked value.
 * @param ttlMs The unchecked TTL, or `undefined`.
 * @returns The write, which returns whether it wrote.
 */
export function setIfAbsent(
  core: StoreCore,
  op: string,
  group: string,
  key: string,
  value: unknown,
  ttlMs: unknown,
): () => boolean {
  assertAtomicArgs(op, { value: [value] });
  checkTTL(core, op, ttlMs);
  const text = value as string;
  return () =>
    core.modify(op, ttlMs as number | undefined, (expiresAt) => ({
      kind: "setIfAbsent",
      group,
      key,
      value: text,
      expiresAt,
    })).done;
}

/**
 * Checks a compare-and-set and returns it.
 *
 * @param core The store.
 * @param group The stored group, checked.
 * @param key The key, checked.
 * @param expected The unchecked expected value; `undefined` for none.
 * @param value The unchecked value.
 * @param ttlMs The unchecked TTL, or `undefined`.
 * @returns The write, which returns whether it wrote; and whether it may
 * add a key (when it expects none), for quotas.
 */
export function compareAndSet(
  core: StoreCore,
  group: string,
  key: string,
  expected: unknown,
  value: unknown,
  ttlMs: unknown,
): { run: () => boolean; adds: boolean } {
  const op = ATOMIC_OPS.compareAndSet;
  assertAtomicArgs(op, { expected: [expected, true], value: [value] });
  checkTTL(core, op, ttlMs);
  if (expected === undefined) {
    return {
      run: setIfAbsent(core, op, group, key, value, ttlMs),
      adds: true,
    };
  }
  const run = () =>
    core.modify(op, ttlMs as number | undefined, (expiresAt) => ({
      kind: "compareAndSet",
      group,
      key,
      expected: expected as string,
      value: value as string,
      expiresAt,
    })).done;
  return { run, adds: false };
}

/**
 * Checks and runs a compare-and-delete.
 *
 * @param core The store.
 * @param group The stored group, checked.
 * @param key The key, checked.
 * @param expected The unchecked expected value.
 * @returns Whether the live value was `expected` and is deleted.
 */
export function compareAndDelete(
  core: StoreCore,
  group: string,
  key: string,
  expected: unknown,
): boolean {
  const op = ATOMIC_OPS.compareAndDelete;
  assertAtomicArgs(op, { expected: [expected, false] });
  return core.modify(op, undefined, () => ({
    kind: "compareAndDelete",
    group,
    key,
    expected: expected as string,
  })).done;
}

/**
 * Runs a get-and-delete.
 *
 * @param core The store.
 * @param group The stored group, checked.
 * @param key The key, checked.
 * @returns The live value taken, or `undefined`.
 */
export function getAndDelete(
  core: StoreCore,
  group: string,
  key: string,
): string | undefined {
  const op = ATOMIC_OPS.getAndDelete;
  return core.modify(op, undefined, () => ({
    kind: "getAndDelete",
    group,
    key,
  })).value;
}
