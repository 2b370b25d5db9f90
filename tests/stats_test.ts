import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  differenceEstimate,
  equivalenceTest,
  pairedDifference,
  proportionDifference,
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
