/**
 * What a notebook's results were computed from, and whether a saved report is still up to date
 * (Quarto's `freeze: auto`, with the inputs that matter here). A fingerprint has two halves:
 *
 * - what is known before the run, compared before deciding to skip it: the notebook's source, the
 *   parameters, the code of `lib/` (with `deno.json` and `deno.lock`, which pin the dependencies),
 *   the Deno version and every `TCONV_*` environment variable ({@linkcode fingerprint});
 * - what only the run knows, recorded after it from what the notebook published
 *   ({@linkcode settleFingerprint}): the backend it actually computed on (e.g. `wasm + oneDNN
 *   2.6.3`, 2 threads) and the dataset folder it read, listed after the run, so that data a
 *   notebook creates while it runs is part of its record, not a change next time. A notebook that
 *   publishes no dataset depends on none.
 *
 * `deno task report` skips a notebook whose last successful report has the same first half, whose
 * recorded dataset folder still lists the same, and whose recorded backend is what the current
 * environment would resolve to where that can be predicted (`TCONV_NATIVE=off` against a report
 * made with oneDNN: not the same); `deno task run` never skips.
 *
 * The fingerprint is stored in the executed notebook (`metadata.deno_runner.fingerprint`), so the
 * saved `.ipynb` is the cache record: no second file to get out of step with it.
 *
 * @example
 * ```ts
 * import { cachedRun, fingerprint } from "./cache.ts";
 * const fp = await fingerprint({ notebookPath: "notebooks/01_shapes.ipynb", parameters: {} });
 * const hit = await cachedRun("reports/01_shapes.ipynb", "reports/01_shapes.html", fp, {
 *   notebookDir: "notebooks",
 *   parameters: {},
 * });
 * console.log(hit.hit ? `unchanged since ${hit.computedAt}` : hit.reason);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join, relative, resolve } from "node:path";
import { type BackendRecord, predictBackend } from "../util/backend_rules.ts";

/** Prefix of the environment variables that count as part of a run's inputs. */
export const ENV_PREFIX = "TCONV_";

/** What decides a run's numbers outside its source and parameters, known before it starts. */
export interface RunEnvironment {
  /** `Deno.version.deno` of the runner (the kernel is the same executable). */
  deno: string;
  /** Every `TCONV_*` variable set (and not empty), with its value. */
  env: Record<string, string>;
}

/** The backend a run computed on, as the notebook published it (its report facts). */
export interface RecordedBackend extends BackendRecord {
  /** The WebGPU adapter, for `webgpu`. */
  adapter?: string;
}

/** The dataset folder a run read, listed after the run. */
export interface DatasetRecord {
  /** The folder, relative to the notebook's folder (where its kernel ran). */
  dir: string;
  /** sha256 of the listing: path, size and modification time of every file under `dir`. */
  listing: string;
  /** Files listed. */
  files: number;
}

/** What a run's results depend on. */
export interface RunFingerprint {
  /** sha256 of the notebook file. */
  source: string;
  /** sha256 of the parameters in effect (JSON, keys sorted). */
  parameters: string;
  /** sha256 of every file under `lib/` plus `deno.json` and `deno.lock`. */
  lib: string;
  /** Deno version and `TCONV_*` variables when the run started. */
  environment: RunEnvironment;
  /** After the run: the backend it published; null when it published none; absent before. */
  backend?: RecordedBackend | null;
  /** After the run: the dataset folder it read; null when it read none; absent before. */
  dataset?: DatasetRecord | null;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Options for {@linkcode fingerprint}. */
export interface FingerprintOptions {
  notebookPath: string;
  parameters: Record<string, unknown>;
  /** Code folder (default: this repository's `lib/`). */
  libDir?: string;
  /** Files outside `libDir` that count as code (default: the repository's deno.json, deno.lock). */
  extraFiles?: string[];
  /**
   * Options that change the written report but not the run (e.g. `{ noInput: true }`); hashed
   * with the parameters when any is set, so a report written with other options is not reused.
   */
  reportOptions?: Record<string, unknown>;
  /** The environment (default: {@linkcode currentEnvironment}). */
  environment?: RunEnvironment;
}

/**
 * The Deno version and the `TCONV_*` variables of this process (whose environment a kernel it
 * starts inherits).
 *
 * @example
 * ```ts
 * import { currentEnvironment } from "./cache.ts";
 * currentEnvironment(); // { deno: "2.9.6", env: { TCONV_NATIVE: "off" } }
 * ```
 */
export function currentEnvironment(): RunEnvironment {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    // Empty counts as unset, as everywhere in lib/ that reads these variables.
    if (k.startsWith(ENV_PREFIX) && v !== "") env[k] = v;
  }
  return { deno: Deno.version.deno, env: sortedObject(env) };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch (e) {
      // A folder removed while it is walked is a folder without files.
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory) await walk(path);
      else if (e.isFile) out.push(path);
    }
  };
  await walk(dir);
  return out.sort();
}

function sortedObject<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function sortedJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => v && typeof v === "object" && !Array.isArray(v) ? sortedObject(v) : v,
  );
}

const sha256 = () => createHash("sha256");

/**
 * Lists a dataset folder: sha256 of the relative path, size and modification time of every file
 * under it (not contents: CIFAR-10 is 160 MB and is verified when installed). A file or folder
 * removed between the listing and its `stat` (another process cleaning up) is left out, not an
 * error; a missing folder lists as no files.
 *
 * @example
 * ```ts
 * import { listDataset } from "./cache.ts";
 * const { listing, files } = await listDataset("data");
 * console.log(files, listing.slice(0, 12));
 * ```
 */
export async function listDataset(dir: string): Promise<{ listing: string; files: number }> {
  const data = sha256();
  let files = 0;
  for (const path of await filesUnder(dir)) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw new Error(`could not list ${path} for the report cache: ${e}`);
    }
    files++;
    data.update(`${relative(dir, path)}\0${info.size}\0${info.mtime?.getTime() ?? 0}\n`);
  }
  return { listing: data.digest("hex"), files };
}

/**
 * Computes the half of a run's fingerprint known before it runs: hashes the notebook and every
 * code file, takes the Deno version and the `TCONV_*` variables.
 *
 * @example
 * ```ts
 * import { fingerprint } from "./cache.ts";
 * const fp = await fingerprint({ notebookPath: "notebooks/01_shapes.ipynb", parameters: {} });
 * console.log(fp.lib.slice(0, 12), fp.environment.deno);
 * ```
 */
export async function fingerprint(options: FingerprintOptions): Promise<RunFingerprint> {
  const libDir = options.libDir ?? join(ROOT, "lib");
  const extra = options.extraFiles ?? [join(ROOT, "deno.json"), join(ROOT, "deno.lock")];
  const code = sha256();
  for (const path of [...await filesUnder(libDir), ...extra]) {
    code.update(`${relative(libDir, path)}\0`);
    try {
      code.update(await Deno.readFile(path));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      code.update("(missing)");
    }
    code.update("\0");
  }
  return {
    source: sha256().update(await Deno.readFile(options.notebookPath)).digest("hex"),
    parameters: sha256().update(
      sortedJson(
        options.reportOptions && Object.keys(options.reportOptions).length > 0
          ? { parameters: options.parameters, report: options.reportOptions }
          : options.parameters,
      ),
    ).digest("hex"),
    lib: code.digest("hex"),
    environment: options.environment ?? currentEnvironment(),
  };
}

/** What a finished run published, for {@linkcode settleFingerprint}. */
export interface RunOutcome {
  /** The notebook's folder (its kernel's working directory). */
  notebookDir: string;
  /** The backend the run published, if any. */
  backend?: RecordedBackend;
  /** The dataset folder the run read (absolute, or relative to `notebookDir`), if any. */
  datasetDir?: string;
}

/**
 * Completes a fingerprint after the run with what only the run knows: the backend it published
 * and a listing of the dataset folder it read, taken now (so files the run itself created are
 * part of the record).
 *
 * @example
 * ```ts
 * import { fingerprint, settleFingerprint } from "./cache.ts";
 * const before = await fingerprint({ notebookPath: "notebooks/02_train.ipynb", parameters: {} });
 * const after = await settleFingerprint(before, {
 *   notebookDir: "notebooks",
 *   backend: { name: "wasm + oneDNN 2.6.3", threads: 2, native: "oneDNN 2.6.3" },
 *   datasetDir: "../data",
 * });
 * ```
 */
export async function settleFingerprint(
  fp: RunFingerprint,
  outcome: RunOutcome,
): Promise<RunFingerprint> {
  let dataset: DatasetRecord | null = null;
  if (outcome.datasetDir !== undefined) {
    const dir = resolve(outcome.notebookDir, outcome.datasetDir);
    dataset = {
      dir: relative(resolve(outcome.notebookDir), dir) || ".",
      ...await listDataset(dir),
    };
  }
  return { ...fp, backend: outcome.backend ?? null, dataset };
}

/**
 * One line for the report header, e.g. `source 3f2a9c01d4e5, parameters 44136fa355b3, dataset
 * e3b0c44298fc, lib/ 9b1d5e0a7c21 (sha256); Deno 2.9.6; TCONV_NATIVE=off`.
 *
 * @example
 * ```ts
 * import { describeFingerprint } from "./cache.ts";
 * describeFingerprint({
 *   source: "aa",
 *   parameters: "bb",
 *   lib: "dd",
 *   environment: { deno: "2.9.6", env: {} },
 * });
 * ```
 */
export function describeFingerprint(fp: RunFingerprint): string {
  const s = (h: string) => h.slice(0, 12);
  const dataset = fp.dataset === undefined
    ? "dataset (listed after the run)"
    : fp.dataset === null
    ? "dataset none"
    : `dataset ${s(fp.dataset.listing)}`;
  const env = Object.entries(fp.environment?.env ?? {}).map(([k, v]) => `; ${k}=${v}`).join("");
  return `source ${s(fp.source)}, parameters ${s(fp.parameters)}, ${dataset}, ` +
    `lib/ ${s(fp.lib)} (sha256); Deno ${fp.environment?.deno ?? "?"}${env}`;
}

/** Names of the hashed parts in which two fingerprints differ ("source", "parameters", "lib"). */
export function changedParts(a: RunFingerprint, b: Partial<RunFingerprint>): string[] {
  return (["source", "parameters", "lib"] as const).filter((k) => a[k] !== b[k]);
}

/** `TCONV_NATIVE (unset → off)` for each variable that differs. */
function envChanges(now: RunEnvironment, old: RunEnvironment): string[] {
  const names = [...new Set([...Object.keys(now.env), ...Object.keys(old.env ?? {})])].sort();
  const shown = (v: string | undefined) => v === undefined ? "unset" : JSON.stringify(v);
  return names.filter((k) => now.env[k] !== old.env?.[k]).map((k) =>
    `environment ${k} (${shown(old.env?.[k])} → ${shown(now.env[k])})`
  );
}

/** Options of {@linkcode cachedRun}: what the backend prediction and the dataset check need. */
export interface CacheCheckOptions {
  /** The notebook's folder: a recorded dataset folder is relative to it. */
  notebookDir: string;
  /** The parameters in effect (a `backend` or `native` parameter decides before the env does). */
  parameters: Record<string, unknown>;
  /** Logical cores (default `navigator.hardwareConcurrency`): the wasm backend's default threads. */
  cpus?: number;
  /**
   * The WebGPU adapter this runtime offers now, asked only when the report was made on WebGPU
   * (default {@linkcode currentAdapter}).
   */
  adapter?: () => Promise<string | undefined>;
}

/**
 * The name of the WebGPU adapter this runtime offers (`info.description`, else vendor and
 * architecture, as `selectAndShowBackend` records it), or undefined when there is none or it
 * does not answer within `timeoutMs`.
 *
 * @example
 * ```ts
 * import { currentAdapter } from "./cache.ts";
 * await currentAdapter(); // "llvmpipe (LLVM 15.0.6, 256 bits)"
 * ```
 */
export async function currentAdapter(timeoutMs = 5000): Promise<string | undefined> {
  type Info = { description?: string; vendor?: string; architecture?: string };
  const gpu = (navigator as {
    gpu?: { requestAdapter(o?: { powerPreference?: string }): Promise<{ info?: Info } | null> };
  }).gpu;
  if (!gpu) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const adapter = await Promise.race([
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), timeoutMs)),
    ]);
    if (!adapter) return undefined;
    const info = adapter.info ?? {};
    return info.description || [info.vendor, info.architecture].filter(Boolean).join(" ") ||
      "unnamed adapter";
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Outcome of {@linkcode cachedRun}. */
export type CacheCheck =
  | { hit: true; computedAt: string }
  | { hit: false; reason: string };

/**
 * Whether the executed notebook at `ipynbPath` (and its report at `htmlPath`) came from a
 * successful run with the same inputs as `fp` (the half known before a run); otherwise why not,
 * naming each change: `changed: environment TCONV_NATIVE (unset → "off"), backend (wasm + oneDNN
 * 2.6.3 → wasm)`. The recorded dataset folder is listed again and compared; the recorded backend
 * is compared with what this environment would resolve to where that can be predicted.
 *
 * @example
 * ```ts
 * import { cachedRun, fingerprint } from "./cache.ts";
 * const fp = await fingerprint({ notebookPath: "notebooks/01_shapes.ipynb", parameters: {} });
 * await cachedRun("reports/01_shapes.ipynb", "reports/01_shapes.html", fp, {
 *   notebookDir: "notebooks",
 *   parameters: { seed: 0, backend: "auto", native: "auto" },
 * });
 * ```
 */
export async function cachedRun(
  ipynbPath: string,
  htmlPath: string,
  fp: RunFingerprint,
  options: CacheCheckOptions,
): Promise<CacheCheck> {
  let saved: Record<string, unknown> | undefined;
  try {
    const nb = JSON.parse(await Deno.readTextFile(ipynbPath));
    saved = nb?.metadata?.deno_runner;
  } catch {
    return { hit: false, reason: "no earlier report" };
  }
  try {
    await Deno.stat(htmlPath);
  } catch {
    return { hit: false, reason: `${htmlPath} is missing` };
  }
  if (!saved || saved.status !== "ok") {
    return { hit: false, reason: "the earlier run did not succeed" };
  }
  const old = saved.fingerprint as Partial<RunFingerprint> | undefined;
  if (!old || typeof old !== "object") return { hit: false, reason: "no fingerprint saved" };
  if (!old.environment || old.backend === undefined || old.dataset === undefined) {
    // Made before backends and datasets were recorded: nothing to compare them with.
    return { hit: false, reason: "the earlier report does not record its environment" };
  }
  const changed = changedParts(fp, old).map((c) => (c === "lib" ? "lib/" : c));
  if (fp.environment.deno !== old.environment.deno) {
    changed.push(`Deno (${old.environment.deno} → ${fp.environment.deno})`);
  }
  if (old.backend) {
    const predicted = predictBackend(old.backend, {
      parameters: options.parameters,
      before: old.environment.env ?? {},
      now: fp.environment.env,
      cpus: options.cpus ?? navigator.hardwareConcurrency ?? 1,
    });
    if (predicted) changed.push(`backend (${predicted})`);
    else if (old.backend.adapter !== undefined) {
      const adapter = await (options.adapter ?? currentAdapter)();
      if (adapter !== old.backend.adapter) {
        changed.push(`WebGPU adapter (${old.backend.adapter} → ${adapter ?? "none"})`);
      }
    }
  }
  changed.push(...envChanges(fp.environment, old.environment));
  if (old.dataset) {
    const now = await listDataset(resolve(options.notebookDir, old.dataset.dir));
    if (now.listing !== old.dataset.listing) {
      const what = now.files === old.dataset.files
        ? "a file's size or time"
        : `${old.dataset.files} → ${now.files} files`;
      changed.push(`dataset (${old.dataset.dir}: ${what})`);
    }
  }
  if (changed.length > 0) return { hit: false, reason: `changed: ${changed.join(", ")}` };
  return { hit: true, computedAt: String(saved.end_time ?? saved.start_time ?? "?") };
}
