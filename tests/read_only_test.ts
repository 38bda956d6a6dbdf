/**
 * Honest with every input: a store opened read-only reads a file (or a
 * backup) without changing a byte of it and refuses writes naming the mode;
 * a path that is a directory or lies in a missing folder says so. The file
 * modes themselves (chmod 0444, a read-only folder) bind only non-root
 * users: tests/reliability/reliability_permissions_suite.ts runs those as
 * one.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { main } from "@core/store/cli";
import { ScopedStore, Store, StoreError, toAsync } from "@core/store";
import { FakeClock, tempDir } from "./_helpers.ts";

function writeStore(path: string, clock: FakeClock): void {
  using store = new Store(path, { clock: clock.fn, purgeIntervalMs: 0 });
  store.set("config", "theme", "dark");
  store.set("config", "lang", "en");
  store.setWithTTL("config", "session", "abc", 1_000);
  store.set("t1:users", "ada", "admin");
}

/**
 * Every file in `dir` with a hash of its bytes. Reading a WAL file makes
 * SQLite create its `-shm` and `-wal` sidecars when missing (empty of
 * frames); they are left out.
 */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of Deno.readDirSync(dir)) {
    if (/-(shm|wal)$/.test(entry.name)) continue;
    let hash = 2166136261;
    for (const byte of Deno.readFileSync(`${dir}/${entry.name}`)) {
      hash = Math.imul(hash ^ byte, 16777619);
    }
    files.set(entry.name, (hash >>> 0).toString(16));
  }
  return files;
}

const READ_ONLY = (error: unknown) =>
  error instanceof StoreError && /is open read-only \(readOnly option\)$/
    .test(error.message);

Deno.test("Store with readOnly: true reads a file and changes none of its bytes", async (t) => {
  using dir = tempDir();
  const path = dir.file("app.db");
  const clock = new FakeClock();
  writeStore(path, clock);
  clock.advance(5_000); // the session key has expired
  const before = snapshot(dir.path);
  {
    using store = new Store(path, { readOnly: true, clock: clock.fn });
    await t.step(
      "reads see the live keys; an expired one is passed over",
      async () => {
        assert.equal(store.readOnly, true);
        assert.equal(store.get("config", "theme"), "dark");
        assert.equal(store.get("config", "session"), undefined);
        assert.equal(store.ttl("config", "session"), undefined);
        assert.deepEqual(
          [...store.getAll("config")],
          [["lang", "en"], ["theme", "dark"]],
        );
        assert.deepEqual(store.list("config", { limit: 1 }).entries, [[
          "lang",
          "en",
        ]]);
        assert.equal(store.count("config"), 2);
        assert.equal(store.countAll(), 3);
        assert.deepEqual(store.groups(), ["config", "t1:users"]);
        assert.equal(store.exists("config", "lang"), true);
        assert.equal(store.render("{{ .theme }}", "config"), "dark");
        const exported = await Array.fromAsync(store.exportEntries());
        assert.equal(exported.length, 3);
        const tenant = new ScopedStore(store, "t1");
        assert.equal(tenant.get("users", "ada"), "admin");
        const async = toAsync(store);
        assert.equal(await async.get("config", "lang"), "en");
      },
    );
    await t.step(
      "every write throws a StoreError naming the operation and the mode",
      async () => {
        const writes: [string, () => unknown][] = [
          ["set value", () => store.set("config", "theme", "light")],
          [
            "set value with TTL",
            () => store.setWithTTL("config", "x", "y", 10),
          ],
          ["delete key", () => store.delete("config", "theme")],
          ["delete group", () => store.deleteGroup("config")],
          ["set expiry", () => store.expire("config", "theme", 10)],
          ["purge expired keys", () => store.purgeExpired()],
          [
            "run transaction",
            () => store.transaction((tx) => tx.get("a", "b")),
          ],
          ["disable the change feed", () => store.disableChangeFeed()],
          ["set value", () => new ScopedStore(store, "t1").set("u", "k", "v")],
        ];
        for (const [op, write] of writes) {
          assert.throws(write, (error: unknown) => {
            assert.ok(READ_ONLY(error), String(error));
            assert.match(
              (error as Error).message,
              new RegExp(`^Cannot ${op}: `),
            );
            assert.ok((error as Error).message.includes(path));
            return true;
          });
        }
        await assert.rejects(
          () => store.importEntries([{ group: "g", key: "k", value: "v" }]),
          READ_ONLY,
        );
        await assert.rejects(
          () => toAsync(store).set("g", "k", "v"),
          READ_ONLY,
        );
      },
    );
    await t.step("a backup of it opens as a store", () => {
      const copy = `${dir.path}-copy.db`;
      try {
        store.backup(copy);
        using opened = new Store(copy, { readOnly: true });
        assert.equal(opened.get("config", "theme"), "dark");
      } finally {
        Deno.removeSync(copy);
      }
    });
  }
  assert.deepEqual(snapshot(dir.path), before, "a byte of the folder changed");
});

Deno.test("Store with readOnly: true reads both go-store formats without migrating them", async (t) => {
  using dir = tempDir();
  const columns = (g: string, k: string, v: string, expiry: boolean) =>
    `${g} TEXT NOT NULL, ${k} TEXT NOT NULL, ${v} TEXT NOT NULL${
      expiry ? ", expires_at INTEGER" : ""
    }, PRIMARY KEY (${g}, ${k})`;
  const cases: [string, string[], [string, string][]][] = [
    ["kv only (go-store up to v0.2.0)", [
      `CREATE TABLE kv (${columns("grp", "key", "value", true)})`,
      "INSERT INTO kv VALUES ('g', 'a', '1', NULL)",
    ], [["a", "1"]]],
    ["entries only (go-store v0.2.1 and later)", [
      `CREATE TABLE entries (${
        columns("group_name", "entry_key", "entry_value", true)
      })`,
      "INSERT INTO entries VALUES ('g', 'a', '1', NULL), ('g', 'x', 'gone', 1)",
    ], [["a", "1"]]],
    ["kv beside entries: read merged, entries winning, as go-store merges", [
      `CREATE TABLE kv (${columns("grp", "key", "value", true)})`,
      "INSERT INTO kv VALUES ('g', 'a', 'kv', NULL), ('g', 'b', 'kv', NULL)",
      `CREATE TABLE entries (${
        columns("group_name", "entry_key", "entry_value", true)
      })`,
      "INSERT INTO entries VALUES ('g', 'b', 'entries', NULL)",
    ], [["a", "kv"], ["b", "entries"]]],
    ["kv without expires_at (written before expiry support)", [
      `CREATE TABLE kv (${columns("grp", "key", "value", false)})`,
      "INSERT INTO kv VALUES ('g', 'a', '1')",
    ], [["a", "1"]]],
  ];
  for (const [i, [name, sql, expected]] of cases.entries()) {
    await t.step(name, async () => {
      const path = dir.file(`format-${i}.db`);
      const db = new DatabaseSync(path);
      for (const statement of sql) db.exec(statement);
      db.close();
      const before = snapshot(dir.path);
      {
        using store = new Store(path, { readOnly: true });
        assert.deepEqual([...store.getAll("g")], expected);
        assert.deepEqual(store.list("g").entries, expected);
        assert.equal(store.get("g", "a"), expected[0]?.[1]);
        const exported = await Array.fromAsync(store.exportEntries());
        assert.deepEqual(
          exported.map((r) => [r.key, r.value]).sort(),
          expected,
        );
      }
      assert.deepEqual(snapshot(dir.path), before, "the file changed");
    });
  }
});

Deno.test("Store with readOnly refuses what it cannot honour", () => {
  using dir = tempDir();
  const path = dir.file("app.db");
  assert.throws(
    () => new Store(path, { readOnly: true }),
    (error: unknown) =>
      error instanceof StoreError &&
      error.message ===
        `Cannot open store at ${path}: the file ${path} does not exist`,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "it created a file");
  assert.throws(
    () => new Store(":memory:", { readOnly: true }),
    TypeError,
  );
  Deno.writeFileSync(path, new Uint8Array());
  assert.throws(
    () => new Store(path, { readOnly: true, changeFeed: true }),
    /^TypeError: Cannot open store: readOnly excludes changeFeed/,
  );
  assert.throws(
    () => new Store(path, { readOnly: true }),
    /holds no store table \(kv or entries\), and a read-only store cannot create one/,
  );
  assert.throws(
    () => new Store(path, { readOnly: "yes" as unknown as boolean }),
    /^TypeError: Cannot open store: readOnly must be a boolean, received string$/,
  );
  using store = new Store(path);
  assert.equal(store.readOnly, false);
});

Deno.test("Store constructor says when the path is a directory or its folder is missing", () => {
  using dir = tempDir();
  assert.throws(
    () => new Store(dir.path),
    (error: unknown) =>
      error instanceof StoreError &&
      error.message ===
        `Cannot open store at ${dir.path}: ${dir.path} is a directory`,
  );
  const missing = `${dir.path}/no/such/app.db`;
  assert.throws(
    () => new Store(missing),
    (error: unknown) =>
      error instanceof StoreError &&
      error.message ===
        `Cannot open store at ${missing}: the folder ${dir.path}/no/such does not exist`,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test("the CLI's get, list, count, stats and export open the file read-only", async () => {
  using dir = tempDir();
  const path = dir.file("app.db");
  const clock = new FakeClock(Date.now() - 10_000);
  writeStore(path, clock); // its session key expired 9 s ago
  const before = snapshot(dir.path);
  const run = async (...args: string[]) => {
    let out = "";
    const stdout = new WritableStream<Uint8Array>({
      write(chunk) {
        out += new TextDecoder().decode(chunk);
      },
    });
    const stderr = new WritableStream<Uint8Array>();
    const code = await main(args, { stdout, stderr });
    return { code, out };
  };
  assert.deepEqual(await run("get", path, "config", "theme"), {
    code: 0,
    out: "dark\n",
  });
  assert.equal((await run("get", path, "config", "session")).code, 1);
  assert.equal((await run("list", path, "config")).code, 0);
  assert.deepEqual(await run("count", path), { code: 0, out: "3\n" });
  const stats = await run("stats", path);
  assert.equal(JSON.parse(stats.out).expired, 1);
  const exported = await run("export", path);
  assert.equal(exported.out.trim().split("\n").length, 3);
  assert.deepEqual(
    snapshot(dir.path),
    before,
    "a read command changed the file",
  );
});
