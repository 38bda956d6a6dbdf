/**
 * The live-config service attacked over real sockets: main.ts as a child
 * process (under `ulimit -n` where it matters), raw HTTP written byte by
 * byte, signals, and its database file deleted under it. Figures (peak RSS,
 * descriptors in use) come from /proc, so this suite is Linux-only. Run it
 * with:
 *
 * ```sh
 * deno test --allow-read --allow-write --allow-net --allow-run tests/net/live_config_hardening_suite.ts
 * ```
 */
import assert from "node:assert/strict";
import { ScopedStore, Store } from "@core/store";
import { createApp } from "../../examples/live_config/server.ts";
import { rawQuery, tempDir } from "../_helpers.ts";
import {
  parseResponse,
  rawRequest,
  readAll,
  Service,
  sleep,
  writeAll,
} from "../fixtures/live_config_service.ts";

const encoder = new TextEncoder();

/** Paths from the issue that named tenant bob's data from alice's prefix. */
const TRAVERSALS = [
  "/t/alice/%2e%2e/bob/g/config",
  "/t/alice\\..\\bob/g/config",
  "/t/alice/.%2e/bob/g/config",
  "/t/alice/g/%2e%2e/%2e%2e/bob/g/config/k/pw",
  "/t/alice/../bob/g/config/k/pw",
  "/t/alice/./../bob/g/config",
  "/t/%62ob/g/config",
  "/t/bob/g/%63onfig/k/pw",
];

function get(path: string): string {
  return `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`;
}

async function service(
  db: string,
  args: string[] = [],
  options: { fileLimit?: number } = {},
) {
  const svc = new Service(["--port", "0", "--db", db, ...args], options);
  const base = await svc.listening();
  return { svc, base, port: Service.port(base) };
}

Deno.test("live config service: a path that is not canonical answers 400 and never another tenant's data", async (t) => {
  using dir = tempDir();
  const db = dir.file("live.db");
  {
    using store = new Store(db);
    new ScopedStore(store, "bob").set("config", "pw", "bob's secret");
  }
  await t.step("main.ts (its own server)", async () => {
    const { svc, port } = await service(db);
    await using _ = svc;
    for (const path of TRAVERSALS) {
      const response = await rawRequest(port, get(path));
      assert.equal(response.status, 400, `${path}: ${response.body}`);
      assert.match(response.body, /canonical form/, path);
      assert.doesNotMatch(response.body, /secret/, path);
    }
    const ok = await rawRequest(port, get("/t/bob/g/config/k/pw"));
    assert.equal(ok.status, 200);
    assert.equal(ok.body, "bob's secret");
  });
  await t.step(
    "the app under Deno.serve (which passes the raw target)",
    async () => {
      using store = new Store(db);
      const app = createApp({ store });
      const server = Deno.serve(
        { port: 0, hostname: "127.0.0.1", onListen() {} },
        app.handler,
      );
      try {
        for (const path of TRAVERSALS) {
          const response = await rawRequest(server.addr.port, get(path));
          assert.equal(response.status, 400, `${path}: ${response.body}`);
          assert.doesNotMatch(response.body, /secret/, path);
        }
      } finally {
        app.close();
        await server.shutdown();
      }
    },
  );
});

Deno.test("live config service: HEAD answers as GET without a body", async () => {
  using dir = tempDir();
  const { svc, port } = await service(dir.file("live.db"));
  await using _ = svc;
  const put = await rawRequest(
    port,
    "PUT /t/a/g/g/k/k HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\nconnection: close\r\n\r\nvalue!",
  );
  assert.equal(put.status, 204);
  for (const path of ["/", "/t/a/g/g", "/t/a/g/g/k/k", "/t/a/g/g/k/nope"]) {
    const got = await rawRequest(port, get(path));
    const head = await rawRequest(port, get(path).replace(/^GET/, "HEAD"));
    assert.equal(head.status, got.status, path);
    assert.equal(head.body, "", path);
    assert.equal(
      head.headers.get("content-length"),
      String(encoder.encode(decodeLatin1(got.body)).length),
      path,
    );
    assert.equal(
      head.headers.get("content-type"),
      got.headers.get("content-type"),
    );
  }
});

function decodeLatin1(text: string): string {
  return new TextDecoder().decode(
    Uint8Array.from(text, (c) => c.charCodeAt(0)),
  );
}

Deno.test("live config service: header, body and idle timeouts answer 408 or close", async (t) => {
  using dir = tempDir();
  const db = dir.file("live.db");
  const { svc, port } = await service(db, [
    "--header-timeout-ms",
    "300",
    "--body-timeout-ms",
    "600",
    "--idle-timeout-ms",
    "400",
  ]);
  await using _ = svc;
  await t.step("a head that stops half-way", async () => {
    const response = await rawRequest(port, "GET /t/a/g/g HTTP/1.1\r\nhost:");
    assert.equal(response.status, 408);
    assert.match(response.body, /request head did not arrive within 300 ms/);
    assert.ok(response.ms >= 250 && response.ms < 2_000, `${response.ms}`);
  });
  await t.step("a connection that sends nothing", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const started = performance.now();
    assert.equal(await readAll(conn), "");
    const ms = performance.now() - started;
    assert.ok(ms >= 250 && ms < 2_000, `${ms}`);
    conn.close();
  });
  await t.step("a body that stalls", async () => {
    const response = await rawRequest(
      port,
      "PUT /t/a/g/g/k/k HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly 20 bytes so far",
    );
    assert.equal(response.status, 408);
    assert.match(response.body, /request body did not arrive within 600 ms/);
    assert.ok(response.ms >= 550 && response.ms < 2_500, `${response.ms}`);
  });
  await t.step("a kept-alive connection left idle", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(
      conn,
      encoder.encode("GET /t/a/g/g HTTP/1.1\r\nhost: x\r\n\r\n"),
    );
    const started = performance.now();
    const text = await readAll(conn);
    const ms = performance.now() - started;
    const response = parseResponse(text, started);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("connection"), "keep-alive");
    assert.ok(ms >= 350 && ms < 2_000, `closed after ${ms} ms`);
    conn.close();
  });
  const { code, stderr } = await (async () => {
    svc.child.kill("SIGTERM");
    return await svc.finish();
  })();
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  using store = new Store(db);
  assert.equal(store.countAll(), 0);
});

Deno.test("live config service: under ulimit -n 200, 250 half-sent connections neither kill it nor keep it from serving afterwards", async () => {
  using dir = tempDir();
  const { svc, port } = await service(
    dir.file("live.db"),
    ["--header-timeout-ms", "4000"],
    { fileLimit: 200 },
  );
  await using _ = svc;
  const baseline = await svc.descriptors();
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 250; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      await writeAll(conn, encoder.encode("GET /t/a/g/g HTTP/1.1\r\nhos"));
    }
    // Out of descriptors: a new client is refused with 503 at once.
    const refused = await rawRequest(port, get("/t/a/g/g"));
    assert.equal(refused.status, 503);
    assert.match(refused.body, /out of file descriptors/);
    assert.ok(svc.running);
    const peak = await svc.descriptors();
    // The kernel caps it at 200; a listing of /proc/PID/fd taken while
    // descriptors churn may show one closing and its successor both.
    assert.ok(peak >= 190 && peak <= 202, `${peak} descriptors`);
    console.log(
      `descriptors: ${baseline} at rest, ${peak} with 250 half-sent connections (limit 200); refused in ${
        refused.ms.toFixed(0)
      } ms`,
    );
    // The header timeout closes the half-sent ones (408), freeing
    // descriptors; the kernel's backlog held the rest meanwhile.
    let answered = 0;
    await Promise.all(conns.map(async (conn) => {
      const text = await readAll(conn);
      if (text.startsWith("HTTP/1.1 408") || text.startsWith("HTTP/1.1 503")) {
        answered++;
      }
    }));
    assert.equal(answered, 250);
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed by the server.
      }
    }
  }
  const ok = await rawRequest(port, get("/t/a/g/g"));
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "{}");
  assert.ok(svc.running);
  const after = await svc.descriptors();
  assert.ok(
    after <= baseline + 2,
    `${after} descriptors after, ${baseline} before`,
  );
  svc.child.kill("SIGTERM");
  const { code, stderr } = await svc.finish();
  assert.equal(code, 0, stderr);
  assert.match(stderr, /out of file descriptors .*refusing new connections/);
  assert.match(stderr, /accepting again after refusing \d+ connections/);
  assert.doesNotMatch(stderr, /Uncaught|panic/);
});

Deno.test("live config service: bodies trickled byte by byte keep peak memory bounded", async () => {
  using dir = tempDir();
  const db = dir.file("live.db");
  const { svc, port } = await service(db);
  await using _ = svc;
  // Warm up, then measure from here.
  await rawRequest(port, get("/t/a/g/g"));
  const before = await svc.memoryKiB("VmHWM");
  const size = 24_000;
  const value = "abcdefghijklmnopqrstuvwx".repeat(size / 24);
  const started = performance.now();
  const trickle = async (key: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    await writeAll(
      conn,
      encoder.encode(
        `PUT /t/a/g/g/k/${key} HTTP/1.1\r\nhost: x\r\ncontent-length: ${size}\r\nconnection: close\r\n\r\n`,
      ),
    );
    const bytes = encoder.encode(value);
    // 2 bytes a write, 20 writes every 25 ms: about 15 s for 24 KB.
    for (let i = 0; i < bytes.length; i += 2) {
      await writeAll(conn, bytes.subarray(i, i + 2));
      if (i % 40 === 38) await sleep(25);
    }
    const response = parseResponse(await readAll(conn), started);
    conn.close();
    return response.status;
  };
  const statuses = await Promise.all(["a", "b", "c", "d"].map(trickle));
  const seconds = (performance.now() - started) / 1000;
  assert.deepEqual(statuses, [204, 204, 204, 204]);
  const after = await svc.memoryKiB("VmHWM");
  const grewMiB = (after - before) / 1024;
  console.log(
    `peak RSS ${(before / 1024).toFixed(1)} MiB before, ${
      (after / 1024).toFixed(1)
    } MiB after 4 bodies of 24 KB trickled 2 bytes a write over ${
      seconds.toFixed(1)
    } s (+${grewMiB.toFixed(1)} MiB)`,
  );
  // 12,000 reads per body: pinning a 64 KiB buffer each would be 3 GiB.
  assert.ok(grewMiB < 48, `peak RSS grew by ${grewMiB.toFixed(1)} MiB`);
  svc.child.kill("SIGTERM");
  assert.equal((await svc.finish()).code, 0);
  using store = new Store(db);
  assert.equal(store.get("a:g", "c"), value);
});

Deno.test("live config service: SIGTERM with a stalled upload cuts it at the deadline, closes the store, exits 0", async () => {
  using dir = tempDir();
  const db = dir.file("live.db");
  const { svc, port } = await service(db, ["--shutdown-ms", "800"]);
  await using _ = svc;
  const put = await rawRequest(
    port,
    "PUT /t/a/g/g/k/done HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
  );
  assert.equal(put.status, 204);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(
    conn,
    encoder.encode(
      "PUT /t/a/g/g/k/stalled HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nthe first few bytes",
    ),
  );
  await sleep(100);
  const started = performance.now();
  svc.child.kill("SIGTERM");
  const answer = readAll(conn);
  const { code, stdout, stderr } = await svc.finish();
  const ms = performance.now() - started;
  assert.equal(code, 0, stderr);
  assert.ok(ms >= 700 && ms < 5_000, `exited after ${ms} ms`);
  assert.match(
    stdout,
    /SIGTERM: shutting down\ncut 1 connection still busy after 800 ms\nstore closed\n$/,
  );
  assert.equal(stderr, "");
  // The client got no 500 (nor any response): its connection was closed.
  assert.equal(await answer, "");
  conn.close();
  using store = new Store(db);
  assert.deepEqual(Object.fromEntries(store.getAll("a:g")), { done: "ok" });
  assert.deepEqual(rawQuery(db, "PRAGMA integrity_check"), [
    { integrity_check: "ok" },
  ]);
});

Deno.test("live config service: deleting or replacing the database file turns writes into 503 with one log line", async (t) => {
  for (const damage of ["deleted", "replaced"] as const) {
    await t.step(damage, async () => {
      using dir = tempDir();
      const db = dir.file("live.db");
      const { svc, port } = await service(db);
      await using _ = svc;
      const put = (key: string) =>
        rawRequest(
          port,
          `PUT /t/a/g/g/k/${key} HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nconnection: close\r\n\r\nv`,
        );
      assert.equal((await put("before")).status, 204);
      for (const suffix of ["", "-wal", "-shm"]) {
        try {
          Deno.removeSync(db + suffix);
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
      }
      if (damage === "replaced") {
        using other = new Store(db);
        other.set("other", "k", "v");
      }
      for (const key of ["after1", "after2"]) {
        const refused = await put(key);
        assert.equal(refused.status, 503);
        assert.match(refused.body, /database file was (deleted|replaced)/);
      }
      const del = await rawRequest(
        port,
        "DELETE /t/a/g/g/k/before HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
      );
      assert.equal(del.status, 503);
      svc.child.kill("SIGTERM");
      const { code, stderr } = await svc.finish();
      assert.equal(code, 0, stderr);
      const lines = stderr.trim().split("\n");
      assert.equal(lines.length, 1, stderr);
      assert.match(
        lines[0]!,
        /database file .*live\.db was (deleted|replaced by another file) while the service had it open; writes are refused with 503/,
      );
    });
  }
});

Deno.test("live config service: what held still holds over the hardened server", async (t) => {
  using dir = tempDir();
  const db = dir.file("live.db");
  const { svc, base, port } = await service(db, [
    "--max-keys",
    "50",
    "--max-body-bytes",
    "1048576",
  ]);
  await using _ = svc;
  await t.step("a 100 MB body is refused with 413 at once", async () => {
    // A client that announces 100 MB and starts sending: the answer comes
    // before the body. (fetch itself takes seconds to give up sending,
    // whatever the server, so a raw socket measures the server.)
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const started = performance.now();
    await writeAll(
      conn,
      encoder.encode(
        `PUT /t/a/g/big/k/k HTTP/1.1\r\nhost: x\r\ncontent-length: ${
          100 * 1024 * 1024
        }\r\n\r\n`,
      ),
    );
    const sending = writeAll(conn, new Uint8Array(8 * 1024 * 1024))
      .catch(() => {});
    const response = parseResponse(await readAll(conn), started);
    await sending;
    conn.close();
    assert.equal(response.status, 413);
    assert.match(response.body, /larger than 1048576 bytes/);
    assert.ok(response.ms < 1_000, `${response.ms} ms`);
    // Streamed without a length, over the limit: 413 too.
    const chunked = await fetch(`${base}/t/a/g/big/k/k`, {
      method: "PUT",
      body: ReadableStream.from(
        Array.from({ length: 40 }, () => new Uint8Array(64 * 1024)),
      ),
    });
    assert.equal(chunked.status, 413);
    await chunked.body?.cancel();
  });
  await t.step(
    "200 parallel PUTs at a quota of 50 store exactly 50",
    async () => {
      const statuses = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) =>
            fetch(`${base}/t/q/g/g/k/k${i}`, { method: "PUT", body: `${i}` })
              .then(async (r) => {
                await r.body?.cancel();
                return r.status;
              }),
        ),
      );
      assert.equal(
        statuses.filter((s) => s === 204).length,
        50,
      );
      assert.equal(statuses.filter((s) => s === 429).length, 150);
    },
  );
  await t.step(
    "200 event streams opened and dropped free their descriptors within 1 s",
    async () => {
      const controllers = Array.from(
        { length: 200 },
        () => new AbortController(),
      );
      const responses = await Promise.all(
        controllers.map((c) =>
          fetch(`${base}/t/a/events`, { signal: c.signal })
        ),
      );
      assert.ok(responses.every((r) => r.status === 200));
      // Each stream holds its own connection (pooled idle ones included).
      const during = await svc.descriptors();
      assert.ok(during >= 200, `${during}`);
      for (const c of controllers) c.abort();
      for (const r of responses) await r.body?.cancel().catch(() => {});
      const started = performance.now();
      let now = during;
      while (now > during - 200) {
        assert.ok(
          performance.now() - started < 1_000,
          `${now} descriptors 1 s after 200 streams closed, ${during} with them`,
        );
        await sleep(20);
        now = await svc.descriptors();
      }
    },
  );
  await t.step(
    "a chunked body and pipelined requests on one connection",
    async () => {
      const response = await rawRequest(
        port,
        "PUT /t/a/g/g/k/chunked HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n" +
          "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n" +
          get("/t/a/g/g/k/chunked"),
      );
      assert.equal(response.status, 204);
      assert.match(
        response.body,
        /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nabcdefg$/,
      );
    },
  );
  await t.step(
    "malformed framing answers 400 or 501 and writes nothing",
    async () => {
      const cases: [string, number][] = [
        [
          "PUT /t/a/g/g/k/x HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
          400,
        ],
        ["PUT /t/a/g/g/k/x HTTP/1.1\r\ncontent-length: 1, 2\r\n\r\nab", 400],
        ["PUT /t/a/g/g/k/x HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n", 501],
        ["GET /t/a/g/g HTTP/1.1\r\nbad header\r\n\r\n", 400],
        ["GET /t/a/g/g HTTP/2.0\r\n\r\n", 400],
        ["GET http://evil/t/a/g/g HTTP/1.1\r\n\r\n", 400],
        [`GET /${"x".repeat(20_000)} HTTP/1.1\r\n\r\n`, 431],
      ];
      for (const [request, status] of cases) {
        const response = await rawRequest(port, request);
        assert.equal(response.status, status, request.slice(0, 60));
      }
      const group = await rawRequest(port, get("/t/a/g/g"));
      assert.deepEqual(Object.keys(JSON.parse(group.body)), ["chunked"]);
    },
  );
  svc.child.kill("SIGTERM");
  const { code, stderr } = await svc.finish();
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
});

Deno.test("live config service: SIGTERM during a write burst loses no acknowledged write", async () => {
  using dir = tempDir();
  const db = dir.file("live.db");
  const { svc, base } = await service(db);
  await using _ = svc;
  const acknowledged: string[] = [];
  let stop = false;
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      try {
        const response = await fetch(`${base}/t/a/g/g/k/w${w}-${i}`, {
          method: "PUT",
          body: `${i}`,
        });
        await response.body?.cancel();
        if (response.status === 204) acknowledged.push(`w${w}-${i}`);
      } catch {
        return; // The server went away.
      }
    }
  };
  const writers = Array.from({ length: 8 }, (_, w) => writer(w));
  while (acknowledged.length < 200) await sleep(10);
  svc.child.kill("SIGTERM");
  const { code, stderr } = await svc.finish();
  stop = true;
  await Promise.all(writers);
  assert.equal(code, 0, stderr);
  using store = new Store(db);
  const stored = store.getAll("a:g");
  const lost = acknowledged.filter((key) => !stored.has(key));
  assert.deepEqual(lost, []);
});
