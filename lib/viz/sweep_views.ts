/**
 * Views of a sweep for notebook 03: the runs and their states, the final accuracy of every arm
 * with its per-seed points, paired differences across seeds with 95 % intervals and verdicts, and
 * the layer × initialisation design with its two main effects. `lib/sweep` reads the sweep
 * (`loadSweep`, `seedRuns`, `sweepOverview`); this module only shows it.
 *
 * Every verdict follows the numbers, decided by lib/train/verdict.ts: "differs" when the 95 %
 * interval excludes 0, "equivalent" only when the 90 % interval lies inside ±margin (two
 * one-sided tests), "inconclusive" otherwise, with the smallest difference the sweep could have
 * detected, and no verdict when the uncertainty cannot be estimated (the same difference on
 * every seed).
 *
 * @example
 * ```ts
 * import { layerInitDesign } from "./sweep_views.ts";
 * import { loadSweep, seedRuns } from "../sweep/results.ts";
 * const runs = seedRuns(await loadSweep("sweeps/medium"));
 * console.log(layerInitDesign(runs, 0.01));
 * ```
 * @module
 */
import type { SeedRun } from "../train/experiment.ts";
import type { RunResults } from "../train/trainer.ts";
import { meanStd, proportionStandardError } from "../train/metrics.ts";
import { type DifferenceEstimate, pairedDifference, twoByTwoEffects } from "../train/stats.ts";
import { classifyDifference, type Verdict } from "../train/verdict.ts";
import { markdownTable, showMarkdown } from "./markdown.ts";
import { type Figure, show, type Trace } from "./plotly.ts";
import { pct, pp, ppInterval as interval } from "./_percent.ts";

/** One run of a sweep as {@linkcode sweepRunsTable} shows it. */
export interface SweepRunRow {
  /** Folder name under `runs/`. */
  id: string;
  /** `pending`, `running`, `done` or `failed`. */
  state: string;
  /** Seconds of the last attempt, when it ended. */
  seconds?: number;
  /** Its grid values, `name=value …`. */
  parameters: string;
  /** Its HTML report, relative to the sweep folder. */
  report: string;
  /** Its log, relative to the sweep folder. */
  log: string;
  /** Exit code of the last attempt, when it ended. */
  exitCode?: number;
}

/** What {@linkcode sweepRunsTable} shows of a sweep (made by `lib/sweep`'s `sweepOverview`). */
export interface SweepOverview {
  /** The swept notebook's path. */
  notebook: string;
  /** Every run, in grid order. */
  runs: SweepRunRow[];
  /** Training results read back (one per done run and seed). */
  results: number;
  /** Distinct seeds among them. */
  seeds: number;
}

/**
 * The runs of the sweep as a markdown table: state, time, grid values, a link to each run's
 * report, and the log of a failed run.
 *
 * @example
 * ```ts
 * await showMarkdown(sweepRunsTable(sweepOverview(await loadSweep("sweeps/medium"))));
 * ```
 */
export function sweepRunsTable(o: SweepOverview): string {
  const count = (s: string) => o.runs.filter((r) => r.state === s).length;
  const rows = o.runs.map((r) => [
    r.id,
    r.state,
    r.seconds !== undefined ? `${r.seconds.toFixed(0)} s` : "",
    r.parameters,
    r.state === "done" || r.state === "failed" ? `[report](${r.report})` : "",
    r.state === "failed" ? `exit ${r.exitCode}, log \`${r.log}\`` : "",
  ]);
  return [
    `**${o.runs.length} runs** of \`${o.notebook.replace(/^.*\//, "")}\` — ${
      count("done")
    } done, ` +
    `${count("failed")} failed, ${count("running")} running, ${count("pending")} pending; ` +
    `${o.results} training results over ${o.seeds} seed${o.seeds === 1 ? "" : "s"}.`,
    "",
    markdownTable(["run", "state", "time", "parameters", "report", "note"], rows),
  ].join("\n");
}

/** Final test accuracy of every seed for `arm`, in seed order. */
function finalAccuracies(runs: SeedRun[], arm: string): number[] {
  return runs.map((s) => {
    const epochs = s.results.arms.find((a) => a.name === arm)!.epochs;
    return epochs[epochs.length - 1]?.testAccuracy ?? NaN;
  });
}

function armNames(runs: SeedRun[]): string[] {
  return runs[0]?.results.arms.map((a) => a.name) ?? [];
}

/**
 * Final test accuracy per arm: every seed as a point, and the mean with a ±1 std bar.
 *
 * @example
 * ```ts
 * await show(finalAccuracyFigure(runs));
 * ```
 */
export function finalAccuracyFigure(runs: SeedRun[]): Figure {
  const arms = armNames(runs);
  const stats = arms.map((a) => meanStd(finalAccuracies(runs, a)));
  const points: Trace = {
    type: "scatter",
    mode: "markers",
    name: "per seed",
    x: arms.flatMap((a) => runs.map(() => a)),
    y: arms.flatMap((a) => finalAccuracies(runs, a)),
    text: arms.flatMap(() => runs.map((s) => `seed ${s.seed}`)),
    marker: { size: 7, opacity: 0.55, color: "#555" },
  };
  const means: Trace = {
    type: "scatter",
    mode: "markers",
    name: "mean ± 1 std",
    x: arms,
    y: stats.map((s) => s.mean),
    error_y: { type: "data", array: stats.map((s) => s.std), thickness: 2, width: 10 },
    marker: { size: 13, symbol: "line-ew-open", color: "#d62728", line: { width: 3 } },
  };
  return {
    data: [points, means],
    layout: {
      title: {
        text: `Final test accuracy, ${runs.length} seeds (${runs[0]?.results.dataset ?? ""})`,
      },
      yaxis: { title: { text: "accuracy" } },
      height: 380,
    },
  };
}

/**
 * What a difference supports, in words (see the module doc).
 *
 * @example
 * ```ts
 * verdict(pairedDifference([0.6, 0.61, 0.62], [0.63, 0.63, 0.66]), 0.01); // "differs (…)"
 * ```
 */
export function verdict(d: DifferenceEstimate, margin?: number): string {
  return verdictWords(classifyDifference(d, margin));
}

/** The sweep's wording of a decision. */
function verdictWords(v: Verdict): string {
  const tost = v.equivalence;
  const within = tost ? `±${(100 * tost.margin).toFixed(1)} pp` : "";
  switch (v.kind) {
    case "cannot estimate":
      return `cannot estimate the uncertainty: the same difference on every seed, so no ` +
        `interval (more seeds, or runs long enough to move the accuracies apart)`;
    case "differs":
      return v.withinMargin
        ? `differs, by less than ${within} (90% interval ${interval(tost!.ci90)})`
        : "differs (the 95% interval excludes 0)";
    case "equivalent":
      return `equivalent within ${within} (90% interval ${
        interval(tost!.ci90)
      }, two one-sided tests)`;
    case "inconclusive":
      return `inconclusive: the sweep could detect only about ${
        (100 * v.estimate!.detectable).toFixed(1)
      } pp ` + `or more (80% power)` + (tost ? `; equivalence within ${within} not shown` : "");
  }
}

/** A difference as a table row: label, mean, interval, verdict. */
function differenceRow(label: string, d: DifferenceEstimate, margin?: number): string[] {
  return [label, `${pp(d.mean)} pp`, interval(d.ci95), verdict(d, margin)];
}

/** The comparisons that make sense between the arms present, as `[label, a, b]` (b − a). */
function comparisons(arms: string[]): [string, string, string][] {
  const out: [string, string, string][] = [];
  const suffixes = [...new Set(arms.map((a) => a.replace(/^[a-z]+/, "")))];
  for (const s of suffixes) {
    const both = s ? ` (both${s.replaceAll(" · ", ", ")})` : "";
    if (arms.includes(`conv${s}`) && arms.includes(`transposed${s}`)) {
      out.push([`transposed − conv${both}`, `conv${s}`, `transposed${s}`]);
    }
    if (arms.includes(`conv${s}`) && arms.includes(`control${s}`)) {
      out.push([`control − conv${both}`, `conv${s}`, `control${s}`]);
    }
  }
  for (const layer of ["conv", "transposed"]) {
    if (arms.includes(layer) && arms.includes(`${layer} · swapped init`)) {
      out.push([`${layer}: swapped − default init`, layer, `${layer} · swapped init`]);
    }
  }
  return out;
}

/**
 * Paired differences of final accuracy across seeds (same seed = same data order), with 95 %
 * intervals and verdicts against `margin`, as markdown.
 *
 * @example
 * ```ts
 * await showMarkdown(pairedDifferences(runs, 0.01));
 * ```
 */
export function pairedDifferences(runs: SeedRun[], margin?: number): string {
  if (runs.length < 2) {
    return `Paired differences need at least two seeds; this sweep has ${runs.length}.`;
  }
  const rows = comparisons(armNames(runs)).map(([label, a, b]) =>
    differenceRow(
      label,
      pairedDifference(finalAccuracies(runs, a), finalAccuracies(runs, b)),
      margin,
    )
  );
  if (rows.length === 0) return "No pair of arms to compare.";
  return [
    ...chanceNote(runs),
    markdownTable(["difference (final accuracy)", "mean", "95% interval", "verdict"], rows),
    "",
    `Paired t over ${runs.length} seeds. ` +
    (margin
      ? `Equivalence margin ±${(100 * margin).toFixed(1)} pp.`
      : "No equivalence margin set, so no difference can be called equivalent."),
  ].join("\n");
}

/**
 * The layer × initialisation design as markdown: the 2×2 table of final accuracy (rows: the layer
 * type in blocks and transitions; columns: whose default initialisation they got), the two main
 * effects and the interaction with 95 % intervals, and what they say about the article's
 * question. Needs the four arms conv, transposed, and both with swapped init, on ≥ 2 seeds.
 *
 * @example
 * ```ts
 * await showMarkdown(layerInitDesign(runs, 0.01));
 * ```
 */
export function layerInitDesign(runs: SeedRun[], margin?: number): string {
  const arms = armNames(runs);
  const need = ["conv", "transposed", "conv · swapped init", "transposed · swapped init"];
  const missing = need.filter((a) => !arms.includes(a));
  if (missing.length > 0 || runs.length < 2) {
    return `The layer × init design needs the arms ${need.join(", ")} on at least two seeds ` +
      `(missing: ${missing.join(", ") || "seeds"}). Sweep notebook 02 with ` +
      "`--grid init=default,swapped` and several seeds.";
  }
  const acc = (a: string) => finalAccuracies(runs, a);
  // A = layer (0 Conv2d, 1 ConvTranspose2d); B = init (0 Conv2d's default, 1 ConvTranspose2d's).
  const y = {
    a0b0: acc("conv"),
    a0b1: acc("conv · swapped init"),
    a1b0: acc("transposed · swapped init"),
    a1b1: acc("transposed"),
  };
  const cell = (v: number[]) => {
    const s = meanStd(v);
    return `${pct(s.mean)} ± ${pct(s.std)}`;
  };
  const e = twoByTwoEffects(y);
  const table = markdownTable(
    ["layers in blocks and transitions", "Conv2d's default init", "ConvTranspose2d's default init"],
    [
      ["Conv2d", cell(y.a0b0), cell(y.a0b1)],
      ["ConvTranspose2d", cell(y.a1b0), cell(y.a1b1)],
    ],
  );
  const effects = markdownTable(["effect on final accuracy", "mean", "95% interval", "verdict"], [
    differenceRow("layer: ConvTranspose2d − Conv2d (averaged over init)", e.a, margin),
    differenceRow("init: ConvTranspose2d's − Conv2d's (averaged over layer)", e.b, margin),
    differenceRow("interaction (layer effect under T-init − under C-init)", e.interaction, margin),
  ]);
  return [
    ...chanceNote(runs),
    table,
    "",
    `Mean ± std over ${runs.length} seeds; the article compares the diagonal (Conv2d with its ` +
    "own init against ConvTranspose2d with its own).",
    "",
    effects,
    "",
    designConclusion(e.a, e.b, margin),
  ].join("\n");
}

/**
 * A warning when every arm's mean final accuracy is within two binomial standard errors of
 * chance: such runs are too short for their differences to mean anything about the networks.
 */
function chanceNote(runs: SeedRun[]): string[] {
  const r = runs[0].results;
  const chance = 1 / r.classNames.length;
  const limit = chance + 2 * proportionStandardError(chance, r.testSize);
  const means = armNames(runs).map((a) => meanStd(finalAccuracies(runs, a)).mean);
  if (means.some((m) => m > limit)) return [];
  return [
    `**Every arm is at chance** (${pct(chance)}; two standard errors above it is ${
      pct(limit)
    } on ` +
    `${r.testSize} test images): these runs are too short to compare the networks, whatever the ` +
    "table says. Train on more images or for more epochs.",
    "",
  ];
}

/** What the two main effects say about the article's question. */
function designConclusion(
  layer: DifferenceEstimate,
  init: DifferenceEstimate,
  margin?: number,
): string {
  const layerV = classifyDifference(layer, margin), initV = classifyDifference(init, margin);
  const say = (d: DifferenceEstimate) => `${pp(d.mean)} pp, 95% interval ${interval(d.ci95)}`;
  const within = `±${(100 * (margin ?? 0)).toFixed(1)} pp`;
  const unestimable = [["layer type", layerV], ["initialisation", initV]] as const;
  const none = unestimable.filter(([, v]) => v.kind === "cannot estimate");
  if (none.length > 0) {
    return `**No verdict**: the effect of ${
      none.map(([name, v]) => `the ${name} (${pp(v.estimate!.mean)} pp)`).join(" and of ")
    } is the same on every seed, so ${
      none.length > 1 ? "their" : "its"
    } uncertainty cannot be estimated and it is shown neither to differ from 0 nor to be ` +
      `equivalent to 0. ` +
      unestimable.filter(([, v]) => v.kind !== "cannot estimate")
        .map(([name, v]) => `The ${name}'s effect: ${verdictWords(v)}. `).join("") +
      "More seeds, or runs long enough to move the accuracies apart, give intervals.";
  }
  const layerSame = layerV.kind === "equivalent";
  if (initV.kind === "differs" && layerV.kind !== "differs") {
    return `**Accuracy follows the init column, not the layer row**: initialisation changes it ` +
      `by ${say(init)}, ` +
      (layerSame
        ? `while the layer type's effect is equivalent to zero within ${within}. What ` +
          `separates the article's two networks is PyTorch's initialisation.`
        : `while the layer type's effect (${say(layer)}) is not significant — but not shown to ` +
          `be zero either (inconclusive at this size).`);
  }
  if (layerV.kind === "differs") {
    return `**The layer type itself changes accuracy** (${say(layer)}), beyond initialisation ` +
      `(init effect ${say(init)}).`;
  }
  return `**Inconclusive**: neither the layer type (${say(layer)}) nor initialisation ` +
    `(${say(init)}) has an effect distinguishable from 0 with ${
      layer.df + 1
    } seeds; this sweep could detect effects of about ${
      (100 * Math.max(layer.detectable, init.detectable)).toFixed(1)
    } pp or more.` +
    (layerSame ? ` The layer effect is, however, equivalent to zero within ${within}.` : "");
}

/** One seed's results of one done run of a sweep, with the run's grid values. */
export interface SweepRunResult {
  /** The run's folder name under `runs/`. */
  id: string;
  /** Its HTML report, relative to the sweep folder. */
  report: string;
  /** Its values of the grid's condition axes (every grid axis but `seed`/`seeds`), typed. */
  values: Record<string, unknown>;
  /** The seed. */
  seed: number;
  /** What the run wrote to `results.json` for this seed. */
  results: RunResults;
}

/** A sweep as notebook 03 shows it (made by `lib/sweep`'s `readSweepSummary`). */
export interface SweepSummary {
  /** The runs table's content; unset when no sweep was given. */
  overview?: SweepOverview;
  /** The done runs' results merged per seed; empty when there are none. */
  runs: SeedRun[];
  /** The grid's condition axes (every axis but `seed`/`seeds`), in grid order. */
  axes?: string[];
  /** Every done run's results, run by run and seed by seed, unmerged (what the explorer shows). */
  results?: SweepRunResult[];
  /** Why there is nothing to compare, shown instead of every view while `runs` is empty. */
  missing: string;
}

/**
 * Shows the runs table of a sweep, or why there is none.
 *
 * @example
 * ```ts
 * await showSweepRuns(await readSweepSummary("sweeps/medium"));
 * ```
 */
export async function showSweepRuns(summary: SweepSummary): Promise<void> {
  await showMarkdown(summary.overview ? sweepRunsTable(summary.overview) : summary.missing);
}

/**
 * Shows each view of the sweep's merged runs in turn (a figure, or markdown), or, when no run has
 * results yet, says why once instead.
 *
 * @example
 * ```ts
 * await showSweep(summary, lossFigure, accuracyFigure);
 * await showSweep(summary, (runs) => pairedDifferences(runs, 0.01));
 * ```
 */
export async function showSweep(
  summary: SweepSummary,
  ...views: ((runs: SeedRun[]) => Figure | string)[]
): Promise<void> {
  if (summary.runs.length === 0) return await showMarkdown(summary.missing);
  for (const view of views) {
    const shown = view(summary.runs);
    await (typeof shown === "string" ? showMarkdown(shown) : show(shown));
  }
}
