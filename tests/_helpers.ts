/** Small test helpers shared by the suites. */

import { DatabaseSync } from "node:sqlite";

/** A temporary directory removed (with its files) at the end of a `using`. */
export interface TempDir extends Disposable {
  readonly path: string;
  file(name: string): string;
}

/** Creates a temporary directory for one test. */
export function tempDir(): TempDir {
  const path = Deno.makeTempDirSync({ prefix: "core-store-test-" });
  return {
    path,
    file: (name) => `${path}/${name}`,
    [Symbol.dispose]() {
      Deno.removeSync(path, { recursive: true });
    },
  };
}

/** A clock the test moves by hand. */
export class FakeClock {
  now: number;
  constructor(start = 1_700_000_000_000) {
    this.now = start;
  }
  readonly fn = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** Runs one SQL query on a file through its own raw connection. */
export function rawQuery(
  path: string,
  sql: string,
  ...params: (string | number | null)[]
): Record<string, unknown>[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(sql).all(...params).map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

/** Resolves with the next value a callback registration receives. */
export function nextValue<T>(
  register: (fn: (value: T) => void) => () => void,
  accept: (value: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve) => {
    const off = register((value) => {
      if (!accept(value)) return;
      off();
      resolve(value);
    });
  });
}

/**
 * Awaits a promise that only an unref'd timer (such as the store's purge)
 * can settle: holds the event loop open meanwhile, as a real service would.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1_000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}
