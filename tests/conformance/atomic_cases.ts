/**
 * The conformance cases of the five atomic operations (`increment`,
 * `setIfAbsent`, `compareAndSet`, `compareAndDelete`, `getAndDelete`), for
 * every store that has them: `Store` and `ScopedStore` (through a promise
 * adapter, in `sync_test.ts`), and every `AsyncStore` and `AsyncScopedStore`
 * (through `conformance()` in `suite.ts`, which each backend's runner calls).
 */

import assert from "node:assert/strict";
import {
  type AsyncStore,
  type QuotaConfig,
  QuotaExceededError,
  StoreError,
  type StoreEvent,
} from "@core/store";
import { FakeClock, sameError } from "../_helpers.ts";

/** The operations the cases use, with promises. */
export type AtomicTarget = Pick<
  AsyncStore,
  | "get"
  | "set"
  | "setWithTTL"
  | "ttl"
  | "increment"
  | "setIfAbsent"
  | "compareAndSet"
  | "compareAndDelete"
  | "getAndDelete"
  | "onChange"
>;

/** One opened target. */
export interface OpenedTarget {
  readonly target: AtomicTarget;
  /** What events put before a group: `""`, or a namespace and `:`. */
  readonly prefix: string;
  close(): Promise<void>;
}

/** A store kind the cases run on. */
export interface AtomicBackend {
  readonly name: string;
  /** Opens a fresh, empty target on a fake clock; scoped ones take quotas. */
  open(clock: FakeClock, quota?: QuotaConfig): Promise<OpenedTarget>;
  /** Whether `open` honours quotas (a scoped view). */
  readonly scoped: boolean;
  readonly testOptions?: Partial<Deno.TestDefinition>;
}

const MAX = Number.MAX_SAFE_INTEGER;

function recorder(opened: OpenedTarget) {
  const events: StoreEvent[] = [];
  const off = opened.target.onChange((event) => events.push(event));
  const brief = () =>
    events.splice(0).map((e) => {
      const group = e.group.slice(opened.prefix.length);
      const value = e.value === undefined ? "" : `=${JSON.stringify(e.value)}`;
      const at = e.expiresAt === undefined ? "" : ` @${e.expiresAt}`;
      return `${e.type} ${group}/${e.key}${value}${at}`;
    });
  return { brief, off };
}

/**
 * Registers the atomic cases for one store kind.
 *
 * @param backend How to open it.
 */
export function atomicConformance(backend: AtomicBackend): void {
  const test = (
    name: string,
    fn: (opened: OpenedTarget, clock: FakeClock) => Promise<void>,
    quota?: QuotaConfig,
  ) =>
    Deno.test({
      name: `${backend.name}: ${name}`,
      ...backend.testOptions,
      fn: async () => {
        const clock = new FakeClock();
        const opened = await backend.open(clock, quota);
        try {
          await fn(opened, clock);
        } finally {
          await opened.close();
        }
      },
    });

  test("increment counts from 0 and stores the decimal string", async ({ target: s }) => {
    assert.equal(await s.increment("c", "k"), 1);
    assert.equal(await s.increment("c", "k"), 2);
    assert.equal(await s.increment("c", "k", 40), 42);
    assert.equal(await s.get("c", "k"), "42");
    assert.equal(await s.increment("c", "k", -50), -8);
    assert.equal(await s.get("c", "k"), "-8");
    assert.equal(await s.increment("c", "k", 0), -8);
    assert.equal(await s.increment("c", "zero", 0), 0);
    assert.equal(await s.get("c", "zero"), "0");
    await s.set("c", "set", "7");
    assert.equal(await s.increment("c", "set", 3), 10);
    assert.equal(await s.increment("c", "big", MAX), MAX);
    assert.equal(await s.increment("c", "big", -MAX), 0);
    assert.equal(await s.increment("c", "low", -MAX), -MAX);
    assert.equal(await s.ttl("c", "k"), Infinity);
  });

  test(
    "increment sets the TTL only when it creates the entry",
    async ({ target: s }, clock) => {
      assert.equal(await s.increment("w", "ip", 1, 1_000), 1);
      assert.equal(await s.ttl("w", "ip"), 1_000);
      clock.advance(400);
      assert.equal(await s.increment("w", "ip", 1, 5_000), 2);
      assert.equal(await s.ttl("w", "ip"), 600, "the window does not slide");
      assert.equal(await s.increment("w", "ip"), 3);
      assert.equal(await s.ttl("w", "ip"), 600);
      clock.advance(600);
      assert.equal(await s.get("w", "ip"), undefined);
      assert.equal(await s.increment("w", "ip", 1, 2_000), 1, "expired is 0");
      assert.equal(await s.ttl("w", "ip"), 2_000);
      clock.advance(2_000);
      assert.equal(await s.increment("w", "ip"), 1);
      assert.equal(await s.ttl("w", "ip"), Infinity, "no TTL given: none");
      await s.set("w", "forever", "5");
      assert.equal(await s.increment("w", "forever", 1, 100), 6);
      assert.equal(await s.ttl("w", "forever"), Infinity);
    },
  );

  test("increment refuses values that are no counter and overflows, writing nothing", async (opened) => {
    const s = opened.target;
    const bad = [
      "abc",
      "1.5",
      " 7",
      "7 ",
      "007",
      "+1",
      "-0",
      "",
      "1e3",
      "0x10",
    ];
    bad.push(String(MAX + 1), "99999999999999999999", "a\0", "1\0");
    for (const [i, value] of bad.entries()) await s.set("b", `k${i}`, value);
    const { brief, off } = recorder(opened);
    for (const [i, value] of bad.entries()) {
      await assert.rejects(s.increment("b", `k${i}`), (error: unknown) => {
        assert.ok(error instanceof StoreError, `${value}: ${error}`);
        assert.match(error.message, /^Cannot increment value: /);
        assert.ok(error.message.includes(`"k${i}"`), error.message);
        assert.ok(error.message.includes(`"${opened.prefix}b"`), error.message);
        assert.match(error.message, /not a decimal safe integer/);
        return true;
      });
      assert.equal(await s.get("b", `k${i}`), value);
    }
    await s.set("b", "max", String(MAX));
    await s.set("b", "min", String(-MAX));
    brief();
    await assert.rejects(s.increment("b", "max"), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.match(error.message, /"max" in group "[^"]*b".*Number\.MAX_SAFE/);
      return true;
    });
    await assert.rejects(s.increment("b", "min", -1), StoreError);
    await assert.rejects(
      s.increment("b", "new", MAX).then(() => s.increment("b", "new")),
      StoreError,
    );
    assert.equal(await s.get("b", "max"), String(MAX));
    assert.equal(await s.get("b", "min"), String(-MAX));
    assert.equal(await s.get("b", "new"), String(MAX));
    assert.deepEqual(brief(), [`set b/new="${MAX}"`], "only the write emits");
    off();
  });

  test("the atomic operations check their arguments as Store does", async ({ target: s }) => {
    const n = 1 as unknown as string;
    const str = "1" as unknown as number;
    await sameError(s.increment(n, "k"), (l) => l.increment(n, "k"));
    await sameError(s.increment("g", n), (l) => l.increment("g", n));
    await sameError(
      s.increment("g", "k", str),
      (l) => l.increment("g", "k", str),
    );
    for (const delta of [1.5, NaN, Infinity, MAX + 1, -(2 ** 60)]) {
      await sameError(
        s.increment("g", "k", delta),
        (l) => l.increment("g", "k", delta),
      );
    }
    await sameError(
      s.increment("g", "k", 1, 0),
      (l) => l.increment("g", "k", 1, 0),
    );
    await sameError(
      s.increment("g", "k", 1, str),
      (l) => l.increment("g", "k", 1, str),
    );
    await sameError(
      s.setIfAbsent(n, "k", "v"),
      (l) => l.setIfAbsent(n, "k", "v"),
    );
    await sameError(
      s.setIfAbsent("g", "k", n),
      (l) => l.setIfAbsent("g", "k", n),
    );
    await sameError(
      s.setIfAbsent("g", "k", "\ud800"),
      (l) => l.setIfAbsent("g", "k", "\ud800"),
    );
    await sameError(
      s.setIfAbsent("g", "k", "v", -1),
      (l) => l.setIfAbsent("g", "k", "v", -1),
    );
    await sameError(
      s.compareAndSet("g", n, "a", "b"),
      (l) => l.compareAndSet("g", n, "a", "b"),
    );
    await sameError(
      s.compareAndSet("g", "k", n, "b"),
      (l) => l.compareAndSet("g", "k", n, "b"),
    );
    await sameError(
      s.compareAndSet("g", "k", "a", n),
      (l) => l.compareAndSet("g", "k", "a", n),
    );
    await sameError(
      s.compareAndSet("g", "k", undefined, "b", NaN),
      (l) => l.compareAndSet("g", "k", undefined, "b", NaN),
    );
    const none = undefined as unknown as string;
    await sameError(
      s.compareAndDelete("g", "k", none),
      (l) => l.compareAndDelete("g", "k", none),
    );
    await sameError(
      s.compareAndDelete(n, "k", "v"),
      (l) => l.compareAndDelete(n, "k", "v"),
    );
    await sameError(s.getAndDelete("g", n), (l) => l.getAndDelete("g", n));
    await assert.rejects(s.increment(n, "k"), {
      name: "TypeError",
      message:
        "Cannot increment value: group must be a string, received number",
    });
    await assert.rejects(s.increment("g", "k", 0.5), {
      name: "RangeError",
      message:
        "Cannot increment value: delta must be a safe integer, received 0.5",
    });
    assert.equal(await s.get("g", "k"), undefined, "nothing was written");
  });

  test(
    "setIfAbsent writes only where no live entry is",
    async ({ target: s }, clock) => {
      assert.equal(await s.setIfAbsent("l", "job", "a"), true);
      assert.equal(await s.setIfAbsent("l", "job", "b"), false);
      assert.equal(await s.get("l", "job"), "a");
      assert.equal(await s.ttl("l", "job"), Infinity);
      assert.equal(await s.setIfAbsent("l", "lease", "a", 100), true);
      assert.equal(await s.setIfAbsent("l", "lease", "b", 100), false);
      assert.equal(await s.ttl("l", "lease"), 100);
      clock.advance(100);
      assert.equal(
        await s.setIfAbsent("l", "lease", "b"),
        true,
        "expired is absent",
      );
      assert.equal(await s.get("l", "lease"), "b");
      assert.equal(await s.ttl("l", "lease"), Infinity);
      assert.equal(await s.setIfAbsent("l", "empty", ""), true);
      assert.equal(await s.setIfAbsent("l", "empty", "x"), false);
      assert.equal(await s.get("l", "empty"), "");
    },
  );

  test(
    "compareAndSet swaps only the expected live value",
    async ({ target: s }, clock) => {
      assert.equal(await s.compareAndSet("c", "k", "x", "1"), false);
      assert.equal(await s.get("c", "k"), undefined);
      assert.equal(await s.compareAndSet("c", "k", undefined, "1"), true);
      assert.equal(await s.compareAndSet("c", "k", undefined, "2"), false);
      assert.equal(await s.compareAndSet("c", "k", "1", "2", 50), true);
      assert.equal(await s.ttl("c", "k"), 50);
      assert.equal(await s.compareAndSet("c", "k", "1", "3"), false);
      assert.equal(await s.compareAndSet("c", "k", "2", "3"), true);
      assert.equal(
        await s.ttl("c", "k"),
        Infinity,
        "no TTL given: none, as set",
      );
      await s.setWithTTL("c", "old", "v", 10);
      clock.advance(10);
      assert.equal(
        await s.compareAndSet("c", "old", "v", "w"),
        false,
        "expired",
      );
      assert.equal(await s.get("c", "old"), undefined);
      assert.equal(await s.compareAndSet("c", "old", undefined, "w"), true);
      assert.equal(await s.get("c", "old"), "w");
      assert.equal(await s.compareAndSet("c", "e", undefined, ""), true);
      assert.equal(await s.compareAndSet("c", "e", "", "x"), true);
      assert.equal(await s.get("c", "e"), "x");
    },
  );

  test(
    "compareAndDelete deletes only the expected live value",
    async ({ target: s }, clock) => {
      await s.set("l", "job", "me");
      assert.equal(await s.compareAndDelete("l", "job", "you"), false);
      assert.equal(await s.get("l", "job"), "me");
      assert.equal(await s.compareAndDelete("l", "job", "me"), true);
      assert.equal(await s.get("l", "job"), undefined);
      assert.equal(await s.compareAndDelete("l", "job", "me"), false);
      await s.setWithTTL("l", "lease", "me", 10);
      clock.advance(10);
      assert.equal(await s.compareAndDelete("l", "lease", "me"), false);
    },
  );

  test(
    "getAndDelete hands the live value over once",
    async ({ target: s }, clock) => {
      await s.set("t", "a", "user-1");
      assert.equal(await s.getAndDelete("t", "a"), "user-1");
      assert.equal(await s.getAndDelete("t", "a"), undefined);
      assert.equal(await s.get("t", "a"), undefined);
      assert.equal(await s.getAndDelete("t", "never"), undefined);
      await s.setWithTTL("t", "b", "user-2", 10);
      clock.advance(9);
      assert.equal(await s.getAndDelete("t", "b"), "user-2");
      await s.setWithTTL("t", "c", "user-3", 10);
      clock.advance(10);
      assert.equal(await s.getAndDelete("t", "c"), undefined);
      await s.set("t", "e", "");
      assert.equal(await s.getAndDelete("t", "e"), "");
    },
  );

  test("NUL and emoji values compare and come back exactly", async ({ target: s }) => {
    const odd = "a\0b😀";
    assert.equal(await s.setIfAbsent("n", "k", odd), true);
    assert.equal(await s.get("n", "k"), odd);
    assert.equal(await s.compareAndSet("n", "k", "a", "x"), false, "a prefix");
    assert.equal(await s.compareAndSet("n", "k", "a\0b", "x"), false);
    assert.equal(await s.compareAndSet("n", "k", odd, "x\0"), true);
    assert.equal(await s.compareAndDelete("n", "k", "x"), false);
    assert.equal(await s.compareAndDelete("n", "k", "x\0"), true);
    await s.set("n", "t", "\0😀\0");
    assert.equal(await s.getAndDelete("n", "t"), "\0😀\0");
    assert.equal(await s.increment("n\0😀", "k\0"), 1);
    assert.equal(await s.get("n\0😀", "k\0"), "1");
  });

  test(
    "writes emit what set, setWithTTL and delete emit; no write, no event",
    async (opened, clock) => {
      const s = opened.target;
      const { brief, off } = recorder(opened);
      const at = clock.now + 1_000;
      await s.increment("e", "n", 2, 1_000);
      await s.increment("e", "n");
      assert.deepEqual(brief(), [`set e/n="2" @${at}`, `set e/n="3" @${at}`]);
      assert.equal(await s.setIfAbsent("e", "n", "x"), false);
      assert.equal(await s.compareAndSet("e", "n", "2", "x"), false);
      assert.equal(await s.compareAndDelete("e", "n", "2"), false);
      assert.equal(await s.getAndDelete("e", "missing"), undefined);
      assert.equal(await s.compareAndDelete("e", "missing", "x"), false);
      assert.deepEqual(brief(), [], "nothing written, nothing emitted");
      await s.setIfAbsent("e", "l", "me", 500);
      await s.compareAndSet("e", "l", "me", "you");
      await s.compareAndDelete("e", "l", "you");
      await s.set("e", "t", "tok");
      await s.getAndDelete("e", "t");
      assert.deepEqual(brief(), [
        `set e/l="me" @${clock.now + 500}`,
        `set e/l="you"`,
        "delete e/l",
        `set e/t="tok"`,
        "delete e/t",
      ]);
      off();
    },
  );

  test("concurrent callers each get their own result", async ({ target: s }) => {
    const counts = await Promise.all(
      Array.from({ length: 25 }, () => s.increment("r", "n")),
    );
    assert.deepEqual(
      counts.sort((a, b) => a - b),
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    const wins = await Promise.all(
      Array.from({ length: 10 }, (_, i) => s.setIfAbsent("r", "lock", `w${i}`)),
    );
    assert.equal(wins.filter((w) => w).length, 1);
    assert.equal(await s.get("r", "lock"), `w${wins.indexOf(true)}`);
    const taken = await Promise.all(
      Array.from({ length: 10 }, () => s.getAndDelete("r", "lock")),
    );
    assert.deepEqual(taken.filter((t) => t !== undefined), [
      `w${wins.indexOf(true)}`,
    ]);
  });

  if (!backend.scoped) return;

  test(
    "quotas refuse a new key, never an existing one nor a failed comparison",
    async (opened, clock) => {
      const s = opened.target;
      assert.equal(await s.increment("q", "a"), 1);
      assert.equal(await s.setIfAbsent("q", "b", "v", 100), true);
      const { brief, off } = recorder(opened);
      const quota = (error: unknown) =>
        error instanceof QuotaExceededError && error.limit === "maxKeys";
      await assert.rejects(s.increment("q", "c"), quota);
      await assert.rejects(s.setIfAbsent("q", "c", "v"), quota);
      await assert.rejects(s.compareAndSet("q", "c", undefined, "v"), quota);
      assert.equal(await s.get("q", "c"), undefined);
      assert.deepEqual(brief(), [], "refused writes emit nothing");
      assert.equal(await s.increment("q", "a"), 2, "an existing counter");
      assert.equal(await s.setIfAbsent("q", "b", "w"), false, "not an error");
      assert.equal(await s.compareAndSet("q", "b", "x", "w"), false);
      assert.equal(await s.compareAndSet("q", "b", undefined, "w"), false);
      assert.equal(await s.compareAndSet("q", "b", "v", "w", 100), true);
      clock.advance(100);
      assert.equal(await s.setIfAbsent("q", "c", "v"), true, "b expired");
      assert.equal(await s.getAndDelete("q", "c"), "v");
      assert.equal(await s.compareAndSet("q", "d", undefined, "v"), true);
      assert.equal(await s.compareAndDelete("q", "d", "v"), true);
      assert.equal(await s.increment("q", "e", 5, 10), 5);
      off();
    },
    { maxKeys: 2 },
  );

  test("group quotas refuse a new group", async ({ target: s }) => {
    assert.equal(await s.increment("g1", "a"), 1);
    assert.equal(await s.increment("g1", "b"), 1);
    await assert.rejects(
      s.increment("g2", "a"),
      (error: unknown) =>
        error instanceof QuotaExceededError && error.limit === "maxGroups",
    );
    assert.equal(await s.getAndDelete("g1", "a"), "1");
    assert.equal(await s.getAndDelete("g1", "b"), "1");
    assert.equal(await s.setIfAbsent("g2", "a", "v"), true);
  }, { maxGroups: 1 });
}
