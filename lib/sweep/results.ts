/**
 * Reading a sweep's training results back: every done run's `results/seed-*\/results.json` (what
 * notebook 02 writes to its `runDir`), and the arms of all runs merged per seed, so that runs of
 * one seed (same data order, same augmentation draws) are compared pairwise.
 *
 * @example
 * ```ts
 * import { loadSweep, seedRuns } from "./results.ts";
 * const sweep = await loadSweep("sweeps/medium");
 * const runs = seedRuns(sweep); // arms "conv", "transposed", "conv · swapped init", …
 * ```
 * @module
 */
import { join } from "node:path";
import type { SeedRun } from "../train/experiment.ts";
import type { RunResults } from "../train/trainer.ts";
import type { SweepOverview, SweepSummary } from "../viz/sweep_views.ts";
import {
  describeRun,
  notebookName,
  readManifest,
  runPaths,
  SweepFolderError,
  type SweepManifest,
  type SweepRun,
  withStatuses,
} from "./manifest.ts";

/** One seed's results of one run. */
export interface SweepResult {
  /** The run. */
  run: SweepRun;
  /** The seed. */
  seed: number;
  /** Its results (as in `results.json`). */
  results: RunResults;
}

/** A sweep read from its folder. */
export interface LoadedSweep {
  /** The folder. */
  folder: string;
  /** Its manifest, states taken from the run files (nothing written). */
  manifest: SweepManifest;
  /** Results of the done runs, run by run and seed by seed. */
  results: SweepResult[];
}

/** Grid axes that are replications rather than conditions. */
const SEED_AXES = ["seed", "seeds"];
/** The grid axis of the initialisation factor. */
const INIT_AXIS = "init";

/**
 * Reads the sweep in `folder` (see the module doc). Only runs that are done contribute results,
 * so an unfinished or failed run never mixes partial numbers into the summary.
 *
 * @example
 * ```ts
 * const { manifest, results } = await loadSweep("sweeps/medium");
 * ```
 */
export async function loadSweep(folder: string): Promise<LoadedSweep> {
  const m = await readManifest(folder);
  if (!m) throw new SweepFolderError(`${folder} is not a sweep folder (no sweep.json)`);
  await withStatuses(folder, m);
  const results: SweepResult[] = [];
  for (const run of m.runs.filter((r) => r.state === "done")) {
    const dir = runPaths(folder, run.id, notebookName(m.notebook)).runDir;
    const seeds = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
    for (const e of seeds.filter((e) => /^seed-\d+$/.test(e.name)).sort(byName)) {
      const text = await Deno.readTextFile(join(dir, e.name, "results.json")).catch(() => "");
      if (!text) continue;
      const r: RunResults = JSON.parse(text);
      results.push({ run, seed: Number(r.config.seed ?? e.name.slice(5)), results: r });
    }
  }
  return { folder, manifest: m, results };
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name, "en", { numeric: true });
}

/**
 * The name of an arm of a run in the merged view: the arm, then " · swapped init" when the run's
 * `init` is not the default, then the run's other non-seed grid values.
 *
 * @example
 * ```ts
 * armLabel(manifest, result, "conv"); // "conv · swapped init"
 * ```
 */
export function armLabel(m: SweepManifest, r: SweepResult, arm: string): string {
  const init = String(r.results.config[INIT_AXIS] ?? r.run.parameters[INIT_AXIS] ?? "default");
  const others = m.grid
    .filter((a) => !SEED_AXES.includes(a.name) && a.name !== INIT_AXIS)
    .map((a) => `${a.name}=${JSON.stringify(r.run.parameters[a.name])}`);
  return [arm, ...(init === "default" ? [] : [`${init} init`]), ...others].join(" · ");
}

/**
 * Every seed's arms from all runs, merged into one `SeedRun` per seed with the arms renamed by
 * {@linkcode armLabel}, so the curves and statistics of notebook 02 apply across the sweep. Only
 * seeds that have every arm are kept (pairs need both sides); seeds in ascending order.
 *
 * @example
 * ```ts
 * seedRuns(await loadSweep("sweeps/medium")).map((s) => s.seed); // [0, 1, 2, 3, 4]
 * ```
 */
export function seedRuns(sweep: LoadedSweep): SeedRun[] {
  const bySeed = new Map<number, SeedRun>();
  for (const r of sweep.results) {
    const arms = r.results.arms.map((a) => ({ ...a, name: armLabel(sweep.manifest, r, a.name) }));
    const seen = bySeed.get(r.seed);
    if (seen) seen.results.arms.push(...arms);
    else bySeed.set(r.seed, { seed: r.seed, results: { ...r.results, arms } });
  }
  const all = [...bySeed.values()].sort((a, b) => a.seed - b.seed);
  const names = new Set(all.flatMap((s) => s.results.arms.map((a) => a.name)));
  const order = [...names];
  return all
    .filter((s) => s.results.arms.length === names.size)
    .map((s) => {
      s.results.arms.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
      return s;
    });
}

/**
 * What the runs table of notebook 03 shows of a sweep: every run with its state, time, grid
 * values, report and log, and how many results over how many seeds were read back.
 *
 * @example
 * ```ts
 * await showMarkdown(sweepRunsTable(sweepOverview(await loadSweep("sweeps/medium"))));
 * ```
 */
export function sweepOverview(sweep: LoadedSweep): SweepOverview {
  const m = sweep.manifest;
  return {
    notebook: m.notebook,
    runs: m.runs.map((r) => ({
      id: r.id,
      state: r.state,
      seconds: r.status?.seconds,
      parameters: describeRun(m, r),
      report: r.report,
      log: r.log,
      exitCode: r.status?.exitCode,
    })),
    results: sweep.results.length,
    seeds: new Set(sweep.results.map((r) => r.seed)).size,
  };
}

/**
 * The sweep in `folder` as notebook 03 shows it: its runs table, its done runs merged per seed,
 * the same results unmerged with each run's grid values (for the explorer), and what to say while
 * there is nothing to compare. An empty `folder` (the notebook's default
 * parameter) reads nothing and says how to make a sweep.
 *
 * @example
 * ```ts
 * const summary = await readSweepSummary("sweeps/medium");
 * summary.runs.length; // seeds with every arm
 * ```
 */
export async function readSweepSummary(folder: string): Promise<SweepSummary> {
  if (!folder) {
    return {
      runs: [],
      missing: "No sweep given: run one (command above), then " +
        "`deno task run notebooks/03_sweep.ipynb -p sweep=<folder>`.",
    };
  }
  const sweep = await loadSweep(folder);
  const axes = sweep.manifest.grid.map((a) => a.name).filter((n) => !SEED_AXES.includes(n));
  return {
    overview: sweepOverview(sweep),
    runs: seedRuns(sweep),
    axes,
    results: sweep.results.map((r) => ({
      id: r.run.id,
      report: r.run.report,
      values: Object.fromEntries(axes.map((a) => [a, r.run.parameters[a]])),
      seed: r.seed,
      results: r.results,
    })),
    missing: sweep.results.length === 0
      ? "No training results in this sweep yet (no done run wrote `results.json`)."
      : `No seed has a done run of every setting yet (${sweep.results.length} done ` +
        `run${
          sweep.results.length === 1 ? "" : "s"
        } wrote \`results.json\`), so there is nothing to compare pairwise; the ` +
        "explorer at the end shows the runs there are.",
  };
}
