/**
 * A subset of Go's `text/template` for rendering one group of the store.
 *
 * Templates are shared with Go services, so everything this module accepts
 * renders byte for byte as Go's `text/template` renders it for a
 * `map[string]string`; constructs outside the subset are rejected when
 * parsing instead of being rendered differently. A template is parsed once
 * into a tree, and executing walks that tree without looking at the source
 * text again.
 *
 * @module
 */

import { Executor, MODES } from "./template/_exec.ts";
import { lex } from "./template/_lexer.ts";
import { Parser } from "./template/_parser.ts";
import { Tree } from "./template/_tree.ts";

/**
 * What a field reference such as `{{ .name }}` yields when the key is not in
 * the map, as Go's `missingkey` option: `"default"` gives Go's invalid value
 * (printed as `<no value>`), `"zero"` gives `""`, and `"error"` stops the
 * execution with a {@linkcode TemplateError}.
 */
export type MissingKeyMode = "default" | "zero" | "error";

/**
 * A parsed template, ready to be executed any number of times with
 * {@linkcode executeTemplate}.
 */
export interface Template {
  /** The parsed tree, opaque outside this module. */
  readonly tree: unknown;
}

/**
 * Parses a template written in the supported subset of Go's `text/template`.
 *
 * Supported: text, `{{ pipeline }}` actions, comments, trim markers, `.key`
 * fields, `.`, `$`, variables (`$x := …`, `$x = …`), string literals, decimal
 * integer literals, `true`, `false`, `nil`, parenthesized pipelines, `if` /
 * `else if` / `else`, `with` / `else with` / `else`, `range` (with its `else`,
 * `break` and `continue`), and the functions `html`, `js`, `urlquery`,
 * `json`, `index`, `len`, `not`, `and`, `or`, `eq` and `ne`.
 *
 * @param source The template text.
 * @returns The parsed template.
 * @throws {TemplateError} If the source is not a valid template of the
 * subset; `line` and `column` (1-based, UTF-16 units) locate the problem.
 * @throws {TypeError} If `source` is not a string.
 *
 * @example Parse once, then execute
 * ```ts
 * import { executeTemplate, parseTemplate } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const template = parseTemplate("Hello, {{ .name | html }}!");
 * const data = new Map([["name", "<Gopher>"]]);
 * assert.equal(executeTemplate(template, data, "default"), "Hello, &lt;Gopher&gt;!");
 * ```
 *
 * @example A syntax error reports where it is
 * ```ts
 * import { parseTemplate } from "./template.ts";
 * import { TemplateError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parseTemplate("a\n{{ .name"), (error) => {
 *   assert.ok(error instanceof TemplateError);
 *   assert.equal(error.line, 2);
 *   assert.equal(error.column, 1);
 *   return true;
 * });
 * ```
 */
export function parseTemplate(source: string): Template {
  if (typeof source !== "string") {
    throw new TypeError("Cannot parse template: the source must be a string");
  }
  const nodes = new Parser(lex(source), source).parse();
  return Object.freeze({ tree: new Tree(nodes, source) });
}

/**
 * Executes a parsed template against one group of the store, as Go's
 * `Template.Execute` does with a `map[string]string` whose `missingkey`
 * option is `missingKey`.
 *
 * `data` must iterate in ascending key order (the byte order of the keys'
 * UTF-8, as Go sorts them): `range` and the printed form of the whole map
 * follow the map's own order instead of sorting it on every execution.
 *
 * @param template A template from {@linkcode parseTemplate}.
 * @param data The group's keys and values; `.key` and `index` look keys up
 * here, and it is the initial `.` and `$`.
 * @param missingKey What a missing `.key` yields.
 * @returns The rendered text.
 * @throws {TemplateError} If the execution fails, e.g. on a missing key in
 * `"error"` mode or a field of a string; `line` and `column` locate the
 * failing part of the action.
 * @throws {TypeError} If `template` did not come from
 * {@linkcode parseTemplate}.
 * @throws {RangeError} If `missingKey` is not one of the three modes.
 *
 * @example Missing keys in each mode
 * ```ts
 * import { executeTemplate, parseTemplate } from "./template.ts";
 * import { TemplateError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const template = parseTemplate("[{{ .missing }}]");
 * const data = new Map<string, string>();
 * assert.equal(executeTemplate(template, data, "default"), "[<no value>]");
 * assert.equal(executeTemplate(template, data, "zero"), "[]");
 * assert.throws(() => executeTemplate(template, data, "error"), TemplateError);
 * ```
 *
 * @example Range over the group in key order
 * ```ts
 * import { executeTemplate, parseTemplate } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const template = parseTemplate(
 *   "{{ range $k, $v := . }}{{ $k }}={{ $v | urlquery }};{{ end }}",
 * );
 * const data = new Map([["a", "x y"], ["b", "&"]]);
 * assert.equal(executeTemplate(template, data, "default"), "a=x+y;b=%26;");
 * ```
 */
export function executeTemplate(
  template: Template,
  data: ReadonlyMap<string, string>,
  missingKey: MissingKeyMode,
): string {
  const tree = template?.tree;
  if (!(tree instanceof Tree)) {
    throw new TypeError(
      "Cannot execute template: it was not made by parseTemplate()",
    );
  }
  return new Executor(tree.source, modeOf(missingKey)).run(tree.nodes, data);
}

/** Options for {@linkcode render}. */
export interface TemplateRenderOptions {
  /** What a missing `.key` yields. Default `"default"`. */
  missingKey?: MissingKeyMode;
}

/**
 * Parses and executes a template in one call, with no store: the data is
 * any map of strings. Keys are sorted as Go sorts a map's keys (by their
 * UTF-8 bytes) before `range` and printing see them.
 *
 * @param source The template text.
 * @param data The keys and values `.key`, `index` and `range` see.
 * @param options `missingKey`: what a missing key yields.
 * @returns The rendered text.
 * @throws {TypeError} If `source` is not a string.
 * @throws {RangeError} If `missingKey` is not one of the three modes.
 * @throws {TemplateError} If the template cannot be parsed or executed.
 *
 * @example Render a map
 * ```ts
 * import { render } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Map([["b", "2"], ["a", "1"]]);
 * assert.equal(render("{{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}", data), "a=1 b=2 ");
 * ```
 */
export function render(
  source: string,
  data: ReadonlyMap<string, string>,
  options: TemplateRenderOptions = {},
): string {
  const mode = modeOf(options.missingKey ?? "default");
  const tree = parseTemplate(source).tree as Tree;
  return new Executor(tree.source, mode).run(tree.nodes, sortedByUtf8(data));
}

/** Checks a missing-key mode, as `Store.render` does. */
function modeOf(missingKey: unknown): number {
  const mode = MODES.get(missingKey as string);
  if (mode === undefined) {
    throw new RangeError(
      `Cannot render template: missingKey must be "default", "zero" or "error", received ${
        typeof missingKey === "string"
          ? JSON.stringify(missingKey)
          : String(missingKey)
      }`,
    );
  }
  return mode;
}

/**
 * The map in Go's key order: by UTF-8 bytes, which differs from JavaScript's
 * UTF-16 order only when a key holds a code point above U+FFFF.
 */
function sortedByUtf8(
  data: ReadonlyMap<string, string>,
): ReadonlyMap<string, string> {
  let previous: string | undefined;
  let sorted = true;
  for (const key of data.keys()) {
    if (previous !== undefined && compareUtf8(previous, key) >= 0) {
      sorted = false;
      break;
    }
    previous = key;
  }
  if (sorted) return data;
  return new Map([...data].sort((a, b) => compareUtf8(a[0], b[0])));
}

/** Compares as Go compares strings: by UTF-8 bytes, i.e. by code points. */
function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (a code point above U+FFFF) sorts after every BMP unit.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
