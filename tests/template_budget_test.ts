import assert from "node:assert/strict";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_STEPS,
  executeTemplate,
  parseTemplate,
  render,
  TemplateCache,
} from "../src/template.ts";
import { TemplateError } from "../src/errors.ts";

const tenKeys = new Map(
  Array.from({ length: 10 }, (_, i) => [`k${i}`, `v${i}`] as [string, string]),
);

function assertBudgetError(fn: () => unknown, pattern: RegExp): number {
  const start = performance.now();
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TemplateError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
  return performance.now() - start;
}

Deno.test("render() stops a pipeline that doubles its value at the output budget, not out of memory", () => {
  const data = new Map([["a", "\\"]]);
  for (const escaper of ["js", "json"]) {
    const source = "{{ .a" + ` | ${escaper}`.repeat(28) + " }}";
    const ms = assertBudgetError(
      () => render(source, data),
      /exceeds the (output )?budget/,
    );
    // Generous for a shared machine; unbounded it took 39 s and 4.3 GB.
    assert.ok(ms < 5_000, `${escaper} x28 took ${ms} ms`);
  }
});

Deno.test("render() stops a 131-byte nested range over ten keys with the step budget", () => {
  const source = "{{range $}}".repeat(7) + "{{.}}" + "{{end}}".repeat(7);
  assert.equal(source.length, 131);
  const ms = assertBudgetError(
    () => render(source, tenKeys),
    /execution exceeds the budget of 1000000 steps/,
  );
  assert.ok(ms < 5_000, `nested range took ${ms} ms`);
  // Three levels, 1,000 iterations, are well within the default budget.
  const small = "{{range $}}".repeat(3) + "{{.}}" + "{{end}}".repeat(3);
  assert.equal(render(small, tenKeys).length, 2_000);
});

Deno.test("render() counts maxOutputBytes in UTF-8 bytes of the output", () => {
  const data = new Map([["e", "é".repeat(5)]]);
  assert.equal(render("{{ .e }}", data, { maxOutputBytes: 10 }), "ééééé");
  assertBudgetError(
    () => render("{{ .e }}", data, { maxOutputBytes: 9 }),
    /output exceeds the budget of 9 bytes/,
  );
  assertBudgetError(
    () =>
      render("{{ range 100 }}{{ $.e }}{{ end }}", data, {
        maxOutputBytes: 999,
      }),
    /output exceeds the budget of 999 bytes/,
  );
});

Deno.test("render() holds every value built to the output budget, printed or not", () => {
  const data = new Map([["a", "x".repeat(1000)]]);
  assertBudgetError(
    () =>
      render(`{{ $x := printf "%s%s" .a .a }}`, data, { maxOutputBytes: 1500 }),
    /a value built by printf exceeds the output budget of 1500 bytes/,
  );
});

Deno.test("render() takes maxSteps per call and counts range iterations", () => {
  assert.equal(
    render("{{ range 10 }}.{{ end }}", new Map(), { maxSteps: 100 }),
    "..........",
  );
  assertBudgetError(
    () => render("{{ range 1000 }}.{{ end }}", new Map(), { maxSteps: 100 }),
    /execution exceeds the budget of 100 steps/,
  );
  const template = parseTemplate("{{ range 1000 }}{{ end }}");
  assert.equal(
    executeTemplate(template, new Map(), "default", { maxSteps: 5000 }),
    "",
  );
  assert.throws(
    () => executeTemplate(template, new Map(), "default", { maxSteps: 500 }),
    TemplateError,
  );
});

Deno.test("render() turns endless template recursion into a TemplateError", () => {
  assertBudgetError(
    () =>
      render(
        '{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}',
        new Map(),
      ),
    /exceeded maximum template depth \(100000\)|exceeds the budget/,
  );
});

Deno.test("render() rejects limits that are not positive integers with RangeError", () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity, "10"]) {
    assert.throws(
      () => render("x", new Map(), { maxSteps: bad as number }),
      {
        name: "RangeError",
        message:
          `Cannot render template: maxSteps must be a positive integer, received ${
            String(bad)
          }`,
      },
    );
    assert.throws(
      () => render("x", new Map(), { maxOutputBytes: bad as number }),
      RangeError,
    );
  }
  assert.equal(DEFAULT_MAX_OUTPUT_BYTES, 4 * 1024 * 1024);
  assert.equal(DEFAULT_MAX_STEPS, 1_000_000);
});

Deno.test("render() renders a large output within the default budgets", () => {
  // 260 KB of HTML with markup, escaped twice over: 700 KB out, and 4 MB
  // of plain text.
  const data = new Map([
    ["a", "<b>bold</b> & plain text. ".repeat(10_000)],
    ["p", "plain text ".repeat(100_000)],
  ]);
  const out = render("{{ range 2 }}{{ $.a | html }}{{ end }}", data);
  assert.equal(out.length, 2 * 10_000 * 42);
  const plain = render("{{ range 3 }}{{ $.p }}{{ end }}", data);
  assert.equal(plain.length, 3 * 1_100_000);
});

Deno.test("parseTemplate() estimates a tree's size in proportion to its source", () => {
  for (
    const unit of [
      "{{ .a }}x",
      "{{ if .a }}y{{ end }}",
      '{{ index . "k" }}',
      "{{ 1 }}",
    ]
  ) {
    const small = parseTemplate(unit.repeat(100));
    const large = parseTemplate(unit.repeat(10_000));
    const ratio = large.size / small.size;
    assert.ok(ratio > 90 && ratio < 110, `${unit}: ${ratio}`);
    assert.ok(
      large.size / (unit.length * 10_000) < 80,
      `${unit}: ${large.size}`,
    );
  }
});

Deno.test("TemplateCache keeps parsed templates within its byte budget, least recently used first", () => {
  let parses = 0;
  const cache = new TemplateCache((source) => {
    parses++;
    return parseTemplate(source);
  }, 1_000_000);
  const sources = Array.from(
    { length: 50 },
    (_, i) => `${i}:` + "{{ .a }}".repeat(200),
  );
  for (const source of sources) cache.get(source);
  assert.ok(cache.bytes <= 1_000_000, `${cache.bytes}`);
  assert.ok(cache.size < 50 && cache.size > 5, `${cache.size}`);
  assert.equal(parses, 50);
  // The most recent entry is still there; the oldest was evicted.
  cache.get(sources[49] as string);
  assert.equal(parses, 50);
  cache.get(sources[0] as string);
  assert.equal(parses, 51);
  // A template over a quarter of the budget is parsed but never kept.
  const huge = "{{ .a }}".repeat(20_000);
  const before = cache.bytes;
  cache.get(huge);
  cache.get(huge);
  assert.equal(parses, 53);
  assert.ok(cache.bytes <= before);
  cache.clear();
  assert.equal(cache.bytes, 0);
  assert.equal(cache.size, 0);
});

Deno.test("TemplateCache passes parse errors through and caches nothing for them", () => {
  const cache = new TemplateCache(parseTemplate);
  assert.throws(() => cache.get("{{ .a"), TemplateError);
  assert.equal(cache.size, 0);
});

Deno.test("render() holds printf's width to the output budget", () => {
  assertBudgetError(
    () =>
      render(`{{ printf "%900000d" 1 }}`, new Map(), { maxOutputBytes: 1000 }),
    /a value built by printf exceeds the output budget of 1000 bytes/,
  );
});

Deno.test("render() needs no store and ranges in Go's key order (UTF-8 bytes)", () => {
  // UTF-16 order puts U+1F389 (a surrogate pair) before U+FFFF; Go's
  // byte order puts it after.
  const data = new Map([["🎉", "b"], ["\uffff", "a"], ["z", "0"]]);
  assert.equal(render("{{ range . }}{{ . }}{{ end }}", data), "0ab");
  assert.equal(
    render("{{ . }}", new Map([["b", "2"], ["a", "1"]])),
    "map[a:1 b:2]",
  );
});
