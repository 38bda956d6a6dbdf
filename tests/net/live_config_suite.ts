/**
 * The live-config example over real sockets: the app on an ephemeral port
 * driven by `fetch`, and `main.ts` run as a subprocess and stopped by a
 * signal. Needs network and subprocess permissions, so the plain
 * `deno test --allow-read --allow-write` does not pick it up (no `_test`
 * suffix). Run it with:
 *
 * ```sh
 * deno test --allow-read --allow-write --allow-net --allow-run tests/net/live_config_suite.ts
 * ```
 */
import assert from "node:assert/strict";
import { Store } from "@core/store";
import { createApp, encodeSegment } from "../../examples/live_config/server.ts";
import { FakeClock, rawQuery, tempDir } from "../_helpers.ts";
import { BlockReader, eventBlock } from "../fixtures/live_config_sse.ts";
import { Service } from "../fixtures/live_config_service.ts";
const T0 = 1_700_000_000_000;

Deno.test("live config over HTTP: a fetch client writes, reads and follows events; shutdown closes the store", async () => {
  using dir = tempDir();
  const path = dir.file("live.db");
  const clock = new FakeClock(T0);
  const store = new Store(path, { clock: clock.fn });
  const app = createApp({ store, maxKeys: 3 });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    app.handler,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const url = (group: string, key: string) =>
    `${base}/t/acme/g/${encodeSegment(group)}/k/${encodeSegment(key)}`;

  const sse = await fetch(`${base}/t/acme/events?group=config`);
  assert.equal(sse.status, 200);
  assert.equal(
    sse.headers.get("content-type"),
    "text/event-stream; charset=utf-8",
  );
  const stream = new BlockReader(sse.body);
  assert.equal(await stream.next(), "retry: 1000");

  // Writes, reads and deletes.
  let response = await fetch(url("config", "theme"), {
    method: "PUT",
    body: "dark",
  });
  assert.equal(response.status, 204);
  response = await fetch(`${url("config", "..")}?ttl=60000`, {
    method: "PUT",
    body: "a/b ✓",
  });
  assert.equal(response.status, 204);
  response = await fetch(url("config", "theme"));
  assert.equal(await response.text(), "dark");
  response = await fetch(`${base}/t/acme/g/config`);
  assert.deepEqual(await response.json(), { "..": "a/b ✓", theme: "dark" });
  response = await fetch(`${base}/t/acme/g/config/render`, {
    method: "POST",
    body: '{{ .theme }} {{ index . ".." }}',
  });
  assert.equal(await response.text(), "dark a/b ✓");
  response = await fetch(url("config", "theme"), { method: "DELETE" });
  assert.equal(response.status, 204);
  response = await fetch(url("config", "theme"));
  assert.equal(response.status, 404);
  assert.match((await response.json()).error, /no live key "theme"/);

  // Quota, bad input, unknown route, wrong method.
  for (const k of ["a", "b"]) {
    response = await fetch(url("other", k), { method: "PUT", body: k });
    assert.equal(response.status, 204);
  }
  response = await fetch(url("other", "c"), { method: "PUT", body: "c" });
  assert.equal(response.status, 429);
  assert.deepEqual(await response.json(), {
    error:
      'Cannot set value: namespace "acme" is at its maxKeys quota of 3 live keys',
    limit: "maxKeys",
    max: 3,
  });
  response = await fetch(`${url("other", "a")}?ttl=never`, {
    method: "PUT",
    body: "x",
  });
  assert.equal(response.status, 400);
  assert.match((await response.json()).error, /^ttl must be a positive/);
  response = await fetch(`${base}/t/not_a_tenant/g/config`);
  assert.equal(response.status, 400);
  assert.match((await response.json()).error, /namespace must match/);
  response = await fetch(`${base}/nowhere`);
  assert.equal(response.status, 404);
  assert.deepEqual(await response.json(), {
    error: "no route for GET /nowhere",
  });
  response = await fetch(`${base}/t/acme/g/config`, { method: "DELETE" });
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "GET, HEAD");
  await response.body?.cancel();
  response = await fetch(`${base}/`);
  assert.match(await response.text(), /EventSource/);

  // The stream saw exactly the group's writes.
  assert.deepEqual(await stream.take(3), [
    eventBlock({
      type: "set",
      group: "config",
      key: "theme",
      value: "dark",
      timestamp: T0,
    }),
    eventBlock({
      type: "set",
      group: "config",
      key: "..",
      value: "a/b ✓",
      expiresAt: T0 + 60_000,
      timestamp: T0,
    }),
    eventBlock({
      type: "delete",
      group: "config",
      key: "theme",
      timestamp: T0,
    }),
  ]);

  // Shutdown, as main.ts does it: end the streams, let requests finish,
  // close the store.
  app.close();
  assert.deepEqual(await stream.rest(), []);
  await server.shutdown();
  await server.finished;
  store.close();
  assert.throws(() => store.get("acme:config", ".."), /store is closed/);

  // Same clock: the TTL'd key is still live.
  using reopened = new Store(path, { clock: clock.fn });
  assert.equal(reopened.ttl("acme:config", ".."), 60_000);
  assert.deepEqual(Object.fromEntries(reopened.getAll("acme:config")), {
    "..": "a/b ✓",
  });
  assert.equal(reopened.countAll("acme:"), 3);
  assert.deepEqual(rawQuery(path, "PRAGMA integrity_check"), [
    { integrity_check: "ok" },
  ]);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`live config main.ts: serves until ${signal}, then ends the streams and closes the store`, async () => {
    using dir = tempDir();
    const db = dir.file("nested/folder/live.db");
    await using service = new Service([
      "--port",
      "0",
      "--db",
      db,
      "--max-keys",
      "2",
      "--heartbeat-ms",
      "20",
    ]);
    const base = await service.listening();
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);

    const sse = await fetch(`${base}/t/acme/events`);
    const stream = new BlockReader(sse.body);
    assert.equal(await stream.next(), "retry: 1000");
    const put = (key: string, value: string) =>
      fetch(`${base}/t/acme/g/config/k/${key}`, { method: "PUT", body: value });
    assert.equal((await put("a", "1")).status, 204);
    assert.equal((await put("b", "2")).status, 204);
    const refused = await put("c", "3");
    assert.equal(refused.status, 429);
    assert.equal((await refused.json()).limit, "maxKeys");

    // Events arrive in order, with heartbeats every 20 ms in between.
    const blocks: string[] = [];
    while (blocks.filter((b) => b !== ": heartbeat").length < 2) {
      const block = await stream.next();
      assert.ok(block !== undefined, "the stream ended early");
      blocks.push(block);
    }
    assert.deepEqual(blocks.filter((b) => b !== ": heartbeat").length, 2);
    assert.match(
      blocks.find((b) => b !== ": heartbeat")!,
      /"key":"a","value":"1"/,
    );
    while (await stream.next() !== ": heartbeat") { /* until a beat */ }

    service.child.kill(signal);
    // The open stream ends instead of holding the shutdown.
    const rest = await stream.rest();
    assert.ok(rest.every((b) => b === ": heartbeat"), JSON.stringify(rest));
    const { code, stdout, stderr } = await service.finish();
    assert.equal(code, 0, stderr);
    assert.match(
      stdout,
      new RegExp(`${signal}: shutting down\nstore closed\n$`),
    );

    using reopened = new Store(db);
    assert.deepEqual(Object.fromEntries(reopened.getAll("acme:config")), {
      a: "1",
      b: "2",
    });
    assert.deepEqual(rawQuery(db, "PRAGMA integrity_check"), [
      { integrity_check: "ok" },
    ]);
  });
}

Deno.test("live config main.ts: two instances on one file with --change-feed stream each other's writes", async () => {
  using dir = tempDir();
  const db = dir.file("shared.db");
  const args = ["--port", "0", "--db", db, "--change-feed"];
  await using first = new Service(args);
  const firstBase = await first.listening();
  await using second = new Service(args);
  const secondBase = await second.listening();

  const sse = await fetch(`${firstBase}/t/acme/events?group=config`);
  const stream = new BlockReader(sse.body);
  assert.equal(await stream.next(), "retry: 1000");
  const put = await fetch(`${secondBase}/t/acme/g/config/k/theme`, {
    method: "PUT",
    body: "via the second",
  });
  assert.equal(put.status, 204);
  const [block] = await stream.take(1);
  const data = JSON.parse(block!.replace(/^id: \d+\nevent: set\ndata: /, ""));
  assert.equal(data.origin, "remote");
  assert.equal(data.value, "via the second");
  assert.equal(typeof data.seq, "number");

  for (const service of [first, second]) {
    service.child.kill("SIGTERM");
  }
  assert.deepEqual(await stream.rest(), []);
  for (const service of [first, second]) {
    const { code, stderr } = await service.finish();
    assert.equal(code, 0, stderr);
  }
});

Deno.test("live config main.ts: bad flags exit 2 with the usage; a busy port exits 1", async () => {
  using dir = tempDir();
  {
    await using service = new Service(["--port", "http"]);
    const { code, stderr } = await service.finish();
    assert.equal(code, 2);
    assert.match(stderr, /^error: --port must be an integer from 0 to 65535/);
    assert.match(stderr, /Usage: main\.ts/);
  }
  {
    await using service = new Service(["--help"]);
    const { code, stdout } = await service.finish();
    assert.equal(code, 0);
    assert.match(stdout, /--max-groups N/);
  }
  const busy = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  try {
    await using service = new Service([
      "--port",
      String(busy.addr.port),
      "--db",
      dir.file("busy.db"),
    ]);
    const { code, stderr } = await service.finish();
    assert.equal(code, 1);
    const port = busy.addr.port;
    assert.match(
      stderr,
      new RegExp(`^error: port ${port} on 127\\.0\\.0\\.1 is already in use`),
    );
    assert.match(stderr, new RegExp(`--port ${port + 1}.*PORT=${port + 1}`));
    assert.doesNotMatch(stderr, /os error/);
  } finally {
    busy.close();
  }
});

Deno.test("live config main.ts: a key's expire event reaches the event stream at its deadline", async () => {
  using dir = tempDir();
  await using service = new Service(["--port", "0", "--db", dir.file("e.db")]);
  const base = await service.listening();
  const sse = await fetch(`${base}/t/acme/events?group=config`);
  await using stream = new BlockReader(sse.body);
  assert.equal(await stream.next(), "retry: 1000");
  const put = await fetch(`${base}/t/acme/g/config/k/brief?ttl=300`, {
    method: "PUT",
    body: "soon gone",
  });
  assert.equal(put.status, 204);
  const sent = Date.now();
  const [set] = await stream.take(1);
  const { expiresAt } = JSON.parse(set!.replace(/^event: set\ndata: /, ""));
  assert.ok(expiresAt >= sent && expiresAt <= sent + 300, `${expiresAt}`);
  // Nobody reads the key: the store's own timer reports the expiry.
  const [expire] = await stream.take(1);
  const late = Date.now() - expiresAt;
  assert.match(
    expire!,
    /^event: expire\ndata: \{"type":"expire","group":"acme:config","key":"brief",/,
  );
  assert.ok(
    late >= 0 && late < 1_000,
    `the expire event came ${late} ms after the deadline`,
  );
  service.child.kill("SIGTERM");
  assert.equal((await service.finish()).code, 0);
});
