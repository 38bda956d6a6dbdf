import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as delay } from "node:timers/promises";
import {
  Store,
  StoreClosedError,
  StoreError,
  type StoreEvent,
  TemplateError,
} from "@core/store";
import {
  clockedStore,
  FakeClock,
  keepAlive,
  nextValue,
  rawQuery,
  tempDir,
} from "./_helpers.ts";

const ROUND_TRIP: [string, string][] = [
  ["empty", ""],
  ["10,000 characters", "x".repeat(10_000)],
  ["emoji", "😀👩‍👩‍👧‍👦🏳️‍🌈"],
  ["CJK", "漢字かなカナ한국어"],
  ["Arabic", "مرحبا بالعالم"],
  ["quotes and SQL", `'; DROP TABLE kv; -- "x" \\ %_`],
  ["a NUL inside", "a\0b"],
  ["only NULs", "\0\0"],
  ["NUL first", "\0tail"],
  ["newlines and tabs", "a\nb\r\n\tc"],
  ["astral plane", "𝄞𐍈"],
];

Deno.test("Store.get() returns undefined for a missing group and a missing key", () => {
  using store = new Store();
  store.set("g", "k", "v");
  assert.equal(store.get("missing", "k"), undefined);
  assert.equal(store.get("g", "missing"), undefined);
  assert.equal(store.get("g", "k"), "v");
});

Deno.test("Store.set() round-trips every string exactly", async (t) => {
  using dir = tempDir();
  for (const path of [":memory:", dir.file("round.db")]) {
    await t.step(path === ":memory:" ? "in memory" : "in a file", () => {
      using store = new Store(path);
      for (const [name, text] of ROUND_TRIP) {
        store.set(text, text, text);
        assert.equal(store.get(text, text), text, name);
        assert.deepEqual([...store.getAll(text)], [[text, text]], name);
        assert.equal(store.groups().includes(text), true, name);
      }
    });
  }
  await t.step("a file reopened keeps NUL values byte for byte", () => {
    const path = dir.file("round.db");
    using store = new Store(path);
    assert.equal(store.get("a\0b", "a\0b"), "a\0b");
    const [row] = rawQuery(
      path,
      "SELECT hex(entry_value) AS h FROM entries WHERE group_name = ? AND entry_key = ?",
      "a\0b",
      "a\0b",
    );
    assert.equal(row?.h, "610062");
  });
});

Deno.test("Store.getAll() returns NUL, non-ASCII and ASCII entries of one group exactly", () => {
  using store = new Store();
  const entries: [string, string][] = [];
  for (let i = 0; i < 300; i++) {
    const key = i % 3 === 0 ? `k${i}\0` : i % 3 === 1 ? `ключ${i}` : `k${i}`;
    const value = i % 5 === 0 ? `\0${i}\0` : i % 5 === 1 ? `値😀${i}` : `${i}`;
    entries.push([key, value]);
    store.set("mixed", key, value);
    assert.equal(store.get("mixed", key), value);
  }
  const all = store.getAll("mixed");
  assert.equal(all.size, entries.length);
  for (const [key, value] of entries) assert.equal(all.get(key), value, key);
  // A group with no NUL anywhere takes the fast path and is exact too.
  for (const [key, value] of entries.slice(0, 50)) {
    if (!key.includes("\0") && !value.includes("\0")) {
      store.set("clean", key, value);
    }
  }
  assert.deepEqual(
    [...store.getAll("clean")].sort(),
    entries.slice(0, 50).filter(([k, v]) =>
      !k.includes("\0") && !v.includes("\0")
    ).sort(),
  );
});

Deno.test("Store.set() rejects non-strings and lone surrogates and writes nothing", async (t) => {
  using store = new Store();
  const bad: [string, unknown[], RegExp][] = [
    [
      "a number group",
      [1, "k", "v"],
      /^Cannot set value: group must be a string, received number$/,
    ],
    [
      "a null key",
      ["g", null, "v"],
      /^Cannot set value: key must be a string, received null$/,
    ],
    [
      "an object value",
      ["g", "k", {}],
      /^Cannot set value: value must be a string, received object$/,
    ],
    [
      "an undefined value",
      ["g", "k", undefined],
      /value must be a string, received undefined/,
    ],
    [
      "an array group",
      [["g"], "k", "v"],
      /group must be a string, received array/,
    ],
    [
      "a lone high surrogate",
      ["g", "k", "a\uD800"],
      /value contains a lone surrogate at index 1/,
    ],
    [
      "a lone low surrogate",
      ["g", "\uDC00", "v"],
      /key contains a lone surrogate at index 0/,
    ],
  ];
  for (const [name, args, message] of bad) {
    await t.step(name, () => {
      assert.throws(
        () => (store.set as (...a: unknown[]) => void)(...args),
        (error) => error instanceof TypeError && message.test(error.message),
      );
      assert.equal(store.countAll(), 0);
    });
  }
});

Deno.test("Store.setWithTTL() rejects a TTL that is not a positive finite number", () => {
  using store = new Store();
  for (const ttl of [0, -1, NaN, Infinity, -Infinity]) {
    assert.throws(() => store.setWithTTL("g", "k", "v", ttl), {
      name: "RangeError",
      message:
        `Cannot set value with TTL: ttlMs must be a positive finite number, received ${ttl}`,
    });
  }
  assert.throws(
    () => store.setWithTTL("g", "k", "v", "10" as unknown as number),
    {
      name: "TypeError",
      message:
        "Cannot set value with TTL: ttlMs must be a number, received string",
    },
  );
  assert.equal(store.countAll(), 0);
});

Deno.test("Store.get() returns undefined for an expired key and deletes its row", () => {
  using dir = tempDir();
  const clock = new FakeClock();
  const path = dir.file("ttl.db");
  using store = new Store(path, { clock: clock.fn, purgeIntervalMs: 0 });
  store.setWithTTL("g", "k", "v", 1_000);
  const [row] = rawQuery(path, "SELECT expires_at FROM entries");
  assert.equal(row?.expires_at, clock.now + 1_000);
  clock.advance(999);
  assert.equal(store.get("g", "k"), "v");
  clock.advance(1);
  assert.equal(rawQuery(path, "SELECT * FROM entries").length, 1);
  assert.equal(store.get("g", "k"), undefined);
  assert.equal(rawQuery(path, "SELECT * FROM entries").length, 0);
});

Deno.test("Store.setWithTTL() rounds a fractional expiry up to a whole millisecond", () => {
  using dir = tempDir();
  const clock = new FakeClock(1_000);
  const path = dir.file("frac.db");
  using store = new Store(path, { clock: clock.fn, purgeIntervalMs: 0 });
  store.setWithTTL("g", "k", "v", 0.5);
  assert.deepEqual(rawQuery(path, "SELECT expires_at FROM entries"), [{
    expires_at: 1_001,
  }]);
});

Deno.test("Store.set() clears an expiry and setWithTTL() replaces one", () => {
  const clock = new FakeClock();
  using store = new Store(":memory:", { clock: clock.fn });
  store.setWithTTL("g", "a", "1", 10);
  store.set("g", "a", "2");
  store.set("g", "b", "1");
  store.setWithTTL("g", "b", "2", 10);
  clock.advance(10);
  assert.equal(store.get("g", "a"), "2");
  assert.equal(store.get("g", "b"), undefined);
});

Deno.test("Store.count(), getAll() and render() never see expired keys", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  store.set("g", "live", "L");
  store.setWithTTL("g", "gone", "G", 5);
  store.setWithTTL("other:g", "gone", "G", 5);
  assert.equal(store.count("g"), 2);
  clock.advance(5);
  assert.equal(store.count("g"), 1);
  assert.deepEqual([...store.getAll("g")], [["live", "L"]]);
  assert.equal(
    store.render("{{ range $k, $v := . }}{{ $k }};{{ end }}", "g"),
    "live;",
  );
  assert.equal(store.countAll(), 1);
  assert.deepEqual(store.groups(), ["g"]);
});

Deno.test("Store.purgeExpired() deletes every expired row and returns how many", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  for (let i = 0; i < 5_000; i++) {
    store.setWithTTL("g", `t${i}`, "v", i < 4_500 ? 10 : 100);
  }
  store.set("g", "forever", "v");
  clock.advance(10);
  assert.equal(store.purgeExpired(), 4_500);
  assert.equal(store.purgeExpired(), 0);
  assert.equal(store.count("g"), 501);
});

Deno.test("Store.delete() reports whether a live key was removed", async (t) => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  await t.step("a live key", () => {
    store.set("g", "k", "v");
    assert.equal(store.delete("g", "k"), true);
    assert.equal(store.get("g", "k"), undefined);
  });
  await t.step("a missing key", () => {
    assert.equal(store.delete("g", "k"), false);
  });
  await t.step("an expired key is removed but not reported as live", () => {
    store.setWithTTL("g", "t", "v", 1);
    clock.advance(1);
    assert.equal(store.delete("g", "t"), false);
    assert.equal(store.purgeExpired(), 0);
  });
});

Deno.test("Store.deleteGroup() removes every row of the group and nothing else", () => {
  using store = new Store();
  store.set("g", "a", "1");
  store.set("g", "b", "2");
  store.set("h", "a", "3");
  assert.equal(store.deleteGroup("g"), 2);
  assert.equal(store.getAll("g").size, 0);
  assert.equal(store.count("g"), 0);
  assert.equal(store.get("h", "a"), "3");
  assert.equal(store.deleteGroup("g"), 0);
});

Deno.test("Store.count() counts 1,000 inserts", () => {
  using store = new Store();
  for (let i = 0; i < 1_000; i++) store.set("g", `k${i}`, `${i}`);
  assert.equal(store.count("g"), 1_000);
  store.set("g", "k0", "again");
  assert.equal(store.count("g"), 1_000);
});

Deno.test("Store.getAll() returns entries in ascending code point order", () => {
  using store = new Store();
  // UTF-16 order would put U+FF5E before U+1F600; code point order (SQLite's
  // and Go's) puts it after.
  for (const key of ["b", "😀", "～", "a", "B", ""]) store.set("g", key, key);
  assert.deepEqual([...store.getAll("g").keys()], [
    "",
    "B",
    "a",
    "b",
    "～",
    "😀",
  ]);
});

Deno.test("Store.getAll() and render() are safe for __proto__ and constructor keys", () => {
  using store = new Store();
  for (
    const key of ["__proto__", "constructor", "hasOwnProperty", "toString"]
  ) {
    store.set("g", key, `${key}!`);
  }
  const all = store.getAll("g");
  assert.equal(all.get("__proto__"), "__proto__!");
  assert.equal(all.get("constructor"), "constructor!");
  assert.equal(all.size, 4);
  assert.equal(
    store.render(
      '{{ index . "__proto__" }} {{ .constructor }} {{ .hasOwnProperty }}',
      "g",
    ),
    "__proto__! constructor! hasOwnProperty!",
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("Store.render() renders a group with Go template semantics", async (t) => {
  using store = new Store();
  store.set("page", "title", "Tom & Jerry <3");
  store.set("page", "user name", "O'Brien");
  store.set("page", "empty", "");
  await t.step("fields, index and pipelines", () => {
    assert.equal(
      store.render(
        '{{ .title | html }}|{{ index . "user name" | js }}|{{ .title | urlquery }}|{{ .title | json }}',
        "page",
      ),
      'Tom &amp; Jerry &lt;3|O\\\'Brien|Tom+%26+Jerry+%3C3|"Tom \\u0026 Jerry \\u003c3"',
    );
  });
  await t.step("if, with and range", () => {
    assert.equal(
      store.render(
        "{{ if .empty }}yes{{ else }}no{{ end }}-{{ with .title }}{{ . }}{{ end }}-{{ range $k, $v := . }}[{{ $k }}]{{ end }}",
        "page",
      ),
      "no-Tom & Jerry <3-[empty][title][user name]",
    );
  });
  await t.step("values containing template syntax print literally", () => {
    store.set("page", "evil", "{{ .title }}");
    assert.equal(store.render("{{ .evil }}", "page"), "{{ .title }}");
  });
  await t.step("a missing group renders with no data", () => {
    assert.equal(store.render("[{{ .x }}]", "missing"), "[<no value>]");
  });
});

Deno.test("Store.render() handles a missing key in all three modes", () => {
  using store = new Store();
  store.set("g", "a", "1");
  assert.equal(store.render("{{ .a }}{{ .b }}", "g"), "1<no value>");
  assert.equal(
    store.render("{{ .a }}{{ .b }}", "g", { missingKey: "default" }),
    "1<no value>",
  );
  assert.equal(
    store.render("{{ .a }}{{ .b }}", "g", { missingKey: "zero" }),
    "1",
  );
  assert.throws(
    () => store.render("{{ .a }}\n  {{ .b }}", "g", { missingKey: "error" }),
    (error) =>
      error instanceof TemplateError && error.line === 2 &&
      /map has no entry for key "b"/.test(error.message),
  );
  assert.throws(
    () =>
      store.render("x", "g", {
        missingKey: "loud" as unknown as "zero",
      }),
    {
      name: "RangeError",
      message:
        'Cannot render template: missingKey must be "default", "zero" or "error", received "loud"',
    },
  );
});

Deno.test("Store.render() reports invalid syntax as a TemplateError with line:col", async (t) => {
  using store = new Store();
  const cases: [string, string, RegExp][] = [
    ["an unclosed action", "ok\n{{ .name", /^Cannot render template: 2:1: /],
    [
      "an unknown function",
      "{{ .a | shout }}",
      /^Cannot render template: 1:\d+: .*"shout"/,
    ],
    ["a stray end", "a{{ end }}", /^Cannot render template: 1:2: /],
    ["a missing end", "{{ if .a }}x", /^Cannot render template: 1:1: /],
  ];
  for (const [name, source, message] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => store.render(source, "g"),
        (error) =>
          error instanceof TemplateError && error instanceof StoreError &&
          error.name === "TemplateError" && message.test(error.message),
      );
    });
  }
});

Deno.test("Store.render() reuses a parsed template across renders", () => {
  using store = new Store();
  const template = "{{ .n }}";
  for (let i = 0; i < 300; i++) {
    store.set("g", "n", `${i}`);
    assert.equal(store.render(template, "g"), `${i}`);
    // More distinct templates than the cache holds must still render.
    assert.equal(store.render(`${i}:{{ .n }}`, "g"), `${i}:${i}`);
  }
});

Deno.test("Store.countAll() and groups() treat the prefix literally", async (t) => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  for (const group of ["a_b", "axb", "a%c", "abc", "a\\d", "a", "b", "a_b2"]) {
    store.set(group, "k", "v");
  }
  store.setWithTTL("a_expired", "k", "v", 1);
  clock.advance(1);
  await t.step("underscore", () => {
    assert.deepEqual(store.groups("a_"), ["a_b", "a_b2"]);
    assert.equal(store.countAll("a_"), 2);
  });
  await t.step("percent", () => {
    assert.deepEqual(store.groups("a%"), ["a%c"]);
  });
  await t.step("backslash", () => {
    assert.deepEqual(store.groups("a\\"), ["a\\d"]);
  });
  await t.step("empty prefix means every group", () => {
    assert.equal(store.countAll(), 8);
    assert.equal(store.countAll(""), 8);
    assert.deepEqual(store.groups(), [
      "a",
      "a%c",
      "a\\d",
      "a_b",
      "a_b2",
      "abc",
      "axb",
      "b",
    ]);
  });
  await t.step("prefixes at the top of the code point range", () => {
    store.set("\u{10FFFF}\u{10FFFF}x", "k", "v");
    store.set("\uD7FFz", "k", "v");
    store.set("\uE000", "k", "v");
    assert.deepEqual(store.groups("\u{10FFFF}"), ["\u{10FFFF}\u{10FFFF}x"]);
    assert.deepEqual(store.groups("\uD7FF"), ["\uD7FFz"]);
  });
});

Deno.test("Store.countAll() and groups() use a range scan of the primary key", () => {
  using dir = tempDir();
  const path = dir.file("plan.db");
  new Store(path).close();
  const db = new DatabaseSync(path);
  try {
    // The same WHERE shape the store prepares.
    for (
      const sql of [
        "SELECT count(*) FROM entries WHERE group_name >= ? AND group_name < ? AND (expires_at IS NULL OR expires_at > ?)",
        "SELECT DISTINCT group_name FROM entries WHERE group_name >= ? AND group_name < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY group_name",
      ]
    ) {
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all("a:", "a;", 0)
        .map((row) => String(row.detail)).join("\n");
      assert.match(
        plan,
        /SEARCH entries USING INDEX sqlite_autoindex_entries_1 \(group_name>\? AND group_name<\?\)/,
      );
      assert.doesNotMatch(plan, /SCAN entries/);
    }
  } finally {
    db.close();
  }
});

Deno.test("Store methods throw StoreClosedError after close()", async (t) => {
  const store = new Store(":memory:", { purgeIntervalMs: 10 });
  store.set("g", "k", "v");
  store.close();
  store.close();
  const calls: [string, () => unknown][] = [
    ["get value", () => store.get("g", "k")],
    ["set value", () => store.set("g", "k", "v")],
    ["set value with TTL", () => store.setWithTTL("g", "k", "v", 1)],
    ["delete key", () => store.delete("g", "k")],
    ["delete group", () => store.deleteGroup("g")],
    ["count keys", () => store.count("g")],
    ["get all values", () => store.getAll("g")],
    ["count all keys", () => store.countAll()],
    ["list groups", () => store.groups()],
    ["render template", () => store.render("x", "g")],
    ["purge expired keys", () => store.purgeExpired()],
    ["watch", () => store.watch("g", "k")],
    ["register change callback", () => store.onChange(() => {})],
  ];
  for (const [op, call] of calls) {
    await t.step(op, () => {
      assert.throws(
        call,
        (error) =>
          error instanceof StoreClosedError && error instanceof StoreError &&
          error.name === "StoreClosedError" &&
          error.message === `Cannot ${op}: the store is closed`,
      );
    });
  }
});

Deno.test("Store[Symbol.dispose]() closes the store", () => {
  let outer: Store | undefined;
  {
    using store = new Store();
    outer = store;
  }
  assert.throws(() => outer.get("g", "k"), StoreClosedError);
});

Deno.test("Store constructor validates its path and options", async (t) => {
  const cases: [string, () => unknown, string, RegExp][] = [
    [
      "a non-string path",
      () => new Store(1 as unknown as string),
      "TypeError",
      /path must be a string, received number/,
    ],
    ["an empty path", () => new Store(""), "TypeError", /empty string/],
    [
      "a negative interval",
      () => new Store(":memory:", { purgeIntervalMs: -1 }),
      "RangeError",
      /purgeIntervalMs must be an integer/,
    ],
    [
      "a fractional timeout",
      () => new Store(":memory:", { busyTimeoutMs: 1.5 }),
      "RangeError",
      /busyTimeoutMs must be an integer/,
    ],
    [
      "a NaN interval",
      () => new Store(":memory:", { purgeIntervalMs: NaN }),
      "RangeError",
      /received NaN/,
    ],
    [
      "a string interval",
      () =>
        new Store(":memory:", { purgeIntervalMs: "5" as unknown as number }),
      "TypeError",
      /must be a number, received string/,
    ],
    [
      "an unknown durability",
      () => new Store(":memory:", { durability: "off" as "full" }),
      "TypeError",
      /durability must be "normal" or "full"/,
    ],
    [
      "a clock that is not a function",
      () => new Store(":memory:", { clock: 5 as unknown as () => number }),
      "TypeError",
      /clock must be a function/,
    ],
  ];
  for (const [name, make, type, message] of cases) {
    await t.step(name, () => {
      assert.throws(
        make,
        (error) =>
          error instanceof Error && error.name === type &&
          error.message.startsWith("Cannot open store: ") &&
          message.test(error.message),
      );
    });
  }
});

Deno.test("Store rejects a clock that returns a non-finite number and writes nothing", () => {
  assert.throws(() => new Store(":memory:", { clock: () => Infinity }), {
    name: "RangeError",
    message:
      "Cannot open store: clock() must return a finite number of milliseconds, received Infinity",
  });
  let now = 0;
  using store = new Store(":memory:", { clock: () => now, purgeIntervalMs: 0 });
  now = NaN;
  assert.throws(() => store.setWithTTL("g", "k", "v", 10), {
    name: "RangeError",
    message:
      "Cannot set value with TTL: clock() must return a finite number of milliseconds, received NaN",
  });
  // Reads that must decide on expiry need the clock too.
  assert.throws(() => store.count("g"), RangeError);
  now = 0;
  assert.equal(store.countAll(), 0);
});

Deno.test("Store opens a file in WAL mode", async (t) => {
  using dir = tempDir();
  for (const durability of ["normal", "full"] as const) {
    await t.step(durability, () => {
      const path = dir.file(`${durability}.db`);
      using store = new Store(path, { durability, busyTimeoutMs: 1234 });
      store.set("g", "k", "v");
      assert.equal(store.path, path);
      // journal_mode is stored in the file, so a second connection sees it.
      const [row] = rawQuery(path, "PRAGMA journal_mode");
      assert.equal(row?.journal_mode, "wal");
    });
  }
});

Deno.test("Store keeps data in a file across reopen and none in :memory:", () => {
  using dir = tempDir();
  const path = dir.file("persist.db");
  {
    using store = new Store(path);
    store.set("g", "k", "file");
  }
  {
    using store = new Store(path);
    assert.equal(store.get("g", "k"), "file");
  }
  {
    using store = new Store();
    store.set("g", "k", "memory");
    assert.equal(store.path, ":memory:");
  }
  using fresh = new Store(":memory:");
  assert.equal(fresh.get("g", "k"), undefined);
});

Deno.test("Store migrates a pre-TTL file and keeps every row", () => {
  using dir = tempDir();
  const path = dir.file("old.db");
  const db = new DatabaseSync(path);
  db.exec(
    "CREATE TABLE kv (grp TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (grp, key))",
  );
  const insert = db.prepare("INSERT INTO kv VALUES (?, ?, ?)");
  for (let i = 0; i < 100; i++) insert.run("old", `k${i}`, `v${i}`);
  db.close();

  const clock = new FakeClock();
  {
    using store = new Store(path, { clock: clock.fn });
    assert.equal(store.count("old"), 100);
    assert.equal(store.get("old", "k42"), "v42");
    store.setWithTTL("old", "k0", "ttl", 10);
    clock.advance(10);
    assert.equal(store.get("old", "k0"), undefined);
  }
  const columns = rawQuery(path, "PRAGMA table_info(kv)").map((c) => c.name);
  assert.deepEqual(columns, ["grp", "key", "value", "expires_at"]);
  using again = new Store(path);
  assert.equal(again.count("old"), 99);
});

Deno.test("Store refuses a kv table of another shape and leaves the file alone", () => {
  using dir = tempDir();
  const path = dir.file("other.db");
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE kv (id INTEGER PRIMARY KEY, data TEXT)");
  db.close();
  const before = Deno.readFileSync(path);
  assert.throws(
    () => new Store(path),
    (error) =>
      error instanceof StoreError && error.message.includes(path) &&
      /table kv has no column grp/.test(error.message),
  );
  assert.deepEqual(Deno.readFileSync(path), before);
});

Deno.test("Store reports a file it cannot open as a StoreError naming the path", () => {
  using dir = tempDir();
  const missing = dir.file("no/such/dir/x.db");
  assert.throws(
    () => new Store(missing),
    (error) =>
      error instanceof StoreError &&
      error.message.startsWith(`Cannot open store at ${missing}: `) &&
      error.cause instanceof Error,
  );
  const junk = dir.file("junk.db");
  Deno.writeTextFileSync(junk, "this is not a database ".repeat(100));
  const before = Deno.readFileSync(junk);
  assert.throws(
    () => new Store(junk),
    (error) => error instanceof StoreError && error.message.includes(junk),
  );
  assert.deepEqual(Deno.readFileSync(junk), before);
});

Deno.test("Store serves many concurrent async tasks on one store", async () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const tasks = Array.from({ length: 50 }, async (_, task) => {
    for (let i = 0; i < 100; i++) {
      if (i % 3 === 0) store.setWithTTL("ttl", `${task}:${i}`, `${i}`, 50);
      else store.set("plain", `${task}:${i}`, `${i}`);
      await Promise.resolve();
      const group = i % 3 === 0 ? "ttl" : "plain";
      assert.equal(store.get(group, `${task}:${i}`), `${i}`);
      if (i === 50 && task % 2 === 0) clock.advance(1);
    }
  });
  await Promise.all(tasks);
  assert.equal(store.count("plain"), 50 * 66);
  const ttlLive = store.count("ttl");
  assert.equal(ttlLive, 50 * 34);
  clock.advance(1_000);
  assert.equal(store.count("ttl"), 0);
  assert.equal(store.purgeExpired(), 50 * 34);
});

Deno.test("Store handles Workers writing one file concurrently", async () => {
  using dir = tempDir();
  const path = dir.file("workers.db");
  new Store(path).close();
  const perWorker = 500;
  const ids = ["w1", "w2", "w3"];
  const results = await Promise.all(
    ids.map((id) =>
      new Promise<{ ok: boolean; written?: number; error?: string }>(
        (resolve, reject) => {
          const worker = new Worker(
            new URL("./fixtures/store_writer_worker.ts", import.meta.url),
            { type: "module" },
          );
          worker.onmessage = (event) => {
            worker.terminate();
            resolve(event.data);
          };
          worker.onerror = (event) => {
            event.preventDefault();
            worker.terminate();
            reject(new Error(event.message));
          };
          worker.postMessage({ path, id, count: perWorker });
        },
      )
    ),
  );
  for (const result of results) {
    assert.deepEqual(result, { ok: true, written: perWorker });
  }
  using store = new Store(path);
  assert.equal(store.count("shared"), ids.length * perWorker);
  for (const id of ids) {
    assert.equal(
      store.get("shared", `${id}:${perWorker - 1}`),
      `v${perWorker - 1}`,
    );
  }
});

Deno.test("Store purges expired keys in the background", async (t) => {
  await t.step(
    "on: the timer removes expired rows and reports them",
    async () => {
      using dir = tempDir();
      const clock = new FakeClock();
      const path = dir.file("bg.db");
      using store = new Store(path, { clock: clock.fn, purgeIntervalMs: 5 });
      store.setWithTTL("g", "a", "1", 10);
      store.set("g", "b", "2");
      clock.advance(10);
      const event = await keepAlive(
        nextValue<StoreEvent>((fn) => store.onChange(fn)),
      );
      assert.deepEqual(
        { ...event },
        {
          type: "expire",
          group: "g",
          key: "a",
          timestamp: clock.now,
          origin: "local",
        },
      );
      assert.deepEqual(rawQuery(path, "SELECT entry_key AS key FROM entries"), [
        { key: "b" },
      ]);
    },
  );
  await t.step(
    "off: no timer runs and expired rows stay until read",
    async () => {
      using dir = tempDir();
      const clock = new FakeClock();
      const path = dir.file("off.db");
      using store = new Store(path, { clock: clock.fn, purgeIntervalMs: 0 });
      store.setWithTTL("g", "a", "1", 10);
      clock.advance(10);
      // Proving that nothing happens needs some real time to pass; a second
      // store with the purge on shows the interval is long enough to fire.
      using witness = new Store(":memory:", {
        clock: clock.fn,
        purgeIntervalMs: 5,
      });
      witness.setWithTTL("g", "a", "1", 1);
      clock.advance(1);
      await keepAlive(nextValue<StoreEvent>((fn) => witness.onChange(fn)));
      await delay(20);
      assert.equal(rawQuery(path, "SELECT * FROM entries").length, 1);
      assert.equal(store.count("g"), 0);
    },
  );
});

Deno.test("Store opens a WAL file through a symbolic link and a kv table with upper-case column names", async (t) => {
  using dir = tempDir();
  await t.step("a symbolic link to a file whose WAL holds frames", () => {
    const target = dir.file("target.db");
    using writer = new Store(target, { purgeIntervalMs: 0 });
    writer.transaction((tx) => {
      for (let i = 0; i < 2_000; i++) tx.set("g", `k${i}`, "x".repeat(200));
    });
    const link = dir.file("link.db");
    Deno.symlinkSync(target, link);
    using reader = new Store(link, { purgeIntervalMs: 0 });
    assert.equal(reader.count("g"), 2_000);
  });
  await t.step("EXPIRES_AT written in upper case", () => {
    const path = dir.file("upper.db");
    const db = new DatabaseSync(path);
    db.exec(
      "CREATE TABLE kv (GRP TEXT NOT NULL, KEY TEXT NOT NULL, VALUE TEXT NOT NULL, EXPIRES_AT INTEGER, PRIMARY KEY (GRP, KEY))",
    );
    db.exec("INSERT INTO kv VALUES ('g', 'k', 'v', NULL)");
    db.close();
    using store = new Store(path, { purgeIntervalMs: 0 });
    assert.equal(store.get("g", "k"), "v");
  });
});
