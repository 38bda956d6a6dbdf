/**
 * Writes on a real full filesystem (a small tmpfs, mounted as root): every
 * write API either commits, or throws StoreError and emits nothing.
 */

import assert from "node:assert/strict";
import { Store, StoreError, type StoreEvent } from "../../mod.ts";
import { tempDir } from "../_helpers.ts";

async function run(cmd: string, ...args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(cmd, {
    args,
    stdout: "null",
    stderr: "null",
  }).output();
  return success;
}

const probe = Deno.makeTempDirSync();
const canMount =
  await run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe) &&
  await run("umount", probe);
Deno.removeSync(probe);
if (!canMount) {
  console.warn(
    "full_disk_suite: this machine cannot mount a tmpfs (not root, or no CAP_SYS_ADMIN); the full-disk tests are skipped",
  );
}

/** Runs `fn` on a fresh tmpfs of `size` (mount's syntax), unmounted after. */
async function onTmpfs(
  size: string,
  fn: (mnt: string) => void,
): Promise<void> {
  using dir = tempDir();
  const mnt = dir.file("mnt");
  Deno.mkdirSync(mnt);
  assert.ok(
    await run("mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt),
  );
  try {
    fn(mnt);
  } finally {
    await run("umount", mnt);
  }
}

/** Fills the filesystem holding `dir` until a write fails for lack of space. */
function fill(dir: string): void {
  const file = Deno.openSync(`${dir}/filler`, { write: true, create: true });
  try {
    for (const size of [65_536, 4_096, 512, 1]) {
      const chunk = new Uint8Array(size);
      for (;;) {
        try {
          file.writeSync(chunk);
        } catch {
          break;
        }
      }
    }
  } finally {
    file.close();
  }
}

interface Attempt {
  name: string;
  call: (store: Store) => unknown;
  /** Whether the change is visible after a reopen. */
  persisted: (store: Store) => boolean;
}

const ATTEMPTS: Attempt[] = [
  {
    name: "delete",
    call: (s) => s.delete("g", "a"),
    persisted: (s) => s.get("g", "a") === undefined,
  },
  {
    name: "expire",
    call: (s) => s.expire("g", "b", 3_600_000),
    persisted: (s) => s.ttl("g", "b") !== Infinity,
  },
  {
    name: "set",
    call: (s) => s.set("g", "c", "new"),
    persisted: (s) => s.get("g", "c") === "new",
  },
  {
    name: "setWithTTL",
    call: (s) => s.setWithTTL("g", "d", "new", 3_600_000),
    persisted: (s) => s.get("g", "d") === "new",
  },
  {
    name: "deleteGroup",
    call: (s) => s.deleteGroup("h"),
    persisted: (s) => s.count("h") === 0,
  },
  {
    name: "transaction",
    call: (s) =>
      s.transaction((tx) => {
        tx.set("g", "e", "new");
        tx.delete("g", "f");
      }),
    persisted: (s) => s.get("g", "e") === "new",
  },
];

Deno.test({
  name:
    "Store on a full disk throws StoreError for a write that did not commit, and emits nothing",
  ignore: !canMount,
  async fn() {
    await onTmpfs("1m", (mnt) => {
      const path = `${mnt}/full.db`;
      {
        using store = new Store(path, { purgeIntervalMs: 0 });
        store.transaction((tx) => {
          for (const key of ["a", "b", "c", "d", "e", "f"]) {
            tx.set("g", key, "old".repeat(200));
          }
          for (let i = 0; i < 20; i++) tx.set("h", `k${i}`, "x".repeat(200));
        });
      }
      const events: StoreEvent[] = [];
      const store = new Store(path, { purgeIntervalMs: 0 });
      store.onChange((event) => events.push(event));
      fill(mnt);
      const outcomes = new Map<string, boolean>();
      for (const attempt of ATTEMPTS) {
        const before = events.length;
        try {
          attempt.call(store);
          outcomes.set(attempt.name, true);
        } catch (error) {
          assert.ok(
            error instanceof StoreError,
            `${attempt.name}: ${error} is a StoreError`,
          );
          assert.equal(
            events.length,
            before,
            `${attempt.name}: no event for a write that did not commit`,
          );
          outcomes.set(attempt.name, false);
        }
      }
      store.close();
      Deno.removeSync(`${mnt}/filler`);
      const failed = [...outcomes.values()].filter((ok) => !ok).length;
      assert.ok(
        failed >= 4,
        `only ${failed} of ${outcomes.size} writes failed on a full disk`,
      );
      using reopened = new Store(path, { purgeIntervalMs: 0 });
      for (const attempt of ATTEMPTS) {
        assert.equal(
          attempt.persisted(reopened),
          outcomes.get(attempt.name),
          `${attempt.name}: reported ${
            outcomes.get(attempt.name) ? "done" : "failed"
          }; after a restart the change is ${
            attempt.persisted(reopened) ? "there" : "not there"
          }`,
        );
      }
    });
  },
});

Deno.test({
  name:
    "Store.transaction on a full disk keeps nothing that follows a statement SQLite rolled the transaction back for",
  ignore: !canMount,
  async fn() {
    await onTmpfs("2m", (mnt) => {
      const path = `${mnt}/rolled.db`;
      const store = new Store(path, { purgeIntervalMs: 0 });
      store.set("g", "seed", "x");
      const events: StoreEvent[] = [];
      store.onChange((event) => events.push(event));
      const inner: unknown[] = [];
      assert.throws(
        () =>
          store.transaction((tx) => {
            // Spills the page cache into a WAL that cannot grow: SQLITE_FULL
            // rolls the whole transaction back, not just the statement.
            try {
              tx.set("g", "huge", "x".repeat(4_000_000));
            } catch (error) {
              inner.push(error);
            }
            try {
              tx.set("g", "small", "v");
            } catch (error) {
              inner.push(error);
            }
          }),
        StoreError,
      );
      store.close();
      assert.equal(inner.length, 2);
      assert.ok(inner.every((error) => error instanceof StoreError));
      assert.deepEqual(events, []);
      using reopened = new Store(path, { purgeIntervalMs: 0 });
      assert.deepEqual([...reopened.getAll("g").keys()], ["seed"]);
    });
  },
});
