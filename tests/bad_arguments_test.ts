/**
 * Bad arguments (property 4): every method refuses a value of the wrong type
 * or range with a TypeError or RangeError naming the parameter, and writes
 * nothing.
 */
import assert from "node:assert/strict";
import { ScopedStore, Store } from "@core/store";
import {
  FakeClock,
  type Populated,
  populated,
  refuses,
  tempDir,
} from "./_helpers.ts";

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
    ["increment(group)", () => store.increment(b, "k"), "group"],
    ["increment(key)", () => store.increment("g", b, 1, 10), "key"],
    ["setIfAbsent(key)", () => store.setIfAbsent("g", b, "v"), "key"],
    ["setIfAbsent(value)", () => store.setIfAbsent("g", "new", b), "value"],
    [
      "compareAndSet(expected)",
      () => store.compareAndSet("g", "k", b, "v"),
      "expected",
    ],
    [
      "compareAndSet(value)",
      () => store.compareAndSet("g", "k", undefined, b),
      "value",
    ],
    [
      "compareAndDelete(expected)",
      () => store.compareAndDelete("g", "k", b),
      "expected",
    ],
    ["getAndDelete(key)", () => store.getAndDelete("g", b), "key"],
    ["scoped increment(key)", () => scope.increment("x", b), "key"],
    [
      "scoped setIfAbsent(value)",
      () => scope.setIfAbsent("x", "new", b, 5),
      "value",
    ],
    [
      "scoped compareAndSet(value)",
      () => scope.compareAndSet("x", "a", undefined, b),
      "value",
    ],
    [
      "tx.getAndDelete(group)",
      () => store.transaction((tx) => tx.getAndDelete(b, "k")),
      "group",
    ],
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

/**
 * Asserts that every string parameter refuses `bad` with a TypeError whose
 * message `message(param)` matches, and that nothing was written.
 */
function everyStringParameterRefuses(
  fixture: Populated,
  path: string,
  bad: unknown,
  label: string,
  message: (param: string) => RegExp,
): void {
  for (
    const [call, fn, param] of stringTakers(fixture.store, fixture.scope, bad)
  ) {
    refuses(
      fixture,
      path,
      fn,
      (e) => e instanceof TypeError && message(param).test(e.message),
      `${call} with ${label}`,
    );
  }
}

/** `[label, the type the message names, the value]`. */
const NOT_STRINGS: [string, string, unknown][] = [
  ["1", "number", 1],
  ["NaN", "number", NaN],
  ["null", "null", null],
  ["{}", "object", {}],
  ['["g"]', "array", ["g"]],
  ["true", "boolean", true],
  ["1n", "bigint", 1n],
  ['Symbol("g")', "symbol", Symbol("g")],
  ['new String("g")', "object", new String("g")],
  ["an object whose toString() throws", "object", {
    toString() {
      throw new Error("toString must not be called");
    },
  }],
  ["a function", "function", () => "g"],
];

Deno.test("Store and ScopedStore methods throw TypeError for numbers, null and objects where strings belong, and write nothing", async (t) => {
  using dir = tempDir();
  const path = dir.file("types.db");
  using fixture = populated(path);
  for (const [label, type, bad] of NOT_STRINGS) {
    await t.step(`every string parameter refuses ${label}`, () => {
      everyStringParameterRefuses(
        fixture,
        path,
        bad,
        label,
        (param) =>
          new RegExp(
            `^Cannot [A-Za-z ]+: ${param} must be a string, received ${type}$`,
          ),
      );
    });
  }
  const { store } = fixture;
  await t.step("options, callbacks and paths of the wrong type", () => {
    const typeError = (message?: RegExp) => (e: unknown) =>
      e instanceof TypeError && (message?.test(e.message) ?? true);
    const cases: [string, () => unknown, (e: unknown) => boolean][] = [
      [
        "list(cursor)",
        () => store.list("g", { cursor: 5 as never }),
        typeError(/cursor must be a string/),
      ],
      [
        "countAll(prefix)",
        () => store.countAll(5 as never),
        typeError(/prefix must be a string/),
      ],
      [
        "groups(prefix)",
        () => store.groups(null as never),
        typeError(/prefix must be a string/),
      ],
      [
        "list(reverse)",
        () => store.list("g", { reverse: "yes" as never }),
        typeError(/reverse must be a boolean/),
      ],
      ["backup(path)", () => store.backup(5 as never), typeError()],
      ["transaction(fn)", () => store.transaction(5 as never), typeError()],
      ["onChange(fn)", () => store.onChange("fn" as never), typeError()],
      [
        "render(missingKey)",
        () => store.render("{{ .k }}", "g", { missingKey: "ignore" as never }),
        (e) => e instanceof RangeError,
      ],
    ];
    for (const [call, fn, expected] of cases) {
      refuses(fixture, path, fn, expected, call);
    }
  });
  await t.step("the Store and ScopedStore constructors", () => {
    for (const path of [1, null, {}, "", ["a.db"]]) {
      assert.throws(() => new Store(path as never), TypeError, String(path));
    }
    assert.throws(() => new ScopedStore({} as never, "t"), TypeError);
    assert.throws(() => new ScopedStore(store, 5 as never), TypeError);
    assert.throws(() => new ScopedStore(store, "t", 5 as never), TypeError);
  });
});

Deno.test("Store and ScopedStore methods refuse lone surrogates with TypeError and write nothing", async (t) => {
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
    await t.step(
      `every string parameter refuses ${JSON.stringify(lone)}`,
      () => {
        everyStringParameterRefuses(
          fixture,
          path,
          lone,
          JSON.stringify(lone),
          (param) =>
            new RegExp(`${param} contains a lone surrogate at index \\d+`),
        );
      },
    );
  }
  await t.step("countAll(prefix) and list(cursor)", () => {
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

Deno.test("Store and ScopedStore refuse negative, NaN and infinite TTLs, quotas and options, and write nothing", async (t) => {
  using dir = tempDir();
  const path = dir.file("ttl.db");
  using fixture = populated(path);
  const { store, scope } = fixture;
  await t.step("TTLs of setWithTTL() and expire()", () => {
    for (const [ttl, kind] of BAD_TTLS) {
      const ms = ttl as number;
      const calls: [string, () => unknown][] = [
        ["setWithTTL", () => store.setWithTTL("g", "k", "v", ms)],
        ["scoped setWithTTL", () => scope.setWithTTL("x", "a", "v", ms)],
        [
          "tx.setWithTTL",
          () => store.transaction((tx) => tx.setWithTTL("g", "n", "v", ms)),
        ],
      ];
      if (ttl !== null) {
        calls.push(["expire", () => store.expire("g", "k", ms)]);
      }
      if (ttl !== null && ttl !== undefined) {
        calls.push(
          ["increment", () => store.increment("g", "n", 1, ms)],
          ["setIfAbsent", () => store.setIfAbsent("g", "n", "v", ms)],
          ["compareAndSet", () => store.compareAndSet("g", "k", "v", "w", ms)],
          ["scoped increment", () => scope.increment("x", "n", 1, ms)],
        );
      }
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
  });
  await t.step("deltas of increment()", () => {
    const bad: [unknown, typeof TypeError | typeof RangeError][] = [
      ["1", TypeError],
      [null, TypeError],
      [1n, TypeError],
      [1.5, RangeError],
      [NaN, RangeError],
      [Infinity, RangeError],
      [2 ** 53, RangeError],
      [-(2 ** 53), RangeError],
    ];
    for (const [delta, kind] of bad) {
      const d = delta as number;
      const calls: [string, () => unknown][] = [
        ["increment", () => store.increment("g", "n", d)],
        ["scoped increment", () => scope.increment("x", "n", d)],
        [
          "tx.increment",
          () => store.transaction((tx) => tx.increment("g", "n", d)),
        ],
      ];
      for (const [call, fn] of calls) {
        refuses(
          fixture,
          path,
          fn,
          (e) => e instanceof kind && /delta/.test((e as Error).message),
          `${call}(${String(delta)})`,
        );
      }
    }
  });
  await t.step("ScopedStore quotas", () => {
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
  });
  await t.step("Store options", () => {
    for (
      const value of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, "5", null]
    ) {
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
    assert.throws(
      () => new Store(":memory:", { durability: "FULL" as never }),
      TypeError,
    );
    assert.throws(
      () => new Store(":memory:", { clock: 5 as never }),
      TypeError,
    );
  });
  await t.step("list() limits", () => {
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
  });
  await t.step("the store is still fully usable", () => {
    store.setWithTTL("g", "ok", "v", 0.5);
    assert.equal(store.ttl("g", "ok"), 1);
  });
});

Deno.test("Store.setWithTTL() rounds a fractional TTL up: the key lives until its TTL has passed", () => {
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
