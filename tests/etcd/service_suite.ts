/**
 * The live-config service on etcd: two service processes on different
 * ports, one cluster, each seeing the other's writes, events and quotas.
 */

import assert from "node:assert/strict";
import { Service } from "../fixtures/live_config_service.ts";
import { endpoints, freshPrefix } from "./_cluster.ts";

/** Reads an event stream until `count` events arrived; returns their data. */
async function events(
  response: Response,
  count: number,
): Promise<Record<string, unknown>[]> {
  const reader = response.body!.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  const out: Record<string, unknown>[] = [];
  try {
    while (out.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      let end: number;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const data = block.split("\n").find((l) => l.startsWith("data: "));
        if (data !== undefined) out.push(JSON.parse(data.slice(6)));
      }
    }
  } finally {
    await reader.cancel();
  }
  return out;
}

Deno.test("live-config on etcd: two instances share tenants, writes, events and quotas", async () => {
  const args = [
    "--etcd",
    endpoints().join(","),
    "--etcd-prefix",
    freshPrefix(),
    "--port",
    "0",
    "--max-keys",
    "3",
  ];
  await using a = new Service(args);
  await using b = new Service(args);
  const [baseA, baseB] = [await a.listening(), await b.listening()];
  assert.notEqual(Service.port(baseA), Service.port(baseB));

  const stream = await fetch(`${baseB}/t/acme/events?group=config`);
  assert.equal(stream.status, 200);
  const heard = events(stream, 2);
  const put = (base: string, key: string, value: string) =>
    fetch(`${base}/t/acme/g/config/k/${key}`, { method: "PUT", body: value })
      .then(async (r) => (await r.body?.cancel(), r.status));
  assert.equal(await put(baseA, "theme", "dark"), 204);
  assert.equal(await put(baseB, "lang", "en"), 204);
  const [first, second] = await heard;
  assert.deepEqual(
    [first?.key, first?.value, first?.origin],
    ["theme", "dark", "remote"],
  );
  assert.deepEqual(
    [second?.key, second?.value, second?.origin],
    ["lang", "en", "local"],
  );
  assert.ok((second?.seq as number) > (first?.seq as number));

  for (const base of [baseA, baseB]) {
    const group = await fetch(`${base}/t/acme/g/config`);
    assert.deepEqual(await group.json(), { lang: "en", theme: "dark" });
  }
  // The quota of 3 keys per tenant holds across the two instances.
  assert.equal(await put(baseA, "size", "m"), 204);
  assert.equal(await put(baseB, "extra", "x"), 429);
  assert.equal(await put(baseA, "extra", "x"), 429);
  assert.equal(await put(baseB, "theme", "light"), 204);
  const other = await fetch(`${baseA}/t/other/g/config`);
  assert.deepEqual(await other.json(), {});
});
