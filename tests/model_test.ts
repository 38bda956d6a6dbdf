/**
 * A model-based test of every public method (property 5): operation
 * sequences drawn from fixed seeds run against the store and against a
 * plain in-memory model; a disagreement is shrunk to a short failing
 * sequence. The default suite runs the first 5,000 operations of each fixed
 * seed; tests/reliability/model_suite.ts runs 20,000 of each, and of a
 * random seed.
 */
import {
  checkAgainstModel,
  MODEL_SEEDS,
} from "./fixtures/reliability_model.ts";

Deno.test("Store agrees with a plain model over the first 5,000 operations of each fixed seed", async (t) => {
  for (const [seed, where] of MODEL_SEEDS) {
    await t.step(
      `seed ${seed} (${where})`,
      () => checkAgainstModel(seed, where, 5_000),
    );
  }
});
