// The documentation's links: every relative link in README.md, bench/README.md
// and docs/*.md names a file that exists, and every #anchor a heading of its
// target, slugged as GitHub slugs headings. The code blocks themselves run
// under `deno task test:doc`.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** The Markdown files whose links are checked, relative to the root. */
function documents(): string[] {
  const docs = [...Deno.readDirSync(new URL("docs/", ROOT))]
    .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
    .map((entry) => `docs/${entry.name}`)
    .sort();
  return ["README.md", "bench/README.md", ...docs];
}

/** The text outside fenced code blocks, one string per line (others blank). */
function prose(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split("\n").map((line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker[0]!.repeat(marker.length);
      else if (marker.startsWith(fence)) fence = undefined;
      return "";
    }
    return fence === undefined ? line : "";
  });
}

/** GitHub's anchor for a heading's text. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links keep their text
    .replace(/`([^`]*)`/g, "$1")
    .replace(/[*_]{1,2}([^*_]+)[*_]{1,2}/g, "$1")
    .replace(/<[^>]+>/g, "");
  return text.trim().toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a Markdown file offers, duplicates numbered as GitHub does. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

interface Link {
  line: number;
  target: string;
}

/** The links of a Markdown file outside code, with their line numbers. */
function links(markdown: string): Link[] {
  const result: Link[] = [];
  prose(markdown).forEach((text, index) => {
    const outsideCode = text.replace(/`[^`]*`/g, "");
    for (
      const match of outsideCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)
    ) {
      result.push({ line: index + 1, target: match[1]! });
    }
  });
  return result;
}

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** What is wrong with one link, or `undefined` when it resolves. */
function problem(from: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto:
  const [path = "", anchor] = target.split("#", 2) as [string, string?];
  const file = path === ""
    ? new URL(from, ROOT)
    : new URL(path, new URL(from, ROOT));
  if (!file.href.startsWith(ROOT.href)) return "leaves the repository";
  if (!exists(file)) return "names no file";
  if (anchor === undefined) return undefined;
  if (!file.pathname.endsWith(".md")) {
    return "has an anchor into a file that is not Markdown";
  }
  const offered = anchors(Deno.readTextFileSync(file));
  return offered.has(anchor)
    ? undefined
    : `names no heading of ${file.pathname.slice(ROOT.pathname.length)}`;
}

Deno.test("slug spells headings' anchors as GitHub does", async (t) => {
  const cases: [string, string][] = [
    ["Quick start", "quick-start"],
    ["In a server", "in-a-server"],
    ["`Store`", "store"],
    [
      "The change feed: other processes' writes",
      "the-change-feed-other-processes-writes",
    ],
    ["The event path's files", "the-event-paths-files"],
    ["Export and import", "export-and-import"],
    ["get, set and `deleteGroup()`", "get-set-and-deletegroup"],
    ["A [linked](https://example.com) heading", "a-linked-heading"],
    ["Past one machine: etcd", "past-one-machine-etcd"],
    ["10,000 watchers — paired", "10000-watchers--paired"],
  ];
  for (const [heading, expected] of cases) {
    await t.step(heading, () => assert.equal(slug(heading), expected));
  }
});

Deno.test("anchors numbers repeated headings as GitHub does", () => {
  assert.deepEqual(
    [...anchors("# A\n## Notes\n```\n# not a heading\n```\n## Notes\n")],
    ["a", "notes", "notes-1"],
  );
});

Deno.test("README.md and docs/*.md link only to files and headings that exist", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const doc of documents()) {
    for (
      const { line, target } of links(Deno.readTextFileSync(new URL(doc, ROOT)))
    ) {
      checked++;
      const wrong = problem(doc, target);
      if (wrong !== undefined) {
        broken.push(`${doc}:${line}: ${target} ${wrong}`);
      }
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 50, `only ${checked} links found: is the parser broken?`);
});

Deno.test("docs/architecture.md names only files that exist in src/", () => {
  const text = Deno.readTextFileSync(new URL("docs/architecture.md", ROOT));
  const named = [...text.matchAll(/\*\*`([\w/]+\.ts)`\*\*/g)].map((m) => m[1]!);
  assert.ok(named.length > 40, `only ${named.length} files described`);
  const missing = named.filter((name) => {
    const path = name === "mod.ts" ? name : `src/${name}`;
    return !exists(new URL(path, ROOT));
  });
  assert.deepEqual(missing, []);
});

Deno.test("README.md stays a five-minute read of at most 250 lines", () => {
  const lines = Deno.readTextFileSync(new URL("README.md", ROOT)).split("\n");
  const count = lines.at(-1) === "" ? lines.length - 1 : lines.length;
  assert.ok(count <= 250, `README.md has ${count} lines`);
});
