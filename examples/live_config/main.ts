/**
 * The live-config service: the app of `server.ts` over one store (a file,
 * or an etcd cluster with `--etcd`), served by `Deno.serve`, with per-tenant
 * quotas, a body size limit and deadline, and a graceful shutdown on
 * SIGINT/SIGTERM that ends the event streams, lets requests in flight finish
 * until a deadline, cuts what is left and closes the store. When the server
 * stops accepting connections (`server.finished` rejects: out of file
 * descriptors, or any other accept error), it is logged and the service
 * serves again on the same port. The routes and the event-stream format are
 * described in `server.ts`; what `Deno.serve` does and what a reverse proxy
 * in front should do (per-IP limits, header and idle timeouts, TLS) in
 * docs/serving.md.
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
  /** Milliseconds to receive a request's body. */
  bodyTimeoutMs: number;
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
  --body-timeout-ms N     time to send a request's body (default 30000;
                          408 after)
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
      "body-timeout-ms": ms(30_000),
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
    bodyTimeoutMs: integer(
      "--body-timeout-ms",
      values["body-timeout-ms"],
      1,
      2 ** 31 - 1,
    ),
    shutdownMs: integer("--shutdown-ms", values["shutdown-ms"], 0, 2 ** 31 - 1),
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
 * streams end, requests in flight finish or are cut at the deadline, the
 * store closes.
 *
 * @param args The arguments, as `Deno.args`.
 * @returns The exit code: `0`, `1` when the service cannot start, `2` for
 * bad flags. The caller exits with it, which also closes any connection the
 * shutdown deadline cut.
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
    bodyTimeoutMs: config.bodyTimeoutMs,
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

  let server: Serving;
  try {
    server = keepServing(config, app.handler, ({ hostname, port }) => {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      console.log(
        `live-config listening on http://${host}:${port}/ (${
          config.etcd === undefined
            ? `db ${config.db}`
            : `etcd ${config.etcd.join(",")}`
        })`,
      );
    });
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
  if (!await server.shutdown(config.shutdownMs)) {
    console.log(
      `connections still busy after ${config.shutdownMs} ms are cut`,
    );
  }
  await store.close();
  console.log("store closed");
  return 0;
}

/** The running service's server, from {@linkcode keepServing}. */
interface Serving {
  /**
   * Stops accepting and waits for requests in flight, for at most
   * `deadlineMs`; whether they all finished in time.
   */
  shutdown(deadlineMs: number): Promise<boolean>;
}

/** Delays between attempts to serve again: doubling, capped. */
const RESTART_FIRST_MS = 50;
const RESTART_MAX_MS = 1_000;

/**
 * `Deno.serve` on the flags' address, started again on the same port when
 * its accept loop ends with an error (`server.finished` rejects, for
 * instance "Too many open files" under a flood of connections): the
 * connections it already had keep being served, and a new server accepts
 * once a descriptor is free. Each failure is logged; attempts back off from
 * {@linkcode RESTART_FIRST_MS} to {@linkcode RESTART_MAX_MS}.
 *
 * @throws {Deno.errors.AddrInUse} When the port is taken at start.
 */
function keepServing(
  config: Pick<Config, "hostname" | "port">,
  handler: (request: Request) => Promise<Response>,
  onListen: (addr: Deno.NetAddr) => void,
): Serving {
  let server = Deno.serve(
    { hostname: config.hostname, port: config.port, onListen },
    handler,
  );
  const port = server.addr.port;
  let stopping = false;
  let delay = RESTART_FIRST_MS;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const again = () => {
    retry = undefined;
    if (stopping) return;
    try {
      server = Deno.serve(
        { hostname: config.hostname, port, onListen() {} },
        handler,
      );
    } catch (error) {
      console.error(`live-config: cannot listen on port ${port} yet: ${error}`);
      schedule();
      return;
    }
    watch(server);
  };
  const schedule = () => {
    retry = setTimeout(again, delay);
    delay = Math.min(delay * 2, RESTART_MAX_MS);
  };
  const watch = (current: Deno.HttpServer) => {
    const since = performance.now();
    current.finished.catch((error) => {
      if (stopping) return;
      // A server that ran a while failed anew: start the back-off over.
      if (performance.now() - since > 10 * RESTART_MAX_MS) {
        delay = RESTART_FIRST_MS;
      }
      console.error(
        `live-config: the server stopped accepting connections (${
          (error as Error)?.message ?? error
        }); serving again on port ${port} in ${delay} ms`,
      );
      schedule();
    });
  };
  watch(server);

  return {
    async shutdown(deadlineMs: number): Promise<boolean> {
      stopping = true;
      clearTimeout(retry);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), deadlineMs);
      });
      // shutdown() waits for every request in flight, with no deadline of
      // its own (an upload that stalls would hold it forever).
      const done = server.shutdown().then(() => true, () => true);
      const finished = await Promise.race([done, late]);
      clearTimeout(timer);
      return finished;
    },
  };
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
  Deno.exit(await main(Deno.args));
}
