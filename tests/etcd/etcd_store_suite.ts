/** What only the etcd store has: several instances, revisions, limits. */

import assert from "node:assert/strict";
import {
  AsyncScopedStore,
  QuotaExceededError,
  StoreError,
  type StoreEvent,
} from "@core/store";
import { EtcdStore, type EtcdStoreOptions } from "@core/store/etcd";
import { endpoints, freshPrefix } from "./_cluster.ts";

function open(
  prefix: string,
  options: Partial<EtcdStoreOptions> = {},
): Promise<EtcdStore> {
  return EtcdStore.open({
    endpoints: endpoints(),
    prefix,
    purgeIntervalMs: 0,
    ...options,
  });
}

function nextEvents(
  store: EtcdStore,
  n: number,
): Promise<StoreEvent[]> {
  return new Promise((resolve) => {
    const seen: StoreEvent[] = [];
    const off = store.onChange((event) => {
      seen.push(event);
      if (seen.length === n) {
        off();
        resolve(seen);
      }
    });
  });
}

// deno-lint-ignore no-explicit-any
async function gateway(path: string, body: unknown): Promise<any> {
  const response = await fetch(`${endpoints()[0]}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  return await response.json();
}

Deno.test("EtcdStore instances on one prefix see each other's writes and events", async () => {
  const prefix = freshPrefix();
  await using a = await open(prefix);
  await using b = await open(prefix);
  const heard = nextEvents(b, 2);
  const own = nextEvents(a, 2);
  await a.set("g", "k", "from a");
  await a.deleteGroup("g");
  const events = await heard;
  assert.deepEqual(events.map((e) => [e.type, e.origin]), [
    ["set", "remote"],
    ["delete_group", "remote"],
  ]);
  const mine = await own;
  assert.deepEqual(mine.map((e) => e.origin), ["local", "local"]);
  assert.deepEqual(mine.map((e) => e.seq), events.map((e) => e.seq));
  assert.ok(events[1]!.seq! > events[0]!.seq!);
  await b.set("g", "k2", "from b");
  assert.equal(await a.get("g", "k2"), "from b");
});

Deno.test("EtcdStore prefixes keep stores apart in one cluster", async () => {
  await using a = await open(freshPrefix());
  await using b = await open(freshPrefix());
  await a.set("g", "k", "a");
  assert.equal(await b.get("g", "k"), undefined);
  assert.deepEqual(await b.groups(), []);
});

Deno.test("EtcdStore quotas hold across instances racing to add keys", async () => {
  const prefix = freshPrefix();
  const stores = await Promise.all([open(prefix), open(prefix), open(prefix)]);
  try {
    const writes = stores.flatMap((store, s) => {
      const tenant = new AsyncScopedStore(store, "acme", {
        maxKeys: 7,
        maxGroups: 3,
      });
      return Array.from(
        { length: 6 },
        (_, i) => tenant.set(`g${i % 4}`, `s${s}k${i}`, "v"),
      );
    });
    const results = await Promise.allSettled(writes);
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof QuotaExceededError, String(r.reason));
      }
    }
    const tenant = new AsyncScopedStore(stores[0]!, "acme");
    assert.ok(await tenant.countAll() <= 7);
    assert.ok((await tenant.groups()).length <= 3);
    assert.equal(
      results.filter((r) => r.status === "fulfilled").length,
      await tenant.countAll(),
    );
  } finally {
    for (const store of stores) await store.close();
  }
});

Deno.test("EtcdStore watch resumes exactly after since, then goes live", async () => {
  await using store = await open(freshPrefix());
  const first = nextEvents(store, 3);
  await store.set("g", "a", "1");
  await store.set("g", "b", "2");
  await store.set("other", "c", "3");
  const seqs = (await first).map((e) => e.seq!);
  const watcher = store.watch("g", "*", { since: seqs[0]! });
  const reader = watcher.stream.getReader();
  const replayed = await reader.read();
  assert.equal(replayed.value?.key, "b");
  assert.equal(replayed.value?.seq, seqs[1]);
  await store.set("g", "d", "4");
  const live = await reader.read();
  assert.equal(live.value?.key, "d");
  reader.releaseLock();
  await store.unwatch(watcher);
  assert.deepEqual(await Array.fromAsync(watcher), []);
});

Deno.test("EtcdStore watch from a compacted revision throws StoreError", async () => {
  const prefix = freshPrefix();
  {
    await using store = await open(prefix);
    await store.set("g", "k", "1");
    await store.set("g", "k", "2");
  }
  const status = await gateway("/v3/kv/range", { key: btoa("none") });
  const head = Number(status.header.revision);
  await gateway("/v3/kv/compaction", { revision: head, physical: true });
  await using store = await open(prefix);
  assert.throws(
    () => store.watch("g", "*", { since: 1 }),
    (error: unknown) =>
      error instanceof StoreError && /compacted/.test(error.message),
  );
  using _ = store.watch("g", "*", { since: head });
});

Deno.test("EtcdStore transactions past etcd's limits fail clearly and write nothing", async () => {
  await using store = await open(freshPrefix());
  await assert.rejects(
    store.transaction(async (tx) => {
      for (let i = 0; i < 129; i++) await tx.set("g", `k${i}`, "v");
    }),
    (error: unknown) =>
      error instanceof StoreError &&
      /at most 128 operations/.test(error.message),
  );
  await assert.rejects(
    store.transaction(async (tx) => {
      await tx.set("g", "a", "x".repeat(800_000));
      await tx.set("g", "b", "x".repeat(800_000));
    }),
    (error: unknown) =>
      error instanceof StoreError && /1\.5 MiB/.test(error.message),
  );
  assert.equal(await store.count("g"), 0);
});

Deno.test("EtcdStore keys with a TTL carry a lease, which only cleans up", async () => {
  let now = 1_000;
  const prefix = freshPrefix();
  await using store = await open(prefix, { clock: () => now });
  await store.setWithTTL("g", "k", "v", 60_000);
  // The data keys only: writes also leave markers under `m/w/`.
  const raw = await gateway("/v3/kv/range", {
    key: btoa(prefix + "d/"),
    range_end: btoa(prefix + "d0"),
  });
  assert.equal(raw.kvs.length, 1);
  assert.notEqual(raw.kvs[0].lease ?? "0", "0");
  now += 60_000;
  assert.equal(await store.get("g", "k"), undefined);
});

Deno.test("EtcdStore.open fails with StoreError within requestTimeoutMs when nobody answers", async () => {
  const started = Date.now();
  await assert.rejects(
    EtcdStore.open({
      endpoints: ["http://127.0.0.1:9"],
      requestTimeoutMs: 300,
    }),
    StoreError,
  );
  assert.ok(Date.now() - started < 1_000);
});

Deno.test("EtcdStore signs in with username and password on a cluster with auth on", async () => {
  const state = await Deno.makeTempDir({ prefix: "core-store-etcd-auth-" });
  const script = new URL("./cluster.sh", import.meta.url).pathname;
  // Tokens expire after a second, so that signing in again is exercised.
  // 200 ports above the shared cluster's, so that clusters of parallel runs
  // (each with its own ETCD_BASE_PORT) never meet.
  const base = Number(Deno.env.get("ETCD_BASE_PORT") ?? "23790") + 200;
  const env = {
    ETCD_BASE_PORT: String(base),
    ETCD_EXTRA_FLAGS: "--auth-token-ttl 1",
  };
  const run = (cmd: string, args: string[]) =>
    new Deno.Command(cmd, { args, env, stdout: "null", stderr: "inherit" })
      .output();
  try {
    assert.ok((await run(script, ["start", "1", state])).success);
    const endpoint = `http://127.0.0.1:${base + 1}`;
    const ctl = (...args: string[]) =>
      run("etcdctl", [`--endpoints=${endpoint}`, ...args]);
    await ctl("user", "add", "root:rootpw");
    await ctl("user", "grant-role", "root", "root");
    await ctl("user", "add", "app:apppw");
    await ctl("role", "add", "app");
    await ctl(
      "role",
      "grant-permission",
      "app",
      "--prefix=true",
      "readwrite",
      "app/",
    );
    await ctl("user", "grant-role", "app", "app");
    assert.ok((await ctl("auth", "enable")).success);
    {
      await using store = await EtcdStore.open({
        endpoints: [endpoint],
        prefix: "app/",
        username: "app",
        password: "apppw",
        purgeIntervalMs: 0,
      });
      const heard = nextEvents(store, 2);
      await store.set("g", "k", "v");
      assert.equal(await store.get("g", "k"), "v");
      await new Promise((r) => setTimeout(r, 2_500));
      await store.set("g", "k", "w");
      assert.equal(await store.get("g", "k"), "w");
      assert.deepEqual((await heard).map((e) => e.value), ["v", "w"]);
    }
    await assert.rejects(
      EtcdStore.open({
        endpoints: [endpoint],
        prefix: "app/",
        username: "app",
        password: "wrong",
      }),
      StoreError,
    );
    await assert.rejects(
      EtcdStore.open({ endpoints: [endpoint], prefix: "app/" }),
      StoreError,
    );
  } finally {
    await run(script, ["stop", state]);
    await Deno.remove(state, { recursive: true });
  }
});

Deno.test("EtcdStore keys are removed by their lease when no store is left to do it", async () => {
  const prefix = freshPrefix();
  {
    await using store = await open(prefix);
    await store.setWithTTL("g", "k", "v", 1);
  }
  const count = async () =>
    Number(
      (await gateway("/v3/kv/range", {
        key: btoa(prefix + "d/"),
        range_end: btoa(prefix + "d0"),
        count_only: true,
      })).count ?? 0,
    );
  assert.equal(await count(), 1);
  const deadline = Date.now() + 15_000;
  while (await count() > 0) {
    assert.ok(Date.now() < deadline, "the lease did not remove the key");
    await new Promise((r) => setTimeout(r, 200));
  }
});

Deno.test("EtcdStore resumed watchers keep their whole replay, however slow the reader", async () => {
  await using store = await open(freshPrefix());
  const first = nextEvents(store, 1);
  for (let i = 0; i < 40; i++) await store.set("acme:g", `k${i}`, `${i}`);
  const since = (await first)[0]!.seq! - 1;
  const tenant = new AsyncScopedStore(store, "acme");
  const watcher = tenant.watch("*", "*", { since });
  // Nothing is read until the replay has had time to arrive in full.
  await new Promise((r) => setTimeout(r, 300));
  const reader = watcher.stream.getReader();
  const keys: string[] = [];
  for (let i = 0; i < 40; i++) keys.push((await reader.read()).value!.key);
  reader.releaseLock();
  assert.deepEqual(keys, Array.from({ length: 40 }, (_, i) => `k${i}`));
  assert.equal(watcher.dropped, 0);
  await store.unwatch(watcher);
});

Deno.test("EtcdStore delivers expire events at the deadline while anyone listens", async () => {
  const prefix = freshPrefix();
  await using store = await open(prefix);
  await using other = await open(prefix);
  const heard = nextEvents(other, 2);
  const started = Date.now();
  await store.setWithTTL("g", "k", "v", 300);
  const events = await heard;
  const late = Date.now() - started - 300;
  assert.deepEqual(events.map((e) => e.type), ["set", "expire"]);
  // Long before the lease (seconds): at the deadline, give or take a write.
  assert.ok(late >= -5 && late < 1_000, `${late} ms after the deadline`);
  assert.equal(await store.exists("g", "k"), false);
});
