/**
 * Export, import and backup for the Deno KV store: one consistent read of
 * the live entries (repeated until no write moved the head during it), and
 * records written through the one write path in atomic operations that fit
 * Deno KV's limits.
 *
 * @module
 */

import { StoreError } from "../errors.ts";
import { Store } from "../store.ts";
import type { ExportRecord } from "../transfer.ts";
import { type KvOps, type Planned, toEntry } from "./_kv.ts";
import type { WriteContext } from "./_txn.ts";

/** Records per atomic operation of an import (each takes ≤ 6 mutations). */
const IMPORT_BATCH = 100;
const IMPORT_BYTES = 500_000;

/**
 * The live entries of the groups starting with `prefix`, in group and key
 * order, as of one moment: the scan is repeated until the head did not
 * move while it ran.
 *
 * @param ops The store's operations.
 * @param op The operation, for messages.
 * @param prefix A group prefix.
 * @param now The store clock.
 * @returns The records.
 */
export async function snapshot(
  ops: KvOps,
  op: string,
  prefix: string,
  now: number,
): Promise<ExportRecord[]> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const before = await ops.head();
    const entries = await ops.scan(
      op,
      ops.keys.groupsFrom(prefix),
      (group) => !group.startsWith(prefix),
    );
    const live = await ops.withValues(entries, now);
    const after = await ops.head();
    if (live === undefined || before.versionstamp !== after.versionstamp) {
      continue;
    }
    return live.map(({ entry, value }) => ({
      group: entry.group,
      key: entry.key,
      value,
      expiresAt: entry.stored.x ?? null,
    }));
  }
  throw new StoreError(`Cannot ${op}: writes kept changing the store`);
}

/**
 * A stream of the snapshot's records, read when first pulled.
 *
 * @param read Reads the snapshot.
 * @returns The stream.
 */
export function recordStream(
  read: () => Promise<ExportRecord[]>,
): ReadableStream<ExportRecord> {
  let records: ExportRecord[] | undefined;
  let at = 0;
  return new ReadableStream<ExportRecord>({
    async pull(controller) {
      records ??= await read();
      const end = Math.min(at + 256, records.length);
      for (; at < end; at++) controller.enqueue(records[at] as ExportRecord);
      if (at >= records.length) controller.close();
    },
  }, { highWaterMark: 256 });
}

/**
 * Writes one batch of checked records, skipping the expired ones, in
 * atomic operations of at most {@linkcode IMPORT_BATCH} (a batch larger
 * than that commits in several).
 *
 * @param ctx The store's operations.
 * @param records The records.
 * @returns How many were written.
 */
export async function importBatch(
  ctx: WriteContext,
  records: readonly ExportRecord[],
): Promise<number> {
  const op = "import entries";
  const now = ctx.now(op);
  const live = records.filter((r) => r.expiresAt === null || r.expiresAt > now);
  // The last record of a key wins, as it would written one by one.
  const last = new Map<string, ExportRecord>();
  for (const r of live) last.set(JSON.stringify([r.group, r.key]), r);
  let part: ExportRecord[] = [];
  let bytes = 0;
  for (const record of last.values()) {
    const size = record.value.length + record.key.length + record.group.length;
    if (part.length >= IMPORT_BATCH || bytes + size > IMPORT_BYTES) {
      await writeRecords(ctx, op, part);
      part = [];
      bytes = 0;
    }
    part.push(record);
    bytes += size;
  }
  if (part.length > 0) await writeRecords(ctx, op, part);
  return live.length;
}

async function writeRecords(
  ctx: WriteContext,
  op: string,
  records: readonly ExportRecord[],
): Promise<void> {
  const ops = ctx.ops;
  for (let attempt = 0; attempt < 64; attempt++) {
    const head = await ops.head();
    const planned: Planned[] = [];
    for (let i = 0; i < records.length; i += 10) {
      const some = records.slice(i, i + 10);
      const got = await ops.kv.getMany(
        some.map((r) => ops.keys.entry(r.group, r.key)),
      );
      some.forEach((r, j) => {
        const old = toEntry(r.group, r.key, got[j]);
        const expiresAt = r.expiresAt ?? undefined;
        const { group, key, value } = r;
        planned.push({
          change: { type: "set", group, key, value, expiresAt },
          old,
        });
      });
    }
    const committed = await ops.commit(op, head, planned, ctx.now(op));
    if (committed !== undefined) return await ctx.delivered(committed);
  }
  throw new StoreError(`Cannot ${op}: it conflicted with other writers`);
}

/**
 * Writes a standalone SQLite copy of live entries.
 *
 * @param path Where; must not exist.
 * @param records The entries.
 * @param now The store clock.
 */
export function writeBackup(
  path: string,
  records: readonly ExportRecord[],
  now: number,
): void {
  using copy = new Store(path, { clock: () => now, purgeIntervalMs: 0 });
  copy.transaction((tx) => {
    for (const r of records) {
      if (r.expiresAt === null) tx.set(r.group, r.key, r.value);
      else tx.setWithTTL(r.group, r.key, r.value, r.expiresAt - now);
    }
  });
}
