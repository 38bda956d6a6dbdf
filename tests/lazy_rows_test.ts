import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { lazyRows } from "../src/_lazy_rows.ts";
import { isSchemaChange, SchemaMovedError } from "../src/schema.ts";

Deno.test("lazyRows prepares each statement on first use, and refuses a schema that moved", async (t) => {
  await t.step("a statement is prepared once, on first access", () => {
    using db = new DatabaseSync(":memory:");
    db.exec("CREATE TABLE t (x INTEGER)");
    db.exec("INSERT INTO t VALUES (7)");
    const rows = lazyRows(db, { read: "SELECT x FROM t", bad: "SELECT nope" });
    assert.deepEqual(rows.read.all(), [[7]]);
    assert.equal(rows.read, rows.read);
    // A broken statement fails only when used.
    assert.throws(() => rows.bad, /no such column: nope/);
  });
  await t.step(
    "a first use after the schema changed throws a schema change",
    () => {
      using db = new DatabaseSync(":memory:");
      db.exec("CREATE TABLE t (x INTEGER)");
      const rows = lazyRows(db, { read: "SELECT x FROM t", other: "SELECT 1" });
      assert.deepEqual(rows.read.all(), []);
      db.exec("CREATE TABLE u (y INTEGER)");
      assert.throws(
        () => rows.other,
        (error) => error instanceof SchemaMovedError && isSchemaChange(error),
      );
      // Already prepared: its own step decides.
      assert.deepEqual(rows.read.all(), []);
    },
  );
});
