/**
 * The live-config service: `Deno.serve` over one file-backed store, with
 * per-tenant quotas and a graceful shutdown on SIGINT/SIGTERM that ends the
 * event streams, lets requests in flight finish and closes the store. The
 * routes and the event-stream format are described in `server.ts`.
 *
 * ```sh
 * deno task demo
 * # which is:
 * deno run --allow-net --allow-read --allow-write examples/live_config/main.ts
 * # flags:
 * deno task demo --port 8080 --db ./data/live-config.db --max-keys 1000 --max-groups 50
 * ```
 *
 * Several instances may share one file (one per core, behind a proxy): with
 * `--change-feed` each also streams the writes made through the others.
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
import { Store } from "@core/store";
import { createApp } from "./server.ts";

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
  /** Whether `--help` was given. */
  help: boolean;
}

/** The `--help` text. */
export const USAGE = `Usage: main.ts [options]

  --port N          TCP port (default 8000; 0 picks a free one)
  --hostname HOST   interface to listen on (default 127.0.0.1;
                    0.0.0.0 for every interface)
  --db PATH         database file (default ./data/live-config.db;
                    its folder is created)
  --max-keys N      most live keys per tenant (default 0: unlimited)
  --max-groups N    most groups per tenant (default 0: unlimited)
  --heartbeat-ms N  milliseconds between SSE heartbeats (default 15000)
  --change-feed     also stream writes made by other processes (other
                    instances of this service) on the same file
  -h, --help        show this text
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
 * @returns The settings, defaults filled in.
 * @throws {TypeError} On an unknown flag, a missing value or a positional
 * argument.
 * @throws {RangeError} On a number out of range.
 */
export function parseFlags(args: string[]): Config {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: "string", default: "8000" },
      hostname: { type: "string", default: "127.0.0.1" },
      db: { type: "string", default: "./data/live-config.db" },
      "max-keys": { type: "string", default: "0" },
      "max-groups": { type: "string", default: "0" },
      "heartbeat-ms": { type: "string", default: "15000" },
      "change-feed": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.db === "") throw new RangeError("--db must not be empty");
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
    help: values.help,
  };
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
 * streams end, requests in flight finish, the store closes.
 *
 * @param args The arguments, as `Deno.args`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let config: Config;
  try {
    config = parseFlags(args);
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (config.help) {
    console.log(USAGE);
    return 0;
  }

  mkdirSync(dirname(config.db), { recursive: true });
  const store = new Store(config.db, { changeFeed: config.changeFeed });
  const app = createApp({
    store,
    maxKeys: config.maxKeys,
    maxGroups: config.maxGroups,
    heartbeatMs: config.heartbeatMs,
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

  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      port: config.port,
      hostname: config.hostname,
      onListen({ hostname, port }) {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        console.log(
          `live-config listening on http://${host}:${port}/ (db ${config.db})`,
        );
      },
    }, app.handler);
  } catch (error) {
    for (const [signal, listener] of listeners) {
      Deno.removeSignalListener(signal, listener);
    }
    app.close();
    store.close();
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }

  const signal = await stopped;
  // A second signal now gets the default behaviour: it ends the process.
  for (const [name, listener] of listeners) {
    Deno.removeSignalListener(name, listener);
  }
  console.log(`${signal}: shutting down`);
  app.close();
  await server.shutdown();
  store.close();
  console.log("store closed");
  return 0;
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
