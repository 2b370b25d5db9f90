/**
 * The sweep folder and its manifest, `sweep.json`: which notebook, which grid and fixed
 * parameters, and every run with its parameters, state, timings and log. Each run has its own
 * folder `runs/<id>/` holding the executed notebook, its HTML report, the notebook's `runDir`
 * (`runs/<id>/results/`), the log and `status.json`. `status.json` is written by whoever executes
 * the run (this machine or a Slurm task on another node), atomically; the manifest is rewritten
 * from those files, atomically too, so a reader never sees half a file.
 *
 * @example
 * ```ts
 * import { openSweep, planSweep } from "./manifest.ts";
 * const plan = planSweep({ notebook: "nb.ipynb", axes, fixed: [], runs: params });
 * const manifest = await openSweep("sweeps/a", plan); // new, or the same sweep resumed
 * ```
 * @module
 */
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { notebookStem } from "../notebook/nbformat.ts";
import type { GridAxis } from "./grid.ts";

/** State of one run: not started, started and not ended, ended with exit code 0, ended otherwise. */
export type RunState = "pending" | "running" | "done" | "failed";

/** What the executor of a run writes to `runs/<id>/status.json`. */
export interface RunStatus {
  /** "running" while it runs; "done" (exit code 0) or "failed" after. */
  state: "running" | "done" | "failed";
  /** When this attempt started (ISO 8601). */
  started: string;
  /** When it ended. */
  ended?: string;
  /** Wall-clock seconds of the attempt. */
  seconds?: number;
  /** Exit code of `deno task run` (130/143 when interrupted), when it ended. */
  exitCode?: number;
  /** Host that ran it. */
  host: string;
  /** Process id of the `deno task run` process. */
  pid?: number;
  /** Attempt number, 1 for the first. */
  attempt: number;
  /** Slurm job and array task, when run by Slurm. */
  slurm?: { jobId: string; taskId: number };
}

/** One run of the sweep, as the manifest records it. */
export interface SweepRun {
  /** Position in the grid's expansion (the Slurm array task id). */
  index: number;
  /** Folder name under `runs/`: `run-000`, `run-001`… */
  id: string;
  /** All parameters of the run (fixed and grid), typed. */
  parameters: Record<string, unknown>;
  /** Current state. */
  state: RunState;
  /** The last attempt's status file, when there is one. */
  status?: RunStatus;
  /** The run's log, relative to the sweep folder. */
  log: string;
  /** The executed notebook, relative to the sweep folder. */
  notebook: string;
  /** The HTML report, relative to the sweep folder. */
  report: string;
}

/** A Slurm job array submitted for the sweep. */
export interface SlurmSubmission {
  /** Slurm's job id of the array. */
  jobId: string;
  /** Run indexes it covers (its array task ids). */
  tasks: number[];
  /** When it was submitted. */
  submitted: string;
}

/** The content of `sweep.json`. */
export interface SweepManifest {
  /** Format version. */
  version: 1;
  /** The notebook, as an absolute path. */
  notebook: string;
  /** The grid, axis by axis. */
  grid: GridAxis[];
  /** Fixed `-p name=value` texts shared by every run. */
  fixed: string[];
  /** When the sweep folder was created. */
  created: string;
  /** When the manifest was last written. */
  updated: string;
  /** Every run, in grid order. */
  runs: SweepRun[];
  /** Slurm job arrays submitted for it, oldest first. */
  slurm?: SlurmSubmission[];
}

/** The sweep folder does not fit the command (another grid or notebook), or is unreadable. */
export class SweepFolderError extends Error {
  /**
   * @example
   * ```ts
   * throw new SweepFolderError("sweeps/a holds another sweep");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "SweepFolderError";
  }
}

/** Name of the manifest file in a sweep folder. */
export const MANIFEST = "sweep.json";

/**
 * Paths of a run's files, absolute.
 *
 * @example
 * ```ts
 * runPaths("/s", "run-000", "02_train").runDir; // "/s/runs/run-000/results"
 * ```
 */
export function runPaths(folder: string, id: string, notebookName: string): {
  dir: string;
  runDir: string;
  log: string;
  status: string;
  notebook: string;
  report: string;
} {
  const dir = join(resolve(folder), "runs", id);
  return {
    dir,
    runDir: join(dir, "results"),
    log: join(dir, "run.log"),
    status: join(dir, "status.json"),
    notebook: join(dir, `${notebookName}.ipynb`),
    report: join(dir, `${notebookName}.html`),
  };
}

/** The notebook's file name without `.ipynb` (or `.ts`, a percent-format notebook). */
export function notebookName(path: string): string {
  return notebookStem(path);
}

/**
 * A new manifest for a sweep (not yet written): one pending run per parameter set.
 *
 * @example
 * ```ts
 * planSweep({ notebook: "nb.ipynb", axes: [{ name: "a", values: ["1"] }], fixed: [], runs: [{ a: 1 }] });
 * ```
 */
export function planSweep(options: {
  notebook: string;
  axes: GridAxis[];
  fixed: string[];
  runs: Record<string, unknown>[];
}): SweepManifest {
  const name = notebookName(options.notebook);
  const now = new Date().toISOString();
  return {
    version: 1,
    notebook: resolve(options.notebook),
    grid: options.axes,
    fixed: options.fixed,
    created: now,
    updated: now,
    runs: options.runs.map((parameters, index) => {
      const id = `run-${String(index).padStart(3, "0")}`;
      return {
        index,
        id,
        parameters,
        state: "pending",
        log: `runs/${id}/run.log`,
        notebook: `runs/${id}/${name}.ipynb`,
        report: `runs/${id}/${name}.html`,
      };
    }),
  };
}

/**
 * Reads `sweep.json` from `folder`; `undefined` when there is none. Throws
 * {@linkcode SweepFolderError} when it cannot be read as a manifest.
 *
 * @example
 * ```ts
 * const m = await readManifest("sweeps/a");
 * ```
 */
export async function readManifest(folder: string): Promise<SweepManifest | undefined> {
  const path = join(folder, MANIFEST);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new SweepFolderError(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  let m: SweepManifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new SweepFolderError(`${path} is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (m?.version !== 1 || !Array.isArray(m.runs) || !Array.isArray(m.grid)) {
    throw new SweepFolderError(`${path} is not a sweep manifest (version 1)`);
  }
  return m;
}

/**
 * Writes the manifest atomically (temporary file, then rename).
 *
 * @example
 * ```ts
 * await writeManifest("sweeps/a", manifest);
 * ```
 */
export async function writeManifest(folder: string, m: SweepManifest): Promise<void> {
  // Submission records are only ever added: keep those another writer added since `m` was read
  // (writers hold the folder's lock, see lock.ts; this guards one that does not).
  const disk = await readManifest(folder).catch(() => undefined);
  if (disk?.notebook === m.notebook) {
    for (const s of disk.slurm ?? []) {
      if (!m.slurm?.some((t) => t.jobId === s.jobId)) (m.slurm ??= []).push(s);
    }
    m.slurm?.sort((x, y) => x.submitted.localeCompare(y.submitted));
  }
  m.updated = new Date().toISOString();
  await writeFileAtomic(join(folder, MANIFEST), JSON.stringify(m, null, 1) + "\n");
}

const showGrid = (g: GridAxis[]) => g.map((a) => `--grid ${a.name}=${a.values.join(",")}`);
const showFixed = (f: string[]) => f.map((p) => `-p ${p}`);

/**
 * Opens the sweep folder for `plan`: a new folder gets the plan as its manifest; an existing
 * sweep is resumed (its manifest is returned, refreshed from the run files) when the notebook,
 * grid and fixed parameters are the same, and refused with {@linkcode SweepFolderError} naming
 * what differs otherwise, so that results of two sweeps are never mixed.
 *
 * @example
 * ```ts
 * const manifest = await openSweep("sweeps/a", planSweep({ notebook, axes, fixed, runs }));
 * ```
 */
export async function openSweep(folder: string, plan: SweepManifest): Promise<SweepManifest> {
  const old = await readManifest(folder);
  if (!old) {
    await writeManifest(folder, plan);
    return plan;
  }
  const differences: string[] = [];
  if (old.notebook !== plan.notebook) {
    differences.push(`notebook: ${old.notebook} there, ${plan.notebook} now`);
  }
  const [og, pg] = [showGrid(old.grid), showGrid(plan.grid)];
  if (og.join(" ") !== pg.join(" ")) {
    differences.push(`grid: ${og.join(" ")} there, ${pg.join(" ")} now`);
  }
  const [of, pf] = [showFixed(old.fixed), showFixed(plan.fixed)];
  if (of.join(" ") !== pf.join(" ")) {
    differences.push(
      `fixed parameters: ${of.join(" ") || "none"} there, ${pf.join(" ") || "none"} now`,
    );
  }
  if (differences.length > 0) {
    throw new SweepFolderError(
      `${folder} holds another sweep (${differences.join("; ")}). Results of different sweeps ` +
        `are never mixed: use a new --out folder, or repeat the original command to resume it.`,
    );
  }
  return await refreshManifest(folder, old);
}

/**
 * Reads a run's `status.json`; `undefined` when the run never started.
 *
 * @example
 * ```ts
 * await readRunStatus("sweeps/a", manifest, manifest.runs[0]);
 * ```
 */
export async function readRunStatus(
  folder: string,
  m: SweepManifest,
  run: SweepRun,
): Promise<RunStatus | undefined> {
  const path = runPaths(folder, run.id, notebookName(m.notebook)).status;
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    // Missing: never started. Unreadable (it is written atomically, so damaged by hand): run again.
    return undefined;
  }
}

/**
 * Updates every run's state from its status file and writes the manifest.
 *
 * @example
 * ```ts
 * const m = await refreshManifest("sweeps/a", manifest);
 * m.runs.filter((r) => r.state === "done").length;
 * ```
 */
export async function refreshManifest(folder: string, m: SweepManifest): Promise<SweepManifest> {
  await withStatuses(folder, m);
  await writeManifest(folder, m);
  return m;
}

/**
 * Updates every run's state from its status file, in memory only (for readers such as the
 * summary notebook, which must not write into a sweep that may still be running).
 *
 * @example
 * ```ts
 * await withStatuses("sweeps/a", manifest);
 * ```
 */
export async function withStatuses(folder: string, m: SweepManifest): Promise<SweepManifest> {
  for (const run of m.runs) {
    run.status = await readRunStatus(folder, m, run);
    run.state = run.status?.state ?? "pending";
  }
  return m;
}

/**
 * The grid values of a run, `name=value …`, for progress lines and tables.
 *
 * @example
 * ```ts
 * describeRun(manifest, manifest.runs[0]); // 'init="default" seeds=[0]'
 * ```
 */
export function describeRun(m: SweepManifest, run: SweepRun): string {
  return m.grid.map((a) => `${a.name}=${JSON.stringify(run.parameters[a.name])}`).join(" ");
}
