import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Store, StoreError, TemplateError } from "@core/store";
import { rawQuery, tempDir } from "./_helpers.ts";

function logRows(path: string): number {
  return rawQuery(path, "SELECT count(*) AS n FROM kv_changes")[0]?.n as number;
}

Deno.test("Store keeps a file's change log within its retention whoever writes", async (t) => {
  await t.step("a store with the feed off", () => {
    using dir = tempDir();
    const path = dir.file("log.db");
    new Store(path, { changeFeed: true, changeRetention: { maxRows: 100 } })
      .close();
    using store = new Store(path, { purgeIntervalMs: 0 });
    for (let i = 0; i < 3_000; i++) store.set("g", `k${i % 50}`, `v${i}`);
    const rows = logRows(path);
    assert.ok(rows <= 100 + 64, `${rows} rows kept against a retention of 100`);
    assert.ok(rows >= 100, `${rows} rows: the newest 100 are kept`);
  });

  await t.step("another connection writing raw SQL", () => {
    using dir = tempDir();
    const path = dir.file("raw.db");
    new Store(path, { changeFeed: true, changeRetention: { maxRows: 10 } })
      .close();
    const raw = new DatabaseSync(path);
    const insert = raw.prepare(
      "INSERT OR REPLACE INTO entries (group_name, entry_key, entry_value) VALUES ('g', ?, 'v')",
    );
    for (let i = 0; i < 300; i++) insert.run(`k${i}`);
    raw.close();
    assert.ok(logRows(path) <= 10 + 64);
  });

  await t.step("seqs stay contiguous after the trigger trims", () => {
    using dir = tempDir();
    const path = dir.file("seq.db");
    using store = new Store(path, {
      changeFeed: true,
      changeRetention: { maxRows: 20 },
    });
    for (let i = 0; i < 200; i++) store.set("g", "k", `v${i}`);
    const seqs = rawQuery(path, "SELECT seq FROM kv_changes ORDER BY seq")
      .map((row) => row.seq as number);
    assert.equal(seqs.at(-1), 200);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => 200 - seqs.length + 1 + i),
    );
  });
});

Deno.test("Store.disableChangeFeed() removes the change log for good", async (t) => {
  await t.step("no writer logs afterwards", () => {
    using dir = tempDir();
    const path = dir.file("off.db");
    new Store(path, { changeFeed: true }).close();
    using store = new Store(path);
    store.set("g", "k", "before");
    store.disableChangeFeed();
    store.set("g", "k", "after");
    const tables = rawQuery(
      path,
      "SELECT name FROM sqlite_schema WHERE name LIKE 'kv_changes%'",
    );
    assert.deepEqual(tables, []);
    assert.equal(store.get("g", "k"), "after");
  });

  await t.step("a store reading the feed refuses", () => {
    using dir = tempDir();
    using store = new Store(dir.file("on.db"), { changeFeed: true });
    assert.throws(
      () => store.disableChangeFeed(),
      (error) =>
        error instanceof StoreError &&
        /changeFeed option/.test(error.message),
    );
  });
});

Deno.test("Store.transaction() of 200,000 writes with a callback returns and delivers every event", () => {
  using store = new Store(":memory:", { purgeIntervalMs: 0 });
  let delivered = 0;
  let last = "";
  store.onChange((event) => {
    delivered++;
    last = event.key;
  });
  const result = store.transaction((tx) => {
    for (let i = 0; i < 200_000; i++) tx.set("g", `k${i}`, "v");
    return "done";
  });
  assert.equal(result, "done");
  assert.equal(delivered, 200_000);
  assert.equal(last, "k199999");
  assert.equal(store.count("g"), 200_000);
});

Deno.test("Store.render() stops a runaway template with TemplateError under its budgets", async (t) => {
  using store = new Store(":memory:", { purgeIntervalMs: 0 });
  store.set("g", "a", "\\");
  for (let i = 0; i < 10; i++) store.set("r", `k${i}`, "v");

  await t.step(
    "28 chained escapers fail fast instead of exhausting memory",
    () => {
      const started = performance.now();
      assert.throws(
        () => store.render(`{{ .a${" | js".repeat(28)} }}`, "g"),
        TemplateError,
      );
      assert.ok(performance.now() - started < 2_000);
    },
  );

  await t.step("nested range over ten keys stops at the step budget", () => {
    const nested = "{{range $}}".repeat(7) + "x" + "{{end}}".repeat(7);
    assert.throws(() => store.render(nested, "r"), /step/);
  });

  await t.step(
    "the store's renderLimits apply, and a call's own override them",
    () => {
      using small = new Store(":memory:", {
        purgeIntervalMs: 0,
        renderLimits: { maxOutputBytes: 8 },
      });
      small.set("g", "k", "0123456789");
      assert.throws(() => small.render("{{ .k }}", "g"), TemplateError);
      assert.equal(
        small.render("{{ .k }}", "g", { maxOutputBytes: 64 }),
        "0123456789",
      );
      assert.throws(
        () => small.render("{{ .k }}", "g", { maxSteps: 0 }),
        RangeError,
      );
      assert.throws(
        () => new Store(":memory:", { renderLimits: { maxSteps: -1 } }),
        RangeError,
      );
    },
  );
});
