/** The conformance suite against EtcdStore on the local cluster. */

import { EtcdStore } from "@core/store/etcd";
import { conformance } from "../conformance/suite.ts";
import { endpoints, freshPrefix } from "./_cluster.ts";

conformance({
  name: "EtcdStore",
  open: (clock) =>
    EtcdStore.open({
      endpoints: endpoints(),
      prefix: freshPrefix(),
      clock: clock.fn,
      purgeIntervalMs: 0,
    }),
});
