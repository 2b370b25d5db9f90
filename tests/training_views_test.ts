import { assertEquals, assertStringIncludes } from "@std/assert";
import { conclusion, controlGap, type SeedRun } from "../lib/mod.ts";

/** A fabricated one-epoch run with the given final accuracies on `n` test images. */
function run(seed: number, acc: Record<string, number>, n = 1000): SeedRun {
  const classNames = Array.from({ length: 10 }, (_, i) => `c${i}`);
  return {
    seed,
    results: {
      dataset: "test set",
      classNames,
      trainSize: 100,
      testSize: n,
      hyper: {
        epochs: 1,
        batchSize: 10,
        lr: 0.1,
        momentum: 0,
        weightDecay: 0,
        schedule: "constant",
      },
      config: {},
      completedEpochs: 1,
      arms: Object.entries(acc).map(([name, a]) => ({
        name,
        steps: [[1, 1, 2.3], [1, 2, name === "control" ? 2.2 + 1e-7 : 2.2]],
        epochs: [{
          epoch: 1,
          lr: 0.1,
          trainLoss: 2.25,
          testLoss: 2,
          testAccuracy: a,
          perClassAccuracy: classNames.map(() => a),
          confusion: classNames.map(() => classNames.map(() => 0)),
          trainSeconds: 1,
        }],
      })),
    },
  };
}

Deno.test("conclusion: comparable when the difference is within two standard errors", () => {
  const text = conclusion([run(0, { conv: 0.60, transposed: 0.62, control: 0.60 })]);
  assertStringIncludes(text, "**Transposed − conv: +2.0 percentage points (standard error 2.2 pp");
  assertStringIncludes(text, "comparable accuracy");
  assertStringIncludes(text, "tracked the conv network's training loss to within 1.0e-7");
});

Deno.test("conclusion: a significant difference names the better network", () => {
  const runs = [0, 1, 2].map((s) => run(s, { conv: 0.60 + 0.01 * s, transposed: 0.70 + 0.01 * s }));
  const text = conclusion(runs);
  assertStringIncludes(text, "paired over 3 seeds");
  assertStringIncludes(text, "the transposed network is more accurate");
  assertEquals(controlGap(runs), undefined);
});

Deno.test("conclusion: near-chance accuracies are called too short to compare, not 'comparable'", () => {
  const text = conclusion([run(0, { conv: 0.105, transposed: 0.085 }, 200)]);
  assertStringIncludes(text, "Neither network is measurably better than guessing (chance 10.0%");
  assertEquals(text.includes("comparable accuracy"), false);
});
