// Table-driven tests in the manner of Go's text/template exec_test.go; the
// table is in _template_cases.ts, shared with the Go differential test.
import assert from "node:assert/strict";
import {
  executeTemplate,
  type MissingKeyMode,
  parseTemplate,
} from "../src/template.ts";
import { TemplateError } from "../src/errors.ts";
import { CASES, type Data } from "./_template_cases.ts";

/** Renders a case: its output, or its error as "line:col: message". */
export function run(
  input: string,
  data: Data,
  mode: MissingKeyMode,
): [string, boolean] {
  try {
    return [
      executeTemplate(
        parseTemplate(input),
        new Map(Object.entries(data)),
        mode,
      ),
      true,
    ];
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    const prefix = `Cannot render template: ${error.line}:${error.column}: `;
    assert.ok(error.message.startsWith(prefix), error.message);
    return [
      `${error.line}:${error.column}: ${error.message.slice(prefix.length)}`,
      false,
    ];
  }
}

Deno.test("executeTemplate() renders each case of the table as Go's text/template does", async (t) => {
  for (const [name, input, output, data, ok, mode = "default"] of CASES) {
    await t.step(name, () => {
      assert.deepEqual(run(input, data, mode), [output, ok]);
    });
  }
});

Deno.test("executeTemplate() reuses a parsed template with different data and modes", () => {
  const template = parseTemplate("{{ .name }}:{{ .missing }}");
  const first = new Map([["name", "first"]]);
  const second = new Map([["name", "second"], ["missing", "found"]]);
  assert.equal(executeTemplate(template, first, "default"), "first:<no value>");
  assert.equal(executeTemplate(template, second, "default"), "second:found");
  assert.equal(executeTemplate(template, first, "zero"), "first:");
  assert.throws(() => executeTemplate(template, first, "error"), TemplateError);
  assert.equal(executeTemplate(template, second, "error"), "second:found");
  assert.equal(executeTemplate(template, first, "default"), "first:<no value>");
});

Deno.test("parseTemplate() and executeTemplate() reject invalid arguments with TypeError and RangeError", () => {
  assert.throws(() => parseTemplate(42 as unknown as string), TypeError);
  const data = new Map<string, string>();
  assert.throws(
    () => executeTemplate({ tree: [], size: 0 }, data, "default"),
    TypeError,
  );
  assert.throws(
    () => executeTemplate(parseTemplate("x"), data, "strict" as MissingKeyMode),
    {
      name: "RangeError",
      message:
        'Cannot render template: missingKey must be "default", "zero" or "error", received "strict"',
    },
  );
});

Deno.test("parseTemplate() accepts deep nesting and bounds parenthesized expressions", () => {
  const deep = (n: number) =>
    "{{ if . }}".repeat(n) + "x" + "{{ end }}".repeat(n);
  assert.equal(
    executeTemplate(
      parseTemplate(deep(20_000)),
      new Map([["a", "1"]]),
      "default",
    ),
    "x",
  );
  const parens = (n: number) =>
    "{{ " + "(".repeat(n) + "1" + ")".repeat(n) + " }}";
  // As deep as Go renders them; past that a TemplateError, never a stack
  // overflow, even for input far deeper.
  assert.deepEqual(run(parens(1_000), {}, "default"), ["1", true]);
  assert.deepEqual(run(parens(1_001), {}, "default"), [
    "1:1004: max expression depth exceeded",
    false,
  ]);
  assert.deepEqual(run(parens(100_000), {}, "default"), [
    "1:1004: max expression depth exceeded",
    false,
  ]);
});
