import assert from "node:assert/strict";
import { ScopedStore, Store, type StoreEvent } from "@core/store";
import { keepAlive, tempDir } from "./_helpers.ts";

// A leading U+FEFF looks like a UTF-8 byte order mark to a decoder; with a
// NUL the string is read as bytes, so both the text and the bytes paths are
// covered.
const BOM_NUL = "\uFEFF\0";
const BOM = "\uFEFFplain";

Deno.test("Store keeps a leading U+FEFF on every read path", async (t) => {
  using dir = tempDir();
  const path = dir.file("bom.db");
  using store = new Store(path, { purgeIntervalMs: 0 });
  for (const value of [BOM_NUL, BOM]) {
    store.set(value, value, value);
  }

  await t.step("get", () => {
    assert.equal(store.get(BOM_NUL, BOM_NUL), "\uFEFF\u0000");
    assert.equal(store.get(BOM, BOM), BOM);
  });
  await t.step("getAll", () => {
    assert.deepEqual([...store.getAll(BOM_NUL)], [[BOM_NUL, BOM_NUL]]);
    assert.deepEqual([...store.getAll(BOM)], [[BOM, BOM]]);
  });
  await t.step("list", () => {
    assert.deepEqual(store.list(BOM_NUL).entries, [[BOM_NUL, BOM_NUL]]);
    assert.deepEqual(store.list(BOM, { prefix: "\uFEFF" }).entries, [[
      BOM,
      BOM,
    ]]);
  });
  await t.step("groups", () => {
    assert.deepEqual(store.groups("\uFEFF").sort(), [BOM_NUL, BOM].sort());
  });
  await t.step("render", () => {
    assert.equal(store.render(`[{{ index . "${BOM}" }}]`, BOM), `[${BOM}]`);
    assert.equal(
      store.render(
        "{{ range $k, $v := . }}{{ $k }}={{ $v }}{{ end }}",
        BOM_NUL,
      ),
      `${BOM_NUL}=${BOM_NUL}`,
    );
  });
  await t.step("a scoped view", () => {
    store.set(`ns:${BOM}`, BOM_NUL, BOM_NUL);
    const scoped = new ScopedStore(store, "ns");
    assert.equal(scoped.get(BOM, BOM_NUL), BOM_NUL);
    assert.deepEqual([...scoped.getAll(BOM)], [[BOM_NUL, BOM_NUL]]);
  });
  await t.step("backup", () => {
    store.backup(dir.file("copy.db"));
    using copy = new Store(dir.file("copy.db"), { purgeIntervalMs: 0 });
    assert.equal(copy.get(BOM_NUL, BOM_NUL), BOM_NUL);
  });
});

Deno.test("Store keeps a leading U+FEFF in change-feed events", async () => {
  using dir = tempDir();
  const path = dir.file("feed.db");
  const options = { changeFeed: true, changePollMs: 5, purgeIntervalMs: 0 };
  using reader = new Store(path, options);
  using writer = new Store(path, options);
  const events: StoreEvent[] = [];
  const heard = keepAlive(
    new Promise<void>((resolve) => {
      const off = reader.onChange((event) => {
        events.push(event);
        if (events.length === 2) {
          off();
          resolve();
        }
      });
    }),
  );
  writer.set(BOM_NUL, BOM_NUL, BOM_NUL);
  writer.set(BOM, BOM, BOM);
  await heard;
  assert.deepEqual(
    events.map((e) => [e.origin, e.group, e.key, e.value]),
    [["remote", BOM_NUL, BOM_NUL, BOM_NUL], ["remote", BOM, BOM, BOM]],
  );
});
