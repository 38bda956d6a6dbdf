/**
 * Differential test: every template is rendered by real Go `text/template`
 * (tests/go/template/main.go, `template.New("render")` with a
 * `map[string]string` and `missingkey=…`, as go-store renders) and by this
 * module, and both must succeed with the same bytes or both must fail.
 *
 * - the corpus: every case of tests/_template_cases.ts, through
 *   `Store.render` (a memory store holding the case's data as a group);
 * - the fuzzer: TEMPLATE_FUZZ_CASES (default 20,000) seeded templates from
 *   tests/go/_template_fuzz.ts (TEMPLATE_FUZZ_SEED, default 1), through
 *   the store-free `render()`.
 *
 * Run with `deno task test:go` (tests/go/install_go.sh installs Debian's Go when
 * missing). Without the run permission, or without `go` outside CI, the
 * test is ignored; under CI=true a missing `go` fails it.
 */

import assert from "node:assert/strict";
import { Store } from "../../mod.ts";
import { render } from "../../src/template.ts";
import { TemplateError } from "../../src/errors.ts";
import { CASES, NEWER_GO, NOT_GO } from "../_template_cases.ts";
import { type FuzzCase, TemplateFuzzer } from "./_template_fuzz.ts";
import { envVar, skipGo, version } from "./_go.ts";

const minor = Number(/go1\.(\d+)/.exec(version ?? "")?.[1] ?? "0");
const PROGRAM = new URL("./template/", import.meta.url).pathname;

interface GoResult {
  ok: boolean;
  out: string;
  err: string;
}

/** Renders every case with Go in one process. */
async function goRender(cases: readonly FuzzCase[]): Promise<GoResult[]> {
  const child = new Deno.Command("go", {
    args: ["run", "."],
    cwd: PROGRAM,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = cases.map((c) => JSON.stringify(c)).join("\n") + "\n";
  const writing = writer.write(new TextEncoder().encode(lines)).then(() =>
    writer.close()
  );
  const output = await child.output();
  await writing;
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(output.success, stderr);
  const results = new TextDecoder().decode(output.stdout).trim().split("\n")
    .map((line) => JSON.parse(line) as GoResult);
  assert.equal(results.length, cases.length);
  return results;
}

type Ours = { ok: true; out: string } | { ok: false; err: string };

function ours(fn: () => string): Ours {
  try {
    return { ok: true, out: fn() };
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    return { ok: false, err: error.message };
  }
}

function decodeBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

interface Tally {
  cases: number;
  agreeing: number;
  /** Agreeing cases that rendered (the rest failed on both sides). */
  rendered: number;
  /** Go succeeded with bytes that are not UTF-8 (slice cut a rune). */
  notText: number;
  /** Go 1.19 refused range over an integer, which current Go runs. */
  newerGo: number;
  differences: string[];
}

function compare(c: FuzzCase, go: GoResult, mine: Ours, tally: Tally): void {
  tally.cases++;
  if (go.ok && mine.ok) {
    const bytes = decodeBase64(go.out);
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      tally.notText++;
      return;
    }
    // Compared as UTF-8, where a lone surrogate is U+FFFD, as Go sees it.
    if (text === mine.out.toWellFormed()) {
      tally.agreeing++;
      tally.rendered++;
    } else {tally.differences.push(
        `${JSON.stringify(c)}: Go ${JSON.stringify(text)}, ours ${
          JSON.stringify(mine.out)
        }`,
      );}
    return;
  }
  if (!go.ok && !mine.ok) {
    tally.agreeing++;
    return;
  }
  if (go.ok && !mine.ok && mine.err.includes("inside a UTF-8 sequence")) {
    // slice cut a rune: Go makes bytes that are not text, a JavaScript
    // string cannot hold them, so this module refuses (README).
    tally.notText++;
    return;
  }
  if (
    minor < 22 && !go.ok && mine.ok &&
    /range can't iterate over -?\d+$/.test(go.err)
  ) {
    // Range over an integer came with Go 1.22; this module follows it.
    tally.newerGo++;
    return;
  }
  tally.differences.push(
    `${JSON.stringify(c)}: Go ${
      go.ok ? "rendered " + JSON.stringify(atob(go.out)) : "failed: " + go.err
    }, ours ${
      mine.ok ? "rendered " + JSON.stringify(mine.out) : "failed: " + mine.err
    }`,
  );
}

function report(name: string, tally: Tally): void {
  console.log(
    `${name}: ${tally.cases} cases, ${tally.agreeing} agree (${tally.rendered} rendered, ${
      tally.agreeing - tally.rendered
    } rejected by both), ${tally.notText} not text in Go, ${tally.newerGo} newer-Go range over int, ${tally.differences.length} differ`,
  );
  assert.deepEqual(tally.differences.slice(0, 5), []);
}

const ignore = skipGo("tests/go/template_go_test.ts");

function newTally(): Tally {
  return {
    cases: 0,
    agreeing: 0,
    rendered: 0,
    notText: 0,
    newerGo: 0,
    differences: [],
  };
}

Deno.test({
  name:
    "Store.render() renders the template corpus byte for byte as Go's text/template",
  ignore,
  async fn() {
    assert.ok(
      version !== undefined,
      "go is not installed (run tests/go/install_go.sh)",
    );
    const corpus = CASES.filter(([name]) =>
      !NOT_GO.has(name) && (minor >= 23 || !NEWER_GO.has(name))
    );
    const cases: FuzzCase[] = corpus.map((
      [, input, , data, , mode = "default"],
    ) => ({ input, data: { ...data }, mode }));
    const results = await goRender(cases);
    using store = new Store();
    const tally = newTally();
    for (const [i, c] of cases.entries()) {
      const group = `case${i}`;
      const entries = Object.entries(c.data);
      const storable = entries.every(([k, v]) =>
        k.isWellFormed() && v.isWellFormed()
      );
      for (const [key, value] of storable ? entries : []) {
        store.set(group, key, value);
      }
      const mine = ours(() =>
        storable
          ? store.render(c.input, group, { missingKey: c.mode })
          : render(c.input, new Map(entries), { missingKey: c.mode })
      );
      compare(c, results[i] as GoResult, mine, tally);
    }
    console.log(
      `${version}; ${
        CASES.length - corpus.length
      } cases left out (json extension, invalid UTF-8, newer Go)`,
    );
    report("corpus", tally);
  },
});

Deno.test({
  name: "render() agrees with Go's text/template on seeded fuzzed templates",
  ignore,
  async fn() {
    assert.ok(
      version !== undefined,
      "go is not installed (run tests/go/install_go.sh)",
    );
    const count = Number(envVar("TEMPLATE_FUZZ_CASES") ?? "20000");
    const seed = Number(envVar("TEMPLATE_FUZZ_SEED") ?? "1");
    const fuzzer = new TemplateFuzzer(seed);
    const cases = Array.from({ length: count }, () => fuzzer.next());
    const results = await goRender(cases);
    const tally = newTally();
    for (const [i, c] of cases.entries()) {
      const mine = ours(() =>
        render(c.input, new Map(Object.entries(c.data)), { missingKey: c.mode })
      );
      compare(c, results[i] as GoResult, mine, tally);
    }
    console.log(`seed ${seed}`);
    report("fuzz", tally);
  },
});
