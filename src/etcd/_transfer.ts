/**
 * Export and import for the etcd store: one snapshot (a revision) read page
 * by page as a stream of records, and records written in etcd transactions.
 *
 * @module
 */

import { assertText } from "../_check.ts";
import type { ExportRecord } from "../transfer.ts";
import { isExpired } from "../_time.ts";
import { prefixEnd, toBase64 } from "./_keys.ts";
import { type Kv, MAX_REQUEST_BYTES, MAX_TXN_CHANGES } from "./_kv.ts";

const PAGE = 500;

/**
 * Streams the live entries of the groups starting with `prefix`, in group
 * and key order, all read at the revision of the first page.
 *
 * @param kv The store's operations.
 * @param now The store's checked clock.
 * @param prefix A group prefix (unchecked).
 * @returns The stream of records.
 * @throws {TypeError} When `prefix` is not a string.
 */
export function exportStream(
  kv: Kv,
  now: () => number,
  prefix: unknown,
): ReadableStream<ExportRecord> {
  const op = "export entries";
  assertText(op, "prefix", prefix);
  const start = kv.keys.groupsStart(prefix);
  const end = prefixEnd(start);
  const time = now();
  let from = start;
  let revision: number | undefined;
  let done = false;
  return new ReadableStream<ExportRecord>({
    async pull(controller) {
      // Pages of expired keys only would enqueue nothing: read on.
      while (!done) {
        const page = await kv.client.range(op, from, {
          end,
          limit: PAGE,
          ...(revision === undefined ? {} : { revision }),
        });
        revision ??= page.revision;
        const last = page.kvs.at(-1);
        if (!page.more || last === undefined) done = true;
        else from = new Uint8Array([...last.key, 0]);
        let enqueued = 0;
        for (const entry of kv.entries(page.kvs)) {
          const at = entry.stored.expiresAt;
          if (isExpired(at, time)) continue;
          controller.enqueue({
            group: entry.group,
            key: entry.key,
            value: entry.stored.value,
            expiresAt: at ?? null,
          });
          enqueued++;
        }
        if (enqueued > 0) break;
      }
      if (done) controller.close();
    },
  }, { highWaterMark: PAGE });
}

/**
 * Writes one batch of checked records, skipping the expired ones, in etcd
 * transactions of at most 127 puts and 1.5 MiB each (a batch larger than
 * that commits in several).
 *
 * @param kv The store's operations.
 * @param now The store's clock, read once.
 * @param records The records.
 * @returns How many were written.
 */
export async function importBatch(
  kv: Kv,
  now: number,
  records: readonly ExportRecord[],
): Promise<number> {
  const op = "import entries";
  const live = records.filter((r) => r.expiresAt === null || r.expiresAt > now);
  let ops: unknown[] = [];
  let bytes = 0;
  const commit = async () => {
    if (ops.length === 0) return;
    await kv.write(op, { compare: [], success: ops });
    ops = [];
    bytes = 0;
  };
  const seen = new Set<string>();
  for (const record of live) {
    const expiresAt = record.expiresAt ?? undefined;
    const ttlMs = expiresAt === undefined ? undefined : expiresAt - now;
    const put = await kv.putRequest(op, { ...record, expiresAt, ttlMs });
    const size = put.key.length + put.bytes.length;
    // etcd refuses one key twice in a transaction: the later record wins.
    const id = toBase64(put.key);
    if (
      ops.length >= MAX_TXN_CHANGES || bytes + size > MAX_REQUEST_BYTES / 2 ||
      seen.has(id)
    ) {
      await commit();
      seen.clear();
    }
    seen.add(id);
    ops.push({ request_put: put.request });
    bytes += size;
  }
  await commit();
  return live.length;
}
