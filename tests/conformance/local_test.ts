/** The conformance suite against the local store, through toAsync(). */

import { Store, toAsync } from "@core/store";
import { conformance } from "./suite.ts";

conformance({
  name: "toAsync(Store)",
  open: (clock) =>
    Promise.resolve(
      toAsync(new Store(":memory:", { clock: clock.fn, purgeIntervalMs: 0 })),
    ),
});
