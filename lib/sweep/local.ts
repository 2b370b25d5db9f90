/**
 * The local engine: runs the sweep's unfinished runs on this machine, `jobs` at a time, each with
 * its share of the cores as tfjs threads (`TCONV_THREADS`), so that the total stays within the
 * cores. SIGINT/SIGTERM stop the runs in progress (they are recorded as failed and rerun by the
 * next invocation) and start no new ones.
 *
 * @example
 * ```ts
 * import { runLocal } from "./local.ts";
 * const { manifest } = await runLocal("sweeps/a", manifest0, { jobs: 2 });
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { executeRun } from "./execute.ts";
import { describeRun, refreshManifest, type SweepManifest, type SweepRun } from "./manifest.ts";

/** tfjs-wasm starts at most 8 threads (see `lib/backend/wasm/_threads.ts`). */
const MAX_THREADS = 8;

/**
 * Threads per run for `jobs` runs at once on `cores` cores: an equal share, at least 1, at most 8.
 *
 * @example
 * ```ts
 * threadsPerRun(2, 16); // 8
 * threadsPerRun(4, 2); // 1 (more runs than cores: one thread each)
 * ```
 */
export function threadsPerRun(jobs: number, cores: number): number {
  return Math.max(1, Math.min(MAX_THREADS, Math.floor(cores / jobs)));
}

/** Options of {@linkcode runLocal}. */
export interface LocalOptions {
  /** Runs at once (≥ 1). */
  jobs: number;
  /** Cores to share (default: `navigator.hardwareConcurrency`). */
  cores?: number;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

/**
 * A run that a live process on this host is executing (a concurrent sweep of the same folder).
 */
function runningHere(run: SweepRun): boolean {
  const s = run.status;
  return s?.state === "running" && s.host === hostname() && s.pid !== undefined &&
    existsSync(`/proc/${s.pid}`);
}

/**
 * Runs every run that is not done (see the module doc) and returns the refreshed manifest, and
 * the signal that stopped it early, if one did.
 * Refuses (throws) when another process on this host is still executing one of them.
 *
 * @example
 * ```ts
 * const { manifest: m } = await runLocal("sweeps/a", manifest, { jobs: 2 });
 * m.runs.every((r) => r.state === "done");
 * ```
 */
export async function runLocal(
  folder: string,
  manifest: SweepManifest,
  options: LocalOptions,
): Promise<{ manifest: SweepManifest; stoppedBy?: Deno.Signal }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const busy = manifest.runs.find(runningHere);
  if (busy) {
    throw new Error(
      `${busy.id} is being run by process ${busy.status!.pid} on this host (another sweep of ` +
        `${folder}?); wait for it or stop it first`,
    );
  }
  const todo = manifest.runs.filter((r) => r.state !== "done");
  const cores = options.cores ?? navigator.hardwareConcurrency ?? 1;
  const threads = threadsPerRun(options.jobs, cores);
  const kept = manifest.runs.length - todo.length;
  log(
    `${todo.length} of ${manifest.runs.length} runs to do${kept ? ` (${kept} done, kept)` : ""}, ` +
      `${options.jobs} at a time, ${threads} thread${threads > 1 ? "s" : ""} each`,
  );
  const children = new Set<Deno.ChildProcess>();
  let stoppedBy: Deno.Signal | undefined;
  const stops = new Map<Deno.Signal, () => void>();
  const stop = (signal: Deno.Signal) => {
    stoppedBy = signal;
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // already ended
      }
    }
  };
  for (const s of ["SIGINT", "SIGTERM"] as const) {
    stops.set(s, () => stop(s));
    Deno.addSignalListener(s, stops.get(s)!);
  }
  let saving = Promise.resolve(manifest);
  const queue = [...todo];
  const worker = async () => {
    while (!stoppedBy && queue.length > 0) {
      const run = queue.shift()!;
      log(`start ${run.id}: ${describeRun(manifest, run)}`);
      let child: Deno.ChildProcess | undefined;
      const status = await executeRun(folder, manifest, run, {
        threads,
        onStart: (c) => children.add(child = c),
      });
      if (child) children.delete(child);
      log(
        `${status.state === "done" ? "done " : "FAILED"} ${run.id} in ${
          status.seconds!.toFixed(1)
        } s${status.state === "done" ? "" : ` (exit ${status.exitCode}; log ${run.log})`}`,
      );
      saving = saving.then(() => refreshManifest(folder, manifest));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.jobs, todo.length) }, worker));
  } finally {
    stops.forEach((listener, s) => Deno.removeSignalListener(s, listener));
  }
  await saving;
  return { manifest: await refreshManifest(folder, manifest), stoppedBy };
}
