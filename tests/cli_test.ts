import assert from "node:assert/strict";
import { Store } from "@core/store";
import { main } from "@core/store/cli";
import { rawQuery, tempDir } from "./_helpers.ts";

interface Result {
  code: number;
  out: string;
  err: string;
}

function sink(): { stream: WritableStream<Uint8Array>; text(): string } {
  const decoder = new TextDecoder();
  let text = "";
  return {
    stream: new WritableStream({
      write(chunk) {
        text += decoder.decode(chunk, { stream: true });
      },
    }),
    text: () => text,
  };
}

async function cli(
  args: string[],
  options: { stdin?: string; signal?: AbortSignal } = {},
): Promise<Result> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(args, {
    stdin: new Response(options.stdin ?? "").body!,
    stdout: stdout.stream,
    stderr: stderr.stream,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return { code, out: stdout.text(), err: stderr.text() };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("cli main sets, gets and deletes values, with exit code 1 for a missing key", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  assert.deepEqual(await cli(["set", db, "config", "theme", "dark"]), {
    code: 0,
    out: "",
    err: "",
  });
  assert.deepEqual(await cli(["get", db, "config", "theme"]), {
    code: 0,
    out: "dark\n",
    err: "",
  });
  const missing = await cli(["get", db, "config", "lang"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.out, "");
  assert.match(missing.err, /no live key "lang" in group "config"/);
  assert.equal((await cli(["delete", db, "config", "theme"])).out, "1\n");
  assert.equal((await cli(["delete", db, "config", "theme"])).out, "0\n");
  await cli(["set", db, "config", "a", "1"]);
  await cli(["set", db, "config", "b", "2"]);
  assert.equal((await cli(["delete", db, "config"])).out, "2\n");
  assert.equal((await cli(["count", db])).out, "0\n");
});

Deno.test("cli main passes arguments after -- as they are, and values exactly", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  const value = "--ttl\0\uFEFF🦕\nline";
  assert.equal((await cli(["set", db, "g", "--", "--key", value])).code, 0);
  using store = new Store(db);
  assert.equal(store.get("g", "--key"), value);
  assert.equal((await cli(["get", db, "g", "--", "--key"])).out, `${value}\n`);
});

Deno.test("cli main set --ttl writes an expiry that many milliseconds ahead", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  const before = Date.now();
  assert.equal(
    (await cli(["set", db, "g", "a", "v", "--ttl", "60000"])).code,
    0,
  );
  assert.equal((await cli(["set", db, "g", "b", "v", "--ttl=1500"])).code, 0);
  const after = Date.now();
  const rows = rawQuery(
    db,
    "SELECT entry_key AS key, expires_at FROM entries ORDER BY entry_key",
  );
  const [a, b] = rows.map((row) => Number(row.expires_at));
  assert.ok(a !== undefined && a >= before + 60_000 && a <= after + 60_000);
  assert.ok(b !== undefined && b >= before + 1_500 && b <= after + 1_500);
});

Deno.test("cli main reports usage errors with exit code 2 and a usage line", async (t) => {
  using dir = tempDir();
  const db = dir.file("app.db");
  const cases: [string, string[], RegExp, RegExp][] = [
    ["no command", [], /no command given/, /usage: cli <command> <db>/],
    [
      "a name inherited by every object",
      ["constructor", db],
      /unknown command "constructor"/,
      /cli stats <db>/,
    ],
    [
      "an unknown command",
      ["frob", db],
      /unknown command "frob"/,
      /cli stats <db>/,
    ],
    [
      "missing arguments",
      ["get", db, "g"],
      /missing arguments/,
      /usage: cli get <db> <group> <key>\n/,
    ],
    [
      "too many arguments",
      ["count", db, "g", "x"],
      /too many arguments/,
      /usage: cli count <db> \[<group>\]/,
    ],
    [
      "an unknown option",
      ["list", db, "g", "--limit", "5"],
      /unknown option --limit/,
      /usage: cli list/,
    ],
    [
      "an option without its value",
      ["export", db, "--prefix"],
      /--prefix needs a value/,
      /usage: cli export/,
    ],
    [
      "a zero TTL",
      ["set", db, "g", "k", "v", "--ttl", "0"],
      /--ttl must be a positive number/,
      /usage: cli set/,
    ],
    [
      "a TTL that is not a number",
      ["set", db, "g", "k", "v", "--ttl", "soon"],
      /received "soon"/,
      /usage: cli set/,
    ],
    [
      "an in-memory database",
      ["set", ":memory:", "g", "k", "v"],
      /<db> must be a file path/,
      /usage: cli set/,
    ],
  ];
  for (const [name, args, error, usage] of cases) {
    await t.step(name, async () => {
      const result = await cli(args);
      assert.equal(result.code, 2);
      assert.equal(result.out, "");
      assert.match(result.err, error);
      assert.match(result.err, usage);
    });
  }
  assert.equal(exists(db), false);
});

Deno.test("cli main help lists every command on stdout", async () => {
  const result = await cli(["help"]);
  assert.equal(result.code, 0);
  for (
    const name of [
      "get",
      "set",
      "increment",
      "delete",
      "list",
      "groups",
      "count",
      "export",
      "import",
      "backup",
      "watch",
      "stats",
    ]
  ) {
    assert.match(result.out, new RegExp(`  cli ${name} <db>`));
  }
});

Deno.test("cli main read commands never create a missing database", async (t) => {
  using dir = tempDir();
  const db = dir.file("missing.db");
  const commands = [
    ["get", db, "g", "k"],
    ["delete", db, "g", "k"],
    ["delete", db, "g"],
    ["list", db, "g"],
    ["groups", db],
    ["count", db],
    ["export", db],
    ["backup", db, dir.file("copy.db")],
    ["watch", db],
    ["stats", db],
  ];
  for (const args of commands) {
    await t.step(
      `${args[0]} with ${args.length - 1} arguments`,
      async () => {
        const result = await cli(args, { signal: AbortSignal.abort() });
        assert.equal(result.code, 3);
        assert.match(result.err, /no database at .*missing\.db/);
        assert.deepEqual([...Deno.readDirSync(dir.path)], []);
      },
    );
  }
});

Deno.test("cli main list pages through a whole group, with a prefix", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  {
    using store = new Store(db);
    store.transaction((tx) => {
      for (let i = 0; i < 2_500; i++) {
        tx.set("big", `k${String(i).padStart(4, "0")}`, `v${i}`);
      }
      tx.set("big", "other", "x\ny");
    });
  }
  const all = await cli(["list", db, "big"]);
  const lines = all.out.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.equal(lines.length, 2_501);
  assert.deepEqual(lines[0], { key: "k0000", value: "v0" });
  assert.deepEqual(lines[2_500], { key: "other", value: "x\ny" });
  const some = await cli(["list", db, "big", "--prefix", "k249"]);
  assert.equal(some.out.trimEnd().split("\n").length, 10);
  assert.equal((await cli(["list", db, "none"])).out, "");
});

Deno.test("cli main groups and count see live keys only", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  {
    using store = new Store(db);
    store.set("acme:config", "a", "1");
    store.set("acme:config", "b", "2");
    store.set("acme:users", "a", "1");
    store.set("beta:config", "a", "1");
    store.set("line\nbreak", "a", "1");
    store.setWithTTL("acme:old", "a", "1", 1);
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(
    (await cli(["groups", db])).out,
    '"acme:config"\n"acme:users"\n"beta:config"\n"line\\nbreak"\n',
  );
  assert.equal(
    (await cli(["groups", db, "acme:"])).out,
    '"acme:config"\n"acme:users"\n',
  );
  assert.equal((await cli(["count", db])).out, "5\n");
  assert.equal((await cli(["count", db, "acme:config"])).out, "2\n");
  assert.equal((await cli(["count", db, "acme:old"])).out, "0\n");
});

Deno.test("cli main export and import round-trip every live entry exactly", async () => {
  using dir = tempDir();
  const source = dir.file("source.db");
  const target = dir.file("target.db");
  const now = Date.now();
  const strings = [
    "",
    "\0",
    "a\0b",
    "\uFEFF",
    "\uFEFF\0x",
    "🦕 ü 中",
    "a\nb\r\n",
  ];
  {
    using store = new Store(source);
    strings.forEach((text, i) => {
      store.set(text, `k${i}`, text);
      store.setWithTTL(`ttl:${i}`, text, text, 3_600_000);
    });
    store.setWithTTL("short", "k", "v", 1);
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
  const exported = await cli(["export", source]);
  assert.equal(exported.code, 0);
  const lines = exported.out.trimEnd().split("\n").map((line) =>
    JSON.parse(line)
  );
  assert.equal(lines.length, strings.length * 2);
  for (const line of lines) {
    assert.deepEqual(Object.keys(line), ["group", "key", "value", "expiresAt"]);
    if (line.expiresAt !== null) assert.ok(line.expiresAt > now + 3_500_000);
  }
  const imported = await cli(["import", target], { stdin: exported.out });
  assert.deepEqual(imported, {
    code: 0,
    out: `{"imported":${strings.length * 2},"skipped":0}\n`,
    err: "",
  });
  const rows = (path: string) =>
    rawQuery(
      path,
      "SELECT hex(group_name) g, hex(entry_key) k, hex(entry_value) v, expires_at e FROM entries WHERE group_name <> 'short' ORDER BY group_name, entry_key",
    );
  assert.deepEqual(rows(target), rows(source));
  const prefixed = await cli(["export", source, "--prefix", "ttl:"]);
  assert.equal(prefixed.out.trimEnd().split("\n").length, strings.length);
});

Deno.test("cli main import stops at a malformed line with its number, writing nothing of its batch", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  const input = [
    '{"group":"g","key":"a","value":"1","expiresAt":null}',
    '{"group":"g","key":"old","value":"1","expiresAt":1}',
    '{"group":"g","key":"c","value":"1","expiresAt":null}',
    '{"group":"g","key":"d","value":"1","expires":null}',
  ].join("\n");
  const result = await cli(["import", db], { stdin: input });
  assert.equal(result.code, 3);
  assert.match(result.err, /record 4: unknown field "expires"/);
  assert.equal(rawQuery(db, "SELECT count(*) AS n FROM entries")[0]?.n, 0);
  const ok = await cli(["import", db], {
    stdin: input.split("\n").slice(0, 3).join("\n"),
  });
  assert.equal(ok.out, '{"imported":2,"skipped":1}\n');
  const bad = await cli(["import", db], { stdin: "{}\n{oops\n" });
  assert.equal(bad.code, 3);
  assert.match(bad.err, /record 1: expected|record 1: group must be a string/);
});

Deno.test("cli main backup writes a copy and never overwrites", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  const copy = dir.file("copy.db");
  await cli(["set", db, "g", "k", "v"]);
  assert.equal((await cli(["backup", db, copy])).code, 0);
  assert.equal((await cli(["get", copy, "g", "k"])).out, "v\n");
  const again = await cli(["backup", db, copy]);
  assert.equal(again.code, 3);
  assert.match(again.err, /already exists/);
});

Deno.test("cli main stats reports keys, groups, namespaces, sizes, table and feed", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  {
    using store = new Store(db);
    store.set("acme:config", "a", "1");
    store.set("acme:users", "a", "1");
    store.set("beta:config", "a", "1");
    store.set("plain", "a", "1");
    store.set("plain", "b", "1");
  }
  const before = JSON.parse((await cli(["stats", db])).out);
  assert.deepEqual(
    {
      ...before,
      fileBytes: before.fileBytes > 0,
      walBytes: typeof before.walBytes,
    },
    {
      path: db,
      keys: 5,
      expired: 0,
      groups: 4,
      namespaces: 2,
      fileBytes: true,
      walBytes: "number",
      table: "entries",
      changeFeed: false,
      changeLogRows: 0,
    },
  );
  {
    using _feed = new Store(db, { changeFeed: true });
    _feed.set("plain", "c", "1");
  }
  const after = JSON.parse((await cli(["stats", db])).out);
  assert.equal(after.changeFeed, true);
  assert.equal(after.changeLogRows, 1);
  assert.equal(after.keys, 6);
});

Deno.test("cli main watch prints one JSON line per matching event until aborted", async () => {
  using dir = tempDir();
  const db = dir.file("app.db");
  await cli(["set", db, "g", "seed", "0"]);
  const controller = new AbortController();
  const stdout = sink();
  const watching = main(["watch", db, "g"], {
    stdout: stdout.stream,
    stderr: sink().stream,
    signal: controller.signal,
  });
  // watch turns the change feed on when it opens the file.
  while (
    rawQuery(db, "SELECT name FROM sqlite_schema WHERE name = 'kv_changes'")
      .length === 0
  ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  {
    using writer = new Store(db);
    writer.set("g", "a", "1\0x");
    writer.set("other", "b", "2");
    writer.delete("g", "a");
  }
  while (stdout.text().split("\n").length < 3) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  controller.abort();
  assert.equal(await watching, 0);
  const events = stdout.text().trimEnd().split("\n").map((line) =>
    JSON.parse(line)
  );
  assert.deepEqual(
    events.map((e) => [e.type, e.group, e.key, e.value, e.origin]),
    [["set", "g", "a", "1\0x", "remote"], [
      "delete",
      "g",
      "a",
      undefined,
      "remote",
    ]],
  );
});

Deno.test("cli main increment prints the new count, with an optional delta and TTL", async (t) => {
  using dir = tempDir();
  const db = dir.file("counts.db");
  await t.step("counts from 0, creating the database", async () => {
    assert.deepEqual(await cli(["increment", db, "hits", "home"]), {
      code: 0,
      out: "1\n",
      err: "",
    });
    assert.equal(
      (await cli(["increment", db, "hits", "home", "41"])).out,
      "42\n",
    );
    assert.equal(
      (await cli(["increment", db, "hits", "home", "-2"])).out,
      "40\n",
    );
    assert.equal((await cli(["get", db, "hits", "home"])).out, "40\n");
  });

  await t.step("--ttl applies to a counter it creates", async () => {
    const before = Date.now();
    const r = await cli(["increment", db, "win", "ip", "--ttl", "60000"]);
    assert.equal(r.out, "1\n");
    const [row] = rawQuery(
      db,
      "SELECT expires_at AS at FROM entries WHERE group_name = 'win'",
    );
    const at = row?.at as number;
    assert.ok(at >= before + 60_000 && at <= Date.now() + 60_000, String(at));
  });

  await t.step(
    "a bad delta is a usage error; a value that is no counter fails",
    async () => {
      for (const delta of ["1.5", "x", "", "9007199254740992"]) {
        const r = await cli(["increment", db, "hits", "home", delta]);
        assert.equal(r.code, 2, delta);
        assert.match(r.err, /<delta> must be a safe integer/);
        assert.match(
          r.err,
          /usage: cli increment <db> <group> <key> \[<delta>\]/,
        );
      }
      assert.equal((await cli(["set", db, "hits", "name", "abc"])).code, 0);
      const r = await cli(["increment", db, "hits", "name"]);
      assert.equal(r.code, 3);
      assert.match(r.err, /not a decimal safe integer/);
      assert.equal((await cli(["get", db, "hits", "name"])).out, "abc\n");
      assert.equal(
        (await cli(["increment", db, "hits", "home", "--ttl", "0"])).code,
        2,
      );
    },
  );
});
