/**
 * Differential test: every case is formatted by the real Go `fmt` (through
 * tests/go/fmt/main.go, one `go run` for all of them) and by
 * src/template/_fmt.ts, and the outputs must be identical.
 *
 * Run with: deno test --allow-read --allow-write --allow-run --allow-env tests/go/fmt_go_test.ts
 * (FMT_FUZZ_CASES and FMT_FUZZ_SEED change the fuzzer's size and seed).
 * Without the run permission, or without `go` outside CI, the test is
 * ignored; under CI=true a missing `go` fails it.
 */

import assert from "node:assert/strict";
import { sprint, sprintf, sprintln } from "../../src/template/_fmt.ts";
import {
  describe,
  EDGE_CASES,
  floatCases,
  type FmtCase,
  fuzzCases,
  gridCases,
  toWire,
} from "./_fmt_cases.ts";
import { envVar, skipGo, version } from "./_go.ts";

/** What this module prints for a case. */
function format(c: FmtCase): string {
  if (c.fn === "print") return sprint(c.args);
  if (c.fn === "println") return sprintln(c.args);
  return sprintf(c.format, c.args);
}

/**
 * Cases where Go's output cannot or should not be compared:
 * - `%p` of a map prints its heap address;
 * - Go 1.19 (Debian's) does not yet move `#` and `+` aside for `%w` as it
 *   does for `%v` (Go 1.20 and later do, and this module follows them).
 */
function skipReason(c: FmtCase, goVersionText: string): string | undefined {
  if (c.fn !== "printf") return undefined;
  if (/%[^a-zA-Z%]*p/.test(c.format) && c.args.some(isMap)) return "address";
  const old = /go1\.(1\d)[. ]/.test(goVersionText);
  if (old && /%[-+# 0]*[#+][-+# 0]*[0-9.*[\]]*w/.test(c.format)) {
    return "1.19 %w";
  }
  return undefined;
}

function isMap(a: unknown): boolean {
  return a instanceof Map;
}

/** Formats every case with Go, in one process. */
async function formatWithGo(cases: readonly FmtCase[]): Promise<string[]> {
  const dir = new URL("./fmt/", import.meta.url).pathname;
  const child = new Deno.Command("go", {
    args: ["run", "."],
    cwd: dir,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const input = JSON.stringify(cases.map((c) => ({
    fn: c.fn,
    format: c.format,
    args: c.args.map(toWire),
  })));
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `the Go program failed: ${stderr}`);
  const results = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(results.length, cases.length);
  return results;
}

function compare(cases: readonly FmtCase[], goOutputs: readonly string[]) {
  const failures: string[] = [];
  let compared = 0;
  let skipped = 0;
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i] as FmtCase;
    if (skipReason(c, version ?? "") !== undefined) {
      skipped++;
      continue;
    }
    compared++;
    const ours = format(c);
    if (ours !== goOutputs[i]) {
      failures.push(
        `${describe(c)}\n    go:   ${JSON.stringify(goOutputs[i])}\n` +
          `    ours: ${JSON.stringify(ours)}`,
      );
    }
  }
  return { failures, compared, skipped };
}

const fuzzCount = Number(envVar("FMT_FUZZ_CASES") ?? 20_000);
const fuzzSeed = Number(envVar("FMT_FUZZ_SEED") ?? 20_260_601);

Deno.test({
  name: "sprintf, sprint and sprintln print what Go's fmt prints",
  ignore: skipGo("tests/go/fmt_go_test.ts"),
  async fn(t) {
    assert.ok(
      version !== undefined,
      "Go is not installed (CI=true): install Debian's golang-go first",
    );
    const grid = gridCases();
    const fuzz = fuzzCases(fuzzSeed, fuzzCount);
    const floats = floatCases(fuzzSeed, fuzzCount / 4);
    const all = [...EDGE_CASES, ...grid, ...fuzz, ...floats];
    const goOutputs = await formatWithGo(all);
    const parts = [
      ["hand-picked edge cases", 0, EDGE_CASES.length],
      ["the grid of values, verbs and flags", EDGE_CASES.length, grid.length],
      [
        `${fuzzCount} fuzzed cases (seed ${fuzzSeed})`,
        EDGE_CASES.length + grid.length,
        fuzz.length,
      ],
      [
        `${floats.length} random floats at random precisions`,
        EDGE_CASES.length + grid.length + fuzz.length,
        floats.length,
      ],
    ] as const;
    for (const [name, from, length] of parts) {
      await t.step(`agree with ${version} on ${name}`, () => {
        const { failures, compared, skipped } = compare(
          all.slice(from, from + length),
          goOutputs.slice(from, from + length),
        );
        console.log(
          `${name}: ${compared - failures.length}/${compared} agree, ` +
            `${skipped} skipped`,
        );
        assert.deepEqual(
          failures.slice(0, 30),
          [],
          `${failures.length} of ${compared} differ`,
        );
      });
    }
  },
});
