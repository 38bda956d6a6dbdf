/**
 * The live-config service: the app of `server.ts` over one store (a file,
 * or an etcd cluster with `--etcd`), served by `http_server.ts` (timeouts, survives running out of file
 * descriptors), with per-tenant quotas and a graceful shutdown on
 * SIGINT/SIGTERM that ends the event streams, lets requests in flight finish
 * until a deadline, cuts what is left and closes the store. The routes and
 * the event-stream format are described in `server.ts`.
 *
 * ```sh
 * deno task demo
 * # which is:
 * deno run --allow-net --allow-read --allow-write --allow-env=PORT examples/live_config/main.ts
 * # flags (PORT=8080 in the environment works as --port 8080):
 * deno task demo --port 8080 --db ./data/live-config.db --max-keys 1000 --max-groups 50
 * ```
 *
 * Several instances may share one file (one per core, behind a proxy): with
 * `--change-feed` each also streams the writes made through the others.
 *
 * Instances on several hosts share an etcd cluster instead of a file: with
 * `--etcd URL[,URL...]` the service keeps every tenant in etcd (under
 * `--etcd-prefix`, default `live-config/`), quotas hold across instances and
 * each instance streams every instance's writes:
 *
 * ```sh
 * deno task demo --etcd http://127.0.0.1:2379 --port 8000
 * deno task demo --etcd http://127.0.0.1:2379 --port 8001
 * ```
 *
 * Then open http://127.0.0.1:8000/ and, from another terminal:
 *
 * ```sh
 * curl -X PUT --data-binary dark http://127.0.0.1:8000/t/demo/g/config/k/theme
 * curl -N "http://127.0.0.1:8000/t/demo/events?group=config"
 * ```
 *
 * @module
 */

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { type AsyncStore, Store } from "@core/store";
import { EtcdStore } from "@core/store/etcd";
import { createApp } from "./server.ts";
import { DEFAULT_TIMEOUTS, type HttpServer, serve } from "./http_server.ts";

/** The service's settings, from {@linkcode parseFlags}. */
export interface Config {
  /** The TCP port; `0` picks a free one. */
  port: number;
  /** The interface to listen on. */
  hostname: string;
  /** The database file; its folder is created. */
  db: string;
  /** Most live keys per tenant; `0`: unlimited. */
  maxKeys: number;
  /** Most groups per tenant; `0`: unlimited. */
  maxGroups: number;
  /** Milliseconds between heartbeat comments on event streams. */
  heartbeatMs: number;
  /** Whether to deliver writes made by other processes on the same file. */
  changeFeed: boolean;
  /** etcd client URLs; when given, the store is on etcd, not in `db`. */
  etcd: string[] | undefined;
  /** The key prefix of the service's data in etcd. */
  etcdPrefix: string;
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
  /** Milliseconds to receive a request's head. */
  headerTimeoutMs: number;
  /** Milliseconds to receive a request's body. */
  bodyTimeoutMs: number;
  /** Milliseconds a kept-alive connection may wait for its next request. */
  idleTimeoutMs: number;
  /** Milliseconds requests in flight get after a signal before they are cut. */
  shutdownMs: number;
  /** Whether `--help` was given. */
  help: boolean;
}

/** The `--help` text. */
export const USAGE = `Usage: main.ts [options]

  --port N                TCP port (default $PORT, else 8000; 0 picks a
                          free one)
  --hostname HOST         interface to listen on (default 127.0.0.1;
                          0.0.0.0 for every interface)
  --db PATH               database file (default ./data/live-config.db;
                          its folder is created)
  --max-keys N            most live keys per tenant (default 0: unlimited)
  --max-groups N          most groups per tenant (default 0: unlimited)
  --heartbeat-ms N        milliseconds between SSE heartbeats (default 15000)
  --change-feed           also stream writes made by other processes (other
                          instances of this service) on the same file
  --etcd URL[,URL...]     keep the data on this etcd cluster instead of a
                          file; instances on any host share it
  --etcd-prefix PREFIX    the data's key prefix in etcd (default live-config/)
  --max-body-bytes N      largest request body (default 1048576; 413 above)
  --header-timeout-ms N   time to send a request's head (default 10000;
                          408 and close after)
  --body-timeout-ms N     time to send a request's body (default 30000)
  --idle-timeout-ms N     time an idle kept-alive connection stays open
                          (default 30000)
  --shutdown-ms N         after SIGINT/SIGTERM, time requests in flight get
                          before they are cut (default 5000)
  -h, --help              show this text
`;

/**
 * Parses the command line.
 *
 * @example Flags
 * ```ts
 * import { parseFlags } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseFlags(["--port", "0", "--max-keys", "10"]);
 * assert.equal(config.port, 0);
 * assert.equal(config.maxKeys, 10);
 * assert.equal(config.db, "./data/live-config.db");
 * ```
 *
 * @param args The arguments, as `Deno.args`.
 * @param env The environment's `PORT`, the default of `--port`.
 * @returns The settings, defaults filled in.
 * @throws {TypeError} On an unknown flag, a missing value or a positional
 * argument.
 * @throws {RangeError} On a number out of range.
 */
export function parseFlags(
  args: string[],
  env: { PORT?: string | undefined } = {},
): Config {
  const ms = (fallback: number) => ({
    type: "string" as const,
    default: String(fallback),
  });
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: "string", default: env.PORT || "8000" },
      hostname: { type: "string", default: "127.0.0.1" },
      db: { type: "string", default: "./data/live-config.db" },
      "max-keys": { type: "string", default: "0" },
      "max-groups": { type: "string", default: "0" },
      "heartbeat-ms": { type: "string", default: "15000" },
      "change-feed": { type: "boolean", default: false },
      etcd: { type: "string" },
      "etcd-prefix": { type: "string", default: "live-config/" },
      "max-body-bytes": ms(1024 * 1024),
      "header-timeout-ms": ms(DEFAULT_TIMEOUTS.headerTimeoutMs),
      "body-timeout-ms": ms(DEFAULT_TIMEOUTS.bodyTimeoutMs),
      "idle-timeout-ms": ms(DEFAULT_TIMEOUTS.idleTimeoutMs),
      "shutdown-ms": ms(5_000),
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.db === "") throw new RangeError("--db must not be empty");
  const etcd = values.etcd?.split(",").filter((url) => url !== "");
  if (etcd !== undefined && etcd.length === 0) {
    throw new RangeError("--etcd needs at least one URL");
  }
  return {
    port: integer("--port", values.port, 0, 65_535),
    hostname: values.hostname,
    db: values.db,
    maxKeys: integer("--max-keys", values["max-keys"], 0),
    maxGroups: integer("--max-groups", values["max-groups"], 0),
    heartbeatMs: integer(
      "--heartbeat-ms",
      values["heartbeat-ms"],
      1,
      2 ** 31 - 1,
    ),
    changeFeed: values["change-feed"],
    etcd,
    etcdPrefix: values["etcd-prefix"],
    maxBodyBytes: integer("--max-body-bytes", values["max-body-bytes"], 0),
    headerTimeoutMs: timer("--header-timeout-ms", values["header-timeout-ms"]),
    bodyTimeoutMs: timer("--body-timeout-ms", values["body-timeout-ms"]),
    idleTimeoutMs: timer("--idle-timeout-ms", values["idle-timeout-ms"]),
    shutdownMs: integer("--shutdown-ms", values["shutdown-ms"], 0, 2 ** 31 - 1),
    help: values.help,
  };
}

function timer(flag: string, text: string): number {
  return integer(flag, text, 1, 2 ** 31 - 1);
}

function integer(
  flag: string,
  text: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < min || value > max) {
    throw new RangeError(
      `${flag} must be an integer from ${min} to ${max}, received ${
        JSON.stringify(text)
      }`,
    );
  }
  return value;
}

/**
 * Runs the service until SIGINT or SIGTERM, then shuts it down: event
 * streams end, requests in flight finish or are cut at the deadline, the
 * store closes.
 *
 * @param args The arguments, as `Deno.args`.
 * @returns The exit code: `0`, `1` when the service cannot start, `2` for
 * bad flags.
 */
export async function main(args: string[]): Promise<number> {
  let config: Config;
  try {
    config = parseFlags(args, { PORT: envPort() });
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (config.help) {
    console.log(USAGE);
    return 0;
  }

  let store: Store | AsyncStore;
  try {
    store = await openStore(config);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
  const app = createApp({
    store,
    maxKeys: config.maxKeys,
    maxGroups: config.maxGroups,
    heartbeatMs: config.heartbeatMs,
    maxBodyBytes: config.maxBodyBytes,
  });

  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const listeners = signals.map((signal) => {
    const listener = () => stop(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });

  let server: HttpServer;
  try {
    server = serve({
      port: config.port,
      hostname: config.hostname,
      headerTimeoutMs: config.headerTimeoutMs,
      bodyTimeoutMs: config.bodyTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      onListen({ hostname, port }) {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        console.log(
          `live-config listening on http://${host}:${port}/ (${
            config.etcd === undefined
              ? `db ${config.db}`
              : `etcd ${config.etcd.join(",")}`
          })`,
        );
      },
    }, app.handler);
  } catch (error) {
    for (const [signal, listener] of listeners) {
      Deno.removeSignalListener(signal, listener);
    }
    app.close();
    await store.close();
    console.error(`error: ${listenError(error, config)}`);
    return 1;
  }

  const signal = await stopped;
  // A second signal now gets the default behaviour: it ends the process.
  for (const [name, listener] of listeners) {
    Deno.removeSignalListener(name, listener);
  }
  console.log(`${signal}: shutting down`);
  app.close();
  const cut = await server.shutdown(config.shutdownMs);
  if (cut > 0) {
    console.log(
      `cut ${cut} ${
        cut === 1 ? "connection" : "connections"
      } still busy after ${config.shutdownMs} ms`,
    );
  }
  await store.close();
  console.log("store closed");
  return 0;
}

/** The file store of `--db`, or the etcd store of `--etcd`. */
async function openStore(config: Config): Promise<Store | AsyncStore> {
  if (config.etcd !== undefined) {
    return await EtcdStore.open({
      endpoints: config.etcd,
      prefix: config.etcdPrefix,
    });
  }
  mkdirSync(dirname(config.db), { recursive: true });
  return new Store(config.db, { changeFeed: config.changeFeed });
}

/** `PORT` from the environment, when the process may read it. */
function envPort(): string | undefined {
  const permission = Deno.permissions.querySync({
    name: "env",
    variable: "PORT",
  });
  return permission.state === "granted" ? Deno.env.get("PORT") : undefined;
}

function listenError(error: unknown, config: Config): string {
  if (error instanceof Deno.errors.AddrInUse) {
    const next = config.port === 65_535 ? 8000 : config.port + 1;
    return `port ${config.port} on ${config.hostname} is already in use ` +
      `(another live-config, or another program). Choose another port: ` +
      `--port ${next} (deno task demo --port ${next}), or PORT=${next} in ` +
      `the environment; --port 0 picks a free one.`;
  }
  return (error as Error).message;
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
