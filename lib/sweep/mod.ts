/**
 * Sweeps: a notebook run over a grid of parameters into one folder (`sweep.json` and one folder
 * per run), resumable, on this machine (`--jobs N`) or as a Slurm job array (`--slurm`); and
 * reading a sweep's results back for the summary notebook (`notebooks/03_sweep.ipynb`).
 *
 * This room sits above `lib/notebook` (it runs notebooks); nothing below imports it. The command
 * line (`deno task sweep`) is `cli.ts`, which no library file imports.
 *
 * @example
 * ```ts
 * import { readManifest } from "./mod.ts";
 * const m = await readManifest("sweeps/a");
 * if (m) console.log(m.runs.length);
 * ```
 * @module
 */
export * from "./grid.ts";
export * from "./manifest.ts";
export * from "./lock.ts";
export * from "./execute.ts";
export * from "./local.ts";
export * from "./slurm.ts";
export * from "./results.ts";
