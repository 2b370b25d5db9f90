/**
 * What a notebook's results were computed from, and whether a saved report is still up to date
 * (Quarto's `freeze: auto`, with the inputs that matter here): the notebook's source, the
 * parameters, the dataset files and the code of `lib/` (with `deno.json` and `deno.lock`, which
 * pin the dependencies). `deno task report` skips a notebook whose last successful report was
 * computed from the same four; `deno task run` never does.
 *
 * The fingerprint is stored in the executed notebook (`metadata.deno_runner.fingerprint`), so the
 * saved `.ipynb` is the cache record: no second file to get out of step with it.
 *
 * @example
 * ```ts
 * import { cachedRun, fingerprint } from "./cache.ts";
 * const fp = await fingerprint({ notebookPath: "notebooks/01_shapes.ipynb", parameters: {} });
 * const hit = await cachedRun("reports/01_shapes.ipynb", "reports/01_shapes.html", fp);
 * console.log(hit.hit ? `unchanged since ${hit.computedAt}` : hit.reason);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";
import { DEFAULT_DATA_DIR } from "../data/cifar10.ts";

/** Hashes of what a run's results depend on. */
export interface RunFingerprint {
  /** sha256 of the notebook file. */
  source: string;
  /** sha256 of the parameters in effect (JSON, keys sorted). */
  parameters: string;
  /** sha256 of the dataset folder's listing (path, size, modification time of every file). */
  dataset: string;
  /** sha256 of every file under `lib/` plus `deno.json` and `deno.lock`. */
  lib: string;
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
  /** Dataset folder (default: the repository's `data/`). */
  dataDir?: string;
  /**
   * Options that change the written report but not the run (e.g. `{ noInput: true }`); hashed
   * with the parameters when any is set, so a report written with other options is not reused.
   */
  reportOptions?: Record<string, unknown>;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch (e) {
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

function sortedJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
  );
}

const sha256 = () => createHash("sha256");

/**
 * Computes the fingerprint of a run: reads the notebook and every code file, lists the dataset
 * folder (sizes and times, not contents: CIFAR-10 is 160 MB and is verified when installed).
 *
 * @example
 * ```ts
 * import { fingerprint } from "./cache.ts";
 * const fp = await fingerprint({ notebookPath: "notebooks/01_shapes.ipynb", parameters: {} });
 * console.log(fp.lib.slice(0, 12));
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
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  const data = sha256();
  for (const path of await filesUnder(dataDir)) {
    const info = await Deno.stat(path);
    data.update(`${relative(dataDir, path)}\0${info.size}\0${info.mtime?.getTime() ?? 0}\n`);
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
    dataset: data.digest("hex"),
    lib: code.digest("hex"),
  };
}

/**
 * One line for the report header, e.g.
 * `source 3f2a9c01d4e5, parameters 44136fa355b3, dataset e3b0c44298fc, lib/ 9b1d5e0a7c21 (sha256)`.
 *
 * @example
 * ```ts
 * import { describeFingerprint } from "./cache.ts";
 * describeFingerprint({ source: "aa", parameters: "bb", dataset: "cc", lib: "dd" });
 * ```
 */
export function describeFingerprint(fp: RunFingerprint): string {
  const s = (h: string) => h.slice(0, 12);
  return `source ${s(fp.source)}, parameters ${s(fp.parameters)}, dataset ${s(fp.dataset)}, ` +
    `lib/ ${s(fp.lib)} (sha256)`;
}

/** Names of the parts in which two fingerprints differ ("source", "lib", ...). */
export function changedParts(a: RunFingerprint, b: Partial<RunFingerprint>): string[] {
  return (["source", "parameters", "dataset", "lib"] as const).filter((k) => a[k] !== b[k]);
}

/** Outcome of {@linkcode cachedRun}. */
export type CacheCheck =
  | { hit: true; computedAt: string }
  | { hit: false; reason: string };

/**
 * Whether the executed notebook at `ipynbPath` (and its report at `htmlPath`) came from a
 * successful run with fingerprint `fp`; otherwise why not.
 *
 * @example
 * ```ts
 * import { cachedRun, fingerprint } from "./cache.ts";
 * const fp = await fingerprint({ notebookPath: "notebooks/01_shapes.ipynb", parameters: {} });
 * await cachedRun("reports/01_shapes.ipynb", "reports/01_shapes.html", fp);
 * ```
 */
export async function cachedRun(
  ipynbPath: string,
  htmlPath: string,
  fp: RunFingerprint,
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
  const changed = changedParts(fp, old);
  if (changed.length > 0) {
    const names = changed.map((c) => (c === "lib" ? "lib/" : c));
    return { hit: false, reason: `changed: ${names.join(", ")}` };
  }
  return { hit: true, computedAt: String(saved.end_time ?? saved.start_time ?? "?") };
}
