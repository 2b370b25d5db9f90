import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  differenceEstimate,
  equivalenceTest,
  pairedDifference,
  proportionDifference,
  twoByTwoEffects,
} from "../lib/train/stats.ts";

// Quantiles from statistical tables: t(0.975, 2) = 4.3027, t(0.8, 2) = 1.0607, t(0.95, 2) = 2.9200,
// z(0.975) = 1.95996, z(0.8) = 0.84162.

Deno.test("pairedDifference: paired t interval over three pairs, by hand", () => {
  // Differences 0.03, 0.02, 0.04: mean 0.03, sd 0.01, se 0.01/√3 = 0.0057735.
  const d = pairedDifference([0.60, 0.61, 0.62], [0.63, 0.63, 0.66]);
  assertAlmostEquals(d.mean, 0.03, 1e-12);
  assertAlmostEquals(d.se, 0.0057735, 1e-7);
  assertEquals(d.df, 2);
  assertAlmostEquals(d.ci95[0], 0.03 - 4.3027 * 0.0057735, 1e-5);
  assertAlmostEquals(d.ci95[1], 0.03 + 4.3027 * 0.0057735, 1e-5);
  assertEquals(d.significant, true);
  assertAlmostEquals(d.detectable, (4.3027 + 1.0607) * 0.0057735, 1e-5);
  assertThrows(() => pairedDifference([1], [2]), RangeError, "at least 2 pairs");
  assertThrows(() => pairedDifference([1, 2], [2]), RangeError, "equal lengths");
});

Deno.test("proportionDifference: two accuracies on one test set, normal approximation", () => {
  const d = proportionDifference(0.293, 0.337, 300);
  const se = Math.sqrt(0.293 * 0.707 / 300 + 0.337 * 0.663 / 300);
  assertAlmostEquals(d.se, se, 1e-12);
  assertAlmostEquals(d.ci95[0], 0.044 - 1.95996 * se, 1e-5);
  assertEquals(d.significant, false);
  assertAlmostEquals(d.detectable, (1.95996 + 0.84162) * se, 1e-5);
  assertThrows(() => proportionDifference(0.5, 0.5, 0), RangeError, "test set size");
});

Deno.test("equivalenceTest: the 90% interval against the margin (TOST at 5%)", () => {
  const d = differenceEstimate({ mean: 0.01, se: 0.01, df: 2 });
  const e = equivalenceTest(d, 0.05);
  assertAlmostEquals(e.ci90[0], 0.01 - 2.92 * 0.01, 1e-4);
  assertAlmostEquals(e.ci90[1], 0.01 + 2.92 * 0.01, 1e-4);
  assertEquals(e.equivalent, true); // −0.0192 … 0.0392 inside ±0.05
  assertEquals(equivalenceTest(d, 0.03).equivalent, false); // 0.0392 > 0.03
  assertThrows(() => equivalenceTest(d, 0), RangeError, "margin must be > 0");
  assertThrows(() => differenceEstimate({ mean: 0, se: -1, df: 3 }), RangeError, "standard error");
});

Deno.test("twoByTwoEffects: main effects and interaction over three seeds, by hand", () => {
  const e = twoByTwoEffects({
    a0b0: [0.50, 0.52, 0.54],
    a0b1: [0.60, 0.61, 0.65],
    a1b0: [0.51, 0.55, 0.53],
    a1b1: [0.62, 0.60, 0.66],
  });
  // A per seed: (0.51+0.62−0.50−0.60)/2 = 0.015, 0.01, 0; mean 0.008333, sd 0.0076376,
  // se 0.0044096; t(0.975, 2) = 4.302653 → 95% interval −0.010640 … 0.027307.
  assertAlmostEquals(e.a.mean, 0.0083333, 1e-6);
  assertAlmostEquals(e.a.se, 0.0044096, 1e-6);
  assertAlmostEquals(e.a.ci95[0], -0.010640, 1e-5);
  assertAlmostEquals(e.a.ci95[1], 0.027307, 1e-5);
  assertEquals(e.a.significant, false);
  // B per seed: 0.105, 0.07, 0.12; mean 0.098333, sd 0.025658, se 0.014814 → 0.034594 … 0.162072.
  assertAlmostEquals(e.b.mean, 0.098333, 1e-6);
  assertAlmostEquals(e.b.se, 0.014814, 1e-6);
  assertAlmostEquals(e.b.ci95[0], 0.034594, 1e-5);
  assertEquals(e.b.significant, true);
  // Interaction per seed: (0.11 − 0.10), (0.05 − 0.09), (0.13 − 0.11) = 0.01, −0.04, 0.02.
  assertAlmostEquals(e.interaction.mean, -0.0033333, 1e-6);
  assertEquals(e.a.df, 2);
  assertThrows(
    () => twoByTwoEffects({ a0b0: [1, 2], a0b1: [1, 2], a1b0: [1], a1b1: [1, 2] }),
    RangeError,
    "same seeds",
  );
});
