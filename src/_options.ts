/**
 * Reading {@linkcode StoreOptions}: every option's check and default, once.
 *
 * @module
 */

import {
  assertBoolean,
  assertFunction,
  assertText,
  integerArg,
  oneOf,
} from "./_check.ts";
import type { ChangeRetention } from "./_feed.ts";
import type { StoreEvent } from "./events.ts";
import type { RenderLimits, StoreOptions } from "./store.ts";
import { DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_STEPS } from "./template.ts";
import { MEMORY_PATH } from "./schema.ts";

// setInterval stores the delay in 32 bits; a larger one fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Every option, checked, with its default filled in. */
export interface ResolvedOptions {
  purgeIntervalMs: number;
  busyTimeoutMs: number;
  durability: "normal" | "full";
  clock: () => number;
  onCallbackError: ((error: unknown, event: StoreEvent) => void) | undefined;
  changeFeed: boolean;
  changePollMs: number;
  retention: Required<ChangeRetention>;
  renderLimits: Required<RenderLimits>;
}

const OP = "open store";

/**
 * Checks a store's path and options and fills in the defaults.
 *
 * @param path The path given to the constructor.
 * @param options The options given to the constructor.
 * @returns The resolved options.
 * @throws {TypeError} When the path is empty or not a string, or an option
 * has the wrong type.
 * @throws {RangeError} When a numeric option is out of range.
 */
export function resolveOptions(
  path: unknown,
  options: StoreOptions,
): ResolvedOptions {
  assertText(OP, "path", path);
  if (path === "") {
    throw new TypeError(
      'Cannot open store: path must be a file path or ":memory:", received an empty string',
    );
  }
  const clock = options.clock ?? Date.now;
  assertFunction(OP, "clock", clock);
  const onCallbackError = options.onCallbackError;
  if (onCallbackError !== undefined) {
    assertFunction(OP, "onCallbackError", onCallbackError);
  }
  const changeFeed = options.changeFeed ?? false;
  assertBoolean(OP, "changeFeed", changeFeed);
  if (changeFeed && path === MEMORY_PATH) {
    throw new TypeError(
      "Cannot open store: changeFeed needs a file; an in-memory store has no other connections to hear from",
    );
  }
  const retention = options.changeRetention;
  return {
    purgeIntervalMs: timer("purgeIntervalMs", options.purgeIntervalMs, 60_000),
    busyTimeoutMs: timer("busyTimeoutMs", options.busyTimeoutMs, 5_000),
    durability: oneOf(
      OP,
      "durability",
      options.durability ?? undefined,
      ["normal", "full"],
      TypeError,
    ),
    clock,
    onCallbackError,
    changeFeed,
    changePollMs: timer("changePollMs", options.changePollMs, 50),
    renderLimits: {
      maxOutputBytes: integerArg(
        OP,
        "renderLimits.maxOutputBytes",
        options.renderLimits?.maxOutputBytes,
        DEFAULT_MAX_OUTPUT_BYTES,
        1,
      ),
      maxSteps: integerArg(
        OP,
        "renderLimits.maxSteps",
        options.renderLimits?.maxSteps,
        DEFAULT_MAX_STEPS,
        1,
      ),
    },
    retention: {
      maxRows: integerArg(
        OP,
        "changeRetention.maxRows",
        retention?.maxRows,
        10_000,
      ),
      maxAgeMs: integerArg(
        OP,
        "changeRetention.maxAgeMs",
        retention?.maxAgeMs,
        24 * 60 * 60 * 1000,
      ),
    },
  };
}

function timer(name: string, value: unknown, fallback: number): number {
  return integerArg(OP, name, value, fallback, 0, MAX_TIMER_MS);
}
