/**
 * Views of the DenseNet experiment for notebook 02: live progress and curves during training,
 * then loss and accuracy curves (mean and band over seeds), per-class accuracy bars, confusion
 * matrices, the control-arm comparison and a conclusion computed from the numbers.
 *
 * @example
 * ```ts
 * import { liveTraining, perClassFigure } from "./training_views.ts";
 * const live = liveTraining();
 * const runs = await runExperiment({ ...options, onStep: live.onStep, onEpoch: live.onEpoch });
 * await show(perClassFigure(runs));
 * ```
 * @module
 */
import type { ArmResults, RunResults, StepProgress } from "../train/trainer.ts";
import type { SeedRun } from "../train/experiment.ts";
import { addConfusion, meanStd, proportionStandardError } from "../train/metrics.ts";
import { progressReporter } from "./progress.ts";
import { LiveDisplay } from "./live.ts";
import { type Figure, figureBundle, groupedBars, heatmaps, type Trace } from "./plotly.ts";
import { markdownTable } from "./markdown.ts";

const COLORS: Record<string, string> = {
  conv: "#1f77b4",
  transposed: "#d62728",
  control: "#2ca02c",
};
const color = (arm: string) => COLORS[arm] ?? "#7f7f7f";

function armNames(runs: SeedRun[]): string[] {
  return runs[0]?.results.arms.map((a) => a.name) ?? [];
}

/** Mean line with a ±std band (when several seeds) for one arm. */
function bandTraces(arm: string, x: number[], perSeed: number[][], dash = false): Trace[] {
  const stats = x.map((_, i) => meanStd(perSeed.map((s) => s[i]).filter(Number.isFinite)));
  const mean = stats.map((s) => s.mean);
  const line: Trace = {
    type: "scatter",
    mode: "lines",
    name: perSeed.length > 1 ? `${arm} (mean of ${perSeed.length} seeds)` : arm,
    x,
    y: mean,
    line: { color: color(arm), ...(dash ? { dash: "dot" } : {}) },
    legendgroup: arm,
  };
  if (perSeed.length < 2) return [line];
  return [
    {
      type: "scatter",
      mode: "lines",
      x: [...x, ...[...x].reverse()],
      y: [...stats.map((s) => s.mean + s.std), ...stats.map((s) => s.mean - s.std).reverse()],
      fill: "toself",
      fillcolor: color(arm) + "33",
      line: { width: 0 },
      hoverinfo: "skip",
      showlegend: false,
      legendgroup: arm,
    },
    line,
  ];
}

/** Moving average over `w` points (shorter at the start). */
function smooth(values: number[], w: number): number[] {
  let sum = 0;
  return values.map((v, i) => {
    sum += v;
    if (i >= w) sum -= values[i - w];
    return sum / Math.min(i + 1, w);
  });
}

/**
 * Training loss per step of every arm, smoothed over a tenth of an epoch, against fractional
 * epochs; mean and ±std band over seeds.
 *
 * @example
 * ```ts
 * await show(lossFigure(runs));
 * ```
 */
export function lossFigure(runs: SeedRun[]): Figure {
  const data: Trace[] = [];
  for (const arm of armNames(runs)) {
    const perSeed = runs.map((r) => armOf(r.results, arm).steps);
    const n = Math.min(...perSeed.map((s) => s.length));
    if (n === 0) continue;
    const stepsPerEpoch = Math.max(...perSeed[0].map((s) => s[1]));
    const x = perSeed[0].slice(0, n).map(([e, s]) => e - 1 + s / stepsPerEpoch);
    const w = Math.max(1, Math.round(stepsPerEpoch / 10));
    data.push(
      ...bandTraces(
        arm,
        x,
        perSeed.map((s) => smooth(s.slice(0, n).map((v) => v[2]), w)),
        arm === "control",
      ),
    );
  }
  return {
    data,
    layout: {
      title: { text: `Training loss (${runs[0]?.results.dataset ?? ""})` },
      xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: "cross-entropy" } },
      height: 380,
    },
  };
}

/**
 * Test accuracy after every epoch, per arm; mean and ±std band over seeds.
 *
 * @example
 * ```ts
 * await show(accuracyFigure(runs));
 * ```
 */
export function accuracyFigure(runs: SeedRun[]): Figure {
  const data: Trace[] = [];
  for (const arm of armNames(runs)) {
    const perSeed = runs.map((r) => armOf(r.results, arm).epochs.map((e) => e.testAccuracy));
    const n = Math.min(...perSeed.map((s) => s.length));
    if (n === 0) continue;
    const x = Array.from({ length: n }, (_, i) => i + 1);
    data.push(...bandTraces(arm, x, perSeed.map((s) => s.slice(0, n)), arm === "control"));
  }
  return {
    data,
    layout: {
      title: { text: `Test accuracy (${runs[0]?.results.dataset ?? ""})` },
      xaxis: { title: { text: "epoch" }, dtick: 1 },
      yaxis: { title: { text: "accuracy" }, rangemode: "tozero" },
      height: 340,
    },
  };
}

/**
 * Live view for {@linkcode runExperiment}: a progress bar updated in place after every step and a
 * chart of loss and accuracy updated after every epoch (one output each).
 *
 * @example
 * ```ts
 * const live = liveTraining();
 * await runExperiment({ ...options, onStep: live.onStep, onEpoch: live.onEpoch });
 * ```
 */
export function liveTraining(): {
  onStep: (seed: number, p: StepProgress) => Promise<void>;
  onEpoch: (seed: number, r: RunResults) => Promise<void>;
} {
  const bars = new Map<number, (p: StepProgress) => Promise<void>>();
  const lossChart = new LiveDisplay(), accChart = new LiveDisplay();
  const done = new Map<number, RunResults>();
  return {
    onStep: (seed, p) => {
      if (!bars.has(seed)) bars.set(seed, progressReporter({ label: `seed ${seed}` }));
      return bars.get(seed)!(p);
    },
    onEpoch: async (seed, r) => {
      done.set(seed, structuredClone(r));
      const runs = [...done].map(([s, results]) => ({ seed: s, results }));
      await lossChart.update(figureBundle(lossFigure(runs)));
      await accChart.update(figureBundle(accuracyFigure(runs)));
    },
  };
}

/** The results of arm `name` in a run (every run holds all of its experiment's arms). */
function armOf(results: RunResults, name: string): ArmResults {
  return results.arms.find((a) => a.name === name)!;
}

function finalEpochs(runs: SeedRun[], arm: string) {
  return runs.map((r) => {
    const epochs = armOf(r.results, arm).epochs;
    return epochs[epochs.length - 1];
  });
}

/**
 * Per-class test accuracy after the last epoch, grouped by class, one bar per arm (mean over
 * seeds, with ±std error bars when there are several).
 *
 * @example
 * ```ts
 * await show(perClassFigure(runs));
 * ```
 */
export function perClassFigure(runs: SeedRun[]): Figure {
  const classNames = runs[0].results.classNames;
  const arms = armNames(runs);
  // Mean and std over seeds, per arm and class.
  const stats = arms.map((arm) => {
    const last = finalEpochs(runs, arm);
    return classNames.map((_, c) => meanStd(last.map((e) => e.perClassAccuracy[c])));
  });
  const fig = groupedBars(
    classNames,
    arms.map((arm, i) => ({ name: arm, values: stats[i].map((m) => m.mean) })),
    {
      title: `Per-class test accuracy (${runs[0].results.dataset})`,
      yTitle: "accuracy",
      height: 400,
    },
  );
  fig.data.forEach((t, i) => {
    t.marker = { color: color(arms[i]) };
    if (runs.length > 1) {
      t.error_y = { type: "data", array: stats[i].map((m) => m.std) };
    }
  });
  return fig;
}

/**
 * Confusion matrices (rows: true class, normalised to fractions; summed over seeds) of the given
 * arms side by side.
 *
 * @example
 * ```ts
 * await show(confusionFigure(runs, ["conv", "transposed"]));
 * ```
 */
export function confusionFigure(runs: SeedRun[], arms = ["conv", "transposed"]): Figure {
  const panels = arms.filter((a) => armNames(runs).includes(a)).map((arm) => {
    const [first, ...rest] = finalEpochs(runs, arm).map((e) => e.confusion);
    const total = rest.reduce(addConfusion, first.map((row) => [...row]));
    const z = total.map((row) => {
      const s = row.reduce((a, b) => a + b, 0);
      return row.map((v) => (s ? v / s : 0));
    });
    return { title: arm, z };
  });
  const fig = heatmaps(panels, {
    title: `Confusion matrices, rows = true class (${runs[0].results.dataset})`,
    colorscale: "Blues",
    digits: 2,
    height: 440,
  });
  const names = runs[0].results.classNames;
  for (const t of fig.data) {
    t.x = names;
    t.y = names;
    t.zmin = 0;
    t.zmax = 1;
  }
  Object.keys(fig.layout ?? {}).filter((k) => /^[xy]axis\d*$/.test(k)).forEach((k) => {
    (fig.layout![k] as Record<string, unknown>).showticklabels = true;
  });
  return fig;
}

/**
 * Largest |loss(conv) − loss(control)| over all steps, per seed, or undefined without a control arm.
 *
 * @example
 * ```ts
 * controlGap(runs); // e.g. [{ seed: 0, maxAbsDiff: 3e-6, steps: 120 }]
 * ```
 */
export function controlGap(
  runs: SeedRun[],
): { seed: number; maxAbsDiff: number; steps: number }[] | undefined {
  if (!armNames(runs).includes("control")) return undefined;
  return runs.map(({ seed, results }) => {
    const conv = armOf(results, "conv").steps;
    const ctrl = armOf(results, "control").steps;
    const maxAbsDiff = conv.reduce((m, s, i) => Math.max(m, Math.abs(s[2] - ctrl[i][2])), 0);
    return { seed, maxAbsDiff, steps: conv.length };
  });
}

/**
 * Final accuracies and the conclusion, as markdown computed from the results: accuracy per arm
 * (mean ± std over seeds), the difference transposed − conv with its standard error (paired over
 * seeds when there are several, binomial on the test set otherwise), whether it exceeds two
 * standard errors (or that neither network beats chance, when that is so), and what the control arm
 * shows.
 *
 * @example
 * ```ts
 * await showMarkdown(conclusion(runs));
 * ```
 */
export function conclusion(runs: SeedRun[]): string {
  const arms = armNames(runs);
  const acc = (arm: string) => finalEpochs(runs, arm).map((e) => e.testAccuracy);
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const rows = arms.map((arm) => {
    const s = meanStd(acc(arm));
    return [
      arm,
      pct(s.mean),
      runs.length > 1 ? `± ${pct(s.std)}` : "—",
      acc(arm).map(pct).join(", "),
    ];
  });
  const conv = acc("conv"), trans = acc("transposed");
  const diffs = trans.map((t, i) => t - conv[i]);
  const d = meanStd(diffs);
  const n = runs[0].results.testSize;
  const se = runs.length > 1
    ? d.std / Math.sqrt(runs.length)
    : Math.hypot(proportionStandardError(conv[0], n), proportionStandardError(trans[0], n));
  const seKind = runs.length > 1
    ? `paired over ${runs.length} seeds`
    : `binomial, ${n} test images, one seed`;
  const significant = Math.abs(d.mean) > 2 * se;
  // Accuracy indistinguishable from guessing (within two binomial standard errors of chance).
  const chance = 1 / runs[0].results.classNames.length;
  const chanceLimit = chance + 2 * proportionStandardError(chance, n);
  const nearChance = [meanStd(conv).mean, meanStd(trans).mean].every((a) => a <= chanceLimit);
  const verdict = nearChance
    ? `Neither network is measurably better than guessing (chance ${pct(chance)}; two standard ` +
      `errors above it is ${pct(chanceLimit)} on ${n} test images): this run is too short to ` +
      "compare them. Train on more images or for more epochs (see the `full` preset)."
    : significant
    ? `The difference is larger than two standard errors: on this run the ` +
      `${d.mean > 0 ? "transposed" : "convolutional"} network is more accurate.`
    : `The difference is within two standard errors: the two networks reach comparable accuracy, ` +
      `as the article found.`;
  const sign = d.mean >= 0 ? "+" : "";
  const lines = [
    markdownTable(["arm", "final test accuracy", "std over seeds", "per seed"], rows),
    "",
    `**Transposed − conv: ${sign}${(100 * d.mean).toFixed(1)} percentage points ` +
    `(standard error ${(100 * se).toFixed(1)} pp, ${seKind}).**`,
    "",
    verdict,
  ];
  const gap = controlGap(runs);
  if (gap) {
    const worst = Math.max(...gap.map((g) => g.maxAbsDiff));
    const ctrl = meanStd(acc("control"));
    lines.push(
      "",
      `The control arm (transposed layers initialised from the conv network through the stride-1 ` +
        `equivalence) tracked the conv network's training loss to within ${
          worst.toExponential(1)
        } over ` +
        `${gap[0].steps} steps per seed and ended at ${pct(ctrl.mean)} accuracy (conv: ` +
        `${
          pct(meanStd(conv).mean)
        }). Same function, same start, same result: whatever separates the ` +
        `article's two networks comes from their initialisation, not from what the layers can compute.`,
    );
  }
  return lines.join("\n");
}

/**
 * A table of the experiment's hyperparameters and dataset, for the notebook and the report.
 *
 * @example
 * ```ts
 * await showMarkdown(runSummary(runs));
 * ```
 */
export function runSummary(runs: SeedRun[]): string {
  const r = runs[0].results;
  const seconds = (arm: string) =>
    runs.reduce(
      (s, run) =>
        s +
        armOf(run.results, arm).epochs.reduce(
          (t, e) => t + e.trainSeconds,
          0,
        ),
      0,
    );
  return markdownTable(["setting", "value"], [
    ["dataset", r.dataset],
    ["train / test images", `${r.trainSize} / ${r.testSize}`],
    ["epochs, batch size", `${r.hyper.epochs}, ${r.hyper.batchSize}`],
    [
      "SGD",
      `lr ${r.hyper.lr} (${r.hyper.schedule}), momentum ${r.hyper.momentum}, weight decay ${r.hyper.weightDecay}`,
    ],
    ["seeds", runs.map((x) => x.seed).join(", ")],
    [
      "training time per arm",
      armNames(runs).map((a) => `${a} ${seconds(a).toFixed(0)} s`).join(", "),
    ],
  ]);
}
