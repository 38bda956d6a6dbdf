/**
 * Broken clocks (property 4): a `clock` option that returns NaN, Infinity,
 * a string or nothing, or throws, gives clear errors and alters nothing,
 * in the caller's operations and in the background purge.
 */
import assert from "node:assert/strict";
import { Store } from "@core/store";
import {
  catchReportedErrors,
  populated,
  refuses,
  tempDir,
} from "./_helpers.ts";

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

Deno.test("Store with a clock that returns NaN gives clear errors and alters nothing", async (t) => {
  using dir = tempDir();
  for (const [name, broken, expected] of BROKEN_CLOCKS) {
    await t.step(
      `a clock that returns ${name}`.replace("returns a clock that ", ""),
      () => {
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
      },
    );
  }
});

Deno.test("Store's background purge skips a clock that turns NaN instead of crashing the process", async () => {
  let reported: unknown[];
  {
    using catcher = catchReportedErrors();
    reported = catcher.errors;
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
  }
  assert.deepEqual(
    reported.map((e) => (e instanceof Error ? e.message : String(e))),
    [],
    "the background purge sent errors to reportError(), which ends a Deno process",
  );
});
