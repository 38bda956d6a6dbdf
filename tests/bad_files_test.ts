/**
 * Bad files (property 3): not SQLite, truncated, a `kv` table of another
 * shape, a missing directory. A read-only file needs an unprivileged user:
 * tests/reliability/reliability_permissions_suite.ts.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Store, StoreError } from "@core/store";
import { openFds, tempDir } from "./_helpers.ts";

function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

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

Deno.test("Store constructor refuses a bad file with a StoreError naming the path and leaves it byte for byte unchanged", async (t) => {
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

Deno.test("Store constructor opens an empty file as an empty store, not a bad file", () => {
  using dir = tempDir();
  const path = dir.file("empty.db");
  Deno.writeFileSync(path, new Uint8Array());
  using store = new Store(path);
  store.set("g", "k", "v");
  assert.equal(store.get("g", "k"), "v");
});
