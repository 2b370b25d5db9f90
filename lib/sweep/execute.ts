/**
 * Executes one run of a sweep: `deno task run <notebook> -p … --out runs/<id>` as a subprocess
 * with `TCONV_THREADS` and `TCONV_NATIVE_THREADS` set (its share of the cores, for wasm's pool and
 * oneDNN's alike), its output appended to `runs/<id>/run.log`, and `runs/<id>/status.json`
 * written (atomically) when it starts and when it ends. Both engines use it: the local pool, and
 * each Slurm array task on its node (through `cli.ts task`).
 *
 * @example
 * ```ts
 * import { executeRun } from "./execute.ts";
 * const status = await executeRun("sweeps/a", manifest, manifest.runs[0], { threads: 1 });
 * status.state; // "done" or "failed"
 * ```
 * @module
 */
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { readNotebook } from "../notebook/nbformat.ts";
import { notebookParameters } from "../notebook/parameters.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import {
  notebookName,
  readRunStatus,
  runPaths,
  type RunStatus,
  type SweepManifest,
  type SweepRun,
} from "./manifest.ts";

/** The repository root, where `deno task run` is defined. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Parameter the sweep sets to each run's own results folder when the notebook declares it. */
export const RUN_DIR_PARAMETER = "runDir";

/** Options of {@linkcode executeRun}. */
export interface ExecuteOptions {
  /** Threads of the run: tfjs-wasm's (`TCONV_THREADS`) and oneDNN's (`TCONV_NATIVE_THREADS`). */
  threads: number;
  /** The Slurm job and array task running it, when Slurm does. */
  slurm?: { jobId: string; taskId: number };
  /** Called with the child process once it has started (to stop it on a signal). */
  onStart?: (child: Deno.ChildProcess) => void;
}

/**
 * Whether the notebook declares the parameter the sweep sets to each run's results folder.
 *
 * @example
 * ```ts
 * await takesRunDir("notebooks/02_train.ipynb"); // true
 * ```
 */
export async function takesRunDir(notebook: string): Promise<boolean> {
  return notebookParameters(await readNotebook(notebook)).some((d) => d.name === RUN_DIR_PARAMETER);
}

/**
 * The `deno task run` arguments of a run: the notebook, one `-p name=<JSON>` per parameter (JSON
 * keeps every value's type, strings included), the run's `runDir` when the notebook has one, and
 * `--out` the run's folder.
 *
 * @example
 * ```ts
 * runArgs("/s", manifest, manifest.runs[0], true);
 * // ["task", "run", "/nb.ipynb", "-p", 'init="swapped"', "-p", 'runDir="/s/runs/run-000/results"', "--out", "/s/runs/run-000"]
 * ```
 */
export function runArgs(
  folder: string,
  m: SweepManifest,
  run: SweepRun,
  withRunDir: boolean,
): string[] {
  const paths = runPaths(folder, run.id, notebookName(m.notebook));
  const values = {
    ...run.parameters,
    ...(withRunDir ? { [RUN_DIR_PARAMETER]: paths.runDir } : {}),
  };
  const params = Object.entries(values).flatMap(([k, v]) => ["-p", `${k}=${JSON.stringify(v)}`]);
  return ["task", "run", m.notebook, ...params, "--out", paths.dir];
}

/**
 * Runs one run of the sweep to its end (see the module doc) and returns its final status. The
 * attempt number counts up over reruns; the log keeps every attempt, each under a header line.
 *
 * @example
 * ```ts
 * await executeRun("sweeps/a", manifest, manifest.runs[2], { threads: 1 });
 * ```
 */
export async function executeRun(
  folder: string,
  m: SweepManifest,
  run: SweepRun,
  options: ExecuteOptions,
): Promise<RunStatus> {
  const paths = runPaths(folder, run.id, notebookName(m.notebook));
  await Deno.mkdir(paths.dir, { recursive: true });
  const previous = await readRunStatus(folder, m, run);
  const args = runArgs(folder, m, run, await takesRunDir(m.notebook));
  const started = new Date();
  const status: RunStatus = {
    state: "running",
    started: started.toISOString(),
    host: hostname(),
    attempt: (previous?.attempt ?? 0) + 1,
    ...(options.slurm ? { slurm: options.slurm } : {}),
  };
  const log = await Deno.open(paths.log, { append: true, create: true });
  const err = await Deno.open(paths.log, { append: true, create: true });
  const header = `=== attempt ${status.attempt} at ${status.started} on ${status.host}, ` +
    `TCONV_THREADS=${options.threads} TCONV_NATIVE_THREADS=${options.threads}: ` +
    `deno ${args.join(" ")}\n`;
  await log.write(new TextEncoder().encode(header));
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: REPO_ROOT,
      // Both pools on the run's share: oneDNN's default (every core) would oversubscribe the
      // cores when runs share a machine.
      env: {
        TCONV_THREADS: String(options.threads),
        TCONV_NATIVE_THREADS: String(options.threads),
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    log.close();
    err.close();
    throw e;
  }
  options.onStart?.(child);
  status.pid = child.pid;
  await writeFileAtomic(paths.status, JSON.stringify(status, null, 1) + "\n");
  const [result] = await Promise.all([
    child.status,
    child.stdout.pipeTo(log.writable),
    child.stderr.pipeTo(err.writable),
  ]);
  const ended = new Date();
  const exitCode = result.signal ? 128 + signalNumber(result.signal) : result.code;
  const final: RunStatus = {
    ...status,
    state: exitCode === 0 ? "done" : "failed",
    ended: ended.toISOString(),
    seconds: (ended.getTime() - started.getTime()) / 1000,
    exitCode,
  };
  await writeFileAtomic(paths.status, JSON.stringify(final, null, 1) + "\n");
  return final;
}

function signalNumber(signal: Deno.Signal): number {
  return ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}
