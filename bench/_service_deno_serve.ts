/**
 * The live-config app under `Deno.serve` instead of main.ts's own server,
 * for bench/service.ts to compare with: same store, same app, same
 * "listening" line, stops on SIGTERM. Takes `--port` and `--db` only.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Store } from "@core/store";
import { createApp } from "../examples/live_config/server.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "0" },
    db: { type: "string", default: "./data/live-config.db" },
  },
});
const store = new Store(values.db);
const app = createApp({ store });
const server = Deno.serve({
  port: Number(values.port),
  hostname: "127.0.0.1",
  onListen({ hostname, port }) {
    console.log(
      `live-config listening on http://${hostname}:${port}/ (db ${values.db})`,
    );
  },
}, app.handler);
Deno.addSignalListener("SIGTERM", async () => {
  app.close();
  await server.shutdown();
  store.close();
  Deno.exit(0);
});
