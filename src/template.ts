/**
 * Go's `text/template` for rendering a map of strings, with no store: the
 * SQLite store and any other backend render a group through this module.
 *
 * Templates are shared with Go services, so a template renders byte for
 * byte as Go's `text/template` renders it for a `map[string]string` (the
 * name of the root template is `"render"`, as go-store names it). `json`
 * is an extension Go lacks. A template is parsed once into a tree;
 * executing walks the tree under a budget of steps and output size, so no
 * template can stall or exhaust the process.
 *
 * @module
 */

import { TemplateError } from "./errors.ts";
import { TemplateCache } from "./template/_cache.ts";
import { type Budget, MODES } from "./template/_eval.ts";
import { Executor } from "./template/_exec.ts";
import { parse } from "./template/_parser.ts";
import { Tree } from "./template/_tree.ts";
import { compareUtf8 } from "./template/_values.ts";

export { TemplateCache };

/**
 * What a field reference such as `{{ .name }}` yields when the key is not in
 * the map, as Go's `missingkey` option: `"default"` gives Go's invalid value
 * (printed as `<no value>`), `"zero"` gives `""`, and `"error"` stops the
 * execution with a {@linkcode TemplateError}.
 */
export type MissingKeyMode = "default" | "zero" | "error";

/** The most bytes of UTF-8 output one execution may produce by default. */
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * The most steps (node evaluations, commands, range iterations, and one per
 * 64 characters of strings built) one execution may take by default: about
 * 250 ms on a slow machine for the costliest kind of step.
 */
export const DEFAULT_MAX_STEPS = 1_000_000;

/** Limits on one execution. */
export interface TemplateLimits {
  /**
   * The most bytes of UTF-8 output; any single value built during the
   * execution is held to the same size in UTF-16 units. Default
   * {@linkcode DEFAULT_MAX_OUTPUT_BYTES} (4 MiB).
   */
  maxOutputBytes?: number;
  /**
   * The most units of work. Default {@linkcode DEFAULT_MAX_STEPS}.
   */
  maxSteps?: number;
}

/** Options for {@linkcode render}. */
export interface TemplateRenderOptions extends TemplateLimits {
  /** What a missing `.key` yields. Default `"default"`. */
  missingKey?: MissingKeyMode;
}

/**
 * A parsed template, ready to be executed any number of times with
 * {@linkcode executeTemplate}.
 */
export interface Template {
  /** The parsed tree, opaque outside this module. */
  readonly tree: unknown;
  /** Estimated bytes the parsed template keeps in memory. */
  readonly size: number;
}

/**
 * Parses a template in Go's `text/template` language.
 *
 * @param source The template text.
 * @returns The parsed template.
 * @throws {TemplateError} If the source is not a valid template; `line` and
 * `column` (1-based, UTF-16 units) locate the problem.
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
  const tree = withStack(() => parse(source));
  return Object.freeze({ tree, size: tree.cost });
}

/**
 * Executes a parsed template against a map, as Go's `Template.Execute` does
 * with a `map[string]string` whose `missingkey` option is `missingKey`.
 *
 * `data` must iterate in ascending key order (the byte order of the keys'
 * UTF-8, as Go sorts them): `range` and the printed form of the whole map
 * follow the map's own order instead of sorting it on every execution.
 *
 * @param template A template from {@linkcode parseTemplate}.
 * @param data The keys and values; `.key` and `index` look keys up here, and
 * it is the initial `.` and `$`.
 * @param missingKey What a missing `.key` yields.
 * @param limits The execution's budgets.
 * @returns The rendered text.
 * @throws {TemplateError} If the execution fails, e.g. on a missing key in
 * `"error"` mode, a field of a string, or a budget exceeded; `line` and
 * `column` locate the failing part.
 * @throws {TypeError} If `template` did not come from
 * {@linkcode parseTemplate}.
 * @throws {RangeError} If `missingKey` is not one of the three modes or a
 * limit is not a positive integer.
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
 * @example A budget stops a runaway template
 * ```ts
 * import { executeTemplate, parseTemplate } from "./template.ts";
 * import { TemplateError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const template = parseTemplate("{{ range 1000000 }}x{{ end }}");
 * assert.throws(
 *   () => executeTemplate(template, new Map(), "default", { maxSteps: 1000 }),
 *   TemplateError,
 * );
 * ```
 */
export function executeTemplate(
  template: Template,
  data: ReadonlyMap<string, string>,
  missingKey: MissingKeyMode,
  limits: TemplateLimits = {},
): string {
  const tree = template?.tree;
  if (!(tree instanceof Tree)) {
    throw new TypeError(
      "Cannot execute template: it was not made by parseTemplate()",
    );
  }
  const executor = new Executor(tree, modeOf(missingKey), budgetOf(limits));
  return withStack(() => executor.run(data));
}

// Nesting is bounded (MAX_EXPRESSION_DEPTH), but a caller that is itself
// deep in the stack may leave too little of it: that is the template's
// error to report, not a crash.
function withStack<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw new TemplateError(
        "the template nests deeper than the call stack left to it holds",
        1,
        1,
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * Parses and executes a template in one call, with no store: the data is
 * any map of strings, sorted here as Go sorts a map's keys.
 *
 * @param source The template text.
 * @param data The keys and values `.key`, `index` and `range` see.
 * @param options `missingKey` and the budgets.
 * @returns The rendered text.
 * @throws {TypeError} If `source` is not a string.
 * @throws {RangeError} If `missingKey` is not one of the three modes or a
 * limit is not a positive integer.
 * @throws {TemplateError} If the template cannot be parsed or executed.
 *
 * @example Render a map
 * ```ts
 * import { render } from "./template.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new Map([["b", "2"], ["a", "1"]]);
 * assert.equal(
 *   render(`{{ range $k, $v := . }}{{ printf "%s=%q " $k $v }}{{ end }}`, data),
 *   `a="1" b="2" `,
 * );
 * ```
 */
export function render(
  source: string,
  data: ReadonlyMap<string, string>,
  options: TemplateRenderOptions = {},
): string {
  const mode = modeOf(options.missingKey ?? "default");
  const budget = budgetOf(options);
  const tree = parseTemplate(source).tree as Tree;
  return new Executor(tree, mode, budget).run(sortedByUtf8(data));
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

function budgetOf(limits: TemplateLimits): Budget {
  return {
    maxOutputBytes: limit(
      "maxOutputBytes",
      limits.maxOutputBytes,
      DEFAULT_MAX_OUTPUT_BYTES,
    ),
    maxSteps: limit("maxSteps", limits.maxSteps, DEFAULT_MAX_STEPS),
  };
}

function limit(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot render template: ${name} must be a positive integer, received ${
        String(value)
      }`,
    );
  }
  return value;
}

/** The map in Go's key order (by UTF-8 bytes). */
function sortedByUtf8(
  data: ReadonlyMap<string, string>,
): ReadonlyMap<string, string> {
  let previous: string | undefined;
  for (const key of data.keys()) {
    if (previous !== undefined && compareUtf8(previous, key) >= 0) {
      return new Map([...data].sort((a, b) => compareUtf8(a[0], b[0])));
    }
    previous = key;
  }
  return data;
}
