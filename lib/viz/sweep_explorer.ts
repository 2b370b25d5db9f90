/**
 * A sweep you can explore: every done run's curves, held once as JSON in one `text/html` output,
 * with controls (the arm, each grid parameter, the seed) that pick which runs the charts overlay,
 * a table of their final metrics, and a "compare" view of two settings side by side with the
 * paired difference of final test accuracy across seeds and its 95 % interval.
 *
 * The statistics are computed here, in TypeScript, with lib/train/stats.ts's
 * `pairedDifference` and the sweep's verdicts ({@linkcode verdict}), for every ordered pair of
 * settings, and embedded: the page only looks them up, so there is one implementation.
 *
 * The page script draws with the page's plotly.js (`window.plotlyReady` or `window.Plotly`): in a
 * report the one the report embeds once for its figures. In a notebook,
 * {@linkcode showSweepExplorer} shows an output before the explorer that brings the kernel's
 * compressed partial plotly.js where the page has none (VS Code and JupyterLab with plotly's
 * extension draw figures with a plotly.js of their own); the report shows that output as an empty
 * image, so it still holds one copy. Where scripts do not run (an untrusted notebook), the
 * explorer says so.
 *
 * @example
 * ```ts
 * import { showSweepExplorer } from "./sweep_explorer.ts";
 * import { readSweepSummary } from "../sweep/results.ts";
 * await showSweepExplorer(await readSweepSummary("sweeps/medium"), { margin: 0.01 });
 * ```
 * @module
 */
import type { RunResults } from "../train/trainer.ts";
import { pairedDifference } from "../train/stats.ts";
import { showMarkdown } from "./markdown.ts";
import { inJupyter, type MimeBundle } from "./plotly.ts";
import { type SweepRunResult, type SweepSummary, verdict } from "./sweep_views.ts";
import { pp, ppInterval } from "./_percent.ts";
import { EXPLORER_CSS, EXPLORER_SCRIPT } from "./_explorer_page.ts";
import { plotlyLoaderBundle } from "./_plotly_loader.ts";
import { REPORT_OUTPUT_MIME, type ReportOutputHints } from "../util/report_facts.ts";

/** One control of the explorer: a name and the values it can pick, in order. */
export interface ExplorerControl {
  /** `arm`, a grid parameter's name, or `seed`. */
  name: string;
  /** Its values as shown (strings as they are, other values as JSON). */
  values: string[];
}

/** One setting: an arm with one value of every grid parameter (all but the seed). */
export interface ExplorerSetting {
  /** E.g. `conv · init=swapped`. */
  label: string;
  /** Index of its value in each control but the last (`seed`), in control order. */
  values: number[];
}

/** One arm of one run on one seed: its curves. */
export interface ExplorerRun {
  /** The run's folder name (`run-003`). */
  run: string;
  /** Its HTML report, relative to the sweep folder. */
  report: string;
  /** The seed. */
  seed: number;
  /** Index into {@linkcode ExplorerData.settings}. */
  setting: number;
  /** Per-epoch curves, one value per completed epoch; the last is the final metric. */
  epochs: { trainLoss: number[]; testLoss: number[]; testAccuracy: number[]; lr: number[] };
  /** Training loss per step (means of `every` consecutive steps), at `x` in epochs. */
  steps: { every: number; x: number[]; loss: number[] };
}

/** The paired difference of final test accuracy `b − a` over the seeds both settings have. */
export interface ExplorerPair {
  /** Setting index of the first (subtracted) setting. */
  a: number;
  /** Setting index of the second. */
  b: number;
  /** The seeds paired, ascending. */
  seeds: number[];
  /** Mean difference. */
  mean: number;
  /** Its 95 % interval. */
  ci95: [number, number];
  /** `+1.2 pp, 95% interval −0.4 to +2.8 pp` */
  text: string;
  /** What the difference supports against the margin, in the sweep's words. */
  verdict: string;
}

/** Everything the explorer page holds, embedded once as JSON. */
export interface ExplorerData {
  /** Heading line. */
  title: string;
  /** The equivalence margin of the verdicts (absent: none). */
  margin?: number;
  /** The controls: `arm`, the grid parameters, `seed` (last). */
  controls: ExplorerControl[];
  /** Every setting present. */
  settings: ExplorerSetting[];
  /** Every arm of every done run on every seed, once. */
  runs: ExplorerRun[];
  /** Every ordered pair of settings with at least two seeds in common. */
  pairs: ExplorerPair[];
}

/** Options of {@linkcode explorerData} and the functions that show it. */
export interface ExplorerOptions {
  /** Equivalence margin of the verdicts (as notebook 03's `margin`). */
  margin?: number;
  /** Most step-loss points kept per arm; longer runs are averaged in buckets (default 400). */
  maxStepPoints?: number;
}

/** Significant digits kept of every number (the curves are read by eye, stats use full ones). */
const DIGITS = 6;
const round = (v: number) => Number.isFinite(v) ? Number(v.toPrecision(DIGITS)) : v;

function shown(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * The data the explorer embeds (see the module doc), from a sweep's unmerged results
 * (`summary.results`, `summary.axes`). Settings and control values keep their order of first
 * appearance (grid order); seeds ascend. When two runs hold the same setting and seed, both are
 * shown, and the pairs use the first.
 *
 * @example
 * ```ts
 * const data = explorerData(await readSweepSummary("sweeps/medium"), { margin: 0.01 });
 * data.runs.length; // done runs × seeds × arms
 * ```
 */
export function explorerData(summary: SweepSummary, options: ExplorerOptions = {}): ExplorerData {
  const results = summary.results ?? [];
  const axes = summary.axes ?? [];
  const arms: string[] = [];
  const axisValues = axes.map(() => [] as string[]);
  const seeds = [...new Set(results.map((r) => r.seed))].sort((a, b) => a - b);
  const settings: ExplorerSetting[] = [];
  const settingIndex = new Map<string, number>();
  const runs: ExplorerRun[] = [];
  const finals: number[] = []; // full precision, for the pairs
  const indexOf = (list: string[], v: string) => {
    if (!list.includes(v)) list.push(v);
    return list.indexOf(v);
  };
  for (const r of results) {
    for (const arm of r.results.arms) {
      const values = [
        indexOf(arms, arm.name),
        ...axes.map((a, i) => indexOf(axisValues[i], shown(r.values[a]))),
      ];
      const key = JSON.stringify(values);
      let setting = settingIndex.get(key);
      if (setting === undefined) {
        setting = settings.length;
        settingIndex.set(key, setting);
        settings.push({
          label: [arm.name, ...axes.map((a) => `${a}=${shown(r.values[a])}`)].join(" · "),
          values,
        });
      }
      runs.push(explorerRun(r, arm, setting, options.maxStepPoints ?? 400));
      finals.push(arm.epochs[arm.epochs.length - 1]?.testAccuracy ?? NaN);
    }
  }
  return {
    title: title(summary, results),
    ...(options.margin ? { margin: options.margin } : {}),
    controls: [
      { name: "arm", values: arms },
      ...axes.map((name, i) => ({ name, values: axisValues[i] })),
      { name: "seed", values: seeds.map(String) },
    ],
    settings,
    runs,
    pairs: pairs(settings.length, runs, finals, options.margin),
  };
}

function title(summary: SweepSummary, results: SweepRunResult[]): string {
  const notebook = summary.overview?.notebook.replace(/^.*\//, "") ?? "a notebook";
  const ids = new Set(results.map((r) => r.id)).size;
  const seeds = new Set(results.map((r) => r.seed)).size;
  const dataset = results[0]?.results.dataset;
  return `${ids} done run${ids === 1 ? "" : "s"} of ${notebook}, ${seeds} seed${
    seeds === 1 ? "" : "s"
  }${dataset ? ` (${dataset})` : ""}`;
}

function explorerRun(
  r: SweepRunResult,
  arm: RunResults["arms"][number],
  setting: number,
  maxStepPoints: number,
): ExplorerRun {
  const epochs = arm.epochs;
  const perEpoch = new Map<number, number>();
  for (const [e, s] of arm.steps) perEpoch.set(e, Math.max(perEpoch.get(e) ?? 0, s));
  const every = Math.max(1, Math.ceil(arm.steps.length / Math.max(1, maxStepPoints)));
  const x: number[] = [], loss: number[] = [];
  for (let i = 0; i < arm.steps.length; i += every) {
    const bucket = arm.steps.slice(i, i + every);
    const [e, s] = bucket[bucket.length - 1];
    x.push(Number((e - 1 + s / perEpoch.get(e)!).toFixed(4)));
    loss.push(round(bucket.reduce((sum, v) => sum + v[2], 0) / bucket.length));
  }
  return {
    run: r.id,
    report: r.report,
    seed: r.seed,
    setting,
    epochs: {
      trainLoss: epochs.map((e) => round(e.trainLoss)),
      testLoss: epochs.map((e) => round(e.testLoss)),
      testAccuracy: epochs.map((e) => round(e.testAccuracy)),
      lr: epochs.map((e) => round(e.lr)),
    },
    steps: { every, x, loss },
  };
}

/** Ordered pairs of settings with ≥ 2 common seeds; `finals[i]` is run i's final accuracy. */
function pairs(n: number, runs: ExplorerRun[], finals: number[], margin?: number): ExplorerPair[] {
  // The first run of each setting and seed with a final accuracy.
  const bySetting = Array.from({ length: n }, () => new Map<number, number>());
  runs.forEach((r, i) => {
    if (Number.isFinite(finals[i]) && !bySetting[r.setting].has(r.seed)) {
      bySetting[r.setting].set(r.seed, finals[i]);
    }
  });
  const out: ExplorerPair[] = [];
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      if (a === b) continue;
      const seeds = [...bySetting[a].keys()].filter((s) => bySetting[b].has(s))
        .sort((x, y) => x - y);
      if (seeds.length < 2) continue;
      const d = pairedDifference(
        seeds.map((s) => bySetting[a].get(s)!),
        seeds.map((s) => bySetting[b].get(s)!),
      );
      out.push({
        a,
        b,
        seeds,
        mean: round(d.mean),
        ci95: [round(d.ci95[0]), round(d.ci95[1])],
        text: `${pp(d.mean)} pp, 95% interval ${ppInterval(d.ci95)}`,
        verdict: verdict(d, margin),
      });
    }
  }
  return out;
}

let explorerCounter = 0;

/**
 * The explorer as a Jupyter MIME bundle: `text/html` (the page part: a container, the data as
 * JSON, styles and a small script) and `text/plain`. No plotly figure MIME type: reports and
 * frontends then show the HTML, controls included.
 *
 * @example
 * ```ts
 * const bundle = sweepExplorerBundle(summary, { margin: 0.01 });
 * await Deno.jupyter.display(bundle, { raw: true });
 * ```
 */
export function sweepExplorerBundle(
  summary: SweepSummary,
  options: ExplorerOptions = {},
): MimeBundle {
  const data = explorerData(summary, options);
  const id = `sweep-explorer-${Date.now().toString(36)}-${(explorerCounter++).toString(36)}`;
  const html = [
    `<div id="${id}" class="sweep-explorer">`,
    `<style>${EXPLORER_CSS}</style>`,
    `<script type="application/json" class="sx-data">${
      // `<` as \u003c: no `</script>` or `<!--` can end or confuse the element; still JSON.
      JSON.stringify(data).replaceAll("<", "\\u003c")}</script>`,
    `<p class="sx-status">The explorer draws with JavaScript, which does not run here: trust ` +
    `the notebook (Jupyter runs scripts in trusted notebooks' outputs only), or open the ` +
    `sweep's HTML report (03_sweep.html).</p>`,
    `</div>`,
    `<script>${EXPLORER_SCRIPT}(${JSON.stringify(id)});</script>`,
  ].join("\n");
  return {
    "text/html": html,
    // The report embeds plotly.js for it even when no figure comes before it.
    [REPORT_OUTPUT_MIME]: { plotly: ["scatter"] } satisfies ReportOutputHints,
    "text/plain": `<sweep explorer: ${data.title}; ${data.settings.length} settings, ${
      data.controls.map((c) => `${c.name} (${c.values.length})`).join(", ")
    }>`,
  };
}

/**
 * The outputs {@linkcode showSweepExplorer} shows, in order: plotly.js for a notebook page that has
 * none (left out of the report, which embeds its own single plotly.js), then the explorer
 * ({@linkcode sweepExplorerBundle}).
 *
 * @example
 * ```ts
 * const [plotly, explorer] = sweepExplorerOutputs(summary, { margin: 0.01 });
 * for (const bundle of [plotly, explorer]) await Deno.jupyter.display(bundle, { raw: true });
 * ```
 */
export function sweepExplorerOutputs(
  summary: SweepSummary,
  options: ExplorerOptions = {},
): MimeBundle[] {
  return [plotlyLoaderBundle(), sweepExplorerBundle(summary, options)];
}

/**
 * Shows the explorer in the current notebook cell ({@linkcode sweepExplorerOutputs}), or the
 * reason there is nothing to explore (`summary.missing`). Outside Jupyter it prints the
 * explorer's text/plain line.
 *
 * @example
 * ```ts
 * await showSweepExplorer(await readSweepSummary("sweeps/medium"), { margin: 0.01 });
 * ```
 */
export async function showSweepExplorer(
  summary: SweepSummary,
  options: ExplorerOptions = {},
): Promise<void> {
  if (!summary.results?.length) return await showMarkdown(summary.missing);
  if (!inJupyter()) return console.log(sweepExplorerBundle(summary, options)["text/plain"]);
  for (const bundle of sweepExplorerOutputs(summary, options)) {
    await Deno.jupyter.display(bundle, { raw: true });
  }
}
