import { assertEquals } from "@std/assert";
import { classifyDifference, differenceEstimate, proportionDifference } from "../lib/train/mod.ts";

Deno.test("classifyDifference: differs, equivalent, inconclusive, each with its numbers", () => {
  const differs = classifyDifference(differenceEstimate({ mean: -0.05, se: 0.01, df: 4 }), 0.01);
  assertEquals([differs.kind, differs.sign, differs.withinMargin], ["differs", -1, false]);
  // Significant but also inside a wide margin: a real, negligible difference.
  const small = classifyDifference(differenceEstimate({ mean: 0.004, se: 0.001, df: 9 }), 0.01);
  assertEquals([small.kind, small.withinMargin], ["differs", true]);
  const eq = classifyDifference(differenceEstimate({ mean: 0.002, se: 0.002, df: 9 }), 0.01);
  assertEquals([eq.kind, eq.equivalence!.equivalent], ["equivalent", true]);
  // The same estimate without a margin: never "equivalent".
  const noMargin = classifyDifference(differenceEstimate({ mean: 0.002, se: 0.002, df: 9 }));
  assertEquals([noMargin.kind, noMargin.equivalence], ["inconclusive", undefined]);
  assertEquals(classifyDifference([0.01, 0.03, -0.02], 0.01).kind, "inconclusive");
});

Deno.test("classifyDifference: se = 0, too few samples or non-finite numbers cannot be estimated", () => {
  // The same difference on every seed: an interval of width 0 excludes 0 and fits any margin.
  const same = classifyDifference([0.125, 0.125, 0.125], 0.01);
  assertEquals([same.kind, same.reason, same.samples], [
    "cannot estimate",
    "zero standard error",
    3,
  ]);
  assertEquals(same.estimate!.mean, 0.125);
  assertEquals(classifyDifference([0, 0, 0], 0.01).kind, "cannot estimate");
  // Identical differences that float64 rounding makes differ by 1e-17 are still identical.
  const rounded = [0, 1, 2].map((s) => (0.7 + 0.01 * s) - (0.6 + 0.01 * s) + s * 1e-17);
  assertEquals(classifyDifference(rounded).kind, "cannot estimate");
  // Binomial: both accuracies 100%.
  assertEquals(classifyDifference(proportionDifference(1, 1, 300), 0.01).kind, "cannot estimate");
  assertEquals(classifyDifference([0.02]).reason, "too few samples");
  assertEquals(classifyDifference([]).reason, "too few samples");
  assertEquals(classifyDifference([0.02, NaN]).reason, "not finite");
  assertEquals(
    classifyDifference(differenceEstimate({ mean: 0.1, se: Infinity, df: 3 })).reason,
    "not finite",
  );
});
