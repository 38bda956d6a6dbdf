/**
 * What the differential tests need to know about the machine: whether they
 * may run `go`, which Go it is, and whether they run under CI (where a
 * missing Go is a failure, not a skip).
 *
 * @module
 */

/**
 * An environment variable, or `undefined` without the permission to read it.
 *
 * @param name The variable.
 * @returns Its value, if readable and set.
 */
export function envVar(name: string): string | undefined {
  const state = Deno.permissions.querySync({ name: "env", variable: name });
  return state.state === "granted" ? Deno.env.get(name) : undefined;
}

/** Whether this test run may start `go`. */
export const runAllowed =
  Deno.permissions.querySync({ name: "run", command: "go" }).state ===
    "granted";

/** Whether the run is CI's (`CI=true`). */
export const underCi = envVar("CI") === "true";

function goVersion(): string | undefined {
  if (!runAllowed) return undefined;
  try {
    const out = new Deno.Command("go", { args: ["version"] }).outputSync();
    return out.success
      ? new TextDecoder().decode(out.stdout).trim()
      : undefined;
  } catch {
    return undefined;
  }
}

/** `go version`'s line, or `undefined` when Go cannot be run. */
export const version: string | undefined = goVersion();

/**
 * Why this run skips the Go tests, or `undefined` when they run. Under CI a
 * missing Go is not a reason: the tests run and fail.
 */
export const skipReason: string | undefined = !runAllowed
  ? "they need --allow-run and Go: run `deno task test:go`"
  : version === undefined && !underCi
  ? "`go` was not found: `deno task test:go` installs Debian's Go " +
    "(tests/go/install_go.sh)"
  : undefined;

/**
 * Whether a Go test file's tests are to be ignored in this run. `deno test`
 * reports an ignored test by its name alone, so the reason is said once per
 * file on the console.
 *
 * @param file The test file, as the console line names it.
 * @returns `true` when its tests are to be ignored.
 */
export function skipGo(file: string): boolean {
  if (skipReason === undefined) return false;
  console.log(`${file}: Go tests ignored: ${skipReason}`);
  return true;
}
