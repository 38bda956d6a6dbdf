import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { ScopedStore, Store, StoreError, type StoreEvent } from "@core/store";
import { clockedStore, FakeClock, rawQuery, tempDir } from "./_helpers.ts";

Deno.test("Store.ttl() reports the time left by the store's clock", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  store.setWithTTL("g", "k", "v", 1_000);
  store.set("g", "forever", "v");
  assert.equal(store.ttl("g", "k"), 1_000);
  clock.advance(250);
  assert.equal(store.ttl("g", "k"), 750);
  assert.equal(store.ttl("g", "forever"), Infinity);
  assert.equal(store.ttl("g", "missing"), undefined);
  assert.equal(store.ttl("missing", "k"), undefined);
  clock.advance(750);
  assert.equal(store.ttl("g", "k"), undefined);
  assert.throws(() => store.ttl("g", 1 as unknown as string), {
    name: "TypeError",
    message: "Cannot read TTL: key must be a string, received number",
  });
});

Deno.test("Store.expire() sets or clears the expiry of a live key only", async (t) => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const events: StoreEvent[] = [];
  store.onChange((event) => events.push({ ...event }));
  await t.step("extends a live key and emits set with the new expiry", () => {
    store.setWithTTL("g", "k", "v", 100);
    events.length = 0;
    clock.advance(50);
    assert.equal(store.expire("g", "k", 1_000), true);
    assert.equal(store.ttl("g", "k"), 1_000);
    assert.deepEqual(events, [{
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      expiresAt: clock.now + 1_000,
      timestamp: clock.now,
      origin: "local",
    }]);
  });
  await t.step("clears the expiry and emits set without expiresAt", () => {
    events.length = 0;
    assert.equal(store.expire("g", "k", null), true);
    assert.equal(store.ttl("g", "k"), Infinity);
    clock.advance(10_000);
    assert.equal(store.get("g", "k"), "v");
    assert.deepEqual(events, [{
      type: "set",
      group: "g",
      key: "k",
      value: "v",
      timestamp: clock.now - 10_000,
      origin: "local",
    }]);
  });
  await t.step(
    "returns false for a missing or expired key and emits nothing",
    () => {
      store.setWithTTL("g", "short", "v", 1);
      clock.advance(1);
      events.length = 0;
      assert.equal(store.expire("g", "short", 1_000), false);
      assert.equal(store.expire("g", "missing", 1_000), false);
      assert.equal(store.exists("g", "short"), false);
      assert.deepEqual(events, []);
    },
  );
  await t.step("rejects a bad TTL and changes nothing", () => {
    for (const ttl of [0, -5, NaN, Infinity]) {
      assert.throws(() => store.expire("g", "k", ttl), RangeError);
    }
    assert.throws(
      () => store.expire("g", "k", undefined as unknown as null),
      TypeError,
    );
    assert.equal(store.ttl("g", "k"), Infinity);
  });
});

Deno.test("Store.list() pages through a group in key order", async (t) => {
  using store = new Store();
  for (let i = 0; i < 250; i++) {
    store.set("g", `k${String(i).padStart(3, "0")}`, `${i}`);
  }
  store.set("other", "k000", "not in g");
  await t.step("forward, 100 per page by default", () => {
    const first = store.list("g");
    assert.equal(first.entries.length, 100);
    assert.deepEqual(first.entries[0], ["k000", "0"]);
    assert.equal(first.cursor, "k099");
    const second = store.list("g", { cursor: first.cursor });
    assert.deepEqual(second.entries[0], ["k100", "100"]);
    const third = store.list("g", { cursor: second.cursor });
    assert.equal(third.entries.length, 50);
    assert.equal(third.cursor, undefined);
  });
  await t.step("a page that ends exactly at the last key has no cursor", () => {
    const page = store.list("g", { limit: 50, cursor: "k199" });
    assert.equal(page.entries.length, 50);
    assert.equal(page.cursor, undefined);
  });
  await t.step("reverse", () => {
    const page = store.list("g", { limit: 3, reverse: true });
    assert.deepEqual(page.entries.map(([k]) => k), ["k249", "k248", "k247"]);
    const next = store.list("g", {
      limit: 3,
      reverse: true,
      cursor: page.cursor,
    });
    assert.deepEqual(next.entries.map(([k]) => k), ["k246", "k245", "k244"]);
  });
  await t.step("a literal prefix, forward and reverse", () => {
    store.set("g", "k_x", "underscore");
    store.set("g", "k%y", "percent");
    assert.deepEqual(
      store.list("g", { prefix: "k_" }).entries,
      [["k_x", "underscore"]],
    );
    assert.deepEqual(
      store.list("g", { prefix: "k24", reverse: true }).entries.map(([k]) => k),
      [
        "k249",
        "k248",
        "k247",
        "k246",
        "k245",
        "k244",
        "k243",
        "k242",
        "k241",
        "k240",
      ],
    );
  });
  await t.step("bad options are rejected", () => {
    for (const limit of [0, -1, 1.5, 10_001, NaN]) {
      assert.throws(() => store.list("g", { limit }), RangeError);
    }
    assert.throws(
      () => store.list("g", { cursor: 5 as unknown as string }),
      {
        name: "TypeError",
        message: "Cannot list keys: cursor must be a string, received number",
      },
    );
    assert.throws(
      () => store.list("g", { reverse: "yes" as unknown as boolean }),
      TypeError,
    );
  });
});

Deno.test("Store.list() skips expired keys", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  for (let i = 0; i < 10; i++) {
    if (i % 2 === 0) store.setWithTTL("g", `k${i}`, "v", 5);
    else store.set("g", `k${i}`, "v");
  }
  clock.advance(5);
  assert.deepEqual(
    store.list("g", { limit: 3 }).entries.map(([k]) => k),
    ["k1", "k3", "k5"],
  );
});

Deno.test("Store.list() sees every key present throughout exactly once while keys change between pages", () => {
  using store = new Store();
  const key = (i: number) => `key-${String(i).padStart(6, "0")}`;
  for (let i = 0; i < 10_000; i++) store.set("g", key(i * 2), `${i}`);
  const stable = new Set<string>();
  for (let i = 0; i < 10_000; i++) if (i % 7 !== 0) stable.add(key(i * 2));
  const seen = new Map<string, number>();
  let page = store.list("g", { limit: 333 });
  let round = 0;
  for (;;) {
    for (const [k] of page.entries) seen.set(k, (seen.get(k) ?? 0) + 1);
    if (page.cursor === undefined) break;
    // Between pages: insert keys around the cursor (odd numbers) and delete
    // keys that were never in the stable set, before and after the cursor.
    round++;
    for (let j = 0; j < 20; j++) {
      store.set("g", key((round * 997 + j * 13) % 20_000 | 1), "new");
      const doomed = ((round * 31 + j) * 7) % 10_000;
      if (doomed % 7 === 0) store.delete("g", key(doomed * 2));
    }
    page = store.list("g", { limit: 333, cursor: page.cursor });
  }
  for (const k of stable) assert.equal(seen.get(k), 1, k);
  for (const [k, n] of seen) assert.equal(n, 1, `${k} seen ${n} times`);
});

Deno.test("ScopedStore.list(), ttl() and expire() work inside the namespace", () => {
  const clock = new FakeClock();
  using store = clockedStore(clock);
  const tenant = new ScopedStore(store, "t1", { maxKeys: 2 });
  tenant.set("g", "a", "1");
  tenant.setWithTTL("g", "b", "2", 100);
  store.set("t2:g", "c", "other tenant");
  assert.deepEqual(tenant.list("g").entries, [["a", "1"], ["b", "2"]]);
  assert.equal(tenant.ttl("g", "b"), 100);
  assert.equal(tenant.expire("g", "b", null), true);
  assert.equal(store.ttl("t1:g", "b"), Infinity);
  assert.equal(tenant.expire("g", "c", 10), false);
});

Deno.test("Store.backup() writes a standalone copy that reopens with the same data", async (t) => {
  using dir = tempDir();
  const fill = (store: Store) => {
    for (let i = 0; i < 500; i++) store.set(`g${i % 5}`, `k${i}`, `v${i}\0x`);
    store.setWithTTL("ttl", "k", "v", 3_600_000);
  };
  const dump = (path: string) =>
    rawQuery(
      path,
      "SELECT group_name AS grp, entry_key AS key, hex(entry_value) AS value, expires_at FROM entries ORDER BY grp, key",
    );
  await t.step("of a file store", () => {
    const path = dir.file("source.db");
    using store = new Store(path);
    fill(store);
    store.backup(dir.file("file-copy.db"));
    assert.deepEqual(dump(dir.file("file-copy.db")), dump(path));
    using copy = new Store(dir.file("file-copy.db"));
    assert.equal(copy.get("g3", "k3"), "v3\0x");
    assert.equal(copy.count("g0"), 100);
  });
  await t.step("of an in-memory store", () => {
    using store = new Store();
    fill(store);
    const path = dir.file("memory-copy.db");
    store.backup(path);
    using copy = new Store(path);
    for (let g = 0; g < 5; g++) {
      assert.deepEqual([...copy.getAll(`g${g}`)], [...store.getAll(`g${g}`)]);
    }
    assert.equal(copy.ttl("ttl", "k") !== undefined, true);
    const db = new DatabaseSync(path);
    try {
      assert.equal(
        db.prepare("PRAGMA integrity_check").get()?.integrity_check,
        "ok",
      );
    } finally {
      db.close();
    }
  });
  await t.step(
    "refuses to overwrite an existing file, which stays unchanged",
    () => {
      using store = new Store();
      store.set("g", "k", "new");
      const existing = dir.file("existing.db");
      Deno.writeTextFileSync(existing, "precious");
      assert.throws(
        () => store.backup(existing),
        (error) =>
          error instanceof StoreError &&
          error.message ===
            `Cannot back up store: ${existing} already exists; a backup never overwrites a file`,
      );
      assert.equal(Deno.readTextFileSync(existing), "precious");
      assert.throws(() => store.backup(""), TypeError);
    },
  );
  await t.step("refuses inside a transaction", () => {
    using store = new Store();
    assert.throws(
      () => store.transaction(() => store.backup(dir.file("in-tx.db"))),
      StoreError,
    );
  });
});
