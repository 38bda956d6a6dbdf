/**
 * Real damage to the local cluster: the leader SIGKILLed mid-stream, quorum
 * lost and regained, and a second process on the same cluster. Each test
 * leaves every member running again.
 */

import assert from "node:assert/strict";
import {
  StoreError,
  type StoreEvent,
  StoreUnavailableError,
} from "@core/store";
import { EtcdStore } from "@core/store/etcd";
import {
  endpoints,
  freshPrefix,
  kill,
  leader,
  pause,
  restart,
  resume,
} from "./_cluster.ts";

async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 15_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("EtcdStore loses no acknowledged write and no event when the leader is SIGKILLed mid-stream", async () => {
  const urls = endpoints();
  const lead = await leader();
  const others = [1, 2, 3].filter((i) => i !== lead);
  const prefix = freshPrefix();
  // The writer talks to the leader first; the watcher to a follower only.
  const writer = await EtcdStore.open({
    endpoints: [lead, ...others].map((i) => urls[i - 1]!),
    prefix,
    requestTimeoutMs: 10_000,
    purgeIntervalMs: 0,
  });
  const watcher = await EtcdStore.open({
    endpoints: [urls[others[0]! - 1]!],
    prefix,
    requestTimeoutMs: 10_000,
    purgeIntervalMs: 0,
  });
  const seen: StoreEvent[] = [];
  const off = watcher.onChange((event) => seen.push(event));
  const acked: number[] = [];
  const failed: string[] = [];
  try {
    for (let i = 0; i < 300; i++) {
      if (i === 100) await kill(lead);
      try {
        await writer.set("stream", `k${String(i).padStart(3, "0")}`, `${i}`);
        acked.push(i);
      } catch (error) {
        failed.push(String(error));
      }
    }
    await restart(lead);
    await until("the watcher to hear every acknowledged write", () => {
      const keys = new Set(seen.map((e) => e.key));
      return acked.every((i) => keys.has(`k${String(i).padStart(3, "0")}`));
    });
    // Every acknowledged write is there, read through another member.
    const stored = await watcher.getAll("stream");
    for (const i of acked) {
      assert.equal(stored.get(`k${String(i).padStart(3, "0")}`), `${i}`);
    }
    // Nothing repeated, nothing out of order.
    const keys = seen.map((e) => e.key);
    assert.equal(new Set(keys).size, keys.length, "an event was repeated");
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]!.seq! > seen[i - 1]!.seq!);
    }
    assert.ok(seen.every((e) => e.type === "set" && e.origin === "remote"));
    console.log(
      `leader m${lead} killed at write 100: ${acked.length} acknowledged, ${failed.length} failed, ${seen.length} events`,
    );
    assert.ok(acked.length >= 290, failed.join("\n"));
  } finally {
    off();
    await writer.close();
    await watcher.close();
    await restart(lead).catch(() => {});
  }
});

Deno.test("EtcdStore fails with StoreError within requestTimeoutMs without quorum, then recovers", async () => {
  const store = await EtcdStore.open({
    endpoints: endpoints(),
    prefix: freshPrefix(),
    requestTimeoutMs: 1_500,
    purgeIntervalMs: 0,
  });
  const [a, b] = [1, 2, 3].filter((i) => i !== 3);
  try {
    await store.set("g", "k", "before");
    await kill(a!);
    await kill(b!);
    for (
      const call of [() => store.set("g", "k", "x"), () => store.get("g", "k")]
    ) {
      const started = Date.now();
      await assert.rejects(call(), StoreError);
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1_500 + 500, `took ${elapsed} ms`);
    }
    await restart(a!);
    await restart(b!);
    let ok = false;
    await until("the cluster to take writes again", async () => {
      ok = await store.set("g", "k", "after").then(() => true, () => false);
      return ok;
    });
    assert.equal(await store.get("g", "k"), "after");
  } finally {
    await store.close();
    await restart(a!).catch(() => {});
    await restart(b!).catch(() => {});
  }
});

Deno.test("EtcdStore in two processes: each sees the other's writes and events", async () => {
  const prefix = freshPrefix();
  const store = await EtcdStore.open({
    endpoints: endpoints(),
    prefix,
    purgeIntervalMs: 0,
  });
  const seen: StoreEvent[] = [];
  const off = store.onChange((event) => seen.push(event));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      new URL("./fixtures/peer.ts", import.meta.url).pathname,
      endpoints().join(","),
      prefix,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    await until("the peer's writes", () => seen.length >= 5);
    assert.ok(seen.every((e) => e.origin === "remote" && e.group === "peer"));
    assert.equal(await store.get("peer", "k4"), "4");
    for (let i = 0; i < 5; i++) await store.set("parent", `k${i}`, `${i}`);
    const output = new TextDecoder().decode((await child.output()).stdout);
    const heard = output.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(
      heard.map((e) => `${e.group}/${e.key} ${e.origin}`),
      [0, 1, 2, 3, 4].map((i) => `parent/k${i} remote`),
    );
  } finally {
    off();
    await store.close();
    try {
      child.kill();
    } catch {
      // Already exited.
    }
  }
});

Deno.test("EtcdStore moves its event stream to another member when the one it reads dies", async () => {
  const urls = endpoints();
  const lead = await leader();
  // The watcher reads from a follower, which is then killed; the writer
  // talks to the two members that stay.
  const victim = [1, 2, 3].find((i) => i !== lead)!;
  const stay = [1, 2, 3].filter((i) => i !== victim);
  const prefix = freshPrefix();
  const options = { prefix, requestTimeoutMs: 10_000, purgeIntervalMs: 0 };
  const watcher = await EtcdStore.open({
    endpoints: [victim, ...stay].map((i) => urls[i - 1]!),
    ...options,
  });
  const writer = await EtcdStore.open({
    endpoints: stay.map((i) => urls[i - 1]!),
    ...options,
  });
  const seen: string[] = [];
  const off = watcher.onChange((event) => seen.push(event.key));
  try {
    for (let i = 0; i < 100; i++) {
      if (i === 30) await kill(victim);
      await writer.set("g", `k${i}`, "v");
    }
    await until("every event", () => seen.length >= 100);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => `k${i}`));
  } finally {
    off();
    await writer.close();
    await watcher.close();
    await restart(victim);
  }
});

Deno.test("EtcdStore applies a write once when the member that took it resumes after a retry elsewhere", async () => {
  const urls = endpoints();
  const lead = await leader();
  const others = [1, 2, 3].filter((i) => i !== lead);
  const prefix = freshPrefix();
  // The first attempt goes to the leader, which is paused past the client's
  // first-attempt timeout: the write is sent again to the others.
  const store = await EtcdStore.open({
    endpoints: [lead, ...others].map((i) => urls[i - 1]!),
    prefix,
    requestTimeoutMs: 6_000,
    purgeIntervalMs: 0,
  });
  const reader = await EtcdStore.open({
    endpoints: others.map((i) => urls[i - 1]!),
    prefix,
    purgeIntervalMs: 0,
  });
  try {
    await store.set("g", "k", "before");
    pause(lead);
    await store.set("g", "k", "A");
    await reader.set("g", "k", "B");
    resume(lead);
    // The paused member proposes what it had received; it must change
    // nothing now.
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(await reader.get("g", "k"), "B");
    assert.equal(await store.get("g", "k"), "B");
  } finally {
    resume(lead);
    await store.close();
    await reader.close();
  }
});

Deno.test("EtcdStore reports a write it cannot settle as StoreUnavailableError with outcome unknown", async () => {
  const store = await EtcdStore.open({
    endpoints: endpoints(),
    prefix: freshPrefix(),
    requestTimeoutMs: 1_000,
    purgeIntervalMs: 0,
  });
  try {
    await store.set("g", "k", "before");
    for (const i of [1, 2, 3]) pause(i);
    await assert.rejects(
      store.set("g", "k", "maybe"),
      (error: unknown) =>
        error instanceof StoreUnavailableError &&
        error.outcome === "unknown" &&
        /may have been applied/.test(error.message) &&
        !/Cannot set value: Cannot/.test(error.message),
    );
    await assert.rejects(
      store.get("g", "k"),
      (error: unknown) =>
        error instanceof StoreUnavailableError &&
        error.outcome === "not-applied",
    );
  } finally {
    for (const i of [1, 2, 3]) resume(i);
  }
  try {
    await until("the cluster to answer again", async () => {
      const value = await store.get("g", "k").catch(() => "down");
      return value !== "down";
    });
    assert.ok(["before", "maybe"].includes((await store.get("g", "k"))!));
  } finally {
    await store.close();
  }
});

Deno.test("EtcdStore says nothing was written when no member can be reached", async () => {
  await assert.rejects(
    EtcdStore.open({
      endpoints: ["http://127.0.0.1:9"],
      requestTimeoutMs: 300,
    }),
    (error: unknown) =>
      error instanceof StoreUnavailableError &&
      error.outcome === "not-applied",
  );
});
