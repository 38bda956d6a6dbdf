/**
 * Hostile strings (property 4): SQL, LIKE wildcards, template syntax,
 * Object.prototype member names and NUL characters are data, stored, read
 * and matched literally.
 */
import assert from "node:assert/strict";
import {
  ScopedStore,
  Store,
  type StoreEvent,
  TemplateError,
} from "@core/store";
import { rawQuery, tempDir } from "./_helpers.ts";

const SQLISH = [
  "'; DROP TABLE kv; --",
  '" OR 1=1 --',
  "') OR ('1'='1",
  "%",
  "_",
  "%%",
  "\\",
  "\\'",
  "*",
  "?",
  "?1",
  ":grp",
  "@key",
  "$value",
  "/* */",
  "NULL",
  "char(0)",
  "kv",
  "sqlite_schema",
  "x'00'",
];

Deno.test("Store treats SQL-looking strings as data: stored, read and matched literally", () => {
  using dir = tempDir();
  const path = dir.file("sql.db");
  using store = new Store(path, { purgeIntervalMs: 0 });
  const schema = () =>
    JSON.stringify(
      rawQuery(path, "SELECT type, name, sql FROM sqlite_schema ORDER BY name"),
    );
  const tables = schema();
  for (const text of SQLISH) {
    store.set(text, text, text);
    assert.equal(store.get(text, text), text);
    assert.deepEqual([...store.getAll(text)], [[text, text]]);
    assert.equal(store.exists(text, text), true);
    assert.deepEqual(store.list(text, { prefix: text }).entries, [[
      text,
      text,
    ]]);
  }
  assert.equal(schema(), tables, "the schema is untouched");
  assert.equal(store.countAll(), SQLISH.length);
  assert.deepEqual(
    store.groups(),
    [...SQLISH].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  for (const text of SQLISH) {
    // A prefix counts exactly the groups that start with it, literally.
    assert.equal(
      store.countAll(text),
      SQLISH.filter((other) => other.startsWith(text)).length,
      text,
    );
  }
  const tenant = new ScopedStore(store, "t1");
  for (const text of SQLISH) tenant.set(text, text, text);
  assert.equal(tenant.countAll(), SQLISH.length);
  assert.equal(store.countAll(), 2 * SQLISH.length);
  for (const text of SQLISH) assert.equal(store.deleteGroup(text), 1);
  assert.equal(store.countAll(), SQLISH.length);
  assert.throws(
    () => new ScopedStore(store, "t1'; DROP TABLE kv; --"),
    TypeError,
  );
});

Deno.test("Store.groups(), countAll() and list() match % and _ in a prefix only literally", () => {
  using store = new Store();
  const groups = ["a%b", "a_b", "axb", "ab", "a\\b", "a%", "a_", "a", "b%"];
  for (const g of groups) {
    store.set(g, "k", "v");
    for (const k of ["k%1", "k_1", "kx1", "k\\1", "k"]) store.set(g, k, g);
  }
  for (const prefix of ["a%", "a_", "a\\", "%", "_", "a", "ax", "b%", ""]) {
    const matching = groups.filter((g) => g.startsWith(prefix)).sort();
    assert.deepEqual(store.groups(prefix), matching, prefix);
    assert.equal(store.countAll(prefix), matching.length * 5, prefix);
  }
  for (const prefix of ["k%", "k_", "k\\", "kx", "k"]) {
    const keys = ["k%1", "k_1", "kx1", "k\\1", "k"]
      .filter((k) => k.startsWith(prefix)).sort();
    assert.deepEqual(
      store.list("a%b", { prefix }).entries.map(([k]) => k),
      keys,
      prefix,
    );
  }
});

Deno.test("Store.render() prints values and keys containing {{, never executes them", () => {
  using store = new Store();
  store.set("t", "secret", "s3cr3t");
  store.set("t", "v", "{{ .secret }}");
  store.set("t", "{{", "}}");
  store.set("{{ .secret }}", "k", '{{ template "x" }}');
  assert.equal(store.render("{{ .v }}", "t"), "{{ .secret }}");
  assert.equal(store.render("{{ .v | html }}", "t"), "{{ .secret }}");
  assert.equal(store.render('{{ index . "{{" }}', "t"), "}}");
  assert.equal(
    store.render("{{ range $k, $v := . }}[{{ $k }}={{ $v }}]{{ end }}", "t"),
    "[secret=s3cr3t][v={{ .secret }}][{{=}}]",
  );
  assert.equal(store.render("{{ .k }}", "{{ .secret }}"), '{{ template "x" }}');
  // Hostile templates are rejected with a TemplateError, never a crash.
  for (
    const template of [
      "{{",
      "{{ .a",
      "}}{{",
      '{{ template "x" }}',
      "{{ call .f }}",
      "{{ " + "(".repeat(100_000) + ".a" + ")".repeat(100_000) + " }}",
      "{{ 99999999999999999999 }}",
      "{{ .a.b.c.d }}{{ $nope }}",
      "{{ range 100000000 }}{{ end }}",
      // Each js doubles the backslashes: stopped by the budget, not OOM.
      '{{ "\\\\"' + " | js".repeat(28) + " }}",
    ]
  ) {
    assert.throws(
      () => store.render(template, "t"),
      TemplateError,
      template.slice(0, 40),
    );
  }
  // Go accepts these, and so does this engine.
  assert.equal(store.render('{{ define "x" }}{{ end }}', "t"), "");
  assert.equal(store.render('{{ printf "%s" .a }}', "t"), "%!s(<nil>)");
  assert.equal(store.render("{{ 1.5 }}", "t"), "1.5");
  assert.equal(
    store.render(
      "{{ if .a }}".repeat(50_000) + "{{ end }}".repeat(50_000),
      "t",
    ),
    "",
  );
  // A long pipeline that does not grow its value renders.
  assert.equal(
    store.render('{{ "x" ' + "| html ".repeat(10_000) + "}}", "t"),
    "x",
  );
});

const PROTO_NAMES = [
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "toString",
  "valueOf",
  "prototype",
  "__defineGetter__",
  "isPrototypeOf",
];

Deno.test("Store treats __proto__, constructor and hasOwnProperty as ordinary keys and groups", async () => {
  using store = new Store();
  const watcher = store.watch("__proto__", "constructor");
  const events: StoreEvent[] = [];
  store.onChange((event) => events.push(event));
  // Missing keys named like Object.prototype members are missing.
  assert.equal(
    store.render(
      '{{ .constructor }}|{{ .toString }}|{{ index . "__proto__" }}|{{ len . }}',
      "__proto__",
    ),
    "<no value>|<no value>||0",
  );
  assert.throws(
    () => store.render("{{ .constructor }}", "g", { missingKey: "error" }),
    TemplateError,
  );
  assert.equal(store.get("__proto__", "constructor"), undefined);
  assert.equal(store.exists("constructor", "__proto__"), false);
  assert.equal(store.count("hasOwnProperty"), 0);
  for (const group of PROTO_NAMES) {
    for (const key of PROTO_NAMES) store.set(group, key, `${group}.${key}`);
  }
  for (const group of PROTO_NAMES) {
    const all = store.getAll(group);
    assert.equal(all.size, PROTO_NAMES.length);
    for (const key of PROTO_NAMES) {
      assert.equal(store.get(group, key), `${group}.${key}`);
      assert.equal(all.get(key), `${group}.${key}`);
    }
    assert.equal(
      store.render('{{ .constructor }}|{{ index . "__proto__" }}', group),
      `${group}.constructor|${group}.__proto__`,
    );
  }
  assert.deepEqual(store.groups(), [...PROTO_NAMES].sort());
  assert.equal(events.length, PROTO_NAMES.length ** 2);
  assert.equal(Object.prototype.hasOwnProperty.call({}, "constructor"), false);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const tenant = new ScopedStore(store, "constructor", { maxKeys: 3 });
  tenant.set("__proto__", "hasOwnProperty", "1");
  tenant.set("__proto__", "__proto__", "2");
  assert.deepEqual(tenant.groups(), ["__proto__"]);
  assert.equal(tenant.countAll(), 2);
  assert.throws(() => new ScopedStore(store, "__proto__"), TypeError);
  // A quota parsed from JSON with a "__proto__" member has an own key of
  // that name, which is no quota option: refused, never read as a prototype.
  assert.throws(
    () =>
      new ScopedStore(
        store,
        "parsed",
        JSON.parse('{"__proto__": {"maxKeys": 1}}'),
      ),
    /^TypeError: Cannot create scoped store: unknown option "__proto__"$/,
  );
  store.close();
  const seen = await Array.fromAsync(watcher);
  assert.deepEqual(seen.map((e) => e.value), ["__proto__.constructor"]);
});

Deno.test("Store keeps keys and groups that differ by NUL characters distinct and whole", () => {
  using dir = tempDir();
  const path = dir.file("nul.db");
  const keys = ["", "\0", "a", "a\0", "a\0b", "a\0c", "\0\0", "b"];
  {
    using store = new Store(path);
    for (const group of ["g", "g\0", "g\0x", "\0"]) {
      for (const key of keys) store.set(group, key, `${group}|${key}`);
    }
  }
  using store = new Store(path);
  for (const group of ["g", "g\0", "g\0x", "\0"]) {
    assert.deepEqual(
      [...store.getAll(group)],
      [...keys].sort().map((k) => [k, `${group}|${k}`]),
      JSON.stringify(group),
    );
  }
  assert.deepEqual(store.groups(), ["\0", "g", "g\0", "g\0x"]);
  assert.deepEqual(store.groups("g\0"), ["g\0", "g\0x"]);
  assert.equal(store.countAll("g\0"), 2 * keys.length);
  assert.deepEqual(
    store.list("g", { prefix: "a\0" }).entries.map(([k]) => k),
    ["a\0", "a\0b", "a\0c"],
  );
  assert.equal(store.delete("g", "a\0"), true);
  assert.equal(store.get("g", "a"), "g|a");
  assert.equal(store.get("g", "a\0b"), "g|a\0b");
});

Deno.test('Store.watch() of key "" receives no delete_group events (they reach "*" watchers only)', async () => {
  using store = new Store();
  const empty = store.watch("g", "");
  const all = store.watch("g", "*");
  store.set("g", "", "v");
  store.deleteGroup("g");
  store.close();
  assert.deepEqual((await Array.fromAsync(all)).map((e) => e.type), [
    "set",
    "delete_group",
  ]);
  assert.deepEqual((await Array.fromAsync(empty)).map((e) => e.type), ["set"]);
});
