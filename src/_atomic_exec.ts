/**
 * The atomic operations of the write path: each a read-modify-write of one
 * key done by one SQLite statement (see `_sql.ts`), so one write transaction
 * whatever other connections do. The engine runs them as it runs every
 * mutation, inside `Engine.apply`.
 *
 * @module
 */

import { decodeText } from "./codec.ts";
import { counterProblem } from "./_counter.ts";
import { StoreError } from "./errors.ts";
import type { StoreEvent } from "./events.ts";
import { event, setEvent } from "./_local_events.ts";
import type { DataStatement } from "./_sql.ts";
import type { Row, RowStatement } from "./schema.ts";

/**
 * A read-modify-write of one key, done by one statement; its result (the new
 * counter, the value taken) comes back in `Applied.values`.
 */
export type AtomicMutation =
  | {
    kind: "increment";
    group: string;
    key: string;
    delta: number;
    /** The expiry of a counter the increment creates. */
    expiresAt: number | null;
  }
  | {
    kind: "setIfAbsent";
    group: string;
    key: string;
    value: string;
    expiresAt: number | null;
  }
  | {
    kind: "compareAndSet";
    group: string;
    key: string;
    expected: string;
    value: string;
    expiresAt: number | null;
  }
  | { kind: "compareAndDelete"; group: string; key: string; expected: string }
  | { kind: "getAndDelete"; group: string; key: string };

type Statements = Record<DataStatement, RowStatement>;

const NOTHING = { count: 0, value: undefined } as const;
const DONE = { count: 1, value: undefined } as const;

/**
 * Runs one atomic mutation: one statement, whose change count (or returned
 * row) says whether it wrote.
 *
 * @param op The operation, for error messages.
 * @param s The connection's statements.
 * @param m The mutation.
 * @param now The store clock.
 * @param out Where its event goes; `undefined` when nobody needs it.
 * @returns 1 when it wrote (took a live value, for getAndDelete), else 0;
 * and the value it hands back.
 * @throws {StoreError} When an increment finds no counter or would leave
 * the safe range; nothing is written.
 */
export function executeAtomic(
  op: string,
  s: Statements,
  m: AtomicMutation,
  now: number,
  out: StoreEvent[] | undefined,
): { count: number; value: string | undefined } {
  const { group, key } = m;
  switch (m.kind) {
    case "increment": {
      const row = increment(op, s, m, now);
      const value = row[0] as string;
      out?.push(setEvent(group, key, now, value, row[1] as number | null));
      return { count: 1, value };
    }
    case "setIfAbsent": {
      const { value, expiresAt } = m;
      const { changes } = s.setIfAbsent.run(group, key, value, expiresAt, now);
      if (Number(changes) === 0) return NOTHING;
      out?.push(setEvent(group, key, now, value, expiresAt));
      return DONE;
    }
    case "compareAndSet": {
      const { value, expiresAt } = m;
      const { changes } = s.compareAndSet.run(
        value,
        expiresAt,
        group,
        key,
        m.expected,
        now,
      );
      if (Number(changes) === 0) return NOTHING;
      out?.push(setEvent(group, key, now, value, expiresAt));
      return DONE;
    }
    case "compareAndDelete": {
      const { changes } = s.compareAndDelete.run(group, key, m.expected, now);
      if (Number(changes) === 0) return NOTHING;
      out?.push(event("delete", group, key, now));
      return DONE;
    }
    case "getAndDelete": {
      const row = s.getAndDelete.all(group, key)[0];
      if (row === undefined) return NOTHING;
      const expiresAt = row[1] as number | null;
      // An expired row goes as `delete` removes one: as an expiry.
      const expired = expiresAt !== null && expiresAt <= now;
      out?.push(event(expired ? "expire" : "delete", group, key, now));
      if (expired) return NOTHING;
      return { count: 1, value: decodeText(row[0]) };
    }
  }
}

// The statement leaves a live row that is no counter, or would leave the
// safe range, alone: then the row says why. Another connection may have
// changed it between the two statements (outside a transaction), so the
// increment runs again while the row it sees would take it.
function increment(
  op: string,
  s: Statements,
  m: AtomicMutation & { kind: "increment" },
  now: number,
): Row {
  const { group, key, delta } = m;
  for (let attempt = 0;; attempt++) {
    const rows = s.increment.all(
      group,
      key,
      delta,
      m.expiresAt,
      now,
    );
    if (rows[0] !== undefined) return rows[0];
    const row = s.getBytes.get(group, key);
    const stored = row === undefined ? undefined : decodeText(row[0]);
    const problem = counterProblem(op, group, key, stored, delta);
    if (problem !== undefined) throw problem;
    if (attempt === 8) {
      throw new StoreError(
        `Cannot ${op}: key ${JSON.stringify(key)} in group ${
          JSON.stringify(group)
        } kept changing underneath the increment`,
      );
    }
  }
}
