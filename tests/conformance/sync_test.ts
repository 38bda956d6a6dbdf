/**
 * The atomic operations' conformance cases against the synchronous `Store`
 * and `ScopedStore`, on a file, through an adapter that turns each result
 * into a promise and each throw into a rejection.
 */

import { ScopedStore, Store } from "@core/store";
import { tempDir } from "../_helpers.ts";
import { atomicConformance, type AtomicTarget } from "./atomic_cases.ts";

// Every method returns a settled promise, except onChange, whose
// unsubscriber must come back as it is.
function promised(store: Store | ScopedStore): AtomicTarget {
  return new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (typeof value !== "function" || name === "onChange") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (...args: unknown[]) => {
        try {
          return Promise.resolve(value.apply(target, args));
        } catch (error) {
          return Promise.reject(error);
        }
      };
    },
  }) as unknown as AtomicTarget;
}

for (const feed of [false, true]) {
  const file = (clock: { fn: () => number }) => {
    const dir = tempDir();
    const store = new Store(dir.file("s.db"), {
      clock: clock.fn,
      purgeIntervalMs: 0,
      changeFeed: feed,
    });
    const close = () => {
      store.close();
      dir[Symbol.dispose]();
      return Promise.resolve();
    };
    return { store, close };
  };
  const label = feed ? " with the change feed" : "";
  atomicConformance({
    name: `Store${label}`,
    scoped: false,
    open: (clock) => {
      const { store, close } = file(clock);
      return Promise.resolve({ target: promised(store), prefix: "", close });
    },
  });
  atomicConformance({
    name: `ScopedStore${label}`,
    scoped: true,
    open: (clock, quota) => {
      const { store, close } = file(clock);
      const target = promised(new ScopedStore(store, "t", quota));
      return Promise.resolve({ target, prefix: "t:", close });
    },
  });
}
