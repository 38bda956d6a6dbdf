/**
 * Paging of a group's entries for the asynchronous backends, which read a
 * group whole: the options checked as the local store checks them, then
 * the entries filtered by key prefix and cursor in code point order.
 *
 * @module
 */

import { checkList } from "./_check.ts";
import { compareText } from "./_async_tx.ts";
import type { ListPage } from "./store.ts";

/**
 * Checks `list` options; returns a function that pages a group's entries.
 *
 * @param op The operation, for messages.
 * @param options The caller's options.
 * @returns Pages entries given in key order.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When `limit` is not an integer from 1 to 10,000.
 */
export function pager(
  op: string,
  options: Parameters<typeof checkList>[1],
): (entries: Iterable<[string, string]>) => ListPage {
  const { limit, cursor, prefix, reverse } = checkList(op, options);
  return (all) => {
    let entries = [...all].filter(([key]) => key.startsWith(prefix));
    if (reverse) entries.reverse();
    if (cursor !== undefined) {
      entries = entries.filter(([key]) =>
        reverse ? compareText(key, cursor) < 0 : compareText(key, cursor) > 0
      );
    }
    const page = entries.slice(0, limit);
    return {
      entries: page,
      cursor: entries.length > limit ? page.at(-1)?.[0] : undefined,
    };
  };
}
