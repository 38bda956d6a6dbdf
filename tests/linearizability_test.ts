/** The linearizability checker of the fault suites, on known histories. */

import assert from "node:assert/strict";
import {
  check,
  clockSkew,
  type Input,
  type Operation,
  type Output,
  Recorder,
} from "./fixtures/linearizability.ts";
import { StoreUnavailableError } from "@core/store";

// An operation on key "k" by client c, called at `call`, returning at `ret`.
function op(
  client: number,
  input: Input,
  output: Output,
  call: number,
  ret: number,
  key = "k",
): Operation {
  return { client, key, input, output, call, ret };
}

function unknown(client: number, input: Input, call: number): Operation {
  return {
    client,
    key: "k",
    input,
    output: undefined,
    call,
    ret: Infinity,
    unknown: true,
  };
}

const set = (value: string): Input => ({ op: "set", value });
const get: Input = { op: "get" };

Deno.test("check accepts linearizable histories", async (t) => {
  const cases: [string, Operation[]][] = [
    ["a sequential history", [
      op(1, set("a"), undefined, 0, 1),
      op(2, get, "a", 2, 3),
      op(1, { op: "delete" }, true, 4, 5),
      op(2, get, undefined, 6, 7),
    ]],
    ["a read overlapping a write sees either value", [
      op(1, set("a"), undefined, 0, 1),
      op(1, set("b"), undefined, 2, 6),
      op(2, get, "a", 3, 4),
      op(3, get, "b", 4, 5),
    ]],
    ["overlapping writes ordered by the reads after them", [
      op(1, set("a"), undefined, 0, 10),
      op(2, set("b"), undefined, 0, 10),
      op(3, get, "a", 11, 12),
    ]],
    ["an unknown write that never took effect", [
      op(1, set("a"), undefined, 0, 1),
      unknown(2, set("b"), 2),
      op(1, get, "a", 3, 4),
      op(1, get, "a", 5, 6),
    ]],
    ["an unknown write that took effect late", [
      op(1, set("a"), undefined, 0, 1),
      unknown(2, set("b"), 2),
      op(1, get, "a", 3, 4),
      op(1, get, "b", 5, 6),
    ]],
    ["increments returning each count once", [
      op(1, { op: "increment", delta: 1 }, 2, 0, 5),
      op(2, { op: "increment", delta: 1 }, 1, 1, 4),
      op(3, get, "2", 6, 7),
    ]],
    ["compare-and-set, set-if-absent and get-and-delete", [
      op(1, { op: "setIfAbsent", value: "a" }, true, 0, 1),
      op(2, { op: "setIfAbsent", value: "b" }, false, 2, 3),
      op(1, { op: "compareAndSet", expected: "a", value: "c" }, true, 4, 5),
      op(2, { op: "compareAndSet", expected: "a", value: "d" }, false, 6, 7),
      op(1, { op: "getAndSet", value: "e" }, "c", 8, 9),
      op(2, { op: "compareAndDelete", expected: "e" }, true, 10, 11),
      op(1, { op: "getAndDelete" }, undefined, 12, 13),
    ]],
    ["a compare-and-set that creates an absent key", [
      op(
        1,
        { op: "compareAndSet", expected: undefined, value: "a" },
        true,
        0,
        1,
      ),
      op(2, get, "a", 2, 3),
    ]],
    ["an unknown increment that took effect", [
      op(1, { op: "increment", delta: 1 }, 1, 0, 1),
      unknown(2, { op: "increment", delta: 2 }, 2),
      op(1, get, "3", 3, 4),
    ]],
    ["an unknown get-and-delete that took effect", [
      op(1, set("a"), undefined, 0, 1),
      unknown(2, { op: "getAndDelete" }, 2),
      op(1, get, undefined, 3, 4),
    ]],
    ["keys checked apart", [
      op(1, set("a"), undefined, 0, 1, "x"),
      op(2, set("b"), undefined, 0, 1, "y"),
      op(1, get, "b", 2, 3, "y"),
      op(2, get, "a", 2, 3, "x"),
    ]],
  ];
  for (const [name, history] of cases) {
    await t.step(name, () => {
      const verdict = check(history);
      assert.ok(verdict.ok, verdict.detail);
      assert.equal(verdict.operations, history.length);
    });
  }
});

Deno.test("check rejects histories that are not linearizable", async (t) => {
  const cases: [string, Operation[]][] = [
    ["a stale read after a write returned", [
      op(1, set("a"), undefined, 0, 1),
      op(1, set("b"), undefined, 2, 3),
      op(2, get, "a", 4, 5),
    ]],
    ["an acknowledged write applied again after a newer one", [
      op(1, set("A"), undefined, 0, 1),
      op(2, set("B"), undefined, 2, 3),
      op(3, get, "B", 4, 5),
      op(3, get, "A", 6, 7),
    ]],
    ["reads that see two orders of the same writes", [
      op(1, set("a"), undefined, 0, 10),
      op(2, set("b"), undefined, 0, 10),
      op(3, get, "a", 1, 2),
      op(3, get, "b", 3, 4),
      op(4, get, "b", 1, 2),
      op(4, get, "a", 3, 4),
    ]],
    ["a compare-and-set reported false though it was applied", [
      op(1, set("a"), undefined, 0, 1),
      op(1, { op: "compareAndSet", expected: "a", value: "b" }, false, 2, 3),
      op(2, get, "b", 4, 5),
    ]],
    ["one count returned twice", [
      op(1, { op: "increment", delta: 1 }, 1, 0, 2),
      op(2, { op: "increment", delta: 1 }, 1, 0, 2),
    ]],
    ["an increment applied twice", [
      op(1, { op: "increment", delta: 1 }, 1, 0, 1),
      op(2, get, "2", 2, 3),
    ]],
    ["a token taken twice", [
      op(1, set("t"), undefined, 0, 1),
      op(2, { op: "getAndDelete" }, "t", 2, 4),
      op(3, { op: "getAndDelete" }, "t", 2, 4),
    ]],
    ["a compare-and-set from absent that won over a live value", [
      op(1, set("a"), undefined, 0, 1),
      op(
        2,
        { op: "compareAndSet", expected: undefined, value: "b" },
        true,
        2,
        3,
      ),
    ]],
    ["a get-and-delete that missed a live value", [
      op(1, set("a"), undefined, 0, 1),
      op(2, { op: "getAndDelete" }, undefined, 2, 3),
    ]],
    ["an unknown increment applied twice", [
      op(1, { op: "increment", delta: 1 }, 1, 0, 1),
      unknown(2, { op: "increment", delta: 1 }, 2),
      op(1, get, "3", 3, 4),
    ]],
    ["an unknown write seen, then gone without a write", [
      op(1, set("a"), undefined, 0, 1),
      unknown(2, set("b"), 2),
      op(1, get, "b", 3, 4),
      op(1, get, "a", 5, 6),
    ]],
    ["a read of a value nobody wrote", [
      op(1, set("a"), undefined, 0, 1),
      op(2, get, "z", 2, 3),
    ]],
  ];
  for (const [name, history] of cases) {
    await t.step(name, () => {
      const verdict = check(history);
      assert.equal(verdict.ok, false);
      assert.deepEqual(verdict.failed, ["k"]);
      assert.match(verdict.detail ?? "", /no order explains/);
    });
  }
});

Deno.test("check handles a long concurrent history quickly", () => {
  // 8 clients, 4,000 operations: each client writes its own values, and
  // reads return the last value written before them.
  const history: Operation[] = [];
  let value = "";
  for (let i = 0; i < 4_000; i++) {
    const t = i * 10;
    if (i % 3 === 0) {
      value = `v${i}`;
      history.push(op(i % 8, set(value), undefined, t, t + 15));
    } else history.push(op(i % 8, get, value || undefined, t + 16, t + 18));
  }
  const started = performance.now();
  const verdict = check(history);
  assert.ok(verdict.ok, verdict.detail);
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("check stays linear in time on a long history with unknown writes", () => {
  // 80,000 operations on one key, one unknown write in every 5,000: about
  // a second; a cache key the size of the history (a copy of the set of
  // operations placed) takes minutes and gigabytes.
  const history: Operation[] = [];
  let value = "";
  for (let i = 0; i < 80_000; i++) {
    const t = i * 10;
    if (i % 3 === 0) {
      value = `v${i}`;
      history.push(op(i % 8, set(value), undefined, t, t + 15));
    } else history.push(op(i % 8, get, value || undefined, t + 16, t + 18));
    if (i % 5_000 === 7) history.push(unknown(9, set(`u${i}`), t));
  }
  const started = performance.now();
  const verdict = check(history);
  assert.ok(verdict.ok, verdict.detail);
  assert.equal(verdict.unknown, 16);
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("clockSkew finds now() within a millisecond of the wall clock", () => {
  assert.ok(Math.abs(clockSkew()) < 1);
});

Deno.test("Recorder keeps unknown writes, drops failed reads and refused writes", async () => {
  const recorder = new Recorder((error) =>
    error instanceof StoreUnavailableError && error.outcome === "unknown"
  );
  const fail = (outcome: "unknown" | "not-applied") => () =>
    Promise.reject(new StoreUnavailableError("set value", "down", outcome));
  await recorder.run(1, "k", set("a"), () => Promise.resolve(undefined));
  await recorder.run(1, "k", set("b"), fail("unknown"));
  await recorder.run(1, "k", set("c"), fail("not-applied"));
  await recorder.run(1, "k", get, fail("unknown"));
  assert.equal(recorder.history.length, 2);
  assert.equal(recorder.dropped, 2);
  const [done, maybe] = recorder.history;
  assert.ok(done!.ret >= done!.call && maybe!.unknown);
  assert.equal(maybe!.ret, Infinity);
  assert.equal(check(recorder.history).unknown, 1);
});
