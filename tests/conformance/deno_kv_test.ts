/** The conformance suite against the Deno KV store, on an in-memory database. */

import { DenoKvStore } from "@core/store/deno-kv";
import { conformance } from "./suite.ts";

conformance({
  name: "DenoKvStore",
  open: (clock) =>
    DenoKvStore.open({ path: ":memory:", clock: clock.fn, purgeIntervalMs: 0 }),
});
