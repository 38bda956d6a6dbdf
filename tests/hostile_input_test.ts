/**
 * Reliability properties that need only --allow-read and --allow-write, run
 * by the README's `deno test --allow-read --allow-write`:
 *
 * - 3. bad files: not SQLite, truncated, a `kv` table of another shape, a
 *   missing directory, a read-only file;
 * - 4. hostile input;
 * - 5. a model-based test of every public method;
 * - 6. resource hygiene over 10,000 stores.
 *
 * The suites that start processes (1, 2, 7) are in tests/reliability/.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  QuotaExceededError,
  ScopedStore,
  Store,
  StoreError,
  type StoreEvent,
  TemplateError,
} from "@core/store";
import { FakeClock, rawQuery, tempDir } from "./_helpers.ts";
import {
  describeOp,
  generate,
  runSequence,
  shrink,
} from "./fixtures/reliability_model.ts";
import { randomSeed } from "./fixtures/reliability_prng.ts";
import {
  forcedGC,
  hygieneCycle,
  READER_EVERY,
  yieldNow,
} from "./fixtures/reliability_hygiene.ts";

// ---------------------------------------------------------------------------
// 6. Resource hygiene (first in the file: RSS is measured before the tests
// that allocate 16 MiB values and long keys)

const CYCLES = 10_000;
const WARM_UP = 1_000;
const RSS_BOUND = 50 * 1024 * 1024;
/** When no collection can be forced: gross leaks only. */
const GROSS_RSS_BOUND = 150 * 1024 * 1024;
/** JS heap growth after a forced GC: 200 bytes a store would exceed it. */
const HEAP_BOUND = 2 * 1024 * 1024;

/** Counts the intervals and timeouts started and not yet cleared or run. */
function timerLedger() {
  const original = {
    setInterval: globalThis.setInterval,
    clearInterval: globalThis.clearInterval,
  };
  const live = new Set<unknown>();
  let started = 0;
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    const id = original.setInterval(...args);
    live.add(id);
    started++;
    return id;
  }) as typeof setInterval;
  globalThis.clearInterval = ((id?: number) => {
    live.delete(id);
    original.clearInterval(id);
  }) as typeof clearInterval;
  return {
    get live() {
      return live.size;
    },
    get started() {
      return started;
    },
    [Symbol.dispose]() {
      Object.assign(globalThis, original);
    },
  };
}

/** RSS and JS heap after a full collection (when one can be forced). */
async function memory(gc: (() => void) | undefined) {
  await yieldNow();
  gc?.();
  await yieldNow();
  gc?.();
  const { rss, heapUsed } = Deno.memoryUsage();
  return { rss, heapUsed };
}

Deno.test("opening and closing 10,000 stores with watchers and callbacks leaves no timers, handles or growing memory", async () => {
  using dir = tempDir();
  using timers = timerLedger();
  const gc = forcedGC();
  const readers: Promise<number>[] = [];
  const samples: { rss: number; heapUsed: number }[] = [];
  const run = async (from: number, count: number, sample: boolean) => {
    for (let i = from; i < from + count; i++) {
      // One store in four in a file, the others in memory.
      const reader = hygieneCycle(i, dir.path, 4);
      if (reader) readers.push(reader);
      if (i % 100 === 99) await yieldNow();
      if (sample && (i - from) % 1_000 === 999) samples.push(await memory(gc));
    }
  };
  const fds = openFds();
  await run(0, WARM_UP, false);
  samples.push(await memory(gc));
  const started = performance.now();
  await run(WARM_UP, CYCLES, true);
  const elapsed = Math.round(performance.now() - started);
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  // Without a forced GC RSS follows the collector's sawtooth, tens of MiB
  // high: growth is then taken from the lowest sample, against a bound for
  // gross leaks only.
  const rssGrowth = gc === undefined
    ? last.rss - Math.min(...samples.map((s) => s.rss))
    : last.rss - first.rss;
  const rssBound = gc === undefined ? GROSS_RSS_BOUND : RSS_BOUND;
  const heapGrowth = last.heapUsed - first.heapUsed;
  const events = await Promise.all(readers);
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `    ${CYCLES} stores (one in four in a file) in ${elapsed} ms after ${WARM_UP} warm-up cycles, ${
      gc === undefined ? "no forced GC" : "GC forced at each sample"
    }: RSS ${mib(first.rss)} → ${mib(last.rss)} MiB (growth ${
      mib(rssGrowth)
    }, bound ${mib(rssBound)}), JS heap ${mib(first.heapUsed)} → ${
      mib(last.heapUsed)
    } MiB; ${timers.started} purge timers started, ${timers.live} left`,
  );
  assert.equal(timers.live, 0, "purge timers left running");
  assert.ok(timers.started > 0);
  assert.equal(openFds(), fds, "file handles left open");
  assert.ok(rssGrowth < rssBound, `RSS grew by ${mib(rssGrowth)} MiB`);
  if (gc !== undefined) {
    assert.ok(
      heapGrowth < HEAP_BOUND,
      `the JS heap grew by ${mib(heapGrowth)} MiB`,
    );
  }
  assert.equal(events.length, (WARM_UP + CYCLES) / READER_EVERY);
  assert.deepEqual(
    new Set(events),
    new Set([4]),
    "a reader waiting on a watcher got its events, then the end, at close()",
  );
});

Deno.test("10,000 watchers and callbacks registered and dropped on one store leave nothing behind", async () => {
  using store = new Store();
  const scope = new ScopedStore(store, "t");
  const round = (i: number) => {
    const w1 = store.watch(`g${i}`, `k${i}`);
    const w2 = scope.watch("*", `k${i}`);
    const w3 = scope.watch(`x${i}`, "*");
    const off1 = store.onChange(() => {});
    const off2 = scope.onChange(() => {});
    store.set(`g${i}`, `k${i}`, "v");
    scope.set(`x${i}`, `k${i}`, "v");
    store.unwatch(w1);
    w2[Symbol.dispose]();
    void w3.stream.cancel();
    off1();
    off2();
    off2();
    return [w1, w2];
  };
  const gc = forcedGC();
  for (let i = 0; i < 1_000; i++) round(i);
  const before = await memory(gc);
  for (let i = 0; i < CYCLES; i++) {
    round(i);
    if (i % 100 === 99) await yieldNow();
  }
  const after = await memory(gc);
  const growth = after.rss - before.rss;
  if (gc !== undefined) {
    assert.ok(
      after.heapUsed - before.heapUsed < HEAP_BOUND,
      `the JS heap grew by ${
        ((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1)
      } MiB`,
    );
  }
  assert.ok(
    growth < RSS_BOUND,
    `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`,
  );
  // An unregistered watcher's stream holds what it matched, then ends.
  const [w1, w2] = round(CYCLES);
  assert.deepEqual((await Array.fromAsync(w1!)).map((e) => e.group), [
    `g${CYCLES}`,
  ]);
  assert.deepEqual((await Array.fromAsync(w2!)).map((e) => e.group), [
    `t:x${CYCLES}`,
  ]);
  assert.equal(store.countAll(), 2 * (CYCLES + 1));
});

// ---------------------------------------------------------------------------
// 5. Model-based test

const MODEL_OPS = 20_000;
/** Fixed seeds, each run on every CI build; the second on a file. */
const MODEL_SEEDS: [number, "memory" | "file"][] = [
  [1, "memory"],
  [0xdecafbad, "file"],
  [20_240_601, "memory"],
];
const MODEL_RANDOM_SEED = randomSeed();

Deno.test("the store agrees with a plain model over 20,000 random operations per seed", async (t) => {
  console.log(
    `  model-based test: random seed ${MODEL_RANDOM_SEED} (fixed: ${
      MODEL_SEEDS.map(([s]) => s).join(", ")
    })`,
  );
  for (
    const [seed, where] of [
      ...MODEL_SEEDS,
      [MODEL_RANDOM_SEED, "memory"] as const,
    ]
  ) {
    await t.step(`seed ${seed} (${where})`, async () => {
      using dir = tempDir();
      let runs = 0;
      const fails = (ops: ReturnType<typeof generate>) =>
        runSequence(
          ops,
          where === "memory" ? ":memory:" : dir.file(`model-${runs++}.db`),
          dir.path,
        );
      const ops = generate(seed, MODEL_OPS);
      const started = performance.now();
      const failure = await fails(ops);
      const elapsed = Math.round(performance.now() - started);
      if (failure === undefined) {
        console.log(`    ${ops.length} operations agreed in ${elapsed} ms`);
        return;
      }
      const shrunk = await shrink(ops, fails);
      const last = shrunk.ops[shrunk.ops.length - 1];
      const report = [
        `seed ${seed}: the store and the model disagree`,
        `first failure: ${failure.message}`,
        `shortest failing prefix: ${shrunk.prefixLength} of ${ops.length} operations (generate(${seed}, ${shrunk.prefixLength}))`,
        `last operation: ${last === undefined ? "none" : describeOp(last)}`,
        `shrunk to ${shrunk.ops.length} operations in ${shrunk.runs} runs: ${shrunk.failure.message}`,
        ...(shrunk.ops.length <= 40
          ? ["operations:", ...shrunk.ops.map((op) => `  ${describeOp(op)}`)]
          : []),
      ].join("\n");
      console.log(report);
      assert.fail(report);
    });
  }
});

// ---------------------------------------------------------------------------
// Shared helpers

/** Every row and the quota counts of a file, compactly (values may be huge). */
function dump(path: string): string {
  const bytes = (column: string) =>
    `hex(substr(CAST(${column} AS BLOB), 1, 48)) AS ${column}, length(CAST(${column} AS BLOB)) AS ${column}_bytes`;
  return JSON.stringify([
    rawQuery(
      path,
      `SELECT ${bytes("group_name")}, ${bytes("entry_key")}, ${
        bytes("entry_value")
      }, expires_at FROM entries ORDER BY group_name, entry_key`,
    ),
    rawQuery(path, "SELECT * FROM kv_namespace_stats ORDER BY ns"),
  ]);
}

/** Open file descriptors of this process (Linux), to catch a leaked handle. */
function openFds(): number | undefined {
  try {
    return [...Deno.readDirSync("/proc/self/fd")].length;
  } catch {
    return undefined;
  }
}

function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

/** A file store holding a little of everything, with its events recorded. */
function populated(path: string) {
  const clock = new FakeClock();
  let broken: (() => unknown) | undefined;
  const store = new Store(path, {
    clock: () => (broken === undefined ? clock.now : broken()) as number,
    purgeIntervalMs: 0,
  });
  store.set("g", "k", "v");
  store.setWithTTL("g", "t", "soon", 1_000);
  store.set("__proto__", "constructor", "x");
  const scope = new ScopedStore(store, "acme", { maxKeys: 2, maxGroups: 1 });
  scope.set("x", "a", "1");
  scope.set("x", "b", "2");
  const events: StoreEvent[] = [];
  store.onChange((event) => events.push(event));
  return {
    store,
    scope,
    clock,
    events,
    /** Makes the clock return what `fn` returns (or throws), or heals it. */
    breakClock(fn: (() => unknown) | undefined) {
      broken = fn;
    },
    [Symbol.dispose]() {
      store.close();
    },
  };
}

/**
 * Asserts that `fn` throws what `expected` accepts, and that nothing was
 * written: the file's rows and quota counts are the same and no event was
 * emitted.
 */
function refuses(
  fixture: ReturnType<typeof populated>,
  path: string,
  fn: () => unknown,
  expected: (error: unknown) => boolean,
  what: string,
): void {
  const before = dump(path);
  fixture.events.length = 0;
  let threw: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (error) {
    threw = error;
  }
  assert.ok(
    threw !== undefined,
    `${what}: did not throw (returned ${String(returned)})`,
  );
  assert.ok(
    expected(threw),
    `${what}: threw ${
      threw instanceof Error ? `${threw.name}: ${threw.message}` : threw
    }`,
  );
  assert.equal(dump(path), before, `${what}: the file changed`);
  assert.deepEqual(fixture.events, [], `${what}: emitted events`);
}

// ---------------------------------------------------------------------------
// 3. Bad files

/** A real store file of 300 keys over about 136 pages. */
function storeFile(path: string): Map<string, string> {
  const values = new Map<string, string>();
  using store = new Store(path, { purgeIntervalMs: 0 });
  for (let i = 0; i < 300; i++) {
    const value = `${i}:` + "v".repeat((i * 13) % 3_000);
    store.set("g", `k${i}`, value);
    values.set(`k${i}`, value);
  }
  return values;
}

function sqliteFile(path: string, ...sql: string[]): void {
  const db = new DatabaseSync(path);
  for (const statement of sql) db.exec(statement);
  db.close();
}

const KV = (columns: string, suffix = "") =>
  `CREATE TABLE kv (${columns})${suffix}`;
const KV_COLUMNS =
  "grp TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER";

Deno.test("opening a bad file gives a StoreError naming the path and leaves the file byte for byte unchanged", async (t) => {
  using dir = tempDir();
  const source = dir.file("source.db");
  storeFile(source);
  const good = Deno.readFileSync(source);
  const pages = good.length / 4_096;
  const random = new Uint8Array(8_192).map((_, i) =>
    (i * 2_654_435_761) >>> 24
  );
  const header = new TextEncoder().encode("SQLite format 3\0");

  const cases: [string, (path: string) => void][] = [
    [
      "a text file",
      (p) => Deno.writeTextFileSync(p, "not a database\n".repeat(300)),
    ],
    ["random bytes", (p) => Deno.writeFileSync(p, random)],
    [
      "a SQLite header over garbage",
      (p) =>
        Deno.writeFileSync(p, new Uint8Array([...header, ...random.slice(16)])),
    ],
    [
      "a SQLite file truncated to 50 bytes",
      (p) => Deno.writeFileSync(p, good.slice(0, 50)),
    ],
    [
      "a SQLite file truncated to its 100-byte header",
      (p) => Deno.writeFileSync(p, good.slice(0, 100)),
    ],
    [
      "a SQLite file truncated to its first page",
      (p) => Deno.writeFileSync(p, good.slice(0, 4_096)),
    ],
    [
      "a SQLite file truncated to half its pages",
      (p) =>
        Deno.writeFileSync(p, good.slice(0, Math.floor(pages / 2) * 4_096)),
    ],
    [
      "a SQLite file missing its last page",
      (p) => Deno.writeFileSync(p, good.slice(0, (pages - 1) * 4_096)),
    ],
    [
      "a SQLite file missing the last 100 bytes",
      (p) => Deno.writeFileSync(p, good.slice(0, good.length - 100)),
    ],
    [
      "a SQLite file missing its last byte",
      (p) => Deno.writeFileSync(p, good.slice(0, good.length - 1)),
    ],
    [
      "kv without the grp, key and value columns",
      (p) => sqliteFile(p, KV("id INTEGER PRIMARY KEY, data BLOB")),
    ],
    ["kv without a primary key", (p) => sqliteFile(p, KV(KV_COLUMNS))],
    [
      "kv keyed by (key, grp)",
      (p) => sqliteFile(p, KV(`${KV_COLUMNS}, PRIMARY KEY (key, grp)`)),
    ],
    [
      "kv keyed by (grp, key, value)",
      (p) => sqliteFile(p, KV(`${KV_COLUMNS}, PRIMARY KEY (grp, key, value)`)),
    ],
    [
      "kv as a view",
      (p) =>
        sqliteFile(
          p,
          "CREATE VIEW kv AS SELECT 'g' AS grp, 'k' AS key, 'v' AS value",
        ),
    ],
    [
      "kv as a virtual table",
      (p) =>
        sqliteFile(p, "CREATE VIRTUAL TABLE kv USING fts5(grp, key, value)"),
    ],
    [
      "kv WITHOUT ROWID",
      (p) =>
        sqliteFile(
          p,
          KV(`${KV_COLUMNS}, PRIMARY KEY (grp, key)`, " WITHOUT ROWID"),
        ),
    ],
    ["kv with an extra NOT NULL column and no default", (p) =>
      sqliteFile(
        p,
        KV(`${KV_COLUMNS}, owner TEXT NOT NULL, PRIMARY KEY (grp, key)`),
      )],
    ["kv whose grp column is INTEGER", (p) =>
      sqliteFile(
        p,
        KV(
          "grp INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (grp, key)",
        ),
      )],
    ["kv whose value column is INTEGER", (p) =>
      sqliteFile(
        p,
        KV(
          "grp TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL, expires_at INTEGER, PRIMARY KEY (grp, key)",
        ),
      )],
    ["kv whose key column is COLLATE NOCASE", (p) =>
      sqliteFile(
        p,
        KV(
          "grp TEXT NOT NULL, key TEXT NOT NULL COLLATE NOCASE, value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (grp, key)",
        ),
      )],
    ["a directory", (p) => Deno.mkdirSync(p)],
  ];

  const check = (path: string, where: string) => {
    const exists = (() => {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    })();
    const before = exists ? Deno.readFileSync(path) : undefined;
    const files = listing(where);
    const fds = openFds();
    let store: Store | undefined;
    let error: unknown;
    try {
      store = new Store(path, { purgeIntervalMs: 0 });
    } catch (e) {
      error = e;
    }
    if (store !== undefined) {
      let use = "";
      try {
        store.set("probe", "k", "007");
        use = `; a set then gave back ${
          JSON.stringify(store.get("probe", "k"))
        }`;
      } catch (e) {
        use = `; a set then threw ${e instanceof Error ? e.message : e}`;
      }
      store.close();
      assert.fail(`the store opened${use}`);
    }
    assert.ok(
      error instanceof StoreError,
      `threw ${
        error instanceof Error ? `${error.name}: ${error.message}` : error
      }`,
    );
    assert.ok(
      error.message.startsWith(`Cannot open store at ${path}: `) &&
        error.message.length > `Cannot open store at ${path}: `.length,
      error.message,
    );
    if (before !== undefined) {
      assert.deepEqual(Deno.readFileSync(path), before, "the file changed");
    }
    assert.deepEqual(listing(where), files, "files appeared or vanished");
    assert.equal(openFds(), fds, "a file handle was left open");
  };

  for (const [name, make] of cases) {
    await t.step(name, () => {
      const where = dir.file(name.replaceAll(/[^a-z0-9]+/gi, "-"));
      Deno.mkdirSync(where);
      const path = `${where}/store.db`;
      make(path);
      check(path, where);
    });
  }

  await t.step("a path in a missing directory", () => {
    const where = dir.file("missing-parent");
    Deno.mkdirSync(where);
    check(`${where}/missing/deeper/store.db`, where);
  });

  // A read-only file: root ignores file modes, so
  // tests/reliability/reliability_permissions_suite.ts checks it as an
  // unprivileged user.
});

Deno.test("an empty file is an empty store, not a bad file", () => {
  using dir = tempDir();
  const path = dir.file("empty.db");
  Deno.writeFileSync(path, new Uint8Array());
  using store = new Store(path);
  store.set("g", "k", "v");
  assert.equal(store.get("g", "k"), "v");
});

// ---------------------------------------------------------------------------
// 4. Hostile input

const SQLISH = [
  "'; DROP TABLE kv; --",
  '" OR 1=1 --',
  "') OR ('1'='1",
  "%",
  "_",
  "%%",
  "\\",
  "\\'",
  "*",
  "?",
  "?1",
  ":grp",
  "@key",
  "$value",
  "/* */",
  "NULL",
  "char(0)",
  "kv",
  "sqlite_schema",
  "x'00'",
];

Deno.test("SQL-looking strings are data: stored, read and matched literally", () => {
  using dir = tempDir();
  const path = dir.file("sql.db");
  using store = new Store(path, { purgeIntervalMs: 0 });
  const schema = () =>
    JSON.stringify(
      rawQuery(path, "SELECT type, name, sql FROM sqlite_schema ORDER BY name"),
    );
  const tables = schema();
  for (const text of SQLISH) {
    store.set(text, text, text);
    assert.equal(store.get(text, text), text);
    assert.deepEqual([...store.getAll(text)], [[text, text]]);
    assert.equal(store.exists(text, text), true);
    assert.deepEqual(store.list(text, { prefix: text }).entries, [[
      text,
      text,
    ]]);
  }
  assert.equal(schema(), tables, "the schema is untouched");
  assert.equal(store.countAll(), SQLISH.length);
  assert.deepEqual(
    store.groups(),
    [...SQLISH].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  for (const text of SQLISH) {
    // A prefix counts exactly the groups that start with it, literally.
    assert.equal(
      store.countAll(text),
      SQLISH.filter((other) => other.startsWith(text)).length,
      text,
    );
  }
  const tenant = new ScopedStore(store, "t1");
  for (const text of SQLISH) tenant.set(text, text, text);
  assert.equal(tenant.countAll(), SQLISH.length);
  assert.equal(store.countAll(), 2 * SQLISH.length);
  for (const text of SQLISH) assert.equal(store.deleteGroup(text), 1);
  assert.equal(store.countAll(), SQLISH.length);
  assert.throws(
    () => new ScopedStore(store, "t1'; DROP TABLE kv; --"),
    TypeError,
  );
});

Deno.test("% and _ in prefixes match only themselves", () => {
  using store = new Store();
  const groups = ["a%b", "a_b", "axb", "ab", "a\\b", "a%", "a_", "a", "b%"];
  for (const g of groups) {
    store.set(g, "k", "v");
    for (const k of ["k%1", "k_1", "kx1", "k\\1", "k"]) store.set(g, k, g);
  }
  for (const prefix of ["a%", "a_", "a\\", "%", "_", "a", "ax", "b%", ""]) {
    const matching = groups.filter((g) => g.startsWith(prefix)).sort();
    assert.deepEqual(store.groups(prefix), matching, prefix);
    assert.equal(store.countAll(prefix), matching.length * 5, prefix);
  }
  for (const prefix of ["k%", "k_", "k\\", "kx", "k"]) {
    const keys = ["k%1", "k_1", "kx1", "k\\1", "k"]
      .filter((k) => k.startsWith(prefix)).sort();
    assert.deepEqual(
      store.list("a%b", { prefix }).entries.map(([k]) => k),
      keys,
      prefix,
    );
  }
});

Deno.test("template values and keys containing {{ are printed, never executed", () => {
  using store = new Store();
  store.set("t", "secret", "s3cr3t");
  store.set("t", "v", "{{ .secret }}");
  store.set("t", "{{", "}}");
  store.set("{{ .secret }}", "k", '{{ template "x" }}');
  assert.equal(store.render("{{ .v }}", "t"), "{{ .secret }}");
  assert.equal(store.render("{{ .v | html }}", "t"), "{{ .secret }}");
  assert.equal(store.render('{{ index . "{{" }}', "t"), "}}");
  assert.equal(
    store.render("{{ range $k, $v := . }}[{{ $k }}={{ $v }}]{{ end }}", "t"),
    "[secret=s3cr3t][v={{ .secret }}][{{=}}]",
  );
  assert.equal(store.render("{{ .k }}", "{{ .secret }}"), '{{ template "x" }}');
  // Hostile templates are rejected with a TemplateError, never a crash.
  for (
    const template of [
      "{{",
      "{{ .a",
      "}}{{",
      '{{ template "x" }}',
      "{{ call .f }}",
      "{{ " + "(".repeat(100_000) + ".a" + ")".repeat(100_000) + " }}",
      "{{ 99999999999999999999 }}",
      "{{ .a.b.c.d }}{{ $nope }}",
      "{{ range 100000000 }}{{ end }}",
      // Each js doubles the backslashes: stopped by the budget, not OOM.
      '{{ "\\\\"' + " | js".repeat(28) + " }}",
    ]
  ) {
    assert.throws(
      () => store.render(template, "t"),
      TemplateError,
      template.slice(0, 40),
    );
  }
  // Go accepts these, and so does this engine.
  assert.equal(store.render('{{ define "x" }}{{ end }}', "t"), "");
  assert.equal(store.render('{{ printf "%s" .a }}', "t"), "%!s(<nil>)");
  assert.equal(store.render("{{ 1.5 }}", "t"), "1.5");
  assert.equal(
    store.render(
      "{{ if .a }}".repeat(50_000) + "{{ end }}".repeat(50_000),
      "t",
    ),
    "",
  );
  // A long pipeline that does not grow its value renders.
  assert.equal(
    store.render('{{ "x" ' + "| html ".repeat(10_000) + "}}", "t"),
    "x",
  );
});

const PROTO_NAMES = [
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "toString",
  "valueOf",
  "prototype",
  "__defineGetter__",
  "isPrototypeOf",
];

Deno.test("__proto__, constructor and hasOwnProperty are ordinary keys and groups", async () => {
  using store = new Store();
  const watcher = store.watch("__proto__", "constructor");
  const events: StoreEvent[] = [];
  store.onChange((event) => events.push(event));
  // Missing keys named like Object.prototype members are missing.
  assert.equal(
    store.render(
      '{{ .constructor }}|{{ .toString }}|{{ index . "__proto__" }}|{{ len . }}',
      "__proto__",
    ),
    "<no value>|<no value>||0",
  );
  assert.throws(
    () => store.render("{{ .constructor }}", "g", { missingKey: "error" }),
    TemplateError,
  );
  assert.equal(store.get("__proto__", "constructor"), undefined);
  assert.equal(store.exists("constructor", "__proto__"), false);
  assert.equal(store.count("hasOwnProperty"), 0);
  for (const group of PROTO_NAMES) {
    for (const key of PROTO_NAMES) store.set(group, key, `${group}.${key}`);
  }
  for (const group of PROTO_NAMES) {
    const all = store.getAll(group);
    assert.equal(all.size, PROTO_NAMES.length);
    for (const key of PROTO_NAMES) {
      assert.equal(store.get(group, key), `${group}.${key}`);
      assert.equal(all.get(key), `${group}.${key}`);
    }
    assert.equal(
      store.render('{{ .constructor }}|{{ index . "__proto__" }}', group),
      `${group}.constructor|${group}.__proto__`,
    );
  }
  assert.deepEqual(store.groups(), [...PROTO_NAMES].sort());
  assert.equal(events.length, PROTO_NAMES.length ** 2);
  assert.equal(Object.prototype.hasOwnProperty.call({}, "constructor"), false);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const tenant = new ScopedStore(store, "constructor", { maxKeys: 3 });
  tenant.set("__proto__", "hasOwnProperty", "1");
  tenant.set("__proto__", "__proto__", "2");
  assert.deepEqual(tenant.groups(), ["__proto__"]);
  assert.equal(tenant.countAll(), 2);
  assert.throws(() => new ScopedStore(store, "__proto__"), TypeError);
  // A quota parsed from JSON with a "__proto__" member reads only its own
  // members: here none, so no limit.
  const parsed = new ScopedStore(
    store,
    "parsed",
    JSON.parse('{"__proto__": {"maxKeys": 1}}'),
  );
  parsed.set("g", "a", "1");
  parsed.set("g", "b", "2");
  assert.equal(parsed.countAll(), 2);
  store.close();
  const seen = await Array.fromAsync(watcher);
  assert.deepEqual(seen.map((e) => e.value), ["__proto__.constructor"]);
});

Deno.test("16 MiB values round-trip exactly, in memory and in a file", async (t) => {
  using dir = tempDir();
  const mib16 = 16 * 1024 * 1024;
  const values: [string, string][] = [
    ["ASCII", "x".repeat(mib16)],
    ["two-byte characters with a NUL", "\0" + "é".repeat(mib16 / 2)],
    ["astral characters", "😀".repeat(mib16 / 4)],
  ];
  for (const path of [":memory:", dir.file("big.db")]) {
    await t.step(path === ":memory:" ? "in memory" : "in a file", () => {
      const started = performance.now();
      {
        using store = new Store(path, { durability: "full" });
        const events: StoreEvent[] = [];
        store.onChange((event) => events.push(event));
        for (const [name, value] of values) {
          store.set("big", name, value);
          assert.equal(store.get("big", name), value, name);
        }
        const all = store.getAll("big");
        for (const [name, value] of values) assert.equal(all.get(name), value);
        assert.equal(events.length, values.length);
        assert.equal(events[0]?.value, values[0]![1]);
        store.transaction((tx) => tx.set("big", "copy", values[1]![1]));
        assert.equal(store.get("big", "copy"), values[1]![1]);
      }
      if (path !== ":memory:") {
        using store = new Store(path);
        for (const [name, value] of values) {
          assert.equal(
            store.get("big", name),
            value,
            `${name} after reopening`,
          );
        }
      }
      console.log(
        `    3 × 16 MiB written and read back in ${
          Math.round(performance.now() - started)
        } ms`,
      );
    });
  }
});

Deno.test("1,000,000-character keys and groups work everywhere", async () => {
  using store = new Store();
  const key = "k".repeat(1_000_000);
  const astral = "😀".repeat(500_000);
  const group = "g".repeat(999_999) + "é";
  const events: StoreEvent[] = [];
  store.onChange((event) => events.push(event));
  const watcher = store.watch(group, key);
  for (const k of [key, astral]) {
    store.set(group, k, k.slice(0, 10));
    assert.equal(store.get(group, k), k.slice(0, 10));
    assert.equal(store.exists(group, k), true);
    assert.equal(store.ttl(group, k), Infinity);
  }
  assert.deepEqual(
    store.list(group).entries.map(([k, v]) => [k.length, v]),
    [[1_000_000, "k".repeat(10)], [1_000_000, "😀".repeat(5)]],
  );
  const page = store.list(group, { limit: 1 });
  assert.equal(page.cursor, key);
  assert.deepEqual(
    store.list(group, { cursor: page.cursor }).entries.map(([k]) =>
      k === astral
    ),
    [true],
  );
  assert.equal(store.countAll(group.slice(0, 500_000)), 2);
  assert.deepEqual(store.groups(group), [group]);
  const tenant = new ScopedStore(store, "t", { maxKeys: 1 });
  tenant.set(group, key, "v");
  assert.throws(() => tenant.set(group, astral, "v"), QuotaExceededError);
  assert.equal(store.delete(group, key), true);
  assert.equal(store.deleteGroup(group), 1);
  store.close();
  assert.equal((await Array.fromAsync(watcher)).length, 2);
  assert.deepEqual(events.map((e) => e.type), [
    "set",
    "set",
    "set",
    "delete",
    "delete_group",
  ]);
});

Deno.test("NUL characters keep keys and groups distinct and whole", () => {
  using dir = tempDir();
  const path = dir.file("nul.db");
  const keys = ["", "\0", "a", "a\0", "a\0b", "a\0c", "\0\0", "b"];
  {
    using store = new Store(path);
    for (const group of ["g", "g\0", "g\0x", "\0"]) {
      for (const key of keys) store.set(group, key, `${group}|${key}`);
    }
  }
  using store = new Store(path);
  for (const group of ["g", "g\0", "g\0x", "\0"]) {
    assert.deepEqual(
      [...store.getAll(group)],
      [...keys].sort().map((k) => [k, `${group}|${k}`]),
      JSON.stringify(group),
    );
  }
  assert.deepEqual(store.groups(), ["\0", "g", "g\0", "g\0x"]);
  assert.deepEqual(store.groups("g\0"), ["g\0", "g\0x"]);
  assert.equal(store.countAll("g\0"), 2 * keys.length);
  assert.deepEqual(
    store.list("g", { prefix: "a\0" }).entries.map(([k]) => k),
    ["a\0", "a\0b", "a\0c"],
  );
  assert.equal(store.delete("g", "a\0"), true);
  assert.equal(store.get("g", "a"), "g|a");
  assert.equal(store.get("g", "a\0b"), "g|a\0b");
});

/** Every method that takes a string, with one string replaced by `bad`. */
function stringTakers(
  store: Store,
  scope: ScopedStore,
  bad: unknown,
): [string, () => unknown, string][] {
  const b = bad as string;
  return [
    ["get(group)", () => store.get(b, "k"), "group"],
    ["get(key)", () => store.get("g", b), "key"],
    ["set(group)", () => store.set(b, "k", "v"), "group"],
    ["set(key)", () => store.set("g", b, "v"), "key"],
    ["set(value)", () => store.set("g", "k", b), "value"],
    ["setWithTTL(value)", () => store.setWithTTL("g", "k", b, 10), "value"],
    ["expire(key)", () => store.expire("g", b, 10), "key"],
    ["ttl(group)", () => store.ttl(b, "k"), "group"],
    ["exists(key)", () => store.exists("g", b), "key"],
    ["delete(group)", () => store.delete(b, "k"), "group"],
    ["delete(key)", () => store.delete("g", b), "key"],
    ["deleteGroup(group)", () => store.deleteGroup(b), "group"],
    ["count(group)", () => store.count(b), "group"],
    ["getAll(group)", () => store.getAll(b), "group"],
    ["list(group)", () => store.list(b), "group"],
    ["list(prefix)", () => store.list("g", { prefix: b }), "prefix"],
    ["render(template)", () => store.render(b, "g"), "template"],
    ["render(group)", () => store.render("{{ .k }}", b), "group"],
    ["watch(group)", () => store.watch(b, "*"), "group"],
    ["watch(key)", () => store.watch("g", b), "key"],
    ["scoped set(group)", () => scope.set(b, "c", "v"), "group"],
    ["scoped set(key)", () => scope.set("x", b, "v"), "key"],
    ["scoped set(value)", () => scope.set("x", "a", b), "value"],
    ["scoped setWithTTL(key)", () => scope.setWithTTL("x", b, "v", 5), "key"],
    ["scoped deleteGroup(group)", () => scope.deleteGroup(b), "group"],
    ["scoped watch(key)", () => scope.watch("*", b), "key"],
    [
      "tx.set(key)",
      () => store.transaction((tx) => tx.set("g", b, "v")),
      "key",
    ],
    [
      "tx.set after a good one",
      () =>
        store.transaction((tx) => {
          tx.set("g", "new", "v");
          tx.delete("g", "k");
          tx.set("g", "k2", b);
        }),
      "value",
    ],
  ];
}

const NOT_STRINGS: [string, unknown][] = [
  ["number", 1],
  ["number", NaN],
  ["null", null],
  ["object", {}],
  ["array", ["g"]],
  ["boolean", true],
  ["bigint", 1n],
  ["symbol", Symbol("g")],
  ["object", new String("g")],
  ["object", {
    toString() {
      throw new Error("toString must not be called");
    },
  }],
  ["function", () => "g"],
];

Deno.test("numbers, null and objects where strings belong throw TypeError and write nothing", () => {
  using dir = tempDir();
  const path = dir.file("types.db");
  using fixture = populated(path);
  for (const [type, bad] of NOT_STRINGS) {
    for (
      const [call, fn, param] of stringTakers(fixture.store, fixture.scope, bad)
    ) {
      refuses(
        fixture,
        path,
        fn,
        (e) =>
          e instanceof TypeError &&
          new RegExp(
            `^Cannot [A-Za-z ]+: ${param} must be a string, received ${type}$`,
          )
            .test(e.message),
        `${call} with ${type}`,
      );
    }
  }
  const { store } = fixture;
  refuses(
    fixture,
    path,
    () => store.list("g", { cursor: 5 as never }),
    (e) => e instanceof TypeError && /cursor must be a string/.test(e.message),
    "list(cursor)",
  );
  refuses(
    fixture,
    path,
    () => store.countAll(5 as never),
    (e) => e instanceof TypeError && /prefix must be a string/.test(e.message),
    "countAll(prefix)",
  );
  refuses(
    fixture,
    path,
    () => store.groups(null as never),
    (e) => e instanceof TypeError && /prefix must be a string/.test(e.message),
    "groups(prefix)",
  );
  refuses(
    fixture,
    path,
    () => store.list("g", { reverse: "yes" as never }),
    (e) =>
      e instanceof TypeError && /reverse must be a boolean/.test(e.message),
    "list(reverse)",
  );
  refuses(
    fixture,
    path,
    () => store.backup(5 as never),
    (e) => e instanceof TypeError,
    "backup(path)",
  );
  refuses(
    fixture,
    path,
    () => store.transaction(5 as never),
    (e) => e instanceof TypeError,
    "transaction(fn)",
  );
  refuses(
    fixture,
    path,
    () => store.onChange("fn" as never),
    (e) => e instanceof TypeError,
    "onChange(fn)",
  );
  refuses(
    fixture,
    path,
    () => store.render("{{ .k }}", "g", { missingKey: "ignore" as never }),
    (e) => e instanceof RangeError,
    "render(missingKey)",
  );
  for (const path of [1, null, {}, "", ["a.db"]]) {
    assert.throws(() => new Store(path as never), TypeError, String(path));
  }
  assert.throws(() => new ScopedStore({} as never, "t"), TypeError);
  assert.throws(() => new ScopedStore(store, 5 as never), TypeError);
  assert.throws(() => new ScopedStore(store, "t", 5 as never), TypeError);
});

Deno.test("lone surrogates are refused with TypeError and nothing is written", () => {
  using dir = tempDir();
  const path = dir.file("surrogates.db");
  using fixture = populated(path);
  for (
    const lone of [
      "\uD800",
      "a\uDC00",
      "\uDBFF\uDBFF",
      "\uDFFF\uD800",
      "😀\uD83D",
    ]
  ) {
    for (
      const [call, fn, param] of stringTakers(
        fixture.store,
        fixture.scope,
        lone,
      )
    ) {
      refuses(
        fixture,
        path,
        fn,
        (e) =>
          e instanceof TypeError &&
          new RegExp(`${param} contains a lone surrogate at index \\d+`).test(
            e.message,
          ),
        `${call} with ${JSON.stringify(lone)}`,
      );
    }
  }
  refuses(
    fixture,
    path,
    () => fixture.store.countAll("\uD800"),
    (e) => e instanceof TypeError,
    "countAll(lone)",
  );
  refuses(
    fixture,
    path,
    () => fixture.store.list("g", { cursor: "\uDC00" }),
    (e) => e instanceof TypeError,
    "list(cursor lone)",
  );
});

const BAD_TTLS: [unknown, typeof TypeError | typeof RangeError][] = [
  [0, RangeError],
  [-0, RangeError],
  [-1, RangeError],
  [-0.5, RangeError],
  [NaN, RangeError],
  [Infinity, RangeError],
  [-Infinity, RangeError],
  [2 ** 53, RangeError],
  [Number.MAX_VALUE, RangeError],
  ["5", TypeError],
  [null, TypeError],
  [undefined, TypeError],
  [5n, TypeError],
  [{}, TypeError],
];

Deno.test("negative, NaN and infinite TTLs, quotas and options are refused and write nothing", () => {
  using dir = tempDir();
  const path = dir.file("ttl.db");
  using fixture = populated(path);
  const { store, scope } = fixture;
  for (const [ttl, kind] of BAD_TTLS) {
    const t = ttl as number;
    const calls: [string, () => unknown][] = [
      ["setWithTTL", () => store.setWithTTL("g", "k", "v", t)],
      ["scoped setWithTTL", () => scope.setWithTTL("x", "a", "v", t)],
      [
        "tx.setWithTTL",
        () => store.transaction((tx) => tx.setWithTTL("g", "n", "v", t)),
      ],
    ];
    if (ttl !== null) calls.push(["expire", () => store.expire("g", "k", t)]);
    for (const [call, fn] of calls) {
      refuses(
        fixture,
        path,
        fn,
        (e) => e instanceof kind && /ttlMs/.test((e as Error).message),
        `${call}(${String(ttl)})`,
      );
    }
  }
  for (
    const quota of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, "5", null, {}]
  ) {
    for (const name of ["maxKeys", "maxGroups"]) {
      assert.throws(
        () => new ScopedStore(store, "t", { [name]: quota } as never),
        (e) => e instanceof RangeError && e.message.includes(name),
        `${name}: ${String(quota)}`,
      );
    }
  }
  for (const value of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, "5", null]) {
    for (const name of ["purgeIntervalMs", "busyTimeoutMs"]) {
      assert.throws(
        () => new Store(":memory:", { [name]: value } as never),
        (e) =>
          (e instanceof RangeError || e instanceof TypeError) &&
          e.message.includes(name),
        `${name}: ${String(value)}`,
      );
    }
  }
  for (const limit of [0, -1, 1.5, NaN, Infinity, 10_001, "5"]) {
    refuses(
      fixture,
      path,
      () => store.list("g", { limit: limit as number }),
      (e) =>
        (e instanceof RangeError || e instanceof TypeError) &&
        /limit/.test((e as Error).message),
      `list limit ${String(limit)}`,
    );
  }
  assert.throws(
    () => new Store(":memory:", { durability: "FULL" as never }),
    TypeError,
  );
  assert.throws(() => new Store(":memory:", { clock: 5 as never }), TypeError);
  // Still fully usable.
  store.setWithTTL("g", "ok", "v", 0.5);
  assert.equal(store.ttl("g", "ok"), 1);
});

Deno.test("a fractional TTL is rounded up: the key lives until its TTL has passed", () => {
  const clock = new FakeClock();
  using store = new Store(":memory:", { clock: clock.fn });
  for (const ttl of [0.5, 1.5, 1e-3, 1e-9, Number.MIN_VALUE]) {
    store.setWithTTL("g", String(ttl), "v", ttl);
    assert.equal(
      store.exists("g", String(ttl)),
      true,
      `a key set with ttlMs ${ttl} is already expired at the same instant`,
    );
  }
  clock.advance(1);
  assert.equal(store.exists("g", "0.5"), false);
  assert.equal(store.exists("g", "1.5"), true);
  clock.advance(1);
  assert.equal(store.count("g"), 0);
});

const BROKEN_CLOCKS: [string, () => unknown, (e: unknown) => boolean][] = [
  ["NaN", () => NaN, clockError],
  ["Infinity", () => Infinity, clockError],
  ["-Infinity", () => -Infinity, clockError],
  ["a string", () => "1700000000000", clockError],
  ["undefined", () => undefined, clockError],
  ["a clock that throws", () => {
    throw new Error("the clock broke");
  }, (e) => e instanceof Error && e.message === "the clock broke"],
];

function clockError(e: unknown): boolean {
  return e instanceof RangeError &&
    /^Cannot [A-Za-z ]+: clock\(\) must return a finite number of milliseconds, received /
      .test(e.message);
}

Deno.test("a clock that returns NaN gives clear errors and alters nothing", () => {
  using dir = tempDir();
  for (const [name, broken, expected] of BROKEN_CLOCKS) {
    const path = dir.file(`clock-${name.replaceAll(" ", "-")}.db`);
    using fixture = populated(path);
    const { store, scope } = fixture;
    fixture.breakClock(broken);
    const calls: [string, () => unknown][] = [
      ["set (with a listener)", () => store.set("g", "k", "new")],
      ["setWithTTL", () => store.setWithTTL("g", "k", "new", 10)],
      ["get of a key with a TTL", () => store.get("g", "t")],
      ["expire", () => store.expire("g", "k", 10)],
      ["ttl", () => store.ttl("g", "t")],
      ["exists", () => store.exists("g", "k")],
      ["delete", () => store.delete("g", "k")],
      ["deleteGroup", () => store.deleteGroup("g")],
      ["count", () => store.count("g")],
      ["getAll", () => store.getAll("g")],
      ["list", () => store.list("g")],
      ["countAll", () => store.countAll()],
      ["groups", () => store.groups()],
      ["render", () => store.render("{{ .k }}", "g")],
      ["purgeExpired", () => store.purgeExpired()],
      ["scoped set at the quota", () => scope.set("x", "c", "v")],
      ["transaction", () =>
        store.transaction((tx) => {
          tx.set("g", "in-tx", "v");
          tx.setWithTTL("g", "k", "new", 10);
        })],
    ];
    for (const [call, fn] of calls) {
      refuses(fixture, path, fn, expected, `${name}: ${call}`);
    }
    // A read that needs no time still works.
    assert.equal(store.get("g", "k"), "v");
    fixture.breakClock(undefined);
    assert.equal(store.get("g", "t"), "soon");
  }
});

Deno.test("a clock that returns NaN does not crash the process through the background purge", async () => {
  const reported: unknown[] = [];
  const listener = (event: ErrorEvent) => {
    event.preventDefault();
    reported.push(event.error);
  };
  globalThis.addEventListener("error", listener);
  try {
    // Refused at once when it is broken from the start...
    assert.throws(
      () => new Store(":memory:", { clock: () => NaN }),
      RangeError,
    );
    // ...and quietly skipped by the timer when it breaks later.
    let now = 0;
    using store = new Store(":memory:", {
      clock: () => now,
      purgeIntervalMs: 5,
    });
    store.set("g", "k", "v");
    now = NaN;
    await new Promise((resolve) => setTimeout(resolve, 60));
  } finally {
    globalThis.removeEventListener("error", listener);
  }
  assert.deepEqual(
    reported.map((e) => (e instanceof Error ? e.message : String(e))),
    [],
    "the background purge sent errors to reportError(), which ends a Deno process",
  );
});

Deno.test('a watcher of key "" does not receive delete_group events (they reach "*" watchers only)', async () => {
  using store = new Store();
  const empty = store.watch("g", "");
  const all = store.watch("g", "*");
  store.set("g", "", "v");
  store.deleteGroup("g");
  store.close();
  assert.deepEqual((await Array.fromAsync(all)).map((e) => e.type), [
    "set",
    "delete_group",
  ]);
  assert.deepEqual((await Array.fromAsync(empty)).map((e) => e.type), ["set"]);
});
