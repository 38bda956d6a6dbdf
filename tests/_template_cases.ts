/**
 * The template cases shared by tests/template_test.ts and the Go
 * differential test: one line per case, as Go's text/template exec_test.go.
 * A case that fails gives "line:col: message" as its output.
 *
 * @module
 */
import type { MissingKeyMode } from "../src/template.ts";

export type Data = Readonly<Record<string, string>>;

/** name, input, output (or "line:col: error"), data, ok, missingKey mode. */
export type Case = readonly [
  name: string,
  input: string,
  output: string,
  data: Data,
  ok: boolean,
  mode?: MissingKeyMode,
];

const E: Data = {};
const A: Data = { a: "1", b: "two words", 名前: "Gopher", _x9: "u" };
const AB: Data = { a: "1", b: "2" };
const X: Data = { x: "X" };
const R: Data = { a: "1", b: "x y", c: "" };
const F: Data = { a: "1", b: "2", c: "3", d: "4", e: "5" };
const HTML: Data = {
  markup: `<a href="x" title='y'>Tom & Jerry</a>\0`,
  plain: "plain ünïcödé 🎉 text",
};
const Q: Data = { v: `<"a b">` };
const IDX: Data = {
  "key with spaces": "spaces",
  'quote"d': "quoted",
  "back\\slash": "backslash",
  "tab\there": "tab",
  "été": "unicode",
  "🎉": "emoji",
  "A": "octal",
};
const S: Data = { s: "héllo", n: "42" };
const SYN: Data = {
  secret: "s3cret",
  x: "{{ .secret }}",
  y: "{{/* */}}{{- end }}",
};
const v = (value: string): Data => ({ v: value });
const ESCAPED_MARKUP =
  "&lt;a href=&#34;x&#34; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;\uFFFD";
const IF_CHAIN =
  "{{ if .a }}A{{ else if .b }}B{{ else if not .c }}not C{{ else }}else{{ end }}";
const ENV =
  `{{ if eq .env "prod" }}P{{ else if ne .env "dev" }}O{{ else }}D{{ end }}`;
const WITH_CHAIN =
  "{{ with .a }}A{{ . }}{{ else with .b }}B{{ . }}{{ else }}none{{ end }}";
const BREAK =
  `{{ range $k, $v := . }}{{ if eq $k "b" }}{{ continue }}{{ end }}{{ if eq $k "d" }}{{ break }}{{ end }}{{ $k }}{{ end }}`;
const DEAR = "Dear {{ .name }},\n  your code is {{ .code }}.";

// deno-fmt-ignore
export const CASES: readonly Case[] = [
  // Text and fields.
  ["empty", "", "", E, true],
  ["plain text", "plain text\nwith } and }} and { alone", "plain text\nwith } and }} and { alone", E, true],
  ["unicode text", "ünïcödé 🎉 \u2028", "ünïcödé 🎉 \u2028", E, true],
  ["field", "[{{ .a }}] [{{.b}}]", "[1] [two words]", A, true],
  ["unicode field names", "{{ .名前 }} {{ ._x9 }}", "Gopher u", A, true],
  ["dot is the map", "{{ . }}", "map[a:1 b:2]", AB, true],
  ["$ is the map", "{{ $ }}", "map[a:1 b:x y]", { a: "1", b: "x y" }, true],
  ["empty map", "{{ . }}", "map[]", E, true],
  ["$ inside range and with", "{{ range . }}{{ $.a }}{{ end }}|{{ with .b }}{{ $.a }}{{ end }}", "11|1", AB, true],
  ["newline inside action", "{{\n  .a\n}}", "1", A, true],
  // Missing keys, default mode.
  ["missing default", "[{{ .missing }}]", "[<no value>]", E, true],
  ["missing piped to html", "{{ .missing | html }}", "&lt;no value&gt;", E, true],
  ["missing html arg", "{{ html .missing }}", "&lt;no value&gt;", E, true],
  ["missing piped to js", "{{ .missing | js }}", String.raw`\u003Cno value\u003E`, E, true],
  ["missing piped to urlquery", "{{ .missing | urlquery }}", "%3Cno+value%3E", E, true],
  ["missing if", "{{ if .missing }}y{{ else }}n{{ end }}", "n", E, true],
  ["missing with", "{{ with .missing }}y{{ else }}n{{ end }}", "n", E, true],
  ["missing range", "{{ range .missing }}y{{ else }}n{{ end }}", "n", E, true],
  ["missing or", `{{ or .missing "fallback" }}`, "fallback", E, true],
  ["missing not", "{{ not .missing }}", "true", E, true],
  ["field of missing", "{{ .missing.deeper }}", "<no value>", E, true],
  // Missing keys, zero mode.
  ["missing zero", "[{{ .missing }}]", "[]", E, true, "zero"],
  ["missing zero html", "[{{ .missing | html }}]", "[]", E, true, "zero"],
  ["missing zero json", "{{ .missing | json }}", '""', E, true, "zero"],
  ["missing zero len", "{{ len .missing }}", "0", E, true, "zero"],
  ["field of zero string", "{{ .missing.deeper }}", "1:4: can't evaluate field deeper in type string", E, false, "zero"],
  // Missing keys, error mode.
  ["missing error", DEAR, `2:19: map has no entry for key "code"`, { name: "Ann" }, false, "error"],
  ["missing error arg", "{{ html .missing }}", `1:9: map has no entry for key "missing"`, E, false, "error"],
  ["present error mode", "{{ .name }}", "Ann", { name: "Ann" }, true, "error"],
  ["index default", `[{{ index . "missing" }}]`, "[]", E, true],
  ["index zero", `[{{ index . "missing" }}]`, "[]", E, true, "zero"],
  ["index error", `[{{ index . "missing" }}]`, "[]", E, true, "error"],
  ["no partial output", "before {{ .missing }} after", `1:11: map has no entry for key "missing"`, E, false, "error"],
  // html.
  ["html pipe", "{{ .markup | html }}", ESCAPED_MARKUP, HTML, true],
  ["html call", "{{ html .markup }}", ESCAPED_MARKUP, HTML, true],
  ["html plain", "{{ .plain | html }}", "plain ünïcödé 🎉 text", HTML, true],
  // js.
  ["js specials", "{{ .v | js }}", String.raw`He said \"it\'s\" \u003Cb\u003E\u0026\u003C/b\u003E a\u003Db \\ path`, v(`He said "it's" <b>&</b> a=b \\ path`), true],
  ["js controls", "{{ js .v }}", String.raw`\u0009\u000A\u000D\u0001\u001F` + "\x7f", v("\t\n\r\x01\x1f\x7f"), true],
  ["js non-ASCII", "{{ .v | js }}", "é日本🎉e\u0301" + String.raw`\u00A0\u2028\u200B\u00AD\uFEFF\u0085\u3000\uE0001`, v("é日本🎉e\u0301\u00a0\u2028\u200b\u00ad\ufeff\u0085\u3000\u{E0001}"), true],
  ["js lone surrogate", "{{ .v | js }}", "a\ud800b", v("a\ud800b"), true],
  // urlquery.
  ["urlquery safe", "{{ .v | urlquery }}", "AZaz09-_.~+x", v("AZaz09-_.~ x"), true],
  ["urlquery ASCII", "{{ .v | urlquery }}", "a%26c%3Dd%2Fe%3Ff%23g%2Bh%25i%2A%27%28%29%0A%00", v("a&c=d/e?f#g+h%i*'()\n\0"), true],
  ["urlquery UTF-8", "{{ urlquery .v }}", "%C3%A9%E2%82%AC%F0%9F%8E%89", v("é€🎉"), true],
  ["urlquery lone surrogate", "{{ .v | urlquery }}", "%EF%BF%BD", v("\ud800"), true],
  // json (an extension Go lacks).
  ["json specials", "{{ .v | json }}", String.raw`"say \"hi\"\\ \u003ctag\u003e \u0026 'done'"`, v(`say "hi"\\ <tag> & 'done'`), true],
  ["json controls", "{{ json .v }}", String.raw`"\b\f\n\r\t\u0000\u001f` + '\x7f"', v("\b\f\n\r\t\x00\x1f\x7f"), true],
  ["json line separators", "{{ .v | json }}", '"é🎉\u00a0' + String.raw`\u2028\u2029"`, v("é🎉\u00a0\u2028\u2029"), true],
  ["json plain", "{{ .v | json }}", '"abc"', v("abc"), true],
  ["json empty", "{{ .v | json }}", '""', v(""), true],
  // Pipelines.
  ["html then js", "{{ .v | html | js }}", String.raw`\u0026lt;\u0026#34;a b\u0026#34;\u0026gt;`, Q, true],
  ["json then html", "{{ .v | json | html }}", "&#34;\\u003c\\&#34;a b\\&#34;\\u003e&#34;", Q, true],
  ["html arg then urlquery", "{{ html .v | urlquery }}", "%26lt%3B%26%2334%3Ba+b%26%2334%3B%26gt%3B", Q, true],
  ["parenthesized call", "{{ js (html .v) }}", String.raw`\u0026lt;\u0026#34;a b\u0026#34;\u0026gt;`, Q, true],
  ["parenthesized field", "{{ (.v) | html }}", "&lt;&#34;a b&#34;&gt;", Q, true],
  ["literal piped", `{{ "a b" | urlquery }}`, "a+b", E, true],
  // Trim markers.
  ["trim both", "a  \n\t{{- .x -}} \r\n b", "aXb", X, true],
  ["trim left", "x \n {{- .x }} \n y", "xX \n y", X, true],
  ["trim right", "x \n {{ .x -}} \n y", "x \n Xy", X, true],
  ["no space after {{-", "a {{-3}} b", "a -3 b", E, true],
  ["trim around negative", "a {{- -3 -}} b", "a-3b", E, true],
  ["trim not non-ASCII spaces", " \u00a0{{- .x -}}\u3000 ", " \u00a0X\u3000 ", X, true],
  ["trim whole text", "{{ .x -}}\n\n{{- .x }}\n  {{- .x }}", "XXX", X, true],
  // Comments.
  ["comment", "a{{/* note */}}b", "ab", E, true],
  ["comment across lines", "a{{/* multi\nline {{ .x }} */}}b", "ab", E, true],
  ["trimmed comment", "a \n{{- /* note */ -}}\n b", "ab", E, true],
  ["comment trim left", "x \n{{- /* note */}}\n y", "x\n y", E, true],
  ["comment trim right", "x \n{{/* note */ -}}\n y", "x \ny", E, true],
  // if.
  ["if first", IF_CHAIN, "A", { a: "x", b: "y" }, true],
  ["else if", IF_CHAIN, "B", { a: "", b: "y" }, true],
  ["else if not", IF_CHAIN, "not C", E, true],
  ["else", IF_CHAIN, "else", { c: "z" }, true],
  ["if string 0", "{{ if .v }}T{{ else }}F{{ end }}", "T", v("0"), true],
  ["if string false", "{{ if .v }}T{{ else }}F{{ end }}", "T", v("false"), true],
  ["if string space", "{{ if .v }}T{{ else }}F{{ end }}", "T", v(" "), true],
  ["if empty string", "{{ if .v }}T{{ else }}F{{ end }}", "F", v(""), true],
  ["if empty map", "{{ if . }}T{{ else }}F{{ end }}", "F", E, true],
  ["if map", "{{ if . }}T{{ else }}F{{ end }}", "T", { k: "" }, true],
  ["if eq", ENV, "P", { env: "prod" }, true],
  ["else if ne", ENV, "O", { env: "test" }, true],
  ["else after eq and ne", ENV, "D", { env: "dev" }, true],
  // with.
  ["with", "{{ with .a }}[{{ . }}]{{ else }}none{{ end }}|{{ .b }}", "[1]|2", AB, true],
  ["with empty", "{{ with .a }}[{{ . }}]{{ else }}none{{ end }}", "none", { a: "" }, true],
  ["with missing", "{{ with .a }}[{{ . }}]{{ else }}none{{ end }}", "none", E, true],
  ["with chain first", WITH_CHAIN, "A1", AB, true],
  ["else with", WITH_CHAIN, "B2", { b: "2" }, true],
  ["else with else", WITH_CHAIN, "none", E, true],
  ["with declaration", "{{ with $x := .a }}{{ $x }}{{ . }}{{ end }}", "11", A, true],
  // range.
  ["range key value", "{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}", "a=1;b=x y;c=;", R, true],
  ["range value", "{{ range $v := . }}<{{ $v }}>{{ end }}", "<1><x y><>", R, true],
  ["range dot", "{{ range . }}<{{ . }}>{{ end }}", "<1><x y><>", R, true],
  ["range variables end", "{{ range $k, $v := . }}{{ end }}\n{{ $k }}", `2:4: undefined variable "$k"`, R, false],
  ["range int", "{{ range $i := 3 }}{{ $i }}{{ end }}", "012", E, true],
  ["range len", "{{ range len .v }}{{ . }}{{ end }}", "01", v("ab"), true],
  ["range else", "{{ range . }}x{{ else }}empty{{ end }}", "empty", E, true],
  ["range no else", "{{ range . }}x{{ else }}empty{{ end }}", "x", { k: "" }, true],
  ["range zero", "{{ range $i := 0 }}x{{ else }}zero{{ end }}", "zero", E, true],
  ["break continue", BREAK, "ac", F, true],
  ["break in with", "{{ range . }}{{ with . }}{{ break }}{{ end }}x{{ end }}.", ".", F, true],
  // index.
  ["index spaces", `{{ index . "key with spaces" }}`, "spaces", IDX, true],
  ["index quote", `{{ index . "quote\\"d" }}`, "quoted", IDX, true],
  ["index backslash", `{{ index . "back\\\\slash" }}`, "backslash", IDX, true],
  ["index tab", `{{ index . "tab\\there" }}`, "tab", IDX, true],
  ["index \\u and \\x", `{{ index . "\\u00e9t\\xc3\\xa9" }}`, "unicode", IDX, true],
  ["index \\U", `{{ index . "\\U0001F389" }}`, "emoji", IDX, true],
  ["index octal", `{{ index . "\\101" }}`, "octal", IDX, true],
  ["index raw", "{{ index . `back\\slash` }}", "backslash", IDX, true],
  ["index raw quote", '{{ index . `quote"d` }}', "quoted", IDX, true],
  ["index raw CR dropped", "{{ index . `key with\r spaces` }}", "spaces", IDX, true],
  ["index piped key", `{{ "key with spaces" | index . | html }}`, "spaces", IDX, true],
  ["index missing", `[{{ index . "nope" }}]`, "[]", IDX, true],
  ["index string bytes", "{{ index .v 1 }} {{ index .v 2 }}", "98 195", v("abé"), true],
  // Values holding template syntax.
  ["syntax in value", "{{ .x }}", "{{ .secret }}", SYN, true],
  ["syntax in value html", "{{ .x | html }}", "{{ .secret }}", SYN, true],
  ["syntax in range", "{{ range . }}{{ . }};{{ end }}", "s3cret;{{ .secret }};{{/* */}}{{- end }};", SYN, true],
  ["Object.prototype names", '{{ .toString }}|{{ .constructor }}|{{ .__proto__ }}|{{ index . "valueOf" }}', "<no value>|<no value>|<no value>|", E, true],
  ["prototype names as keys", `{{ .__proto__ }} {{ .constructor }} {{ index . "hasOwnProperty" }}`, "proto ctor own", { ["__proto__"]: "proto", constructor: "ctor", hasOwnProperty: "own" }, true],
  ["__proto__ error", "{{ .__proto__ }}", `1:4: map has no entry for key "__proto__"`, E, false, "error"],
  // Variables.
  ["declare", "{{ $x := .a }}[{{ $x }}]", "[1]", A, true],
  ["assign outer", `{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}`, "b", E, true],
  ["assign in range", `{{ $last := "" }}{{ range . }}{{ $last = . }}{{ end }}{{ $last }}`, "2", AB, true],
  ["declaration scope", "{{ if true }}{{ $y := 1 }}{{ end }}\n{{ $y }}", `2:4: undefined variable "$y"`, E, false],
  ["variable fields", "{{ $m := . }}{{ $m.a }}{{ $.a }}", "11", A, true],
  // Literals and basic functions.
  ["string literals", `{{ "a\\tb" }}|{{ \`raw\\n\` }}`, "a\tb|raw\\n", E, true],
  ["int literals", "{{ 42 }} {{ -7 }} {{ +5 }} {{ -0 }}", "42 -7 5 0", E, true],
  ["bool literals", "{{ true }} {{ false }}", "true false", E, true],
  ["and false", `[{{ and "a" "" "b" }}]`, "[]", E, true],
  ["and last", `{{ and "a" "b" }}`, "b", E, true],
  ["or first", `{{ or "" "b" "c" }}`, "b", E, true],
  ["or none", `[{{ or "" "" }}]`, "[]", E, true],
  ["or piped", `{{ .a | or "" }}`, "piped", { a: "piped" }, true],
  ["or default", `{{ or .port "8080" }}`, "8080", E, true],
  ["or short-circuits", `{{ or "x" .missing }}`, "x", E, true, "error"],
  ["and short-circuits", `[{{ and "" .missing }}]`, "[]", E, true, "error"],
  ["eq any", `{{ eq .a "x" "1" }} {{ eq .a "x" }}`, "true false", A, true],
  ["ne and eq bool", "{{ ne 1 2 }} {{ eq true true }}", "true true", E, true],
  ["eq nil", "{{ eq .missing nil }} {{ eq .missing .a }}", "true false", { a: "" }, true],
  ["len bytes and map", `{{ len "héllo" }} {{ len "🎉" }} {{ len . }}`, "6 4 2", { a: "", b: "" }, true],
  ["len compared", "{{ eq (len .a) 1 }}", "true", { a: "x" }, true],
  ["not", `{{ not "" }} {{ not .a }} {{ not 0 }}`, "true false true", { a: "x" }, true],
  // Syntax errors.
  ["unknown function", "Hello\n  {{ upper .name }}", `2:6: function "upper" not defined`, E, false],
  ["unclosed action", "line one\nline {{ .name", "2:6: unclosed action", E, false],
  ["unclosed comment", "a\n\n  {{/* never closed", "3:3: unclosed comment", E, false],
  ["comment then more", "{{/* c */ x }}", "1:10: comment ends before closing delimiter", E, false],
  ["stray end", "ok\n{{ end }}", "2:1: unexpected {{end}}", E, false],
  ["stray else", "x {{ else }}", "1:3: unexpected {{else}}", E, false],
  ["missing end", "a\n  {{ range . }}\n  x", "2:3: unexpected EOF: {{range}} has no matching {{end}}", E, false],
  ["missing end of else if", "{{ if .a }}A\n{{ else if .b }}B", "1:1: unexpected EOF: {{if}} has no matching {{end}}", E, false],
  ["second else", "{{ with .a }}{{ else }}{{ else }}{{ end }}", "1:24: expected end; found {{else}}", E, false],
  ["bad escape", `x\n{{ index . "\\q" }}`, String.raw`2:12: invalid syntax in string literal "\q"`, E, false],
  ["quote escape in string", `{{ "\\'" }}`, String.raw`1:4: invalid syntax in string literal "\'"`, E, false],
  ["unterminated string", `{{ "abc }}`, "1:4: unterminated quoted string", E, false],
  ["unterminated raw string", "{{ `abc }}", "1:4: unterminated raw quoted string", E, false],
  ["assign in operand", "{{ .a = }}", `1:7: unexpected "=" in operand`, E, false],
  ["literal stage", `{{ .a | "lit" }}`, "1:9: non executable command in pipeline stage 2", E, false],
  ["empty if", "{{ if }}{{ end }}", "1:1: missing value for if", E, false],
  ["empty action", "a{{ }}", "1:2: missing value for command", E, false],
  ["else with after if", "{{ if .a }}{{ else with .b }}{{ end }}", "1:20: unexpected <with> in input", E, false],
  ["end with operand", "{{ end .x }}", `1:8: unexpected ".x" in end`, E, false],
  ["bad character", "{{ .x-y }}", "1:6: bad character U+002D '-'", E, false],
  ["unrecognized character", "{{ .x • }}", "1:7: unrecognized character in action: U+2022 '•'", E, false],
  ["unprintable character", "{{ \u00a0 }}", "1:4: unrecognized character in action: U+00A0", E, false],
  ["unclosed paren", "{{ (.x }}", "1:4: unclosed left paren", E, false],
  ["unexpected paren", "{{ .x) }}", "1:6: unexpected right paren", E, false],
  ["undefined variable", "{{ range . }}{{ $k }}{{ end }}", `1:17: undefined variable "$k"`, E, false],
  ["break outside range", "{{ break }}", "1:1: {{break}} outside {{range}}", E, false],
  ["continue in range else", "{{ range . }}{{ else }}{{ continue }}{{ end }}", "1:24: {{continue}} outside {{range}}", E, false],
  ["bad number", "{{ 3x }}", `1:4: bad number syntax: "3x"`, E, false],
  ["columns in UTF-16", "é🎉 {{ nope }}", `1:8: function "nope" not defined`, E, false],
  ["CRLF lines", "a\r\n{{ nope }}", `2:4: function "nope" not defined`, E, false],
  ["invalid UTF-8 literal", `{{ "\\xff" }}`, String.raw`1:4: invalid syntax in string literal "\xff"`, E, false],
  // Execution errors.
  ["field of string", "{{ with .a }}\n  {{ .b }}\n{{ end }}", "2:6: can't evaluate field b in type string", { a: "1" }, false],
  ["range over string", "{{ range .a }}{{ end }}", "1:10: range can't iterate over 1", { a: "1" }, false],
  ["range over zero string", "{{ range .missing }}{{ end }}", "1:10: range can't iterate over ", E, false, "zero"],
  ["two variables over int", "{{ range $i, $j := 3 }}{{ end }}", "1:20: can't use 3 to iterate over more than one variable", E, false],
  ["field with arguments", "{{ .a .b }}", "1:4: a is not a method but has arguments", { a: "1" }, false],
  ["literal with arguments", `{{ "x" .a }}`, `1:4: can't give argument to non-function "x"`, E, false],
  ["variable with arguments", "{{ .a | $ }}", "1:9: can't give argument to non-function $", { a: "" }, false],
  ["nil command", "{{ nil }}", "1:4: nil is not a command", E, false],
  ["not arity", "{{ not }}", "1:4: wrong number of args for not: want 1 got 0", AB, false],
  ["eq arity", "{{ eq }}", "1:4: wrong number of args for eq: want at least 1 got 0", AB, false],
  ["ne arity", "{{ ne .a }}", "1:4: wrong number of args for ne: want 2 got 1", AB, false],
  ["eq one piped", "{{ .a | eq }}", "1:9: error calling eq: missing argument for comparison", AB, false],
  ["eq incompatible", "{{ eq .a true }}", "1:4: error calling eq: incompatible types for comparison", AB, false],
  ["eq maps", "{{ eq . . }}", "1:4: error calling eq: non-comparable type map[a:1 b:2]: map[string]string", AB, false],
  ["len bool", "{{ len true }}", "1:4: error calling len: len of type bool", E, false],
  ["len missing", "{{ len .missing }}", "1:4: error calling len: reflect: call of reflect.Value.Type on zero Value", E, false],
  ["json map", "{{ json . }}", "1:9: wrong type for value; expected string; got map[string]string", AB, false],
  ["json bool", "{{ json true }}", "1:9: expected string; found true", E, false],
  ["json nil", "{{ json nil }}", "1:9: cannot assign nil to string", E, false],
  ["json missing", "{{ .missing | json }}", "1:15: invalid value; expected string", E, false],
  ["index string by string", `{{ index .a "x" }}`, "1:4: error calling index: cannot index slice/array with type string", AB, false],
  ["index out of range", "{{ index .a 5 }}", "1:4: error calling index: index out of range: 5", AB, false],
  ["index at length", "{{ index .a 1 }}", "1:4: error calling index: reflect: string index out of range", AB, false],
  ["index bool", "{{ index true 0 }}", "1:4: error calling index: can't index item of type bool", E, false],
  ["index map by int", "{{ index . 1 }}", "1:4: error calling index: value has type int; should be string", E, false],
  ["index nil", "{{ index nil }}", "1:4: error calling index: index of untyped nil", E, false],
  // The rest of the language, each output checked against Go 1.19.
  ["print", "{{ print \"a\" 1 2 \"b\" true }}", "a1 2btrue", E, true],
  ["print nothing", "[{{ print }}]", "[]", E, true],
  ["print missing", "{{ print .missing }}", "<nil>", E, true],
  ["print map", "{{ print . }}", "map[a:1 b:2]", AB, true],
  ["println", "{{ println \"a\" 1 }}", "a 1\n", E, true],
  ["printf verbs", "{{ printf \"%d|%5d|%-5d|%05d|%x|%X|%o|%b|%c|%q|%U\" 42 42 42 42 255 255 8 5 65 65 65 }}", "42|   42|42   |00042|ff|FF|10|101|A|'A'|U+0041", E, true],
  ["printf strings", "{{ printf \"%s|%q|%x|%10s|%-10s|%.2s|%v\" .s .s .s .s .s .s .s }}", "héllo|\"héllo\"|68c3a96c6c6f|     héllo|héllo     |hé|héllo", S, true],
  ["printf floats", "{{ printf \"%f|%.2f|%e|%g|%G|%8.3f|%v\" 3.14159 3.14159 1234.5678 0.000012 1e21 2.5 1.5 }}", "3.141590|3.14|1.234568e+03|1.2e-05|1E+21|   2.500|1.5", E, true],
  ["printf bool and nil", "{{ printf \"%t|%v|%s\" true nil .missing }}", "true|<nil>|%!s(<nil>)", E, true],
  ["printf wrong verb", "{{ printf \"%d\" \"x\" }}", "%!d(string=x)", E, true],
  ["printf missing arg", "{{ printf \"%s %s\" \"a\" }}", "a %!s(MISSING)", E, true],
  ["printf extra arg", "{{ printf \"%s\" \"a\" \"b\" }}", "a%!(EXTRA string=b)", E, true],
  ["printf map", "{{ printf \"%v|%d\" . . }}", "map[a:1 b:2]|map[%!d(string=a):%!d(string=1) %!d(string=b):%!d(string=2)]", AB, true],
  ["printf piped", "{{ .a | printf \"<%s>\" }}", "<1>", AB, true],
  ["printf format piped", "{{ \"%s!\" | printf }}", "%!s(MISSING)!", E, true],
  ["printf no format", "{{ printf }}", "1:4: wrong number of args for printf: want at least 1 got 0", E, false],
  ["printf int format", "{{ printf 1 }}", "1:11: expected string; found 1", E, false],
  ["printf type", "{{ printf \"%T %T %T %T %T\" 1 1.5 \"s\" true . }}", "int float64 string bool map[string]string", AB, true],
  ["printf index byte", "{{ printf \"%v %T %c\" (index .s 0) (index .s 0) (index .s 0) }}", "104 uint8 h", S, true],
  ["define and template", "{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" .a }}{{ template \"t\" \"x\" }}", "[1][x]", AB, true],
  ["template without data", "{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" }}", "[<no value>]", E, true],
  ["template variables do not cross", "{{ define \"t\" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ template \"t\" \"in\" }}", "in", E, true],
  ["template undefined", "{{ template \"nope\" }}", "1:4: template \"nope\" not defined", E, false],
  ["block default", "{{ block \"b\" . }}[{{ .a }}]{{ end }}", "[1]", AB, true],
  ["block overridden", "{{ define \"b\" }}override{{ end }}{{ block \"b\" . }}default{{ end }}", "1:58: template: multiple definition of template \"b\"", AB, false],
  ["define twice", "{{ define \"t\" }}1{{ end }}{{ define \"t\" }}2{{ end }}", "1:44: template: multiple definition of template \"t\"", E, false],
  ["define empty then full", "{{ define \"t\" }} {{ end }}{{ define \"t\" }}2{{ end }}{{ template \"t\" }}", "2", E, true],
  ["define the root", "{{ define \"render\" }}root{{ end }}", "root", E, true],
  ["define the root and text", "{{ define \"render\" }}root{{ end }}text", "1:1: template: multiple definition of template \"render\"", E, false],
  ["define inside if", "{{ if true }}{{ define \"t\" }}{{ end }}{{ end }}", "1:17: unexpected <define> in command", E, false],
  ["template recursion", "{{ define \"r\" }}{{ if . }}{{ len . }}{{ template \"r\" (slice . 1) }}{{ end }}{{ end }}{{ template \"r\" \"abc\" }}", "321", E, true],
  ["break in define", "{{ range . }}{{ define \"t\" }}{{ break }}{{ end }}{{ end }}", "1:17: unexpected <define> in command", AB, false],
  ["lt ints", "{{ lt 1 2 }} {{ lt 2 1 }} {{ le 2 2 }} {{ gt 3 2 }} {{ ge 2 3 }}", "true false true true false", E, true],
  ["lt strings", "{{ lt \"a\" \"b\" }} {{ lt .a .b }} {{ gt \"é\" \"z\" }} {{ lt \"🎉\" \"￿\" }}", "true true true false", AB, true],
  ["lt floats", "{{ lt 1.5 2.5 }} {{ ge 2.5 2.5 }}", "true true", E, true],
  ["lt int and float", "{{ lt 1 2.5 }}", "1:4: error calling lt: incompatible types for comparison", E, false],
  ["lt bools", "{{ lt true false }}", "1:4: error calling lt: invalid type for comparison", E, false],
  ["lt missing", "{{ lt .missing 1 }}", "1:4: error calling lt: invalid type for comparison", E, false],
  ["lt len", "{{ lt (len .s) 10 }} {{ gt (index .s 1) 100 }}", "true true", S, true],
  ["eq float int", "{{ eq 1.0 1 }}", "1:4: error calling eq: incompatible types for comparison", E, false],
  ["eq complex", "{{ eq 1i 1i }}", "true", E, true],
  ["numbers", "{{ 1.5 }} {{ 1e3 }} {{ 1E-3 }} {{ .5 }} {{ 1. }} {{ 0x1F }} {{ 0X1f }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }} {{ 0x_1F }}", "1.5 1000 0.001 0.5 1 31 31 15 15 5 1000 31", E, true],
  ["float formatting", "{{ 1e21 }} {{ 1e20 }} {{ 100000.0 }} {{ 1000000.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 3.0 }}", "1e+21 1e+20 100000 1e+06 0.0001 1e-05 -0 3", E, true],
  ["hex floats", "{{ 0x1p-2 }} {{ 0x1.8p1 }} {{ -0x1E }}", "0.25 3 -30", E, true],
  ["char constants", "{{ 'a' }} {{ '\\n' }} {{ '\\x41' }} {{ '\\u00e9' }} {{ 'é' }} {{ '\\'' }}", "97 10 65 233 233 39", E, true],
  ["bad char constants", "{{ 'ab' }}", "1:4: malformed character constant: 'ab'", E, false],
  ["empty char constant", "{{ '' }}", "1:4: malformed character constant: ''", E, false],
  ["imaginary", "{{ 2i }} {{ 1+2i }} {{ 1.5-0.5i }} {{ 0i }}", "(0+2i) (1+2i) (1.5-0.5i) (0+0i)", E, true],
  ["large ints", "{{ 9223372036854775807 }} {{ -9223372036854775808 }} {{ 9007199254740993 }}", "9223372036854775807 -9223372036854775808 9007199254740993", E, true],
  ["int overflow", "{{ 9223372036854775808 }}", "1:4: 9223372036854775808 overflows int", E, false],
  ["uint64 overflows int", "{{ 18446744073709551615 }}", "1:4: 18446744073709551615 overflows int", E, false],
  ["integer overflow", "{{ 99999999999999999999 }}", "1:4: integer overflow: \"99999999999999999999\"", E, false],
  ["octal 08", "{{ 08 }}", "1:4: integer overflow: \"08\"", E, false],
  ["bad underscore", "{{ 1__0 }}", "1:4: illegal number syntax: \"1__0\"", E, false],
  ["float too large", "{{ 1e400 }}", "1:4: illegal number syntax: \"1e400\"", E, false],
  ["slice", "{{ slice .s 1 }}|{{ slice .s 0 1 }}|{{ slice .s }}|{{ slice .s 3 6 }}", "éllo|h|héllo|llo", S, true],
  ["slice errors", "{{ slice .s 2 1 }}", "1:4: error calling slice: invalid slice index: 2 > 1", S, false],
  ["slice 3 indexes", "{{ slice .s 1 2 3 }}", "1:4: error calling slice: cannot 3-index slice a string", S, false],
  ["slice out of range", "{{ slice .s 1 99 }}", "1:4: error calling slice: index out of range: 99", S, false],
  ["slice map", "{{ slice . 1 }}", "1:4: error calling slice: can't slice item of type map[string]string", S, false],
  ["slice nil", "{{ slice nil }}", "1:4: error calling slice: slice of untyped nil", E, false],
  ["html variadic", "{{ html .a .b }}|{{ html }}|{{ .a | html .b }}|{{ html 1 2 \"<\" }}", "12||21|1 2&lt;", AB, true],
  ["js variadic", "{{ js \"<\" 1 }}|{{ js }}|{{ js nil }}", "\\u003C1||\\u003Cno value\\u003E", E, true],
  ["urlquery variadic", "{{ urlquery \"a b\" \"&\" }}|{{ urlquery }}", "a+b%26|", E, true],
  ["html missing mixed", "{{ html .missing 1 }}", "&lt;no value&gt;1", E, true],
  ["nested ranges", "{{ range $k, $v := . }}{{ range $ }}{{ $k }}{{ . }}{{ end }};{{ end }}", "a1a2;b1b2;", AB, true],
  ["continue skips", "{{ range . }}{{ if eq . \"1\" }}{{ continue }}{{ end }}{{ . }}{{ end }}", "2", AB, true],
  ["break stops", "{{ range . }}{{ . }}{{ break }}{{ end }}", "1", AB, true],
  ["variable in else", "{{ if $x := .missing }}{{ else }}[{{ $x }}]{{ end }}", "[<no value>]", E, true],
  ["range else variables", "{{ range $v := .missing }}{{ else }}[{{ $v }}]{{ end }}", "[<no value>]", E, true],
  ["comment only", "{{/* a */}}", "", E, true],
  ["nil in print", "{{ print nil }}", "<nil>", E, true],
  ["not of nil", "{{ not nil }}", "true", E, true],
  ["and piped", "{{ \"x\" | and 1 }}", "x", E, true],
  ["index of index", "{{ index . \"s\" 1 }}", "195", S, true],
  ["len of int", "{{ len 3 }}", "1:4: error calling len: len of type int", E, false],
  ["println of map", "{{ println . 1 }}", "map[a:1 b:2] 1\n", AB, true],
  ["parens 1000 deep", `{{ ${"(".repeat(1_000)}print 1 2${")".repeat(1_000)} }}`, "1 2", E, true],
  ["parens 1001 deep", `{{ ${"(".repeat(1_001)}1${")".repeat(1_001)} }}`, "1:1004: max expression depth exceeded", E, false],
];

/**
 * Cases that follow current Go where Debian's Go 1.19 differs: range over
 * an integer (Go 1.22) and `else with` (Go 1.23).
 */
export const NEWER_GO: ReadonlySet<string> = new Set([
  "range int",
  "range len",
  "range zero",
  "two variables over int",
  "with chain first",
  "else with",
  "else with else",
]);

/**
 * Cases Go cannot run the same way: `json` is this module's extension, and a
 * string literal that is not UTF-8 is refused here (a JavaScript string
 * cannot hold it), and nesting past the depth the JavaScript stack holds.
 */
export const NOT_GO: ReadonlySet<string> = new Set([
  "missing zero json",
  "json specials",
  "json controls",
  "json line separators",
  "json plain",
  "json empty",
  "json then html",
  "json map",
  "json bool",
  "json nil",
  "json missing",
  "invalid UTF-8 literal",
  // Go 1.19 has no limit (current Go stops at 10,000); past 1,000 this
  // engine refuses, as the JavaScript stack holds less.
  "parens 1001 deep",
]);
