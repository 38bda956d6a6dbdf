import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  ScopedStore,
  Store,
  StoreClosedError,
  StoreError,
  type StoreEvent,
} from "@core/store";
import type { FeedWriterResult } from "./fixtures/feed_writer.ts";
import {
  drain,
  FakeClock,
  keepAlive,
  nextValue,
  rawQuery,
  readUntilTrimmed,
  tempDir,
} from "./_helpers.ts";

/** `[seq, origin, type, group, key]`: where an event stands in the feed. */
type SeqBrief = [number | undefined, string, string, string, string];
const seqBrief = (
  e: StoreEvent,
): SeqBrief => [e.seq, e.origin, e.type, e.group, e.key];

function feedStore(path: string, clock?: FakeClock): Store {
  return new Store(path, {
    changeFeed: true,
    changePollMs: 5,
    purgeIntervalMs: 0,
    ...(clock ? { clock: clock.fn } : {}),
  });
}

/** Resolves once `store` has heard `n` events through onChange. */
function hear(store: Store, n: number): Promise<StoreEvent[]> {
  const events: StoreEvent[] = [];
  return keepAlive(
    new Promise((resolve) => {
      const off = store.onChange((event) => {
        events.push(event);
        if (events.length === n) {
          off();
          resolve(events);
        }
      });
    }),
  );
}

Deno.test("Store with changeFeed delivers another connection's writes as remote events in seq order", async () => {
  using dir = tempDir();
  const path = dir.file("feed.db");
  using writer = feedStore(path);
  using reader = feedStore(path);
  const own: StoreEvent[] = [];
  writer.onChange((event) => own.push(event));
  const heard = hear(reader, 7);

  writer.set("g", "k", "v1");
  writer.setWithTTL("g", "t", "x", 3_600_000);
  writer.delete("g", "k");
  writer.set("h", "a", "1\0NUL");
  writer.set("h", "b", "2");
  writer.deleteGroup("h");
  writer.expire("g", "t", null);

  const expected: SeqBrief[] = [
    [1, "remote", "set", "g", "k"],
    [2, "remote", "set", "g", "t"],
    [3, "remote", "delete", "g", "k"],
    [4, "remote", "set", "h", "a"],
    [5, "remote", "set", "h", "b"],
    [6, "remote", "delete_group", "h", ""],
    [7, "remote", "set", "g", "t"],
  ];
  assert.deepEqual((await heard).map(seqBrief), expected);
  // The writer hears its own writes synchronously, from the same log.
  assert.deepEqual(
    own.map(seqBrief),
    expected.map((
      [seq, , type, group, key],
    ) => [seq, "local", type, group, key]),
  );
  assert.equal((await heard)[3]?.value, "1\0NUL");
  assert.equal(own[1]?.expiresAt !== undefined, true);
  assert.equal(own[6]?.expiresAt, undefined);
});

Deno.test("Store with changeFeed reports raw SQL writes by another connection", async () => {
  using dir = tempDir();
  const path = dir.file("raw.db");
  using store = feedStore(path);
  const heard = hear(store, 4);
  const db = new DatabaseSync(path);
  try {
    db.exec("INSERT INTO entries VALUES ('raw', 'k', 'from sql', NULL)");
    db.exec(
      "UPDATE entries SET entry_value = 'changed' WHERE group_name = 'raw'",
    );
    // An expired row deleted by another writer (the Go sibling's purge) is
    // an expiry.
    db.exec("INSERT INTO entries VALUES ('raw', 'old', 'x', 1)");
    db.exec(
      "DELETE FROM entries WHERE group_name = 'raw' AND entry_key = 'old'",
    );
  } finally {
    db.close();
  }
  const events = await heard;
  assert.deepEqual(events.map(seqBrief), [
    [1, "remote", "set", "raw", "k"],
    [2, "remote", "set", "raw", "k"],
    [3, "remote", "set", "raw", "old"],
    [4, "remote", "expire", "raw", "old"],
  ]);
  assert.equal(events[1]?.value, "changed");
  assert.equal(events[2]?.expiresAt, 1);
});

Deno.test("Store with changeFeed logs its own expiries as expire, by its clock", async () => {
  using dir = tempDir();
  const clock = new FakeClock();
  const path = dir.file("expire.db");
  using store = feedStore(path, clock);
  using other = feedStore(path);
  const heard = hear(other, 5);
  const wallBefore = Date.now();
  store.setWithTTL("g", "a", "1", 10);
  store.setWithTTL("g", "b", "2", 10);
  store.setWithTTL("g", "c", "3", 10);
  clock.advance(10);
  assert.equal(store.get("g", "a"), undefined);
  assert.equal(store.purgeExpired(), 2);
  const wallAfter = Date.now();
  assert.deepEqual(
    (await heard).map((e) => [e.seq, e.type, e.key]),
    [
      [1, "set", "a"],
      [2, "set", "b"],
      [3, "set", "c"],
      [4, "expire", "a"],
      [5, "expire", "b"],
    ],
  );
  // The wall clock never reached the fake expiry: the store typed its own
  // rows. Events read back from the log carry the time of the write as the
  // log recorded it (SQLite's clock, as its retention), not the reader's.
  assert.deepEqual(
    rawQuery(path, "SELECT type FROM kv_changes WHERE seq > 3").map((r) =>
      r.type
    ),
    ["expire", "expire", "expire"],
  );
  using late = feedStore(path, clock);
  const replayed = late.watch("g", "*", { since: 3 });
  assert.deepEqual(
    (await drain(late, replayed)).map((e) => [
      e.type,
      e.timestamp >= wallBefore - 1 && e.timestamp <= wallAfter + 1,
    ]),
    [["expire", true], ["expire", true], ["expire", true]],
  );
});

Deno.test("Store with changeFeed delivers a transaction after commit and a rollback never", async () => {
  using dir = tempDir();
  const path = dir.file("tx.db");
  using writer = feedStore(path);
  using reader = feedStore(path);
  const heard = hear(reader, 2);
  assert.throws(() =>
    writer.transaction((tx) => {
      tx.set("g", "lost", "1");
      throw new Error("roll back");
    })
  );
  writer.transaction((tx) => {
    tx.set("g", "a", "1");
    tx.set("g", "b", "2");
  });
  assert.deepEqual((await heard).map(seqBrief), [
    [1, "remote", "set", "g", "a"],
    [2, "remote", "set", "g", "b"],
  ]);
});

Deno.test("Store.watch() with since replays the log, then continues live", async (t) => {
  using dir = tempDir();
  const path = dir.file("resume.db");
  using store = feedStore(path);
  for (let i = 1; i <= 5; i++) store.set("g", `k${i}`, `${i}`);
  store.set("other", "k", "x");

  await t.step("replays the matching events after since", async () => {
    const watcher = store.watch("g", "*", { since: 2 });
    store.set("g", "live", "6");
    const seen = (await drain(store, watcher)).map((e) => [e.seq, e.key]);
    assert.deepEqual(seen, [[3, "k3"], [4, "k4"], [5, "k5"], [7, "live"]]);
  });
  await t.step("since the newest seq replays nothing", async () => {
    const watcher = store.watch("g", "*", { since: 7 });
    assert.deepEqual(await drain(store, watcher), []);
  });
  await t.step("rejects a since after the newest seq", () => {
    assert.throws(() => store.watch("g", "*", { since: 8 }), RangeError);
  });
  await t.step("rejects a bad since", () => {
    assert.throws(() => store.watch("g", "*", { since: -1 }), RangeError);
    assert.throws(() => store.watch("g", "*", { since: 1.5 }), RangeError);
    assert.throws(
      () => store.watch("g", "*", { since: "1" as unknown as number }),
      TypeError,
    );
  });
  await t.step("needs the change feed", () => {
    using plain = new Store(path, { purgeIntervalMs: 0 });
    assert.throws(() => plain.watch("g", "*", { since: 0 }), {
      name: "TypeError",
      message:
        "Cannot watch: since needs the changeFeed option, which keeps the change log",
    });
  });
});

Deno.test("Store with changeFeed trims the log to its retention, and a resume from before it fails", async (t) => {
  using dir = tempDir();
  const logged = (path: string) =>
    rawQuery(path, "SELECT seq FROM kv_changes").map((row) => row.seq);
  // The purge timer trims; wait for its next ticks (bounded) until it has.
  const trimmed = (path: string, rows: number) =>
    keepAlive((async () => {
      for (let i = 0; i < 400 && logged(path).length > rows; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })());

  await t.step("by rows", async () => {
    const path = dir.file("rows.db");
    using store = new Store(path, {
      changeFeed: true,
      changePollMs: 0,
      purgeIntervalMs: 5,
      changeRetention: { maxRows: 3 },
    });
    for (let i = 1; i <= 10; i++) store.set("g", `k${i}`, `${i}`);
    await trimmed(path, 3);
    assert.deepEqual(logged(path), [8, 9, 10]);
    const resumed = store.watch("g", "*", { since: 7 });
    assert.deepEqual(
      (await drain(store, resumed)).map((e) => e.seq),
      [8, 9, 10],
    );
    assert.throws(
      () => store.watch("g", "*", { since: 6 }),
      (error) =>
        error instanceof StoreError &&
        error.message ===
          "Cannot watch: the change log no longer holds the changes after seq 6; the oldest kept is seq 8",
    );
  });

  await t.step("by age, always keeping the newest row", async () => {
    const path = dir.file("age.db");
    using store = new Store(path, {
      changeFeed: true,
      changePollMs: 0,
      purgeIntervalMs: 5,
      changeRetention: { maxAgeMs: 1 },
    });
    for (let i = 1; i <= 10; i++) store.set("g", `k${i}`, `${i}`);
    await trimmed(path, 1);
    // The newest row stays, so the next seq follows it.
    assert.deepEqual(logged(path), [10]);
    assert.throws(() => store.watch("g", "*", { since: 8 }), StoreError);
    const resumed = store.watch("g", "*", { since: 9 });
    store.set("g", "k11", "11");
    assert.deepEqual(
      (await drain(store, resumed)).map((e) => e.seq),
      [10, 11],
    );
  });
});

Deno.test("ScopedStore events arrive through the change feed with the prefixed group", async () => {
  using dir = tempDir();
  const path = dir.file("scoped.db");
  using writer = feedStore(path);
  using reader = feedStore(path);
  const tenant = new ScopedStore(reader, "t1");
  const event = keepAlive(nextValue<StoreEvent>((fn) => tenant.onChange(fn)));
  new ScopedStore(writer, "t2").set("g", "k", "other tenant");
  new ScopedStore(writer, "t1", { maxKeys: 5 }).set("g", "k", "mine");
  const got = await event;
  assert.deepEqual(seqBrief(got), [2, "remote", "set", "t1:g", "k"]);
  assert.equal(got.value, "mine");
});

Deno.test("Store rejects changeFeed on :memory: and bad feed options", () => {
  assert.throws(() => new Store(":memory:", { changeFeed: true }), TypeError);
  assert.throws(
    () => new Store(":memory:", { changeFeed: "yes" as unknown as boolean }),
    TypeError,
  );
  using dir = tempDir();
  assert.throws(
    () =>
      new Store(dir.file("x.db"), {
        changeFeed: true,
        changeRetention: { maxRows: -1 },
      }),
    RangeError,
  );
  assert.throws(
    () => new Store(dir.file("x.db"), { changeFeed: true, changePollMs: 0.5 }),
    RangeError,
  );
});

Deno.test("Store without changeFeed leaves a file without a change log", () => {
  using dir = tempDir();
  const path = dir.file("plain.db");
  using store = new Store(path);
  store.set("g", "k", "v");
  assert.deepEqual(
    rawQuery(
      path,
      "SELECT name FROM sqlite_schema WHERE name LIKE 'kv_changes%'",
    ),
    [],
  );
});

Deno.test("Store with changeFeed lets two Workers and a thread hear every write once, in seq order", async () => {
  using dir = tempDir();
  const path = dir.file("workers.db");
  feedStore(path).close();
  const perWriter = 200;
  const ids = ["w1", "w2"];
  const total = perWriter * ids.length;
  using main = feedStore(path);
  const mainHeard = hear(main, total);
  const workers = ids.map(() =>
    new Worker(new URL("./fixtures/feed_writer_worker.ts", import.meta.url), {
      type: "module",
    })
  );
  let ready = 0;
  const results = await Promise.all(
    workers.map((worker, i) =>
      new Promise<FeedWriterResult>((resolve, reject) => {
        worker.onmessage = (event) => {
          if (event.data === "ready") {
            // Nobody writes before every writer listens.
            if (++ready === workers.length) {
              for (const w of workers) w.postMessage("go");
            }
            return;
          }
          worker.terminate();
          if (event.data.ok) resolve(event.data.result);
          else reject(new Error(event.data.error));
        };
        worker.onerror = (event) => {
          event.preventDefault();
          worker.terminate();
          reject(new Error(event.message));
        };
        worker.postMessage({ path, id: ids[i], count: perWriter, total });
      })
    ),
  );
  const everyone = [
    ...results,
    {
      id: "main",
      heard: (await mainHeard).map((e) =>
        [e.seq, e.origin, e.group, e.key] as [number, string, string, string]
      ),
    },
  ];
  for (const { id, heard } of everyone) {
    assert.equal(heard.length, total, id);
    // Contiguous seqs 1..total: none missing, none twice, in order.
    assert.deepEqual(
      heard.map(([seq]) => seq),
      Array.from({ length: total }, (_, i) => i + 1),
      id,
    );
    for (const [, origin, , key] of heard) {
      assert.equal(
        origin,
        key.startsWith(`${id}:`) ? "local" : "remote",
        `${id} ${key}`,
      );
    }
  }
});

Deno.test("Store hands events out in commit order when a callback writes during delivery", async (t) => {
  await t.step("with the change feed", async () => {
    using dir = tempDir();
    const store = feedStore(dir.file("order.db"));
    const seen: string[] = [];
    store.onChange((e) => {
      seen.push(`${e.seq}:${e.key}`);
      if (e.key === "a") store.set("g", "reaction", "x");
    });
    const watcher = store.watch("*", "*");
    store.transaction((tx) => {
      tx.set("g", "a", "1");
      tx.set("g", "b", "2");
    });
    store.close();
    const watched = (await Array.fromAsync(watcher)).map((e) =>
      `${e.seq}:${e.key}`
    );
    assert.deepEqual(seen, ["1:a", "2:b", "3:reaction"]);
    assert.deepEqual(watched, ["1:a", "2:b", "3:reaction"]);
  });
  await t.step("without it", () => {
    using store = new Store();
    const seen: string[] = [];
    store.onChange((e) => {
      seen.push(e.key);
      if (e.key === "a") store.set("g", "reaction", "x");
    });
    store.transaction((tx) => {
      tx.set("g", "a", "1");
      tx.set("g", "b", "2");
    });
    assert.deepEqual(seen, ["a", "b", "reaction"]);
  });
});

Deno.test("Store.watch() with since inside a callback neither repeats nor skips an event", async () => {
  using dir = tempDir();
  const store = feedStore(dir.file("since-cb.db"));
  let resumed: ReturnType<Store["watch"]> | undefined;
  store.onChange((e) => {
    if (e.seq === 1) resumed = store.watch("g", "*", { since: 1 });
  });
  store.transaction((tx) => {
    tx.set("g", "a", "1");
    tx.set("g", "b", "2");
  });
  store.set("g", "c", "3");
  store.close();
  assert.deepEqual(
    (await Array.fromAsync(resumed!)).map((e) => e.seq),
    [2, 3],
  );
});

Deno.test("Store with changeFeed: a listener registered inside a transaction hears only what commits after", async () => {
  using dir = tempDir();
  const store = feedStore(dir.file("tx-listen.db"));
  store.set("g", "old1", "1");
  store.set("g", "old2", "2");
  let watcher: ReturnType<Store["watch"]> | undefined;
  const heard: string[] = [];
  store.transaction((tx) => {
    watcher = store.watch("g", "*");
    store.onChange((e) => heard.push(e.key));
    // Resuming inside the transaction replays what committed before it.
    const resumed = store.watch("g", "*", { since: 1 });
    store.unwatch(resumed);
    tx.set("g", "new", "3");
    return resumed;
  });
  store.close();
  assert.deepEqual((await Array.fromAsync(watcher!)).map((e) => e.key), [
    "new",
  ]);
  assert.deepEqual(heard, ["new"]);
});

Deno.test("Store.watch() with since reads the log a page at a time as its reader reads", async (t) => {
  await t.step(
    "a long backlog of large values arrives whole and in order",
    async () => {
      using dir = tempDir();
      using store = new Store(dir.file("long.db"), {
        changeFeed: true,
        purgeIntervalMs: 0,
        changeRetention: { maxRows: 5_000 },
      });
      const big = "x".repeat(32 * 1024);
      store.transaction((tx) => {
        for (let i = 0; i < 2_000; i++) tx.set("g", `k${i}`, `${i}:${big}`);
      });
      using watcher = store.watch("g", "*", { since: 0 });
      const reader = watcher.stream.getReader();
      let count = 0;
      for (; count < 2_000; count++) {
        const { value } = await reader.read();
        assert.equal(value!.seq, count + 1);
        assert.equal(value!.value, `${count}:${big}`);
      }
      assert.equal(count, 2_000);
      reader.releaseLock();
    },
  );

  await t.step(
    "a page of large values ends at 8 MiB",
    async () => {
      using dir = tempDir();
      using store = new Store(dir.file("large.db"), {
        changeFeed: true,
        purgeIntervalMs: 0,
        changeRetention: { maxRows: 50 },
      });
      const mib = "x".repeat(1024 * 1024);
      for (let i = 0; i < 40; i++) store.set("g", "k", `${i}:${mib}`);
      using watcher = store.watch("g", "*", { since: 0 });
      const reader = watcher.stream.getReader();
      assert.equal((await reader.read()).value?.seq, 1);
      // Small writes trim the first 78 rows: a page of 256 rows would hold
      // all 40 values by now; one of 8 MiB holds 7 (each is over 1 MiB).
      for (let i = 0; i < 100; i++) store.set("h", "k", String(i));
      assert.equal((await readUntilTrimmed(reader, 7)).length, 6);
    },
  );

  await t.step(
    "writes made before the first read follow it, none dropped",
    async () => {
      using dir = tempDir();
      using store = feedStore(dir.file("live.db"));
      for (let i = 0; i < 600; i++) store.set("g", "k", `old ${i}`);
      using watcher = store.watch("g", "*", { since: 0, capacity: 4 });
      // More than the capacity while nothing was read: the log has them.
      for (let i = 0; i < 50; i++) store.set("g", "k", `new ${i}`);
      const reader = watcher.stream.getReader();
      const values: string[] = [];
      for (let i = 0; i < 650; i++) {
        values.push(
          (await reader.read()).value!.value!,
        );
      }
      assert.deepEqual(values, [
        ...Array.from({ length: 600 }, (_, i) => `old ${i}`),
        ...Array.from({ length: 50 }, (_, i) => `new ${i}`),
      ]);
      assert.equal(watcher.dropped, 0);
      store.set("g", "k", "live");
      assert.equal((await reader.read()).value?.value, "live");
      reader.releaseLock();
    },
  );

  await t.step(
    "rows trimmed before the reader reached them fail the stream",
    async () => {
      using dir = tempDir();
      using store = new Store(dir.file("trim.db"), {
        changeFeed: true,
        purgeIntervalMs: 0,
        changeRetention: { maxRows: 300 },
      });
      for (let i = 0; i < 290; i++) store.set("g", "k", String(i));
      using watcher = store.watch("g", "*", { since: 0, capacity: 4 });
      const reader = watcher.stream.getReader();
      // The first page is read; then the log trims past the next one.
      assert.equal((await reader.read()).value?.seq, 1);
      for (let i = 0; i < 400; i++) store.set("g", "k", `more ${i}`);
      await readUntilTrimmed(reader, 256);
    },
  );

  await t.step(
    "rows of other groups trimmed under a quiet watcher fail the stream",
    async () => {
      using dir = tempDir();
      using store = new Store(dir.file("quiet.db"), {
        changeFeed: true,
        purgeIntervalMs: 0,
        changeRetention: { maxRows: 300 },
      });
      for (let i = 0; i < 290; i++) store.set("a", "k", String(i));
      using watcher = store.watch("a", "*", { since: 0 });
      const reader = watcher.stream.getReader();
      assert.equal((await reader.read()).value?.seq, 1);
      // None of these reach the watcher live; they trim its rows away.
      for (let i = 0; i < 400; i++) store.set("b", "k", `more ${i}`);
      store.set("a", "k", "live");
      const seqs = (await readUntilTrimmed(reader, 256)).map((e) => e.seq);
      assert.deepEqual(seqs, Array.from({ length: 255 }, (_, i) => i + 2));
    },
  );

  await t.step(
    "a store closed while a replay scans other groups hands over what it holds",
    async () => {
      using dir = tempDir();
      const store = feedStore(dir.file("scan.db"));
      for (let i = 0; i < 300; i++) store.set("other", "k", String(i));
      for (let i = 0; i < 5; i++) store.set("a", "k", String(i));
      const watcher = store.watch("a", "*", { since: 0 });
      const reader = watcher.stream.getReader();
      const first = reader.read();
      await Promise.resolve();
      store.close();
      const got = [(await first).value?.value];
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        got.push(r.value.value);
      }
      assert.deepEqual(got, ["0", "1", "2", "3", "4"]);
    },
  );

  await t.step(
    "a store closed before a long replay was read: four pages, then StoreClosedError",
    async () => {
      using dir = tempDir();
      const store = feedStore(dir.file("long-close.db"));
      store.transaction(() => {
        for (let i = 0; i < 2_000; i++) store.set("g", `k${i}`, String(i));
      });
      const watcher = store.watch("g", "*", { since: 0 });
      store.close();
      const reader = watcher.stream.getReader();
      let read = 0;
      await assert.rejects(
        async () => {
          for (; !(await reader.read()).done; read++);
        },
        (error) =>
          error instanceof StoreClosedError &&
          /after seq 1024: the store is closed/.test(error.message),
      );
      assert.equal(read, 1_024);
    },
  );

  await t.step(
    "an unwatched replay is read lazily and ends where the log ended",
    async () => {
      using dir = tempDir();
      using store = feedStore(dir.file("unwatched.db"));
      store.transaction(() => {
        for (let i = 0; i < 2_000; i++) store.set("g", `k${i}`, String(i));
      });
      const watcher = store.watch("g", "*", { since: 0, capacity: 1 });
      for (let i = 0; i < 3; i++) store.set("g", "k", `live ${i}`);
      store.unwatch(watcher);
      store.set("g", "k", "after the end");
      const events = await Array.fromAsync(watcher);
      assert.equal(events.length, 2_003);
      assert.equal(events.at(-1)?.value, "live 2");
      assert.ok(events.every(Object.isFrozen));
    },
  );

  await t.step(
    "an extended replay ended inside a transaction never reads its rows",
    async () => {
      using dir = tempDir();
      using store = feedStore(dir.file("open-tx.db"));
      store.set("g", "k", "old");
      const watcher = store.watch("g", "*", { since: 0, capacity: 1 });
      for (let i = 0; i < 3; i++) store.set("g", "k", `new ${i}`);
      assert.throws(() =>
        store.transaction(() => {
          store.set("g", "k", "rolled back");
          store.unwatch(watcher);
          throw new Error("no");
        })
      );
      const values = (await Array.fromAsync(watcher)).map((e) => e.value);
      assert.deepEqual(values, ["old", "new 0", "new 1", "new 2"]);
    },
  );
});
