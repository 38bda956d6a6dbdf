/**
 * A small HTTP/1.1 server for a `fetch`-style handler, over `Deno.listen`,
 * with the budgets `Deno.serve` (Deno 2.9) lacks:
 *
 * - A header timeout (`408` and close when the request head is incomplete),
 *   a body timeout (`408` and close when the body has not arrived in time),
 *   an idle timeout for kept-alive connections and a write timeout for
 *   clients that stop reading.
 * - Running out of file descriptors does not end the accept loop (in
 *   `Deno.serve` the loop ends and its `finished` promise rejects with "Too
 *   many open files", which kills the process). One spare descriptor is
 *   kept; while none is free, each new connection is answered `503` and
 *   closed, and serving resumes when descriptors free up.
 * - Request bodies are streamed to the handler as exact copies of what
 *   arrived, so a body trickled a byte at a time pins no read buffers.
 * - A request target that URL parsing would change (dot segments, `%2e`,
 *   `\`) is refused with `400`: the handler sees the path the client sent.
 * - `shutdown(deadlineMs)` stops accepting, closes idle connections, lets
 *   requests in flight finish, and cuts whatever is left at the deadline.
 *
 * Refusals it makes itself are JSON `{ "error": "…" }`, as the live-config
 * handler's own.
 *
 * @module
 */

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /** The interface to listen on. */
  hostname: string;
  /** The TCP port; `0` picks a free one. */
  port: number;
  /** Milliseconds to receive a request's head. Default `10_000`. */
  headerTimeoutMs?: number;
  /** Milliseconds to receive a request's body, after its head. Default `30_000`. */
  bodyTimeoutMs?: number;
  /** Milliseconds a kept-alive connection may wait for its next request. Default `30_000`. */
  idleTimeoutMs?: number;
  /** Milliseconds one write to the client may take. Default `30_000`. */
  writeTimeoutMs?: number;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Where the server reports what an operator should know. */
  log?: (message: string) => void;
}

/** The running server, from {@linkcode serve}. */
export interface HttpServer {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Open client connections. */
  readonly connections: number;
  /**
   * Stops accepting, closes idle connections, waits for requests in flight
   * for at most `deadlineMs`, then closes every connection left.
   *
   * @returns How many connections were cut at the deadline.
   */
  shutdown(deadlineMs: number): Promise<number>;
}

/** The default budgets, in milliseconds. */
export const DEFAULT_TIMEOUTS = {
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  writeTimeoutMs: 30_000,
} as const;

/** The largest request head (request line and headers), in bytes. */
export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_CHUNK_LINE = 1024;
/** How often connections' deadlines are checked: their precision. */
const SWEEP_MS = 50;
/**
 * How long, and how much, a connection reads and discards after answering
 * without reading the request body.
 */
const LINGER_MS = 500;
const LINGER_BYTES = 4 * 1024 * 1024;
/** A client leaving mid-exchange is not worth a log line. */
const QUIET_ERRORS = new Set([
  "BrokenPipe",
  "ConnectionReset",
  "ConnectionAborted",
  "BadResource",
  "Interrupted",
  "NotConnected",
]);
const MAX_TRAILER_BYTES = 8 * 1024;

const encoder = new TextEncoder();
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** A refusal the server answers itself, then closes the connection. */
class Refusal extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function refusalBytes(status: number, message: string): Uint8Array {
  const body = JSON.stringify({ error: message });
  return encoder.encode(
    `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n` +
      "content-type: application/json; charset=utf-8\r\n" +
      "cache-control: no-store\r\n" +
      `content-length: ${encoder.encode(body).byteLength}\r\n` +
      "connection: close\r\n\r\n" + body,
  );
}

function isOutOfDescriptors(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "EMFILE" || code === "ENFILE" ||
    /Too many open files/.test(String(error));
}

/**
 * Serves `handler` until {@linkcode HttpServer.shutdown}.
 *
 * @param options Where to listen and the budgets.
 * @param handler Answers one request.
 * @returns The running server.
 * @throws {Deno.errors.AddrInUse} When the port is taken.
 */
export function serve(
  options: ServeOptions,
  handler: (request: Request) => Promise<Response>,
): HttpServer {
  const listener = Deno.listen({
    hostname: options.hostname,
    port: options.port,
  });
  const addr = listener.addr;
  const budgets = {
    headerTimeoutMs: options.headerTimeoutMs ??
      DEFAULT_TIMEOUTS.headerTimeoutMs,
    bodyTimeoutMs: options.bodyTimeoutMs ?? DEFAULT_TIMEOUTS.bodyTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_TIMEOUTS.idleTimeoutMs,
    writeTimeoutMs: options.writeTimeoutMs ?? DEFAULT_TIMEOUTS.writeTimeoutMs,
  };
  const log = options.log ?? ((message: string) => console.error(message));
  const host = addr.hostname.includes(":")
    ? `[${addr.hostname}]`
    : addr.hostname;
  const context: ServerContext = {
    origin: `http://${host}:${addr.port}`,
    budgets,
    handler,
    log,
    live: new Set(),
    draining: false,
  };
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const connection of context.live) connection.sweep(now);
  }, SWEEP_MS);
  // The listener keeps the process alive while serving, not this.
  Deno.unrefTimer(sweep);
  const accepting = acceptLoop(listener, context);
  options.onListen?.(addr);

  return {
    addr,
    get connections() {
      return context.live.size;
    },
    async shutdown(deadlineMs: number): Promise<number> {
      if (!context.draining) {
        context.draining = true;
        try {
          listener.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      for (const connection of context.live) connection.closeIfIdle();
      const done = Promise.all([...context.live].map((c) => c.done));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), deadlineMs);
      });
      const outcome = await Promise.race([done, late]);
      clearTimeout(timer);
      let cut = 0;
      if (outcome === "late") {
        cut = context.live.size;
        for (const connection of [...context.live]) connection.close();
        await done;
      }
      clearInterval(sweep);
      return cut;
    },
  };
}

interface ServerContext {
  origin: string;
  budgets: Required<
    Pick<
      ServeOptions,
      "headerTimeoutMs" | "bodyTimeoutMs" | "idleTimeoutMs" | "writeTimeoutMs"
    >
  >;
  handler: (request: Request) => Promise<Response>;
  log: (message: string) => void;
  live: Set<Connection>;
  draining: boolean;
}

async function acceptLoop(
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
  context: ServerContext,
): Promise<void> {
  const spare = new SpareDescriptor();
  let refused = 0;
  for (;;) {
    let conn: Deno.TcpConn | undefined;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (context.draining || error instanceof Deno.errors.BadResource) break;
      if (!isOutOfDescriptors(error)) {
        context.log(`live-config: accept failed: ${error}`);
        await sleep(50);
        continue;
      }
      if (refused === 0) {
        context.log(
          `live-config: out of file descriptors with ${context.live.size} connections open; refusing new connections with 503 until some close`,
        );
      }
      conn = await refuseOne(listener, spare);
      if (conn === undefined) {
        refused++;
        continue;
      }
    }
    if (refused > 0) {
      context.log(
        `live-config: accepting again after refusing ${refused} connections`,
      );
      refused = 0;
    }
    if (context.draining) {
      conn.close();
      break;
    }
    const connection = new Connection(conn, context);
    context.live.add(connection);
    connection.done.finally(() => context.live.delete(connection));
  }
  spare.release();
}

/**
 * One descriptor held in reserve (`/dev/null`), given up to accept a
 * connection only to refuse it when none is free: without it, refused
 * clients would wait in the listen backlog and the accept would spin.
 */
class SpareDescriptor {
  #file: Deno.FsFile | undefined;
  constructor() {
    this.take();
  }
  /** Takes the spare back; whether it is held now. */
  take(): boolean {
    if (this.#file !== undefined) return true;
    try {
      this.#file = Deno.openSync("/dev/null");
      return true;
    } catch {
      // Not available (no descriptor, no permission, not POSIX).
      return false;
    }
  }
  release(): boolean {
    if (this.#file === undefined) return false;
    this.#file.close();
    this.#file = undefined;
    return true;
  }
}

/**
 * Accepts one connection on the spare descriptor. When no descriptor is free
 * once it is accepted (the spare cannot be taken back), the connection is
 * answered `503` and closed; otherwise it is returned, to be served.
 */
async function refuseOne(
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
  spare: SpareDescriptor,
): Promise<Deno.TcpConn | undefined> {
  if (!spare.release()) {
    // No spare to give up: wait for descriptors to free up.
    await sleep(100);
    spare.take();
    return undefined;
  }
  let conn: Deno.TcpConn;
  try {
    conn = await listener.accept();
  } catch {
    // The listener closed, or descriptors are still short.
    spare.take();
    return undefined;
  }
  if (spare.take()) return conn;
  try {
    conn.setNoDelay(true);
    await withTimeout(
      conn.write(refusalBytes(503, "the server is out of file descriptors")),
      1_000,
    );
  } catch {
    // The client left.
  } finally {
    conn.close();
  }
  spare.take();
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A parsed request head. */
interface Head {
  method: string;
  target: string;
  headers: Headers;
  keepAlive: boolean;
  expectContinue: boolean;
  /** `-1`: chunked; otherwise the byte length (`0`: no body). */
  length: number;
}

/** One client connection: requests one after another (keep-alive). */
class Connection {
  readonly done: Promise<void>;
  #conn: Deno.TcpConn;
  #context: ServerContext;
  #buf = new Uint8Array(MAX_HEAD_BYTES);
  #start = 0;
  #end = 0;
  #closed = false;
  #idle = true;
  /** When the current phase's budget runs out (`performance.now()`). */
  #expiresAt = Infinity;
  #onExpire: () => void = () => {};
  /** When the write in progress times out. */
  #writeExpiresAt = Infinity;
  /** Whether the response of the current request has begun. */
  #responding = false;
  /** A refusal being written; the connection closes after it. */
  #refusing: Promise<void> = Promise.resolve();

  constructor(conn: Deno.TcpConn, context: ServerContext) {
    this.#conn = conn;
    this.#context = context;
    try {
      conn.setNoDelay(true);
    } catch {
      // Closed already.
    }
    this.done = this.#run().catch((error) => {
      if (!this.#closed && !QUIET_ERRORS.has((error as Error)?.name)) {
        context.log(`live-config: connection failed: ${error}`);
      }
    }).finally(() => this.close());
  }

  /** Closes the connection now if it waits for a request. */
  closeIfIdle(): void {
    if (this.#idle) this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearDeadline();
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
  }

  /**
   * Runs `onExpire` after `ms` unless the deadline is replaced or cleared.
   * The server's sweep checks deadlines (see {@linkcode SWEEP_MS}): a timer
   * per request would cost more than the request.
   */
  #deadline(ms: number, onExpire: () => void): void {
    this.#expiresAt = performance.now() + ms;
    this.#onExpire = onExpire;
  }

  #clearDeadline(): void {
    this.#expiresAt = Infinity;
  }

  /** Fires the deadlines that have passed; called by the server's sweep. */
  sweep(now: number): void {
    if (now >= this.#writeExpiresAt) {
      this.close();
    } else if (now >= this.#expiresAt) {
      this.#expiresAt = Infinity;
      this.#onExpire();
    }
  }

  /** Answers a refusal unless a response has begun, then closes. */
  #refuse(status: number, message: string): void {
    if (this.#closed) return;
    if (this.#responding) {
      this.close();
      return;
    }
    this.#responding = true;
    this.#clearDeadline();
    const bytes = refusalBytes(status, message);
    this.#refusing = withTimeout(this.#conn.write(bytes), 1_000)
      .then(() => {}, () => {}).finally(() => this.close());
  }

  async #run(): Promise<void> {
    let first = true;
    try {
      while (!this.#closed && !this.#context.draining) {
        this.#idle = true;
        this.#responding = false;
        const head = await this.#readHead(first);
        first = false;
        if (head === undefined) return;
        this.#idle = false;
        const next = await this.#exchange(head);
        if (next === "linger") await this.#linger();
        if (next !== "keep") return;
      }
    } finally {
      await this.#refusing;
    }
  }

  /**
   * Closes after a response whose request body was not read (a `413`):
   * stops writing, then reads and discards for a moment, so that the client
   * gets the response rather than a reset for the data it is still sending.
   */
  async #linger(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#conn.closeWrite();
    } catch {
      return;
    }
    this.#deadline(LINGER_MS, () => this.close());
    let discarded = 0;
    while (!this.#closed && discarded < LINGER_BYTES) {
      this.#start = this.#end = 0;
      if (!await this.#fill()) return;
      discarded += this.#end;
    }
  }

  /** Reads more bytes into the buffer; `false` at the end of input. */
  async #fill(): Promise<boolean> {
    if (this.#start > 0 && this.#start === this.#end) {
      this.#start = this.#end = 0;
    }
    if (this.#end === this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
      if (this.#end === this.#buf.length) return true;
    }
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buf.subarray(this.#end));
    } catch {
      n = null;
    }
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  async #readHead(first: boolean): Promise<Head | undefined> {
    const { headerTimeoutMs, idleTimeoutMs } = this.#context.budgets;
    let waiting = !first && this.#end === this.#start;
    if (waiting) this.#deadline(idleTimeoutMs, () => this.close());
    else this.#deadline(headerTimeoutMs, () => this.#headTimedOut());
    // Scanned bytes, relative to #start (which moves when #fill compacts).
    let scanned = 0;
    for (;;) {
      const end = indexOfBlankLine(
        this.#buf,
        this.#start + scanned,
        this.#end,
      );
      if (end >= 0) {
        const text = latin1(this.#buf.subarray(this.#start, end));
        this.#start = end + 4;
        this.#clearDeadline();
        try {
          return parseHead(text);
        } catch (error) {
          if (error instanceof Refusal) {
            this.#refuse(error.status, error.message);
          } else this.#refuse(400, "malformed request head");
          return undefined;
        }
      }
      scanned = Math.max(0, this.#end - this.#start - 3);
      if (this.#end - this.#start >= MAX_HEAD_BYTES) {
        this.#refuse(431, `the request head is over ${MAX_HEAD_BYTES} bytes`);
        return undefined;
      }
      if (!await this.#fill() || this.#closed) return undefined;
      if (waiting && this.#end > this.#start) {
        // The first byte of a kept-alive connection's next request.
        waiting = false;
        this.#deadline(headerTimeoutMs, () => this.#headTimedOut());
      }
    }
  }

  #headTimedOut(): void {
    if (this.#end > this.#start) {
      this.#refuse(
        408,
        `the request head did not arrive within ${this.#context.budgets.headerTimeoutMs} ms`,
      );
    } else {
      this.close();
    }
  }

  /**
   * Runs one request: `keep` when the connection may serve another, `close`,
   * or `linger` when the request body was left unread.
   */
  async #exchange(head: Head): Promise<"keep" | "close" | "linger"> {
    const { bodyTimeoutMs } = this.#context.budgets;
    const body = new BodyReader(this, head, (max) => this.#take(max));
    if (head.length !== 0) {
      this.#deadline(bodyTimeoutMs, () => {
        body.fail(new Deno.errors.TimedOut("the request body timed out"));
        this.#refuse(
          408,
          `the request body did not arrive within ${bodyTimeoutMs} ms`,
        );
      });
    }
    let response: Response;
    try {
      response = await this.#context.handler(this.#request(head, body));
    } catch (error) {
      if (error instanceof Refusal) {
        this.#refuse(error.status, error.message);
        return "close";
      }
      this.#context.log(`live-config: handler failed: ${error}`);
      response = Response.json({ error: "internal error" }, { status: 500 });
    }
    if (this.#closed || this.#responding) {
      await response.body?.cancel().catch(() => {});
      return "close";
    }
    this.#responding = true;
    this.#clearDeadline();
    const reuse = head.keepAlive && body.finished && !this.#context.draining;
    const kept = await this.#respond(head, response, reuse);
    if (kept) return "keep";
    return body.finished ? "close" : "linger";
  }

  #request(head: Head, body: BodyReader): Request {
    const bodyless = head.method === "GET" || head.method === "HEAD" ||
      head.length === 0;
    try {
      return new Request(this.#context.origin + head.target, {
        method: head.method,
        headers: head.headers,
        ...(bodyless ? {} : { body: body.stream, duplex: "half" }),
      } as RequestInit);
    } catch {
      throw new Refusal(501, `method ${head.method} is not supported`);
    }
  }

  /** Copies up to `max` buffered bytes out, reading more when none are. */
  async #take(max: number): Promise<Uint8Array | null> {
    if (this.#end === this.#start && !await this.#fill()) return null;
    const n = Math.min(max, this.#end - this.#start);
    const chunk = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return chunk;
  }

  /** Sends `Continue` for a client that waits for it. */
  async sendContinue(): Promise<void> {
    await this.write(encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
  }

  /** Body done: the body timeout no longer applies. */
  bodyFinished(): void {
    if (!this.#responding) this.#clearDeadline();
  }

  /** Writes all of `bytes`, closing the connection if it takes too long. */
  async write(bytes: Uint8Array): Promise<void> {
    const { writeTimeoutMs } = this.#context.budgets;
    this.#writeExpiresAt = performance.now() + writeTimeoutMs;
    try {
      let offset = 0;
      while (offset < bytes.byteLength) {
        offset += await this.#conn.write(bytes.subarray(offset));
      }
    } finally {
      this.#writeExpiresAt = Infinity;
    }
  }

  async #respond(
    head: Head,
    response: Response,
    reuse: boolean,
  ): Promise<boolean> {
    const status = response.status;
    const noBody = head.method === "HEAD" || status === 204 || status === 304;
    const streaming = !noBody && response.body !== null &&
      (response.headers.get("content-type") ?? "").startsWith(
        "text/event-stream",
      );
    let lines = `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
    for (const [name, value] of response.headers) {
      if (name === "connection" || name === "transfer-encoding") continue;
      if (name === "content-length" && !noBody) continue;
      lines += `${name}: ${value}\r\n`;
    }
    lines += `connection: ${reuse && !streaming ? "keep-alive" : "close"}\r\n`;
    if (noBody) {
      await response.body?.cancel().catch(() => {});
      await this.write(encoder.encode(lines + "\r\n"));
      return reuse;
    }
    if (!streaming) {
      const body = new Uint8Array(await response.arrayBuffer());
      lines += `content-length: ${body.byteLength}\r\n\r\n`;
      const head = encoder.encode(lines);
      const bytes = new Uint8Array(head.byteLength + body.byteLength);
      bytes.set(head);
      bytes.set(body, head.byteLength);
      await this.write(bytes);
      return reuse;
    }
    await this.write(
      encoder.encode(lines + "transfer-encoding: chunked\r\n\r\n"),
    );
    await this.#stream(response.body!);
    return false;
  }

  /**
   * Streams a long-lived body (events) until it ends or the client leaves:
   * a read on the connection notices the client closing at once, not at the
   * next write.
   */
  async #stream(body: ReadableStream<Uint8Array>): Promise<void> {
    this.#start = this.#end = 0;
    const reader = body.getReader();
    const gone = (async () => {
      while (!this.#closed && await this.#fill()) this.#start = this.#end = 0;
      await reader.cancel().catch(() => {});
    })();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed) break;
        if (value.byteLength === 0) continue;
        const size = encoder.encode(`${value.byteLength.toString(16)}\r\n`);
        const chunk = new Uint8Array(size.byteLength + value.byteLength + 2);
        chunk.set(size);
        chunk.set(value, size.byteLength);
        chunk.set([13, 10], size.byteLength + value.byteLength);
        await this.write(chunk);
      }
      if (!this.#closed) await this.write(encoder.encode("0\r\n\r\n"));
    } catch {
      await reader.cancel().catch(() => {});
    } finally {
      this.close();
      await gone;
    }
  }
}

/**
 * A request body as a stream of exact copies, from the connection's buffer:
 * `Content-Length` or chunked framing.
 */
class BodyReader {
  readonly stream: ReadableStream<Uint8Array>;
  finished: boolean;
  #connection: Connection;
  #take: (max: number) => Promise<Uint8Array | null>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #remaining: number;
  #chunked: boolean;
  #continue: boolean;
  #failed = false;

  constructor(
    connection: Connection,
    head: Head,
    take: (max: number) => Promise<Uint8Array | null>,
  ) {
    this.#connection = connection;
    this.#take = take;
    this.#chunked = head.length === -1;
    this.#remaining = this.#chunked ? 0 : head.length;
    this.finished = head.length === 0;
    this.#continue = head.expectContinue && !this.finished;
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: (controller) => this.#pull(controller),
    }, { highWaterMark: 0 });
  }

  fail(error: Error): void {
    if (this.finished || this.#failed) return;
    this.#failed = true;
    try {
      this.#controller.error(error);
    } catch {
      // Already closed.
    }
  }

  async #pull(
    controller: ReadableStreamDefaultController<Uint8Array>,
  ): Promise<void> {
    try {
      if (this.#continue) {
        this.#continue = false;
        await this.#connection.sendContinue();
      }
      const chunk = this.#chunked
        ? await this.#nextChunked()
        : await this.#nextPlain();
      if (this.#failed) return;
      if (chunk === null) {
        this.finished = true;
        this.#connection.bodyFinished();
        controller.close();
      } else {
        controller.enqueue(chunk);
      }
    } catch (error) {
      this.fail(error as Error);
    }
  }

  async #nextPlain(): Promise<Uint8Array | null> {
    if (this.#remaining === 0) return null;
    const chunk = await this.#take(this.#remaining);
    if (chunk === null) throw new Error("the request body ended early");
    this.#remaining -= chunk.byteLength;
    return chunk;
  }

  async #nextChunked(): Promise<Uint8Array | null> {
    if (this.#remaining === 0) {
      const size = await this.#chunkSize();
      if (size === 0) {
        await this.#trailers();
        return null;
      }
      this.#remaining = size + 2;
    }
    if (this.#remaining <= 2) {
      await this.#expectCrlf(this.#remaining);
      this.#remaining = 0;
      return this.#nextChunked();
    }
    const chunk = await this.#take(this.#remaining - 2);
    if (chunk === null) throw new Error("the request body ended early");
    this.#remaining -= chunk.byteLength;
    return chunk;
  }

  async #line(limit: number): Promise<string> {
    let line = "";
    for (;;) {
      const byte = await this.#take(1);
      if (byte === null) throw new Error("the request body ended early");
      if (byte[0] === 10) {
        if (!line.endsWith("\r")) throw new Error("bad chunked framing");
        return line.slice(0, -1);
      }
      line += String.fromCharCode(byte[0]!);
      if (line.length > limit) throw new Error("bad chunked framing");
    }
  }

  async #chunkSize(): Promise<number> {
    const line = await this.#line(MAX_CHUNK_LINE);
    const match = line.match(/^([0-9A-Fa-f]{1,12})(?:;.*)?$/);
    if (!match) throw new Error("bad chunk size");
    return parseInt(match[1]!, 16);
  }

  async #expectCrlf(count: number): Promise<void> {
    const want = [13, 10].slice(2 - count);
    for (const expected of want) {
      const byte = await this.#take(1);
      if (byte === null || byte[0] !== expected) {
        throw new Error("bad chunked framing");
      }
    }
  }

  async #trailers(): Promise<void> {
    let total = 0;
    for (;;) {
      const line = await this.#line(MAX_TRAILER_BYTES);
      total += line.length + 2;
      if (total > MAX_TRAILER_BYTES) throw new Error("trailers too large");
      if (line === "") return;
    }
  }
}

function indexOfBlankLine(buf: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (
      buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 &&
      buf[i + 3] === 10
    ) {
      return i;
    }
  }
  return -1;
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return text;
}

/** Parses a request head; throws a {@linkcode Refusal} for a bad one. */
export function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const match = lines[0]!.match(/^(\S+) (\S+) HTTP\/1\.([01])$/);
  if (!match || !TOKEN.test(match[1]!)) {
    throw new Refusal(400, "malformed request line");
  }
  const [, method, target, minor] = match as unknown as [
    string,
    string,
    string,
    string,
  ];
  checkTarget(target);
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const header = line.match(/^([^:\s]+):[ \t]*(.*?)[ \t]*$/);
    if (
      !header || !TOKEN.test(header[1]!) ||
      hasControl(header[2]!)
    ) {
      throw new Refusal(400, "malformed header line");
    }
    headers.append(header[1]!, header[2]!);
  }
  const connection = (headers.get("connection") ?? "").toLowerCase();
  return {
    method,
    target,
    headers,
    keepAlive: minor === "1" && !/\bclose\b/.test(connection),
    expectContinue:
      (headers.get("expect") ?? "").toLowerCase() === "100-continue",
    length: bodyLength(headers, minor === "1"),
  };
}

/** Whether a header value holds a control character other than tab. */
function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 32 && code !== 9) || code === 127) return true;
  }
  return false;
}

function checkTarget(target: string): void {
  if (!target.startsWith("/")) {
    throw new Refusal(400, "the request target must be a path");
  }
  let parsed: URL;
  try {
    parsed = new URL(target, "http://host");
  } catch {
    throw new Refusal(400, "the request target is not a valid path");
  }
  const path = target.replace(/\?.*$/s, "");
  if (target.includes("#") || parsed.pathname !== path) {
    throw new Refusal(
      400,
      `the request path ${
        JSON.stringify(path)
      } is not in canonical form (it has dot segments, "\\", an encoded "." or a "#")`,
    );
  }
}

function bodyLength(headers: Headers, http11: boolean): number {
  const coding = headers.get("transfer-encoding");
  const length = headers.get("content-length");
  if (coding !== null) {
    if (length !== null) {
      throw new Refusal(400, "both Content-Length and Transfer-Encoding");
    }
    if (!http11 || coding.toLowerCase() !== "chunked") {
      throw new Refusal(
        501,
        `transfer coding ${JSON.stringify(coding)} is not supported`,
      );
    }
    return -1;
  }
  if (length === null) return 0;
  const values = new Set(length.split(",").map((v) => v.trim()));
  const [value] = values;
  if (values.size !== 1 || !/^[0-9]{1,15}$/.test(value!)) {
    throw new Refusal(400, "malformed Content-Length");
  }
  return Number(value);
}
