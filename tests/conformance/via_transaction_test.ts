/**
 * The conformance suite against the generic atomic operations of
 * `_async_atomic.ts` (one optimistic transaction each, for backends without
 * a native form): a `toAsync` store whose five operations are replaced by
 * them.
 */

import { type AsyncStore, Store, toAsync } from "@core/store";
import { atomicViaTransaction } from "../../src/_async_atomic.ts";
import { scopeHooksOf } from "../../src/_async_hooks.ts";
import { conformance } from "./suite.ts";

function viaTransaction(base: AsyncStore): AsyncStore {
  const hooks = scopeHooksOf(base)!;
  const ops: Record<string, unknown> = {
    ...atomicViaTransaction({
      open: (op) => hooks.open(op),
      transaction: (fn) => base.transaction(fn),
    }),
  };
  return new Proxy(base, {
    get(target, name) {
      if (typeof name === "string" && Object.hasOwn(ops, name)) {
        return ops[name];
      }
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

conformance({
  name: "atomicViaTransaction(toAsync(Store))",
  open: (clock) =>
    Promise.resolve(
      viaTransaction(
        toAsync(new Store(":memory:", { clock: clock.fn, purgeIntervalMs: 0 })),
      ),
    ),
});
