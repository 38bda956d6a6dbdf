/**
 * Argument checks of the etcd store, with the local store's messages.
 *
 * @module
 */

import { assertText, describe } from "../codec.ts";
import type { EtcdStoreOptions } from "../etcd.ts";
import type { ListOptions, RenderOptions } from "../store.ts";

const OPEN = "open store";
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_LIST_LIMIT = 10_000;

/**
 * Checks the options of `EtcdStore.open` and fills in the defaults.
 *
 * @param options The caller's options.
 * @returns Every option.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When a number is out of range.
 */
export function checkOpen(
  options: EtcdStoreOptions,
): Required<EtcdStoreOptions> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${OPEN}: options must be an object, received ${
        describe(options)
      }`,
    );
  }
  const { endpoints } = options;
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    throw new TypeError(
      `Cannot ${OPEN}: endpoints must be a non-empty array of URLs, received ${
        Array.isArray(endpoints) ? "an empty array" : describe(endpoints)
      }`,
    );
  }
  const urls = endpoints.map((endpoint) => {
    if (typeof endpoint !== "string" || !URL.canParse(endpoint)) {
      throw new TypeError(
        `Cannot ${OPEN}: every endpoint must be an http(s) URL, received ${
          typeof endpoint === "string"
            ? JSON.stringify(endpoint)
            : describe(endpoint)
        }`,
      );
    }
    const url = new URL(endpoint);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(
        `Cannot ${OPEN}: every endpoint must be an http(s) URL, received ${
          JSON.stringify(endpoint)
        }`,
      );
    }
    return url.origin;
  });
  const prefix = options.prefix ?? "store/";
  assertText(OPEN, "prefix", prefix);
  const clock = options.clock ?? Date.now;
  if (typeof clock !== "function") {
    throw new TypeError(
      `Cannot ${OPEN}: clock must be a function, received ${describe(clock)}`,
    );
  }
  const onCallbackError = options.onCallbackError ?? reportError;
  if (typeof onCallbackError !== "function") {
    throw new TypeError(
      `Cannot ${OPEN}: onCallbackError must be a function, received ${
        describe(onCallbackError)
      }`,
    );
  }
  for (const name of ["username", "password"] as const) {
    const value = options[name];
    if (value !== undefined) assertText(OPEN, name, value);
  }
  return {
    endpoints: urls,
    prefix,
    clock,
    onCallbackError,
    purgeIntervalMs: integer(
      "purgeIntervalMs",
      options.purgeIntervalMs,
      60_000,
      0,
    ),
    requestTimeoutMs: integer(
      "requestTimeoutMs",
      options.requestTimeoutMs,
      5_000,
      1,
    ),
    username: options.username ?? "",
    password: options.password ?? "",
  };
}

function integer(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${OPEN}: ${name} must be a number, received ${describe(value)}`,
    );
  }
  if (!Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw new RangeError(
      `Cannot ${OPEN}: ${name} must be an integer from ${min} to ${MAX_TIMER_MS}, received ${value}`,
    );
  }
  return value;
}

/**
 * Checks the options of `list`, as the local store does.
 *
 * @param op The operation.
 * @param options The caller's options.
 * @returns Every option.
 */
export function checkList(op: string, options: ListOptions): {
  limit: number;
  cursor: string | undefined;
  prefix: string;
  reverse: boolean;
} {
  const { cursor, prefix = "", reverse = false } = options;
  const limit = options.limit ?? 100;
  if (typeof limit !== "number") {
    throw new TypeError(
      `Cannot ${op}: limit must be a number, received ${describe(limit)}`,
    );
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new RangeError(
      `Cannot ${op}: limit must be an integer from 1 to ${MAX_LIST_LIMIT}, received ${limit}`,
    );
  }
  if (cursor !== undefined) assertText(op, "cursor", cursor);
  assertText(op, "prefix", prefix);
  if (typeof reverse !== "boolean") {
    throw new TypeError(
      `Cannot ${op}: reverse must be a boolean, received ${describe(reverse)}`,
    );
  }
  return { limit, cursor, prefix, reverse };
}

/**
 * Checks the options of `render`, as the local store does.
 *
 * @param op The operation.
 * @param options The caller's options.
 * @returns The missing-key mode.
 */
export function checkRender(
  op: string,
  options: RenderOptions,
): "default" | "zero" | "error" {
  const missingKey = options.missingKey ?? "default";
  if (
    missingKey !== "default" && missingKey !== "zero" && missingKey !== "error"
  ) {
    throw new RangeError(
      `Cannot ${op}: missingKey must be "default", "zero" or "error", received ${
        JSON.stringify(missingKey)
      }`,
    );
  }
  return missingKey;
}

/**
 * Checks `since`, as the local store does.
 *
 * @param op The operation.
 * @param since The caller's `since`.
 * @returns It, checked.
 */
export function checkSince(op: string, since: unknown): number | undefined {
  if (since === undefined) return undefined;
  if (typeof since !== "number") {
    throw new TypeError(
      `Cannot ${op}: since must be a number, received ${describe(since)}`,
    );
  }
  if (!Number.isSafeInteger(since) || since < 0) {
    throw new RangeError(
      `Cannot ${op}: since must be a non-negative integer, received ${since}`,
    );
  }
  return since;
}
