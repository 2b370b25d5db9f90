import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import type { SeedRun } from "../lib/train/experiment.ts";
import type { RunResults } from "../lib/train/trainer.ts";
import { differenceEstimate } from "../lib/train/stats.ts";
import {
  layerInitDesign,
  pairedDifferences,
  sweepRunsTable,
  verdict,
} from "../lib/viz/sweep_views.ts";
import { readSweepSummary } from "../lib/sweep/results.ts";
import { readManifest } from "../lib/sweep/manifest.ts";
import { writeSyntheticSweep } from "../bench/sweep_explorer_size.ts";

/** Seed runs whose arms end at the given final accuracies (one value per seed). */
function seedRuns(finals: Record<string, number[]>, testSize = 1000): SeedRun[] {
  const n = Object.values(finals)[0].length;
  return Array.from({ length: n }, (_, seed) => ({
    seed,
    results: {
      dataset: "test",
      classNames: Array.from({ length: 10 }, (_, i) => `c${i}`),
      trainSize: 100,
      testSize,
      config: { seed },
      completedEpochs: 1,
      arms: Object.entries(finals).map(([name, acc]) => ({
        name,
        steps: [],
        epochs: [{ epoch: 1, testAccuracy: acc[seed] }],
      })),
    } as unknown as RunResults,
  }));
}

// The numbers of the hand-computed 2×2 example in stats_test.ts: layer effect +0.83 pp
// (95% −1.06…+2.73), init effect +9.83 pp (95% +3.46…+16.21).
const DESIGN = {
  conv: [0.50, 0.52, 0.54], // Conv2d layers, Conv2d's init
  transposed: [0.62, 0.60, 0.66], // ConvTranspose2d layers, ConvTranspose2d's init
  "conv · swapped init": [0.60, 0.61, 0.65], // Conv2d layers, ConvTranspose2d's init
  "transposed · swapped init": [0.51, 0.55, 0.53], // ConvTranspose2d layers, Conv2d's init
};

Deno.test("layerInitDesign: the 2×2 table, main effects, and accuracy following the init column", () => {
  const text = layerInitDesign(seedRuns(DESIGN), 0.01);
  assertStringIncludes(text, "| Conv2d | 52.0% ± 2.0% | 62.0% ± 2.6% |");
  assertStringIncludes(text, "| ConvTranspose2d | 53.0% ± 2.0% | 62.7% ± 3.1% |");
  assertStringIncludes(text, "+0.8 pp | −1.1 to +2.7 pp | inconclusive");
  assertStringIncludes(text, "+9.8 pp | +3.5 to +16.2 pp | differs");
  assertStringIncludes(text, "**Accuracy follows the init column, not the layer row**");
  assertStringIncludes(text, "not shown to be zero"); // ±1 pp is narrower than the interval
  // With a ±5 pp margin the layer effect's 90% interval (−0.5…+2.1 pp) fits: equivalent.
  const wide = layerInitDesign(seedRuns(DESIGN), 0.05);
  assertStringIncludes(wide, "equivalent to zero within ±5.0 pp");
  assert(!wide.includes("at chance"));
  // Without the swapped arms there is no design.
  const partial = layerInitDesign(seedRuns({ conv: [0.5, 0.6], transposed: [0.5, 0.6] }));
  assertStringIncludes(partial, "missing: conv · swapped init, transposed · swapped init");
});

Deno.test("pairedDifferences: labels, intervals and verdicts; at-chance runs are flagged", () => {
  const text = pairedDifferences(seedRuns(DESIGN), 0.01);
  assertStringIncludes(text, "| transposed − conv | +10.7 pp |");
  assertStringIncludes(text, "| transposed − conv (both, swapped init) | −9.0 pp |");
  assertStringIncludes(text, "| conv: swapped − default init | +10.0 pp |");
  assertStringIncludes(text, "Paired t over 3 seeds. Equivalence margin ±1.0 pp.");
  const chance = pairedDifferences(seedRuns({ conv: [0.1, 0.1], transposed: [0.1, 0.11] }, 300));
  assertStringIncludes(chance, "**Every arm is at chance** (10.0%");
  assertStringIncludes(
    pairedDifferences(seedRuns({ conv: [0.5], transposed: [0.6] })),
    "two seeds",
  );
});

Deno.test("verdict: differs, equivalent only within the margin, otherwise inconclusive", () => {
  const precise = differenceEstimate({ mean: 0.002, se: 0.002, df: 9 });
  assertStringIncludes(verdict(precise, 0.01), "equivalent within ±1.0 pp");
  assertStringIncludes(verdict(precise), "inconclusive"); // no margin, no equivalence
  const noisy = differenceEstimate({ mean: 0.002, se: 0.02, df: 4 });
  assertEquals(
    verdict(noisy, 0.01),
    "inconclusive: the sweep could detect only about 7.4 pp or more (80% power); " +
      "equivalence within ±1.0 pp not shown",
  );
  assertStringIncludes(verdict(differenceEstimate({ mean: 0.05, se: 0.01, df: 4 })), "differs");
  assertStringIncludes(verdict(differenceEstimate({ mean: 0, se: 0, df: 1 })), "no interval");
});

Deno.test("layerInitDesign: an effect that is the same on every seed (se = 0) gets no verdict", () => {
  // Multiples of 1/8, exact in binary: the layer effect is +12.5 pp on every seed, the init
  // effect varies (+12.5, +12.5, −25 pp).
  const conv = [0.5, 0.25, 0.75], swapped = [0.625, 0.375, 0.5];
  const design = {
    conv,
    transposed: swapped.map((v) => v + 0.125),
    "conv · swapped init": swapped,
    "transposed · swapped init": conv.map((v) => v + 0.125),
  };
  const text = layerInitDesign(seedRuns(design), 0.01);
  assertStringIncludes(text, "**No verdict**: the effect of the layer type (+12.5 pp) is the same");
  assertStringIncludes(text, "| +12.5 pp | +12.5 to +12.5 pp | cannot estimate the uncertainty");
  assertEquals(/layer type itself changes|equivalent to zero/.test(text), false);
  // No layer effect on any seed: "equivalent within ±1 pp (+0.0 to +0.0)" would be no evidence.
  const flat = {
    conv,
    transposed: swapped,
    "conv · swapped init": swapped,
    "transposed · swapped init": conv,
  };
  const none = layerInitDesign(seedRuns(flat), 0.01);
  assertStringIncludes(none, "**No verdict**: the effect of the layer type (+0.0 pp)");
  assertEquals(/equivalent to zero|equivalent within/.test(none), false);
  // The same wording in the paired-differences table.
  const rows = pairedDifferences(seedRuns({ conv, transposed: conv.map((v) => v + 0.125) }), 0.01);
  assertStringIncludes(
    rows,
    "| transposed − conv | +12.5 pp | +12.5 to +12.5 pp | cannot estimate",
  );
});

Deno.test("sweep views: no sweep given says how to make one; the runs table counts states", async () => {
  const none = await readSweepSummary("");
  assertEquals(none.runs, []);
  assertEquals(none.overview, undefined);
  assertStringIncludes(none.missing, "No sweep given");
  const table = sweepRunsTable({
    notebook: "/repo/notebooks/02_train.ipynb",
    runs: [
      {
        id: "run-000",
        state: "done",
        seconds: 12.4,
        parameters: 'init="default"',
        report: "r0.html",
        log: "l0",
      },
      {
        id: "run-001",
        state: "failed",
        seconds: 3,
        parameters: 'init="swapped"',
        report: "r1.html",
        log: "l1",
        exitCode: 1,
      },
    ],
    results: 1,
    seeds: 1,
  });
  assertStringIncludes(
    table,
    "**2 runs** of `02_train.ipynb` — 1 done, 1 failed, 0 running, 0 pending; 1 training results over 1 seed.",
  );
  assertStringIncludes(table, "exit 1, log `l1`");
  assertStringIncludes(table, "| 12 s |");
});

Deno.test("sweep views: done runs but no seed with every setting is said as such, not 'no results'", async () => {
  const folder = await Deno.makeTempDir({ prefix: "sweep-views-partial-" });
  try {
    // init × seeds 0–1; the runs default/seed 1 and swapped/seed 0 lose their results.
    await writeSyntheticSweep(folder, "default", 4);
    const m = await readManifest(folder);
    assert(m !== undefined);
    for (const run of [m.runs[1], m.runs[2]]) {
      await Deno.remove(`${folder}/runs/${run.id}/results`, { recursive: true });
    }
    const summary = await readSweepSummary(folder);
    assertEquals(summary.runs, []);
    assertEquals(summary.results?.length, 2);
    assertStringIncludes(summary.missing, "No seed has a done run of every setting yet");
    assertStringIncludes(summary.missing, "2 done runs");
    await Deno.remove(`${folder}/runs/${m.runs[0].id}/results`, { recursive: true });
    await Deno.remove(`${folder}/runs/${m.runs[3].id}/results`, { recursive: true });
    assertStringIncludes((await readSweepSummary(folder)).missing, "No training results");
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});
