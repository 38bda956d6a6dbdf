import assert from "node:assert/strict";
import { KeySpace, prefixEnd } from "../src/etcd/_keys.ts";
import { compareText } from "../src/_async_tx.ts";

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

// A small seeded generator: the alphabet favours the characters that stress
// the encoding (NUL, U+0001, "/", ":", the top of the BMP, astral).
function strings(seed: number, count: number): string[] {
  const alphabet = [
    "\0",
    "\u0001",
    "\u0002",
    "/",
    ":",
    "a",
    "b",
    "é",
    "\uFFFF",
    "\u{1F600}",
  ];
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: count }, () => {
    let s = "";
    for (let n = next() % 5; n > 0; n--) {
      s += alphabet[next() % alphabet.length];
    }
    return s;
  });
}

Deno.test("KeySpace keys sort as (group, key) in code point order and parse back", () => {
  const keys = new KeySpace("store/");
  const groups = strings(1, 60);
  const names = strings(2, 60);
  const pairs = groups.map((g, i) => [g, names[i]!] as const);
  for (const [g, k] of pairs) {
    assert.deepEqual(keys.parse(keys.key(g, k)), [g, k]);
  }
  for (const [g1, k1] of pairs) {
    for (const [g2, k2] of pairs) {
      const expected = compareText(g1, g2) || compareText(k1, k2);
      const actual = compareBytes(keys.key(g1, k1), keys.key(g2, k2));
      assert.equal(
        Math.sign(actual),
        Math.sign(expected),
        `${[g1, k1, g2, k2].map((s) => JSON.stringify(s))}`,
      );
    }
  }
});

Deno.test("KeySpace group ranges hold exactly their group, group prefixes exactly their groups", () => {
  const keys = new KeySpace("p/");
  const groups = strings(3, 80);
  const within = (bytes: Uint8Array, start: Uint8Array) =>
    compareBytes(bytes, start) >= 0 &&
    compareBytes(bytes, prefixEnd(start)) < 0;
  for (const g of groups) {
    for (const h of groups) {
      const key = keys.key(h, "k\0/");
      assert.equal(within(key, keys.groupStart(g)), g === h);
      assert.equal(within(key, keys.groupsStart(g)), h.startsWith(g));
    }
  }
});
