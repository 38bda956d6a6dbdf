import assert from "node:assert/strict";
import {
  executeTemplate,
  type MissingKeyMode,
  parseTemplate,
} from "../src/template.ts";
import { TemplateError } from "../src/errors.ts";

function render(
  source: string,
  data: Record<string, string> = {},
  mode: MissingKeyMode = "default",
): string {
  return executeTemplate(
    parseTemplate(source),
    new Map(Object.entries(data)),
    mode,
  );
}

function assertTemplateError(
  fn: () => unknown,
  line: number,
  column: number,
  message: string,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TemplateError);
    assert.equal(
      error.message,
      `Cannot render template: ${line}:${column}: ${message}`,
    );
    assert.equal(error.line, line);
    assert.equal(error.column, column);
    return true;
  });
}

Deno.test("parseTemplate() parses plain text that executeTemplate() copies unchanged", () => {
  assert.equal(render(""), "");
  assert.equal(
    render("plain text\nwith } and }} and { alone"),
    "plain text\nwith } and }} and { alone",
  );
  assert.equal(render("ünïcödé 🎉 \u2028"), "ünïcödé 🎉 \u2028");
});

Deno.test("executeTemplate() prints fields, dot and $ of the data map", async (t) => {
  const data = { a: "1", b: "two words", 名前: "Gopher", _x9: "u" };

  await t.step("prints a field by name", () => {
    assert.equal(render("[{{ .a }}] [{{.b}}]", data), "[1] [two words]");
  });

  await t.step("accepts Unicode letters, digits and _ in field names", () => {
    assert.equal(render("{{ .名前 }} {{ ._x9 }}", data), "Gopher u");
  });

  await t.step("prints the whole map in Go's fmt form", () => {
    assert.equal(render("{{ . }}", { a: "1", b: "2" }), "map[a:1 b:2]");
    assert.equal(render("{{ $ }}", { a: "1", b: "x y" }), "map[a:1 b:x y]");
    assert.equal(render("{{ . }}"), "map[]");
  });

  await t.step("reaches the root through $ inside range and with", () => {
    assert.equal(
      render(
        "{{ range . }}{{ $.a }}{{ end }}|{{ with .b }}{{ $.a }}{{ end }}",
        {
          a: "1",
          b: "2",
        },
      ),
      "11|1",
    );
  });

  await t.step("accepts a newline inside an action", () => {
    assert.equal(render("{{\n  .a\n}}", data), "1");
  });
});

Deno.test("executeTemplate() prints <no value> for a missing key in default mode", async (t) => {
  await t.step("prints <no value> for the action", () => {
    assert.equal(render("[{{ .missing }}]"), "[<no value>]");
  });

  await t.step("passes <no value> to html, js and urlquery as Go does", () => {
    assert.equal(render("{{ .missing | html }}"), "&lt;no value&gt;");
    assert.equal(render("{{ html .missing }}"), "&lt;no value&gt;");
    assert.equal(
      render("{{ .missing | js }}"),
      String.raw`\u003Cno value\u003E`,
    );
    assert.equal(render("{{ .missing | urlquery }}"), "%3Cno+value%3E");
  });

  await t.step("treats the missing value as false and empty", () => {
    assert.equal(render("{{ if .missing }}y{{ else }}n{{ end }}"), "n");
    assert.equal(render("{{ with .missing }}y{{ else }}n{{ end }}"), "n");
    assert.equal(render("{{ range .missing }}y{{ else }}n{{ end }}"), "n");
    assert.equal(render(`{{ or .missing "fallback" }}`), "fallback");
    assert.equal(render("{{ not .missing }}"), "true");
  });

  await t.step("prints <no value> for a field of the missing value", () => {
    assert.equal(render("{{ .missing.deeper }}"), "<no value>");
  });
});

Deno.test("executeTemplate() prints an empty string for a missing key in zero mode", async (t) => {
  await t.step("prints nothing for the action", () => {
    assert.equal(render("[{{ .missing }}]", {}, "zero"), "[]");
  });

  await t.step("passes an empty string to functions", () => {
    assert.equal(render("[{{ .missing | html }}]", {}, "zero"), "[]");
    assert.equal(render("{{ .missing | json }}", {}, "zero"), '""');
    assert.equal(render("{{ len .missing }}", {}, "zero"), "0");
  });

  await t.step("fails on a field of the empty string, as Go does", () => {
    assertTemplateError(
      () => render("{{ .missing.deeper }}", {}, "zero"),
      1,
      4,
      "can't evaluate field deeper in type string",
    );
  });
});

Deno.test("executeTemplate() throws for a missing key in error mode", async (t) => {
  await t.step("reports the key and where it is used", () => {
    assertTemplateError(
      () =>
        render("Dear {{ .name }},\n  your code is {{ .code }}.", {
          name: "Ann",
        }, "error"),
      2,
      19,
      'map has no entry for key "code"',
    );
  });

  await t.step("reports a missing function argument", () => {
    assertTemplateError(
      () => render("{{ html .missing }}", {}, "error"),
      1,
      9,
      'map has no entry for key "missing"',
    );
  });

  await t.step("renders present keys normally", () => {
    assert.equal(render("{{ .name }}", { name: "Ann" }, "error"), "Ann");
  });

  await t.step("does not apply to index, which yields the zero value", () => {
    for (const mode of ["default", "zero", "error"] as const) {
      assert.equal(render(`[{{ index . "missing" }}]`, {}, mode), "[]");
    }
  });
});

Deno.test("executeTemplate() escapes html like Go's template.HTMLEscapeString", async (t) => {
  const data = {
    markup: `<a href="x" title='y'>Tom & Jerry</a>\0`,
    plain: "plain ünïcödé 🎉 text",
  };
  const escaped =
    "&lt;a href=&#34;x&#34; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;\uFFFD";

  await t.step("escapes & < > \" ' and replaces NUL", () => {
    assert.equal(render("{{ .markup | html }}", data), escaped);
    assert.equal(render("{{ html .markup }}", data), escaped);
  });

  await t.step("leaves everything else as is", () => {
    assert.equal(render("{{ .plain | html }}", data), data.plain);
  });
});

Deno.test("executeTemplate() escapes js like Go's template.JSEscapeString", async (t) => {
  await t.step("escapes quotes, backslash, < > & and =", () => {
    assert.equal(
      render("{{ .v | js }}", { v: `He said "it's" <b>&</b> a=b \\ path` }),
      String
        .raw`He said \"it\'s\" \u003Cb\u003E\u0026\u003C/b\u003E a\u003Db \\ path`,
    );
  });

  await t.step("writes control characters as \\u00XX but leaves DEL", () => {
    assert.equal(
      render("{{ js .v }}", { v: "\t\n\r\x01\x1f\x7f" }),
      String.raw`\u0009\u000A\u000D\u0001\u001F` + "\x7f",
    );
  });

  await t.step("keeps printable non-ASCII and escapes the rest", () => {
    assert.equal(
      render("{{ .v | js }}", {
        v: "é日本🎉e\u0301\u00a0\u2028\u200b\u00ad\ufeff\u0085\u3000\u{E0001}",
      }),
      "é日本🎉e\u0301" +
        String.raw`\u00A0\u2028\u200B\u00AD\uFEFF\u0085\u3000\uE0001`,
    );
  });

  await t.step("leaves a lone surrogate, which Go sees as U+FFFD", () => {
    assert.equal(render("{{ .v | js }}", { v: "a\ud800b" }), "a\ud800b");
  });
});

Deno.test("executeTemplate() escapes urlquery like Go's url.QueryEscape", async (t) => {
  await t.step("keeps A-Z a-z 0-9 - _ . ~ and writes space as +", () => {
    assert.equal(
      render("{{ .v | urlquery }}", { v: "AZaz09-_.~ x" }),
      "AZaz09-_.~+x",
    );
  });

  await t.step("percent-encodes every other ASCII byte in upper case", () => {
    assert.equal(
      render("{{ .v | urlquery }}", { v: "a&c=d/e?f#g+h%i*'()\n\0" }),
      "a%26c%3Dd%2Fe%3Ff%23g%2Bh%25i%2A%27%28%29%0A%00",
    );
  });

  await t.step("percent-encodes the UTF-8 bytes of non-ASCII", () => {
    assert.equal(
      render("{{ urlquery .v }}", { v: "é€🎉" }),
      "%C3%A9%E2%82%AC%F0%9F%8E%89",
    );
    assert.equal(render("{{ .v | urlquery }}", { v: "\ud800" }), "%EF%BF%BD");
  });
});

Deno.test("executeTemplate() quotes json like Go's json.Marshal of a string", async (t) => {
  await t.step("escapes quotes, backslash and the HTML characters", () => {
    assert.equal(
      render("{{ .v | json }}", { v: `say "hi"\\ <tag> & 'done'` }),
      String.raw`"say \"hi\"\\ \u003ctag\u003e \u0026 'done'"`,
    );
  });

  await t.step(
    "uses short escapes, then lower-case \\u00xx, for controls",
    () => {
      assert.equal(
        render("{{ json .v }}", { v: "\b\f\n\r\t\x00\x1f\x7f" }),
        String.raw`"\b\f\n\r\t\u0000\u001f` + '\x7f"',
      );
    },
  );

  await t.step("escapes U+2028 and U+2029 but no other non-ASCII", () => {
    assert.equal(
      render("{{ .v | json }}", { v: "é🎉\u00a0\u2028\u2029" }),
      '"é🎉\u00a0' + String.raw`\u2028\u2029"`,
    );
  });

  await t.step("quotes plain and empty strings", () => {
    assert.equal(render("{{ .v | json }}", { v: "abc" }), '"abc"');
    assert.equal(render("{{ .v | json }}", { v: "" }), '""');
  });
});

Deno.test("executeTemplate() chains functions in pipelines", () => {
  const data = { v: `<"a b">` };
  assert.equal(
    render("{{ .v | html | js }}", data),
    String.raw`\u0026lt;\u0026#34;a b\u0026#34;\u0026gt;`,
  );
  assert.equal(
    render("{{ .v | json | html }}", data),
    "&#34;\\u003c\\&#34;a b\\&#34;\\u003e&#34;",
  );
  assert.equal(
    render("{{ html .v | urlquery }}", data),
    "%26lt%3B%26%2334%3Ba+b%26%2334%3B%26gt%3B",
  );
  assert.equal(
    render("{{ js (html .v) }}", data),
    render("{{ .v | html | js }}", data),
  );
  assert.equal(
    render("{{ (.v) | html }}", data),
    render("{{ .v | html }}", data),
  );
  assert.equal(render(`{{ "a b" | urlquery }}`), "a+b");
});

Deno.test("parseTemplate() applies trim markers to adjacent ASCII whitespace", async (t) => {
  const data = { x: "X" };

  await t.step("trims spaces, tabs and newlines on both sides", () => {
    assert.equal(render("a  \n\t{{- .x -}} \r\n b", data), "aXb");
  });

  await t.step("trims only the marked side", () => {
    assert.equal(render("x \n {{- .x }} \n y", data), "xX \n y");
    assert.equal(render("x \n {{ .x -}} \n y", data), "x \n Xy");
  });

  await t.step("needs whitespace after {{- and before -}}", () => {
    assert.equal(render("a {{-3}} b"), "a -3 b");
    assert.equal(render("a {{- -3 -}} b"), "a-3b");
  });

  await t.step("does not trim non-ASCII spaces", () => {
    assert.equal(render(" \u00a0{{- .x -}}\u3000 ", data), " \u00a0X\u3000 ");
  });

  await t.step("removes text that is only whitespace", () => {
    assert.equal(
      render("{{ .x -}}\n\n{{- .x }}\n  {{- .x }}", data),
      "XXX",
    );
  });
});

Deno.test("parseTemplate() drops comments", async (t) => {
  await t.step("removes a comment, also across lines", () => {
    assert.equal(render("a{{/* note */}}b"), "ab");
    assert.equal(render("a{{/* multi\nline {{ .x }} */}}b"), "ab");
  });

  await t.step("applies trim markers around a comment", () => {
    assert.equal(render("a \n{{- /* note */ -}}\n b"), "ab");
    assert.equal(render("x \n{{- /* note */}}\n y"), "x\n y");
    assert.equal(render("x \n{{/* note */ -}}\n y"), "x \ny");
  });
});

Deno.test("executeTemplate() chooses if, else if and else branches by Go truthiness", async (t) => {
  const template = parseTemplate(
    "{{ if .a }}A{{ else if .b }}B{{ else if not .c }}not C{{ else }}else{{ end }}",
  );
  const run = (data: Record<string, string>) =>
    executeTemplate(template, new Map(Object.entries(data)), "default");

  await t.step("takes the first true branch", () => {
    assert.equal(run({ a: "x", b: "y" }), "A");
    assert.equal(run({ a: "", b: "y" }), "B");
    assert.equal(run({}), "not C");
    assert.equal(run({ c: "z" }), "else");
  });

  await t.step("treats only the empty string as a false string", () => {
    assert.equal(render("{{ if .v }}T{{ else }}F{{ end }}", { v: "0" }), "T");
    assert.equal(
      render("{{ if .v }}T{{ else }}F{{ end }}", { v: "false" }),
      "T",
    );
    assert.equal(render("{{ if .v }}T{{ else }}F{{ end }}", { v: " " }), "T");
    assert.equal(render("{{ if .v }}T{{ else }}F{{ end }}", { v: "" }), "F");
  });

  await t.step("treats the empty map as false", () => {
    assert.equal(render("{{ if . }}T{{ else }}F{{ end }}"), "F");
    assert.equal(render("{{ if . }}T{{ else }}F{{ end }}", { k: "" }), "T");
  });

  await t.step("compares with eq and ne", () => {
    const env =
      `{{ if eq .env "prod" }}P{{ else if ne .env "dev" }}O{{ else }}D{{ end }}`;
    assert.equal(render(env, { env: "prod" }), "P");
    assert.equal(render(env, { env: "test" }), "O");
    assert.equal(render(env, { env: "dev" }), "D");
  });
});

Deno.test("executeTemplate() runs with and its else branches", async (t) => {
  await t.step("sets dot to the value when it is non-empty", () => {
    assert.equal(
      render("{{ with .a }}[{{ . }}]{{ else }}none{{ end }}|{{ .b }}", {
        a: "1",
        b: "2",
      }),
      "[1]|2",
    );
  });

  await t.step("runs else for an empty or missing value", () => {
    const template = "{{ with .a }}[{{ . }}]{{ else }}none{{ end }}";
    assert.equal(render(template, { a: "" }), "none");
    assert.equal(render(template), "none");
  });

  await t.step("chains else with", () => {
    const template =
      "{{ with .a }}A{{ . }}{{ else with .b }}B{{ . }}{{ else }}none{{ end }}";
    assert.equal(render(template, { a: "1", b: "2" }), "A1");
    assert.equal(render(template, { b: "2" }), "B2");
    assert.equal(render(template), "none");
  });

  await t.step("declares a variable", () => {
    assert.equal(
      render("{{ with $x := .a }}{{ $x }}{{ . }}{{ end }}", { a: "1" }),
      "11",
    );
  });
});

Deno.test("executeTemplate() ranges over the map in key order", async (t) => {
  const data = { a: "1", b: "x y", c: "" };

  await t.step("binds key and value with two variables", () => {
    assert.equal(
      render("{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}", data),
      "a=1;b=x y;c=;",
    );
  });

  await t.step("binds the value with one variable", () => {
    assert.equal(
      render("{{ range $v := . }}<{{ $v }}>{{ end }}", data),
      "<1><x y><>",
    );
  });

  await t.step("sets dot to each value", () => {
    assert.equal(render("{{ range . }}<{{ . }}>{{ end }}", data), "<1><x y><>");
  });

  await t.step("pops the variables at end", () => {
    assertTemplateError(
      () => parseTemplate("{{ range $k, $v := . }}{{ end }}\n{{ $k }}"),
      2,
      4,
      'undefined variable "$k"',
    );
  });

  await t.step("counts up to an integer, as Go 1.22 does", () => {
    assert.equal(render("{{ range $i := 3 }}{{ $i }}{{ end }}"), "012");
    assert.equal(
      render("{{ range len .v }}{{ . }}{{ end }}", { v: "ab" }),
      "01",
    );
  });
});

Deno.test("executeTemplate() runs range else on an empty map", () => {
  assert.equal(render("{{ range . }}x{{ else }}empty{{ end }}"), "empty");
  assert.equal(
    render("{{ range . }}x{{ else }}empty{{ end }}", { k: "" }),
    "x",
  );
  assert.equal(render("{{ range $i := 0 }}x{{ else }}zero{{ end }}"), "zero");
});

Deno.test("executeTemplate() supports break and continue in range", () => {
  const data = { a: "1", b: "2", c: "3", d: "4", e: "5" };
  assert.equal(
    render(
      `{{ range $k, $v := . }}{{ if eq $k "b" }}{{ continue }}{{ end }}` +
        `{{ if eq $k "d" }}{{ break }}{{ end }}{{ $k }}{{ end }}`,
      data,
    ),
    "ac",
  );
  assert.equal(
    render("{{ range . }}{{ with . }}{{ break }}{{ end }}x{{ end }}.", data),
    ".",
  );
});

Deno.test("executeTemplate() looks up any key with index", async (t) => {
  const data = {
    "key with spaces": "spaces",
    'quote"d': "quoted",
    "back\\slash": "backslash",
    "tab\there": "tab",
    "été": "unicode",
    "🎉": "emoji",
    "A": "octal",
  };

  await t.step("accepts a double-quoted string with Go escapes", () => {
    assert.equal(render(`{{ index . "key with spaces" }}`, data), "spaces");
    assert.equal(render(`{{ index . "quote\\"d" }}`, data), "quoted");
    assert.equal(render(`{{ index . "back\\\\slash" }}`, data), "backslash");
    assert.equal(render(`{{ index . "tab\\there" }}`, data), "tab");
    assert.equal(render(`{{ index . "\\u00e9t\\xc3\\xa9" }}`, data), "unicode");
    assert.equal(render(`{{ index . "\\U0001F389" }}`, data), "emoji");
    assert.equal(render(`{{ index . "\\101" }}`, data), "octal");
  });

  await t.step("accepts a raw string, without carriage returns", () => {
    assert.equal(render("{{ index . `back\\slash` }}", data), "backslash");
    assert.equal(render('{{ index . `quote"d` }}', data), "quoted");
    assert.equal(render("{{ index . `key with\r spaces` }}", data), "spaces");
  });

  await t.step("takes the key from a pipeline", () => {
    assert.equal(
      render(`{{ "key with spaces" | index . | html }}`, data),
      "spaces",
    );
  });

  await t.step("yields an empty string for a missing key", () => {
    assert.equal(render(`[{{ index . "nope" }}]`, data), "[]");
  });

  await t.step("yields the byte at an index of a string", () => {
    assert.equal(
      render("{{ index .v 1 }} {{ index .v 2 }}", { v: "abé" }),
      "98 195",
    );
  });
});

Deno.test("executeTemplate() treats __proto__ and other Object.prototype names as ordinary keys", () => {
  const map = new Map([
    ["__proto__", "proto"],
    ["constructor", "ctor"],
    ["hasOwnProperty", "own"],
  ]);
  const template = parseTemplate(
    `{{ .__proto__ }} {{ .constructor }} {{ index . "hasOwnProperty" }}`,
  );
  assert.equal(executeTemplate(template, map, "default"), "proto ctor own");
  assert.equal(
    render(
      '{{ .toString }}|{{ .constructor }}|{{ .__proto__ }}|{{ index . "valueOf" }}',
    ),
    "<no value>|<no value>|<no value>|",
  );
  assertTemplateError(
    () => render("{{ .__proto__ }}", {}, "error"),
    1,
    4,
    'map has no entry for key "__proto__"',
  );
});

Deno.test("executeTemplate() prints values containing template syntax literally", () => {
  const data = {
    secret: "s3cret",
    x: "{{ .secret }}",
    y: "{{/* */}}{{- end }}",
  };
  assert.equal(render("{{ .x }}", data), "{{ .secret }}");
  assert.equal(render("{{ .x | html }}", data), "{{ .secret }}");
  assert.equal(
    render("{{ range . }}{{ . }};{{ end }}", data),
    "s3cret;{{ .secret }};{{/* */}}{{- end }};",
  );
});

Deno.test("executeTemplate() supports variable declarations and assignments", async (t) => {
  await t.step("declares a variable without printing", () => {
    assert.equal(render("{{ $x := .a }}[{{ $x }}]", { a: "1" }), "[1]");
  });

  await t.step("assigns to a variable of an enclosing scope", () => {
    assert.equal(
      render(`{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}`),
      "b",
    );
    assert.equal(
      render(
        `{{ $last := "" }}{{ range . }}{{ $last = . }}{{ end }}{{ $last }}`,
        {
          a: "1",
          b: "2",
        },
      ),
      "2",
    );
  });

  await t.step("scopes a declaration to its control", () => {
    assertTemplateError(
      () => parseTemplate("{{ if true }}{{ $y := 1 }}{{ end }}\n{{ $y }}"),
      2,
      4,
      'undefined variable "$y"',
    );
  });

  await t.step("reads fields through a variable", () => {
    assert.equal(render("{{ $m := . }}{{ $m.a }}{{ $.a }}", { a: "1" }), "11");
  });
});

Deno.test("executeTemplate() evaluates literals and the not, and, or, eq, ne and len functions like Go", async (t) => {
  await t.step("prints literals", () => {
    assert.equal(render(`{{ "a\\tb" }}|{{ \`raw\\n\` }}`), "a\tb|raw\\n");
    assert.equal(render("{{ 42 }} {{ -7 }} {{ +5 }} {{ -0 }}"), "42 -7 5 0");
    assert.equal(render("{{ true }} {{ false }}"), "true false");
  });

  await t.step("returns the deciding argument from and and or", () => {
    assert.equal(render(`[{{ and "a" "" "b" }}]`), "[]");
    assert.equal(render(`{{ and "a" "b" }}`), "b");
    assert.equal(render(`{{ or "" "b" "c" }}`), "b");
    assert.equal(render(`[{{ or "" "" }}]`), "[]");
    assert.equal(render(`{{ .a | or "" }}`, { a: "piped" }), "piped");
    assert.equal(render(`{{ or .port "8080" }}`), "8080");
  });

  await t.step("short-circuits and and or", () => {
    assert.equal(render(`{{ or "x" .missing }}`, {}, "error"), "x");
    assert.equal(render(`[{{ and "" .missing }}]`, {}, "error"), "[]");
  });

  await t.step("compares values with eq and ne", () => {
    assert.equal(
      render(`{{ eq .a "x" "1" }} {{ eq .a "x" }}`, { a: "1" }),
      "true false",
    );
    assert.equal(render("{{ ne 1 2 }} {{ eq true true }}"), "true true");
    assert.equal(
      render("{{ eq .missing nil }} {{ eq .missing .a }}", { a: "" }),
      "true false",
    );
  });

  await t.step("counts UTF-8 bytes and map entries with len", () => {
    assert.equal(
      render(`{{ len "héllo" }} {{ len "🎉" }} {{ len . }}`, { a: "", b: "" }),
      "6 4 2",
    );
    assert.equal(render("{{ eq (len .a) 1 }}", { a: "x" }), "true");
  });

  await t.step("negates with not", () => {
    assert.equal(
      render(`{{ not "" }} {{ not .a }} {{ not 0 }}`, { a: "x" }),
      "true false true",
    );
  });
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

Deno.test("parseTemplate() reports syntax errors at their line and column", async (t) => {
  await t.step("an unknown function", () => {
    assertTemplateError(
      () => parseTemplate("Hello\n  {{ upper .name }}"),
      2,
      6,
      'function "upper" not defined',
    );
  });

  await t.step("an unclosed action, at its {{", () => {
    assertTemplateError(
      () => parseTemplate("line one\nline {{ .name"),
      2,
      6,
      "unclosed action",
    );
  });

  await t.step("an unclosed comment, at its {{", () => {
    assertTemplateError(
      () => parseTemplate("a\n\n  {{/* never closed"),
      3,
      3,
      "unclosed comment",
    );
  });

  await t.step("a comment followed by more than the closing delimiter", () => {
    assertTemplateError(
      () => parseTemplate("{{/* c */ x }}"),
      1,
      10,
      "comment ends before closing delimiter",
    );
  });

  await t.step("a stray {{ end }} or {{ else }}", () => {
    assertTemplateError(
      () => parseTemplate("ok\n{{ end }}"),
      2,
      1,
      "unexpected {{end}}",
    );
    assertTemplateError(
      () => parseTemplate("x {{ else }}"),
      1,
      3,
      "unexpected {{else}}",
    );
  });

  await t.step("a missing {{ end }}, at the opening action", () => {
    assertTemplateError(
      () => parseTemplate("a\n  {{ range . }}\n  x"),
      2,
      3,
      "unexpected EOF: {{range}} has no matching {{end}}",
    );
    assertTemplateError(
      () => parseTemplate("{{ if .a }}A\n{{ else if .b }}B"),
      1,
      1,
      "unexpected EOF: {{if}} has no matching {{end}}",
    );
  });

  await t.step("a second {{ else }}", () => {
    assertTemplateError(
      () => parseTemplate("{{ with .a }}{{ else }}{{ else }}{{ end }}"),
      1,
      24,
      "expected end; found {{else}}",
    );
  });

  await t.step("bad string literals", () => {
    assertTemplateError(
      () => parseTemplate(`x\n{{ index . "\\q" }}`),
      2,
      12,
      String.raw`invalid syntax in string literal "\q"`,
    );
    assertTemplateError(
      () => parseTemplate(`{{ "\\'" }}`),
      1,
      4,
      String.raw`invalid syntax in string literal "\'"`,
    );
    assertTemplateError(
      () => parseTemplate(`{{ "abc }}`),
      1,
      4,
      "unterminated quoted string",
    );
    assertTemplateError(
      () => parseTemplate("{{ `abc }}"),
      1,
      4,
      "unterminated raw quoted string",
    );
  });

  await t.step("unexpected tokens", () => {
    assertTemplateError(
      () => parseTemplate("{{ .a = }}"),
      1,
      7,
      'unexpected "=" in operand',
    );
    assertTemplateError(
      () => parseTemplate(`{{ .a | "lit" }}`),
      1,
      9,
      "non executable command in pipeline stage 2",
    );
    assertTemplateError(
      () => parseTemplate("{{ if }}{{ end }}"),
      1,
      1,
      "missing value for if",
    );
    assertTemplateError(
      () => parseTemplate("a{{ }}"),
      1,
      2,
      "missing value for command",
    );
    assertTemplateError(
      () => parseTemplate("{{ if .a }}{{ else with .b }}{{ end }}"),
      1,
      20,
      "unexpected <with> in input",
    );
    assertTemplateError(
      () => parseTemplate("{{ end .x }}"),
      1,
      8,
      'unexpected ".x" in end',
    );
  });

  await t.step("bad characters", () => {
    assertTemplateError(
      () => parseTemplate("{{ .x-y }}"),
      1,
      6,
      "bad character U+002D '-'",
    );
    assertTemplateError(
      () => parseTemplate("{{ .x • }}"),
      1,
      7,
      "unrecognized character in action: U+2022 '•'",
    );
    assertTemplateError(
      () => parseTemplate("{{ \u00a0 }}"),
      1,
      4,
      "unrecognized character in action: U+00A0",
    );
  });

  await t.step("unbalanced parentheses", () => {
    assertTemplateError(
      () => parseTemplate("{{ (.x }}"),
      1,
      4,
      "unclosed left paren",
    );
    assertTemplateError(
      () => parseTemplate("{{ .x) }}"),
      1,
      6,
      "unexpected right paren",
    );
  });

  await t.step("an undefined variable", () => {
    assertTemplateError(
      () => parseTemplate("{{ range . }}{{ $k }}{{ end }}"),
      1,
      17,
      'undefined variable "$k"',
    );
  });

  await t.step("break and continue outside range", () => {
    assertTemplateError(
      () => parseTemplate("{{ break }}"),
      1,
      1,
      "{{break}} outside {{range}}",
    );
    assertTemplateError(
      () => parseTemplate("{{ range . }}{{ else }}{{ continue }}{{ end }}"),
      1,
      24,
      "{{continue}} outside {{range}}",
    );
  });

  await t.step("bad numbers", () => {
    assertTemplateError(
      () => parseTemplate("{{ 3x }}"),
      1,
      4,
      'bad number syntax: "3x"',
    );
  });
});

Deno.test("parseTemplate() counts columns in UTF-16 code units", () => {
  assertTemplateError(
    () => parseTemplate("é🎉 {{ nope }}"),
    1,
    8,
    'function "nope" not defined',
  );
  assertTemplateError(
    () => parseTemplate("a\r\n{{ nope }}"),
    2,
    4,
    'function "nope" not defined',
  );
});

Deno.test("parseTemplate() rejects a string literal that is not valid UTF-8", () => {
  // Go would make a string that is not valid UTF-8.
  assertTemplateError(
    () => parseTemplate(`{{ "\\xff" }}`),
    1,
    4,
    String.raw`invalid syntax in string literal "\xff"`,
  );
});

Deno.test("executeTemplate() reports execution errors at the failing part of the action", async (t) => {
  await t.step("a field of a string", () => {
    assertTemplateError(
      () => render("{{ with .a }}\n  {{ .b }}\n{{ end }}", { a: "1" }),
      2,
      6,
      "can't evaluate field b in type string",
    );
  });

  await t.step("ranging over a string", () => {
    assertTemplateError(
      () => render("{{ range .a }}{{ end }}", { a: "1" }),
      1,
      10,
      "range can't iterate over 1",
    );
    assertTemplateError(
      () => render("{{ range .missing }}{{ end }}", {}, "zero"),
      1,
      10,
      "range can't iterate over ",
    );
  });

  await t.step("two range variables over an integer", () => {
    assertTemplateError(
      () => render("{{ range $i, $j := 3 }}{{ end }}"),
      1,
      20,
      "can't use 3 to iterate over more than one variable",
    );
  });

  await t.step("arguments to something that is not a function", () => {
    assertTemplateError(
      () => render("{{ .a .b }}", { a: "1" }),
      1,
      4,
      "a is not a method but has arguments",
    );
    assertTemplateError(
      () => render(`{{ "x" .a }}`),
      1,
      4,
      `can't give argument to non-function "x"`,
    );
    assertTemplateError(
      () => render(`{{ .a | $ }}`, { a: "" }),
      1,
      9,
      "can't give argument to non-function $",
    );
    assertTemplateError(
      () => render("{{ nil }}"),
      1,
      4,
      "nil is not a command",
    );
  });

  await t.step("stops without partial output", () => {
    assert.throws(
      () => render("before {{ .missing }} after", {}, "error"),
      TemplateError,
    );
  });
});

Deno.test("executeTemplate() reports wrong function arguments like Go", async (t) => {
  const data = { a: "1", b: "2" };

  await t.step("the wrong number of arguments", () => {
    assertTemplateError(
      () => render("{{ not }}", data),
      1,
      4,
      "wrong number of args for not: want 1 got 0",
    );
    assertTemplateError(
      () => render("{{ eq }}", data),
      1,
      4,
      "wrong number of args for eq: want at least 1 got 0",
    );
    assertTemplateError(
      () => render("{{ ne .a }}", data),
      1,
      4,
      "wrong number of args for ne: want 2 got 1",
    );
    assertTemplateError(
      () => render("{{ .a | eq }}", data),
      1,
      9,
      "error calling eq: missing argument for comparison",
    );
  });

  await t.step("values of the wrong type", () => {
    assertTemplateError(
      () => render("{{ eq .a true }}", data),
      1,
      4,
      "error calling eq: incompatible types for comparison",
    );
    assertTemplateError(
      () => render("{{ eq . . }}", data),
      1,
      4,
      "error calling eq: non-comparable type map[a:1 b:2]: map[string]string",
    );
    assertTemplateError(
      () => render("{{ len true }}"),
      1,
      4,
      "error calling len: len of type bool",
    );
    assertTemplateError(
      () => render("{{ len .missing }}"),
      1,
      4,
      "error calling len: reflect: call of reflect.Value.Type on zero Value",
    );
  });

  await t.step("a json argument that is not a string", () => {
    assertTemplateError(
      () => render("{{ json . }}", data),
      1,
      9,
      "wrong type for value; expected string; got map[string]string",
    );
    assertTemplateError(
      () => render("{{ json true }}"),
      1,
      9,
      "expected string; found true",
    );
    assertTemplateError(
      () => render("{{ json nil }}"),
      1,
      9,
      "cannot assign nil to string",
    );
    assertTemplateError(
      () => render("{{ .missing | json }}"),
      1,
      15,
      "invalid value; expected string",
    );
  });

  await t.step("bad index arguments", () => {
    assertTemplateError(
      () => render(`{{ index .a "x" }}`, data),
      1,
      4,
      "error calling index: cannot index slice/array with type string",
    );
    assertTemplateError(
      () => render("{{ index .a 5 }}", data),
      1,
      4,
      "error calling index: index out of range: 5",
    );
    assertTemplateError(
      () => render("{{ index .a 1 }}", data),
      1,
      4,
      "error calling index: reflect: string index out of range",
    );
    assertTemplateError(
      () => render("{{ index true 0 }}"),
      1,
      4,
      "error calling index: can't index item of type bool",
    );
    assertTemplateError(
      () => render("{{ index . 1 }}"),
      1,
      4,
      "error calling index: value has type int; should be string",
    );
    assertTemplateError(
      () => render("{{ index nil }}"),
      1,
      4,
      "error calling index: index of untyped nil",
    );
  });
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
  assert.equal(render(parens(400)), "1");
  assertTemplateError(
    () => parseTemplate(parens(401)),
    1,
    404,
    "max expression depth exceeded",
  );
});
