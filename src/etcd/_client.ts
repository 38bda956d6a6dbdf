/**
 * A small etcd v3 client over the JSON gateway (`/v3/...`) and `fetch`:
 * endpoint failover, a deadline per call, the auth token, base64 bytes and
 * the streaming watch. Nothing here knows about groups or events.
 *
 * @module
 */

import { StoreError, StoreUnavailableError } from "../errors.ts";
import { fromBase64, toBase64 } from "./_keys.ts";

/** One key-value pair as etcd returns it. */
export interface KeyValue {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
}

/** A range read. */
export interface RangeResult {
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: number;
  /** The store revision the read saw. */
  readonly revision: number;
}

/** Options of {@linkcode EtcdClient.prototype.range}. */
export interface RangeOptions {
  readonly end?: Uint8Array;
  readonly limit?: number;
  readonly revision?: number;
  readonly descend?: boolean;
  readonly countOnly?: boolean;
}

/** Connection settings. */
export interface ClientOptions {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/** Raw JSON of the gateway. */
// deno-lint-ignore no-explicit-any
export type Json = any;

/** A failure after which the request may or may not have been applied. */
class Ambiguous extends Error {}

const RETRY_CODES = new Set([4, 14]);
const RETRY_MESSAGE = /leader changed|no leader|timed out|too many requests/i;

/**
 * Talks to one etcd cluster through any of its members.
 */
export class EtcdClient {
  #endpoints: readonly string[];
  #current = 0;
  #timeoutMs: number;
  #username: string | undefined;
  #password: string | undefined;
  #token: string | undefined;
  #closed = new AbortController();
  /** The newest revision any answer carried. */
  revision = 0;

  /** @param options Endpoints, deadline and credentials. */
  constructor(options: ClientOptions) {
    this.#endpoints = options.endpoints;
    this.#timeoutMs = options.timeoutMs;
    this.#username = options.username;
    this.#password = options.password;
  }

  /** Aborts every request in flight and every watch stream. */
  close(): void {
    this.#closed.abort(new StoreError("the store is closed"));
  }

  /** Fires when the client is closed. */
  get closedSignal(): AbortSignal {
    return this.#closed.signal;
  }

  /** How long one call may take, failover included. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /**
   * Posts one request, moving to the next member when one fails, until
   * `timeoutMs` has passed. A request is sent again only where that is
   * safe: a read, or a write guarded so that a second copy changes nothing
   * (see `_once.ts`).
   *
   * @param op The operation, for error messages.
   * @param path The gateway path, such as `/v3/kv/range`.
   * @param body The request.
   * @param write Whether the request writes: its failure then tells
   * whether it may have been applied.
   * @returns The parsed answer.
   * @throws {StoreUnavailableError} When no member answers in time.
   * @throws {StoreError} When etcd refuses.
   */
  async call(
    op: string,
    path: string,
    body: Json,
    write = false,
  ): Promise<Json> {
    const deadline = Date.now() + this.#timeoutMs;
    let lastError: unknown;
    let ambiguous = false;
    for (let attempt = 0;; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed.signal.aborted) break;
      try {
        const share = Math.max(Math.min(left, 300), left / 2);
        return await this.#post(path, body, share);
      } catch (error) {
        if (!(error instanceof Ambiguous || error instanceof TypeError)) {
          if (error instanceof StoreError) {
            throw new StoreError(prefixed(op, error.message), {
              cause: error,
            });
          }
          throw error;
        }
        if (error instanceof Ambiguous) ambiguous = true;
        lastError = error.cause ?? error;
        // Move on to the next member; pause once every member has failed.
        this.#current = (this.#current + 1) % this.#endpoints.length;
        if ((attempt + 1) % this.#endpoints.length === 0) {
          await delay(Math.min(100, Math.max(0, deadline - Date.now())));
        }
      }
    }
    const outcome = write && ambiguous ? "unknown" : "not-applied";
    if (this.#closed.signal.aborted) {
      if (outcome === "unknown") {
        throw new StoreUnavailableError(op, "the store was closed", outcome);
      }
      throw new StoreError(`Cannot ${op}: the store is closed`);
    }
    throw new StoreUnavailableError(
      op,
      `no etcd member answered within ${this.#timeoutMs} ms (${
        lastError instanceof Error ? lastError.message : lastError
      })`,
      outcome,
      { cause: lastError },
    );
  }

  // One attempt on the current member. TypeError: the request never left
  // (nothing applied); Ambiguous: it may have been applied.
  async #post(path: string, body: Json, timeoutMs: number): Promise<Json> {
    const endpoint = this.#endpoints[this.#current] as string;
    const signal = AbortSignal.any([
      this.#closed.signal,
      AbortSignal.timeout(timeoutMs),
    ]);
    let headers: Record<string, string>;
    try {
      headers = await this.#headers(endpoint, signal);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      if (isRefused(error)) throw new TypeError("refused", { cause: error });
      throw new Ambiguous(`${endpoint}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    let response: Response;
    try {
      response = await fetch(endpoint + path, {
        method: "POST",
        body: JSON.stringify(body),
        headers,
        signal,
      });
    } catch (error) {
      if (isRefused(error)) throw new TypeError("refused", { cause: error });
      throw new Ambiguous(`${endpoint}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    let answer: Json;
    try {
      answer = await response.json();
    } catch (error) {
      throw new Ambiguous(`${endpoint}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    if (response.ok) {
      const revision = Number(answer?.header?.revision ?? 0);
      if (revision > this.revision) this.revision = revision;
      return answer;
    }
    const message = String(answer?.message ?? answer?.error ?? response.status);
    if (answer?.code === 16 && this.#username !== undefined) {
      this.#token = undefined;
      throw new TypeError(message);
    }
    if (RETRY_CODES.has(answer?.code) || RETRY_MESSAGE.test(message)) {
      throw new Ambiguous(`${endpoint}: ${message}`);
    }
    throw new StoreError(message);
  }

  async #headers(
    endpoint: string,
    signal: AbortSignal,
  ): Promise<Record<string, string>> {
    const json = { "content-type": "application/json" };
    if (this.#username === undefined) return json;
    this.#token ??= await this.#authenticate(this.#username, endpoint, signal);
    return { ...json, authorization: this.#token };
  }

  // Signs in, for the token that etcd with auth on requires on every call.
  async #authenticate(
    username: string,
    endpoint: string,
    signal: AbortSignal,
  ): Promise<string> {
    const response = await fetch(`${endpoint}/v3/auth/authenticate`, {
      method: "POST",
      body: JSON.stringify({ name: username, password: this.#password ?? "" }),
      signal,
    });
    const answer = await response.json();
    if (!response.ok || typeof answer?.token !== "string") {
      throw new StoreError(
        `authentication as ${JSON.stringify(username)} failed: ${
          answer?.message ?? response.status
        }`,
      );
    }
    return answer.token;
  }

  /**
   * Reads a key or a range.
   *
   * @param op The operation, for error messages.
   * @param key The key, or the start of the range.
   * @param options The end of the range, a limit, a revision, the order.
   * @returns The pairs and the revision read.
   */
  async range(
    op: string,
    key: Uint8Array,
    options: RangeOptions = {},
  ): Promise<RangeResult> {
    const body: Json = { key: toBase64(key) };
    if (options.end !== undefined) body.range_end = toBase64(options.end);
    if (options.limit !== undefined) body.limit = options.limit;
    if (options.revision !== undefined) body.revision = options.revision;
    if (options.countOnly) body.count_only = true;
    if (options.descend) {
      body.sort_order = "DESCEND";
      body.sort_target = "KEY";
    }
    const answer = await this.call(op, "/v3/kv/range", body);
    return rangeResult(answer);
  }

  /**
   * Runs a transaction.
   *
   * @param op The operation, for error messages.
   * @param body The `compare`, `success` and `failure` lists.
   * @param write Whether it may write; see
   * {@linkcode EtcdClient.prototype.call}.
   * @returns Whether the compares held, the revision and the answers.
   */
  async txn(
    op: string,
    body: Json,
    write = false,
  ): Promise<{ succeeded: boolean; revision: number; responses: Json[] }> {
    const answer = await this.call(op, "/v3/kv/txn", body, write);
    return {
      succeeded: answer.succeeded === true,
      revision: Number(answer.header?.revision ?? 0),
      responses: answer.responses ?? [],
    };
  }

  /**
   * Grants a lease.
   *
   * @param op The operation, for error messages.
   * @param seconds Its time to live.
   * @returns The lease id, as the decimal string etcd uses.
   */
  async grant(op: string, seconds: number): Promise<string> {
    const answer = await this.call(op, "/v3/lease/grant", { TTL: seconds });
    return String(answer.ID);
  }

  /**
   * Opens a watch stream on one member and hands each message to
   * `onMessage` until the stream ends, fails or `signal` aborts.
   *
   * @param create The `create_request`.
   * @param onMessage Receives each `result`; may return a promise, which
   * is awaited before the next message is read.
   * @param signal Ends the stream.
   */
  async watch(
    create: Json,
    onMessage: (result: Json) => void | Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const endpoint = this.#endpoints[this.#current] as string;
    const both = AbortSignal.any([signal, this.#closed.signal]);
    try {
      const response = await fetch(`${endpoint}/v3/watch`, {
        method: "POST",
        body: JSON.stringify({ create_request: create }),
        headers: await this.#headers(endpoint, both),
        signal: both,
      });
      if (!response.ok || response.body === null) {
        await response.body?.cancel();
        // An expired auth token is one reason: sign in again next time.
        this.#token = undefined;
        throw new Error(`watch refused with HTTP ${response.status}`);
      }
      let buffer = "";
      const text = response.body.pipeThrough(new TextDecoderStream());
      for await (const chunk of text) {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line === "") continue;
          const message = JSON.parse(line);
          if (message.error !== undefined) {
            this.#token = undefined;
            throw new Error(String(message.error.message ?? message.error));
          }
          await onMessage(message.result ?? {});
        }
      }
    } catch (error) {
      // The next stream goes to another member.
      if (!both.aborted) {
        this.#current = (this.#current + 1) % this.#endpoints.length;
      }
      throw error;
    }
  }

  /**
   * Notes a revision seen elsewhere.
   *
   * @param revision A revision.
   */
  seen(revision: number): void {
    if (revision > this.revision) this.revision = revision;
  }

  /** Moves to the next member, after a failure seen by the caller. */
  rotate(): void {
    this.#current = (this.#current + 1) % this.#endpoints.length;
  }
}

/**
 * Decodes one pair of a range or watch answer.
 *
 * @param kv The JSON pair.
 * @returns The pair with bytes and numbers.
 */
export function keyValue(kv: Json): KeyValue {
  return {
    key: fromBase64(kv.key),
    value: fromBase64(kv.value),
    createRevision: Number(kv.create_revision ?? 0),
    modRevision: Number(kv.mod_revision ?? 0),
  };
}

/**
 * Decodes a range answer.
 *
 * @param answer The JSON answer of a range (alone or inside a txn).
 * @returns The pairs and the revision.
 */
export function rangeResult(answer: Json): RangeResult {
  return {
    kvs: (answer.kvs ?? []).map(keyValue),
    more: answer.more === true,
    count: Number(answer.count ?? 0),
    revision: Number(answer.header?.revision ?? 0),
  };
}

/**
 * A message naming the operation once, whatever the message it wraps says.
 *
 * @param op The operation.
 * @param message A message, perhaps already starting with `Cannot <op>: `.
 * @returns The message with one prefix.
 */
export function prefixed(op: string, message: string): string {
  const head = `Cannot ${op}: `;
  return message.startsWith(head) ? message : head + message;
}

function isRefused(error: unknown): boolean {
  const text = `${messageOf(error)} ${messageOf((error as Error)?.cause)}`;
  return /refused|ECONNREFUSED/i.test(text);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
