import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  type ExportRecord,
  fromNdjson,
  ImportError,
  Store,
  StoreClosedError,
  type StoreEvent,
  toNdjson,
} from "@core/store";
import {
  FakeClock,
  keepAlive,
  nextValue,
  rawQuery,
  tempDir,
} from "./_helpers.ts";

// Strings the file must keep exactly: NUL anywhere, a leading U+FEFF (which
// a UTF-8 decoder strips by default), astral characters, line breaks, the
// empty string.
const HOSTILE = [
  "",
  "\0",
  "a\0b",
  "\uFEFF",
  "\uFEFFbom",
  "\uFEFF\0bom and NUL",
  "line\nbreak\r\n",
  "🦕 ünïcödé 中文",
  "\u2028\u2029",
  '"quoted" \\ back',
];

function hostileRecords(expiresAt: number | null): ExportRecord[] {
  return HOSTILE.flatMap((text, i) => [
    { group: text, key: `k${i}`, value: text, expiresAt },
    { group: `g${i}`, key: text, value: `v${i}`, expiresAt },
  ]);
}

function fill(store: Store, records: ExportRecord[], now: number): void {
  for (const r of records) {
    if (r.expiresAt === null) store.set(r.group, r.key, r.value);
    else store.setWithTTL(r.group, r.key, r.value, r.expiresAt - now);
  }
}

function sortRecords(records: ExportRecord[]): ExportRecord[] {
  const order = (r: ExportRecord) => JSON.stringify([r.group, r.key]);
  return [...records].sort((a, b) => order(a) < order(b) ? -1 : 1);
}

// Every row of a file, read as bytes, so that nothing is lost to decoding.
function rawRows(path: string): string[] {
  return rawQuery(
    path,
    "SELECT hex(group_name) AS g, hex(entry_key) AS k, hex(entry_value) AS v, expires_at AS e FROM entries ORDER BY group_name, entry_key",
  ).map((row) => `${row.g} ${row.k} ${row.v} ${row.e}`);
}

Deno.test("Store.exportEntries yields every live entry exactly, from a file or memory", async (t) => {
  using dir = tempDir();
  const clock = new FakeClock();
  for (const path of [":memory:", dir.file("hostile.db")]) {
    await t.step(path, async () => {
      using store = new Store(path, { clock: clock.fn });
      const forever = hostileRecords(null);
      const later = hostileRecords(clock.now + 60_000)
        .map((r) => ({ ...r, group: `later:${r.group}` }));
      fill(store, [...forever, ...later], clock.now);
      store.setWithTTL("gone", "k", "v", 10);
      clock.advance(10);
      const exported = await Array.fromAsync(store.exportEntries());
      assert.deepEqual(
        sortRecords(exported),
        sortRecords([...forever, ...later]),
      );
    });
  }
});

Deno.test("Store.exportEntries reads one snapshot, taken when it is called", async (t) => {
  using dir = tempDir();
  for (const path of [":memory:", dir.file("snapshot.db")]) {
    await t.step(path, async () => {
      using store = new Store(path);
      for (let i = 0; i < 3_000; i++) store.set("g", `k${i}`, "before");
      const stream = store.exportEntries();
      store.set("g", "new", "after");
      store.delete("g", "k0");
      store.set("g", "k1", "after");
      const records = await Array.fromAsync(stream);
      assert.equal(records.length, 3_000);
      assert.ok(records.every((r) => r.value === "before"));
      assert.ok(records.some((r) => r.key === "k0"));
    });
  }
});

Deno.test("Store.exportEntries with a prefix exports those groups only, in key order", async () => {
  using store = new Store();
  for (const group of ["a_b", "axb", "a_", "a", "b", "a_\u{10FFFF}"]) {
    store.set(group, "2", "v");
    store.set(group, "1", "v");
  }
  const records = await Array.fromAsync(store.exportEntries({ prefix: "a_" }));
  assert.deepEqual(
    records.map((r) => `${r.group}/${r.key}`),
    ["a_/1", "a_/2", "a_b/1", "a_b/2", "a_\u{10FFFF}/1", "a_\u{10FFFF}/2"],
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => store.exportEntries({ prefix: 1 as any }),
    { name: "TypeError", message: /prefix must be a string/ },
  );
});

Deno.test("Store.exportEntries ends its file snapshot when cancelled, ended or closed early", async (t) => {
  using dir = tempDir();
  const path = dir.file("reader.db");
  using store = new Store(path);
  for (let i = 0; i < 5_000; i++) store.set("g", `k${i}`, "v".repeat(100));
  // A reader holding a snapshot keeps a TRUNCATE checkpoint from finishing.
  const checkpointBlocked = () => {
    store.set("g", "poke", String(Math.random()));
    const row = rawQuery(path, "PRAGMA wal_checkpoint(TRUNCATE)")[0];
    return row?.busy === 1;
  };
  await t.step("cancel", async () => {
    const stream = store.exportEntries();
    assert.equal(checkpointBlocked(), true);
    await stream.cancel();
    assert.equal(checkpointBlocked(), false);
  });
  await t.step("leaving a for await loop early", async () => {
    for await (const _ of store.exportEntries()) break;
    assert.equal(checkpointBlocked(), false);
  });
  await t.step("read to the end", async () => {
    await Array.fromAsync(store.exportEntries());
    assert.equal(checkpointBlocked(), false);
  });
  await t.step("the store closing does not end an export", async () => {
    using other = new Store(path);
    const stream = other.exportEntries();
    other.close();
    assert.equal((await Array.fromAsync(stream)).length, 5_001);
    assert.throws(() => other.exportEntries(), StoreClosedError);
  });
});

Deno.test("Store.exportEntries refuses text that is not UTF-8 instead of altering it", async () => {
  using dir = tempDir();
  const path = dir.file("bad.db");
  new Store(path).close();
  const db = new DatabaseSync(path);
  db.exec(
    "INSERT INTO entries (group_name, entry_key, entry_value) VALUES ('g', 'k', CAST(X'61FF0062' AS TEXT))",
  );
  db.close();
  using store = new Store(path);
  await assert.rejects(Array.fromAsync(store.exportEntries()), {
    name: "StoreError",
    message: /a value in the file is not valid UTF-8/,
  });
});

Deno.test("Store.importEntries writes every record exactly, with its expiresAt", async () => {
  const clock = new FakeClock(1_700_000_000_123);
  using store = new Store(":memory:", { clock: clock.fn });
  const records = [
    ...hostileRecords(null),
    ...hostileRecords(clock.now + 1).map((r) => ({
      ...r,
      group: `1:${r.group}`,
    })),
    ...hostileRecords(clock.now + 86_400_000).map((r) => ({
      ...r,
      group: `day:${r.group}`,
    })),
  ];
  const result = await store.importEntries(records);
  assert.deepEqual(result, { imported: records.length, skipped: 0 });
  const back = await Array.fromAsync(store.exportEntries());
  assert.deepEqual(sortRecords(back), sortRecords(records));
  // get() reads values through its own path: the leading U+FEFF survives.
  assert.equal(store.get("g5", "\uFEFF\0bom and NUL"), "v5");
  assert.equal(store.get("\uFEFF\0bom and NUL", "k5"), "\uFEFF\0bom and NUL");
});

Deno.test("Store.importEntries skips records whose expiresAt has passed", async () => {
  const clock = new FakeClock(10_000);
  using store = new Store(":memory:", { clock: clock.fn });
  const result = await store.importEntries([
    { group: "g", key: "past", value: "v", expiresAt: 9_999 },
    { group: "g", key: "now", value: "v", expiresAt: 10_000 },
    { group: "g", key: "next", value: "v", expiresAt: 10_001 },
    { group: "g", key: "never", value: "v", expiresAt: null },
    { group: "g", key: "absent", value: "v" },
  ]);
  assert.deepEqual(result, { imported: 3, skipped: 2 });
  assert.deepEqual([...store.getAll("g").keys()], ["absent", "never", "next"]);
  assert.equal(store.ttl("g", "next"), 1);
});

Deno.test("Store.importEntries stops at a malformed record, keeping earlier batches only", async (t) => {
  const bad: [string, unknown, RegExp][] = [
    [
      "a number value",
      { group: "g", key: "k", value: 1, expiresAt: null },
      /value must be a string, received number/,
    ],
    [
      "a missing key",
      { group: "g", value: "v" },
      /key must be a string, received undefined/,
    ],
    [
      "an unknown field",
      { group: "g", key: "k", value: "v", ttl: 5 },
      /unknown field "ttl"/,
    ],
    ["a fractional expiresAt", {
      group: "g",
      key: "k",
      value: "v",
      expiresAt: 1.5,
    }, /expiresAt must be null or whole milliseconds/],
    [
      "a string expiresAt",
      { group: "g", key: "k", value: "v", expiresAt: "1" },
      /received string/,
    ],
    [
      "a lone surrogate",
      { group: "g", key: "\ud800", value: "v" },
      /key holds a lone surrogate/,
    ],
    ["an array", ["g", "k", "v"], /expected an object, received array/],
    ["null", null, /expected an object, received null/],
  ];
  for (const [name, record, message] of bad) {
    await t.step(name, async () => {
      using store = new Store();
      const records = [1, 2, 3, 4].map((i) => ({
        group: "g",
        key: `k${i}`,
        value: "v",
        expiresAt: null,
      }));
      await assert.rejects(
        store.importEntries([...records, record, records[0]], { batchSize: 2 }),
        (error) => {
          assert.ok(error instanceof ImportError);
          assert.equal(error.record, 5);
          assert.equal(error.imported, 4);
          assert.match(error.message, /^Cannot import entries: record 5: /);
          assert.match(error.message, message);
          return true;
        },
      );
      assert.equal(store.count("g"), 4);
    });
  }
  await t.step("the failing batch is not written", async () => {
    using store = new Store();
    const records: unknown[] = [1, 2, 3].map((i) => ({
      group: "g",
      key: `k${i}`,
      value: "v",
      expiresAt: null,
    }));
    records.push({ group: "g", key: "k4", value: "v" });
    records.push({ group: "g", key: "k5", value: 5 });
    await assert.rejects(store.importEntries(records, { batchSize: 3 }), {
      name: "ImportError",
      message: /record 5: .*\(3 records imported before it/,
    });
    assert.deepEqual([...store.getAll("g").keys()], ["k1", "k2", "k3"]);
  });
});

Deno.test("Store.importEntries reports a failing source with the record it was reading", async () => {
  using store = new Store();
  let cancelled = false;
  let sent = 0;
  const source = new ReadableStream<unknown>({
    pull(controller) {
      if (sent === 3) throw new Error("disk on fire");
      controller.enqueue({ group: "g", key: `k${sent++}`, value: "v" });
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(store.importEntries(source), (error) => {
    assert.ok(error instanceof ImportError);
    assert.equal(error.record, 4);
    assert.equal(error.imported, 0);
    assert.match(error.message, /record 4: disk on fire/);
    return true;
  });
  assert.equal(store.count("g"), 0);
  assert.equal(cancelled, false); // an errored stream is not cancelled
});

Deno.test("Store.importEntries cancels its source when a record is malformed", async () => {
  using store = new Store();
  let cancelled = false;
  const source = new ReadableStream<unknown>({
    pull(controller) {
      controller.enqueue({ group: 1 });
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(store.importEntries(source), ImportError);
  assert.equal(cancelled, true);
});

Deno.test("Store.importEntries delivers each batch's events after it commits", async () => {
  using store = new Store();
  const seen: string[] = [];
  store.onChange((event: StoreEvent) => {
    seen.push(`${event.key}@${store.count("g")}`);
  });
  await store.importEntries(
    [1, 2, 3, 4, 5].map((i) => ({ group: "g", key: `k${i}`, value: "v" })),
    { batchSize: 2 },
  );
  assert.deepEqual(seen, ["k1@2", "k2@2", "k3@4", "k4@4", "k5@5"]);
});

Deno.test("Store.importEntries checks its arguments", async () => {
  using store = new Store();
  for (const batchSize of [0, 1.5, -1, 1_000_001]) {
    await assert.rejects(store.importEntries([], { batchSize }), {
      name: "RangeError",
      message: /batchSize must be an integer from 1 to 1000000/,
    });
  }
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    store.importEntries([], { batchSize: "10" as any }),
    TypeError,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    store.importEntries(42 as any),
    { name: "TypeError", message: /source must be a ReadableStream/ },
  );
  store.close();
  await assert.rejects(store.importEntries([]), StoreClosedError);
});

Deno.test("toNdjson and fromNdjson round-trip every string", async () => {
  const records = hostileRecords(1_700_000_000_000);
  // Large enough for several 64 KiB chunks.
  for (let i = 0; i < 3_000; i++) {
    records.push({
      group: "bulk",
      key: `k${i}`,
      value: "x".repeat(50),
      expiresAt: null,
    });
  }
  const bytes = new Uint8Array(
    await new Response(
      ReadableStream.from(records).pipeThrough(toNdjson()),
    ).arrayBuffer(),
  );
  const text = new TextDecoder().decode(bytes);
  assert.equal(text.split("\n").length, records.length + 1);
  assert.ok(
    text.startsWith(
      '{"group":"","key":"k0","value":"","expiresAt":1700000000000}\n',
    ),
  );
  // Fed back one byte at a time, so every line and character is split.
  const pieces = ReadableStream.from(
    (function* () {
      for (let i = 0; i < 4_000; i++) yield bytes.subarray(i, i + 1);
      yield bytes.subarray(4_000);
    })(),
  );
  assert.deepEqual(
    await Array.fromAsync(pieces.pipeThrough(fromNdjson())),
    records,
  );
});

Deno.test("fromNdjson reads CRLF, a final line without newline and a leading BOM", async () => {
  const text =
    '\uFEFF{"group":"\uFEFF","key":"k","value":"v"}\r\n{"group":"g","key":"k","value":"w","expiresAt":null}';
  const values = await Array.fromAsync(
    new Response(text).body!.pipeThrough(fromNdjson()),
  );
  assert.deepEqual(values, [
    { group: "\uFEFF", key: "k", value: "v" },
    { group: "g", key: "k", value: "w", expiresAt: null },
  ]);
});

Deno.test("fromNdjson errors with the line number of a bad line", async (t) => {
  const cases: [string, Uint8Array<ArrayBuffer>, RegExp][] = [
    [
      "not JSON",
      new TextEncoder().encode('{"a":1}\n{"a":\n'),
      /line 2 is not JSON/,
    ],
    [
      "empty",
      new TextEncoder().encode('{"a":1}\n\n{"a":1}\n'),
      /line 2 is empty/,
    ],
    [
      "not UTF-8",
      new Uint8Array([0x7b, 0x7d, 0x0a, 0x22, 0xff, 0x22, 0x0a]),
      /line 2 is not valid UTF-8/,
    ],
    [
      "too long",
      new TextEncoder().encode(`{}\n{}\n"${"x".repeat(100)}"\n`),
      /line 3 is longer than maxLineBytes \(64 bytes\)/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    await t.step(name, async () => {
      const stream = new Response(bytes).body!.pipeThrough(
        fromNdjson({ maxLineBytes: 64 }),
      );
      await assert.rejects(Array.fromAsync(stream), {
        name: "SyntaxError",
        message,
      });
    });
  }
  assert.throws(() => fromNdjson({ maxLineBytes: 0 }), RangeError);
});

Deno.test("Store.importEntries names the NDJSON line that stopped it", async () => {
  using store = new Store();
  const text = [
    '{"group":"g","key":"a","value":"1","expiresAt":null}',
    '{"group":"g","key":"b","value":"2","expiresAt":null}',
    '{"group":"g","key":"c","value":3,"expiresAt":null}',
  ].join("\n");
  await assert.rejects(
    store.importEntries(new Response(text).body!.pipeThrough(fromNdjson())),
    { name: "ImportError", message: /record 3: value must be a string/ },
  );
  await assert.rejects(
    store.importEntries(
      new Response("{}\nnope\n").body!.pipeThrough(fromNdjson()),
    ),
    (error) => error instanceof ImportError && error.record === 1,
  );
  await assert.rejects(
    store.importEntries(
      new Response('{"group":"g","key":"a","value":"1"}\nnope\n').body!
        .pipeThrough(fromNdjson()),
    ),
    (error) =>
      error instanceof ImportError && error.record === 2 &&
      /line 2 is not JSON/.test(error.message),
  );
  assert.equal(store.count("g"), 0);
});

Deno.test("Store export then import into an empty file reproduces every live row byte for byte", async () => {
  using dir = tempDir();
  const clock = new FakeClock();
  const source = dir.file("source.db");
  const target = dir.file("target.db");
  {
    using store = new Store(source, { clock: clock.fn });
    fill(store, hostileRecords(null), clock.now);
    fill(
      store,
      hostileRecords(clock.now + 5_000).map((r) => ({
        ...r,
        group: `t:${r.group}`,
      })),
      clock.now,
    );
    store.setWithTTL("expired", "k", "v", 1);
  }
  clock.advance(1);
  {
    using from = new Store(source, { clock: clock.fn });
    using to = new Store(target, { clock: clock.fn });
    const bytes = from.exportEntries().pipeThrough(toNdjson());
    const result = await to.importEntries(bytes.pipeThrough(fromNdjson()));
    assert.deepEqual(result, { imported: HOSTILE.length * 4, skipped: 0 });
  }
  const expected = rawRows(source).filter((row) =>
    !row.startsWith("65787069726564 ")
  );
  assert.equal(expected.length, HOSTILE.length * 4);
  assert.deepEqual(rawRows(target), expected);
});

Deno.test("Store.importEntries arms the expiry timer for the keys it writes", async () => {
  const clock = new FakeClock();
  using store = new Store(":memory:", { clock: clock.fn });
  const expired = nextValue<StoreEvent>(
    (fn) => store.onChange(fn),
    (event) => event.type === "expire",
  );
  await store.importEntries([
    { group: "g", key: "soon", value: "v", expiresAt: clock.now + 20 },
    { group: "g", key: "later", value: "v", expiresAt: clock.now + 60_000 },
  ]);
  clock.advance(20);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const event = await keepAlive(
    Promise.race([
      expired,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no expire event")), 5_000);
      }),
    ]),
  ).finally(() => clearTimeout(timer));
  assert.equal(event.key, "soon");
});
