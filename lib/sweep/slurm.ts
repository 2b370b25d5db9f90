/**
 * The Slurm engine: the runs that are not done become one job array (`sbatch --array=…%M`); array
 * task `i` runs run `i` of the manifest through `cli.ts task <folder> i` on whichever node Slurm
 * picks, so the sweep folder must be on a filesystem every node sees. Task states come from the
 * run files and, where Slurm answers, from `squeue` (and `sacct` when accounting is on).
 *
 * @example
 * ```ts
 * import { submitArray } from "./slurm.ts";
 * const job = await submitArray("sweeps/a", manifest, [0, 1, 2], { maxRunning: 2, wait: true });
 * ```
 * @module
 */
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { REPO_ROOT } from "./execute.ts";
import {
  notebookName,
  refreshManifest,
  type SlurmSubmission,
  type SweepManifest,
  writeManifest,
} from "./manifest.ts";

/** Slurm's commands are not installed: the message names the Debian package. */
export class SlurmMissingError extends Error {
  /**
   * @example
   * ```ts
   * throw new SlurmMissingError("sbatch");
   * ```
   */
  constructor(command: string) {
    super(
      `--slurm needs Slurm's ${command}, which is not installed here. Install Slurm (Debian: ` +
        `apt-get install slurm-wlm munge) and configure a cluster, or run locally with --jobs N.`,
    );
    this.name = "SlurmMissingError";
  }
}

/** Output of a Slurm command; throws {@linkcode SlurmMissingError} when it is not installed. */
async function slurmCommand(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SlurmMissingError(command);
    throw e;
  }
}

/**
 * Splits `--slurm-args` into arguments like a shell would for simple quoting: whitespace
 * separates, single or double quotes group.
 *
 * @example
 * ```ts
 * splitArgs(`--partition=cpu --time=01:00:00 --comment "two words"`);
 * // ["--partition=cpu", "--time=01:00:00", "--comment", "two words"]
 * ```
 */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|([^\s"']+)/g;
  let current: string | undefined;
  let last = -1;
  for (const m of text.matchAll(re)) {
    const piece = m[1] ?? m[2] ?? m[3];
    // Pieces that touch (--comment="a b") form one argument.
    if (current !== undefined && m.index === last) current += piece;
    else {
      if (current !== undefined) out.push(current);
      current = piece;
    }
    last = m.index! + m[0].length;
  }
  if (current !== undefined) out.push(current);
  return out;
}

/**
 * Slurm's array specification for run indexes: ranges where they are consecutive, and the
 * limit of tasks running at once.
 *
 * @example
 * ```ts
 * arraySpec([0, 1, 2, 3], 2); // "0-3%2"
 * arraySpec([1, 4, 5]); // "1,4-5"
 * ```
 */
export function arraySpec(indexes: number[], maxRunning?: number): string {
  const sorted = [...indexes].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",") + (maxRunning ? `%${maxRunning}` : "");
}

/** Options of {@linkcode submitArray}. */
export interface SubmitOptions {
  /** At most this many tasks at once (`%M`); unlimited when unset. */
  maxRunning?: number;
  /** CPUs per task, also the run's tfjs threads (default 1). */
  cpusPerTask?: number;
  /** Extra `sbatch` arguments (partition, account, time…). */
  slurmArgs?: string[];
  /** Wait for the whole array to end (`sbatch --wait`). */
  wait?: boolean;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

/**
 * The batch script of the sweep's job array: each task runs its run through `cli.ts task`, with
 * the Deno that submitted it, and writes Slurm's own output to `slurm/<job>_<task>.out`.
 */
function batchScript(folder: string, m: SweepManifest): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const cli = join(REPO_ROOT, "lib", "sweep", "cli.ts");
  return [
    "#!/bin/bash",
    `#SBATCH --job-name=sweep-${notebookName(m.notebook)}`,
    `#SBATCH --output=${join(folder, "slurm", "%A_%a.out")}`,
    `cd ${q(REPO_ROOT)}`,
    `exec ${q(Deno.execPath())} run -A ${q(cli)} task ${q(folder)} "$SLURM_ARRAY_TASK_ID"`,
    "",
  ].join("\n");
}

/**
 * Submits the runs `indexes` as one job array and records it in the manifest (`slurm`). With
 * `wait`, returns when every task has ended (the manifest refreshed from the run files).
 *
 * @example
 * ```ts
 * const sub = await submitArray("sweeps/a", manifest, [0, 1], { wait: true, cpusPerTask: 1 });
 * sub.jobId; // "12"
 * ```
 */
export async function submitArray(
  folder: string,
  m: SweepManifest,
  indexes: number[],
  options: SubmitOptions = {},
): Promise<SlurmSubmission> {
  const log = options.log ?? ((line: string) => console.log(line));
  const abs = resolve(folder);
  const script = join(abs, "slurm", "array.sh");
  await writeFileAtomic(script, batchScript(abs, m), { mode: 0o755 });
  const args = [
    "--parsable",
    `--array=${arraySpec(indexes, options.maxRunning)}`,
    `--cpus-per-task=${options.cpusPerTask ?? 1}`,
    ...(options.wait ? ["--wait"] : []),
    ...(options.slurmArgs ?? []),
    script,
  ];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("sbatch", { args, stdout: "piped", stderr: "piped" }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SlurmMissingError("sbatch");
    throw e;
  }
  // sbatch prints the job id at once (also with --wait): record it before waiting.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const jobId = text.trim().split(/[;\s]/)[0];
  const stderr = new Response(child.stderr).text();
  if (!/^\d+$/.test(jobId)) {
    const status = await child.status;
    throw new Error(
      `sbatch ${args.join(" ")} failed (exit ${status.code}): ${(await stderr).trim()}`,
    );
  }
  const submission: SlurmSubmission = {
    jobId,
    tasks: [...indexes].sort((a, b) => a - b),
    submitted: new Date().toISOString(),
  };
  (m.slurm ??= []).push(submission);
  await writeManifest(folder, m);
  log(`submitted Slurm job array ${jobId} (--array=${arraySpec(indexes, options.maxRunning)})`);
  if (options.wait) {
    log(`waiting for job ${jobId} to end…`);
    (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    await child.status;
    await stderr;
    await refreshManifest(folder, m);
  } else {
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.status;
  }
  return submission;
}

/** Slurm's view of the sweep's tasks: run index → state (PENDING, RUNNING, COMPLETED, …). */
export type SlurmStates = Map<number, string>;

/**
 * The Slurm states of the sweep's array tasks: `squeue` for tasks still queued or running, then
 * `sacct` (when accounting is enabled) for ended ones; the latest submission of a run wins.
 * Returns an empty map when Slurm is not installed or does not answer.
 *
 * @example
 * ```ts
 * const states = await slurmStates(manifest);
 * states.get(3); // "RUNNING"
 * ```
 */
export async function slurmStates(m: SweepManifest): Promise<SlurmStates> {
  const states: SlurmStates = new Map();
  const subs = m.slurm ?? [];
  if (subs.length === 0) return states;
  const jobs = subs.map((s) => s.jobId).join(",");
  const latest = new Map<number, string>();
  for (const s of subs) for (const t of s.tasks) latest.set(t, s.jobId);
  const keep = (jobTask: string, state: string) => {
    const match = /^(\d+)_(\d+)$/.exec(jobTask.trim());
    if (!match) return;
    const task = Number(match[2]);
    if (latest.get(task) === match[1] && !states.has(task)) states.set(task, state.trim());
  };
  try {
    // --me rather than -j: squeue refuses the whole list once one job id has left its memory.
    const sq = await slurmCommand("squeue", ["-h", "-r", "--me", "-o", "%i|%T"]);
    if (sq.code === 0) {
      for (const line of sq.stdout.split("\n").filter(Boolean)) keep(...split2(line));
    }
    const sa = await slurmCommand("sacct", ["-n", "-P", "-X", "-j", jobs, "-o", "JobID,State"]);
    if (sa.code === 0) {
      for (const line of sa.stdout.split("\n").filter(Boolean)) keep(...split2(line));
    }
  } catch (e) {
    if (!(e instanceof SlurmMissingError)) throw e;
  }
  return states;
}

function split2(line: string): [string, string] {
  const [a, b = ""] = line.split("|");
  return [a, b];
}

/** Slurm states of a task that has not ended. */
export const ACTIVE_STATES = ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED"];

/**
 * Makes sure `sbatch` is installed; throws {@linkcode SlurmMissingError} naming the package
 * otherwise.
 *
 * @example
 * ```ts
 * await requireSlurm();
 * ```
 */
export async function requireSlurm(): Promise<void> {
  await slurmCommand("sbatch", ["--version"]);
}
