/**
 * Every options object of the public API refuses a key it does not know,
 * naming it and the closest known one: a misspelt option (`changefeed`)
 * would otherwise be ignored without a word.
 */
import assert from "node:assert/strict";
import {
  AsyncScopedStore,
  fromNdjson,
  ScopedStore,
  Store,
  toAsync,
} from "@core/store";
import { main } from "@core/store/cli";
import { EtcdStore } from "@core/store/etcd";
import { DenoKvStore } from "@core/store/deno-kv";
import { tempDir } from "./_helpers.ts";

const unknown = (op: string, key: string, near?: string) => (error: unknown) =>
  error instanceof TypeError &&
  error.message ===
    `Cannot ${op}: unknown option ${JSON.stringify(key)}${
      near === undefined ? "" : ` (did you mean ${JSON.stringify(near)}?)`
    }`;

// Options objects as callers build them: typed loosely on purpose.
// deno-lint-ignore no-explicit-any
type Loose = any;

Deno.test("Store constructor refuses an unknown option, nested ones included", async (t) => {
  using dir = tempDir();
  const path = dir.file("app.db");
  const cases: [Loose, string, string | undefined][] = [
    [{ changefeed: true }, "changefeed", "changeFeed"],
    [{ purgeInterval: 10 }, "purgeInterval", "purgeIntervalMs"],
    [{ readonly: true }, "readonly", "readOnly"],
    [{ colour: "blue" }, "colour", undefined],
    [
      { renderLimits: { maxStep: 1 } },
      "renderLimits.maxStep",
      "renderLimits.maxSteps",
    ],
    [
      { changeRetention: { maxRow: 1 } },
      "changeRetention.maxRow",
      "changeRetention.maxRows",
    ],
  ];
  for (const [options, key, near] of cases) {
    await t.step(key, () => {
      assert.throws(
        () => new Store(path, options),
        unknown("open store", key, near),
      );
    });
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "a file was created");
  assert.throws(
    () => new Store(path, 5 as Loose),
    /^TypeError: Cannot open store: options must be an object, received number$/,
  );
  // Known options still pass, `undefined` values included.
  using store = new Store(
    ":memory:",
    { clock: undefined, renderLimits: {} } as Loose,
  );
  assert.equal(store.get("g", "k"), undefined);
});

Deno.test("Store, ScopedStore and toAsync methods refuse unknown options", async () => {
  using store = new Store();
  const tenant = new ScopedStore(store, "t1");
  const async = toAsync(store);
  const asyncTenant = new AsyncScopedStore(async, "t1");
  const sync: [string, () => unknown, string, string][] = [
    ["list keys", () => store.list("g", { limt: 1 } as Loose), "limt", "limit"],
    [
      "list keys",
      () => tenant.list("g", { revers: true } as Loose),
      "revers",
      "reverse",
    ],
    [
      "render template",
      () => store.render("x", "g", { missingkey: "zero" } as Loose),
      "missingkey",
      "missingKey",
    ],
    [
      "render template",
      () => tenant.render("x", "g", { maxStep: 1 } as Loose),
      "maxStep",
      "maxSteps",
    ],
    [
      "watch",
      () => store.watch("g", "k", { sinse: 1 } as Loose),
      "sinse",
      "since",
    ],
    [
      "watch",
      () => tenant.watch("*", "*", { sinse: 1 } as Loose),
      "sinse",
      "since",
    ],
    [
      "watch",
      () => asyncTenant.watch("*", "*", { sinse: 1 } as Loose),
      "sinse",
      "since",
    ],
    [
      "export entries",
      () => store.exportEntries({ prefx: "" } as Loose),
      "prefx",
      "prefix",
    ],
    [
      "read NDJSON",
      () => fromNdjson({ maxLine: 1 } as Loose),
      "maxLine",
      "maxLineBytes",
    ],
    [
      "create scoped store",
      () => new ScopedStore(store, "t2", { maxKey: 1 } as Loose),
      "maxKey",
      "maxKeys",
    ],
    [
      "create scoped store",
      () => new AsyncScopedStore(async, "t2", { maxGroup: 1 } as Loose),
      "maxGroup",
      "maxGroups",
    ],
  ];
  for (const [op, call, key, near] of sync) {
    assert.throws(call, unknown(op, key, near), `${op} ${key}`);
  }
  const later: [string, () => Promise<unknown>, string, string][] = [
    [
      "import entries",
      () => store.importEntries([], { batchsize: 1 } as Loose),
      "batchsize",
      "batchSize",
    ],
    [
      "list keys",
      () => async.list("g", { curser: "a" } as Loose),
      "curser",
      "cursor",
    ],
    [
      "list keys",
      () => asyncTenant.list("g", { limt: 1 } as Loose),
      "limt",
      "limit",
    ],
    [
      "render template",
      () => async.render("x", "g", { maxOutput: 1 } as Loose),
      "maxOutput",
      "maxOutputBytes",
    ],
  ];
  for (const [op, call, key, near] of later) {
    await assert.rejects(call, unknown(op, key, near), `${op} ${key}`);
  }
});

Deno.test("EtcdStore.open refuses an unknown option before it connects", async () => {
  await assert.rejects(
    () =>
      EtcdStore.open({
        endpoints: ["http://127.0.0.1:1"],
        requestTimeout: 10,
      } as Loose),
    unknown("open store", "requestTimeout", "requestTimeoutMs"),
  );
});

Deno.test("DenoKvStore refuses unknown options when opening and in its methods", async () => {
  await assert.rejects(
    () => DenoKvStore.open({ path: ":memory:", purgeInterval: 0 } as Loose),
    unknown("open store", "purgeInterval", "purgeIntervalMs"),
  );
  await using store = await DenoKvStore.open({
    path: ":memory:",
    purgeIntervalMs: 0,
  });
  assert.throws(
    () => store.watch("g", "k", { sinse: 1 } as Loose),
    unknown("watch", "sinse", "since"),
  );
  await assert.rejects(
    () => store.list("g", { limt: 1 } as Loose),
    unknown("list keys", "limt", "limit"),
  );
  await assert.rejects(
    () => store.render("x", "g", { missingkey: "zero" } as Loose),
    unknown("render template", "missingkey", "missingKey"),
  );
});

Deno.test("the CLI refuses an unknown flag and names the closest one", async () => {
  using dir = tempDir();
  let err = "";
  const stderr = new WritableStream<Uint8Array>({
    write(chunk) {
      err += new TextDecoder().decode(chunk);
    },
  });
  const code = await main(["list", dir.file("app.db"), "g", "--prefx", "a"], {
    stderr,
  });
  assert.equal(code, 2);
  assert.match(err, /unknown option --prefx \(did you mean --prefix\?\)/);
});
