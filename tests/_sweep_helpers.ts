/**
 * Helpers for the sweep tests: running `lib/sweep/cli.ts` as a subprocess, reading a sweep's
 * manifest and per-run files.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { SweepManifest } from "../lib/sweep/manifest.ts";
import { FIXTURES } from "./_notebook_helpers.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** The sweep fixture notebook (parameters layer, init, seed, sleepMs, failSeed, runDir). */
export const SWEEP_FIXTURE: string = `${FIXTURES}sweep.ipynb`;

/** Output of a finished command. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts `deno run -A lib/sweep/cli.ts <args>` in the repository root. */
export function startSweep(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/sweep/cli.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Waits for a started sweep and collects its output. */
export async function finish(child: Deno.ChildProcess): Promise<Ran> {
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs the sweep command line to its end. */
export function sweep(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return finish(startSweep(args, env));
}

/** Reads `sweep.json`. */
export async function manifest(folder: string): Promise<SweepManifest> {
  return JSON.parse(await Deno.readTextFile(`${folder}/sweep.json`));
}

/** Lines of a run's `results/executions.txt` (one per completed execution of the fixture). */
export async function executions(folder: string, id: string): Promise<string[]> {
  const text = await Deno.readTextFile(`${folder}/runs/${id}/results/executions.txt`).catch(
    () => "",
  );
  return text.split("\n").filter(Boolean);
}

/** The real 2×2 sweep of notebook 02 the tests share: one folder and how its command ended. */
export interface Notebook02Sweep {
  /** The sweep folder (`sweep.json`, `runs/`, `03_sweep.ipynb`, `03_sweep.html`). */
  out: string;
  /** The sweep command's exit code and output. */
  ran: Ran;
}

let notebook02Sweep: Promise<Notebook02Sweep> | undefined;

/**
 * Runs, once per test module, a real 2×2 sweep of notebook 02: init default/swapped × seeds [0]
 * and [1], 16 synthetic images, 2 epochs of batches of 8, no control arm, 2 jobs. Every later call
 * gets the same folder (it takes about a minute), which is removed when the test process unloads.
 */
export function sweepNotebook02(): Promise<Notebook02Sweep> {
  notebook02Sweep ??= (async () => {
    const tmp = await Deno.makeTempDir({ prefix: "sweep-02-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
    const out = `${tmp}/s`;
    const ran = await sweep([
      "notebooks/02_train.ipynb",
      ...["--grid", "init=default,swapped", "--grid", "seeds=[0],[1]"],
      ...["dataset=synthetic", "trainSize=16", "testSize=16", "epochs=2", "batchSize=8"]
        .flatMap((p) => ["-p", p]),
      ...["-p", "control=false", "--out", out, "--jobs", "2"],
    ]);
    return { out, ran };
  })();
  return notebook02Sweep;
}
