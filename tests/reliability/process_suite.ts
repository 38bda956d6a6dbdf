/**
 * Suites that start subprocesses, so they need --allow-run; run by
 * `deno task test:reliability`, not by the plain `deno test` command.
 */
import assert from "node:assert/strict";
import { tempDir } from "../_helpers.ts";

const CHILD = new URL("../fixtures/open_store_child.ts", import.meta.url);

Deno.test("Store's background purge timer never keeps a process alive", async (t) => {
  using dir = tempDir();
  for (const path of [":memory:", dir.file("child.db")]) {
    await t.step(path, async () => {
      // A ref'd 50 ms interval would keep the child alive until this signal
      // kills it, failing the exit-code check.
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", CHILD.pathname, path],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(20_000),
      });
      const output = await child.output();
      assert.equal(
        output.code,
        0,
        new TextDecoder().decode(output.stderr),
      );
      assert.equal(new TextDecoder().decode(output.stdout).trim(), "1");
    });
  }
});
