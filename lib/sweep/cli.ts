/**
 * Command line of sweeps: a notebook run over a grid of parameters, on this machine or as a Slurm
 * job array.
 *
 * ```sh
 * deno task sweep <notebook.ipynb|.ts> --grid name=v1,v2 [--grid …] [-p name=value …] --out DIR
 *                 [--jobs N | --slurm [--slurm-args "…"] [--wait]] [--no-report]
 * deno task sweep status DIR
 * ```
 *
 * Exit codes: 0 when every run is done (or the array was submitted without `--wait`), 1 when a
 * run failed, 2 for a usage, parameter or sweep-folder error, 130/143 when interrupted.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * await main(["tests/fixtures/sweep.ipynb", "--grid", "seed=0,1", "--out", "/tmp/s", "--jobs", "2"]);
 * ```
 * @module
 */
import { join, resolve } from "node:path";
import { parseCommandLine, UsageError } from "../util/cli_args.ts";
import { NotebookFileError, readNotebook } from "../notebook/nbformat.ts";
import { notebookParameters, ParameterError, splitParameterArg } from "../notebook/parameters.ts";
import { checkSweep, GridError, parseGridArg } from "./grid.ts";
import { executeRun, REPO_ROOT, RUN_DIR_PARAMETER } from "./execute.ts";
import { runLocal } from "./local.ts";
import {
  describeRun,
  openSweep,
  planSweep,
  readManifest,
  refreshManifest,
  SweepFolderError,
  type SweepManifest,
  withStatuses,
} from "./manifest.ts";
import { LOCK_FILE, lockSweep, type SweepLock, SweepLockedError } from "./lock.ts";
import {
  ACTIVE_STATES,
  requireSlurm,
  SlurmMissingError,
  type SlurmStates,
  slurmStates,
  splitArgs,
  submitArray,
} from "./slurm.ts";

/**
 * Usage text.
 *
 * @example
 * ```ts
 * console.log(USAGE);
 * ```
 */
export const USAGE = `Usage:
  deno task sweep <notebook.ipynb|.ts> --grid name=v1,v2 [--grid …] [-p name=value …] --out DIR
                  [--jobs N | --slurm [--slurm-args "…"] [--wait]] [--no-report]
  deno task sweep status DIR

Options:
  --grid name=v1,v2   A parameter and its values (repeatable); the runs are every combination.
                      Values follow -p syntax; commas inside [..] or quotes stay in the value.
  -p name=value       A parameter fixed for every run (repeatable).
  --out DIR           The sweep folder: sweep.json, runs/<id>/ (notebook, report, results, log).
                      Rerunning the same command resumes: done runs are kept.
  --jobs N            Runs at once on this machine (default 1), each on cores/N threads;
                      with --slurm, the most array tasks running at once (%N).
  --slurm             Submit the runs that are not done as one Slurm job array (sbatch).
  --slurm-args "…"    Extra sbatch arguments, e.g. "--partition=cpu --account=lab --time=2:00:00".
  --cpus-per-task N   (--slurm) CPUs and tfjs threads per task (default 1).
  --wait              (--slurm) Wait for the array to end, then write the summary notebook.
  --no-report         Do not run notebooks/03_sweep.ipynb on the sweep at the end.
  -h, --help          Show this help.`;

/** The summary notebook run on the sweep folder at the end. */
export const SUMMARY_NOTEBOOK: string = join(REPO_ROOT, "notebooks", "03_sweep.ipynb");

/** Parsed command line of a sweep. */
export interface SweepArgs {
  command: "sweep" | "status" | "task" | "help";
  notebook?: string;
  folder?: string;
  grid: string[];
  params: string[];
  jobs?: number;
  slurm: boolean;
  slurmArgs: string[];
  cpusPerTask: number;
  wait: boolean;
  report: boolean;
  taskIndex?: number;
}

function positiveInt(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < 1) {
    throw new UsageError(`${flag} expects a positive integer, got "${text}"`);
  }
  return n;
}

/**
 * Parses the command line (without `deno run … cli.ts`).
 *
 * @example
 * ```ts
 * parseSweepArgs(["nb.ipynb", "--grid", "a=1,2", "--out", "s", "--jobs", "2"]).jobs; // 2
 * ```
 */
export function parseSweepArgs(args: string[]): SweepArgs {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      grid: { type: "string", multiple: true },
      param: { type: "string", short: "p", multiple: true },
      out: { type: "string", short: "o" },
      jobs: { type: "string", short: "j" },
      slurm: { type: "boolean" },
      "slurm-args": { type: "string" },
      "cpus-per-task": { type: "string" },
      wait: { type: "boolean" },
      "no-report": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const v = parsed.values;
  const base: SweepArgs = {
    command: "sweep",
    grid: v.grid ?? [],
    params: v.param ?? [],
    jobs: positiveInt("--jobs", v.jobs),
    slurm: v.slurm ?? false,
    slurmArgs: splitArgs(v["slurm-args"] ?? ""),
    cpusPerTask: positiveInt("--cpus-per-task", v["cpus-per-task"]) ?? 1,
    wait: v.wait ?? false,
    report: !v["no-report"],
  };
  const [first, ...rest] = parsed.positionals;
  if (v.help || first === undefined || first === "help") return { ...base, command: "help" };
  if (first === "status" || first === "task") {
    const want = first === "status" ? 1 : 2;
    if (rest.length !== want) {
      throw new UsageError(
        first === "status" ? "status takes one sweep folder" : "task takes a folder and an index",
      );
    }
    return {
      ...base,
      command: first,
      folder: rest[0],
      taskIndex: first === "task" ? Number(rest[1]) : undefined,
    };
  }
  if (rest.length > 0) throw new UsageError(`expected one notebook, got ${[first, ...rest]}`);
  if (!v.out) throw new UsageError("--out DIR is required: the sweep folder");
  if (!v.slurm && (v.wait || v["slurm-args"] !== undefined || v["cpus-per-task"])) {
    throw new UsageError("--wait, --slurm-args and --cpus-per-task go with --slurm");
  }
  for (const p of base.params) splitParameterArg(p);
  return { ...base, notebook: first, folder: v.out };
}

/**
 * A table of the sweep's runs: id, state (with Slurm's where it knows one), seconds, grid values,
 * and each failed run's log.
 *
 * @example
 * ```ts
 * console.log(statusTable(manifest, new Map()));
 * ```
 */
export function statusTable(m: SweepManifest, slurm: SlurmStates): string {
  const rows = m.runs.map((r) => {
    const s = slurm.get(r.index);
    const state = r.state + (s && s.toLowerCase() !== r.state ? ` (slurm: ${s})` : "");
    const secs = r.status?.seconds !== undefined ? `${r.status.seconds.toFixed(1)} s` : "";
    return [r.id, state, secs, describeRun(m, r)];
  });
  const width = (i: number) => Math.max(...rows.map((r) => r[i].length));
  const lines = rows.map((r) => r.map((c, i) => i < 3 ? c.padEnd(width(i)) : c).join("  "));
  const count = (st: string) => m.runs.filter((r) => r.state === st).length;
  const failed = m.runs.filter((r) => r.state === "failed");
  return [
    `${m.notebook}: ${m.runs.length} runs, ${count("done")} done, ${count("failed")} failed, ` +
    `${count("running")} running, ${count("pending")} pending`,
    ...lines.map((l) => "  " + l),
    ...(failed.length
      ? [
        "Failed runs and their logs:",
        ...failed.map((r) => `  ${r.id} (exit ${r.status?.exitCode}): ${r.log}`),
      ]
      : []),
  ].join("\n");
}

async function commandStatus(folder: string): Promise<number> {
  if (!(await readManifest(folder))) {
    throw new SweepFolderError(`${folder} is not a sweep folder (no sweep.json)`);
  }
  // sweep.json is rewritten only under the folder's lock: a sweep holding it (submitting a
  // Slurm array, say) may be writing a newer manifest, which a rewrite from here would undo.
  let lock: SweepLock | undefined;
  let busy: SweepLockedError | undefined;
  try {
    lock = await lockSweep(folder, `deno task sweep status ${folder}`);
  } catch (e) {
    if (!(e instanceof SweepLockedError)) throw e;
    busy = e;
  }
  let fresh: SweepManifest;
  try {
    const m = (await readManifest(folder))!; // again, now that no sweep can write it
    fresh = lock ? await refreshManifest(folder, m) : await withStatuses(folder, m);
  } finally {
    await lock?.release(); // before asking Slurm: a sweep started meanwhile is not refused
  }
  console.log(statusTable(fresh, await slurmStates(fresh)));
  if (busy) {
    const h = busy.holder;
    const who = h ? `process ${h.pid} on ${h.host} (${h.command})` : "another process";
    console.log(`(${join(folder, "sweep.json")} left as it is: ${who} holds the folder)`);
  }
  return 0;
}

async function commandTask(folder: string, index: number): Promise<number> {
  const m = await readManifest(folder);
  if (!m) throw new SweepFolderError(`${folder} is not a sweep folder (no sweep.json)`);
  const run = m.runs[index];
  if (!run) throw new UsageError(`${folder} has no run ${index} (0 to ${m.runs.length - 1})`);
  const jobId = Deno.env.get("SLURM_ARRAY_JOB_ID");
  // scancel and time limits send SIGTERM: pass it on, so the run ends as "failed" in its status.
  let child: Deno.ChildProcess | undefined;
  const forward = () => child?.kill("SIGTERM");
  Deno.addSignalListener("SIGTERM", forward);
  const status = await executeRun(folder, m, run, {
    threads: Number(Deno.env.get("SLURM_CPUS_PER_TASK") ?? 1) || 1,
    slurm: jobId ? { jobId, taskId: index } : undefined,
    onStart: (c) => child = c,
  }).finally(() => Deno.removeSignalListener("SIGTERM", forward));
  console.log(`${run.id}: ${status.state} (exit ${status.exitCode}), log ${run.log}`);
  return status.exitCode ?? 1;
}

async function runSummaryNotebook(folder: string): Promise<boolean> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "run",
      SUMMARY_NOTEBOOK,
      "-p",
      `sweep=${JSON.stringify(resolve(folder))}`,
      "--out",
      folder,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
  }).output();
  return out.success;
}

async function commandSweep(a: SweepArgs, command: string): Promise<number> {
  if (a.slurm) await requireSlurm();
  const folder = a.folder!;
  const nb = await readNotebook(a.notebook!);
  const axes = a.grid.map(parseGridArg);
  const declares = notebookParameters(nb).some((d) => d.name === RUN_DIR_PARAMETER);
  const runs = checkSweep(nb, axes, a.params, declares ? [RUN_DIR_PARAMETER] : []);
  await Deno.mkdir(folder, { recursive: true });
  const lock = await lockSweep(folder, command);
  if (lock.tookOver) {
    const t = lock.tookOver;
    console.log(
      `took over ${join(folder, LOCK_FILE)}: process ${t.pid} on ${t.host} (${t.command}) is gone`,
    );
  }
  // The local engine stops its runs on SIGINT/SIGTERM and returns; elsewhere a signal ends the
  // process here, after releasing the folder.
  const leave = (signal: Deno.Signal) => () => {
    lock.release().finally(() => Deno.exit(signal === "SIGINT" ? 130 : 143));
  };
  const signals = a.slurm
    ? (["SIGINT", "SIGTERM"] as const).map((s) => [s, leave(s)] as const)
    : [];
  for (const [s, listener] of signals) Deno.addSignalListener(s, listener);
  try {
    return await sweepLocked(a, folder, axes, runs);
  } finally {
    for (const [s, listener] of signals) Deno.removeSignalListener(s, listener);
    await lock.release();
  }
}

async function sweepLocked(
  a: SweepArgs,
  folder: string,
  axes: ReturnType<typeof parseGridArg>[],
  runs: Record<string, unknown>[],
): Promise<number> {
  let m = await openSweep(
    folder,
    planSweep({ notebook: a.notebook!, axes, fixed: a.params, runs }),
  );
  if (a.slurm) {
    const slurm = await slurmStates(m);
    const todo = m.runs.filter((r) =>
      r.state !== "done" && !ACTIVE_STATES.includes(slurm.get(r.index) ?? "")
    );
    const active = m.runs.length - todo.length - m.runs.filter((r) => r.state === "done").length;
    console.log(
      `${todo.length} of ${m.runs.length} runs to submit` +
        (active ? ` (${active} still queued or running in Slurm)` : ""),
    );
    if (todo.length > 0) {
      await submitArray(folder, m, todo.map((r) => r.index), {
        maxRunning: a.jobs,
        cpusPerTask: a.cpusPerTask,
        slurmArgs: a.slurmArgs,
        wait: a.wait,
      });
    }
    if (!a.wait) {
      console.log(`follow it with: deno task sweep status ${folder}`);
      return 0;
    }
    m = await refreshManifest(folder, m);
  } else {
    const local = await runLocal(folder, m, { jobs: a.jobs ?? 1 });
    m = local.manifest;
    if (local.stoppedBy) {
      console.log(statusTable(m, new Map()));
      return local.stoppedBy === "SIGINT" ? 130 : 143;
    }
  }
  console.log(statusTable(m, a.slurm ? await slurmStates(m) : new Map()));
  if (a.report) {
    const ok = await runSummaryNotebook(folder);
    console.log(
      ok
        ? `summary: ${join(folder, "03_sweep.html")}`
        : `the summary notebook failed; see ${join(folder, "03_sweep.html")}`,
    );
  }
  return m.runs.every((r) => r.state === "done") ? 0 : 1;
}

/**
 * Runs the command line and returns the exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await main(["status", "sweeps/a"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    const a = parseSweepArgs(args);
    if (a.command === "help") {
      console.log(USAGE);
      return 0;
    }
    if (a.command === "status") return await commandStatus(a.folder!);
    if (a.command === "task") return await commandTask(a.folder!, a.taskIndex!);
    return await commandSweep(a, ["deno task sweep", ...args].join(" "));
  } catch (e) {
    if (e instanceof UsageError || e instanceof NotebookFileError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (
      e instanceof ParameterError || e instanceof GridError || e instanceof SweepFolderError ||
      e instanceof SlurmMissingError || e instanceof SweepLockedError
    ) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
