/**
 * The floor for bench/service.ts: a bare `Deno.serve` whose handler does the
 * least each scenario's wire exchange needs, with no store and no app. `GET`
 * answers a constant; `PUT` reads its body (so the connection stays
 * reusable) and answers `204`; `GET …/events` opens an event stream, and a
 * `PUT` to group `fan` sends every open stream one constant-shaped event
 * naming the key. Prints the same "listening on" line as main.ts and stops on
 * SIGTERM. Takes `--port` (and ignores `--db`).
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "0" },
    db: { type: "string" },
  },
});

const encoder = new TextEncoder();
const CONNECTED = encoder.encode(": connected\n\n");
const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();

function events(): Response {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      streams.add(c);
      c.enqueue(CONNECTED);
    },
    cancel() {
      streams.delete(controller);
    },
  });
  return new Response(body, {
    headers: { "content-type": "text/event-stream; charset=utf-8" },
  });
}

const server = Deno.serve({
  port: Number(values.port),
  hostname: "127.0.0.1",
  onListen({ hostname, port }) {
    console.log(`bare Deno.serve listening on http://${hostname}:${port}/`);
  },
}, async (request) => {
  if (request.method === "GET") {
    if (request.url.endsWith("/events?group=fan")) return events();
    return new Response("x", {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  await request.arrayBuffer();
  const key = request.url.match(/\/g\/fan\/k\/([^/?]+)$/)?.[1];
  if (key !== undefined) {
    const frame = encoder.encode(`event: set\ndata: {"key":"${key}"}\n\n`);
    for (const stream of streams) stream.enqueue(frame);
  }
  return new Response(null, { status: 204 });
});

Deno.addSignalListener("SIGTERM", () => {
  for (const stream of streams) stream.close();
  streams.clear();
  server.shutdown().finally(() => Deno.exit(0));
});
