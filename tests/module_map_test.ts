/**
 * The module map of `src/` has no import circle, types included: every
 * import points from the public front down to the pure parts, so a reader
 * can take the files in order. The specifiers are read statically (the main
 * suite has no `--allow-run` for `deno info`).
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const SRC = new URL("src/", ROOT);

/** Returns `source` with its comments blanked; strings are kept. */
function withoutComments(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? source.length : end + 2;
      out += " ";
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < source.length && source[j] !== c) {
        j += source[j] === "\\" ? 2 : 1;
      }
      out += source.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const CLAUSE = String
  .raw`(?:type\s+)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?|[\w$]+(?:\s*,\s*(?:\{[^}]*\}|\*\s+as\s+[\w$]+))?)`;
const SPECIFIERS = [
  new RegExp(
    String.raw`\b(?:import|export)\s+${CLAUSE}\s*from\s*["']([^"']+)["']`,
    "g",
  ),
  new RegExp(String.raw`\bimport\s*["']([^"']+)["']`, "g"),
  new RegExp(String.raw`\bimport\s*\(\s*["']([^"']+)["']`, "g"),
];

/** Every specifier `source` imports or re-exports from, `import type` included. */
export function specifiers(source: string): string[] {
  const code = withoutComments(source);
  return SPECIFIERS.flatMap((re) => [...code.matchAll(re)].map((m) => m[1]!));
}

/** Every `.ts` file under `dir`, as URLs. */
function sources(dir: URL): URL[] {
  const found: URL[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) found.push(...sources(url));
    else if (entry.name.endsWith(".ts")) found.push(url);
  }
  return found.sort((a, b) => a.href.localeCompare(b.href));
}

/**
 * The graph of relative imports among the files of `src/` and what they reach
 * (`mod.ts`, which `src/etcd.ts` re-exports from), keyed by path from the
 * repository root.
 */
function moduleGraph(): Map<string, string[]> {
  const name = (url: URL) => url.href.slice(ROOT.href.length);
  const graph = new Map<string, string[]>();
  const todo = [new URL("mod.ts", ROOT), ...sources(SRC)];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (graph.has(name(file))) continue;
    const targets = specifiers(Deno.readTextFileSync(file))
      .filter((s) => s.startsWith("."))
      .map((s) => new URL(s, file));
    graph.set(name(file), [...new Set(targets.map(name))]);
    todo.push(...targets);
  }
  return graph;
}

/** One circle per strongly connected component of `graph`, as `a → b → a`. */
export function circles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        found.push([...path.slice(path.indexOf(next)), next].join(" → "));
      } else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

Deno.test("specifiers reads every import form and ignores comments", () => {
  const source = [
    `import a from "./a.ts";`,
    `import type { B } from "./b.ts";`,
    `import {\n  c,\n  type C,\n} from './c.ts';`,
    `import * as d from "./d.ts";`,
    `import e, { f } from "./e.ts";`,
    `export { g } from "./g.ts";`,
    `export type { H } from "./h.ts";`,
    `export * from "./i.ts";`,
    `import "./j.ts";`,
    `const k = await import("./k.ts");`,
    `// import { x } from "./x.ts";`,
    `/** @example\n * import { y } from "./y.ts";\n */`,
    `const url = "http://example.com"; import { z } from "./z.ts";`,
  ].join("\n");
  assert.deepEqual(specifiers(source).sort(), [
    "./a.ts",
    "./b.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./g.ts",
    "./h.ts",
    "./i.ts",
    "./j.ts",
    "./k.ts",
    "./z.ts",
  ]);
});

Deno.test("circles names each circle of a graph", () => {
  const graph = new Map([
    ["a.ts", ["b.ts"]],
    ["b.ts", ["c.ts"]],
    ["c.ts", ["a.ts"]],
    ["d.ts", ["a.ts"]],
  ]);
  assert.deepEqual(circles(graph), ["a.ts → b.ts → c.ts → a.ts"]);
  assert.deepEqual(circles(new Map([["a.ts", ["b.ts"]], ["b.ts", []]])), []);
});

Deno.test("src/ has no import circle, types included", () => {
  const graph = moduleGraph();
  assert.ok(graph.size > 20, `read only ${graph.size} modules`);
  assert.ok(graph.get("src/store.ts")!.length > 0, "store.ts imports nothing?");
  const found = circles(graph);
  assert.deepEqual(
    found,
    [],
    `import circles among src/ and mod.ts:\n${found.join("\n")}`,
  );
});
