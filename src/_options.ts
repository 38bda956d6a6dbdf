/**
 * Reading {@linkcode StoreOptions}: every option's check and default, once.
 *
 * @module
 */

import {
  assertBoolean,
  assertFunction,
  assertOptions,
  assertText,
  integerArg,
  LIST_NAMES,
  oneOf,
  RENDER_NAMES,
} from "./_check.ts";
import type { ChangeRetention } from "./_feed.ts";
import type { StoreEvent } from "./events.ts";
import { DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_STEPS } from "./template.ts";
import { MEMORY_PATH } from "./schema.ts";

/**
 * Options for {@linkcode Store}.
 */
export interface StoreOptions {
  /**
   * How often expired keys are purged in the background, in milliseconds;
   * `0` turns the background purge off. The timer never keeps a process
   * alive. Default `60_000`.
   */
  purgeIntervalMs?: number;
  /**
   * How long a write waits for another connection's lock before failing
   * (`PRAGMA busy_timeout`), in milliseconds. Default `5_000`.
   */
  busyTimeoutMs?: number;
  /**
   * `PRAGMA synchronous` of a file-backed store: `"normal"` (default) may lose
   * the last commits on power loss but never corrupts; `"full"` syncs every
   * commit.
   */
  durability?: "normal" | "full";
  /**
   * The time in milliseconds since the epoch. Every expiry decision and every
   * event timestamp uses it. Default `Date.now`.
   */
  clock?: () => number;
  /**
   * Receives an error thrown by an {@linkcode Store.prototype.onChange}
   * callback, with the event being delivered. Default: the web-standard
   * `reportError()`.
   */
  onCallbackError?: (error: unknown, event: StoreEvent) => void;
  /**
   * Turns on the cross-process change feed (file-backed stores only): every
   * committed change to the file, by any connection (other processes,
   * Workers, the Go sibling, the `sqlite3` shell), is logged by triggers in
   * the file, and this store delivers the changes made elsewhere to its
   * watchers and callbacks like its own, each event with its `seq`. Default
   * `false`.
   */
  changeFeed?: boolean;
  /**
   * How often, in milliseconds, a store with the change feed looks for
   * commits by other connections (`PRAGMA data_version`, cheap). Default
   * `50`.
   */
  changePollMs?: number;
  /**
   * How much of the change log the purge timer keeps: a row goes once it is
   * older than `maxAgeMs` or more than `maxRows` rows behind the newest.
   * Defaults: 10,000 rows, 24 hours.
   */
  changeRetention?: ChangeRetention;
  /**
   * The budgets of every {@linkcode Store.prototype.render} of this store;
   * a render's own options override them. Defaults: 4 MiB of output,
   * 1,000,000 steps.
   */
  renderLimits?: RenderLimits;
  /**
   * Open the file for reading only: `get`, `list`, `render`, `export` and
   * `backup` work (on a read-only file or a backup, say), a write throws a
   * {@linkcode StoreError} naming the mode, nothing in the file changes (an
   * expired key is passed over, not deleted) and no timer runs. `false`
   * refuses a file this process cannot write. Default: read-only when the
   * file (or its folder) cannot be written and `changeFeed` is off;
   * {@linkcode Store.prototype.readOnly} tells which.
   */
  readOnly?: boolean;
}

/**
 * Options for {@linkcode Store.prototype.render}.
 */
export interface RenderOptions extends RenderLimits {
  /**
   * What `{{ .name }}` does when the group has no live key `name`, as Go's
   * `missingkey` option: `"default"` prints `<no value>`, `"zero"` prints
   * nothing and `"error"` throws a {@linkcode TemplateError}. Default
   * `"default"`.
   */
  missingKey?: "default" | "zero" | "error";
}

/**
 * Budgets of one template execution: past either, the render stops with a
 * {@linkcode TemplateError} instead of holding the process. Set them per
 * store with {@linkcode StoreOptions.renderLimits} and per call with
 * {@linkcode RenderOptions}.
 */
export interface RenderLimits {
  /**
   * The most bytes of UTF-8 output (any single value built meanwhile is held
   * to the same size). Default 4 MiB.
   */
  maxOutputBytes?: number;
  /**
   * The most units of work: node evaluations, commands, range iterations,
   * one per 64 characters of strings built. Default 1,000,000, about 250 ms
   * on a slow machine.
   */
  maxSteps?: number;
}

/**
 * Options for {@linkcode Store.prototype.watch}.
 */
export interface WatchOptions {
  /**
   * Resume after this change-log `seq` (needs the `changeFeed` option): the
   * watcher first replays the logged events after it, each with the time of
   * its write as the log recorded it, then continues live. The replay reads
   * the log a page (256 rows, fewer past 8 MiB) at a time as the reader
   * reads, so a watcher far behind holds one page, and it drops nothing:
   * writes made before the reader reaches the end of the log are read from
   * the log too (with the log's time) when they outnumber `capacity`. Rows
   * trimmed before the reader reached them fail the stream with
   * `StoreError`. When the watcher ends, up to 4 more pages are read at
   * once; a watcher whose store closed then rejects its next read with
   * `StoreClosedError`, naming the last seq read.
   */
  since?: number | undefined;
  /**
   * How many unread events the watcher queues before it drops new ones and
   * counts them in `Watcher.prototype.dropped`: an integer from 1 to
   * 65,536. Default 16.
   */
  capacity?: number | undefined;
  /**
   * When `true`, `group` is a group-name prefix: `watch("user:", "*",
   * { prefix: true })` sees `user:1`, `user:2`, …, and `""` every group.
   * `since` resumes as for one group. Default `false`.
   */
  prefix?: boolean | undefined;
}

/**
 * Options for {@linkcode Store.prototype.list}.
 */
export interface ListOptions {
  /** The most entries in one page, from 1 to 10,000. Default `100`. */
  limit?: number;
  /** The `cursor` of the previous page; absent for the first page. */
  cursor?: string | undefined;
  /** Only keys starting with this string (literal). Default `""`. */
  prefix?: string;
  /** Walk in descending key order. Default `false`. */
  reverse?: boolean;
}

// The names of each options object, to refuse any other: a misspelt option
// would be ignored without a word. Typed as records of the interfaces' keys,
// so that an option added to an interface must be added here.

/** The names of {@linkcode StoreOptions}. */
export const STORE_OPTIONS: Record<keyof StoreOptions, true> = {
  purgeIntervalMs: true,
  busyTimeoutMs: true,
  durability: true,
  clock: true,
  onCallbackError: true,
  changeFeed: true,
  changePollMs: true,
  changeRetention: true,
  renderLimits: true,
  readOnly: true,
};

/** The names of {@linkcode RenderLimits}. */
export const RENDER_LIMITS: Record<keyof RenderLimits, true> = {
  maxOutputBytes: true,
  maxSteps: true,
};

/** The names of {@linkcode RenderOptions}. */
export const RENDER_OPTIONS: Record<keyof RenderOptions, true> = RENDER_NAMES;

/** The names of {@linkcode WatchOptions}. */
export const WATCH_OPTIONS: Record<keyof WatchOptions, true> = {
  since: true,
  capacity: true,
  prefix: true,
};

/** The names of {@linkcode ListOptions}. */
export const LIST_OPTIONS: Record<keyof ListOptions, true> = LIST_NAMES;

const CHANGE_RETENTION: Record<keyof ChangeRetention, true> = {
  maxRows: true,
  maxAgeMs: true,
};

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
  /** `undefined`: read-only when the file cannot be written. */
  readOnly: boolean | undefined;
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
  assertNames(options);
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
    readOnly: readOnlyOf(options.readOnly, changeFeed, path === MEMORY_PATH),
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

function assertNames(options: StoreOptions): void {
  assertOptions(OP, "options", options, STORE_OPTIONS);
  const { renderLimits, changeRetention } = options;
  assertOptions(
    OP,
    "renderLimits",
    renderLimits,
    RENDER_LIMITS,
    "renderLimits.",
  );
  assertOptions(
    OP,
    "changeRetention",
    changeRetention,
    CHANGE_RETENTION,
    "changeRetention.",
  );
}

function readOnlyOf(
  readOnly: unknown,
  changeFeed: boolean,
  inMemory: boolean,
): boolean | undefined {
  if (readOnly === undefined) {
    // Asking for the change feed asks to write: never read-only by itself.
    return changeFeed || inMemory ? false : undefined;
  }
  assertBoolean(OP, "readOnly", readOnly);
  if (readOnly && (changeFeed || inMemory)) {
    throw new TypeError(
      `Cannot open store: readOnly ${
        changeFeed
          ? "excludes changeFeed, whose triggers and log are written into the file"
          : "needs a file; an in-memory store starts empty"
      }`,
    );
  }
  return readOnly;
}

function timer(name: string, value: unknown, fallback: number): number {
  return integerArg(OP, name, value, fallback, 0, MAX_TIMER_MS);
}
