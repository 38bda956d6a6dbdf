/**
 * `EtcdStore.increment` and `compareAndSet` side by side with raw
 * `/v3/kv/txn` calls doing the same compare-and-swap, and with a
 * `transaction` doing the same read-modify-write, interleaved in one run:
 * each round runs every variant's batch in a rotating order, and the
 * figures are medians over rounds of each batch's median latency.
 *
 * The raw variants talk to the same member over the same JSON gateway with
 * `fetch`, and keep the key's `mod_revision` from their own answers, as the
 * store keeps what it last wrote:
 *
 * - raw txn: `compare mod_revision == r`, `put` (no marker: a copy sent
 *   again could apply twice, which the store never allows);
 * - raw txn + marker: the same compare nested under the store's once-only
 *   marker (`create_revision == 0` on a fresh leased key, written in the
 *   same revision), which is what the store sends for every write.
 *
 * @module
 */

import type { EtcdStore } from "@core/store/etcd";

const BATCH = 60;
const ROUNDS = 7;

type Variant = (i: number) => Promise<unknown>;

const b64 = (text: string) => btoa(text);

/** A minimal gateway client: one member, one `fetch` per call. */
class Raw {
  #url: string;
  constructor(url: string) {
    this.#url = url;
  }
  async call(path: string, body: unknown): Promise<Record<string, unknown>> {
    const r = await fetch(`${this.#url}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    const answer = await r.json();
    if (!r.ok) throw new Error(JSON.stringify(answer));
    return answer;
  }
}

/** Raw compare-and-swap counters on one key, with or without a marker. */
function rawCounter(raw: Raw, key: string, lease: string | undefined) {
  let rev = 0;
  let n = 0;
  let tag = 0;
  const k = b64(key);
  return async () => {
    const put = { request_put: { key: k, value: b64(String(n + 1)) } };
    const compare = [{
      key: k,
      target: "MOD",
      result: "EQUAL",
      mod_revision: rev,
    }];
    let body: unknown = { compare, success: [put] };
    if (lease !== undefined) {
      const marker = b64(`${key}/m/${++tag}`);
      const mark = (v: string) => ({
        request_put: { key: marker, value: b64(v), lease },
      });
      body = {
        compare: [{
          key: marker,
          target: "CREATE",
          result: "EQUAL",
          create_revision: 0,
        }],
        success: [{
          request_txn: {
            compare,
            success: [put, mark("1")],
            failure: [mark("0")],
          },
        }],
        failure: [{ request_range: { key: marker } }],
      };
    }
    const answer = await raw.call("/v3/kv/txn", body);
    const inner = lease === undefined
      ? answer
      : (answer.responses as { response_txn: Record<string, unknown> }[])[0]!
        .response_txn;
    if (inner.succeeded !== true) throw new Error("raw compare failed");
    rev = Number((answer.header as { revision: string }).revision);
    n++;
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function batch(fn: Variant, round: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < BATCH; i++) {
    const start = performance.now();
    await fn(round * BATCH + i);
    samples.push(performance.now() - start);
  }
  return median(samples);
}

/**
 * Runs the paired rounds and prints the table.
 *
 * @param store An open store on the cluster.
 * @param endpoint The member the raw calls talk to (the store's first).
 */
export async function atomicPaired(
  store: EtcdStore,
  endpoint: string,
): Promise<void> {
  const raw = new Raw(endpoint);
  const base = `bench-raw/${crypto.randomUUID()}/`;
  const lease = String(
    (await raw.call("/v3/lease/grant", { TTL: 600 })).ID,
  );
  let casValue = "0";
  await store.set("cas", "k", casValue);
  await store.set("txcas", "k", "0");
  const variants: Record<string, Variant> = {
    "EtcdStore.increment": () => store.increment("atomic", "n"),
    "EtcdStore.compareAndSet": async () => {
      const next = String(Number(casValue) + 1);
      if (!await store.compareAndSet("cas", "k", casValue, next)) {
        throw new Error("uncontended compareAndSet failed");
      }
      casValue = next;
    },
    "raw txn, same compare": rawCounter(raw, `${base}a`, undefined),
    "raw txn, same compare + marker": rawCounter(raw, `${base}b`, lease),
    "transaction: get, then set": () =>
      store.transaction(async (tx) => {
        const n = Number(await tx.get("txinc", "n") ?? "0");
        await tx.set("txinc", "n", String(n + 1));
      }),
  };
  const names = Object.keys(variants);
  // Warm-up: every variant, so the store knows its keys and the leases.
  for (const name of names) await batch(variants[name]!, -1);
  const medians = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(round + j) % names.length]!;
      medians.get(name)!.push(await batch(variants[name]!, round));
    }
  }
  const at = (name: string) => median(medians.get(name)!);
  const ratio = (a: string, b: string) =>
    median(medians.get(a)!.map((x, i) => x / medians.get(b)![i]!));
  const rawTxn = "raw txn, same compare";
  const rawMarker = "raw txn, same compare + marker";
  const tx = "transaction: get, then set";
  console.log(
    `\nAtomic operations, uncontended, ${ROUNDS} interleaved rounds of ${BATCH} (medians of batch medians; ratios are medians of per-round ratios):`,
  );
  const lines = [
    "| operation | p50 (ms) | / raw txn | / raw txn + marker | speed-up over transaction |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const name of names) {
    const vsTx = name.startsWith("EtcdStore")
      ? `${ratio(tx, name).toFixed(2)}×`
      : "";
    lines.push(
      `| ${name} | ${at(name).toFixed(3)} | ${
        ratio(name, rawTxn).toFixed(2)
      }× | ${ratio(name, rawMarker).toFixed(2)}× | ${vsTx} |`,
    );
  }
  console.log(lines.join("\n"));
  await raw.call("/v3/lease/revoke", { ID: lease });
  await raw.call("/v3/kv/deleterange", {
    key: b64(base),
    range_end: b64(base.slice(0, -1) + "0"),
  });
}
