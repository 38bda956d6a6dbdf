/**
 * Checks the options of `DenoKvStore.open`, with the messages of the other
 * backends.
 *
 * @module
 */

import { assertFunction, assertText, describe, integerArg } from "../_check.ts";
import type { StoreEvent } from "../events.ts";

const OPEN = "open store";
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The options of `DenoKvStore.open`, checked and completed. */
export interface CheckedOptions {
  readonly path: string | undefined;
  readonly kv: Deno.Kv | undefined;
  readonly prefix: string;
  readonly clock: () => number;
  readonly purgeIntervalMs: number;
  readonly onCallbackError: (error: unknown, event: StoreEvent) => void;
}

/**
 * Checks the options and fills in the defaults.
 *
 * @param options The caller's options.
 * @returns Every option.
 * @throws {TypeError} When an option has the wrong type, or both `path`
 * and `kv` are given.
 * @throws {RangeError} When `purgeIntervalMs` is out of range.
 */
export function checkOpen(options: unknown): CheckedOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${OPEN}: options must be an object, received ${
        describe(options)
      }`,
    );
  }
  const o = options as Record<string, unknown>;
  const { path, kv } = o;
  if (path !== undefined) {
    assertText(OPEN, "path", path);
    if (path === "") {
      throw new TypeError(
        `Cannot ${OPEN}: path must be a non-empty string, received ""`,
      );
    }
  }
  if (kv !== undefined && !isKv(kv)) {
    throw new TypeError(
      `Cannot ${OPEN}: kv must be a Deno.Kv, received ${describe(kv)}`,
    );
  }
  if (path !== undefined && kv !== undefined) {
    throw new TypeError(
      `Cannot ${OPEN}: give path or kv, not both`,
    );
  }
  const prefix = o.prefix ?? "store";
  assertText(OPEN, "prefix", prefix);
  if (prefix === "") {
    throw new TypeError(
      `Cannot ${OPEN}: prefix must be a non-empty string, received ""`,
    );
  }
  const clock = o.clock ?? Date.now;
  assertFunction(OPEN, "clock", clock);
  const onCallbackError = o.onCallbackError ?? reportError;
  assertFunction(OPEN, "onCallbackError", onCallbackError);
  return {
    path,
    kv: kv as Deno.Kv | undefined,
    prefix,
    clock: clock as () => number,
    onCallbackError: onCallbackError as CheckedOptions["onCallbackError"],
    purgeIntervalMs: integerArg(
      OPEN,
      "purgeIntervalMs",
      o.purgeIntervalMs,
      60_000,
      0,
      MAX_TIMER_MS,
    ),
  };
}

function isKv(value: unknown): value is Deno.Kv {
  return typeof value === "object" && value !== null &&
    typeof (value as Deno.Kv).atomic === "function" &&
    typeof (value as Deno.Kv).getMany === "function";
}
