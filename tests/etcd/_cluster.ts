/**
 * The local etcd cluster of the etcd suites, started by `cluster.sh` (or
 * `.ci/run`): its endpoints, and killing and restarting members by PID.
 */

const STATE = Deno.env.get("ETCD_STATE_DIR") ?? "/tmp/core-store-etcd";
const HERE = new URL(".", import.meta.url).pathname;

/** Client URLs of the members, from the state directory. */
export function endpoints(): string[] {
  const text = Deno.readTextFileSync(`${STATE}/endpoints`).trim();
  return text.split(",");
}

/** The PID of member `i` (1-based), from the last line naming it. */
function pidOf(i: number): number {
  return Number(Deno.readTextFileSync(`${STATE}/member-${i}.pid`).trim());
}

/** Whether the cluster is running (its state file exists). */
export function clusterAvailable(): boolean {
  try {
    Deno.statSync(`${STATE}/endpoints`);
    return true;
  } catch {
    return false;
  }
}

/** The 1-based index of the member that is leader now. */
export async function leader(): Promise<number> {
  const urls = endpoints();
  for (let i = 0; i < urls.length; i++) {
    try {
      const r = await fetch(`${urls[i]}/v3/maintenance/status`, {
        method: "POST",
        body: "{}",
        signal: AbortSignal.timeout(1_000),
      });
      const s = await r.json();
      if (s.leader !== undefined && s.leader === s.header?.member_id) {
        return i + 1;
      }
    } catch {
      // A dead member: try the next one.
    }
  }
  throw new Error("no leader found");
}

/** SIGKILLs member `i` and waits until its port refuses connections. */
export async function kill(i: number): Promise<void> {
  try {
    Deno.kill(pidOf(i), "SIGKILL");
  } catch {
    // Already gone.
  }
  const url = endpoints()[i - 1];
  for (let n = 0; n < 100; n++) {
    try {
      const r = await fetch(`${url}/health`, {
        signal: AbortSignal.timeout(200),
      });
      await r.body?.cancel();
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`member ${i} is still answering after SIGKILL`);
}

/** Stops member `i` with SIGSTOP: it holds its sockets and answers nothing. */
export function pause(i: number): void {
  Deno.kill(pidOf(i), "SIGSTOP");
}

/** Lets a member stopped by {@linkcode pause} run again. */
export function resume(i: number): void {
  try {
    Deno.kill(pidOf(i), "SIGCONT");
  } catch {
    // Killed meanwhile.
  }
}

/** Restarts member `i` on its data directory and waits until it serves. */
export async function restart(i: number): Promise<void> {
  if (await healthy(i)) return;
  const out = await new Deno.Command(`${HERE}member.sh`, {
    args: [STATE, String(i), "existing"],
    stdout: "piped",
  }).output();
  if (!out.success) throw new Error(`member ${i} did not start`);
  for (let n = 0; n < 100; n++) {
    if (await healthy(i)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`member ${i} did not become healthy`);
}

/** Whether member `i` answers (a member without quorum answers too). */
async function healthy(i: number): Promise<boolean> {
  try {
    const r = await fetch(`${endpoints()[i - 1]}/version`, {
      signal: AbortSignal.timeout(500),
    });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** A prefix no other test uses. */
export function freshPrefix(): string {
  return `test/${crypto.randomUUID()}/`;
}
