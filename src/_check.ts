/**
 * Argument checks shared by every public entry point, so that one rule has
 * one message wherever it applies: `Cannot <operation>: <name> must be …,
 * received …`.
 *
 * @module
 */

import { WATCHER_CAPACITY } from "./_watch_queue.ts";

/**
 * Names the type of a value the way the error messages do: `null`, `array`,
 * or its `typeof`.
 *
 * @param value Anything a caller passed.
 * @returns A short type name.
 */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * Asserts that an argument is a well-formed string: one with a lone
 * surrogate cannot be stored unaltered (SQLite would keep U+FFFD instead).
 *
 * @param operation What the caller was doing, e.g. `"set value"`.
 * @param name The argument's name.
 * @param value The argument.
 * @throws {TypeError} When `value` is not a string or holds a lone surrogate.
 */
export function assertText(
  operation: string,
  name: string,
  value: unknown,
): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Cannot ${operation}: ${name} must be a string, received ${
        describe(value)
      }`,
    );
  }
  if (!value.isWellFormed()) {
    throw new TypeError(
      `Cannot ${operation}: ${name} contains a lone surrogate at index ${
        loneSurrogateIndex(value)
      }, which cannot be stored unaltered`,
    );
  }
}

function loneSurrogateIndex(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}

/**
 * Asserts that a time to live is a positive finite number of milliseconds.
 *
 * @param operation What the caller was doing.
 * @param ttlMs The argument.
 * @throws {TypeError} When `ttlMs` is not a number.
 * @throws {RangeError} When it is not positive and finite.
 */
export function assertTTL(
  operation: string,
  ttlMs: unknown,
): asserts ttlMs is number {
  if (typeof ttlMs !== "number") {
    throw new TypeError(
      `Cannot ${operation}: ttlMs must be a number, received ${
        describe(ttlMs)
      }`,
    );
  }
  if (!(ttlMs > 0) || ttlMs === Infinity) {
    throw new RangeError(
      `Cannot ${operation}: ttlMs must be a positive finite number, received ${ttlMs}`,
    );
  }
}

/**
 * Reads an optional integer argument or option.
 *
 * @param operation What the caller was doing.
 * @param name The argument's name.
 * @param value The argument; `undefined` takes `fallback`.
 * @param fallback The default.
 * @param min The smallest accepted value.
 * @param max The largest accepted value.
 * @returns The integer.
 * @throws {TypeError} When `value` is not a number.
 * @throws {RangeError} When it is not an integer from `min` to `max`.
 */
export function integerArg(
  operation: string,
  name: string,
  value: unknown,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${operation}: ${name} must be a number, received ${
        describe(value)
      }`,
    );
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = min === 0 && max === Number.MAX_SAFE_INTEGER
      ? "a non-negative integer"
      : `an integer from ${min} to ${max}`;
    throw new RangeError(
      `Cannot ${operation}: ${name} must be ${range}, received ${value}`,
    );
  }
  return value;
}

/**
 * Asserts that an argument names a file to create: a non-empty string other
 * than `":memory:"`.
 *
 * @param operation What the caller was doing.
 * @param path The argument.
 * @throws {TypeError} When `path` is not such a string.
 */
export function assertFilePath(
  operation: string,
  path: unknown,
): asserts path is string {
  assertText(operation, "path", path);
  if (path === "" || path === ":memory:") {
    throw new TypeError(
      `Cannot ${operation}: path must be a file path, received ${
        JSON.stringify(path)
      }`,
    );
  }
}

/**
 * Asserts that an argument is a function.
 *
 * @param operation What the caller was doing.
 * @param name The argument's name.
 * @param value The argument.
 * @throws {TypeError} When `value` is not a function.
 */
export function assertFunction(
  operation: string,
  name: string,
  value: unknown,
): asserts value is (...args: never[]) => unknown {
  assertTypeOf(operation, name, value, "function");
}

/**
 * Asserts that an argument is a boolean.
 *
 * @param operation What the caller was doing.
 * @param name The argument's name.
 * @param value The argument.
 * @throws {TypeError} When `value` is not a boolean.
 */
export function assertBoolean(
  operation: string,
  name: string,
  value: unknown,
): asserts value is boolean {
  assertTypeOf(operation, name, value, "boolean");
}

function assertTypeOf(
  operation: string,
  name: string,
  value: unknown,
  type: "function" | "boolean",
): void {
  const actual = typeof value;
  if (actual !== type) {
    throw new TypeError(
      `Cannot ${operation}: ${name} must be a ${type}, received ${
        describe(value)
      }`,
    );
  }
}

/**
 * Reads an optional argument that must be one of a few strings.
 *
 * @param operation What the caller was doing.
 * @param name The argument's name.
 * @param value The argument; `undefined` takes the first choice.
 * @param choices The accepted values, the default first.
 * @param ErrorClass `RangeError` for a mode, `TypeError` where the
 * published API has always thrown one.
 * @returns The chosen value.
 * @throws {RangeError | TypeError} When `value` is not one of `choices`.
 */
export function oneOf<const T extends string>(
  operation: string,
  name: string,
  value: unknown,
  choices: readonly [T, ...T[]],
  ErrorClass: typeof RangeError | typeof TypeError = RangeError,
): T {
  if (value === undefined) return choices[0];
  if ((choices as readonly unknown[]).includes(value)) return value as T;
  const names = choices.map((c) => JSON.stringify(c));
  const list = names.length === 2
    ? `${names[0]} or ${names[1]}`
    : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
  throw new ErrorClass(
    `Cannot ${operation}: ${name} must be ${list}, received ${
      typeof value === "string"
        ? JSON.stringify(value)
        : typeof value === "number" || typeof value === "boolean"
        ? String(value)
        : describe(value)
    }`,
  );
}

/**
 * Asserts that an options object is absent or an object that names only
 * known options: a misspelt option would otherwise be ignored without a
 * word. The message names the unknown key and the closest known one.
 *
 * @param operation What the caller was doing.
 * @param name What the object is called in messages (`options`, `quota`).
 * @param options The caller's options.
 * @param known The known option names, as the keys of an object (so that a
 * `Record<keyof SomeOptions, true>` keeps the list and the type in step).
 * @param path Prefixed to each key in messages, for nested options
 * (`"renderLimits."`).
 * @throws {TypeError} When `options` is not an object, or has a key that
 * `known` lacks.
 */
export function assertOptions(
  operation: string,
  name: string,
  options: unknown,
  known: Readonly<Record<string, true>>,
  path = "",
): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${operation}: ${name} must be an object, received ${
        describe(options)
      }`,
    );
  }
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    const near = closest(key, Object.keys(known));
    throw new TypeError(
      `Cannot ${operation}: unknown option ${JSON.stringify(path + key)}${
        near === undefined
          ? ""
          : ` (did you mean ${JSON.stringify(path + near)}?)`
      }`,
    );
  }
}

/**
 * The known name nearest to `name` by edit distance (ignoring case), when
 * it is near enough to be a likely misspelling.
 *
 * @param name What the caller wrote.
 * @param known The names it may have meant.
 * @returns The nearest name, or `undefined` when none is close.
 */
export function closest(
  name: string,
  known: readonly string[],
): string | undefined {
  // Long input costs quadratic time; nothing that long is a misspelling.
  if (name.length > 64) return undefined;
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const other = candidate.toLowerCase();
    // A name cut short (`maxLine` for `maxLineBytes`) is as likely a slip.
    const d = lower.length >= 3 && other.startsWith(lower)
      ? 1
      : distance(lower, other);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

// Levenshtein distance, one row at a time.
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length] as number;
}

/** The names of `ListOptions`: what {@linkcode checkList} accepts. */
export const LIST_NAMES = {
  limit: true,
  cursor: true,
  prefix: true,
  reverse: true,
} as const;

/** The names of `RenderOptions`: what {@linkcode checkRender} accepts. */
export const RENDER_NAMES = {
  maxOutputBytes: true,
  maxSteps: true,
  missingKey: true,
} as const;

/** The most unread events a watcher may be asked to queue. */
export const MAX_WATCH_CAPACITY = 65_536;

/** A watch's options as every backend reads them; `since` stays unchecked. */
export interface WatchShape {
  /** The resume position as given. */
  since: unknown;
  /** Unread events queued before live ones are dropped. */
  capacity: number;
  /** Whether `group` is a group-name prefix. */
  prefix: boolean;
}

/**
 * Reads the backend-independent options of a `watch`: `capacity` and
 * `prefix`. `since` is left to the backend, whose positions differ.
 *
 * @param operation What the caller was doing.
 * @param options The caller's options; `undefined` is none.
 * @returns The options, with their defaults.
 * @throws {TypeError} When `options` is not an object or `prefix` not a
 * boolean.
 * @throws {RangeError} When `capacity` is not an integer from 1 to 65,536.
 */
export function readWatchOptions(
  operation: string,
  options: unknown,
): WatchShape {
  if (options === undefined) {
    return { since: undefined, capacity: WATCHER_CAPACITY, prefix: false };
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${operation}: options must be an object, received ${
        describe(options)
      }`,
    );
  }
  const { since, capacity, prefix } = options as Record<string, unknown>;
  if (prefix !== undefined) assertBoolean(operation, "prefix", prefix);
  return {
    since,
    capacity: integerArg(
      operation,
      "capacity",
      capacity,
      WATCHER_CAPACITY,
      1,
      MAX_WATCH_CAPACITY,
    ),
    prefix: prefix === true,
  };
}

const MAX_LIST_LIMIT = 10_000;

/**
 * Checks the options of `list` for the asynchronous backends, as the
 * local store does.
 *
 * @param op The operation.
 * @param options The caller's options.
 * @returns Every option.
 */
export function checkList(op: string, options: {
  readonly limit?: unknown;
  readonly cursor?: unknown;
  readonly prefix?: unknown;
  readonly reverse?: unknown;
}): {
  limit: number;
  cursor: string | undefined;
  prefix: string;
  reverse: boolean;
} {
  assertOptions(op, "options", options, LIST_NAMES);
  const { cursor, prefix = "", reverse = false } = options;
  const limit = integerArg(
    op,
    "limit",
    options.limit ?? undefined,
    100,
    1,
    MAX_LIST_LIMIT,
  );
  if (cursor !== undefined) assertText(op, "cursor", cursor);
  assertText(op, "prefix", prefix);
  assertBoolean(op, "reverse", reverse);
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
  options: { readonly missingKey?: unknown },
): "default" | "zero" | "error" {
  assertOptions(op, "options", options, RENDER_NAMES);
  const missingKey = oneOf(op, "missingKey", options.missingKey ?? undefined, [
    "default",
    "zero",
    "error",
  ]);
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
  return since === undefined ? undefined : integerArg(op, "since", since, 0);
}

/** The atomic operations' names, for the messages: `Cannot increment value: …`. */
export const ATOMIC_OPS = {
  increment: "increment value",
  setIfAbsent: "set value if absent",
  compareAndSet: "compare and set value",
  compareAndDelete: "compare and delete value",
  getAndDelete: "get and delete value",
} as const;

/**
 * Asserts that the delta of an increment is a safe integer.
 *
 * @param operation What the caller was doing.
 * @param delta The argument.
 * @throws {TypeError} When `delta` is not a number.
 * @throws {RangeError} When it is not a safe integer.
 */
export function assertDelta(
  operation: string,
  delta: unknown,
): asserts delta is number {
  if (typeof delta !== "number") {
    throw new TypeError(
      `Cannot ${operation}: delta must be a number, received ${
        describe(delta)
      }`,
    );
  }
  if (!Number.isSafeInteger(delta)) {
    throw new RangeError(
      `Cannot ${operation}: delta must be a safe integer, received ${delta}`,
    );
  }
}

/**
 * Checks the arguments the atomic operations share beyond group and key:
 * the value to write, an optional TTL, and a compared value.
 *
 * @param operation What the caller was doing.
 * @param args `value`, `ttlMs` and `expected` when the operation has them;
 * `expected` may be `undefined` only with `absentOk`.
 * @throws {TypeError} When one has the wrong type.
 * @throws {RangeError} When `ttlMs` is not a positive finite number.
 */
export function assertAtomicArgs(
  operation: string,
  args: {
    value?: [unknown];
    ttlMs?: unknown;
    expected?: [unknown, absentOk: boolean];
  },
): void {
  const { value, ttlMs, expected } = args;
  if (expected !== undefined && !(expected[1] && expected[0] === undefined)) {
    assertText(operation, "expected", expected[0]);
  }
  if (value !== undefined) assertText(operation, "value", value[0]);
  if (ttlMs !== undefined) assertTTL(operation, ttlMs);
}
