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
import { pairedDifference, proportionDifference } from "../train/stats.ts";
import { classifyDifference } from "../train/verdict.ts";
import { type GradientCheck, gradientCheckMessage } from "../train/gradient_check.ts";
import { progressReporter } from "./progress.ts";
import { LiveDisplay } from "./live.ts";
import { type Figure, figureBundle, groupedBars, heatmaps, type Trace } from "./plotly.ts";
import { markdownTable } from "./markdown.ts";
import { pct, pp, ppInterval } from "./_percent.ts";

const COLORS: Record<string, string> = {
  conv: "#1f77b4",
  transposed: "#d62728",
  control: "#2ca02c",
  // Sweeps (notebook 03): the same networks with each other's initialisation.
  "conv · swapped init": "#17becf",
  "transposed · swapped init": "#ff7f0e",
};
const color = (arm: string) => COLORS[arm] ?? COLORS[arm.split(" ")[0]] ?? "#7f7f7f";

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
 * How far the control arm's step loss may be from the conv arm's, relative to the loss
 * (|a − b| / max(1, |a|)), and still count as "the same function". A wrong kernel or weight copy
 * exceeds it within {@linkcode CONTROL_START_STEPS} steps (the forward pass at step 1, the first
 * update at step 2); float32 rounding in kernels that sum in different orders starts near 1e-7.
 * Training then amplifies any difference step by step, so rounding alone may cross it later on:
 * that is drift, not a different function.
 */
export const CONTROL_TOLERANCE = 1e-5;

/** Steps over which the control arm must match the conv arm within {@linkcode CONTROL_TOLERANCE}. */
export const CONTROL_START_STEPS = 2;

/** How closely the control arm followed the conv arm in one seed's run. */
export interface ControlGap {
  /** The seed. */
  seed: number;
  /** Largest |loss(conv) − loss(control)| over the steps. */
  maxAbsDiff: number;
  /** Largest |loss(conv) − loss(control)| / max(1, |loss(conv)|) over the steps. */
  maxRelDiff: number;
  /** The first step (1-based) whose relative difference exceeds {@linkcode CONTROL_TOLERANCE}. */
  firstDivergentStep?: number;
  /** Largest relative difference over the first {@linkcode CONTROL_START_STEPS} steps. */
  startRelDiff: number;
  /** Steps compared. */
  steps: number;
  /**
   * The control arm's gradients against the conv arm's at the first step (lib/train's
   * gradient check); absent in results recorded before that check existed.
   */
  gradient?: GradientCheck;
}

/**
 * Largest |loss(conv) − loss(control)| over all steps, per seed, or undefined without a control arm.
 *
 * @example
 * ```ts
 * controlGap(runs);
 * // e.g. [{ seed: 0, maxAbsDiff: 3e-6, maxRelDiff: 1.4e-6, startRelDiff: 0, steps: 120 }]
 * ```
 */
export function controlGap(runs: SeedRun[]): ControlGap[] | undefined {
  if (!armNames(runs).includes("control")) return undefined;
  return runs.map(({ seed, results }) => {
    const conv = armOf(results, "conv").steps;
    const ctrl = armOf(results, "control").steps;
    let maxAbsDiff = 0, maxRelDiff = 0, startRelDiff = 0, firstDivergentStep: number | undefined;
    conv.forEach((s, i) => {
      const abs = Math.abs(s[2] - ctrl[i][2]);
      const rel = abs / Math.max(1, Math.abs(s[2]));
      // NaN losses on one side only are a divergence too.
      const diverged = !(rel <= CONTROL_TOLERANCE) &&
        !(Number.isNaN(s[2]) && Number.isNaN(ctrl[i][2]));
      if (diverged && firstDivergentStep === undefined) firstDivergentStep = i + 1;
      maxAbsDiff = Math.max(maxAbsDiff, Number.isNaN(abs) ? Infinity : abs);
      maxRelDiff = Math.max(maxRelDiff, Number.isNaN(rel) ? Infinity : rel);
      if (i < CONTROL_START_STEPS) startRelDiff = maxRelDiff;
    });
    const gradient = results.gradientChecks?.find((c) => c.arm === "control");
    return {
      seed,
      maxAbsDiff,
      maxRelDiff,
      startRelDiff,
      firstDivergentStep,
      steps: conv.length,
      ...(gradient ? { gradient } : {}),
    };
  });
}

/**
 * The control arm's agreement with the conv arm, per seed, as markdown: the first step's
 * gradient gap (lib/train's gradient check), the loss gap over the first
 * {@linkcode CONTROL_START_STEPS} steps, and the largest loss gap over the run; or a line saying
 * there was no control arm.
 *
 * @example
 * ```ts
 * await showMarkdown(controlReport(runs));
 * ```
 */
export function controlReport(runs: SeedRun[]): string {
  const gap = controlGap(runs);
  if (!gap) {
    return "The control arm was not trained (`control = false`; run with `-p control=true` to " +
      "add it).";
  }
  const e = (v: number) => v.toExponential(2);
  const tol = CONTROL_TOLERANCE.toExponential(0);
  const rows = gap.map((g) => [
    String(g.seed),
    g.gradient
      ? `**${e(g.gradient.maxRelDiff)}** (${g.gradient.worstParameter}): ` +
        (g.gradient.passed ? "same gradients" : "**a kernel or the weight copy is wrong**")
      : "not checked",
    `${e(g.startRelDiff)}${
      g.firstDivergentStep !== undefined &&
        g.firstDivergentStep <= CONTROL_START_STEPS
        ? " **(over)**"
        : ""
    }`,
    `${e(g.maxAbsDiff)} (relative ${e(g.maxRelDiff)})` +
    (g.firstDivergentStep !== undefined ? `, over ${tol} from step ${g.firstDivergentStep}` : ""),
  ]);
  const gradTol = gap.find((g) => g.gradient)?.gradient?.tolerance.toExponential(0) ?? "1e-5";
  return markdownTable([
    "seed",
    `gradient gap at step 1, relative to the largest gradient (tolerance ${gradTol})`,
    `relative loss gap, first ${CONTROL_START_STEPS} steps (tolerance ${tol})`,
    `largest loss gap over ${gap[0].steps} steps`,
  ], rows);
}

/** Options of {@linkcode conclusion}. */
export interface ConclusionOptions {
  /**
   * Equivalence margin for the accuracy difference, as a fraction (0.01 = 1 percentage point).
   * Only with a margin can the conclusion call the networks equivalent (two one-sided tests);
   * without one (the default) a non-significant difference is "inconclusive".
   */
  margin?: number;
}

/**
 * Final accuracies and the conclusion, as markdown computed from the results: accuracy per arm
 * (mean ± std over seeds), the difference transposed − conv with its 95 % interval (paired t over
 * seeds when there are several, binomial on the test set otherwise) and the smallest difference
 * the run could detect; then one verdict: neither network beats chance, one is more accurate,
 * equivalent within `margin` (two one-sided tests), or inconclusive. With a control arm, what it
 * shows: tracking the conv network within {@linkcode CONTROL_TOLERANCE}; the same function at
 * first, then drift as training amplifies rounding; or a different function from the start.
 *
 * @example
 * ```ts
 * await showMarkdown(conclusion(runs, { margin: 0.01 }));
 * ```
 */
export function conclusion(runs: SeedRun[], options: ConclusionOptions = {}): string {
  const { margin } = options;
  if (margin !== undefined && !(margin > 0 && margin < 1)) {
    throw new RangeError(`margin must be a fraction between 0 and 1 (0.01 = 1 pp), got ${margin}`);
  }
  const arms = armNames(runs);
  const acc = (arm: string) => finalEpochs(runs, arm).map((e) => e.testAccuracy);
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
  const n = runs[0].results.testSize;
  const d = runs.length > 1
    ? pairedDifference(conv, trans)
    : proportionDifference(conv[0], trans[0], n);
  const kind = runs.length > 1
    ? `paired t over ${runs.length} seeds`
    : `binomial, ${n} test images, one seed`;
  // Accuracy indistinguishable from guessing (within two binomial standard errors of chance).
  const chance = 1 / runs[0].results.classNames.length;
  const chanceLimit = chance + 2 * proportionStandardError(chance, n);
  const nearChance = [meanStd(conv).mean, meanStd(trans).mean].every((a) => a <= chanceLimit);
  const interval = `95% interval ${ppInterval(d.ci95)}`;
  const v = classifyDifference(d, margin);
  const tost = v.equivalence;
  const notEquivalent = tost
    ? `Equivalence within ±${(100 * tost.margin).toFixed(1)} pp is not shown either (90% ` +
      `interval ${ppInterval(tost.ci90)}).`
    : "No equivalence margin was set, so no equivalence test was made.";
  const verdict = nearChance
    ? `Neither network is measurably better than guessing (chance ${pct(chance)}; two standard ` +
      `errors above it is ${pct(chanceLimit)} on ${n} test images): this run is too short to ` +
      "compare them. Train on more images or for more epochs (see the `full` preset)."
    : v.kind === "cannot estimate"
    ? `No verdict: the uncertainty of this difference cannot be estimated (standard error ` +
      `${(100 * d.se).toFixed(1)} pp: ` +
      (runs.length > 1
        ? `the same difference on every seed`
        : `both accuracies are 0 or 100%, where the binomial error vanishes`) +
      `), so it is shown neither to differ from 0 nor to be equivalent. ` +
      (runs.length > 1 ? "More seeds or longer runs" : "More test images or several seeds") +
      " give an interval that means something."
    : v.kind === "differs"
    ? `The ${interval} excludes 0: on this run the ` +
      `${v.sign! > 0 ? "transposed" : "convolutional"} network is more accurate.` +
      (runs.length > 1 ? "" : " With one seed the interval covers the test-set sample only, not " +
        "the variation between training runs: several seeds measure that.")
    : v.kind === "equivalent"
    ? `Equivalent within ±${(100 * tost!.margin).toFixed(1)} pp: the 90% interval ` +
      `${ppInterval(tost!.ci90)} lies inside the margin (two one-sided ` +
      `tests at 5%).`
    : `Inconclusive: the ${interval} includes 0, so this run cannot tell the networks apart, ` +
      `and that is not evidence that they are equal. It could reliably detect only a difference ` +
      `of about ${(100 * d.detectable).toFixed(1)} pp or more (80% power). ${notEquivalent}` +
      " More seeds or test images narrow the interval.";
  const lines = [
    markdownTable(["arm", "final test accuracy", "std over seeds", "per seed"], rows),
    "",
    `**Transposed − conv: ${pp(d.mean)} percentage points (${interval}; standard error ` +
    `${(100 * d.se).toFixed(1)} pp, ${kind}).**`,
    "",
    verdict,
  ];
  const gap = controlGap(runs);
  if (gap) lines.push("", controlSentence(gap, meanStd(acc("control")).mean, meanStd(conv).mean));
  return lines.join("\n");
}

/** What the control arm shows, following its numbers. */
function controlSentence(gap: ControlGap[], control: number, conv: number): string {
  const worst = gap.reduce((w, g) => (g.maxRelDiff > w.maxRelDiff ? g : w));
  const what = `The control arm (transposed layers initialised from the conv network through the ` +
    `stride-1 equivalence)`;
  const tol = CONTROL_TOLERANCE.toExponential(0);
  const wrongGradient = gap.find((g) => g.gradient && !g.gradient.passed);
  if (wrongGradient) {
    return `${what} did **not** compute the same function as the conv network: in seed ` +
      `${wrongGradient.seed}, ${gradientCheckMessage(wrongGradient.gradient!)}. It ended at ` +
      `${pct(control)} accuracy (conv: ${pct(conv)}); this run cannot say what separates the ` +
      `article's two networks.`;
  }
  const checked = gap.filter((g) => g.gradient);
  const gradients = checked.length === gap.length
    ? `the same gradients at the first step (largest relative gap ${
      Math.max(...checked.map((g) => g.gradient!.maxRelDiff)).toExponential(1)
    }, tolerance ${checked[0].gradient!.tolerance.toExponential(0)}); `
    : "";
  const unchecked = checked.length === gap.length ? "" : ` Its gradients were not checked ` +
    `(results recorded before the first-step gradient check), so a kernel error too small to ` +
    `show in the losses is not ruled out.`;
  const wrongFromStart = gap.filter((g) =>
    g.firstDivergentStep !== undefined && g.firstDivergentStep <= CONTROL_START_STEPS
  );
  if (wrongFromStart.length > 0) {
    const g = wrongFromStart[0];
    return `${what} did **not** follow the conv network: at step ${g.firstDivergentStep} of seed ` +
      `${g.seed} its training loss already differed by more than the tolerance (${tol} ` +
      `relative; largest gap ${worst.maxAbsDiff.toExponential(1)}), and it ended at ` +
      `${pct(control)} accuracy (conv: ${pct(conv)}). The two compute the same function from the ` +
      `same start, so they should agree to float rounding: this points to a kernel or weight-copy ` +
      `problem, and this run cannot say what separates the article's two networks.`;
  }
  const drifted = gap.filter((g) => g.firstDivergentStep !== undefined);
  if (drifted.length > 0) {
    const start = Math.max(...gap.map((g) => g.startRelDiff));
    return `${what} computed the same function as the conv network (${gradients}relative loss gap ` +
      `${start.toExponential(1)} over the first ${CONTROL_START_STEPS} steps, tolerance ${tol}) ` +
      `and then drifted away from it as training amplified float rounding (the two arms' ` +
      `kernels sum in different orders): past the tolerance from step ` +
      `${drifted[0].firstDivergentStep} of seed ${drifted[0].seed}, largest gap ` +
      `${worst.maxAbsDiff.toExponential(1)} (${worst.maxRelDiff.toExponential(1)} relative). It ` +
      `ended at ${pct(control)} accuracy against the conv network's ${pct(conv)}: rounding alone ` +
      `moved the final accuracy by ${Math.abs(100 * (control - conv)).toFixed(1)} pp, a floor ` +
      `for what a difference between two single runs of the article's networks can mean.` +
      unchecked;
  }
  const tracked =
    `${what} ${
      gradients ? `had ${gradients.replace(/; $/, "")} and ` : ""
    }tracked the conv network's training loss to within ` +
    `${worst.maxAbsDiff.toExponential(1)} (${worst.maxRelDiff.toExponential(1)} relative, ` +
    `tolerance ${CONTROL_TOLERANCE.toExponential(0)}) over ${gap[0].steps} steps per seed`;
  if (control === conv) {
    return `${tracked} and ended at the same accuracy, ${pct(control)}. Same function, same ` +
      `start, same result: whatever separates the article's two networks comes from their ` +
      `initialisation, not from what the layers can compute.` + unchecked;
  }
  return `${tracked}, yet ended at ${pct(control)} accuracy against the conv network's ` +
    `${pct(conv)}: float rounding alone moved the final accuracy by ` +
    `${Math.abs(100 * (control - conv)).toFixed(1)} pp, a measure of how much any difference ` +
    `of that size between the article's networks can mean.` + unchecked;
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
