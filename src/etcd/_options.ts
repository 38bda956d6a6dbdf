/**
 * Argument checks of the etcd store, with the local store's messages.
 *
 * @module
 */

import { assertFunction, assertText, describe, integerArg } from "../_check.ts";
import type { StoreEvent } from "../events.ts";

/** Options for {@linkcode EtcdStore.open}. */
export interface EtcdStoreOptions {
  /** Client URLs of the cluster's members, such as `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Keeps this store's keys apart in the cluster. Default `"store/"`. */
  prefix?: string;
  /** The time in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number;
  /**
   * How often expired keys are purged (with `expire` events), in
   * milliseconds; `0` turns it off. Leases remove expired keys anyway.
   * Default `60_000`.
   */
  purgeIntervalMs?: number;
  /** How long one call may take, failover included. Default `5_000`. */
  requestTimeoutMs?: number;
  /** A user, when the cluster has authentication on. */
  username?: string;
  /** The user's password. */
  password?: string;
  /** Receives an error thrown by a change callback, with its event. */
  onCallbackError?: (error: unknown, event: StoreEvent) => void;
}

const OPEN = "open store";
const MAX_TIMER_MS = 2 ** 31 - 1;

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
  assertFunction(OPEN, "clock", clock);
  const onCallbackError = options.onCallbackError ?? reportError;
  assertFunction(OPEN, "onCallbackError", onCallbackError);
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
  return integerArg(OPEN, name, value, fallback, min, MAX_TIMER_MS);
}

export { checkRender, checkSince } from "../_check.ts";
