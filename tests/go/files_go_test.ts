// Files exchanged with real Go: tests/go/files/ runs go-store's own SQL
// (v0.2.0's `kv` statements and the current `entries` ones, with the move of
// kv into entries on open) through database/sql and mattn/go-sqlite3, one
// connection, as go-store does. Needs Go and Debian's go-sqlite3
// (tests/go/install_go.sh) and --allow-all: `deno task test:go`. Under the
// plain `deno test` these tests are ignored, with a line saying why.
import assert from "node:assert/strict";
import { ScopedStore, Store, type StoreEvent } from "@core/store";
import { keepAlive, rawQuery, tempDir } from "../_helpers.ts";
import { skipGo } from "./_go.ts";

const ignore = skipGo("tests/go/files_go_test.ts");

/** A row as the Go program reads and writes it. */
interface GoRow {
  group: string;
  key: string;
  value: string;
  ttlMs?: number;
  expiresAt?: number | null;
}

type Format = "v0.2.0" | "current";

let built: Promise<string> | undefined;

// Built once per run into a temporary folder; cgo's build of go-sqlite3 is
// slow the first time, so the build cache lives in a stable folder.
function goProgram(): Promise<string> {
  built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "core-store-go-" });
    const binary = `${dir}/files`;
    const source = new URL("./files/", import.meta.url).pathname;
    const output = await new Deno.Command("go", {
      args: ["build", "-tags", "libsqlite3", "-o", binary, "."],
      cwd: source,
      env: goEnv(),
      stdout: "piped",
      stderr: "piped",
    }).output().catch((error) => {
      throw new Error(
        `Cannot run go (install it with tests/go/install_go.sh): ${error}`,
      );
    });
    if (!output.success) {
      throw new Error(
        `go build failed:\n${new TextDecoder().decode(output.stderr)}`,
      );
    }
    globalThis.addEventListener("unload", () => {
      Deno.removeSync(dir, { recursive: true });
    });
    return binary;
  })();
  return built;
}

// Offline: Debian's Go source tree in GOPATH mode, no module proxy.
function goEnv(): Record<string, string> {
  return {
    GOPATH: "/usr/share/gocode",
    GO111MODULE: "off",
    GOFLAGS: "",
    GOPROXY: "off",
    GOCACHE: Deno.env.get("GOCACHE") ?? "/tmp/core-store-gocache",
  };
}

async function go(args: string[], stdin?: unknown): Promise<unknown> {
  const child = new Deno.Command(await goProgram(), {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(stdin)));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  if (!output.success) {
    throw new Error(
      `go ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`,
    );
  }
  return JSON.parse(decoder.decode(output.stdout));
}

const goWrite = (path: string, format: Format, rows: GoRow[]) =>
  go(["write", path, format], rows);
const goRead = async (path: string, format: Format) =>
  sorted(await go(["read", path, format]) as GoRow[]);

const HOUR = 3_600_000;

/** Rows every side writes: Unicode, NUL, a 10,000-character key, TTLs. */
function sample(side: string): GoRow[] {
  return [
    { group: `${side}:unicode`, key: "emoji 👩‍💻", value: "🎉 日本語 עברית é" },
    { group: `${side}:unicode`, key: "\uFEFFbom", value: "\uFEFF\0" },
    { group: `${side}:nul`, key: "a\0b", value: "x\0y\0" },
    { group: `${side}\0group`, key: "k", value: "\0" },
    {
      group: `${side}:long`,
      key: "ключ".repeat(2_500),
      value: "v".repeat(1e5),
    },
    { group: `${side}:empty`, key: "", value: "" },
    { group: `${side}:sql`, key: "'; DROP TABLE kv; --", value: "%_\\" },
    { group: `${side}:ttl`, key: "later", value: "lives", ttlMs: HOUR },
    { group: `${side}:ttl`, key: "gone", value: "expired", ttlMs: -1_000 },
  ];
}

function live(rows: GoRow[]): GoRow[] {
  return rows.filter((row) => (row.ttlMs ?? 0) >= 0);
}

function sorted(rows: GoRow[]): GoRow[] {
  const id = (row: GoRow) => JSON.stringify([row.group, row.key]);
  return [...rows].sort((a, b) => id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0);
}

/** Writes rows through a Store whose clock stands at `now`. */
function denoWrite(path: string, rows: GoRow[], now: number): void {
  let clock = now;
  using store = new Store(path, { clock: () => clock, purgeIntervalMs: 0 });
  for (const row of rows) {
    const ttl = row.ttlMs ?? 0;
    if (ttl === 0) store.set(row.group, row.key, row.value);
    else {
      // An expiry in the past: written by a clock that far behind.
      clock = ttl > 0 ? now : now + 2 * ttl;
      store.setWithTTL(row.group, row.key, row.value, Math.abs(ttl));
      clock = now;
    }
  }
}

/** Checks that a Store reads `rows` (written by Go) and nothing else. */
function assertStoreReads(path: string, rows: GoRow[]): void {
  using store = new Store(path, { purgeIntervalMs: 0 });
  const expected = live(rows);
  const groups = [...new Set(expected.map((row) => row.group))].sort();
  assert.deepEqual(store.groups(), groups);
  assert.equal(store.countAll(), expected.length);
  for (const row of rows) {
    const isLive = (row.ttlMs ?? 0) >= 0;
    assert.equal(store.get(row.group, row.key), isLive ? row.value : undefined);
    if ((row.ttlMs ?? 0) > 0) {
      const left = store.ttl(row.group, row.key) as number;
      assert.ok(
        left > (row.ttlMs as number) - 60_000 && left <= HOUR,
        `${left}`,
      );
    }
  }
  for (const group of groups) {
    assert.deepEqual(
      [...store.getAll(group)],
      expected.filter((row) => row.group === group).map((row) => [
        row.key,
        row.value,
      ]).sort((a, b) => (a[0] as string) < (b[0] as string) ? -1 : 1),
    );
  }
}

/** What Go must read back from rows a Store wrote with its clock at `now`. */
function expectedFromDeno(rows: GoRow[], now: number): GoRow[] {
  return sorted(
    live(rows).map(({ group, key, value, ttlMs }) => ({
      group,
      key,
      value,
      expiresAt: ttlMs ? now + ttlMs : null,
    })),
  );
}

/** Go's rows with their expiry checked against the write time, then dropped. */
function withoutGoExpiry(read: GoRow[], rows: GoRow[], before: number) {
  return read.map((row) => {
    const written = rows.find((r) =>
      r.group === row.group && r.key === row.key
    );
    if (written?.ttlMs) {
      const at = row.expiresAt as number;
      assert.ok(at >= before + written.ttlMs && at <= Date.now() + HOUR);
      return { ...row, expiresAt: "ttl" };
    }
    return row;
  });
}

const tables = (path: string) =>
  rawQuery(
    path,
    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
  ).map((row) => String(row.name));

function test(name: string, fn: (t: Deno.TestContext) => Promise<void>) {
  Deno.test({ name, ignore, fn });
}

test("go-store v0.2.0 and Store exchange kv files both ways", async () => {
  using dir = tempDir();
  const path = dir.file("v020.db");
  const fromGo = sample("go");
  const before = Date.now();
  await goWrite(path, "v0.2.0", fromGo);
  assertStoreReads(path, fromGo);
  // Opening left the file in v0.2.0's format.
  assert.deepEqual(tables(path), ["kv", "kv_namespace_stats"]);

  const fromDeno = sample("deno");
  const now = Date.now();
  denoWrite(path, fromDeno, now);
  const read = await goRead(path, "v0.2.0");
  assert.deepEqual(
    withoutGoExpiry(read, fromGo, before),
    sorted([
      ...expectedFromDeno(fromDeno, now),
      ...live(fromGo).map(({ group, key, value, ttlMs }) => ({
        group,
        key,
        value,
        expiresAt: ttlMs ? "ttl" : null,
      } as unknown as GoRow)),
    ]),
  );
  assert.deepEqual(tables(path), ["kv", "kv_namespace_stats"]);
});

test("current go-store and Store exchange entries files both ways", async () => {
  using dir = tempDir();
  const path = dir.file("current.db");
  const fromDeno = sample("deno");
  const now = Date.now();
  denoWrite(path, fromDeno, now);
  assert.deepEqual(
    await goRead(path, "current"),
    expectedFromDeno(fromDeno, now),
  );

  const fromGo = sample("go");
  await goWrite(path, "current", fromGo);
  assertStoreReads(path, [...fromGo, ...fromDeno]);
  assert.deepEqual(tables(path), ["entries", "kv_namespace_stats"]);
});

test("current go-store moves a kv file a Store wrote into entries, every row and count intact", async () => {
  using dir = tempDir();
  const path = dir.file("moved.db");
  await goWrite(path, "v0.2.0", []);
  const fromDeno = sample("deno");
  const now = Date.now();
  denoWrite(path, fromDeno, now);
  {
    using store = new Store(path, { changeFeed: true, purgeIntervalMs: 0 });
    new ScopedStore(store, "acme").set("cfg", "k", "v");
  }
  assert.ok(tables(path).includes("kv"));

  const read = await goRead(path, "current");
  assert.deepEqual(
    read,
    sorted([
      ...expectedFromDeno(fromDeno, now),
      { group: "acme:cfg", key: "k", value: "v", expiresAt: null },
    ]),
  );
  assert.deepEqual(tables(path), [
    "entries",
    "kv_changes",
    "kv_changes_config",
    "kv_namespace_stats",
  ]);
  using store = new Store(path, { changeFeed: true, purgeIntervalMs: 0 });
  assert.equal(store.get("deno:nul", "a\0b"), "x\0y\0");
  assert.deepEqual(
    rawQuery(
      path,
      "SELECT ns, keys, groups FROM kv_namespace_stats ORDER BY ns",
    ),
    // Expired rows count until purged; "deno\0group" has no namespace.
    [{ ns: "acme", keys: 1, groups: 1 }, { ns: "deno", keys: 8, groups: 6 }],
  );
});

test("Go and Deno writers on one file at once lose nothing", async () => {
  using dir = tempDir();
  const path = dir.file("both.db");
  const n = 1_000;
  using store = new Store(path, { purgeIntervalMs: 0 });
  const goLoop = go(["loop", path, "current", "go", `${n}`, "60000"]);
  for (let i = 0; i < n; i++) {
    store.set("deno", `k${i}`, `deno k${i}`);
    if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.deepEqual(await goLoop, { written: n });
  assert.equal(store.count("go"), n);
  assert.equal(store.count("deno"), n);
  const read = await goRead(path, "current");
  assert.equal(read.length, 2 * n);
  for (const row of read) assert.equal(row.value, `${row.group} ${row.key}`);
});

test("A Store change-feed watcher hears a Go writer, in order", async () => {
  using dir = tempDir();
  const path = dir.file("feed.db");
  const n = 300;
  using store = new Store(path, {
    changeFeed: true,
    changePollMs: 5,
    purgeIntervalMs: 0,
  });
  const watcher = store.watch("go", "*");
  const events: StoreEvent[] = [];
  const heard = keepAlive(
    new Promise<void>((resolve) => {
      const off = store.onChange((event) => {
        events.push(event);
        if (events.length === n) {
          off();
          resolve();
        }
      });
    }),
  );
  const watched: StoreEvent[] = [];
  const reading = (async () => {
    for await (const event of watcher) {
      watched.push(event);
      if (watched.length + watcher.dropped === n) break;
    }
  })();
  assert.deepEqual(await go(["loop", path, "current", "go", `${n}`, "60000"]), {
    written: n,
  });
  await heard;
  await keepAlive(reading);
  assert.deepEqual(
    events.map((e) => [e.origin, e.type, e.group, e.key, e.value]),
    Array.from(
      { length: n },
      (_, i) => ["remote", "set", "go", `k${i}`, `go k${i}`],
    ),
  );
  const seqs = events.map((e) => e.seq as number);
  assert.deepEqual(seqs, seqs.map((_, i) => (seqs[0] as number) + i));
  // The watcher saw a prefix-free subsequence: in order, none twice.
  assert.ok(watched.length > 0);
  const keys = watched.map((e) => Number(e.key.slice(1)));
  assert.deepEqual(keys, [...keys].sort((a, b) => a - b));
  assert.equal(new Set(keys).size, keys.length);
});

test("go-store's move of kv under a running Store loses no write, and the feed carries on", async () => {
  using dir = tempDir();
  const path = dir.file("live.db");
  await goWrite(path, "v0.2.0", [{ group: "go", key: "old", value: "v" }]);
  const n = 1_500;
  using store = new Store(path, {
    changeFeed: true,
    changePollMs: 5,
    purgeIntervalMs: 0,
  });
  const remote: StoreEvent[] = [];
  store.onChange((event) => {
    if (event.origin === "remote") remote.push(event);
  });
  let moved: Promise<unknown> | undefined;
  let goWrites: Promise<unknown> | undefined;
  for (let i = 0; i < n; i++) {
    store.set("deno", `k${i}`, `deno k${i}`);
    if (i === 300) moved = go(["migrate", path]);
    if (i === 900) {
      await moved;
      // The next statement notices the move and puts the triggers back,
      // before Go writes.
      assert.equal(store.get("go", "old"), "v");
      goWrites = go(["loop", path, "current", "go", "200", "60000"]);
    }
    if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.deepEqual(await goWrites, { written: 200 });
  assert.deepEqual(tables(path), [
    "entries",
    "kv_changes",
    "kv_changes_config",
    "kv_namespace_stats",
  ]);
  assert.equal(store.count("deno"), n);
  assert.equal(store.count("go"), 201);
  const read = await goRead(path, "current");
  assert.equal(read.length, n + 201);
  // Go's writes after the move reached the Store's listeners through the
  // log's triggers, put back on entries.
  const deadline = Date.now() + 10_000;
  while (remote.length < 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.deepEqual(
    remote.map((e) => e.key),
    Array.from({ length: 200 }, (_, i) => `k${i}`),
  );
});
