/**
 * The conformance suite of {@linkcode AsyncStore}: the same cases for every
 * backend (`toAsync(new Store())` in `local_test.ts`, `EtcdStore` in
 * `tests/etcd/`). Argument errors are compared with the local synchronous
 * store's, type and message.
 */

import assert from "node:assert/strict";
import { eventStreamResponse } from "@core/store/sse";
import {
  AsyncScopedStore,
  type AsyncStore,
  QuotaExceededError,
  ScopedStore,
  Store,
  StoreClosedError,
  StoreError,
  type StoreEvent,
  TemplateError,
} from "@core/store";
import { FakeClock, frameEvent, sameError, SseReader } from "../_helpers.ts";
import { atomicConformance } from "./atomic_cases.ts";

/** Opens a fresh, empty store of one backend on a fake clock. */
export type OpenStore = (clock: FakeClock) => Promise<AsyncStore>;

/** What a backend's suite runs with. */
export interface Backend {
  readonly name: string;
  readonly open: OpenStore;
  /** Deno.test options, such as the sanitizers a backend needs off. */
  readonly testOptions?: Partial<Deno.TestDefinition>;
}

function record(store: { onChange(fn: (e: StoreEvent) => void): () => void }) {
  const events: StoreEvent[] = [];
  const off = store.onChange((event) => events.push(event));
  return { events, off };
}

function brief(events: StoreEvent[]): string[] {
  return events.map((e) =>
    `${e.type} ${e.group}/${e.key}${e.value === undefined ? "" : `=${e.value}`}`
  );
}

/**
 * Registers the suite for one backend.
 *
 * @param backend How to open its stores.
 */
export function conformance(backend: Backend): void {
  const test = (
    name: string,
    fn: (store: AsyncStore, clock: FakeClock) => Promise<void>,
  ) =>
    Deno.test({
      name: `${backend.name}: ${name}`,
      ...backend.testOptions,
      fn: async () => {
        const clock = new FakeClock();
        const store = await backend.open(clock);
        try {
          await fn(store, clock);
        } finally {
          await store.close();
        }
      },
    });

  test("set, get and overwrite round-trip any string", async (store) => {
    const odd = ["a\0b", "/x/y", "日本語", "😀", "", "key:with:colons"];
    for (const s of odd) {
      await store.set(`g${s}`, `k${s}`, `v${s}`);
      assert.equal(await store.get(`g${s}`, `k${s}`), `v${s}`);
    }
    await store.set("g", "k", "1");
    await store.set("g", "k", "2");
    assert.equal(await store.get("g", "k"), "2");
    assert.equal(await store.get("g", "missing"), undefined);
    assert.equal(await store.get("missing", "k"), undefined);
    assert.deepEqual([...await store.getAll("g\0")], []);
    assert.deepEqual([...await store.getAll("ga\0b")], [["ka\0b", "va\0b"]]);
  });

  test("TTL is exact on read by the store's clock", async (store, clock) => {
    await store.setWithTTL("s", "t", "v", 1_000);
    assert.equal(await store.ttl("s", "t"), 1_000);
    clock.advance(999);
    assert.equal(await store.get("s", "t"), "v");
    assert.equal(await store.ttl("s", "t"), 1);
    assert.equal(await store.exists("s", "t"), true);
    clock.advance(1);
    assert.equal(await store.exists("s", "t"), false);
    assert.equal(await store.ttl("s", "t"), undefined);
    assert.equal(await store.get("s", "t"), undefined);
    await store.set("s", "forever", "v");
    assert.equal(await store.ttl("s", "forever"), Infinity);
    assert.equal(await store.ttl("s", "missing"), undefined);
  });

  test(
    "expire sets and clears an expiry of live keys only",
    async (store, clock) => {
      await store.setWithTTL("s", "k", "v", 100);
      assert.equal(await store.expire("s", "k", 1_000), true);
      clock.advance(500);
      assert.equal(await store.get("s", "k"), "v");
      assert.equal(await store.expire("s", "k", null), true);
      assert.equal(await store.ttl("s", "k"), Infinity);
      assert.equal(await store.expire("s", "missing", 10), false);
    },
  );

  test("delete and deleteGroup report what they removed", async (store) => {
    await store.set("g", "a", "1");
    await store.set("g", "b", "2");
    await store.set("h", "a", "3");
    assert.equal(await store.delete("g", "a"), true);
    assert.equal(await store.delete("g", "a"), false);
    assert.equal(await store.deleteGroup("g"), 1);
    assert.equal(await store.deleteGroup("g"), 0);
    assert.equal(await store.count("g"), 0);
    assert.equal(await store.get("h", "a"), "3");
  });

  test(
    "getAll, count and list walk keys in code point order",
    async (store, clock) => {
      const keys = ["b", "a", "\u{1F600}", "\uFFFF", "a\0", "ab"];
      for (const key of keys) await store.set("g", key, key);
      await store.setWithTTL("g", "gone", "x", 10);
      clock.advance(10);
      const sorted = ["a", "a\0", "ab", "b", "\uFFFF", "\u{1F600}"];
      assert.deepEqual([...(await store.getAll("g")).keys()], sorted);
      assert.equal(await store.count("g"), 6);
      const first = await store.list("g", { limit: 2 });
      assert.deepEqual(first.entries.map(([k]) => k), ["a", "a\0"]);
      const second = await store.list("g", { limit: 2, cursor: first.cursor });
      assert.deepEqual(second.entries.map(([k]) => k), ["ab", "b"]);
      const last = await store.list("g", { limit: 5, cursor: second.cursor });
      assert.equal(last.cursor, undefined);
      assert.equal(last.entries.length, 2);
      const back = await store.list("g", { prefix: "a", reverse: true });
      assert.deepEqual(back.entries.map(([k]) => k), ["ab", "a\0", "a"]);
    },
  );

  test(
    "countAll and groups take a literal group prefix",
    async (store, clock) => {
      await store.set("a_b", "k", "1");
      await store.set("axb", "k", "2");
      await store.set("a_b:c", "k", "3");
      await store.set("b", "k", "4");
      await store.setWithTTL("a_gone", "k", "5", 10);
      clock.advance(10);
      assert.deepEqual(await store.groups("a_"), ["a_b", "a_b:c"]);
      assert.equal(await store.countAll("a_"), 2);
      assert.equal(await store.countAll(), 4);
      assert.deepEqual(await store.groups(), ["a_b", "a_b:c", "axb", "b"]);
    },
  );

  test("render runs a Go template over a group", async (store) => {
    await store.set("user", "name", "Ada");
    await store.set("user", "bio", "<b>");
    assert.equal(
      await store.render("{{ .name }} {{ .bio | html }}", "user"),
      "Ada &lt;b&gt;",
    );
    await assert.rejects(store.render("{{ .name", "user"), TemplateError);
    await assert.rejects(
      store.render("{{ .x }}", "user", { missingKey: "error" }),
      TemplateError,
    );
  });

  test("bad arguments fail as on the local store", async (store) => {
    const bad = 1 as unknown as string;
    await sameError(store.get(bad, "k"), (s) => s.get(bad, "k"));
    await sameError(store.set("g", bad, "v"), (s) => s.set("g", bad, "v"));
    await sameError(store.set("g", "k", bad), (s) => s.set("g", "k", bad));
    await sameError(
      store.set("g", "k", "\uD800"),
      (s) => s.set("g", "k", "\uD800"),
    );
    await sameError(
      store.setWithTTL("g", "k", "v", 0),
      (s) => s.setWithTTL("g", "k", "v", 0),
    );
    await sameError(
      store.setWithTTL("g", "k", "v", "1" as unknown as number),
      (s) => s.setWithTTL("g", "k", "v", "1" as unknown as number),
    );
    await sameError(store.delete("g", bad), (s) => s.delete("g", bad));
    await sameError(store.deleteGroup(bad), (s) => s.deleteGroup(bad));
    await sameError(
      store.list("g", { limit: 0 }),
      (s) => s.list("g", { limit: 0 }),
    );
    await sameError(store.countAll(bad), (s) => s.countAll(bad));
    const none = null as unknown as string;
    await sameError(store.countAll(none), (s) => s.countAll(none));
    await sameError(store.groups(none), (s) => s.groups(none));
    await sameError(
      store.render("x", "g", { missingKey: "no" as "zero" }),
      (s) => s.render("x", "g", { missingKey: "no" as "zero" }),
    );
    await sameError(store.expire("g", "k", -1), (s) => s.expire("g", "k", -1));
    assert.throws(() => store.watch(bad, "k"), TypeError);
    await assert.rejects(
      store.transaction(bad as unknown as () => void),
      TypeError,
    );
    assert.equal(await store.count("g"), 0);
  });

  test(
    "events reach callbacks and watchers, in order, before the write resolves",
    async (store, clock) => {
      const { events, off } = record(store);
      const watcher = store.watch("g", "*");
      await store.set("g", "a", "1");
      await store.setWithTTL("g", "b", "2", 10);
      await store.delete("g", "a");
      clock.advance(10);
      assert.equal(await store.get("g", "b"), undefined);
      await store.set("g", "c", "3");
      await store.set("g", "d", "4");
      await store.deleteGroup("g");
      assert.deepEqual(brief(events), [
        "set g/a=1",
        "set g/b=2",
        "delete g/a",
        "expire g/b",
        "set g/c=3",
        "set g/d=4",
        "delete_group g/",
      ]);
      off();
      for (const e of events) assert.equal(e.origin, "local");
      assert.equal(events[1]?.expiresAt, clock.now - 10 + 10);
      const seqs = events.map((e) => e.seq).filter((s) => s !== undefined);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!);
      await store.unwatch(watcher);
      const watched = await Array.fromAsync(watcher);
      assert.deepEqual(brief(watched), brief(events));
    },
  );

  test("transactions commit all or nothing and see their own writes", async (store) => {
    await store.set("t", "a", "1");
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.set("t", "b", "2");
        throw new Error("changed my mind");
      }),
      /changed my mind/,
    );
    assert.equal(await store.get("t", "b"), undefined);
    const result = await store.transaction(async (tx) => {
      await tx.set("t", "b", "2");
      assert.equal(await tx.get("t", "b"), "2");
      assert.equal(await tx.delete("t", "a"), true);
      assert.equal(await tx.exists("t", "a"), false);
      return await tx.count("t");
    });
    assert.equal(result, 1);
    assert.deepEqual([...await store.getAll("t")], [["b", "2"]]);
    const n = await store.transaction(async (tx) => {
      const removed = await tx.deleteGroup("t");
      await tx.set("t", "c", "3");
      return removed;
    });
    assert.equal(n, 1);
    assert.deepEqual([...await store.getAll("t")], [["c", "3"]]);
    let leaked: { get(g: string, k: string): Promise<unknown> } | undefined;
    await store.transaction((tx) => {
      leaked = tx;
    });
    await assert.rejects(leaked!.get("t", "c"), StoreError);
  });

  test("concurrent transactions re-run instead of losing updates", async (store) => {
    await store.set("n", "counter", "0");
    const increment = () =>
      store.transaction(async (tx) => {
        const n = Number(await tx.get("n", "counter"));
        await tx.set("n", "counter", String(n + 1));
      });
    await Promise.all(Array.from({ length: 10 }, increment));
    assert.equal(await store.get("n", "counter"), "10");
  });

  test(
    "purgeExpired removes expired keys with expire events",
    async (store, clock) => {
      await store.setWithTTL("p", "a", "1", 10);
      await store.setWithTTL("p", "b", "2", 20);
      await store.set("p", "c", "3");
      clock.advance(15);
      const { events, off } = record(store);
      assert.equal(await store.purgeExpired(), 1);
      off();
      assert.deepEqual(brief(events), ["expire p/a"]);
      assert.equal(await store.count("p"), 2);
    },
  );

  test("backup writes a file the local store opens", async (store, clock) => {
    const dir = await Deno.makeTempDir();
    try {
      await store.set("g", "k", "v\0w");
      await store.setWithTTL("g", "t", "x", 1_000);
      await store.backup(`${dir}/copy.db`);
      using copy = new Store(`${dir}/copy.db`, { clock: clock.fn });
      assert.equal(copy.get("g", "k"), "v\0w");
      assert.equal(copy.ttl("g", "t"), 1_000);
      await assert.rejects(store.backup(`${dir}/copy.db`), StoreError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  test(
    "exportEntries and importEntries move entries to and from a local store",
    async (store, clock) => {
      await store.set("app:config", "theme", "dark\0x");
      await store.setWithTTL("app:session", "s1", "ada", 500);
      await store.setWithTTL("app:gone", "k", "v", 10);
      await store.set("other", "k", "v");
      clock.advance(10);
      const records = await Array.fromAsync(
        store.exportEntries({ prefix: "app:" }),
      );
      assert.deepEqual(records, [
        {
          group: "app:config",
          key: "theme",
          value: "dark\0x",
          expiresAt: null,
        },
        {
          group: "app:session",
          key: "s1",
          value: "ada",
          expiresAt: clock.now - 10 + 500,
        },
      ]);
      // Into a local store and back, expiry exact.
      using local = new Store(":memory:", { clock: clock.fn });
      assert.deepEqual(await local.importEntries(store.exportEntries()), {
        imported: 3,
        skipped: 0,
      });
      assert.equal(local.ttl("app:session", "s1"), 490);
      local.set("from-local", "k", "v");
      local.setWithTTL("from-local", "old", "v", 1);
      const back = [...await Array.fromAsync(local.exportEntries())];
      clock.advance(1);
      assert.deepEqual(
        await store.importEntries(back, { batchSize: 2 }),
        { imported: 4, skipped: 1 },
      );
      assert.equal(await store.get("from-local", "k"), "v");
      assert.equal(await store.ttl("app:session", "s1"), 489);
      const bad = [{ group: "g", key: "k", value: "v", expiresAt: null }, {
        group: "g",
        nope: 1,
      }];
      let expected: unknown;
      await local.importEntries(bad).catch((e) => expected = e);
      await assert.rejects(store.importEntries(bad), (error: unknown) => {
        assert.equal((error as Error).name, (expected as Error).name);
        assert.equal((error as Error).message, (expected as Error).message);
        return true;
      });
      assert.throws(
        () => store.exportEntries({ prefix: 1 as unknown as string }),
        TypeError,
      );
    },
  );

  test("a closed store refuses every call", async (store) => {
    await store.close();
    await store.close();
    await assert.rejects(store.get("g", "k"), StoreClosedError);
    await assert.rejects(store.set("g", "k", "v"), StoreClosedError);
    await assert.rejects(store.transaction(() => {}), StoreClosedError);
    assert.throws(() => store.watch("g", "k"), StoreClosedError);
  });

  scopedCases(test);
  atomicConformance({
    name: backend.name,
    scoped: false,
    ...backend.testOptions && { testOptions: backend.testOptions },
    open: async (clock) => {
      const store = await backend.open(clock);
      return { target: store, prefix: "", close: () => store.close() };
    },
  });
  atomicConformance({
    name: `AsyncScopedStore(${backend.name})`,
    scoped: true,
    ...backend.testOptions && { testOptions: backend.testOptions },
    open: async (clock, quota) => {
      const store = await backend.open(clock);
      const target = new AsyncScopedStore(store, "t", quota);
      return { target, prefix: "t:", close: () => store.close() };
    },
  });
}

type Test = (
  name: string,
  fn: (store: AsyncStore, clock: FakeClock) => Promise<void>,
) => void;

/** Expects `promise` to reject as `fn` throws on a local `ScopedStore`. */
async function sameScopedError(
  promise: Promise<unknown>,
  fn: (scoped: ScopedStore) => unknown,
  closed = false,
): Promise<void> {
  await sameError(promise, (store) => {
    const scoped = new ScopedStore(store, "t", { maxKeys: 5 });
    if (closed) store.close();
    return fn(scoped);
  });
}

function scopedCases(test: Test): void {
  test("AsyncScopedStore checks arguments as ScopedStore does", async (store) => {
    const t = new AsyncScopedStore(store, "t", { maxKeys: 5 });
    const bad = 1 as unknown as string;
    await sameScopedError(t.set(bad, bad, bad), (s) => s.set(bad, bad, bad));
    await sameScopedError(t.set("g", bad, bad), (s) => s.set("g", bad, bad));
    await sameScopedError(t.set("g", "k", bad), (s) => s.set("g", "k", bad));
    await sameScopedError(
      t.setWithTTL("g", "k", "v", -1),
      (s) => s.setWithTTL("g", "k", "v", -1),
    );
    await sameScopedError(t.get("g", bad), (s) => s.get("g", bad));
    await sameScopedError(t.render(bad, bad), (s) => s.render(bad, bad));
    await sameScopedError(
      t.expire("g", "k", 0),
      (s) => s.expire("g", "k", 0),
    );
    await sameScopedError(
      t.transaction(bad as unknown as () => void),
      (s) => s.transaction(bad as unknown as () => void),
    );
    assert.throws(() => new AsyncScopedStore(store, ""), {
      name: "TypeError",
      message:
        'Cannot create scoped store: namespace must match /^[A-Za-z0-9-]+$/, received ""',
    });
    await store.close();
    await sameScopedError(t.get(bad, "k"), (s) => s.get(bad, "k"), true);
    await sameScopedError(t.countAll(), (s) => s.countAll(), true);
    assert.throws(() => t.watch("*", "*"), StoreClosedError);
  });

  test("AsyncScopedStore prefixes groups and keeps tenants apart", async (store) => {
    const acme = new AsyncScopedStore(store, "acme");
    const globex = new AsyncScopedStore(store, "globex");
    await acme.set("config", "theme", "dark");
    await globex.set("config", "theme", "light");
    assert.equal(await store.get("acme:config", "theme"), "dark");
    assert.equal(await acme.get("config", "theme"), "dark");
    assert.deepEqual(await globex.groups(), ["config"]);
    assert.equal(await acme.countAll(), 1);
    assert.throws(() => new AsyncScopedStore(store, "a:b"), TypeError);
    assert.throws(
      () => new AsyncScopedStore(store, "a", { maxKeys: -1 }),
      RangeError,
    );
  });

  test(
    "AsyncScopedStore quotas refuse new keys and groups, not overwrites",
    async (store, clock) => {
      const t = new AsyncScopedStore(store, "t", { maxKeys: 2, maxGroups: 1 });
      await t.set("g", "a", "1");
      await t.setWithTTL("g", "b", "2", 10);
      await t.delete("g", "missing");
      await t.set("g", "a", "again");
      await assert.rejects(t.set("g", "c", "3"), (error: unknown) => {
        assert.ok(error instanceof QuotaExceededError);
        assert.equal(error.limit, "maxKeys");
        assert.equal(error.max, 2);
        assert.equal(error.namespace, "t");
        assert.equal(
          error.message,
          'Cannot set value: namespace "t" is at its maxKeys quota of 2 live keys',
        );
        return true;
      });
      clock.advance(10);
      await t.set("g", "c", "3");
      assert.equal(await t.countAll(), 2);
      const groups = new AsyncScopedStore(store, "u", { maxGroups: 1 });
      await groups.set("g", "a", "1");
      await groups.set("g", "b", "1");
      await assert.rejects(
        groups.set("h", "a", "1"),
        (error: unknown) =>
          error instanceof QuotaExceededError && error.limit === "maxGroups",
      );
    },
  );

  test("AsyncScopedStore quotas hold under concurrent writers", async (store) => {
    const t = new AsyncScopedStore(store, "race", { maxKeys: 5 });
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => t.set("g", `k${i}`, "v")),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(ok, 5);
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof QuotaExceededError);
      }
    }
    assert.equal(await t.countAll(), 5);
  });

  test("AsyncScopedStore transactions count their own writes against the quota", async (store) => {
    const t = new AsyncScopedStore(store, "tx", { maxKeys: 2 });
    await assert.rejects(
      t.transaction(async (tx) => {
        await tx.set("g", "a", "1");
        await tx.set("g", "b", "2");
        await tx.set("g", "c", "3");
      }),
      QuotaExceededError,
    );
    assert.equal(await t.countAll(), 0);
    await t.transaction(async (tx) => {
      await tx.set("g", "a", "1");
      await tx.set("g", "a", "2");
    });
    assert.equal(await t.get("g", "a"), "2");
  });

  test("AsyncScopedStore watchers and callbacks see their namespace only", async (store) => {
    const t = new AsyncScopedStore(store, "w");
    const { events, off } = record(t);
    const watcher = t.watch("*", "*");
    await store.set("other:g", "k", "v");
    await t.set("g", "k", "v");
    await t.deleteGroup("g");
    off();
    assert.deepEqual(brief(events), ["set w:g/k=v", "delete_group w:g/"]);
    await store.unwatch(watcher);
    assert.deepEqual(brief(await Array.fromAsync(watcher)), brief(events));
  });

  test("watch capacity bounds a watcher's queue; prefix watches group prefixes", async (store) => {
    assert.throws(() => store.watch("g", "*", { capacity: 0 }), RangeError);
    assert.throws(
      () => store.watch("g", "*", { capacity: 65_537 }),
      RangeError,
    );
    assert.throws(
      () => store.watch("g", "*", { prefix: "yes" as unknown as boolean }),
      TypeError,
    );
    const small = store.watch("user:", "*", { prefix: true, capacity: 2 });
    const all = store.watch("user:", "*", { prefix: true });
    const scoped = new AsyncScopedStore(store, "user").watch("", "*", {
      prefix: true,
      capacity: 3,
    });
    await store.set("user:1", "k", "a");
    await store.set("team:1", "k", "no");
    await store.set("user:2", "k", "b");
    await store.deleteGroup("user:1");
    assert.deepEqual([small.capacity, all.capacity, scoped.capacity], [
      2,
      16,
      3,
    ]);
    assert.equal(small.dropped, 1);
    await store.unwatch(small);
    await store.unwatch(all);
    await store.unwatch(scoped);
    const mine = ["set user:1/k=a", "set user:2/k=b", "delete_group user:1/"];
    assert.deepEqual(brief(await Array.fromAsync(small)), mine.slice(0, 2));
    assert.deepEqual(brief(await Array.fromAsync(all)), mine);
    assert.deepEqual(brief(await Array.fromAsync(scoped)), mine);
  });

  test("eventStreamResponse streams the store's events as Server-Sent Events", async (store) => {
    await store.set("g", "before", "0");
    const response = await eventStreamResponse(store, "g", "*", {
      snapshot: true,
    });
    const sse = new SseReader(response.body!);
    await store.set("g", "k", "line\r\ndata: forged");
    const [snapshot, event] = await sse.take(2);
    assert.equal(snapshot?.event, "snapshot");
    assert.deepEqual(JSON.parse(snapshot!.data).entries, { before: "0" });
    assert.equal(event?.event, "set");
    assert.equal(frameEvent(event!).value, "line\r\ndata: forged");
    if (event?.id !== undefined) {
      // A store with positions resumes exactly after the id.
      await sse.cancel();
      await store.set("g", "k", "while away");
      const again = await eventStreamResponse(store, "g", "*", {
        lastEventId: event.id,
      });
      const resumed = new SseReader(again.body!);
      const [missed] = await resumed.take(1);
      assert.equal(frameEvent(missed!).value, "while away");
      await resumed.cancel();
    } else {
      await sse.cancel();
    }
  });
}
