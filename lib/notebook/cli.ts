/**
 * Command line for running notebooks and writing reports.
 *
 * ```sh
 * deno task run <notebook.ipynb|.ts> [-p name=value ...] [-f params.yaml] [--out DIR] [options]
 * deno task report [--notebooks DIR] [--out DIR] [--force] [options]
 * ```
 *
 * `run` executes one notebook on a fresh Deno kernel started in the notebook's folder and
 * writes `DIR/<name>.ipynb` and `DIR/<name>.html` (default DIR: `reports/`), both atomically,
 * while it runs (before the first cell, after each cell, at most every `--autosave` seconds
 * during a long one) and at the end, also when the run failed (then they hold the partial
 * results with the error visible); `--no-input` leaves code out of the report, `--pdf` also
 * prints it to `DIR/<name>.pdf`. The exit code is 0 on success, 1 when the run failed or
 * lost kernel messages ("degraded", unless `--allow-degraded`), 2 for a usage, parameter or
 * syntax error (nothing ran), 130/143 when interrupted by SIGINT/SIGTERM.
 *
 * `report` runs every `notebooks/*.ipynb` (and percent-format `*.ts`, see `percent.ts`) in
 * sorted order with default parameters into `reports/`, skipping those whose report is up to
 * date (`cache.ts`; `--force` re-runs), goes on after a failure, prints a summary and exits 1 if
 * any notebook failed.
 *
 * The work is `runAndWrite` of `execute.ts`; this file only turns arguments into its options and
 * its outcome into messages and an exit code.
 *
 * Every option is one entry of the `OPTIONS` table, which builds both {@linkcode USAGE} and the
 * `node:util` `parseArgs` call.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["run", "notebooks/01_shapes.ipynb", "-p", "epochs=1", "--out", "/tmp/r"]);
 * console.log(code); // 0 on success
 * ```
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { listNotebooks } from "./convert.ts";
import { runAndWrite, UsageError } from "./execute.ts";
import { receivedSignal } from "./kernel.ts";
import { NotebookFileError } from "./nbformat.ts";
import { ParameterError, splitParameterArg } from "./parameters.ts";
import { describeLost, NotebookSyntaxError, type RunResult } from "./runner.ts";

/** How an option is given and what it is for; USAGE and the parser are built from this table. */
interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Name of the value in the usage text. */
  value?: string;
  help: string;
  /** Commands that take the option (default: both). */
  only?: "run" | "report";
  /** Not listed in the usage text (an alternative spelling). */
  hidden?: boolean;
}

/**
 * Every option of the command line. Add a flag here (and read it in {@linkcode parseCliArgs}).
 */
const OPTIONS = {
  param: {
    type: "string",
    short: "p",
    multiple: true,
    value: "name=value",
    only: "run",
    help: `Override a parameter of the cell tagged "parameters"
(repeatable). The value is JSON when it parses as JSON,
otherwise a string.`,
  },
  parameter: { type: "string", multiple: true, only: "run", hidden: true, help: "" },
  "parameters-file": {
    type: "string",
    short: "f",
    multiple: true,
    value: "FILE",
    only: "run",
    help: `Parameters from a JSON or YAML file (repeatable;
later files and -p win).`,
  },
  out: {
    type: "string",
    short: "o",
    value: "DIR",
    help: "Where to write <name>.ipynb and <name>.html\n(default: reports).",
  },
  notebooks: {
    type: "string",
    value: "DIR",
    only: "report",
    help: "Folder of notebooks to run (default: notebooks).",
  },
  timeout: { type: "string", value: "SECONDS", help: "Time limit per cell (default: none)." },
  autosave: {
    type: "string",
    value: "SECONDS",
    help: `Longest time between saves of the .ipynb and .html
during a long cell (default 30); they are also saved
after every cell.`,
  },
  "log-output": {
    type: "boolean",
    help: "Print each cell's output as it arrives: [cell N] ...",
  },
  "continue-on-error": { type: "boolean", help: "Run the remaining cells after a cell error." },
  "allow-degraded": {
    type: "boolean",
    help: "Exit 0 when kernel messages were lost (the run is\nstill marked degraded).",
  },
  "no-input": {
    type: "boolean",
    help: "Leave code cells' source out of the HTML report\n(outputs stay).",
  },
  pdf: {
    type: "boolean",
    help: "Also print the report to <name>.pdf (headless\nChromium).",
  },
  force: {
    type: "boolean",
    only: "report",
    help: "Re-run notebooks whose report is up to date.",
  },
  help: { type: "boolean", short: "h", help: "Show this help." },
} satisfies Record<string, OptionSpec>;

type OptionName = keyof typeof OPTIONS;

function optionsHelp(): string {
  const rows = (Object.entries(OPTIONS) as [OptionName, OptionSpec][])
    .filter(([, o]) => !o.hidden)
    .map(([name, o]) => {
      const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.value ? ` ${o.value}` : ""}`;
      const help = (o.only ? `(${o.only}) ` : "") + o.help;
      return { flag, lines: help.split("\n") };
    });
  const width = Math.max(...rows.map((r) => r.flag.length)) + 2;
  return rows.map((r) =>
    r.lines.map((l, i) => `  ${(i === 0 ? r.flag : "").padEnd(width)}${l}`).join("\n")
  ).join("\n");
}

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
  deno task run <notebook.ipynb|.ts> [-p name=value ...] [-f params.yaml] [--out DIR] [options]
  deno task report [--notebooks DIR] [--out DIR] [--force] [options]

Options:
${optionsHelp()}

Exit codes: 0 ok, 1 a run failed (or lost kernel messages, see --allow-degraded), 2 a usage,
parameter or syntax error (nothing ran), 130/143 interrupted by SIGINT/SIGTERM.`;

/** Parsed command line. */
export interface CliArgs {
  command: "run" | "report" | "help";
  notebook?: string;
  /** `-p name=value` arguments, in order. */
  params: string[];
  /** `-f` parameter files, in order. */
  paramFiles: string[];
  out: string;
  notebooksDir: string;
  timeoutSeconds?: number;
  /** Longest time between saves during a long cell. */
  autosaveSeconds: number;
  continueOnError: boolean;
  logOutput: boolean;
  allowDegraded: boolean;
  /** `report`: re-run notebooks whose report is up to date. */
  force: boolean;
  /** Leave code out of the HTML report. */
  noInput: boolean;
  /** Also print the report to PDF. */
  pdf: boolean;
}

function defaults(command: CliArgs["command"]): CliArgs {
  return {
    command,
    params: [],
    paramFiles: [],
    out: "reports",
    notebooksDir: "notebooks",
    autosaveSeconds: 30,
    continueOnError: false,
    logOutput: false,
    allowDegraded: false,
    force: false,
    noInput: false,
    pdf: false,
  };
}

function positiveSeconds(flag: string, v: string): number {
  const seconds = Number(v);
  if (v.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`${flag} expects a positive number of seconds, got "${v}"`);
  }
  return seconds;
}

/**
 * Parses the command line (without the `deno run ... cli.ts` part) with `node:util`'s
 * `parseArgs`, from the {@linkcode USAGE} table of options.
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
    return defaults("help");
  }
  if (command !== "run" && command !== "report") {
    throw new UsageError(`unknown command "${command}" (expected "run" or "report")`);
  }
  // Not strict: unknown options and missing values come back as tokens, so that the messages
  // are ours ("--out needs a value") and name the option as it was typed.
  const { tokens } = parseArgs({
    args: rest,
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const parsed = defaults(command);
  const positional: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      positional.push(token.value);
      continue;
    }
    if (token.kind !== "option") continue;
    const name = token.name as OptionName;
    const spec: OptionSpec | undefined = Object.hasOwn(OPTIONS, name) ? OPTIONS[name] : undefined;
    if (!spec) throw new UsageError(`unknown option "${token.rawName}"`);
    if (name === "help") return { ...parsed, command: "help" };
    let value = "";
    if (spec.type === "string") {
      const v = token.value;
      if (v === undefined || (!token.inlineValue && v.startsWith("-") && v !== "-")) {
        throw new UsageError(`${token.rawName} needs a value`);
      }
      value = v;
    } else if (token.inlineValue) {
      throw new UsageError(`${token.rawName} takes no value`);
    }
    if (spec.only && spec.only !== command) {
      throw new UsageError(
        spec.only === "run" && (name === "param" || name === "parameter" ||
            name === "parameters-file")
          ? `report runs with default parameters; ${token.rawName} is for run`
          : `${token.rawName} is for ${spec.only}`,
      );
    }
    switch (name) {
      case "param":
      case "parameter":
        splitParameterArg(value); // syntax check now, types later against the notebook
        parsed.params.push(value);
        break;
      case "parameters-file":
        parsed.paramFiles.push(value);
        break;
      case "out":
        parsed.out = value;
        break;
      case "notebooks":
        parsed.notebooksDir = value;
        break;
      case "timeout":
        parsed.timeoutSeconds = positiveSeconds("--timeout", value);
        break;
      case "autosave":
        parsed.autosaveSeconds = positiveSeconds("--autosave", value);
        break;
      case "log-output":
        parsed.logOutput = true;
        break;
      case "continue-on-error":
        parsed.continueOnError = true;
        break;
      case "allow-degraded":
        parsed.allowDegraded = true;
        break;
      case "force":
        parsed.force = true;
        break;
      case "no-input":
        parsed.noInput = true;
        break;
      case "pdf":
        parsed.pdf = true;
        break;
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
  } else if (positional.length > 0) {
    throw new UsageError(`report takes no notebook arguments (got ${positional.join(" ")})`);
  }
  return parsed;
}

function exitCodeForSignal(): number | null {
  const signal = receivedSignal();
  return signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : null;
}

/** Prints what a degraded run lost; true when that should fail the command. */
function reportLost(path: string, result: RunResult, allowDegraded: boolean): boolean {
  if (result.status !== "degraded") return false;
  console.error(
    `${allowDegraded ? "warning" : "error"}: ${path} is degraded: ${
      describeLost(result.lost)
    }; outputs of those cells may be missing${
      allowDegraded ? "" : " (--allow-degraded accepts it)"
    }`,
  );
  return !allowDegraded;
}

async function commandRun(args: CliArgs): Promise<number> {
  const path = args.notebook!;
  const { result, ipynbPath, htmlPath, pdfPath } = await runAndWrite(path, {
    out: args.out,
    params: args.params,
    paramFiles: args.paramFiles,
    timeoutSeconds: args.timeoutSeconds,
    continueOnError: args.continueOnError,
    logOutput: args.logOutput,
    autosaveSeconds: args.autosaveSeconds,
    noInput: args.noInput,
    pdf: args.pdf,
  });
  const run = result!;
  if (run.status !== "error") {
    const failed = reportLost(path, run, args.allowDegraded);
    console.log(
      `${run.status}: ${path}: ${run.executedCells} cells in ${
        run.seconds.toFixed(1)
      } s → ${ipynbPath}, ${htmlPath}${pdfPath ? `, ${pdfPath}` : ""}`,
    );
    return failed ? 1 : 0;
  }
  console.error(`error: ${path} failed: ${run.error?.message}`);
  for (const f of run.failures.slice(1)) console.error(`  also: ${f.message}`);
  if (run.lost.length) console.error(`  also: ${describeLost(run.lost)}`);
  console.error(`partial results written to ${ipynbPath} and ${htmlPath}`);
  return exitCodeForSignal() ?? 1;
}

async function commandReport(args: CliArgs): Promise<number> {
  const dir = args.notebooksDir;
  let names: string[];
  try {
    const found = await listNotebooks(dir); // *.ipynb, and *.ts in percent format
    names = found.names;
    for (const w of found.warnings) console.error(`warning: ${w}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`folder not found: ${dir}`);
    throw e;
  }
  if (names.length === 0) {
    console.error(`error: no notebooks (*.ipynb, or percent-format *.ts) in ${dir}`);
    return 1;
  }
  const rows: { name: string; mark: string; ok: boolean; seconds: number; note: string }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    console.log("");
    const t0 = performance.now();
    try {
      const { result, htmlPath, cachedFrom } = await runAndWrite(path, {
        out: args.out,
        timeoutSeconds: args.timeoutSeconds,
        continueOnError: args.continueOnError,
        logOutput: args.logOutput,
        autosaveSeconds: args.autosaveSeconds,
        useCache: !args.force,
        noInput: args.noInput,
        pdf: args.pdf,
      });
      if (!result) {
        rows.push({
          name,
          mark: "same",
          ok: true,
          seconds: (performance.now() - t0) / 1000,
          note: `${htmlPath} (unchanged since ${cachedFrom})`,
        });
        continue;
      }
      const failed = result.status === "error" || reportLost(path, result, args.allowDegraded);
      rows.push({
        name,
        mark: failed ? "FAIL" : result.status === "degraded" ? "degr" : "ok",
        ok: !failed,
        seconds: result.seconds,
        note: result.status === "error"
          ? `${result.error?.message} (partial report: ${htmlPath})`
          : result.status === "degraded"
          ? `${describeLost(result.lost)} (${htmlPath})`
          : htmlPath,
      });
      if (result.status === "error") {
        console.error(`error: ${path} failed: ${result.error?.message}`);
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      rows.push({
        name,
        mark: "FAIL",
        ok: false,
        seconds: (performance.now() - t0) / 1000,
        note: message,
      });
      console.error(`error: ${path}: ${message}`);
    }
    if (receivedSignal()) break;
  }
  const failed = rows.filter((r) => !r.ok).length;
  const same = rows.filter((r) => r.mark === "same").length;
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(
    `\nSummary: ${rows.length} of ${names.length} notebooks run, ${rows.length - failed} ok${
      same ? ` (${same} unchanged, not re-run)` : ""
    }, ${failed} failed`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.mark.padEnd(4)} ${r.name.padEnd(width)} ${
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
    if (e instanceof UsageError || e instanceof NotebookFileError) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof ParameterError) {
      const where = args[0] === "run" ? ` for ${parseNotebookArg(args)}` : "";
      console.error(`error: bad parameters${where}: ${e.message}`);
      return 2;
    }
    if (e instanceof NotebookSyntaxError) {
      console.error(`error: ${parseNotebookArg(args)} refused, ${e.message}`);
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
