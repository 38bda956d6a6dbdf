/**
 * The request-head parser of the live-config example's HTTP/1.1 server
 * (examples/live_config/http_server.ts), without sockets: what it accepts,
 * and the status it refuses each malformed head with. The server itself is
 * driven over real sockets in tests/net/live_config_hardening_suite.ts.
 */
import assert from "node:assert/strict";
import { parseHead } from "../examples/live_config/http_server.ts";

Deno.test("parseHead reads the method, target, headers and body framing", () => {
  const head = parseHead(
    "PUT /t/a/g/g/k/k?ttl=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nX-Note:  padded \t",
  );
  assert.equal(head.method, "PUT");
  assert.equal(head.target, "/t/a/g/g/k/k?ttl=5");
  assert.equal(head.headers.get("x-note"), "padded");
  assert.equal(head.length, 12);
  assert.equal(head.keepAlive, true);
  assert.equal(head.expectContinue, false);

  const chunked = parseHead(
    "POST /r HTTP/1.1\r\ntransfer-encoding: Chunked\r\nexpect: 100-continue\r\nconnection: close",
  );
  assert.equal(chunked.length, -1);
  assert.equal(chunked.expectContinue, true);
  assert.equal(chunked.keepAlive, false);

  const old = parseHead("GET / HTTP/1.0");
  assert.equal(old.keepAlive, false);
  assert.equal(old.length, 0);
  // The same length twice is one length.
  assert.equal(parseHead("PUT / HTTP/1.1\r\ncontent-length: 3, 3").length, 3);
});

Deno.test("parseHead refuses a malformed or non-canonical head with its status", () => {
  const cases: [string, number, RegExp][] = [
    ["GET /", 400, /malformed request line/],
    ["get / HTTP/1.1 extra", 400, /malformed request line/],
    ["GET / HTTP/2.0", 400, /malformed request line/],
    ["G@T / HTTP/1.1", 400, /malformed request line/],
    ["GET * HTTP/1.1", 400, /must be a path/],
    ["GET http://evil/ HTTP/1.1", 400, /must be a path/],
    ["GET //evil/x HTTP/1.1", 400, /canonical form/],
    ["GET /t/a/../b HTTP/1.1", 400, /canonical form/],
    ["GET /t/a/%2e%2e/b HTTP/1.1", 400, /canonical form/],
    ["GET /t/a/.%2E/b HTTP/1.1", 400, /canonical form/],
    ["GET /t/a\\..\\b HTTP/1.1", 400, /canonical form/],
    ["GET /t/./a HTTP/1.1", 400, /canonical form/],
    ["GET /a#frag HTTP/1.1", 400, /canonical form/],
    ["GET / HTTP/1.1\r\nno colon", 400, /malformed header/],
    ["GET / HTTP/1.1\r\n folded: value", 400, /malformed header/],
    ["GET / HTTP/1.1\r\nbad name: v", 400, /malformed header/],
    ["GET / HTTP/1.1\r\nx: a\x00b", 400, /malformed header/],
    ["GET / HTTP/1.1\r\nx: a\rb", 400, /malformed header/],
    [
      "PUT / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked",
      400,
      /both Content-Length and Transfer-Encoding/,
    ],
    ["PUT / HTTP/1.1\r\ncontent-length: 1, 2", 400, /malformed Content-Length/],
    ["PUT / HTTP/1.1\r\ncontent-length: -1", 400, /malformed Content-Length/],
    ["PUT / HTTP/1.1\r\ncontent-length: 0x10", 400, /malformed/],
    ["PUT / HTTP/1.1\r\ntransfer-encoding: gzip", 501, /not supported/],
    ["PUT / HTTP/1.0\r\ntransfer-encoding: chunked", 501, /not supported/],
    [
      "PUT / HTTP/1.1\r\ntransfer-encoding: chunked, chunked",
      501,
      /not supported/,
    ],
  ];
  for (const [text, status, message] of cases) {
    assert.throws(
      () => parseHead(text),
      (error: Error & { status?: number }) => {
        assert.equal(error.status, status, JSON.stringify(text));
        assert.match(error.message, message, JSON.stringify(text));
        return true;
      },
    );
  }
});
