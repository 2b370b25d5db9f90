import { assertAlmostEquals, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  conclusion,
  controlGap,
  controlReport,
  type GradientCheck,
  type SeedRun,
} from "../lib/mod.ts";

/** A fabricated one-epoch run with the given final accuracies on `n` test images. */
function run(
  seed: number,
  acc: Record<string, number>,
  n = 1000,
  controlLoss = (convLoss: number) => convLoss + 1e-7,
): SeedRun {
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
        steps: [[1, 1, 2.3], [1, 2, 2.2], [1, 3, 2.1]].map((
          [e, i, l],
        ) => [e, i, name === "control" ? controlLoss(l) : l]),
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

Deno.test("conclusion: a non-significant difference is inconclusive, with its interval and detectable size", () => {
  const text = conclusion([run(0, { conv: 0.60, transposed: 0.62, control: 0.60 })]);
  // se = √(.6·.4/1000 + .62·.38/1000) = 2.18 pp; 95% interval 2.0 ± 1.96·2.18 pp.
  assertStringIncludes(
    text,
    "**Transposed − conv: +2.0 percentage points (95% interval −2.3 to +6.3 pp; standard error 2.2 pp",
  );
  assertStringIncludes(text, "Inconclusive: the 95% interval −2.3 to +6.3 pp includes 0");
  // (1.96 + 0.8416)·2.18 pp = 6.1 pp.
  assertStringIncludes(text, "a difference of about 6.1 pp or more (80% power)");
  assertStringIncludes(text, "No equivalence margin was set");
  assertEquals(/comparable|equivalent within/i.test(text), false);
  // Same with a margin the interval does not fit in: still inconclusive, says why.
  const withMargin = conclusion([run(0, { conv: 0.60, transposed: 0.62 })], { margin: 0.01 });
  assertStringIncludes(withMargin, "Equivalence within ±1.0 pp is not shown either (90% interval");
});

Deno.test("conclusion: equivalent only when the 90% interval fits inside a stated margin", () => {
  // 5 seeds, paired differences 0.1 ± 0.16 pp: t(0.95, 4) = 2.132 → 90% interval inside ±1 pp.
  const diffs = [0.001, 0.003, -0.001, 0.002, 0];
  const runs = diffs.map((d, s) =>
    run(s, { conv: 0.6 + 0.01 * s, transposed: 0.6 + 0.01 * s + d })
  );
  assertStringIncludes(conclusion(runs, { margin: 0.01 }), "Equivalent within ±1.0 pp");
  // Same numbers, a margin of 0.2 pp: not shown.
  assertEquals(conclusion(runs, { margin: 0.002 }).includes("Equivalent within"), false);
  assertThrows(() => conclusion(runs, { margin: 2 }), RangeError, "margin must be a fraction");
});

Deno.test("conclusion: a significant difference names the better network", () => {
  // Differences 9, 10 and 11 pp: they vary between seeds, so the interval has a width.
  const runs = [0, 1, 2].map((s) => run(s, { conv: 0.60, transposed: 0.69 + 0.01 * s }));
  const text = conclusion(runs);
  assertStringIncludes(text, "paired t over 3 seeds");
  assertStringIncludes(text, "excludes 0: on this run the transposed network is more accurate");
  assertEquals(controlGap(runs), undefined);
});

Deno.test("conclusion: a significant difference on one seed says what its interval does not cover", () => {
  const one = conclusion([run(0, { conv: 0.60, transposed: 0.70 })]);
  assertStringIncludes(one, "on this run the transposed network is more accurate");
  assertStringIncludes(one, "With one seed the interval covers the test-set sample only");
  const three = conclusion(
    [0, 1, 2].map((s) => run(s, { conv: 0.6, transposed: 0.69 + 0.01 * s })),
  );
  assertEquals(three.includes("With one seed"), false);
});

Deno.test("conclusion: the same difference on every seed (se = 0) gets no verdict, neither 'differs' nor 'equivalent'", () => {
  // +12.5 pp on every seed (exact in binary): a 95% interval of width 0 would "exclude 0".
  const same = [0, 1, 2].map((s) =>
    run(s, { conv: 0.5 + 0.125 * s, transposed: 0.625 + 0.125 * s })
  );
  const text = conclusion(same, { margin: 0.01 });
  assertStringIncludes(text, "No verdict: the uncertainty of this difference cannot be estimated");
  assertStringIncludes(text, "the same difference on every seed");
  assertEquals(/excludes 0|more accurate|Equivalent within|Inconclusive/.test(text), false);
  // No difference on any seed, with a margin: an interval +0.0 to +0.0 is not equivalence.
  const zero = [0, 1, 2].map((s) => run(s, { conv: 0.5 + 0.1 * s, transposed: 0.5 + 0.1 * s }));
  const none = conclusion(zero, { margin: 0.01 });
  assertStringIncludes(none, "cannot be estimated");
  assertEquals(/Equivalent within|excludes 0/.test(none), false);
  // One seed, both networks right on every test image: the binomial error is 0.
  const perfect = conclusion([run(0, { conv: 1, transposed: 1 })], { margin: 0.01 });
  assertStringIncludes(perfect, "both accuracies are 0 or 100%");
  assertEquals(/Equivalent within|excludes 0/.test(perfect), false);
});

Deno.test("conclusion: a control arm that tracks the conv arm, same accuracy", () => {
  const text = conclusion([run(0, { conv: 0.60, transposed: 0.62, control: 0.60 })]);
  assertStringIncludes(text, "tracked the conv network's training loss to within 1.0e-7");
  assertStringIncludes(text, "Same function, same start, same result");
});

Deno.test("conclusion: a control arm that diverges is reported as such, not as 'same result'", () => {
  // Loss off by 0.05 from the second step: far beyond float rounding.
  const runs = [
    run(0, { conv: 0.60, transposed: 0.62, control: 0.45 }, 1000, (l) => l < 2.25 ? l + 0.05 : l),
  ];
  const gap = controlGap(runs)!;
  assertEquals(gap[0].firstDivergentStep, 2);
  assertAlmostEquals(gap[0].maxAbsDiff, 0.05, 1e-9);
  const text = conclusion(runs);
  assertStringIncludes(text, "did **not** follow the conv network");
  assertStringIncludes(text, "at step 2 of seed 0 its training loss already differed");
  assertEquals(text.includes("Same function, same start"), false);
  // A NaN loss on the control side only is a divergence too.
  const nan = controlGap([run(0, { conv: 0.6, transposed: 0.6, control: 0.1 }, 1000, () => NaN)])!;
  assertEquals(nan[0].firstDivergentStep, 1);
});

Deno.test("conclusion: the same function at first, then drift from amplified rounding, is told apart from a wrong kernel", () => {
  // Rounding-level at steps 1-2 (1e-7), then past the tolerance at step 3 (as training
  // amplifies it): drift, not a different function.
  const runs = [
    run(
      0,
      { conv: 0.60, transposed: 0.62, control: 0.57 },
      1000,
      (l) => l > 2.25 ? l : l > 2.15 ? l + 1e-7 : l + 0.01,
    ),
  ];
  const gap = controlGap(runs)!;
  assertEquals([gap[0].firstDivergentStep, gap[0].startRelDiff < 1e-6], [3, true]);
  const text = conclusion(runs);
  assertStringIncludes(text, "computed the same function as the conv network");
  assertStringIncludes(text, "then drifted away from it as training amplified float rounding");
  assertStringIncludes(text, "past the tolerance from step 3 of seed 0");
  assertStringIncludes(text, "rounding alone moved the final accuracy by 3.0 pp");
  assertEquals(text.includes("did **not** follow"), false);
  assertEquals(text.includes("Same function, same start"), false);
});

Deno.test("conclusion: a control arm whose first-step gradients differ is a wrong kernel, even when its losses look like drift", () => {
  const check = (maxRelDiff: number): GradientCheck => ({
    reference: "conv",
    arm: "control",
    step: 1,
    parameters: 52,
    maxRelDiff,
    worstParameter: "denseblock2_conv2/kernel",
    tolerance: 1e-5,
    passed: maxRelDiff <= 1e-5,
  });
  // Losses: rounding-level over the first two steps, past the tolerance at step 3.
  const drifting = (gradient: number) => {
    const r = run(
      0,
      { conv: 0.60, transposed: 0.62, control: 0.57 },
      1000,
      (l) => l > 2.25 ? l : l > 2.15 ? l + 1e-7 : l + 0.01,
    );
    r.results.gradientChecks = [check(gradient)];
    return [r];
  };
  const wrong = conclusion(drifting(0.01));
  assertStringIncludes(wrong, "did **not** compute the same function as the conv network");
  assertStringIncludes(
    wrong,
    "the control arm's gradients differ from the conv arm's by 1.0e-2 (largest gap relative to " +
      "the largest gradient, in denseblock2_conv2/kernel; tolerance 1e-5, 52 parameters) at the " +
      "first step: a kernel (or the weight copy) is wrong",
  );
  assertEquals(/drifted away|a floor/.test(wrong), false);
  assertEquals(controlGap(drifting(0.01))![0].gradient!.passed, false);
  // The same losses with matching gradients: drift, and the gradients are named as evidence.
  const drift = conclusion(drifting(2e-6));
  assertStringIncludes(
    drift,
    "computed the same function as the conv network (the same gradients at the first step " +
      "(largest relative gap 2.0e-6, tolerance 1e-5); relative loss gap",
  );
  assertStringIncludes(drift, "then drifted away");
  assertEquals(drift.includes("not checked"), false);
  // The per-seed table says the same.
  assertStringIncludes(
    controlReport(drifting(0.01)),
    "| 0 | **1.00e-2** (denseblock2_conv2/kernel): **a kernel or the weight copy is wrong** |",
  );
  assertStringIncludes(
    controlReport(drifting(2e-6)),
    "| 0 | **2.00e-6** (denseblock2_conv2/kernel): same gradients |",
  );
  assertStringIncludes(
    controlReport([run(0, { conv: 0.6, transposed: 0.6 })]),
    "The control arm was not trained",
  );
  // Results without a gradient check say what that leaves open.
  const old = conclusion([run(0, { conv: 0.60, transposed: 0.62, control: 0.59 })]);
  assertStringIncludes(old, "Its gradients were not checked");
});

Deno.test("conclusion: tracking losses but a different final accuracy is said, not hidden", () => {
  const text = conclusion([run(0, { conv: 0.60, transposed: 0.62, control: 0.59 })]);
  assertStringIncludes(text, "yet ended at 59.0% accuracy against the conv network's 60.0%");
  assertEquals(text.includes("Same function, same start"), false);
});

Deno.test("conclusion: near-chance accuracies are called too short to compare, not 'comparable'", () => {
  const text = conclusion([run(0, { conv: 0.105, transposed: 0.085 }, 200)]);
  assertStringIncludes(text, "Neither network is measurably better than guessing (chance 10.0%");
  assertEquals(text.includes("comparable accuracy"), false);
});
