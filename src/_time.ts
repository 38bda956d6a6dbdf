/**
 * The clock rules every backend shares: what a caller's clock may return,
 * and when a key written with a TTL expires.
 *
 * @module
 */

import { describe } from "./_check.ts";

/**
 * Reads a caller-provided clock.
 *
 * @param op The operation, for the message.
 * @param clock The clock.
 * @returns The time, in milliseconds.
 * @throws {RangeError} When the clock returns no finite number.
 */
export function readClock(op: string, clock: () => number): number {
  const now = clock();
  if (typeof now !== "number" || !Number.isFinite(now)) {
    throw new RangeError(
      `Cannot ${op}: clock() must return a finite number of milliseconds, received ${
        typeof now === "number" ? now : describe(now)
      }`,
    );
  }
  return now;
}

/**
 * Whether an entry with this deadline has expired at `now`: a deadline that
 * has come is past; no deadline never is.
 *
 * @param expiresAt The deadline, ms epoch; `undefined` or `null` for none.
 * @param now The clock.
 * @returns Whether it has expired.
 */
export function isExpired(
  expiresAt: number | null | undefined,
  now: number,
): boolean {
  return expiresAt !== undefined && expiresAt !== null && expiresAt <= now;
}

/**
 * When a key set now with `ttlMs` expires: whole milliseconds, as the Go
 * sibling stores them, rounded up so a key never expires before its TTL has
 * passed.
 *
 * @param op The operation, for the message.
 * @param now The clock.
 * @param ttlMs A checked time to live.
 * @returns The expiry, ms epoch.
 * @throws {RangeError} When it is past the largest safe integer.
 */
export function expiryOf(op: string, now: number, ttlMs: number): number {
  const at = Math.ceil(now + ttlMs);
  // A TTL too small to move a large clock still leaves the key live now.
  const expiresAt = at > now ? at : Math.floor(now) + 1;
  if (!Number.isSafeInteger(expiresAt)) {
    throw new RangeError(
      `Cannot ${op}: ttlMs ${ttlMs} puts the expiry past the largest safe integer`,
    );
  }
  return expiresAt;
}

/**
 * Lets the process exit while `timer` is pending. Deno 2.9 returns
 * Node-style Timeout objects, whose `unref()` works, while
 * `Deno.unrefTimer()` only knows the numeric ids of older releases.
 *
 * @param timer A timer from `setTimeout` or `setInterval`.
 */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  if (typeof timer === "number") Deno.unrefTimer(timer);
  else (timer as { unref(): void }).unref();
}

/**
 * Reads a caller's clock where a throw must not escape (a timer callback):
 * `NaN` when it throws or returns no number, so no deadline counts as passed.
 *
 * @param clock The clock.
 * @returns Its time, or `NaN`.
 */
export function clockOrNaN(clock: () => number): number {
  try {
    const now = clock();
    return typeof now === "number" ? now : NaN;
  } catch {
    return NaN;
  }
}
