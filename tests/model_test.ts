/**
 * A model-based test of every public method (property 5): random operation
 * sequences run against the store and against a plain in-memory model, and
 * a disagreement is shrunk to a short failing sequence.
 */
import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";
import {
  describeOp,
  generate,
  runSequence,
  shrink,
} from "./fixtures/reliability_model.ts";
import { randomSeed } from "./fixtures/reliability_prng.ts";

const MODEL_OPS = 20_000;
/** Fixed seeds, each run on every CI build; the second on a file. */
const MODEL_SEEDS: [number, "memory" | "file"][] = [
  [1, "memory"],
  [0xdecafbad, "file"],
  [20_240_601, "memory"],
];
const MODEL_RANDOM_SEED = randomSeed();

Deno.test("Store agrees with a plain model over 20,000 random operations per seed", async (t) => {
  console.log(
    `  model-based test: random seed ${MODEL_RANDOM_SEED} (fixed: ${
      MODEL_SEEDS.map(([s]) => s).join(", ")
    })`,
  );
  for (
    const [seed, where] of [
      ...MODEL_SEEDS,
      [MODEL_RANDOM_SEED, "memory"] as const,
    ]
  ) {
    await t.step(`seed ${seed} (${where})`, async () => {
      using dir = tempDir();
      let runs = 0;
      const fails = (ops: ReturnType<typeof generate>) =>
        runSequence(
          ops,
          where === "memory" ? ":memory:" : dir.file(`model-${runs++}.db`),
          dir.path,
        );
      const ops = generate(seed, MODEL_OPS);
      const started = performance.now();
      const failure = await fails(ops);
      const elapsed = Math.round(performance.now() - started);
      if (failure === undefined) {
        console.log(`    ${ops.length} operations agreed in ${elapsed} ms`);
        return;
      }
      const shrunk = await shrink(ops, fails);
      const last = shrunk.ops[shrunk.ops.length - 1];
      const report = [
        `seed ${seed}: the store and the model disagree`,
        `first failure: ${failure.message}`,
        `shortest failing prefix: ${shrunk.prefixLength} of ${ops.length} operations (generate(${seed}, ${shrunk.prefixLength}))`,
        `last operation: ${last === undefined ? "none" : describeOp(last)}`,
        `shrunk to ${shrunk.ops.length} operations in ${shrunk.runs} runs: ${shrunk.failure.message}`,
        ...(shrunk.ops.length <= 40
          ? ["operations:", ...shrunk.ops.map((op) => `  ${describeOp(op)}`)]
          : []),
      ].join("\n");
      console.log(report);
      assert.fail(report);
    });
  }
});
