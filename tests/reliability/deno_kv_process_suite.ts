/**
 * The Deno KV store across real processes on one database file: two
 * service processes see each other's writes and events (locally Deno KV's
 * `watch` never sees another process's writes; the store polls its change
 * log), and a writer killed with SIGKILL in the middle of large values
 * leaves no half-written entry. Needs --allow-run; run by
 * `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import type { StoreEvent } from "@core/store";
import { DenoKvStore } from "@core/store/deno-kv";
import { expireLateness, tempDir } from "../_helpers.ts";

const SERVICE = new URL("../fixtures/deno_kv_service.ts", import.meta.url);

/** A service process and its output, line by line. */
function service(mode: "serve" | "churn", path: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-kv",
      "--allow-read",
      "--allow-write",
      SERVICE.pathname,
      mode,
      path,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    signal: AbortSignal.timeout(60_000),
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let buffered = "";
  const writer = child.stdin.getWriter();
  return {
    child,
    async line(): Promise<Record<string, unknown>> {
      for (;;) {
        const end = buffered.indexOf("\n");
        if (end >= 0) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 1);
          return JSON.parse(line);
        }
        const { value, done } = await reader.read();
        if (done) throw new Error(`the ${mode} process ended early`);
        buffered += value;
      }
    },
    send: (text: string) => writer.write(new TextEncoder().encode(text)),
    async close() {
      await writer.close().catch(() => {});
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

type Service = ReturnType<typeof service>;

/** Reads lines until `n` events were heard; returns them, with `wrote`s. */
async function hear(s: Service, n: number) {
  const events: { event: StoreEvent; at: number }[] = [];
  let wrote = 0;
  while (events.length < n || wrote === 0) {
    const line = await s.line();
    if ("event" in line) events.push(line as { event: StoreEvent; at: number });
    if ("wrote" in line) wrote++;
  }
  return events;
}

Deno.test("DenoKvStore: two service processes on one file see each other's writes and events", async () => {
  using dir = tempDir();
  const path = dir.file("shared.kv");
  const a = service("serve", path);
  const b = service("serve", path);
  try {
    assert.deepEqual(await a.line(), { ready: true });
    assert.deepEqual(await b.line(), { ready: true });
    // Both have read their head (and listen) before anybody writes.
    await new Promise((r) => setTimeout(r, 100));
    const n = 200;
    await a.send(`write a ${n}\n`);
    await b.send(`write b ${n}\n`);
    const [heardA, heardB] = await Promise.all([
      hear(a, 2 * n),
      hear(b, 2 * n),
    ]);
    for (const [heard, self] of [[heardA, "a"], [heardB, "b"]] as const) {
      const seqs = heard.map((h) => h.event.seq as number);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
      assert.equal(new Set(seqs).size, 2 * n);
      for (const { event } of heard) {
        const mine = event.key.startsWith(self);
        assert.equal(event.origin, mine ? "local" : "remote");
      }
    }
    // Both heard the same changes at the same positions.
    assert.deepEqual(
      heardA.map((h) => [h.event.seq, h.event.key]),
      heardB.map((h) => [h.event.seq, h.event.key]),
    );
    const late = [...heardA, ...heardB]
      .filter((h) => h.event.origin === "remote")
      .map((h) => h.at - h.event.timestamp)
      .sort((x, y) => x - y);
    const p99 = late[Math.ceil(late.length * 0.99) - 1] as number;
    console.log(
      `cross-process event latency: p50 ${
        late[late.length >> 1]
      } ms, p99 ${p99} ms, max ${late.at(-1)} ms (${late.length} events)`,
    );
    // Each store polls the log every 10 ms: half the events come within two
    // polls. The tail is the machine's: one busy moment of a shared CI core
    // (a GC, another suite's process) puts the p99 past 50 ms, so it is held
    // only to what a stalled poller could never reach.
    const p50 = late[late.length >> 1] as number;
    assert.ok(p50 <= 25, `p50 ${p50} ms`);
    assert.ok(p99 <= 250, `p99 ${p99} ms`);
    // And this process reads what both wrote.
    await using store = await DenoKvStore.open({ path });
    assert.equal(await store.count("shared"), 2 * n);
    assert.equal(await store.get("shared", "b99"), "b 99");
    await a.send("quit\n");
    await b.send("quit\n");
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("DenoKvStore: a writer killed mid-stream leaves no half-written entry", async () => {
  using dir = tempDir();
  const path = dir.file("churn.kv");
  for (let round = 0; round < 3; round++) {
    const churn = service("churn", path);
    // Killed after a few whole writes, at a moment that varies.
    const wanted = 3 + round * 2;
    for (let i = 0; i < wanted; i++) await churn.line();
    await new Promise((r) => setTimeout(r, Math.random() * 30));
    churn.child.kill("SIGKILL");
    await churn.close();
    await using store = await DenoKvStore.open({
      path,
      purgeIntervalMs: 0,
      // Far enough ahead that whatever the killed writer staged is old.
      clock: () => Date.now() + 3_600_000,
    });
    const all = await store.getAll("big");
    assert.ok(all.size >= 1);
    for (const [key, value] of all) {
      const size = value.length;
      assert.ok(size === 100_000 || size === 700_000, `${key}: ${size}`);
      assert.equal(value, value[0]!.repeat(size), `${key} is mixed`);
    }
    await store.purgeExpired();
  }
  // Housekeeping left no staged chunks behind: every chunk in the file
  // belongs to an entry or to a value the change log still names.
  using kv = await Deno.openKv(path);
  const named = new Set<string>();
  for (const prefix of [["store", "e"], ["store", "l"]]) {
    for await (const e of kv.list<{ c?: [string, number] }>({ prefix })) {
      if (e.value?.c) named.add(e.value.c[0]);
    }
  }
  let chunks = 0;
  for await (const c of kv.list({ prefix: ["store", "c"] })) {
    chunks++;
    assert.ok(
      named.has(c.key[2] as string),
      `orphan chunk ${String(c.key[2])}`,
    );
  }
  assert.ok(chunks > 0);
});

Deno.test("DenoKvStore: expire events come at the deadline, p99 within 50 ms, while someone listens", async () => {
  await using store = await DenoKvStore.open({ path: ":memory:" });
  const n = 200;
  const late = await expireLateness(store, n, (i) => 50 + i * 2);
  late.sort((a, b) => a - b);
  const p99 = late[Math.ceil(n * 0.99) - 1] as number;
  assert.ok(late[0]! >= -1, `an expire event came ${-late[0]!} ms early`);
  console.log(
    `expire event after its deadline: p50 ${late[n >> 1]} ms, p99 ${p99} ms`,
  );
  assert.ok(p99 <= 50, `p99 ${p99} ms after the deadline`);
});
