/**
 * The model-based test (property 5) at full length: 20,000 operations of
 * each fixed seed and of one random seed, which it prints so that a failure
 * can be replayed. The default suite runs the first 5,000 of each fixed seed
 * (tests/model_test.ts).
 */
import {
  checkAgainstModel,
  MODEL_SEEDS,
} from "../fixtures/reliability_model.ts";
import { randomSeed } from "../fixtures/reliability_prng.ts";

const MODEL_OPS = 20_000;
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
    await t.step(
      `seed ${seed} (${where})`,
      () => checkAgainstModel(seed, where, MODEL_OPS),
    );
  }
});
