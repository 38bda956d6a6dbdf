/**
 * Statements prepared on first use, for the connection's hot paths.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { prepareRows, type RowStatement, SchemaMovedError } from "./schema.ts";

/**
 * Like {@linkcode prepareRows}, but each statement is prepared when first
 * used. Every live statement holds some of the connection's lookaside
 * memory (SQLite's fast allocator: 40 slots of 1,200 bytes by default), and
 * once that is taken a statement's steps allocate through malloc instead:
 * with all of a store's statements prepared up front, a plain upsert costs
 * about 10% more. A first use after another connection changed the schema
 * throws a {@linkcode SchemaMovedError}, as the step of a statement prepared
 * earlier fails (its silent re-preparation refused), so the store looks at
 * the file again instead of compiling against an unchecked table.
 *
 * @param db An open connection, guarded by the store's authorizer.
 * @param sql Statements by name.
 * @returns The statements by the same names, each prepared on first access.
 * @throws {Error} On first access: what preparing throws, or a
 * {@linkcode SchemaMovedError}.
 */
export function lazyRows<K extends string>(
  db: DatabaseSync,
  sql: Record<K, string>,
): Record<K, RowStatement> {
  const { version } = prepareRows(db, { version: "PRAGMA schema_version" });
  const expected = version.get()?.[0];
  const statements = {} as Record<K, RowStatement>;
  for (const name of Object.keys(sql) as K[]) {
    Object.defineProperty(statements, name, {
      configurable: true,
      enumerable: true,
      get(): RowStatement {
        if (version.get()?.[0] !== expected) {
          throw new SchemaMovedError(
            "the schema changed since the store's statements were prepared",
          );
        }
        const statement = prepareRows(db, { [name]: sql[name] })[name];
        Object.defineProperty(statements, name, {
          value: statement,
          enumerable: true,
        });
        return statement as RowStatement;
      },
    });
  }
  return statements;
}
