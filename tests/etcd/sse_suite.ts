/** The SSE helper and the watch options on the etcd store. */

import assert from "node:assert/strict";
import { AsyncScopedStore, type StoreEvent, type Watcher } from "@core/store";
import { EtcdStore } from "@core/store/etcd";
import { eventStreamResponse } from "@core/store/sse";
import { endpoints, freshPrefix } from "./_cluster.ts";
import { frameEvent, type SseFrame, SseReader } from "../_helpers.ts";

function open(prefix: string): Promise<EtcdStore> {
  return EtcdStore.open({ endpoints: endpoints(), prefix, purgeIntervalMs: 0 });
}

async function stream(
  store: EtcdStore | AsyncScopedStore,
  group: string,
  options: Parameters<typeof eventStreamResponse>[3] = {},
): Promise<SseReader> {
  const response = await eventStreamResponse(store, group, "*", options);
  return new SseReader(response.body!);
}

function values(frames: SseFrame[]): (string | undefined)[] {
  return frames.map((f) => frameEvent(f).value);
}

async function take(watcher: Watcher, n: number): Promise<StoreEvent[]> {
  const reader = watcher.stream.getReader();
  const out: StoreEvent[] = [];
  while (out.length < n) {
    const { done, value } = await reader.read();
    if (done) break;
    out.push(value);
  }
  reader.releaseLock();
  return out;
}

Deno.test("eventStreamResponse() on etcd resumes after a revision, across instances", async () => {
  const prefix = freshPrefix();
  await using a = await open(prefix);
  await using b = await open(prefix);
  const first = await stream(a, "g");
  await a.set("g", "k", "a0");
  const [seen] = await first.take(1);
  await first.cancel();
  // While away: another instance writes, once three keys in one revision.
  await b.set("g", "k", "b0");
  await b.transaction(async (tx) => {
    await tx.set("g", "x", "t0");
    await tx.set("g", "y", "t1");
    await tx.set("g", "z", "t2");
  });
  await b.set("other", "k", "not watched");
  const again = await stream(a, "g", { lastEventId: seen!.id });
  const missed = await again.take(4);
  assert.deepEqual(values(missed), ["b0", "t0", "t1", "t2"]);
  // One revision, three events: only its last frame carries the id, so a
  // client cut off inside it resumes before it, not after.
  const revision = frameEvent(missed[1]!).seq;
  assert.deepEqual(missed.map((f) => f.id), [
    String(frameEvent(missed[0]!).seq),
    undefined,
    undefined,
    String(revision),
  ]);
  await b.set("g", "k", "live");
  assert.deepEqual(values(await again.take(1)), ["live"]);
  await again.cancel();
});

Deno.test("eventStreamResponse() on etcd sends resync for a compacted revision, then goes on live", async () => {
  const prefix = freshPrefix();
  await using store = await open(prefix);
  await store.set("g", "k", "1");
  await store.set("g", "k", "2");
  const { position } = await store.snapshot("g");
  await fetch(`${endpoints()[0]}/v3/kv/compaction`, {
    method: "POST",
    body: JSON.stringify({ revision: position, physical: true }),
  }).then((r) => r.body?.cancel());
  // The store learns of the compaction only from etcd's answer.
  const sse = await stream(store, "g", { lastEventId: "1" });
  await store.set("g", "k", "live");
  const [resync, live] = await sse.take(2);
  assert.equal(resync?.event, "resync");
  assert.equal(frameEvent(live!).value, "live");
  await sse.cancel();
});

Deno.test("eventStreamResponse() on etcd starts with a snapshot at one revision, then the changes after it", async () => {
  const prefix = freshPrefix();
  await using a = await open(prefix);
  await using b = await open(prefix);
  for (let i = 0; i < 20; i++) await b.set("g", `k${i % 7}`, `a${i}`);
  const writes = (async () => {
    for (let i = 0; i < 30; i++) {
      await b.set("g", `k${i % 9}`, `b${i}`);
      if (i % 4 === 0) await b.delete("g", `k${i % 7}`);
    }
    await b.set("g", "end", "end");
  })();
  const sse = await stream(a, "g", { snapshot: true });
  const [snap] = await sse.take(1);
  const { entries, position } = JSON.parse(snap!.data);
  assert.equal(snap?.id, String(position));
  const copy = new Map<string, string>(Object.entries(entries));
  if (!copy.has("end")) {
    for (;;) {
      const event = frameEvent((await sse.next())!);
      assert.ok(event.seq! > position, "every change comes after it");
      if (event.type === "set") copy.set(event.key, event.value!);
      else copy.delete(event.key);
      if (event.key === "end") break;
    }
  }
  await writes;
  assert.deepEqual(copy, await a.getAll("g"));
  await sse.cancel();
  const scoped = new AsyncScopedStore(a, "t");
  await scoped.set("g", "k", "v");
  const tenant = await stream(scoped, "g", { snapshot: true });
  assert.deepEqual(JSON.parse((await tenant.next())!.data).entries, { k: "v" });
  await tenant.cancel();
});

Deno.test("EtcdStore.watch() honours capacity and prefix, live and resumed", async () => {
  const prefix = freshPrefix();
  await using store = await open(prefix);
  await store.set("user:0", "k", "before");
  const { position } = await store.snapshot("user:0");
  const live = store.watch("user:", "*", { prefix: true, capacity: 2 });
  const resumed = store.watch("user:", "*", {
    prefix: true,
    since: position,
  });
  const tenant = new AsyncScopedStore(store, "user");
  assert.throws(() => store.watch("g", "*", { capacity: 0 }), RangeError);
  await store.set("user:1", "k", "a");
  await store.set("team:1", "k", "no");
  await store.set("user:2", "k", "b");
  await store.set("user:3", "k", "c");
  assert.equal(live.capacity, 2);
  assert.deepEqual((await take(live, 2)).map((e) => e.group), [
    "user:1",
    "user:2",
  ]);
  assert.equal(live.dropped, 1);
  assert.deepEqual((await take(resumed, 3)).map((e) => e.group), [
    "user:1",
    "user:2",
    "user:3",
  ]);
  await store.unwatch(live);
  await store.unwatch(resumed);
  const scoped = tenant.watch("", "*", { prefix: true, since: position });
  assert.deepEqual((await take(scoped, 1)).map((e) => e.group), ["user:1"]);
  await store.unwatch(scoped);
});
