/**
 * Command line for running notebooks and writing reports.
 *
 * ```sh
 * deno task run <notebook.ipynb> [-p name=value ...] [--out DIR] [--timeout SECONDS] [--continue-on-error] [--no-input] [--pdf]
 * deno task report [--notebooks DIR] [--out DIR] [--timeout SECONDS] [--continue-on-error] [--no-input] [--pdf]
 * ```
 *
 * `run` executes one notebook on a fresh Deno kernel started in the notebook's folder and
 * writes `DIR/<name>.ipynb` and `DIR/<name>.html` (default DIR: `reports/`), both atomically,
 * also when the run failed (then they hold the partial results with the error visible);
 * `--no-input` leaves code out of the report, `--pdf` also prints it to `DIR/<name>.pdf`. The
 * exit code is 0 on success, 1 when the run failed, 2 for a usage or parameter error, 130/143
 * when interrupted by SIGINT/SIGTERM.
 *
 * `report` runs every `notebooks/*.ipynb` in sorted order with default parameters into
 * `reports/`, goes on after a failure, prints a summary and exits 1 if any notebook failed.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["run", "notebooks/01_shapes.ipynb", "-p", "epochs=1", "--out", "/tmp/r"]);
 * console.log(code); // 0 on success
 * ```
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { BACKEND_MIME, DATASET_MIME } from "../viz/markdown.ts";
import { renderReport, type ReportHeader, writeReportAtomic } from "./html.ts";
import { printReportPdf } from "./pdf.ts";
import { findChromium } from "../browser/mod.ts";
import { receivedSignal } from "./kernel.ts";
import type { Notebook } from "./nbformat.ts";
import { ParameterError, parseParameterArgs, splitParameterArg } from "./parameters.ts";
import { type CellProgress, runNotebook, type RunResult } from "./runner.ts";

/**
 * Usage text.
 *
 * @example
 * ```ts
 * import { USAGE } from "./cli.ts";
 * console.log(USAGE);
 * ```
 */
export const USAGE = `Usage:
  deno task run <notebook.ipynb> [-p name=value ...] [--out DIR] [--timeout SECONDS] [--continue-on-error] [--no-input] [--pdf]
  deno task report [--notebooks DIR] [--out DIR] [--timeout SECONDS] [--continue-on-error] [--no-input] [--pdf]

Options:
  -p, --param name=value  Override a parameter of the cell tagged "parameters" (repeatable).
                          The value is JSON when it parses as JSON, otherwise a string.
  --out DIR               Where to write <name>.ipynb and <name>.html (default: reports).
  --timeout SECONDS       Time limit per cell (default: none).
  --continue-on-error     Run the remaining cells after a cell error.
  --no-input              Leave code cells' source out of the HTML report (outputs stay).
  --pdf                   Also print the report to <name>.pdf (headless Chromium).
  --notebooks DIR         (report) Folder of notebooks to run (default: notebooks).
  -h, --help              Show this help.`;

/** A command-line mistake: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  /**
   * @example
   * ```ts
   * import { UsageError } from "./cli.ts";
   * throw new UsageError("missing notebook path");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parsed command line. */
export interface CliArgs {
  command: "run" | "report" | "help";
  notebook?: string;
  params: string[];
  out: string;
  notebooksDir: string;
  timeoutSeconds?: number;
  continueOnError: boolean;
  noInput?: boolean;
  pdf?: boolean;
}

/**
 * Parses the command line (without the `deno run ... cli.ts` part).
 *
 * @example
 * ```ts
 * import { parseCliArgs } from "./cli.ts";
 * parseCliArgs(["run", "a.ipynb", "-p", "epochs=3", "--timeout", "60"]);
 * // { command: "run", notebook: "a.ipynb", params: ["epochs=3"], timeoutSeconds: 60, ... }
 * ```
 */
export function parseCliArgs(args: string[]): CliArgs {
  const [command, ...rest] = args;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    return {
      command: "help",
      params: [],
      out: "reports",
      notebooksDir: "notebooks",
      continueOnError: false,
    };
  }
  if (command !== "run" && command !== "report") {
    throw new UsageError(`unknown command "${command}" (expected "run" or "report")`);
  }
  const parsed: CliArgs = {
    command,
    params: [],
    out: "reports",
    notebooksDir: "notebooks",
    continueOnError: false,
  };
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = rest[++i];
      if (v === undefined || (v.startsWith("-") && v !== "-")) {
        throw new UsageError(`${flag} needs a value`);
      }
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        return { ...parsed, command: "help" };
      case "-p":
      case "--param":
      case "--parameter": {
        const v = value();
        splitParameterArg(v); // syntax check now, types later against the notebook
        parsed.params.push(v);
        break;
      }
      case "--out":
      case "-o":
        parsed.out = value();
        break;
      case "--notebooks":
        parsed.notebooksDir = value();
        break;
      case "--timeout": {
        const v = value();
        const seconds = Number(v);
        if (v.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
          throw new UsageError(`--timeout expects a positive number of seconds, got "${v}"`);
        }
        parsed.timeoutSeconds = seconds;
        break;
      }
      case "--continue-on-error":
        parsed.continueOnError = true;
        break;
      case "--no-input":
        parsed.noInput = true;
        break;
      case "--pdf":
        parsed.pdf = true;
        break;
      default:
        if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option "${arg}"`);
        positional.push(arg);
    }
  }
  if (command === "run") {
    if (positional.length === 0) throw new UsageError("missing the notebook to run");
    if (positional.length > 1) {
      throw new UsageError(
        `expected one notebook, got ${positional.length}: ${positional.join(" ")}`,
      );
    }
    parsed.notebook = positional[0];
  } else {
    if (positional.length > 0) {
      throw new UsageError(`report takes no notebook arguments (got ${positional.join(" ")})`);
    }
    if (parsed.params.length > 0) {
      throw new UsageError("report runs with default parameters; -p is for run");
    }
  }
  return parsed;
}

/**
 * Reads and checks a notebook file: it must exist, end in `.ipynb`, be JSON and nbformat 4.
 *
 * @example
 * ```ts
 * import { readNotebook } from "./cli.ts";
 * const nb = await readNotebook("notebooks/01_shapes.ipynb");
 * ```
 */
export async function readNotebook(path: string): Promise<Notebook> {
  if (!path.endsWith(".ipynb")) throw new UsageError(`${path} is not a notebook (.ipynb)`);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`notebook not found: ${path}`);
    if (e instanceof Deno.errors.IsADirectory) throw new UsageError(`${path} is a directory`);
    throw new UsageError(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  let nb: Notebook;
  try {
    nb = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path} is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (!nb || typeof nb !== "object" || nb.nbformat !== 4 || !Array.isArray(nb.cells)) {
    throw new UsageError(`${path} is not an nbformat 4 notebook`);
  }
  return nb;
}

/** Options for {@linkcode runAndWrite}. */
export interface RunAndWriteOptions {
  out: string;
  params?: string[];
  timeoutSeconds?: number;
  continueOnError?: boolean;
  /** Where progress lines go (default: stdout). */
  log?: (line: string) => void;
  /** Leave code out of the HTML report. */
  noInput?: boolean;
  /** Also print the report to `<out>/<name>.pdf`. */
  pdf?: boolean;
}

/** Result of {@linkcode runAndWrite}: the run, and the two files written. */
export interface RunAndWriteResult {
  result: RunResult;
  ipynbPath: string;
  htmlPath: string;
  /** The PDF, when `pdf` was asked for. */
  pdfPath?: string;
}

const MARKS: Record<string, string> = {
  ok: "ok",
  error: "ERROR",
  timeout: "TIMEOUT",
  died: "KERNEL DIED",
};

/**
 * Prints one line per finished cell, `[3/12] cell 5 … 1.2s ok  <first line>`. On a terminal
 * (and without a custom `log`), a running cell shows as `[3/12] cell 5 … running` until then.
 */
function progressPrinter(log?: (line: string) => void): (e: CellProgress) => void {
  const tty = !log && Deno.stdout.isTerminal();
  const write = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text));
  const print = log ?? ((line: string) => console.log(line));
  return (e) => {
    const head = `[${e.position}/${e.total}] cell ${e.cellIndex + 1} …`;
    if (e.phase === "start") {
      if (tty) write(`${head} running  ${e.firstLine}`.slice(0, 100));
      return;
    }
    if (tty) write("\r\x1b[2K");
    print(`${head} ${e.seconds!.toFixed(1)}s ${MARKS[e.status!]}  ${e.firstLine}`);
  };
}

/**
 * Runs one notebook and writes `<out>/<name>.ipynb` and `<out>/<name>.html` atomically, also
 * for a failed run. Throws {@linkcode UsageError} / `ParameterError` before running when the
 * file or the parameters are wrong.
 *
 * @example
 * ```ts
 * import { runAndWrite } from "./cli.ts";
 * const { result, htmlPath } = await runAndWrite("notebooks/01_shapes.ipynb", { out: "reports" });
 * console.log(result.status, htmlPath);
 * ```
 */
export async function runAndWrite(
  path: string,
  options: RunAndWriteOptions,
): Promise<RunAndWriteResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const nb = await readNotebook(path);
  const parameters = parseParameterArgs(nb, options.params ?? []);
  if (options.pdf && findChromium() === undefined) {
    // Found out now rather than after a long run.
    throw new UsageError("--pdf needs Chromium: apt-get install -y chromium, or set CHROMIUM_PATH");
  }
  const name = basename(path, ".ipynb");
  const ipynbPath = join(options.out, `${name}.ipynb`);
  const htmlPath = join(options.out, `${name}.html`);
  const date = new Date().toISOString();
  const shown = Object.entries(parameters).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  log(`Running ${path}${shown.length ? ` with ${shown.join(" ")}` : ""}`);
  const result = await runNotebook(nb, {
    cwd: dirname(resolve(path)),
    parameters,
    continueOnError: options.continueOnError,
    cellTimeoutMs: options.timeoutSeconds ? options.timeoutSeconds * 1000 : undefined,
    onProgress: progressPrinter(options.log),
  });
  await writeFileAtomic(ipynbPath, JSON.stringify(result.notebook, null, 1) + "\n");
  const header: ReportHeader = {
    notebook: path,
    parameters: result.parameters,
    dataset: datasetName(result.notebook, result.parameters.dataset),
    backend: backendName(result.notebook),
    date,
    runSeconds: result.seconds,
    status: result.status,
    ...(result.error ? { error: result.error.message } : {}),
  };
  await writeReportAtomic(
    htmlPath,
    renderReport(result.notebook, header, { noInput: options.noInput }),
  );
  if (!options.pdf) return { result, ipynbPath, htmlPath };
  const pdfPath = join(options.out, `${name}.pdf`);
  try {
    await printReportPdf(htmlPath, pdfPath);
  } catch (error) {
    throw new Error(`${ipynbPath} and ${htmlPath} written, but not the PDF: ${error}`);
  }
  return { result, ipynbPath, htmlPath, pdfPath };
}

function exitCodeForSignal(): number | null {
  const signal = receivedSignal();
  return signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : null;
}

async function commandRun(args: CliArgs): Promise<number> {
  const path = args.notebook!;
  const { result, ipynbPath, htmlPath, pdfPath } = await runAndWrite(path, {
    out: args.out,
    params: args.params,
    timeoutSeconds: args.timeoutSeconds,
    continueOnError: args.continueOnError,
    noInput: args.noInput,
    pdf: args.pdf,
  });
  if (result.status === "ok") {
    console.log(
      `ok: ${path}: ${result.executedCells} cells in ${
        result.seconds.toFixed(1)
      } s → ${ipynbPath}, ${htmlPath}${pdfPath ? `, ${pdfPath}` : ""}`,
    );
    return 0;
  }
  console.error(`error: ${path} failed: ${result.error?.message}`);
  for (const f of result.failures.slice(1)) console.error(`  also: ${f.message}`);
  console.error(`partial results written to ${ipynbPath} and ${htmlPath}`);
  return exitCodeForSignal() ?? 1;
}

async function commandReport(args: CliArgs): Promise<number> {
  const dir = args.notebooksDir;
  let names: string[];
  try {
    names = [];
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".ipynb")) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`folder not found: ${dir}`);
    throw e;
  }
  names.sort();
  if (names.length === 0) {
    console.error(`error: no notebooks (*.ipynb) in ${dir}`);
    return 1;
  }
  const rows: { name: string; ok: boolean; seconds: number; note: string }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    console.log("");
    const t0 = performance.now();
    try {
      const { result, htmlPath } = await runAndWrite(path, {
        out: args.out,
        timeoutSeconds: args.timeoutSeconds,
        continueOnError: args.continueOnError,
        noInput: args.noInput,
        pdf: args.pdf,
      });
      const ok = result.status === "ok";
      rows.push({
        name,
        ok,
        seconds: result.seconds,
        note: ok ? htmlPath : `${result.error?.message} (partial report: ${htmlPath})`,
      });
      if (!ok) console.error(`error: ${path} failed: ${result.error?.message}`);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      rows.push({ name, ok: false, seconds: (performance.now() - t0) / 1000, note: message });
      console.error(`error: ${path}: ${message}`);
    }
    if (receivedSignal()) break;
  }
  const failed = rows.filter((r) => !r.ok).length;
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(
    `\nSummary: ${rows.length} of ${names.length} notebooks run, ${
      rows.length - failed
    } ok, ${failed} failed`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.ok ? "ok  " : "FAIL"} ${r.name.padEnd(width)} ${
        r.seconds.toFixed(1).padStart(7)
      } s  ${r.note}`,
    );
  }
  if (rows.length < names.length) console.log(`  (stopped by ${receivedSignal()})`);
  return exitCodeForSignal() ?? (failed > 0 ? 1 : 0);
}

/**
 * Runs the command line and returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["report"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    const parsed = parseCliArgs(args);
    if (parsed.command === "help") {
      console.log(USAGE);
      return 0;
    }
    return parsed.command === "run" ? await commandRun(parsed) : await commandReport(parsed);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof ParameterError) {
      const where = args[0] === "run" ? ` for ${parseNotebookArg(args)}` : "";
      console.error(`error: bad parameters${where}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

function parseNotebookArg(args: string[]): string {
  try {
    return parseCliArgs(args).notebook ?? "the notebook";
  } catch {
    return "the notebook";
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * The dataset a run used, for the report header: the last name a notebook published with
 * `DATASET_MIME` (what "auto" actually chose), else the `dataset` parameter, else "none".
 *
 * @example
 * ```ts
 * datasetName(nb, "auto"); // "synthetic shapes (built-in)" when the notebook said so
 * ```
 */
export function datasetName(nb: Notebook, parameter: unknown): string {
  const name = lastPublished(nb, DATASET_MIME)?.name;
  if (typeof name === "string") return name;
  return parameter === undefined || parameter === null ? "none" : String(parameter);
}

/**
 * The backend a run computed on, for the report header, as the notebook published it with
 * `BACKEND_MIME` (`showBackend`): e.g. "wasm (2 threads)"; `undefined` when it did not.
 *
 * @example
 * ```ts
 * backendName(nb); // "wasm (2 threads)"
 * ```
 */
export function backendName(nb: Notebook): string | undefined {
  const b = lastPublished(nb, BACKEND_MIME);
  if (typeof b?.backend !== "string") return undefined;
  const threads = typeof b.threads === "number" ? b.threads : undefined;
  return threads === undefined
    ? b.backend
    : `${b.backend} (${threads} thread${threads === 1 ? "" : "s"})`;
}

/** The last JSON object a notebook's outputs carry under `mime`. */
function lastPublished(nb: Notebook, mime: string): Record<string, unknown> | undefined {
  let found: Record<string, unknown> | undefined;
  for (const cell of nb.cells) {
    if (cell.cell_type !== "code") continue;
    for (const o of cell.outputs) {
      if (o.output_type !== "display_data" && o.output_type !== "execute_result") continue;
      const d = o.data[mime];
      if (d !== null && typeof d === "object") found = d as Record<string, unknown>;
    }
  }
  return found;
}
