/**
 * Runs one notebook into its executed `.ipynb` and HTML report (and PDF), the way `deno task run`
 * and `deno task report` do, with the report cache ({@linkcode runAndWrite}); the command line
 * (`cli.ts`) only turns arguments into options and the outcome into an exit code.
 *
 * @example
 * ```ts
 * import { runAndWrite } from "./execute.ts";
 * const { result, htmlPath } = await runAndWrite("notebooks/01_shapes.ipynb", { out: "reports" });
 * console.log(result?.status, htmlPath);
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { UsageError } from "../util/cli_args.ts";
import { findChromium } from "../browser/mod.ts";
import { renderReport, type ReportHeader, writeReportAtomic } from "./html.ts";
import { OutputLog } from "./_log_output.ts";
import { printReportPdf } from "./pdf.ts";
import {
  cachedRun,
  describeFingerprint,
  fingerprint,
  type RunFingerprint,
  settleFingerprint,
} from "./cache.ts";
import { backendName, datasetDir, datasetName, recordedBackend } from "./facts.ts";
import { type Notebook, notebookStem, readNotebook } from "./nbformat.ts";
import { parametersInEffect, parseParameterArgs, readParameterFile } from "./parameters.ts";
import {
  type CellProgress,
  type CellStatus,
  describeLost,
  runNotebook,
  type RunOptions,
  type RunResult,
} from "./runner.ts";

/** Thrown for a mistake in how a run was asked for (e.g. `--pdf` without Chromium). */
export { UsageError };

/** Options for {@linkcode runAndWrite}. */
export interface RunAndWriteOptions {
  out: string;
  params?: string[];
  /** Parameter files (JSON or YAML), read before `params`, which win. */
  paramFiles?: string[];
  timeoutSeconds?: number;
  continueOnError?: boolean;
  /** Print cell output as it arrives (`--log-output`). */
  logOutput?: boolean;
  /** Longest time between saves during a long cell (default 30 s). */
  autosaveSeconds?: number;
  /** Skip the run when the saved report is up to date (`report` without `--force`). */
  useCache?: boolean;
  /** Where progress lines go (default: stdout). */
  log?: (line: string) => void;
  /** Options for the kernel (e.g. another `deno`). */
  kernel?: RunOptions["kernel"];
  /** Leave code out of the HTML report. */
  noInput?: boolean;
  /** Also print the report to `<out>/<name>.pdf`. */
  pdf?: boolean;
}

/** Result of {@linkcode runAndWrite}: the run (or the cache hit), and the two files. */
export interface RunAndWriteResult {
  /** The run; `null` when the saved report was up to date and nothing ran. */
  result: RunResult | null;
  /** When the results that were kept (cache hit) were computed. */
  cachedFrom?: string;
  ipynbPath: string;
  htmlPath: string;
  /** The PDF, when `pdf` was asked for. */
  pdfPath?: string;
}

const MARKS: Record<CellStatus, string> = {
  ok: "ok",
  error: "ERROR",
  timeout: "TIMEOUT",
  died: "KERNEL DIED",
  skipped: "skipped",
  raised: "ok (raised, as tagged)",
  interrupted: "INTERRUPTED",
};

/**
 * Prints one line per finished cell, `[3/12] cell 5 … 1.2s ok  <first line>`. On a terminal
 * (and without a custom `log` or the output log), a running cell shows as `[3/12] cell 5 …
 * running` until then.
 */
function progressPrinter(
  log: ((line: string) => void) | undefined,
  outputLog: OutputLog | undefined,
): (e: CellProgress) => void {
  const tty = !log && !outputLog && Deno.stdout.isTerminal();
  const write = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text));
  const print = log ?? ((line: string) => console.log(line));
  return (e) => {
    const head = `[${e.position}/${e.total}] cell ${e.cellIndex + 1} …`;
    if (e.phase === "start") {
      if (tty) write(`${head} running  ${e.firstLine}`.slice(0, 100));
      return;
    }
    outputLog?.flush(e.cellIndex);
    if (tty) write("\r\x1b[2K");
    print(`${head} ${e.seconds!.toFixed(1)}s ${MARKS[e.status!]}  ${e.firstLine}`);
  };
}

/** The report header for a notebook run so far (`status` "running" while it goes on). */
function reportHeader(
  path: string,
  nb: Notebook,
  parameters: Record<string, unknown>,
  run: {
    date: string;
    seconds: number;
    status: ReportHeader["status"];
    error?: string;
    integrity?: string;
    fp: RunFingerprint;
  },
): ReportHeader {
  return {
    notebook: path,
    parameters,
    dataset: datasetName(nb, parameters.dataset),
    backend: backendName(nb),
    date: run.date,
    runSeconds: run.seconds,
    status: run.status,
    ...(run.error ? { error: run.error } : {}),
    ...(run.integrity ? { integrity: run.integrity } : {}),
    computedFrom: describeFingerprint(run.fp),
  };
}

/**
 * Runs one notebook and writes `<out>/<name>.ipynb` and `<out>/<name>.html` atomically, also
 * for a failed run, and while it runs: before the first cell, after every cell and at most
 * every `autosaveSeconds` during a long cell (metadata and header say "running"), so that a
 * killed run leaves its finished cells. Throws {@linkcode UsageError}, `NotebookFileError`,
 * `ParameterError` or `NotebookSyntaxError` before running when the file, the parameters or a cell's syntax is
 * wrong. With `useCache`, returns without running when the saved report came from a
 * successful run of the same source, parameters, `lib/`, Deno version and `TCONV_*` variables,
 * on the backend this environment would resolve to, with its data folder unchanged (see
 * `cache.ts`); the backend and data folder the run published are recorded after it.
 *
 * @example
 * ```ts
 * import { runAndWrite } from "./execute.ts";
 * const { result, htmlPath } = await runAndWrite("notebooks/01_shapes.ipynb", { out: "reports" });
 * console.log(result?.status, htmlPath);
 * ```
 */
export async function runAndWrite(
  path: string,
  options: RunAndWriteOptions,
): Promise<RunAndWriteResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const nb = await readNotebook(path);
  const fromFiles: Record<string, unknown> = {};
  for (const file of options.paramFiles ?? []) {
    Object.assign(fromFiles, await readParameterFile(file));
  }
  const parameters = parseParameterArgs(nb, options.params ?? [], fromFiles);
  // The parameters in effect (defaults with the overrides): hashed, shown in every header.
  const inEffect = parametersInEffect(nb, parameters);
  if (options.pdf && findChromium() === undefined) {
    // Found out now rather than after a long run.
    throw new UsageError("--pdf needs Chromium: apt-get install -y chromium, or set CHROMIUM_PATH");
  }
  const name = notebookStem(path);
  const ipynbPath = join(options.out, `${name}.ipynb`);
  const htmlPath = join(options.out, `${name}.html`);
  const pdfPath = options.pdf ? join(options.out, `${name}.pdf`) : undefined;
  const reportOptions = {
    ...(options.noInput ? { noInput: true } : {}),
    ...(options.pdf ? { pdf: true } : {}),
  };
  const notebookDir = dirname(resolve(path));
  let fp = await fingerprint({ notebookPath: path, parameters: inEffect, reportOptions });
  if (options.useCache) {
    const cached = await cachedRun(ipynbPath, htmlPath, fp, { notebookDir, parameters: inEffect });
    // A report asked for as PDF is up to date only if its PDF is still there.
    if (cached.hit && pdfPath && !existsSync(pdfPath)) {
      log(`Running ${path}: ${pdfPath} is missing`);
    } else if (cached.hit) {
      log(
        `Unchanged: ${path} (source, parameters, lib/, environment, backend and dataset as in ` +
          `the run of ${cached.computedAt}); kept ${htmlPath} (--force re-runs)`,
      );
      return { result: null, cachedFrom: cached.computedAt, ipynbPath, htmlPath, pdfPath };
    } else {
      log(`Running ${path}: ${cached.reason}`);
    }
  }
  const date = new Date().toISOString();
  const shown = Object.entries(parameters).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  log(`Running ${path}${shown.length ? ` with ${shown.join(" ")}` : ""}`);
  const outputLog = options.logOutput
    ? new OutputLog(
      options.log
        ? { out: options.log, err: options.log }
        : { out: (l) => console.log(l), err: (l) => console.error(l) },
    )
    : undefined;
  const started = performance.now();
  const save = async (notebook: Notebook, header: ReportHeader) => {
    const json = JSON.stringify(notebook, null, 1) + "\n"; // before any await: the notebook is live
    const html = renderReport(notebook, header, { noInput: options.noInput });
    await writeFileAtomic(ipynbPath, json);
    await writeReportAtomic(htmlPath, html);
  };
  let warned = false;
  const result = await runNotebook(nb, {
    cwd: notebookDir,
    kernel: options.kernel,
    parameters,
    continueOnError: options.continueOnError,
    cellTimeoutMs: options.timeoutSeconds ? options.timeoutSeconds * 1000 : undefined,
    onProgress: progressPrinter(options.log, outputLog),
    onOutput: outputLog && ((e) => outputLog.message(e.cellIndex, e.message)),
    checkpointIntervalMs: (options.autosaveSeconds ?? 30) * 1000,
    onCheckpoint: (notebook) =>
      save(
        notebook,
        reportHeader(path, notebook, inEffect, {
          date,
          seconds: (performance.now() - started) / 1000,
          status: "running",
          fp,
        }),
      ),
    onCheckpointError: (e) => {
      if (warned) return;
      warned = true;
      console.error(`warning: could not save ${ipynbPath} during the run: ${e}`);
    },
  });
  // What only the run knows, from its own record: the backend it got, the data it read (listed
  // now, so files it created are part of the record).
  fp = await settleFingerprint(fp, {
    notebookDir,
    backend: recordedBackend(result.notebook),
    datasetDir: datasetDir(result.notebook),
  });
  (result.notebook.metadata.deno_runner as Record<string, unknown>).fingerprint = fp;
  const integrity = describeLost(result.lost);
  await save(
    result.notebook,
    reportHeader(path, result.notebook, inEffect, {
      date,
      seconds: result.seconds,
      status: result.status,
      error: result.error?.message,
      integrity,
      fp,
    }),
  );
  if (!pdfPath) return { result, ipynbPath, htmlPath };
  try {
    await printReportPdf(htmlPath, pdfPath);
  } catch (error) {
    throw new Error(`${ipynbPath} and ${htmlPath} written, but not the PDF: ${error}`);
  }
  return { result, ipynbPath, htmlPath, pdfPath };
}
