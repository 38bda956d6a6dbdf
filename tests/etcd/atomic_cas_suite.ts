/**
 * How the etcd store's atomic operations talk to etcd: one `txn` each when
 * uncontended, a conflict answered by the failure branch (no extra read),
 * an existing counter's lease kept, and a clear error when conflicts never
 * stop. Requests are counted by wrapping `fetch`, which the store's client
 * calls for every request.
 */

import assert from "node:assert/strict";
import { StoreError } from "@core/store";
import { EtcdStore } from "@core/store/etcd";
import { endpoints, freshPrefix } from "./_cluster.ts";

function open(prefix: string): Promise<EtcdStore> {
  return EtcdStore.open({ endpoints: endpoints(), prefix, purgeIntervalMs: 0 });
}

type Hook = (path: string, body: string) => Promise<void> | void;

/** Counts the gateway calls made while `fn` runs; `hook` runs before each. */
async function counting(
  fn: () => Promise<void>,
  hook?: Hook,
): Promise<Record<string, number>> {
  const real = globalThis.fetch;
  const counts: Record<string, number> = {};
  globalThis.fetch = async (input, init) => {
    const path = new URL(String(input)).pathname;
    counts[path] = (counts[path] ?? 0) + 1;
    await hook?.(path, String(init?.body ?? ""));
    return await real(input, init);
  };
  try {
    await fn();
  } finally {
    globalThis.fetch = real;
  }
  return counts;
}

/** The calls `fn` makes, as "txn" and "range" counts. */
async function calls(fn: () => Promise<unknown>) {
  const c = await counting(async () => {
    await fn();
  });
  return { txn: c["/v3/kv/txn"] ?? 0, range: c["/v3/kv/range"] ?? 0 };
}

// deno-lint-ignore no-explicit-any
async function gateway(path: string, body: unknown): Promise<any> {
  const response = await fetch(`${endpoints()[0]}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  return await response.json();
}

Deno.test("EtcdStore's atomic operations take one txn each when uncontended", async (t) => {
  const prefix = freshPrefix();
  await using s = await open(prefix);
  await s.set("warm", "up", "1"); // the markers' lease
  await t.step("increment: a new counter, then again", async () => {
    assert.deepEqual(await calls(() => s.increment("g", "n")), {
      txn: 1,
      range: 0,
    });
    assert.deepEqual(await calls(() => s.increment("g", "n", 2)), {
      txn: 1,
      range: 0,
    });
    assert.equal(await s.get("g", "n"), "3");
  });
  await t.step(
    "setIfAbsent: a new key is one txn; a held one a read",
    async () => {
      assert.deepEqual(await calls(() => s.setIfAbsent("g", "lock", "a")), {
        txn: 1,
        range: 0,
      });
      assert.deepEqual(await calls(() => s.setIfAbsent("g", "lock", "b")), {
        txn: 0,
        range: 1,
      });
    },
  );
  await t.step("compareAndSet and compareAndDelete after a get", async () => {
    await s.set("g", "v", "old");
    assert.equal(await s.get("g", "v"), "old");
    assert.deepEqual(
      await calls(() => s.compareAndSet("g", "v", "old", "new")),
      {
        txn: 1,
        range: 0,
      },
    );
    assert.deepEqual(await calls(() => s.compareAndDelete("g", "v", "new")), {
      txn: 1,
      range: 0,
    });
    assert.equal(await s.get("g", "v"), undefined);
  });
  await t.step("getAndDelete", async () => {
    await s.set("g", "t", "token");
    assert.deepEqual(await calls(() => s.getAndDelete("g", "t")), {
      txn: 1,
      range: 0,
    });
  });
  await t.step(
    "a value past 4 KiB is not remembered: a read first",
    async () => {
      const big = "x".repeat(5_000);
      await s.set("g", "big", big);
      assert.equal(await s.get("g", "big"), big);
      assert.deepEqual(
        await calls(() => s.compareAndSet("g", "big", big, "y")),
        {
          txn: 1,
          range: 1,
        },
      );
      assert.equal(await s.get("g", "big"), "y");
    },
  );
  await t.step("a stale guess costs one more txn, not a read", async () => {
    await using other = await open(prefix);
    assert.equal(await other.increment("g", "n"), 4);
    let result = 0;
    assert.deepEqual(
      await calls(async () => result = await s.increment("g", "n")),
      { txn: 2, range: 0 },
    );
    assert.equal(result, 5);
  });
});

Deno.test("EtcdStore.increment of a live counter with a TTL keeps its lease", async () => {
  const prefix = freshPrefix();
  await using s = await open(prefix);
  assert.equal(await s.increment("w", "ip", 1, 60_000), 1);
  const key = btoa(`${prefix}d/w\0ip`);
  const before = await gateway("/v3/kv/range", { key });
  const lease = before.kvs[0].lease;
  assert.ok(Number(lease) > 0, "the new counter has a lease");
  assert.equal(await s.increment("w", "ip"), 2);
  const after = await gateway("/v3/kv/range", { key });
  assert.equal(after.kvs[0].lease, lease);
  const left = await s.ttl("w", "ip") ?? 0;
  assert.ok(left > 0 && left <= 60_000, `${left} ms left`);
});

Deno.test("EtcdStore.increment gives up with StoreError when every attempt conflicts, writing nothing", async () => {
  const prefix = freshPrefix();
  await using s = await open(prefix);
  await s.set("warm", "up", "1");
  const key = btoa(`${prefix}d/g\0n`);
  // Before each of the store's writes to the key, another writer changes
  // it: the compare never holds.
  const bump: Hook = async (path, body) => {
    if (path !== "/v3/kv/txn" || !body.includes(key)) return;
    if (!body.includes('"request_put"')) return;
    await gateway("/v3/kv/put", { key, value: btoa("\n\n7") });
  };
  let error: unknown;
  const counts = await counting(async () => {
    error = await s.increment("g", "n").catch((e) => e);
  }, bump);
  assert.ok(error instanceof StoreError, String(error));
  assert.equal(
    error.message,
    'Cannot increment value: key "n" in group "g" changed under it 256 times in a row (other writers); nothing was written',
  );
  const txns = counts["/v3/kv/txn"]!;
  assert.ok(txns >= 256 && txns <= 257, `${txns} txns`);
  assert.equal(await s.get("g", "n"), "7", "the store wrote nothing");
});
