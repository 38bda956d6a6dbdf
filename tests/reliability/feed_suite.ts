/**
 * The change feed across processes: two subprocesses and two Workers write
 * one file at once and each must hear every write exactly once, in seq
 * order. Needs --allow-run; run by `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import type { FeedWriterResult } from "../fixtures/feed_writer.ts";
import { tempDir } from "../_helpers.ts";
import { Store } from "../../mod.ts";

const PROCESS = new URL("../fixtures/feed_writer_process.ts", import.meta.url);
const WORKER = new URL("../fixtures/feed_writer_worker.ts", import.meta.url);

interface Writer {
  ready: Promise<void>;
  go(): void;
  result: Promise<FeedWriterResult>;
}

function processWriter(
  path: string,
  id: string,
  count: number,
  total: number,
): Writer {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      PROCESS.pathname,
      path,
      id,
      `${count}`,
      `${total}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  async function nextLine(): Promise<string> {
    for (;;) {
      const end = buffered.indexOf("\n");
      if (end >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        return line;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error(`${id} ended early`);
      buffered += value;
    }
  }
  const ready = nextLine().then((line) => assert.equal(line, "ready"));
  const writer = child.stdin.getWriter();
  return {
    ready,
    go: () =>
      void writer.write(new TextEncoder().encode("go\n")).then(() =>
        writer.close()
      ),
    result: ready.then(async () => {
      const result = JSON.parse(await nextLine()) as FeedWriterResult;
      await lines.cancel();
      assert.equal((await child.status).code, 0);
      return result;
    }),
  };
}

function workerWriter(
  path: string,
  id: string,
  count: number,
  total: number,
): Writer {
  const worker = new Worker(WORKER, { type: "module" });
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => ready = resolve);
  const result = new Promise<FeedWriterResult>((resolve, reject) => {
    worker.onmessage = (event) => {
      if (event.data === "ready") return ready();
      worker.terminate();
      if (event.data.ok) resolve(event.data.result);
      else reject(new Error(event.data.error));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(event.message));
    };
  });
  worker.postMessage({ path, id, count, total });
  return { ready: isReady, go: () => worker.postMessage("go"), result };
}

function percentile(sorted: number[], p: number): number {
  return sorted[
    Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)
  ] ?? NaN;
}

Deno.test("Store with changeFeed: two processes and two Workers each hear every write once, in seq order", async () => {
  using dir = tempDir();
  const path = dir.file("feed.db");
  new Store(path, { changeFeed: true }).close();
  const perWriter = 250;
  const ids = ["p1", "p2", "w1", "w2"];
  const total = perWriter * ids.length;
  const writers = ids.map((id) =>
    id.startsWith("p")
      ? processWriter(path, id, perWriter, total)
      : workerWriter(path, id, perWriter, total)
  );
  await Promise.all(writers.map((w) => w.ready));
  for (const writer of writers) writer.go();
  const results = await Promise.all(writers.map((w) => w.result));

  const latencies: number[] = [];
  for (const { id, heard, latencies: own } of results) {
    assert.equal(heard.length, total, id);
    assert.deepEqual(
      heard.map(([seq]) => seq),
      Array.from({ length: total }, (_, i) => i + 1),
      `${id} heard seqs out of order, twice or not at all`,
    );
    for (const [, origin, , key] of heard) {
      assert.equal(origin, key.startsWith(`${id}:`) ? "local" : "remote");
    }
    latencies.push(...own);
  }
  latencies.sort((a, b) => a - b);
  // Printed for the record: commit in one writer to the event in another,
  // with changePollMs 5 under four busy writers on two cores.
  console.log(
    `feed latency over ${latencies.length} remote deliveries: p50 ${
      percentile(latencies, 0.5)
    } ms, p99 ${percentile(latencies, 0.99)} ms`,
  );
});
