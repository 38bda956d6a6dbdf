/// <reference lib="deno.unstable" />
/**
 * What the benchmark modules and scripts share: the `entries` table's SQL as raw
 * `node:sqlite` code would write it, deterministic data, temporary files
 * removed at exit, and building large database files quickly.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { Store, type StoreOptions, type Watcher } from "@core/store";

/** The exact table the store (and its Go sibling) writes. */
export const DDL = `CREATE TABLE entries (
  group_name TEXT NOT NULL,
  entry_key TEXT NOT NULL,
  entry_value TEXT NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (group_name, entry_key)
)`;

/** The upsert the store runs for `set`, as raw code would write it. */
export const UPSERT =
  `INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, ?)
  ON CONFLICT(group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = excluded.expires_at`;
/** The plainest point read. */
export const SELECT_ONE =
  "SELECT entry_value FROM entries WHERE group_name = ? AND entry_key = ?";
/** The plainest read of a whole group. */
export const SELECT_GROUP =
  "SELECT entry_key, entry_value FROM entries WHERE group_name = ? ORDER BY entry_key";
/** The condition of a live row, with the time as its parameter. */
export const LIVE = "(expires_at IS NULL OR expires_at > ?)";

// node:sqlite's type declarations predate setReturnArrays().
type ArrayStatement = StatementSync & {
  setReturnArrays(enabled: boolean): void;
};

/**
 * Makes a statement return rows as arrays, the fastest form `node:sqlite`
 * offers (about 2.4x faster than row objects for a 10,000-row read).
 */
export function arrays(statement: StatementSync): StatementSync {
  (statement as ArrayStatement).setReturnArrays(true);
  return statement;
}

// ------------------------------------------------------------ cleanup

const cleanups: (() => void)[] = [];
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  globalThis.addEventListener("unload", () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        cleanup();
      } catch {
        // Exiting anyway: a failed close must not hide the others.
      }
    }
  });
}

/** Runs `fn` when the process unloads, in reverse order of registration. */
export function atExit(fn: () => void): void {
  hookExit();
  cleanups.push(fn);
}

let dir: string | undefined;

/** A path in this process's temporary directory, removed at exit. */
export function tempFile(name: string): string {
  if (dir === undefined) {
    const path = Deno.makeTempDirSync({ prefix: "core_store_bench_" });
    dir = path;
    hookExit();
    // First in the list, so it runs last: after every connection is closed.
    cleanups.unshift(() => Deno.removeSync(path, { recursive: true }));
  }
  return `${dir}/${name}`;
}

/** Opens a store (no background purge unless asked) closed at exit. */
export function openStore(
  path = ":memory:",
  options: StoreOptions = {},
): Store {
  const store = new Store(path, { purgeIntervalMs: 0, ...options });
  atExit(() => store.close());
  return store;
}

/**
 * Opens a raw connection closed at exit. A file is put in WAL mode with the
 * given `synchronous`, as the store does; `:memory:` gets the `entries` table.
 */
export function openRaw(
  path = ":memory:",
  synchronous: "NORMAL" | "FULL" = "NORMAL",
): DatabaseSync {
  const db = new DatabaseSync(path);
  if (path === ":memory:") {
    db.exec(DDL);
  } else {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec(`PRAGMA synchronous=${synchronous}`);
    db.exec("PRAGMA busy_timeout=5000");
  }
  atExit(() => db.close());
  return db;
}

/**
 * Opens a Deno KV database closed at exit, or returns `undefined` when the
 * process runs without `--unstable-kv` (the KV entries are then skipped).
 */
export async function openKv(path: string): Promise<Deno.Kv | undefined> {
  if (typeof Deno.openKv !== "function") {
    console.error(
      `Deno KV is not available (run with --unstable-kv); skipping its entries`,
    );
    return undefined;
  }
  const kv = await Deno.openKv(path);
  atExit(() => kv.close());
  return kv;
}

/** Writes `[group, key] -> value` pairs into Deno KV, 1,000 per commit. */
export async function seedKv(
  kv: Deno.Kv,
  count: number,
  row: (i: number) => [string, string, string],
): Promise<void> {
  for (let start = 0; start < count; start += 1_000) {
    const op = kv.atomic();
    for (let i = start; i < Math.min(count, start + 1_000); i++) {
      const [group, key, value] = row(i);
      op.set([group, key], value);
    }
    const result = await op.commit();
    if (!result.ok) throw new Error("Deno KV seed failed");
  }
}

// ------------------------------------------------------------ data

/** Keys present in the per-operation groups. */
export const N = 10_000;

/** The value written for key number `i`. */
export function valueOf(i: number): string {
  return `value number ${i} with some payload text`;
}

/** The small layout: N keys spread over 100 groups of 100 keys. */
export const SPREAD = {
  group: (i: number): string => `user:${(i % 100).toString().padStart(3, "0")}`,
  key: (i: number): string => `field-${i.toString().padStart(5, "0")}`,
} as const;

/** Row `i` of the small layout. */
export function spreadRow(i: number): [string, string, string] {
  return [SPREAD.group(i), SPREAD.key(i), valueOf(i)];
}

/** The groups, keys and seeded values of the N keys of the spread layout. */
export const GROUPS: readonly string[] = Array.from(
  { length: N },
  (_, i) => SPREAD.group(i),
);
/** See {@linkcode GROUPS}. */
export const KEYS: readonly string[] = Array.from(
  { length: N },
  (_, i) => SPREAD.key(i),
);
/** See {@linkcode GROUPS}. */
export const VALUES: readonly string[] = Array.from(
  { length: N },
  (_, i) => valueOf(i),
);
/** Values written over the seeded ones, so every set changes the row. */
export const NEW_VALUES: readonly string[] = Array.from(
  { length: N },
  (_, i) => VALUES[N - 1 - i]!,
);

/** A :memory: store holding the N keys of the spread layout. */
export function seededStore(): Store {
  const store = openStore();
  store.transaction((tx) => {
    for (let i = 0; i < N; i++) tx.set(GROUPS[i]!, KEYS[i]!, VALUES[i]!);
  });
  return store;
}

/** A raw :memory: database holding the N keys of the spread layout. */
export function seededRaw(): DatabaseSync {
  const raw = openRaw();
  seed(raw, N, spreadRow);
  return raw;
}

/**
 * The large layout, for files of up to 1,000,000 keys: groups of 1,000
 * keys, `g0000` to `g0999`, without a namespace (no `:`).
 */
export const LARGE = {
  group: (i: number): string =>
    `g${Math.floor(i / 1_000).toString().padStart(4, "0")}`,
  key: (i: number): string => `k${i.toString().padStart(7, "0")}`,
} as const;

/** Inserts rows `[group, key, value]` in one transaction. */
export function seed(
  db: DatabaseSync,
  count: number,
  row: (i: number) => [string, string, string],
): void {
  const insert = db.prepare(UPSERT);
  db.exec("BEGIN");
  for (let i = 0; i < count; i++) insert.run(...row(i), null);
  db.exec("COMMIT");
}

/**
 * Creates a store file (table, indexes and triggers made by `Store` itself)
 * holding `count` keys of the large layout, written through raw SQL in one
 * transaction, then closes it so the WAL is checkpointed away, and syncs it.
 * With `expired`, the rows whose index is a multiple of `expired.every` get
 * `expires_at = expired.at`; the others have no expiry.
 */
export function buildFile(
  path: string,
  count: number,
  expired?: { every: number; at: number },
): void {
  new Store(path, { purgeIntervalMs: 0 }).close();
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=OFF");
  const insert = db.prepare(UPSERT);
  db.exec("BEGIN");
  for (let i = 0; i < count; i++) {
    const expiresAt = expired !== undefined && i % expired.every === 0
      ? expired.at
      : null;
    insert.run(LARGE.group(i), LARGE.key(i), valueOf(i), expiresAt);
  }
  db.exec("COMMIT");
  db.close();
  syncFile(path);
}

/**
 * Copies a database file and syncs the copy, for benchmarks that need the
 * same data twice.
 */
export function copyFile(from: string, to: string): void {
  Deno.copyFileSync(from, to);
  syncFile(to);
}

/**
 * Flushes a file written during setup to the disk, so that the first sync
 * the measured code makes (a WAL checkpoint, say) does not pay for writing
 * back the setup's pages: a file in service has no such backlog, as the
 * kernel writes dirty pages back within seconds.
 */
export function syncFile(path: string): void {
  using file = Deno.openSync(path, { read: true, write: true });
  file.syncSync();
}

/**
 * Re-inserts the expired rows of a file built by {@linkcode buildFile}, after
 * a purge removed them, through a connection of its own.
 */
export function restoreExpired(
  db: DatabaseSync,
  count: number,
  expired: { every: number; at: number },
): void {
  const insert = db.prepare(UPSERT);
  db.exec("BEGIN IMMEDIATE");
  for (let i = 0; i < count; i += expired.every) {
    insert.run(LARGE.group(i), LARGE.key(i), valueOf(i), expired.at);
  }
  db.exec("COMMIT");
}

/** A small deterministic PRNG (mulberry32), for sampled keys. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` distinct indices drawn uniformly from `[0, size)` (all of them,
 * shuffled, when `size <= count`), so that reads and writes land all over the
 * file.
 */
export function sample(size: number, count: number, seed = 42): number[] {
  const random = prng(seed);
  if (size <= count) {
    const all = Array.from({ length: size }, (_, i) => i);
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    return all;
  }
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(random() * size));
  return [...picked];
}

/**
 * Walks the indices `0, 1, …, length - 1, 0, …` for the measured functions,
 * flipping {@linkcode Walk.prototype.odd} at each wrap. Writes pick one of
 * two values by it, so that every write changes the stored row: SQLite skips
 * writing a row whose content is unchanged, and a transaction that changed
 * nothing commits without writing (or syncing) anything.
 */
export class Walk {
  /** The current index. */
  i = -1;
  /** Whether this is an odd pass over the indices (the first is even). */
  odd = false;

  constructor(readonly length: number) {}

  /** Advances to the next index and returns it. */
  next(): number {
    if (++this.i === this.length) {
      this.i = 0;
      this.odd = !this.odd;
    }
    return this.i;
  }
}

/** Walks `0, 1, …, length - 1, 0, …` for the measured reads. */
export function cycle(length: number): () => number {
  let i = -1;
  return () => (i = i + 1 === length ? 0 : i + 1);
}

// ------------------------------------------------------------ servers and SSE clients

/** `uptime`'s load averages (1, 5, 15 minutes). */
export async function load(): Promise<string> {
  const { stdout } = await new Deno.Command("uptime").output();
  return new TextDecoder().decode(stdout).match(/load average: (.*)$/m)?.[1] ??
    "unknown";
}

/** The value at quantile `q` of ascending `sorted`. */
export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** The median of `values` (not modified). */
export function median(values: number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

/** A server in a child process, and the base URL it printed. */
export interface ServerChild {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  base: string;
  /** The child process. */
  child: Deno.ChildProcess;
}

/**
 * Runs `deno run <flags> <script> <args>` and waits for the line
 * `listening on http://…/` on its stdout (within `ms`); stdout is drained
 * afterwards, stderr inherited.
 */
export async function startServer(
  script: URL,
  flags: string[],
  args: string[],
  ms = 30_000,
): Promise<ServerChild> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, script.pathname, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  let seen = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the server exited: ${seen}`);
      seen += value;
      const match = seen.match(/listening on (http:\S+)\//);
      if (match) {
        // Keep draining stdout so the child never blocks on it.
        (async () => {
          while (!(await reader.read()).done) { /* drain */ }
        })();
        return { base: match[1]!, child };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Stops a server child with `signal` and waits for it to exit. */
export async function stopServer(
  child: Deno.ChildProcess,
  signal: Deno.Signal = "SIGTERM",
): Promise<void> {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
  await child.status;
}

/** One Server-Sent Events frame as a client sees it. */
export interface SseFrame {
  /** The `id:` line, when there was one. */
  id?: string;
  /** The `event:` line, `"message"` when absent. */
  event: string;
  /** The `data:` lines, joined by `\n`. */
  data: string;
}

/**
 * An `EventSource`-style reader of a response body: parses frames as
 * `EventSource` does (fields `id`, `event`, `data`; comments and `retry`
 * skipped) and hands each one to `onFrame` as it arrives. `lastId` is the
 * last id seen, as `EventSource` keeps it for `Last-Event-ID`.
 */
export class SseClient {
  /** The last `id:` seen. */
  lastId: string | undefined;
  /** Resolves when the first bytes arrive (the stream is open). */
  readonly opened: Promise<void>;
  /** Resolves when the body ends, errors or is cancelled. */
  readonly closed: Promise<void>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #onFrame: (frame: SseFrame) => void;

  constructor(response: Response, onFrame: (frame: SseFrame) => void) {
    this.#onFrame = onFrame;
    this.#reader = response.body!.pipeThrough(new TextDecoderStream())
      .getReader();
    let open!: () => void;
    this.opened = new Promise((resolve) => open = resolve);
    this.closed = this.#run(open);
  }

  /** Replaces the frame handler. */
  set onFrame(onFrame: (frame: SseFrame) => void) {
    this.#onFrame = onFrame;
  }

  /** Cancels the body, as a client going away. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.closed;
  }

  async #run(open: () => void): Promise<void> {
    let rest = "";
    let frame: SseFrame = { event: "message", data: "" };
    let fields = 0;
    let data = false;
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) return;
        open();
        rest += value;
        let start = 0;
        for (let end; (end = rest.indexOf("\n", start)) >= 0; start = end + 1) {
          const line = rest.slice(start, end);
          if (line === "") {
            if (fields > 0) this.#onFrame(frame);
            frame = { event: "message", data: "" };
            fields = 0;
            data = false;
          } else if (line.startsWith("data: ")) {
            frame.data = data
              ? `${frame.data}\n${line.slice(6)}`
              : line.slice(6);
            data = true;
            fields++;
          } else if (line.startsWith("id: ")) {
            frame.id = this.lastId = line.slice(4);
            fields++;
          } else if (line.startsWith("event: ")) {
            frame.event = line.slice(7);
            fields++;
          }
        }
        rest = rest.slice(start);
      }
    } catch {
      // Cancelled, or the connection was cut (a server killed).
    } finally {
      open();
    }
  }
}

/**
 * Reads a watcher's stream as an application would, counting the events,
 * and lets a benchmark wait until it has caught up.
 */
export class Drain {
  seen = 0;
  #want = 0;
  #wake: (() => void) | undefined;

  constructor(watcher: Watcher) {
    (async () => {
      for await (const _event of watcher) {
        this.seen++;
        if (this.seen >= this.#want && this.#wake !== undefined) {
          const wake = this.#wake;
          this.#wake = undefined;
          wake();
        }
      }
    })();
  }

  until(count: number): Promise<void> {
    if (this.seen >= count) return Promise.resolve();
    this.#want = count;
    return new Promise((resolve) => this.#wake = resolve);
  }
}
