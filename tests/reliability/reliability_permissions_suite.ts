/**
 * Property 7, Deno permissions: a store needs read and write access to its
 * own file's directory and nothing else; outside it, opening (or backing up)
 * fails with a clear StoreError naming the path and the missing permission,
 * and creates nothing.
 *
 * Also the read-only-file case of property 3 when this suite runs as root,
 * which ignores file modes: the check then runs as an unprivileged user
 * (`setpriv`).
 *
 * Needs --allow-run; run by `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import { Store } from "../../mod.ts";
import { tempDir } from "../_helpers.ts";

const CHILD = new URL(
  "../fixtures/reliability_permission_child.ts",
  import.meta.url,
);
const READONLY_CHILD = new URL(
  "../fixtures/reliability_readonly_child.ts",
  import.meta.url,
);

interface Line {
  name: string;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string };
}

async function runChild(
  permissions: string[],
  args: string[],
): Promise<Line[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...permissions, CHILD.pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  return new TextDecoder().decode(output.stdout).trim().split("\n")
    .map((line) => JSON.parse(line) as Line);
}

function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

Deno.test("a store works with --allow-read=DIR --allow-write=DIR, and with its file alone", async (t) => {
  using root = tempDir();
  const dir = `${root.path}/dir`;
  const outside = `${root.path}/outside`;
  Deno.mkdirSync(dir);
  Deno.mkdirSync(outside);
  await t.step("DIR: the whole API", async () => {
    const lines = await runChild(
      [`--allow-read=${dir}`, `--allow-write=${dir}`],
      ["inside", dir, outside],
    );
    assert.deepEqual(lines.filter((line) => !line.ok), []);
    assert.equal(lines.length, 3);
    assert.deepEqual(listing(dir), ["app.db", "copy.db"]);
  });
  await t.step("DIR/app.db alone: open, write, reopen", async () => {
    Deno.removeSync(`${dir}/app.db`);
    const file = `${dir}/app.db`;
    const lines = await runChild(
      [`--allow-read=${file}`, `--allow-write=${file}`],
      ["file-only", dir, outside],
    );
    assert.deepEqual(lines.filter((line) => !line.ok), []);
    assert.equal(lines.length, 1);
  });
  assert.deepEqual(listing(outside), []);
});

Deno.test("outside --allow-read=DIR --allow-write=DIR a store fails with a clear StoreError and creates nothing", async (t) => {
  using root = tempDir();
  const dir = `${root.path}/dir`;
  const outside = `${root.path}/outside`;
  Deno.mkdirSync(dir);
  Deno.mkdirSync(outside);
  const cases: [string, string[], RegExp][] = [
    ["no access outside", [
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
    ], /Requires read access to "[^"]+", run again with the --allow-read flag/],
    [
      "read access everywhere, write access to DIR only",
      [
        "--allow-read",
        `--allow-write=${dir}`,
      ],
      /Requires write access to "[^"]+", run again with the --allow-write flag/,
    ],
  ];
  for (const [name, permissions, denied] of cases) {
    await t.step(name, async () => {
      const lines = await runChild(permissions, ["outside", dir, outside]);
      assert.deepEqual(lines.map((line) => line.name), [
        "open a store outside DIR",
        "open a store through DIR/..",
        "back up outside DIR",
      ]);
      const [open, escape, backup] = lines as [Line, Line, Line];
      for (const line of lines) {
        assert.equal(line.ok, false, line.name);
        assert.equal(line.error?.name, "StoreError", line.name);
        assert.match(line.error!.message, denied, line.name);
      }
      assert.match(
        open.error!.message,
        new RegExp(`^Cannot open store at ${outside}/out\\.db: `),
      );
      assert.match(
        escape.error!.message,
        new RegExp(`^Cannot open store at ${dir}/\\.\\./outside/escape\\.db: `),
      );
      assert.match(
        backup.error!.message,
        new RegExp(`^Cannot back up store: .*${outside}/copy\\.db`),
      );
      assert.deepEqual(listing(outside), []);
    });
  }
});

/** Whether file modes bind this process (they do not bind root). */
function modesBind(dir: string): boolean {
  const probe = `${dir}/probe`;
  Deno.writeTextFileSync(probe, "x");
  Deno.chmodSync(probe, 0o444);
  try {
    Deno.openSync(probe, { write: true }).close();
    return false;
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) return true;
    throw error;
  } finally {
    Deno.removeSync(probe);
  }
}

function hasSetpriv(): boolean {
  try {
    return Deno.statSync("/usr/bin/setpriv").isFile;
  } catch {
    return false;
  }
}

/**
 * Runs the read-only child on `path`, as an unprivileged user when this
 * process is root, and returns its JSON line.
 */
async function readOnlyChild(
  root: string,
  path: string,
  permissions = ["--allow-read", "--allow-write"],
): Promise<Record<string, unknown>> {
  let command = [Deno.execPath()];
  const env: Record<string, string> = {};
  if (!modesBind(root)) {
    assert.ok(
      hasSetpriv(),
      "running as root, this check needs /usr/bin/setpriv (util-linux) to drop to an unprivileged user",
    );
    command = [
      "/usr/bin/setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      Deno.execPath(),
    ];
    // The unprivileged user cannot use root's module cache.
    const cache = Deno.makeTempDirSync({ prefix: "core-store-deno-dir-" });
    Deno.chmodSync(cache, 0o777);
    env.DENO_DIR = cache;
  }
  const [program, ...rest] = command as [string, ...string[]];
  try {
    const output = await new Deno.Command(program, {
      args: [
        ...rest,
        "run",
        ...permissions,
        READONLY_CHILD.pathname,
        path,
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    if (env.DENO_DIR) Deno.removeSync(env.DENO_DIR, { recursive: true });
  }
}

Deno.test("a store file this process cannot write opens read-only by itself: reads work, a write throws a StoreError naming the mode, nothing changes", async (t) => {
  using root = tempDir();
  Deno.chmodSync(root.path, 0o777);
  const expected = (path: string) => ({
    opened: true,
    readOnly: true,
    value: "v",
    exported: 1,
    write: {
      name: "StoreError",
      message:
        `Cannot set value: the store at ${path} is open read-only (its file or folder is not writable)`,
    },
  });
  await t.step("a file chmod 0444 in a writable folder", async () => {
    const dir = `${root.path}/file`;
    Deno.mkdirSync(dir);
    Deno.chmodSync(dir, 0o777);
    const path = `${dir}/readonly.db`;
    {
      using store = new Store(path);
      store.set("g", "k", "v");
    }
    Deno.chmodSync(path, 0o444);
    const bytes = Deno.readFileSync(path);
    const before = listing(dir);
    assert.deepEqual(await readOnlyChild(root.path, path), expected(path));
    assert.deepEqual(Deno.readFileSync(path), bytes, "the file is unchanged");
    // Reading a WAL-mode file at all makes SQLite create its -shm and -wal
    // sidecars, which a read-only connection cannot remove; nothing else may
    // appear.
    const sidecars = ["readonly.db-shm", "readonly.db-wal"];
    assert.deepEqual(
      listing(dir).filter((name) => !sidecars.includes(name)),
      before,
      "nothing is left beside it",
    );
  });
  await t.step(
    "a WAL file (no -shm, no -wal) in a folder chmod 0555: read as immutable under --allow-all, else refused saying why",
    async () => {
      const dir = `${root.path}/folder`;
      Deno.mkdirSync(dir);
      const path = `${dir}/backup.db`;
      {
        using store = new Store(path);
        store.set("g", "k", "v");
      }
      assert.deepEqual(listing(dir), ["backup.db"], "the WAL was checkpointed");
      Deno.chmodSync(path, 0o444);
      Deno.chmodSync(dir, 0o555);
      const bytes = Deno.readFileSync(path);
      try {
        // SQLite reads it only as immutable, through a URL filename, which
        // Deno accepts under --allow-all only; otherwise the message says
        // what to do.
        assert.deepEqual(
          await readOnlyChild(root.path, path, ["--allow-all"]),
          expected(path),
        );
        const result = await readOnlyChild(root.path, path);
        assert.equal(result.opened, false, JSON.stringify(result));
        assert.match(
          (result.error as { message: string }).message,
          /the file is in WAL mode and its folder is not writable, so SQLite cannot create the .*-shm it reads through \(with --allow-all it reads the file as immutable\); make the folder writable or copy the file$/,
        );
        assert.deepEqual(listing(dir), ["backup.db"], "nothing was created");
        assert.deepEqual(
          Deno.readFileSync(path),
          bytes,
          "the file is unchanged",
        );
      } finally {
        Deno.chmodSync(dir, 0o755);
      }
    },
  );
});
