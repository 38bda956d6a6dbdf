// go-store's two file formats, driven here by a plain SQLite connection that
// runs the statements go-store runs (tests/go/ runs them from real Go).
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  QuotaExceededError,
  ScopedStore,
  Store,
  StoreError,
  type StoreEvent,
} from "@core/store";
import { keepAlive, rawQuery, tempDir } from "./_helpers.ts";

const KV_TABLE = `CREATE TABLE IF NOT EXISTS kv (
  grp TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  expires_at INTEGER, PRIMARY KEY (grp, key))`;
const ENTRIES_TABLE = `CREATE TABLE IF NOT EXISTS entries (
  group_name TEXT NOT NULL, entry_key TEXT NOT NULL, entry_value TEXT NOT NULL,
  expires_at INTEGER, PRIMARY KEY (group_name, entry_key))`;

/** What go-store v0.2.1 and later do on opening a file that has `kv`. */
function goMigrate(db: DatabaseSync): void {
  db.exec("BEGIN");
  db.exec(ENTRIES_TABLE);
  db.exec(
    `INSERT OR IGNORE INTO entries (group_name, entry_key, entry_value, expires_at)
     SELECT grp, key, value, expires_at FROM kv`,
  );
  db.exec("DROP TABLE kv");
  db.exec("COMMIT");
}

function raw(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 5000");
  return db;
}

function tables(path: string): string[] {
  return rawQuery(
    path,
    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
  ).map((row) => String(row.name));
}

function objectsOn(path: string, table: string): string[] {
  return rawQuery(
    path,
    "SELECT name FROM sqlite_schema WHERE tbl_name = ? AND type IN ('trigger', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    table,
  ).map((row) => String(row.name));
}

/** Resolves once `done()` holds; rejects after 5 s. */
function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  return keepAlive(
    new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (done()) resolve();
        else if (Date.now() > deadline) reject(new Error("timed out"));
        else return;
        clearInterval(timer);
      }, 5);
    }),
  );
}

const stats = (path: string) =>
  rawQuery(path, "SELECT ns, keys, groups FROM kv_namespace_stats ORDER BY ns");

Deno.test("Store creates a new file in go-store's entries format", () => {
  using dir = tempDir();
  const path = dir.file("new.db");
  {
    using store = new Store(path, { changeFeed: true, purgeIntervalMs: 0 });
    store.set("g", "k", "v");
  }
  assert.deepEqual(tables(path), [
    "entries",
    "kv_changes",
    "kv_changes_config",
    "kv_namespace_stats",
  ]);
  assert.deepEqual(
    rawQuery(path, "SELECT group_name, entry_key, entry_value FROM entries"),
    [{ group_name: "g", entry_key: "k", entry_value: "v" }],
  );
  assert.deepEqual(objectsOn(path, "entries"), [
    "entries_changes_delete",
    "entries_changes_insert",
    "entries_changes_update",
    "entries_expires_at",
    "entries_namespace_delete",
    "entries_namespace_insert",
    "entries_namespace_rename_new",
    "entries_namespace_rename_old",
  ]);
});

Deno.test("Store keeps a kv file in the kv format, readable by go-store v0.2.0", () => {
  using dir = tempDir();
  const path = dir.file("old.db");
  const db = raw(path);
  db.exec(KV_TABLE);
  db.exec("INSERT INTO kv VALUES ('ns:g', 'k', 'from v0.2.0', NULL)");
  db.close();
  {
    using store = new Store(path, { purgeIntervalMs: 0 });
    assert.equal(store.get("ns:g", "k"), "from v0.2.0");
    store.set("ns:g", "k2", "from deno");
  }
  assert.deepEqual(tables(path), ["kv", "kv_namespace_stats"]);
  assert.deepEqual(
    rawQuery(path, "SELECT key, value FROM kv ORDER BY key"),
    [{ key: "k", value: "from v0.2.0" }, { key: "k2", value: "from deno" }],
  );
  assert.deepEqual(stats(path), [{ ns: "ns", keys: 2, groups: 1 }]);
});

Deno.test("Store merges kv into entries when a file has both, entries winning, in one transaction", () => {
  using dir = tempDir();
  const path = dir.file("both.db");
  const db = raw(path);
  db.exec(ENTRIES_TABLE);
  db.exec(KV_TABLE);
  db.exec("INSERT INTO entries VALUES ('ns:g', 'a', 'entries wins', NULL)");
  db.exec("INSERT INTO kv VALUES ('ns:g', 'a', 'kv loses', NULL)");
  db.exec("INSERT INTO kv VALUES ('ns:g', 'b', 'only in kv', 4102444800000)");
  db.prepare("INSERT INTO kv VALUES ('ns:h', 'c', ?, NULL)").run("x\0y");
  db.close();
  using store = new Store(path, { purgeIntervalMs: 0 });
  assert.deepEqual(tables(path), ["entries", "kv_namespace_stats"]);
  assert.deepEqual([...store.getAll("ns:g")], [["a", "entries wins"], [
    "b",
    "only in kv",
  ]]);
  assert.deepEqual(
    rawQuery(path, "SELECT expires_at FROM entries WHERE entry_key = 'b'"),
    [{ expires_at: 4102444800000 }],
  );
  assert.equal(store.get("ns:h", "c"), "x\0y");
  assert.deepEqual(stats(path), [{ ns: "ns", keys: 3, groups: 2 }]);
});

Deno.test("Store refuses a file whose entries table has another shape", () => {
  using dir = tempDir();
  const path = dir.file("bad.db");
  const db = raw(path);
  db.exec("CREATE TABLE entries (id INTEGER PRIMARY KEY, body TEXT)");
  db.close();
  const before = Deno.readFileSync(path);
  assert.throws(
    () => new Store(path),
    (error) =>
      error instanceof StoreError &&
      /table entries has no column group_name/.test(error.message),
  );
  assert.deepEqual(Deno.readFileSync(path), before);
});

Deno.test("Store writes once the connection it waited for has changed the schema", async (t) => {
  // The holder of the lock commits a schema change, so the waiting
  // statement must be compiled again; SQLite's silent re-preparation is
  // refused by the store's authorizer, and the store must prepare it anew
  // rather than fail with "not authorized".
  const writes: [string, (store: Store) => unknown, unknown][] = [
    ["set", (s) => s.set("g", "k", "2"), undefined],
    ["setWithTTL", (s) => s.setWithTTL("g", "k", "2", 60_000), undefined],
    ["delete", (s) => s.delete("g", "k"), true],
    ["increment", (s) => s.increment("g", "n", 2), 2],
    ["setIfAbsent", (s) => s.setIfAbsent("g", "n", "2"), true],
    ["compareAndSet", (s) => s.compareAndSet("g", "k", "1", "2"), true],
    ["compareAndDelete", (s) => s.compareAndDelete("g", "k", "1"), true],
    ["getAndDelete", (s) => s.getAndDelete("g", "k"), "1"],
    ["expire", (s) => s.expire("g", "k", 60_000), true],
    [
      "transaction",
      (s) => s.transaction((tx) => tx.set("g", "k", "2")),
      undefined,
    ],
  ];
  for (const [name, write, expected] of writes) {
    await t.step(name, async () => {
      using dir = tempDir();
      const path = dir.file("changed.db");
      using store = new Store(path, { purgeIntervalMs: 0 });
      store.set("g", "k", "1");
      const worker = new Worker(
        new URL("./fixtures/schema_change_worker.ts", import.meta.url),
        { type: "module" },
      );
      try {
        const messages: string[] = [];
        const committed = new Promise<void>((resolve, reject) => {
          worker.onmessage = (e: MessageEvent<string>) => {
            messages.push(e.data);
            if (e.data === "committed") resolve();
          };
          worker.onerror = (e) => {
            e.preventDefault();
            reject(new Error(e.message));
          };
        });
        const locked = new Promise<void>((resolve) => {
          const wait = () =>
            messages.includes("locked") ? resolve() : setTimeout(wait, 1);
          wait();
        });
        worker.postMessage({ path, holdMs: 50 });
        await locked;
        assert.equal(write(store), expected);
        await committed;
      } finally {
        worker.terminate();
      }
      assert.deepEqual(
        rawQuery(
          path,
          "SELECT name FROM sqlite_schema WHERE name = 'unrelated'",
        ),
        [{ name: "unrelated" }],
      );
    });
  }
});

Deno.test("Store follows its rows when go-store moves kv into entries underneath it", async (t) => {
  using dir = tempDir();
  const path = dir.file("moved.db");
  const db = raw(path);
  db.exec(KV_TABLE);
  db.close();
  using store = new Store(path, { purgeIntervalMs: 0 });
  const acme = new ScopedStore(store, "acme", { maxKeys: 3 });
  acme.set("cfg", "a", "1");
  acme.set("cfg", "b", "2");
  store.set("plain", "k", "before");

  const go = raw(path);
  goMigrate(go);
  assert.deepEqual(tables(path), ["entries", "kv_namespace_stats"]);

  await t.step("reads find the moved rows, not an empty store", () => {
    assert.equal(store.get("plain", "k"), "before");
    assert.equal(store.countAll(), 3);
    assert.deepEqual(store.groups(), ["acme:cfg", "plain"]);
  });
  await t.step("the triggers and counts are back on entries", () => {
    assert.deepEqual(objectsOn(path, "entries"), [
      "entries_expires_at",
      "entries_namespace_delete",
      "entries_namespace_insert",
      "entries_namespace_rename_new",
      "entries_namespace_rename_old",
    ]);
    // A row go-store wrote before the triggers were back is counted.
    go.exec("INSERT INTO entries VALUES ('acme:cfg', 'c', '3', NULL)");
    store.set("plain", "k", "after");
    assert.throws(() => acme.set("cfg", "d", "4"), QuotaExceededError);
    assert.deepEqual(stats(path), [{ ns: "acme", keys: 3, groups: 1 }]);
  });
  await t.step("writes land in entries", () => {
    assert.deepEqual(
      rawQuery(
        path,
        "SELECT entry_value FROM entries WHERE group_name = 'plain'",
      ),
      [{ entry_value: "after" }],
    );
  });
  go.close();
});

Deno.test("Store's first write after the move runs on entries, inside a transaction too", () => {
  using dir = tempDir();
  const path = dir.file("tx.db");
  const db = raw(path);
  db.exec(KV_TABLE);
  db.exec("INSERT INTO kv VALUES ('g', 'old', 'v', NULL)");
  db.close();
  using store = new Store(path, { purgeIntervalMs: 0 });
  assert.equal(store.get("g", "old"), "v");
  const go = raw(path);
  goMigrate(go);
  go.close();
  store.transaction((tx) => {
    tx.set("g", "new", "written after the move");
    assert.equal(tx.get("g", "old"), "v");
  });
  assert.deepEqual(
    rawQuery(path, "SELECT entry_key FROM entries ORDER BY entry_key"),
    [{ entry_key: "new" }, { entry_key: "old" }],
  );
});

Deno.test("Store never reads the empty kv table an older go-store creates after the move", () => {
  using dir = tempDir();
  const path = dir.file("again.db");
  const db = raw(path);
  db.exec(KV_TABLE);
  db.close();
  using store = new Store(path, { purgeIntervalMs: 0 });
  store.set("g", "k", "kept");
  const go = raw(path);
  goMigrate(go);
  // go-store v0.2.0 opening the file now creates kv again and writes to it.
  go.exec(KV_TABLE);
  go.exec("INSERT INTO kv VALUES ('g', 'v020', 'from v0.2.0', NULL)");
  go.close();
  assert.equal(store.get("g", "k"), "kept");
  // The two tables are merged as go-store v0.2.1+ would on opening.
  assert.deepEqual([...store.getAll("g")], [["k", "kept"], [
    "v020",
    "from v0.2.0",
  ]]);
  assert.deepEqual(tables(path), ["entries", "kv_namespace_stats"]);
});

Deno.test("Store fails with a clear StoreError when its table is dropped outright", () => {
  using dir = tempDir();
  const path = dir.file("dropped.db");
  using store = new Store(path, { purgeIntervalMs: 0 });
  store.set("g", "k", "v");
  const other = raw(path);
  other.exec("DROP TABLE entries");
  other.close();
  assert.throws(
    () => store.get("g", "k"),
    (error) =>
      error instanceof StoreError &&
      error.message.startsWith("Cannot get value: ") &&
      /data table \(kv or entries\) was dropped/.test(error.message),
  );
});

Deno.test("Store with changeFeed hears writes to entries after go-store moved kv", async () => {
  using dir = tempDir();
  const path = dir.file("feed.db");
  const db = raw(path);
  db.exec(KV_TABLE);
  db.close();
  using store = new Store(path, {
    changeFeed: true,
    changePollMs: 5,
    purgeIntervalMs: 0,
  });
  store.set("g", "before", "1");
  const go = raw(path);
  goMigrate(go);
  // The poll notices the move and puts the log's triggers on entries.
  await until(() =>
    objectsOn(path, "entries").includes("entries_changes_insert")
  );
  const heard = keepAlive(
    new Promise<StoreEvent>((resolve) => {
      const off = store.onChange((event) => {
        off();
        resolve(event);
      });
    }),
  );
  go.exec("INSERT INTO entries VALUES ('g', 'after', 'from go', NULL)");
  go.close();
  const event = await heard;
  assert.deepEqual(
    [event.origin, event.type, event.group, event.key, event.value],
    ["remote", "set", "g", "after", "from go"],
  );
  // The log carried on across the move: seqs keep counting up.
  assert.equal(event.seq, 2);
});
