import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  type QuotaConfig,
  QuotaExceededError,
  ScopedStore,
  Store,
  StoreClosedError,
  StoreError,
  type Transaction,
} from "@core/store";
import {
  brief,
  clockedStore,
  drain,
  FakeClock,
  rawQuery,
  record,
  tempDir,
} from "./_helpers.ts";

/** Asserts that `fn` throws the QuotaExceededError of one quota. */
function assertQuota(
  fn: () => unknown,
  namespace: string,
  limit: "maxKeys" | "maxGroups",
  max: number,
  op = "set value",
): void {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof QuotaExceededError, String(error));
    assert.ok(error instanceof StoreError);
    assert.equal(error.name, "QuotaExceededError");
    assert.equal(error.namespace, namespace);
    assert.equal(error.limit, limit);
    assert.equal(error.max, max);
    assert.equal(
      error.message,
      `Cannot ${op}: namespace "${namespace}" is at its ${limit} quota of ${max} ${
        limit === "maxKeys" ? "live key" : "group"
      }${max === 1 ? "" : "s"}`,
    );
    return true;
  });
}

Deno.test("ScopedStore constructor accepts letters, digits and - as a namespace", () => {
  using store = new Store();
  for (const namespace of ["a", "Z", "0", "-", "tenant-42", "ABC-def-123"]) {
    const scope = new ScopedStore(store, namespace);
    assert.equal(scope.namespace, namespace);
    assert.equal(scope.store, store);
    scope.set("g", "k", namespace);
    assert.equal(store.get(`${namespace}:g`, "k"), namespace);
  }
});

Deno.test("ScopedStore constructor rejects an invalid namespace with a TypeError naming it", async (t) => {
  using store = new Store();
  for (
    const namespace of [
      "",
      "a:b",
      "a b",
      "a_b",
      "a%",
      "a\\b",
      "a*",
      "é",
      "a\n",
      "\na",
      "a.b",
    ]
  ) {
    await t.step(JSON.stringify(namespace), () => {
      assert.throws(
        () => new ScopedStore(store, namespace),
        (error) =>
          error instanceof TypeError &&
          error.message.startsWith("Cannot create scoped store: ") &&
          error.message.includes(JSON.stringify(namespace)),
      );
    });
  }
  await t.step("a number", () => {
    assert.throws(() => new ScopedStore(store, 5 as unknown as string), {
      name: "TypeError",
      message:
        "Cannot create scoped store: namespace must match /^[A-Za-z0-9-]+$/, received number",
    });
  });
  await t.step("a store that is not a Store", () => {
    assert.throws(
      () => new ScopedStore({} as unknown as Store, "a"),
      TypeError,
    );
  });
  assert.equal(store.countAll(), 0);
});

Deno.test("ScopedStore constructor rejects a quota that is not a non-negative integer", async (t) => {
  using store = new Store();
  const bad: [string, unknown, string][] = [
    ["-1", -1, "-1"],
    ["1.5", 1.5, "1.5"],
    ["NaN", NaN, "NaN"],
    ["Infinity", Infinity, "Infinity"],
    ["-Infinity", -Infinity, "-Infinity"],
    ['"5"', "5", "string"],
    ["null", null, "null"],
  ];
  for (const field of ["maxKeys", "maxGroups"] as const) {
    for (const [name, value, received] of bad) {
      await t.step(`${field} ${name}`, () => {
        assert.throws(
          () => new ScopedStore(store, "a", { [field]: value as number }),
          {
            name: "RangeError",
            message:
              `Cannot create scoped store: quota ${field} must be a non-negative integer, received ${received}`,
          },
        );
      });
    }
  }
});

Deno.test("ScopedStore.set() stores under the prefixed group and get() and delete() read it back", () => {
  using store = new Store();
  const scope = new ScopedStore(store, "acme");
  scope.set("config", "theme", "dark");
  assert.equal(scope.get("config", "theme"), "dark");
  assert.equal(scope.exists("config", "theme"), true);
  assert.equal(scope.count("config"), 1);
  assert.equal(store.get("acme:config", "theme"), "dark");
  assert.equal(store.get("config", "theme"), undefined);
  assert.deepEqual(store.groups(), ["acme:config"]);
  assert.deepEqual(rawKeys(store), ["acme:config/theme"]);

  // Writes through the underlying store under the prefix are the scope's.
  store.set("acme:config", "lang", "en");
  assert.equal(scope.get("config", "lang"), "en");
  assert.equal(
    scope.render("{{ .theme }}/{{ .lang }}", "config"),
    "dark/en",
  );

  assert.equal(scope.delete("config", "theme"), true);
  assert.equal(scope.delete("config", "theme"), false);
  assert.equal(scope.get("config", "theme"), undefined);
  assert.equal(store.get("acme:config", "theme"), undefined);
  assert.equal(scope.exists("config", "theme"), false);

  scope.set("config", "a", "1");
  assert.equal(scope.deleteGroup("config"), 2);
  assert.equal(store.countAll(), 0);
  assert.equal(scope.deleteGroup("config"), 0);
});

function rawKeys(store: Store): string[] {
  return store.groups().flatMap((group) =>
    [...store.getAll(group).keys()].map((key) => `${group}/${key}`)
  );
}

Deno.test("ScopedStore.setWithTTL() expires by the store clock like Store.setWithTTL()", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const scope = new ScopedStore(store, "t1", { maxKeys: 10 });
  scope.setWithTTL("session", "token", "abc", 1_000);
  clock.advance(999);
  assert.equal(scope.get("session", "token"), "abc");
  assert.equal(store.get("t1:session", "token"), "abc");
  clock.advance(1);
  assert.equal(scope.exists("session", "token"), false);
  assert.equal(scope.get("session", "token"), undefined);
  assert.equal(scope.count("session"), 0);
  assert.throws(() => scope.setWithTTL("s", "k", "v", 0), RangeError);
  assert.throws(() => scope.setWithTTL("s", "k", "v", Infinity), RangeError);
  assert.equal(store.countAll(), 0);
});

Deno.test("ScopedStore keeps two namespaces from ever seeing each other's data", async (t) => {
  using store = new Store();
  await t.step("same group and key in two tenants", () => {
    const t1 = new ScopedStore(store, "t1");
    const t2 = new ScopedStore(store, "t2");
    t1.set("g", "k", "one");
    t2.set("g", "k", "two");
    assert.equal(t1.get("g", "k"), "one");
    assert.equal(t2.get("g", "k"), "two");
    assert.equal(t1.count("g"), 1);
    t1.delete("g", "k");
    assert.equal(t2.get("g", "k"), "two");
    t2.deleteGroup("g");
    assert.equal(store.countAll(), 0);
  });
  await t.step('"a", "a-b" and "ab" (and raw groups "a", "ab:x")', () => {
    const a = new ScopedStore(store, "a");
    const ab = new ScopedStore(store, "ab");
    const aDashB = new ScopedStore(store, "a-b");
    a.set("g", "k", "a");
    ab.set("g", "k", "ab");
    aDashB.set("g", "k", "a-b");
    a.set("b:g", "k", "a, group b:g");
    store.set("a", "k", "raw a");
    store.set("ab", "k", "raw ab");
    store.set("ag", "k", "raw ag");
    const views: [ScopedStore, string][] = [
      [a, "a"],
      [ab, "ab"],
      [aDashB, "a-b"],
    ];
    for (const [scope, value] of views) {
      assert.equal(scope.get("g", "k"), value);
      assert.deepEqual([...scope.getAll("g")], [["k", value]]);
    }
    assert.equal(a.countAll(), 2);
    assert.equal(ab.countAll(), 1);
    assert.equal(aDashB.countAll(), 1);
    assert.deepEqual(a.groups(), ["b:g", "g"]);
    assert.deepEqual(ab.groups(), ["g"]);
    assert.deepEqual(aDashB.groups(), ["g"]);
    // "a" + "b:g" is "a:b:g", which is not "a-b"'s or "ab"'s group "g".
    assert.equal(aDashB.get("b:g", "k"), undefined);
    assert.equal(a.deleteGroup("g"), 1);
    assert.equal(ab.get("g", "k"), "ab");
    assert.equal(aDashB.get("g", "k"), "a-b");
    assert.equal(store.get("a", "k"), "raw a");
  });
});

Deno.test("ScopedStore.getAll() returns only the scope's group", () => {
  using store = new Store();
  const scope = new ScopedStore(store, "ns");
  scope.set("g", "b", "2");
  scope.set("g", "a", "1");
  scope.set("g:sub", "c", "sub");
  scope.set("gg", "d", "gg");
  new ScopedStore(store, "other").set("g", "e", "other");
  new ScopedStore(store, "ns-x").set("g", "e", "ns-x");
  store.set("g", "f", "unscoped");
  store.set("ns", "f", "bare namespace");
  assert.deepEqual([...scope.getAll("g")], [["a", "1"], ["b", "2"]]);
  assert.deepEqual([...scope.getAll("g:sub")], [["c", "sub"]]);
  assert.equal(scope.getAll("missing").size, 0);
  assert.equal(scope.count("g"), 2);
});

Deno.test("ScopedStore methods reject a non-string argument with a TypeError and write nothing", async (t) => {
  for (const quota of [undefined, { maxKeys: 10, maxGroups: 10 }]) {
    await t.step(quota === undefined ? "no quota" : "with a quota", () => {
      using store = new Store();
      const seen = record(store);
      const scope = new ScopedStore(store, "ns", quota);
      // A raw row that a silently stringified group 1 would reach.
      store.set("ns:1", "1", "raw");
      seen.length = 0;
      const s = scope as unknown as Record<
        string,
        (...args: unknown[]) => unknown
      >;
      const cases: [string, unknown[], string][] = [
        [
          "set",
          [1, "k", "v"],
          "set value: group must be a string, received number",
        ],
        [
          "set",
          ["g", 1, "v"],
          "set value: key must be a string, received number",
        ],
        [
          "set",
          ["g", "k", 1],
          "set value: value must be a string, received number",
        ],
        [
          "set",
          [null, "k", "v"],
          "set value: group must be a string, received null",
        ],
        [
          "set",
          [["g"], "k", "v"],
          "set value: group must be a string, received array",
        ],
        [
          "setWithTTL",
          [1, "k", "v", 10],
          "set value with TTL: group must be a string, received number",
        ],
        [
          "setWithTTL",
          ["g", {}, "v", 10],
          "set value with TTL: key must be a string, received object",
        ],
        [
          "setWithTTL",
          ["g", "k", undefined, 10],
          "set value with TTL: value must be a string, received undefined",
        ],
        [
          "setWithTTL",
          ["g", "k", "v", "10"],
          "set value with TTL: ttlMs must be a number, received string",
        ],
        ["get", [1, "1"], "get value: group must be a string, received number"],
        ["get", ["1", 1], "get value: key must be a string, received number"],
        [
          "exists",
          [1, "1"],
          "check key: group must be a string, received number",
        ],
        [
          "delete",
          [1, "1"],
          "delete key: group must be a string, received number",
        ],
        [
          "deleteGroup",
          [1],
          "delete group: group must be a string, received number",
        ],
        ["count", [1], "count keys: group must be a string, received number"],
        [
          "getAll",
          [1],
          "get all values: group must be a string, received number",
        ],
        [
          "render",
          ["x", 1],
          "render template: group must be a string, received number",
        ],
        ["watch", [1, "k"], "watch: group must be a string, received number"],
        ["watch", ["g", 1], "watch: key must be a string, received number"],
        ["watch", ["*", 1], "watch: key must be a string, received number"],
      ];
      for (const [method, args, message] of cases) {
        assert.throws(
          () => s[method]!.apply(scope, args),
          { name: "TypeError", message: `Cannot ${message}` },
          `${method}(${args.map(String).join(", ")})`,
        );
      }
      assert.throws(
        () => scope.set("g", "\uD800", "v"),
        /key contains a lone surrogate/,
      );
      assert.throws(
        () => scope.transaction(5 as unknown as () => void),
        {
          name: "TypeError",
          message:
            "Cannot run transaction: fn must be a function, received number",
        },
      );
      assert.deepEqual(rawKeys(store), ["ns:1/1"]);
      assert.equal(store.get("ns:1", "1"), "raw");
      assert.deepEqual(seen, []);
    });
  }
});

Deno.test("ScopedStore.set() refuses a new key when maxKeys live keys exist", async (t) => {
  using store = new Store();
  const seen = record(store);
  const scope = new ScopedStore(store, "acme", { maxKeys: 5 });
  await t.step("the first five keys, across groups, are stored", () => {
    for (let i = 0; i < 5; i++) scope.set(`g${i % 2}`, `k${i}`, `${i}`);
    assert.equal(scope.countAll(), 5);
    seen.length = 0;
  });
  await t.step("the sixth is refused with the quota's fields", () => {
    assertQuota(() => scope.set("g0", "k5", "5"), "acme", "maxKeys", 5);
    assertQuota(
      () => scope.setWithTTL("g0", "k5", "5", 1_000),
      "acme",
      "maxKeys",
      5,
      "set value with TTL",
    );
    assertQuota(() => scope.set("new-group", "k", "v"), "acme", "maxKeys", 5);
  });
  await t.step("nothing was written and no event was emitted", () => {
    assert.equal(store.get("acme:g0", "k5"), undefined);
    assert.equal(store.exists("acme:new-group", "k"), false);
    assert.equal(store.countAll(), 5);
    assert.equal(store.countAll("acme:"), 5);
    assert.deepEqual(scope.groups(), ["g0", "g1"]);
    assert.deepEqual(seen, []);
  });
  await t.step("another namespace has its own quota", () => {
    const other = new ScopedStore(store, "acme-2", { maxKeys: 5 });
    for (let i = 0; i < 5; i++) other.set("g0", `k${i}`, `${i}`);
    assertQuota(() => other.set("g0", "k5", "5"), "acme-2", "maxKeys", 5);
    // A second view of "acme" sees the same five keys.
    assertQuota(
      () => new ScopedStore(store, "acme", { maxKeys: 5 }).set("x", "y", "z"),
      "acme",
      "maxKeys",
      5,
    );
    // A view without the quota is not limited by it.
    new ScopedStore(store, "acme").set("g0", "k5", "5");
    assert.equal(scope.countAll(), 6);
    assertQuota(() => scope.set("g0", "k6", "6"), "acme", "maxKeys", 5);
    // Over its quota, the namespace may still overwrite its live keys.
    scope.set("g0", "k0", "still an overwrite");
    assert.equal(scope.get("g0", "k0"), "still an overwrite");
  });
});

Deno.test("ScopedStore.set() overwrites a live key without counting it against the quota", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const seen = record(store);
  const scope = new ScopedStore(store, "acme", { maxKeys: 2, maxGroups: 1 });
  scope.set("g", "a", "1");
  scope.set("g", "b", "1");
  for (let i = 2; i < 5; i++) {
    scope.set("g", "a", `${i}`);
    scope.setWithTTL("g", "b", `${i}`, 1_000);
  }
  assert.equal(scope.get("g", "a"), "4");
  assert.equal(scope.get("g", "b"), "4");
  assert.equal(scope.countAll(), 2);
  assert.equal(seen.length, 8);
  assertQuota(() => scope.set("g", "c", "x"), "acme", "maxKeys", 2);
});

Deno.test("ScopedStore.set() stays within maxKeys after delete and re-insert", async (t) => {
  using store = new Store();
  const scope = new ScopedStore(store, "acme", { maxKeys: 3 });
  await t.step("delete one key, then insert a new one", () => {
    scope.set("g", "a", "1");
    scope.set("g", "b", "2");
    scope.set("h", "c", "3");
    assert.equal(scope.delete("g", "a"), true);
    scope.set("g", "d", "4");
    assertQuota(() => scope.set("g", "e", "5"), "acme", "maxKeys", 3);
  });
  await t.step("delete and re-insert the same key, many times", () => {
    for (let i = 0; i < 10; i++) {
      scope.delete("g", "b");
      scope.set("g", "b", `${i}`);
    }
    assert.equal(scope.countAll(), 3);
  });
  await t.step("deleteGroup frees every key of the group", () => {
    assert.equal(scope.deleteGroup("g"), 2);
    scope.set("x", "1", "1");
    scope.set("y", "2", "2");
    assertQuota(() => scope.set("z", "3", "3"), "acme", "maxKeys", 3);
    assert.deepEqual(scope.groups(), ["h", "x", "y"]);
  });
});

Deno.test("ScopedStore.set() refuses a new group when maxGroups groups hold live keys", async (t) => {
  using store = new Store();
  const seen = record(store);
  const scope = new ScopedStore(store, "acme", { maxGroups: 3 });
  await t.step("three groups are stored", () => {
    scope.set("a", "k", "1");
    scope.set("b", "k", "1");
    scope.setWithTTL("c", "k", "1", 60_000);
  });
  await t.step("a fourth group is refused and nothing is written", () => {
    seen.length = 0;
    assertQuota(() => scope.set("d", "k", "1"), "acme", "maxGroups", 3);
    assertQuota(
      () => scope.setWithTTL("d", "k", "1", 10),
      "acme",
      "maxGroups",
      3,
      "set value with TTL",
    );
    assert.equal(store.exists("acme:d", "k"), false);
    assert.deepEqual(scope.groups(), ["a", "b", "c"]);
    assert.deepEqual(seen, []);
  });
  await t.step("more keys in an existing group are fine", () => {
    for (let i = 0; i < 50; i++) scope.set("b", `k${i}`, `${i}`);
    scope.setWithTTL("c", "more", "x", 60_000);
    assert.equal(scope.countAll(), 54);
  });
  await t.step("other namespaces' groups do not count", () => {
    store.set("acme-x:d", "k", "1");
    store.set("acmex:e", "k", "1");
    store.set("acme", "k", "1");
    assertQuota(() => scope.set("d", "k", "1"), "acme", "maxGroups", 3);
  });
  await t.step("a group emptied by deletes frees its slot", () => {
    assert.equal(scope.delete("a", "k"), true);
    scope.set("d", "k", "1");
    assertQuota(() => scope.set("a", "k", "1"), "acme", "maxGroups", 3);
    assert.deepEqual(scope.groups(), ["b", "c", "d"]);
  });
});

Deno.test("ScopedStore treats a zero or absent quota as unlimited", async (t) => {
  const quotas: [string, ConstructorParameters<typeof ScopedStore>[2]][] = [
    ["no quota argument", undefined],
    ["an empty quota", {}],
    ["both zero", { maxKeys: 0, maxGroups: 0 }],
    ["maxKeys zero, maxGroups absent", { maxKeys: 0 }],
  ];
  for (const [name, quota] of quotas) {
    await t.step(name, () => {
      using store = new Store();
      const scope = new ScopedStore(store, "acme", quota);
      scope.transaction((tx) => {
        for (let i = 0; i < 1_000; i++) tx.set(`g${i % 100}`, `k${i}`, "v");
      });
      scope.set("one-more", "k", "v");
      scope.setWithTTL("and-more", "k", "v", 1_000);
      assert.equal(scope.countAll(), 1_002);
      assert.equal(scope.groups().length, 102);
    });
  }
  await t.step("zero maxKeys with a maxGroups still limits groups", () => {
    using store = new Store();
    const scope = new ScopedStore(store, "acme", { maxKeys: 0, maxGroups: 2 });
    for (let i = 0; i < 500; i++) scope.set(`g${i % 2}`, `k${i}`, "v");
    assertQuota(() => scope.set("g2", "k", "v"), "acme", "maxGroups", 2);
  });
  await t.step("zero maxGroups with a maxKeys still limits keys", () => {
    using store = new Store();
    const scope = new ScopedStore(store, "acme", { maxKeys: 2, maxGroups: 0 });
    scope.set("g0", "k", "v");
    scope.set("g1", "k", "v");
    assertQuota(() => scope.set("g2", "k", "v"), "acme", "maxKeys", 2);
  });
});

Deno.test("ScopedStore.set() does not count expired keys against the quota", async (t) => {
  await t.step("maxKeys", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    const scope = new ScopedStore(store, "acme", { maxKeys: 3 });
    scope.setWithTTL("g", "a", "1", 10);
    scope.setWithTTL("g", "b", "1", 20);
    scope.set("g", "c", "1");
    assertQuota(() => scope.set("g", "d", "1"), "acme", "maxKeys", 3);
    clock.advance(10);
    // "a" has expired; its row is still in the table (no purge, no read).
    scope.set("g", "d", "1");
    assertQuota(() => scope.set("g", "e", "1"), "acme", "maxKeys", 3);
    clock.advance(10);
    // "b" expired, row still present: re-setting it is a new key again.
    scope.set("g", "b", "again");
    assertQuota(() => scope.set("g", "a", "1"), "acme", "maxKeys", 3);
    assert.equal(scope.countAll(), 3);
  });
  await t.step("maxKeys with expired rows left in the table", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    const scope = new ScopedStore(store, "acme", { maxKeys: 2 });
    scope.setWithTTL("g", "a", "1", 10);
    scope.setWithTTL("g", "b", "1", 10);
    clock.advance(10);
    // No read, no purge: both rows are still stored but expired.
    scope.set("g", "c", "1");
    scope.set("g", "a", "re-set expired key");
    assertQuota(() => scope.set("g", "b", "1"), "acme", "maxKeys", 2);
    assert.equal(scope.countAll(), 2);
  });
  await t.step("maxGroups", () => {
    const clock = new FakeClock();
    using store = clockedStore(clock);
    const scope = new ScopedStore(store, "acme", { maxGroups: 2 });
    scope.setWithTTL("a", "k", "1", 10);
    scope.set("b", "k", "1");
    assertQuota(() => scope.set("c", "k", "1"), "acme", "maxGroups", 2);
    clock.advance(10);
    scope.set("c", "k", "1");
    // "a" holds only an expired row, so writing to it adds a group.
    assertQuota(() => scope.set("a", "k2", "1"), "acme", "maxGroups", 2);
    assert.deepEqual(scope.groups(), ["b", "c"]);
  });
});

Deno.test("ScopedStore.countAll() counts the live keys of its namespace only", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const a = new ScopedStore(store, "a");
  const ab = new ScopedStore(store, "a-b");
  const b = new ScopedStore(store, "b");
  a.set("x", "1", "v");
  a.set("x", "2", "v");
  a.set("y", "1", "v");
  a.setWithTTL("y", "2", "v", 10);
  ab.set("x", "1", "v");
  b.set("x", "1", "v");
  b.setWithTTL("x", "2", "v", 10);
  store.set("a", "1", "bare");
  store.set("ab:x", "1", "v");
  store.set("a;", "1", "just past the prefix");
  assert.equal(a.countAll(), 4);
  assert.equal(ab.countAll(), 1);
  assert.equal(b.countAll(), 2);
  assert.equal(new ScopedStore(store, "c").countAll(), 0);
  clock.advance(10);
  assert.equal(a.countAll(), 3);
  assert.equal(b.countAll(), 1);
  assert.equal(store.countAll(), 8);
});

Deno.test("ScopedStore.groups() lists its groups distinct, ascending and without the prefix", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const scope = new ScopedStore(store, "ns");
  for (const group of ["b", "a", "B", "", "a:b", "😀", "～", "b"]) {
    scope.set(group, "k1", "v");
    scope.set(group, "k2", "v");
  }
  scope.setWithTTL("expired", "k", "v", 10);
  scope.setWithTTL("a", "k3", "v", 10);
  new ScopedStore(store, "ns-2").set("c", "k", "v");
  new ScopedStore(store, "nsx").set("d", "k", "v");
  store.set("ns", "k", "bare");
  clock.advance(10);
  assert.deepEqual(scope.groups(), ["", "B", "a", "a:b", "b", "～", "😀"]);
  assert.equal(scope.countAll(), 14);
  assert.deepEqual(new ScopedStore(store, "ns-2").groups(), ["c"]);
  assert.deepEqual(new ScopedStore(store, "empty").groups(), []);
});

Deno.test("ScopedStore keeps group names with %, _ and \\ inside its namespace", () => {
  using store = new Store();
  const a = new ScopedStore(store, "a", { maxKeys: 4, maxGroups: 4 });
  const b = new ScopedStore(store, "b", { maxKeys: 4, maxGroups: 4 });
  const ax = new ScopedStore(store, "ax");
  for (const group of ["%", "_", "\\", "x%y"]) a.set(group, "k", `a${group}`);
  for (const group of ["%", "_", "\\", "%%"]) b.set(group, "k", `b${group}`);
  for (const group of ["%", "x", "ab"]) ax.set(group, "k", `ax${group}`);
  store.set("a%", "k", "raw");
  store.set("a_", "k", "raw");
  store.set("a:%x", "k", "raw, in a's namespace");
  assert.deepEqual(a.groups(), ["%", "%x", "\\", "_", "x%y"]);
  assert.deepEqual(b.groups(), ["%", "%%", "\\", "_"]);
  assert.deepEqual(ax.groups(), ["%", "ab", "x"]);
  assert.equal(a.countAll(), 5);
  assert.equal(b.countAll(), 4);
  assert.deepEqual([...a.getAll("%")], [["k", "a%"]]);
  assert.deepEqual([...b.getAll("_")], [["k", "b_"]]);
  assert.equal(a.count("_"), 1);
  assert.equal(b.get("%", "k"), "b%");
  assert.equal(a.deleteGroup("%"), 1);
  assert.equal(b.get("%", "k"), "b%");
  assert.equal(ax.get("%", "k"), "ax%");
  assert.equal(store.get("a:%x", "k"), "raw, in a's namespace");
  // b is at both quotas; a's and ax's writes do not change that.
  assertQuota(() => b.set("%_", "k", "v"), "b", "maxKeys", 4);
  assert.equal(b.delete("%%", "k"), true);
  b.set("\\", "k2", "v");
  assertQuota(() => b.set("%_", "k", "v"), "b", "maxKeys", 4);
});

Deno.test("ScopedStore.transaction() counts the transaction's own writes against the quota", async (t) => {
  await t.step("a refused write rolls back the whole transaction", () => {
    using store = new Store();
    const seen = record(store);
    const scope = new ScopedStore(store, "acme", { maxKeys: 3 });
    scope.set("g", "existing", "1");
    seen.length = 0;
    assertQuota(
      () =>
        scope.transaction((tx) => {
          tx.set("g", "a", "1");
          tx.setWithTTL("h", "b", "2", 1_000);
          assert.equal(tx.count("g"), 2);
          assert.equal(tx.get("h", "b"), "2");
          tx.set("g", "a", "overwrite is free");
          tx.set("g", "c", "3");
        }),
      "acme",
      "maxKeys",
      3,
    );
    assert.deepEqual(rawKeys(store), ["acme:g/existing"]);
    assert.deepEqual(seen, []);
  });
  await t.step("a refused write caught inside commits the rest", () => {
    using store = new Store();
    const seen = record(store);
    const scope = new ScopedStore(store, "acme", { maxKeys: 2 });
    const result = scope.transaction((tx) => {
      tx.set("g", "a", "1");
      tx.set("g", "b", "2");
      assertQuota(() => tx.set("g", "c", "3"), "acme", "maxKeys", 2);
      assert.equal(tx.exists("g", "c"), false);
      assert.equal(tx.delete("g", "a"), true);
      tx.set("g", "d", "4");
      return tx.count("g");
    });
    assert.equal(result, 2);
    assert.deepEqual([...scope.getAll("g")], [["b", "2"], ["d", "4"]]);
    assert.deepEqual(seen, [
      "set acme:g/a=1",
      "set acme:g/b=2",
      "delete acme:g/a",
      "set acme:g/d=4",
    ]);
  });
  await t.step("maxGroups counts groups created in the transaction", () => {
    using store = new Store();
    const scope = new ScopedStore(store, "acme", { maxGroups: 2 });
    scope.set("a", "k", "1");
    assertQuota(
      () =>
        scope.transaction((tx) => {
          tx.set("b", "k", "1");
          tx.set("b", "k2", "1");
          tx.set("c", "k", "1");
        }),
      "acme",
      "maxGroups",
      2,
    );
    assert.deepEqual(scope.groups(), ["a"]);
    scope.transaction((tx) => {
      assert.equal(tx.deleteGroup("a"), 1);
      tx.set("b", "k", "1");
      tx.set("c", "k", "1");
    });
    assert.deepEqual(scope.groups(), ["b", "c"]);
  });
  await t.step("the transaction works on prefixed groups", () => {
    using store = new Store();
    const scope = new ScopedStore(store, "acme");
    store.set("g", "k", "unscoped");
    const value = scope.transaction((tx) => {
      tx.set("g", "k", "scoped");
      return [tx.get("g", "k"), [...tx.getAll("g")]];
    });
    assert.deepEqual(value, ["scoped", [["k", "scoped"]]]);
    assert.equal(store.get("acme:g", "k"), "scoped");
    assert.equal(store.get("g", "k"), "unscoped");
  });
  await t.step("the transaction object dies when fn returns", () => {
    using store = new Store();
    const scope = new ScopedStore(store, "acme", { maxKeys: 5 });
    let leaked: Transaction | undefined;
    scope.transaction((tx) => {
      leaked = tx;
    });
    assert.throws(
      () => leaked?.set("g", "k", "v"),
      (error) =>
        error instanceof StoreError &&
        /Cannot use transaction/.test(error.message),
    );
    assert.equal(store.countAll(), 0);
  });
  await t.step("transactions do not nest", () => {
    using store = new Store();
    const scope = new ScopedStore(store, "acme", { maxKeys: 5 });
    assert.throws(
      () => store.transaction(() => scope.transaction(() => {})),
      (error) =>
        error instanceof StoreError && /do not nest/.test(error.message),
    );
    assert.throws(
      () => scope.transaction(() => scope.transaction(() => {})),
      (error) =>
        error instanceof StoreError && /do not nest/.test(error.message),
    );
  });
  await t.step("a scoped write inside Store.transaction() joins it", () => {
    using store = new Store();
    const scope = new ScopedStore(store, "acme", { maxKeys: 1 });
    assertQuota(
      () =>
        store.transaction((tx) => {
          tx.set("plain", "k", "v");
          scope.set("g", "a", "1");
          scope.set("g", "b", "2");
        }),
      "acme",
      "maxKeys",
      1,
    );
    assert.equal(store.countAll(), 0);
  });
});

Deno.test("ScopedStore.watch() receives this namespace's events only, with the prefixed group", async (t) => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const a = new ScopedStore(store, "a", { maxKeys: 100 });
  const others = [
    new ScopedStore(store, "a-b"),
    new ScopedStore(store, "ab"),
    new ScopedStore(store, "b"),
  ];
  const write = () => {
    for (const other of others) {
      other.set("g", "k", "v");
      other.set("h", "k", "v");
    }
    store.set("a", "k", "bare");
    store.set("g", "k", "unscoped");
    a.set("g", "k", "1");
    a.set("g", "other", "2");
    a.setWithTTL("h", "k", "3", 5);
    store.set("a:g", "k", "raw but in the namespace");
    a.delete("g", "other");
    a.deleteGroup("g");
    clock.advance(5);
    a.get("h", "k");
  };
  await t.step(
    'watch("g", "k"), ("g", "*"), ("*", "k") and ("*", "*")',
    async () => {
      const one = a.watch("g", "k");
      const group = a.watch("g", "*");
      const key = a.watch("*", "k");
      const all = a.watch("*", "*");
      write();
      assert.deepEqual((await drain(store, one)).map(brief), [
        "set a:g/k=1",
        "set a:g/k=raw but in the namespace",
      ]);
      assert.deepEqual((await drain(store, group)).map(brief), [
        "set a:g/k=1",
        "set a:g/other=2",
        "set a:g/k=raw but in the namespace",
        "delete a:g/other",
        "delete_group a:g/",
      ]);
      assert.deepEqual((await drain(store, key)).map(brief), [
        "set a:g/k=1",
        "set a:h/k=3",
        "set a:g/k=raw but in the namespace",
        "expire a:h/k",
      ]);
      assert.deepEqual((await drain(store, all)).map(brief), [
        "set a:g/k=1",
        "set a:g/other=2",
        "set a:h/k=3",
        "set a:g/k=raw but in the namespace",
        "delete a:g/other",
        "delete_group a:g/",
        "expire a:h/k",
      ]);
    },
  );
  await t.step("an event has the full group and the value", async () => {
    const watcher = a.watch("*", "*");
    a.setWithTTL("g", "k", "v", 1_000);
    const [event] = await drain(store, watcher);
    assert.deepEqual({ ...event }, {
      type: "set",
      group: "a:g",
      key: "k",
      value: "v",
      expiresAt: clock.now + 1_000,
      timestamp: clock.now,
      origin: "local",
    });
  });
  await t.step("a refused write reaches no watcher", async () => {
    const small = new ScopedStore(store, "small", { maxKeys: 1 });
    const watcher = small.watch("*", "*");
    small.set("g", "a", "1");
    assertQuota(() => small.set("g", "b", "2"), "small", "maxKeys", 1);
    assert.deepEqual((await drain(store, watcher)).map(brief), [
      "set small:g/a=1",
    ]);
  });
  await t.step("closing the store ends a scoped watcher", async () => {
    using local = new Store();
    const watcher = new ScopedStore(local, "a").watch("*", "*");
    local.close();
    assert.deepEqual(await Array.fromAsync(watcher), []);
    assert.throws(
      () => new ScopedStore(local, "a").watch("*", "*"),
      StoreClosedError,
    );
  });
});

Deno.test("ScopedStore.onChange() calls back for this namespace's events only", () => {
  using store = new Store();
  const a = new ScopedStore(store, "a", { maxKeys: 2 });
  const seen: string[] = [];
  const off = a.onChange((event) => seen.push(brief(event)));
  new ScopedStore(store, "a-b").set("g", "k", "v");
  new ScopedStore(store, "ab").set("g", "k", "v");
  store.set("a", "k", "bare");
  store.set("b:a:g", "k", "v");
  a.set("g", "k", "v");
  a.transaction((tx) => {
    tx.set("h", "k", "v");
    assertQuota(() => tx.set("h", "k2", "v"), "a", "maxKeys", 2);
  });
  store.set("a:x", "k", "raw in the namespace");
  a.deleteGroup("g");
  off();
  off();
  a.set("h", "k", "after off");
  assert.deepEqual(seen, [
    "set a:g/k=v",
    "set a:h/k=v",
    "set a:x/k=raw in the namespace",
    "delete_group a:g/",
  ]);
  assert.throws(
    () => a.onChange(5 as unknown as () => void),
    TypeError,
  );
});

Deno.test("ScopedStore methods throw StoreClosedError after the store is closed", async (t) => {
  const quotas: [string, QuotaConfig][] = [
    ["without a quota", {}],
    ["with a quota", { maxKeys: 5, maxGroups: 5 }],
  ];
  for (const [name, quota] of quotas) {
    await t.step(name, () => {
      const store = new Store();
      const scope = new ScopedStore(store, "a", quota);
      scope.set("g", "k", "v");
      store.close();
      const calls: [string, string, () => unknown][] = [
        ["get", "get value", () => scope.get("g", "k")],
        ["set", "set value", () => scope.set("g", "k", "v")],
        ["set a new key", "set value", () => scope.set("g", "new", "v")],
        [
          "setWithTTL",
          "set value with TTL",
          () => scope.setWithTTL("g", "k", "v", 1),
        ],
        ["delete", "delete key", () => scope.delete("g", "k")],
        ["deleteGroup", "delete group", () => scope.deleteGroup("g")],
        ["count", "count keys", () => scope.count("g")],
        ["countAll", "count all keys", () => scope.countAll()],
        ["groups", "list groups", () => scope.groups()],
        ["getAll", "get all values", () => scope.getAll("g")],
        ["render", "render template", () => scope.render("x", "g")],
        ["exists", "check key", () => scope.exists("g", "k")],
        ["transaction", "run transaction", () => scope.transaction(() => {})],
        ["watch", "watch", () => scope.watch("g", "k")],
        ["watch *", "watch", () => scope.watch("*", "*")],
        [
          "onChange",
          "register change callback",
          () => scope.onChange(() => {}),
        ],
      ];
      const wrong: string[] = [];
      for (const [method, op, call] of calls) {
        try {
          call();
          wrong.push(`${method}: did not throw`);
        } catch (error) {
          if (
            !(error instanceof StoreClosedError) ||
            error.message !== `Cannot ${op}: the store is closed`
          ) {
            wrong.push(`${method}: ${error}`);
          }
        }
      }
      assert.deepEqual(wrong, []);
    });
  }
});

interface WorkerResult {
  ok: boolean;
  stored: number;
  refused: number;
  errors: string[];
}

Deno.test("ScopedStore enforces maxKeys across Workers writing one file", async () => {
  using dir = tempDir();
  const path = dir.file("quota.db");
  new Store(path).close();
  const maxKeys = 50;
  const perWorker = 100;
  const ids = ["w1", "w2"];
  const workers = ids.map(() =>
    new Worker(
      new URL("./fixtures/scope_writer_worker.ts", import.meta.url),
      { type: "module" },
    )
  );
  try {
    const barrier = new SharedArrayBuffer(4);
    const results = await Promise.all(
      workers.map((worker, i) =>
        new Promise<WorkerResult>((resolve, reject) => {
          worker.onmessage = (event) => resolve(event.data);
          worker.onerror = (event) => {
            event.preventDefault();
            reject(new Error(event.message));
          };
          // The workers open their stores, meet at the barrier, then race.
          worker.postMessage({
            path,
            id: ids[i],
            namespace: "tenant",
            maxKeys,
            count: perWorker,
            barrier,
            workers: ids.length,
          });
        })
      ),
    );

    for (const result of results) {
      assert.deepEqual(result.errors, []);
      assert.equal(result.ok, true);
      assert.equal(result.stored + result.refused, perWorker);
    }
    const stored = results.reduce((sum, r) => sum + r.stored, 0);
    const refused = results.reduce((sum, r) => sum + r.refused, 0);
    assert.equal(stored, maxKeys);
    assert.equal(refused, ids.length * perWorker - maxKeys);

    using store = new Store(path);
    const scope = new ScopedStore(store, "tenant");
    assert.equal(scope.countAll(), maxKeys);
    assert.equal(store.countAll(), maxKeys);
    results.forEach((result, i) => {
      const [row] = rawQuery(
        path,
        "SELECT count(*) AS n FROM entries WHERE entry_key LIKE ?",
        `${ids[i]}:%`,
      );
      assert.equal(row?.n, result.stored, ids[i]);
    });
  } finally {
    for (const worker of workers) worker.terminate();
  }
});

Deno.test("ScopedStore quotas recover from counts that drifted through INSERT OR REPLACE by hand", () => {
  using dir = tempDir();
  const path = dir.file("replace.db");
  new Store(path).close();
  const shell = new DatabaseSync(path);
  // A REPLACE fires no delete trigger, so each one counts the key again.
  for (let i = 0; i < 3; i++) {
    shell.exec(
      `INSERT OR REPLACE INTO entries (group_name, entry_key, entry_value) VALUES ('acme:cfg', 'theme', 'v${i}')`,
    );
  }
  shell.close();
  using store = new Store(path);
  const acme = new ScopedStore(store, "acme", { maxKeys: 2, maxGroups: 1 });
  assert.equal(acme.countAll(), 1);
  acme.set("cfg", "lang", "en");
  assert.equal(acme.countAll(), 2);
  assert.throws(() => acme.set("cfg", "third", "x"), QuotaExceededError);
});
