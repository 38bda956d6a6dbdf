/**
 * The live-config service as pure request handling: an HTTP API and
 * Server-Sent Events over one store (a local {@linkcode Store} or any
 * {@linkcode AsyncStore}, such as `EtcdStore`), one tenant per
 * {@linkcode AsyncScopedStore}. {@linkcode createApp} returns a `fetch`-style
 * handler for `Deno.serve`; `main.ts` adds flags, the file and signals.
 *
 * Routes (`:tenant` matches `/^[A-Za-z0-9-]+$/`; `:group` and `:key` are any
 * string, one URL-encoded path segment each, see {@linkcode encodeSegment}):
 *
 * | Route                               | Answer                                                                                        |
 * | ----------------------------------- | --------------------------------------------------------------------------------------------- |
 * | `GET /`                             | The live page (`?tenant=demo&group=config` by default).                                       |
 * | `GET /t/:tenant/g/:group`           | `200` with every live entry as a JSON object.                                                 |
 * | `GET /t/:tenant/g/:group/k/:key`    | `200` with the value as `text/plain`; `404` when there is no live key.                        |
 * | `PUT /t/:tenant/g/:group/k/:key`    | Stores the body (UTF-8) as the value, `?ttl=ms` to expire it; `204`.                          |
 * | `DELETE /t/:tenant/g/:group/k/:key` | `204`; `404` when there was no live key.                                                      |
 * | `POST /t/:tenant/g/:group/render`   | Renders the body as a Go template over the group; `200` with the text (`?missingKey=` mode).  |
 * | `GET /t/:tenant/events`             | `text/event-stream` of the tenant's events, `?group=` and `?key=` to filter, `?snapshot=1`.  |
 * | `GET /t/:tenant/writes`             | `200` with `{ "writes": n }`: how many writes (`PUT`, `DELETE`) the service made for it.      |
 *
 * `HEAD` answers wherever `GET` does, with GET's status, headers and
 * `content-length`, and no body.
 *
 * Every error is JSON, `{ "error": "…" }`: `400` for bad input (a bad tenant,
 * path encoding, `ttl`, `missingKey`, a body that is not UTF-8, a template
 * that fails, with its `line` and `column`), `404` for an unknown route,
 * `405` with an `Allow` header for a wrong method, `408` for a body that has
 * not arrived within `bodyTimeoutMs`, `413` for a body over
 * `maxBodyBytes`, `429` for a quota (with `limit` and `max`) and `503` once
 * the store or the app is closed, or for a write once the store's file was
 * deleted or replaced (see {@linkcode AppOptions.checkFile}). A refused
 * request writes nothing.
 *
 * One resource has one spelling: a path that URL parsing would change (dot
 * segments, `%2e`, `\`) or a segment that is not exactly what
 * {@linkcode encodeSegment} makes of its name (`%62ob` for `bob`, `%2f` for
 * `%2F`) answers `400`, so that a proxy that authorises by path prefix sees
 * the tenant, group and key the service serves. (`Deno.serve` hands the
 * handler the raw request target, which is what this checks; a `#` in it is
 * refused too.)
 *
 * These are the limits an application owns, written as any handler would
 * write them: the body's size and the deadline to receive it, template
 * budgets, quotas, the canonical path. What belongs to the HTTP server (framing, header limits) is `Deno.serve`'s;
 * what belongs to the edge (per-IP limits, header and idle timeouts, TLS) is
 * a reverse proxy's: see docs/serving.md.
 *
 * The event route is {@linkcode eventStreamResponse} of `@core/store/sse`
 * over the tenant's scoped store: each event is a frame
 *
 * ```text
 * id: 7
 * event: set
 * data: {"type":"set","group":"acme:config","key":"theme","value":"dark","timestamp":1700000000000,"origin":"local","seq":7}
 * ```
 *
 * with `id:` when the store has positions (`--change-feed`, or etcd), so an
 * `EventSource` that reconnects resumes exactly where it was, including what
 * other instances wrote meanwhile. `?snapshot=1` (with a `group`) starts the
 * stream with an `event: snapshot` frame of the group's entries, read at one
 * instant with its position, so that the page shows the group, then its
 * changes, without a gap. When the log cannot replay a position, or a client
 * read too slowly for it, the stream sends `event: resync` (then a fresh
 * snapshot, with `?snapshot=1`). The filters are those of
 * `AsyncScopedStore.watch`: an absent or empty `group` or `key` (or `*`)
 * means every one, and a `delete_group` event (key `""`) reaches only
 * streams without a `key` filter. A `: heartbeat` comment comes after
 * `heartbeatMs` of silence. See docs/streaming.md.
 *
 * @example Serve it
 * ```ts
 * import { Store } from "@core/store";
 * import { createApp } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * using store = new Store();
 * const app = createApp({ store, maxKeys: 100 });
 * // Deno.serve({ port: 8000 }, app.handler);
 * const put = await app.handler(
 *   new Request("http://localhost/t/acme/g/config/k/theme", {
 *     method: "PUT",
 *     body: "dark",
 *   }),
 * );
 * assert.equal(put.status, 204);
 * const group = await app.handler(
 *   new Request("http://localhost/t/acme/g/config"),
 * );
 * assert.deepEqual(await group.json(), { theme: "dark" });
 * app.close();
 * ```
 *
 * @module
 */

import {
  AsyncScopedStore,
  type AsyncStore,
  QuotaExceededError,
  Store,
  StoreClosedError,
  StoreError,
  TemplateError,
  toAsync,
} from "@core/store";
import { eventStreamResponse } from "@core/store/sse";
import { PAGE_HTML } from "./page.ts";

/** Options for {@linkcode createApp}. */
export interface AppOptions {
  /**
   * The open store every tenant lives in: a local {@linkcode Store} or any
   * {@linkcode AsyncStore}, such as `EtcdStore` for instances on several
   * hosts. The caller closes it.
   */
  store: Store | AsyncStore;
  /** Most live keys per tenant; `0` or absent means unlimited. */
  maxKeys?: number;
  /** Most groups holding a live key per tenant; `0` or absent: unlimited. */
  maxGroups?: number;
  /** Milliseconds of silence before a `: heartbeat` comment. Default `15_000`. */
  heartbeatMs?: number;
  /** Largest accepted request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Milliseconds to receive a request body, from the start of its reading;
   * after it the request answers `408`. Default `30_000`.
   */
  bodyTimeoutMs?: number;
  /**
   * Whether to check, before each write, that the store's file is still the
   * one it opened (same device and inode). When it was deleted or replaced,
   * writes would land in a file nobody can reopen: they are refused with
   * `503` and one log line. Default `true` for a file-backed local store.
   */
  checkFile?: boolean;
}

/** What {@linkcode createApp} returns. */
export interface App {
  /** Answers one request; pass it to `Deno.serve`. Never throws. */
  handler: (request: Request) => Promise<Response>;
  /**
   * Ends every open event stream (clearing its timer and unwatching) and
   * answers later event requests with `503`, so that `server.shutdown()`
   * can finish. Does not close the store. Idempotent.
   */
  close(): void;
  /** How many event streams are open. */
  readonly streams: number;
}

const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_BODY_TIMEOUT_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The group of the per-tenant write counters, one key per tenant. A tenant's
 * data lives in groups `tenant:…`, and a tenant name has no `_`: the counters
 * are outside every tenant, so they count against no quota and reach no
 * tenant's event stream.
 */
const WRITES_GROUP = "_writes";

const JSON_TYPE = "application/json; charset=utf-8";
const TEXT_TYPE = "text/plain; charset=utf-8";

/** A refusal with its HTTP status and JSON body. */
class HttpError extends Error {
  readonly status: number;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    message: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.extra = extra;
    this.headers = headers;
  }
}

/**
 * Encodes a group or key as one path segment: `encodeURIComponent`, except
 * that `.` and `..` (which URL parsers resolve away as dot segments, even
 * percent-encoded) are sent as `~.` and `~..`. To keep the mapping
 * one-to-one, any string of one or more `~` followed by `.` or `..` gains one
 * more `~`. Every other string is plain `encodeURIComponent`.
 *
 * @example Segments
 * ```ts
 * import { decodeSegment, encodeSegment } from "./server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeSegment("a/b c"), "a%2Fb%20c");
 * assert.equal(encodeSegment(".."), "~..");
 * assert.equal(decodeSegment(encodeSegment("~.")), "~.");
 * ```
 *
 * @param name A group or key.
 * @returns The path segment.
 */
export function encodeSegment(name: string): string {
  return encodeURIComponent(/^~*\.\.?$/.test(name) ? `~${name}` : name);
}

/**
 * The inverse of {@linkcode encodeSegment}, as the server applies it.
 *
 * @param segment A raw path segment.
 * @returns The group or key.
 * @throws {URIError} When the segment is not valid percent-encoded UTF-8.
 */
export function decodeSegment(segment: string): string {
  const name = decodeURIComponent(segment);
  return /^~+\.\.?$/.test(name) ? name.slice(1) : name;
}

/**
 * Creates the live-config service over `options.store`.
 *
 * @param options The store, per-tenant quotas and stream timing.
 * @returns The request handler and `close`.
 * @throws {TypeError} When `store` is neither a {@linkcode Store} nor an
 * {@linkcode AsyncStore}.
 * @throws {RangeError} When a numeric option is out of range.
 */
export function createApp(options: AppOptions): App {
  const given = options.store;
  if (
    !(given instanceof Store) &&
    (typeof given !== "object" || given === null ||
      typeof (given as AsyncStore).getAll !== "function")
  ) {
    throw new TypeError(
      "createApp: options.store must be a Store or an AsyncStore",
    );
  }
  // One code path for both backends: a local store behind promises.
  const store = given instanceof Store ? toAsync(given) : given;
  const path = given instanceof Store ? given.path : undefined;
  const quota = {
    maxKeys: whole("maxKeys", options.maxKeys, 0, 0, Number.MAX_SAFE_INTEGER),
    maxGroups: whole(
      "maxGroups",
      options.maxGroups,
      0,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
  };
  const heartbeatMs = whole(
    "heartbeatMs",
    options.heartbeatMs,
    DEFAULT_HEARTBEAT_MS,
    1,
    MAX_TIMER_MS,
  );
  const streams = new Set<CountedStream>();
  // Ends every event stream when the app closes: a server waits for them.
  const closing = new AbortController();
  let closed = false;
  const reading = {
    maxBytes: whole(
      "maxBodyBytes",
      options.maxBodyBytes,
      DEFAULT_MAX_BODY_BYTES,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    timeoutMs: whole(
      "bodyTimeoutMs",
      options.bodyTimeoutMs,
      DEFAULT_BODY_TIMEOUT_MS,
      1,
      MAX_TIMER_MS,
    ),
    closing: () => closed,
  };
  const fileCheck =
    options.checkFile === false || path === undefined || path === ":memory:"
      ? undefined
      : new FileCheck(path);

  function tenant(segment: string): AsyncScopedStore {
    // AsyncScopedStore rejects a bad namespace with a TypeError: a 400.
    return new AsyncScopedStore(store, decode(segment, "tenant"), quota);
  }

  /**
   * Counts a committed write. `increment` is atomic in the store, so
   * concurrent requests (and instances sharing the store) never lose one.
   * The write itself has committed: a counter that fails is logged, and the
   * client still gets its `204`.
   */
  async function countWrite(namespace: string): Promise<void> {
    try {
      await store.increment(WRITES_GROUP, namespace);
    } catch (error) {
      console.error(`live-config: the write counter of ${namespace}: ${error}`);
    }
  }

  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    checkPath(request.url, url.pathname);
    const parts = url.pathname.split("/").slice(1);
    // HEAD is GET without the body, which the handler drops.
    const method = request.method === "HEAD" ? "GET" : request.method;
    const [first, tenantPart, third, groupPart, fifth, keyPart] = parts;

    if (parts.length === 1 && first === "") {
      allow(method, ["GET"]);
      return new Response(PAGE_HTML, {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    if (first !== "t" || tenantPart === undefined) throw notFound(request);

    if (parts.length === 3 && third === "events") {
      allow(method, ["GET"]);
      const scoped = tenant(tenantPart);
      if (closed) throw new HttpError(503, "the service is shutting down");
      return await events(scoped, request, url, {
        heartbeatMs,
        streams,
        signal: closing.signal,
      });
    }
    if (parts.length === 3 && third === "writes") {
      allow(method, ["GET"]);
      const { namespace } = tenant(tenantPart);
      const writes = await store.get(WRITES_GROUP, namespace);
      return json(200, { writes: writes === undefined ? 0 : Number(writes) });
    }
    if (third !== "g" || groupPart === undefined) throw notFound(request);

    if (parts.length === 4) {
      allow(method, ["GET"]);
      const scoped = tenant(tenantPart);
      const group = decode(groupPart, "group");
      return json(200, Object.fromEntries(await scoped.getAll(group)));
    }

    if (parts.length === 5 && fifth === "render") {
      allow(method, ["POST"]);
      const scoped = tenant(tenantPart);
      const group = decode(groupPart, "group");
      const mode = url.searchParams.get("missingKey");
      const template = await readText(request, reading);
      const text = mode === null
        ? await scoped.render(template, group)
        : await scoped.render(template, group, {
          missingKey: mode as "default" | "zero" | "error",
        });
      return text200(text);
    }

    if (parts.length === 6 && fifth === "k" && keyPart !== undefined) {
      allow(method, ["GET", "PUT", "DELETE"]);
      const scoped = tenant(tenantPart);
      const group = decode(groupPart, "group");
      const key = decode(keyPart, "key");
      if (method === "GET") {
        const value = await scoped.get(group, key);
        if (value === undefined) throw missing(group, key);
        return text200(value);
      }
      fileCheck?.check();
      if (method === "DELETE") {
        if (!await scoped.delete(group, key)) throw missing(group, key);
        await countWrite(scoped.namespace);
        return new Response(null, { status: 204 });
      }
      const ttl = parseTTL(url.searchParams.get("ttl"));
      const value = await readText(request, reading);
      fileCheck?.check();
      if (ttl === undefined) await scoped.set(group, key, value);
      else await scoped.setWithTTL(group, key, value, ttl);
      await countWrite(scoped.namespace);
      return new Response(null, { status: 204 });
    }
    throw notFound(request);
  }

  return {
    async handler(request: Request): Promise<Response> {
      let response: Response;
      try {
        response = await route(request);
      } catch (error) {
        response = errorResponse(error);
      }
      return request.method === "HEAD" ? await headOf(response) : response;
    },
    close(): void {
      closed = true;
      closing.abort();
      for (const stream of [...streams]) stream.forget();
    },
    get streams(): number {
      return streams.size;
    },
  };
}

/**
 * The event route's answer: the tenant's events matching `?group=` and
 * `?key=`, through `eventStreamResponse`, until the client leaves or the
 * app closes.
 */
async function events(
  scoped: AsyncScopedStore,
  request: Request,
  url: URL,
  context: {
    heartbeatMs: number;
    streams: Set<CountedStream>;
    signal: AbortSignal;
  },
): Promise<Response> {
  const group = url.searchParams.get("group") || "*";
  const key = url.searchParams.get("key") || "*";
  const snapshot = url.searchParams.get("snapshot") === "1";
  if (snapshot && group === "*") {
    throw new HttpError(400, "snapshot=1 needs a group");
  }
  const response = await eventStreamResponse(scoped, group, key, {
    request,
    signal: context.signal,
    heartbeatMs: context.heartbeatMs,
    snapshot,
  });
  const counted = new CountedStream(response.body!, context.streams);
  return new Response(counted.body, { headers: response.headers });
}

/**
 * The helper's stream, passed through chunk by chunk (no buffering of its
 * own) and counted while open, for {@linkcode App.streams}.
 */
class CountedStream {
  readonly body: ReadableStream<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #registry: Set<CountedStream>;

  constructor(
    source: ReadableStream<Uint8Array>,
    registry: Set<CountedStream>,
  ) {
    this.#reader = source.getReader();
    this.#registry = registry;
    registry.add(this);
    this.body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const { done, value } = await this.#reader.read().catch(() => ({
          done: true as const,
          value: undefined,
        }));
        if (!done) return controller.enqueue(value);
        this.forget();
        controller.close();
      },
      cancel: () => {
        this.forget();
        return this.#reader.cancel().catch(() => {});
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Stops counting the stream: the app is closing, and the helper (whose
   * signal it aborted) ends it after what it already sent.
   */
  forget(): void {
    this.#registry.delete(this);
  }
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) {
    const allowed = methods.flatMap((m) => m === "GET" ? ["GET", "HEAD"] : [m])
      .join(", ");
    throw new HttpError(
      405,
      `method ${method} is not allowed here; use ${allowed}`,
      {},
      { allow: allowed },
    );
  }
}

/** The response to HEAD: GET's status and headers, its length, no body. */
async function headOf(response: Response): Promise<Response> {
  const headers = new Headers(response.headers);
  if (response.body !== null) {
    if ((headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      await response.body.cancel();
    } else {
      const length = (await response.arrayBuffer()).byteLength;
      headers.set("content-length", String(length));
    }
  }
  return new Response(null, { status: response.status, headers });
}

/**
 * Refuses a path that URL parsing changed: `request.url` as `Deno.serve`
 * passes it is the raw request target, where `..`, `%2e%2e` or `\` would
 * otherwise name another tenant's resource after normalisation.
 */
function checkPath(rawUrl: string, pathname: string): void {
  const raw = rawUrl.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, "")
    .replace(/[?#][\s\S]*$/, "");
  if (raw !== pathname || rawUrl.includes("#")) {
    throw new HttpError(
      400,
      `the request path ${
        JSON.stringify(raw)
      } is not in canonical form (it has dot segments, "\\", an encoded "." or a "#")`,
    );
  }
}

/** The store's file as opened; notices it deleted or replaced. */
class FileCheck {
  readonly #path: string;
  readonly #identity: { dev: number; ino: number | null } | undefined;
  #problem: string | undefined;

  constructor(path: string) {
    this.#path = path;
    try {
      const { dev, ino } = Deno.statSync(path);
      this.#identity = { dev, ino };
    } catch {
      // Not a file we can stat (a URI, no permission): nothing to compare.
    }
  }

  /** Throws `503` once the file is gone or another one; logs that once. */
  check(): void {
    if (this.#identity === undefined) return;
    if (this.#problem === undefined) {
      let info: Deno.FileInfo | undefined;
      try {
        info = Deno.statSync(this.#path);
      } catch {
        // Deleted (or unreadable): either way not the file the store has.
      }
      if (info === undefined) this.#problem = "was deleted";
      else if (
        info.dev !== this.#identity.dev || info.ino !== this.#identity.ino
      ) this.#problem = "was replaced by another file";
      else return;
      console.error(
        `live-config: the database file ${this.#path} ${this.#problem} while the service had it open; writes are refused with 503 until the service is restarted`,
      );
    }
    throw new HttpError(
      503,
      `the database file ${this.#problem}; writes are refused until the service is restarted`,
    );
  }
}

function notFound(request: Request): HttpError {
  return new HttpError(
    404,
    `no route for ${request.method} ${new URL(request.url).pathname}`,
  );
}

function missing(group: string, key: string): HttpError {
  return new HttpError(
    404,
    `no live key ${JSON.stringify(key)} in group ${JSON.stringify(group)}`,
  );
}

function decode(segment: string, name: string): string {
  let decoded: string;
  try {
    decoded = decodeSegment(segment);
  } catch {
    throw new HttpError(
      400,
      `${name} path segment ${
        JSON.stringify(segment)
      } is not valid percent-encoded UTF-8`,
    );
  }
  // One resource, one spelling: "%62ob" or "%7e.." would name the same
  // data as "bob" or "~.." under another path, which a proxy that
  // authorises by path prefix would not recognise.
  const canonical = encodeSegment(decoded);
  if (canonical !== segment) {
    throw new HttpError(
      400,
      `${name} path segment ${
        JSON.stringify(segment)
      } is not in canonical form; use ${JSON.stringify(canonical)}`,
    );
  }
  return decoded;
}

function parseTTL(param: string | null): number | undefined {
  if (param === null) return undefined;
  const ttl = Number(param);
  if (!/^[1-9][0-9]*$/.test(param) || !Number.isSafeInteger(ttl)) {
    throw new HttpError(
      400,
      `ttl must be a positive integer number of milliseconds, received ${
        JSON.stringify(param)
      }`,
    );
  }
  return ttl;
}

/**
 * Reads the body into one buffer that grows by doubling up to
 * `limits.maxBytes`: chunks are copied and dropped at once, because a chunk
 * may be a small view of a large buffer (64 KiB in `Deno.serve`), and keeping
 * thousands of a trickled body's chunks would pin that much each. Peak memory
 * per request is under twice the limit. The whole body must arrive within
 * `limits.timeoutMs` (`Deno.serve` has no body deadline of its own); after
 * it the request answers `408`.
 */
async function readText(
  request: Request,
  limits: { maxBytes: number; timeoutMs: number; closing: () => boolean },
): Promise<string> {
  const limit = limits.maxBytes;
  // The client should not reuse a connection whose body was left unread.
  const close = { connection: "close" };
  const tooLarge = () =>
    new HttpError(413, `body is larger than ${limit} bytes`, {
      max: limit,
    }, close);
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > limit) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (request.body === null) return "";
  const reader = request.body.getReader();
  // A timer cleared when the body is in, rather than AbortSignal.timeout(),
  // whose timer stays pending to its end: at thousands of requests a second
  // that would be tens of thousands of live timers.
  let late = false;
  const deadline = setTimeout(() => {
    late = true;
    // A pending read resolves as done.
    reader.cancel().catch(() => {});
  }, limits.timeoutMs);
  let buffer = new Uint8Array(
    Math.min(limit, Math.max(1024, Number(length) || 0)),
  );
  let size = 0;
  try {
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (late) {
        throw new HttpError(
          408,
          `the request body did not arrive within ${limits.timeoutMs} ms`,
          {},
          close,
        );
      }
      if (done) break;
      if (size + chunk.byteLength > limit) throw tooLarge();
      if (size + chunk.byteLength > buffer.byteLength) {
        const grown = new Uint8Array(
          Math.min(
            limit,
            Math.max(size + chunk.byteLength, buffer.byteLength * 2),
          ),
        );
        grown.set(buffer.subarray(0, size));
        buffer = grown;
      }
      buffer.set(chunk, size);
      size += chunk.byteLength;
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    if (error instanceof HttpError) throw error;
    // `server.shutdown()` ends the reading of bodies still arriving.
    if (limits.closing()) {
      throw new HttpError(503, "the service is shutting down", {}, close);
    }
    // The client went away: nothing to store, nothing worth a stack trace.
    throw new HttpError(400, "the request body could not be read");
  } finally {
    clearTimeout(deadline);
  }
  const bytes = buffer.subarray(0, size);
  try {
    // ignoreBOM keeps a leading U+FEFF: the value is stored byte for byte.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes,
    );
  } catch {
    throw new HttpError(400, "body is not valid UTF-8");
  }
}

function errorResponse(error: unknown): Response {
  if (error instanceof HttpError) {
    return json(
      error.status,
      { error: error.message, ...error.extra },
      error.headers,
    );
  }
  if (error instanceof QuotaExceededError) {
    return json(429, {
      error: error.message,
      limit: error.limit,
      max: error.max,
    });
  }
  if (error instanceof TemplateError) {
    return json(400, {
      error: error.message,
      line: error.line,
      column: error.column,
    });
  }
  if (error instanceof StoreClosedError) {
    return json(503, { error: error.message });
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    return json(400, { error: error.message });
  }
  // The store failed (SQLite, or an etcd cluster without quorum): a
  // temporary condition for the client; the details go to the log.
  console.error(error);
  if (error instanceof StoreError) {
    return json(503, { error: "the store is unavailable; try again" });
  }
  return json(500, { error: "internal error" });
}

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": JSON_TYPE,
      "cache-control": "no-store",
      ...headers,
    },
  });
}

function text200(text: string): Response {
  return new Response(text, {
    headers: { "content-type": TEXT_TYPE, "cache-control": "no-store" },
  });
}

function whole(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `createApp: ${name} must be an integer from ${min} to ${max}, received ${value}`,
    );
  }
  return value;
}
