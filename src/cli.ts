/**
 * A command line for operators: look inside a store's file, change it, and
 * move its data, without writing code.
 *
 * ```sh
 * deno run --allow-read --allow-write jsr:@core/store/cli <command> <db> …
 * ```
 *
 * Commands: `get`, `set`, `increment`, `delete`, `list`, `groups`, `count`, `export`,
 * `import`, `backup`, `watch` and `stats` (`help` lists them). Exit codes:
 * `0` success, `1` when `get` finds no live key, `2` for a usage error (with
 * a usage line on stderr), `3` for any other failure (a message on stderr).
 * Commands other than `set`, `increment` and `import` never create a
 * database file.
 *
 * @module
 */

import { closest } from "./_check.ts";
import { fileStats } from "./_stats.ts";
import { StoreError } from "./errors.ts";
import type { StoreEvent } from "./events.ts";
import { Store } from "./store.ts";
import { fromNdjson, toNdjson } from "./transfer.ts";

/** Where {@linkcode main} reads and writes; each defaults to the process's. */
export interface MainOptions {
  /** What `import` reads. Default `Deno.stdin.readable`. */
  stdin?: ReadableStream<Uint8Array>;
  /** Where results go. Default `Deno.stdout.writable` (never closed). */
  stdout?: WritableStream<Uint8Array>;
  /** Where errors and usage go. Default `Deno.stderr.writable`. */
  stderr?: WritableStream<Uint8Array>;
  /**
   * Ends `watch` when aborted. When `main` runs as the program, SIGINT and
   * SIGTERM abort it.
   */
  signal?: AbortSignal;
}

const OK = 0;
const MISSING = 1;
const USAGE = 2;
const FAILURE = 3;

const LIST_PAGE = 1_000;
// Events waiting for a slow stdout in `watch`; beyond it they are counted
// and reported instead of growing memory.
const WATCH_QUEUE = 100_000;

interface Context {
  db: string;
  args: string[];
  options: Map<string, string>;
  io: Required<Omit<MainOptions, "signal">> & { signal?: AbortSignal };
  /** Whether stdin is the process's own and a terminal. */
  interactive: boolean;
}

interface Command {
  /** The arguments after the command's name, as the usage line shows them. */
  usage: string;
  /** Fewest and most positional arguments, `<db>` included. */
  arity: [number, number];
  /** Options taking a value, without `--`. */
  options?: string[];
  /** Whether the command may create the database file. */
  creates?: boolean;
  run(context: Context): Promise<number>;
}

class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

const COMMANDS: Record<string, Command> = {
  get: {
    usage: "<db> <group> <key>",
    arity: [3, 3],
    run: ({ db, args: [group, key], io }) =>
      withStore(db, async (store) => {
        const value = store.get(group as string, key as string);
        if (value === undefined) {
          await write(
            io.stderr,
            `no live key ${JSON.stringify(key)} in group ${
              JSON.stringify(group)
            }\n`,
          );
          return MISSING;
        }
        return await answer(io, value);
      }, READ_ONLY),
  },
  set: {
    usage: "<db> <group> <key> <value> [--ttl <ms>]",
    arity: [4, 4],
    options: ["ttl"],
    creates: true,
    run: ({ db, args: [group, key, value], options }) => {
      const ttl = options.get("ttl");
      const ttlMs = ttl === undefined ? undefined : parseTTL(ttl, "set");
      return withStore(db, (store) => {
        if (ttlMs === undefined) {
          store.set(group as string, key as string, value as string);
        } else {
          store.setWithTTL(
            group as string,
            key as string,
            value as string,
            ttlMs,
          );
        }
        return Promise.resolve(OK);
      });
    },
  },
  increment: {
    usage: "<db> <group> <key> [<delta>] [--ttl <ms>]",
    arity: [3, 4],
    options: ["ttl"],
    creates: true,
    run: ({ db, args: [group, key, delta], options, io }) => {
      const by = delta === undefined ? 1 : parseDelta(delta);
      const ttl = options.get("ttl");
      const ttlMs = ttl === undefined ? undefined : parseTTL(ttl, "increment");
      return withStore(db, async (store) => {
        const value = store.increment(
          group as string,
          key as string,
          by,
          ttlMs,
        );
        return await answer(io, String(value));
      });
    },
  },
  delete: {
    usage: "<db> <group> [<key>]",
    arity: [2, 3],
    run: ({ db, args: [group, key], io }) =>
      withStore(db, async (store) => {
        const removed = key === undefined
          ? store.deleteGroup(group as string)
          : Number(store.delete(group as string, key));
        return await answer(io, String(removed));
      }),
  },
  list: {
    usage: "<db> <group> [--prefix <p>]",
    arity: [2, 2],
    options: ["prefix"],
    run: ({ db, args: [group], options, io }) =>
      withStore(db, async (store) => {
        const prefix = options.get("prefix") ?? "";
        let cursor: string | undefined;
        do {
          const page = store.list(group as string, {
            prefix,
            cursor,
            limit: LIST_PAGE,
          });
          await writeJsonLines(
            io,
            page.entries.map(([key, value]) => ({ key, value })),
          );
          cursor = page.cursor;
        } while (cursor !== undefined);
        return OK;
      }, READ_ONLY),
  },
  groups: {
    usage: "<db> [<prefix>]",
    arity: [1, 2],
    run: ({ db, args: [prefix], io }) =>
      withStore(db, async (store) => {
        return await writeJsonLines(io, store.groups(prefix ?? ""));
      }, READ_ONLY),
  },
  count: {
    usage: "<db> [<group>]",
    arity: [1, 2],
    run: ({ db, args: [group], io }) =>
      withStore(db, async (store) => {
        const n = group === undefined ? store.countAll() : store.count(group);
        return await answer(io, String(n));
      }, READ_ONLY),
  },
  export: {
    usage: "<db> [--prefix <p>]",
    arity: [1, 1],
    options: ["prefix"],
    run: ({ db, options, io }) =>
      withStore(db, async (store) => {
        const prefix = options.get("prefix") ?? "";
        await store.exportEntries({ prefix }).pipeThrough(toNdjson())
          .pipeTo(io.stdout, { preventClose: true });
        return OK;
      }, READ_ONLY),
  },
  import: {
    usage: "<db> < records.ndjson",
    arity: [1, 1],
    creates: true,
    run: ({ db, io, interactive }) => {
      // Waiting for a terminal to type NDJSON is never what was meant.
      if (interactive) {
        throw new UsageError(
          "import reads NDJSON from stdin: redirect a file or a pipe",
          "import",
        );
      }
      return withStore(db, async (store) => {
        const result = await store.importEntries(
          io.stdin.pipeThrough(fromNdjson()),
        );
        return await answer(io, JSON.stringify(result));
      });
    },
  },
  backup: {
    usage: "<db> <dest>",
    arity: [2, 2],
    run: ({ db, args: [dest] }) =>
      withStore(db, (store) => {
        store.backup(dest as string);
        return Promise.resolve(OK);
      }, READ_ONLY),
  },
  watch: {
    usage: "<db> [<group> [<key>]]",
    arity: [1, 3],
    run: watch,
  },
  stats: {
    usage: "<db>",
    arity: [1, 1],
    run: ({ db, io }) =>
      withStore(db, async () => {
        const stats = { path: db, ...fileStats(db, Date.now()) };
        return await answer(io, JSON.stringify(stats, null, 2));
      }, READ_ONLY),
  },
};

/**
 * Runs one command of the command line and resolves with its exit code:
 * `0` success, `1` when `get` finds no live key, `2` for a usage error, `3`
 * for any other failure. It never exits the process itself, so tests can
 * call it in-process with their own streams.
 *
 * @example Set and get a value in-process
 * ```ts
 * import { main } from "@core/store/cli";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const db = `${dir}/app.db`;
 * let out = "";
 * const stdout = new WritableStream<Uint8Array>({
 *   write(chunk) {
 *     out += new TextDecoder().decode(chunk);
 *   },
 * });
 * assert.equal(await main(["set", db, "config", "theme", "dark"]), 0);
 * assert.equal(await main(["get", db, "config", "theme"], { stdout }), 0);
 * assert.equal(out, "dark\n");
 * assert.equal(await main(["get", db, "config", "lang"], { stdout }), 1);
 * ```
 *
 * @param args The command and its arguments, as `Deno.args`.
 * @param io Streams to use instead of the process's, and a signal that ends
 * `watch`.
 * @returns The exit code.
 */
export async function main(
  args: string[],
  io?: MainOptions,
): Promise<number> {
  io ??= {};
  const streams = {
    stdin: io.stdin ?? Deno.stdin.readable,
    stdout: io.stdout ?? Deno.stdout.writable,
    stderr: io.stderr ?? Deno.stderr.writable,
    ...(io.signal === undefined ? {} : { signal: io.signal }),
  };
  const [name, ...rest] = args;
  if (name === "help" || name === "--help" || name === "-h") {
    await write(streams.stdout, helpText());
    return OK;
  }
  try {
    const command = name !== undefined && Object.hasOwn(COMMANDS, name)
      ? COMMANDS[name]
      : undefined;
    if (name === undefined || command === undefined) {
      throw new UsageError(
        name === undefined
          ? "no command given"
          : `unknown command ${JSON.stringify(name)}`,
      );
    }
    const { positional, options } = parseArgs(name, command, rest);
    const [db, ...more] = positional as [string, ...string[]];
    if (db === ":memory:" || db === "") {
      throw new UsageError("<db> must be a file path", name);
    }
    if (!command.creates) assertExists(name, db);
    const interactive = io.stdin === undefined && Deno.stdin.isTerminal();
    return await command.run({
      db,
      args: more,
      options,
      io: streams,
      interactive,
    });
  } catch (error) {
    return await report(streams.stderr, error);
  }
}

async function report(
  stderr: WritableStream<Uint8Array>,
  error: unknown,
): Promise<number> {
  if (error instanceof UsageError) {
    const usage = error.command === undefined
      ? helpText()
      : `usage: ${usageLine(error.command)}\n`;
    await write(stderr, `error: ${error.message}\n${usage}`);
    return USAGE;
  }
  // The reader of stdout went away (`export … | head`): nothing to say.
  if (error instanceof Deno.errors.BrokenPipe) return OK;
  await write(
    stderr,
    `error: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  return FAILURE;
}

function parseArgs(
  name: string,
  command: Command,
  rest: string[],
): { positional: string[]; options: Map<string, string> } {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--") {
      positional.push(...rest.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const option = arg.slice(2, equals === -1 ? undefined : equals);
    if (!command.options?.includes(option)) {
      const near = closest(option, command.options ?? []);
      throw new UsageError(
        `unknown option --${option}${
          near === undefined ? "" : ` (did you mean --${near}?)`
        }`,
        name,
      );
    }
    const value = equals === -1 ? rest[++i] : arg.slice(equals + 1);
    if (value === undefined) {
      throw new UsageError(`--${option} needs a value`, name);
    }
    options.set(option, value);
  }
  const [min, max] = command.arity;
  if (positional.length < min || positional.length > max) {
    throw new UsageError(
      positional.length < min ? "missing arguments" : "too many arguments",
      name,
    );
  }
  return { positional, options };
}

function parseTTL(text: string, command: string): number {
  const ttl = Number(text);
  if (text.trim() === "" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new UsageError(
      `--ttl must be a positive number of milliseconds, received ${
        JSON.stringify(text)
      }`,
      command,
    );
  }
  return ttl;
}

function parseDelta(text: string): number {
  const delta = Number(text);
  if (!/^[+-]?[0-9]+$/.test(text) || !Number.isSafeInteger(delta)) {
    throw new UsageError(
      `<delta> must be a safe integer, received ${JSON.stringify(text)}`,
      "increment",
    );
  }
  return delta;
}

function assertExists(command: string, db: string): void {
  try {
    Deno.statSync(db);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new StoreError(
        `Cannot ${command}: no database at ${db} (only set, increment and import create one)`,
      );
    }
    throw error;
  }
}

// The commands that only read open the file read-only: they work on a
// read-only file or a backup, and never change it (not even by deleting an
// expired key they pass over).
const READ_ONLY = { readOnly: true } as const;

async function withStore(
  db: string,
  fn: (store: Store) => Promise<number>,
  options: { changeFeed?: boolean; readOnly?: boolean } = {},
): Promise<number> {
  // A short-lived command purges nothing in the background.
  using store = new Store(db, { purgeIntervalMs: 0, ...options });
  return await fn(store);
}

function watch(context: Context): Promise<number> {
  const { db, args: [group = "*", key = "*"], io } = context;
  return withStore(db, async (store) => {
    const lines: string[] = [];
    let dropped = 0;
    let wake: (() => void) | undefined;
    // A callback rather than a Watcher: a Watcher holds 16 events, too few
    // for a burst from another process; this queue holds WATCH_QUEUE.
    store.onChange((event) => {
      if (!matches(event, group, key)) return;
      if (lines.length >= WATCH_QUEUE) dropped++;
      else lines.push(`${JSON.stringify(event)}\n`);
      wake?.();
    });
    // Told once the feed is set up: every commit after this line is printed.
    await write(
      io.stderr,
      `watching ${db}, group ${JSON.stringify(group)}, key ${
        JSON.stringify(key)
      }; stop with Ctrl-C\n`,
    );
    const signal = io.signal;
    const stopped = new Promise<void>((resolve) => {
      if (signal?.aborted) resolve();
      signal?.addEventListener("abort", () => resolve(), { once: true });
    });
    // The feed's poll timer is unref'd; this one keeps the process waiting.
    const alive = setInterval(() => {}, 60_000);
    try {
      while (!signal?.aborted || lines.length > 0) {
        if (lines.length === 0) {
          await Promise.race([
            stopped,
            new Promise<void>((resolve) => wake = resolve),
          ]);
          wake = undefined;
          continue;
        }
        const chunk = lines.splice(0, lines.length).join("");
        await write(io.stdout, chunk);
        if (dropped > 0) {
          await write(io.stderr, `dropped ${dropped} events\n`);
          dropped = 0;
        }
      }
    } finally {
      clearInterval(alive);
    }
    return OK;
  }, { changeFeed: true });
}

// The matching rules of Store.watch: "*" matches every group or key, and a
// delete_group event (key "") reaches "*" keys only.
function matches(event: StoreEvent, group: string, key: string): boolean {
  if (group !== "*" && event.group !== group) return false;
  if (key === "*") return true;
  return event.type !== "delete_group" && event.key === key;
}

const encoder = new TextEncoder();

// Values as JSON on stdout, one a line, in one write; resolves with success,
// as `answer` does, for the commands that print nothing else.
async function writeJsonLines(
  io: Context["io"],
  values: readonly unknown[],
): Promise<number> {
  if (values.length > 0) {
    await write(
      io.stdout,
      values.map((v) => `${JSON.stringify(v)}\n`).join(""),
    );
  }
  return OK;
}

// A command's result: one line on stdout, and success.
async function answer(io: Context["io"], line: string): Promise<number> {
  await write(io.stdout, `${line}\n`);
  return OK;
}

async function write(
  stream: WritableStream<Uint8Array>,
  text: string,
): Promise<void> {
  const writer = stream.getWriter();
  try {
    await writer.write(encoder.encode(text));
  } finally {
    writer.releaseLock();
  }
}

function usageLine(name: string): string {
  return `cli ${name} ${COMMANDS[name]?.usage ?? ""}`.trimEnd();
}

function helpText(): string {
  return [
    "usage: cli <command> <db> …",
    "",
    ...Object.keys(COMMANDS).map((name) => `  ${usageLine(name)}`),
    "",
    "exit codes: 0 ok, 1 get found no live key, 2 usage error, 3 failure",
    "",
  ].join("\n");
}

if (import.meta.main) {
  const controller = new AbortController();
  const stop = () => controller.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const code = await main(Deno.args, { signal: controller.signal });
  for (const signal of signals) Deno.removeSignalListener(signal, stop);
  Deno.exit(code);
}
