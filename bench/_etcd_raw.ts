/**
 * `EtcdStore.set` against the raw gateway requests it could be, in pairs:
 * a plain `/v3/kv/put`, a `/v3/kv/txn` holding only that put, a txn with
 * the compare and puts `set` sends (the once-only marker of `_once.ts`:
 * the marker must be absent, and is written with the value, on a lease),
 * the same without the lease (markers would then never go away: only to
 * show what the lease costs), and `EtcdStore.set` itself. In each round every variant writes one new
 * key, in an order that rotates each round; the figures are the p50 and
 * p99 of each, and each p50 over the raw put's.
 *
 * @module
 */

import { EtcdStore } from "@core/store/etcd";

const ROUNDS = 300;
const LIMIT = 1.15;
const MARKED = "raw txn: marker compare + put + marker put (what set sends)";
const WARM = 30;

/** p50 and p99 of one variant, milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
}

/** What {@linkcode setAgainstRaw} measured. */
export interface SetAgainstRaw {
  rounds: number;
  latency: Record<string, Latency>;
  /** Each variant's p50 over the raw put's. */
  overPut: Record<string, number>;
}

const b64 = (text: string) => btoa(text);

/**
 * Measures `EtcdStore.set` and the raw requests side by side.
 *
 * @param endpoints The cluster's client URLs; raw requests go to the first.
 * @param prefix A key prefix of this run's own.
 * @returns The latencies and ratios.
 */
export async function setAgainstRaw(
  endpoints: string[],
  prefix: string,
): Promise<SetAgainstRaw> {
  const endpoint = endpoints[0] as string;
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${endpoint}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok || answer.error !== undefined) {
      throw new Error(`${path}: ${JSON.stringify(answer)}`);
    }
    return answer;
  };
  const { ID: lease } = await post("/v3/lease/grant", { TTL: 120 });
  const store = await EtcdStore.open({
    endpoints,
    prefix: `${prefix}store/`,
    purgeIntervalMs: 0,
  });
  const value = b64("v");
  // The txn a set sends: put the key and a marker that must be absent.
  const markedTxn = (marker: string, key: string, markerLease?: string) => ({
    compare: [{
      key: b64(marker),
      target: "CREATE",
      result: "EQUAL",
      create_revision: 0,
    }],
    success: [
      { request_put: { key: b64(key), value } },
      {
        request_put: {
          key: b64(marker),
          value: b64("1"),
          ...(markerLease === undefined ? {} : { lease: markerLease }),
        },
      },
    ],
    failure: [{ request_range: { key: b64(marker) } }],
  });
  const variants: Record<string, (i: number) => Promise<unknown>> = {
    "raw put": (i) =>
      post("/v3/kv/put", { key: b64(`${prefix}put/${i}`), value }),
    "raw txn: the put alone": (i) =>
      post("/v3/kv/txn", {
        success: [{ request_put: { key: b64(`${prefix}txn/${i}`), value } }],
      }),
    "raw txn: the same, marker without a lease": (i) =>
      post(
        "/v3/kv/txn",
        markedTxn(`${prefix}m/w/bare.${i}`, `${prefix}bare/${i}`),
      ),
    [MARKED]: (i) =>
      post(
        "/v3/kv/txn",
        markedTxn(`${prefix}m/w/raw.${i}`, `${prefix}marked/${i}`, lease),
      ),
    "EtcdStore.set": (i) => store.set("bench", `k${i}`, "v"),
  };
  const names = Object.keys(variants);
  const samples = new Map<string, number[]>(names.map((n) => [n, []]));
  try {
    for (let round = -WARM; round < ROUNDS; round++) {
      for (let n = 0; n < names.length; n++) {
        const name = names[(n + round + WARM) % names.length] as string;
        const start = performance.now();
        await variants[name]?.(round);
        if (round >= 0) samples.get(name)?.push(performance.now() - start);
      }
    }
  } finally {
    await store.close();
  }
  const latency: Record<string, Latency> = {};
  for (const [name, list] of samples) {
    const sorted = [...list].sort((a, b) => a - b);
    const at = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ??
        NaN;
    latency[name] = { p50: at(0.5), p99: at(0.99) };
  }
  const put = latency["raw put"]?.p50 ?? NaN;
  const overPut: Record<string, number> = {};
  for (const name of names) {
    overPut[name] = Math.round((latency[name]?.p50 ?? NaN) / put * 1000) /
      1000;
  }
  return { rounds: ROUNDS, latency, overPut };
}

/**
 * The figures as a Markdown table.
 *
 * @param result What {@linkcode setAgainstRaw} measured.
 * @returns The table.
 */
export function setAgainstRawTable(result: SetAgainstRaw): string {
  const lines = [
    "| request | p50 (ms) | p99 (ms) | p50 / raw put |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const [name, { p50, p99 }] of Object.entries(result.latency)) {
    lines.push(
      `| ${name} | ${p50.toFixed(3)} | ${p99.toFixed(3)} | ${
        (result.overPut[name] ?? NaN).toFixed(2)
      }x |`,
    );
  }
  // The target (1.15x a raw put), and the same limit against the
  // least a retry-safe write can send: the marked txn.
  const set = result.latency["EtcdStore.set"]?.p50 ?? NaN;
  const marked = result.latency[MARKED]?.p50 ?? NaN;
  const check = (name: string, ratio: number) =>
    `${ratio <= LIMIT ? "PASS" : "FAIL"} ${name} ${ratio.toFixed(2)}x (limit ${
      LIMIT.toFixed(2)
    }x)`;
  lines.push("");
  lines.push(
    check("EtcdStore.set / raw put", result.overPut["EtcdStore.set"] ?? NaN),
  );
  lines.push(
    check("EtcdStore.set / raw txn with the marker (its floor)", set / marked),
  );
  lines.push(
    `INFO raw txn with the marker / raw put ${
      (result.overPut[MARKED] ?? NaN).toFixed(2)
    }x (the floor of a retry-safe write)`,
  );
  return lines.join("\n");
}
