/**
 * Runs a notebook top to bottom on a fresh Deno kernel and returns the executed notebook in
 * nbformat 4 form, like `jupyter nbconvert --execute` but without losing late outputs (see
 * `kernel.ts` for how completion is decided).
 *
 * Every code cell runs in order. Outputs are stored as a notebook frontend would keep them:
 * stream text merged per consecutive stream of the same name, `display_data`,
 * `execute_result` with its execution count, `error` with ename/evalue/traceback, display
 * updates applied to the output with the same display id, and `clear_output` (including
 * `wait: true`). A cell error stops the run unless `continueOnError` is set; a cell that runs
 * past `cellTimeoutMs` is interrupted (or, when interrupting does not stop it, the kernel is
 * killed) and gets an error output saying it timed out; a kernel that dies gets an error
 * output in the cell that was running, and the run stops there. Whatever happens, the result
 * holds every output gathered so far.
 *
 * @example
 * ```ts
 * import { runNotebook } from "./runner.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * const result = await runNotebook(nb, {
 *   cwd: "notebooks",
 *   parameters: { epochs: 1 },
 *   cellTimeoutMs: 600_000,
 *   onProgress: (e) => e.phase === "end" && console.log(e.position, e.status),
 * });
 * console.log(result.status, result.error?.message);
 * ```
 * @module
 */
import { OutputCollector } from "./_outputs.ts";
import {
  ExecuteTimeoutError,
  Kernel,
  KernelDiedError,
  type KernelOptions,
  type Message,
} from "./kernel.ts";
import type { CodeCell, ErrorOutput, Notebook } from "./nbformat.ts";
import { joinSource, newCellId } from "./nbformat.ts";
import { injectParameters, parameterDefaults } from "./parameters.ts";

/** Options for {@linkcode runNotebook}. */
export interface RunOptions {
  /** Working directory of the kernel, usually the notebook's folder (default: `Deno.cwd()`). */
  cwd?: string;
  /** Parameter values; injected after the cell tagged `parameters` (see `parameters.ts`). */
  parameters?: Record<string, unknown>;
  /** Keep running the cells after a cell error (default false). */
  continueOnError?: boolean;
  /** Time limit per cell in milliseconds (default: none). */
  cellTimeoutMs?: number;
  /** How long to wait for an interrupted cell to stop before killing the kernel (default 3 s). */
  interruptGraceMs?: number;
  /** Called when a cell starts and when it ends. */
  onProgress?: (event: CellProgress) => void;
  /** Options for the kernel (its `cwd` comes from {@linkcode RunOptions.cwd}). */
  kernel?: Omit<KernelOptions, "cwd">;
}

/** How a cell ended. */
export type CellStatus = "ok" | "error" | "timeout" | "died";

/** Progress of one code cell. */
export interface CellProgress {
  /** "start" before the cell runs, "end" after. */
  phase: "start" | "end";
  /** Index of the cell in the executed notebook's `cells`. */
  cellIndex: number;
  /** 1-based position among the code cells that run. */
  position: number;
  /** Number of code cells that run (non-empty ones). */
  total: number;
  /** First line of the cell's source. */
  firstLine: string;
  /** Run time in seconds ("end" only). */
  seconds?: number;
  /** How the cell ended ("end" only). */
  status?: CellStatus;
}

/** Why a run failed. */
export interface RunFailure {
  /** What went wrong: a cell error, a timeout, a kernel death, or the kernel not starting. */
  kind: "error" | "timeout" | "died" | "startup";
  /** Index of the cell in the executed notebook (-1 when the kernel did not start). */
  cellIndex: number;
  /** 1-based position among the code cells that run (0 when the kernel did not start). */
  position: number;
  /** One-line description naming the cell. */
  message: string;
}

/** Outcome of {@linkcode runNotebook}. */
export interface RunResult {
  /** The executed notebook (a copy; the input is not modified). */
  notebook: Notebook;
  /** "ok" when every cell ran without error. */
  status: "ok" | "error";
  /** The failure that stopped the run, or the first one when `continueOnError` is set. */
  error?: RunFailure;
  /** Every failure, in cell order. */
  failures: RunFailure[];
  /** Parameters in effect: the defaults of the parameters cell with the overrides applied. */
  parameters: Record<string, unknown>;
  /** Wall-clock seconds of the whole run, kernel start and shutdown included. */
  seconds: number;
  /** Code cells that were executed. */
  executedCells: number;
  /** Kernel facts: process id, connection file, startup time, late messages handed back. */
  kernel?: {
    pid: number;
    connectionFile: string;
    startupMs: number;
    reattributed: number;
    droppedMessages: number;
    /** iopub messages recovered after the kernel interleaved two writes (see `_zmtp.ts`). */
    repairedMessages: number;
  };
}

function errorOutput(ename: string, evalue: string): ErrorOutput {
  return { output_type: "error", ename, evalue, traceback: [`${ename}: ${evalue}`] };
}

/**
 * Readies the run's own copy of the notebook (`injectParameters` always returns a fresh one), in
 * place: ids on every cell (nbformat 4.5), code outputs cleared.
 */
function prepare(copy: Notebook): Notebook {
  copy.nbformat = 4;
  copy.nbformat_minor = Math.max(5, copy.nbformat_minor ?? 0);
  copy.metadata ??= {};
  const seen = new Set<string>();
  for (const cell of copy.cells) {
    cell.metadata ??= {};
    if (!cell.id || seen.has(cell.id) || !/^[a-zA-Z0-9-_]{1,64}$/.test(cell.id)) {
      cell.id = newCellId();
    }
    seen.add(cell.id);
    if (cell.cell_type === "code") {
      cell.outputs = [];
      cell.execution_count = null;
    }
  }
  return copy;
}

function describe(position: number, cellIndex: number): string {
  return `cell ${cellIndex + 1} (code cell ${position})`;
}

/**
 * Runs every code cell of `nb` in order on a new kernel and returns the executed notebook.
 * Parameter problems throw `ParameterError` before anything runs; every other failure is
 * reported in the result (with the outputs gathered so far), never thrown.
 *
 * @example
 * ```ts
 * import { runNotebook } from "./runner.ts";
 * const result = await runNotebook({
 *   nbformat: 4,
 *   nbformat_minor: 5,
 *   metadata: {},
 *   cells: [{ cell_type: "code", source: "1 + 1", metadata: {}, outputs: [], execution_count: null }],
 * });
 * console.log(result.status, result.notebook.cells[0]);
 * ```
 */
export async function runNotebook(nb: Notebook, options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const startDate = new Date();
  const notebook = prepare(injectParameters(nb, options.parameters ?? {}));
  const parameters = { ...parameterDefaults(nb), ...options.parameters };
  const collector = new OutputCollector();
  const failures: RunFailure[] = [];
  const codeCells = notebook.cells
    .map((cell, index) => ({ cell, index }))
    .filter((c): c is { cell: CodeCell; index: number } =>
      c.cell.cell_type === "code" && joinSource(c.cell.source).trim() !== ""
    );
  let executed = 0;
  let kernel: Kernel | undefined;
  let kernelFacts: RunResult["kernel"];

  try {
    try {
      kernel = await Kernel.start({ ...options.kernel, cwd: options.cwd });
    } catch (e) {
      failures.push({
        kind: "startup",
        cellIndex: -1,
        position: 0,
        message: `the kernel did not start: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
    for (let n = 0; kernel && n < codeCells.length; n++) {
      const { cell, index } = codeCells[n];
      const position = n + 1;
      const source = joinSource(cell.source);
      const progress = {
        cellIndex: index,
        position,
        total: codeCells.length,
        firstLine: source.trim().split("\n")[0].slice(0, 80),
      };
      options.onProgress?.({ phase: "start", ...progress });
      const t0 = performance.now();
      const onMessage = (m: Message) => {
        if (
          m.header.msg_type === "execute_input" && typeof m.content.execution_count === "number"
        ) {
          cell.execution_count = m.content.execution_count;
        }
        collector.apply(index, m);
      };
      let status: CellStatus = "ok";
      executed++;
      try {
        const result = await kernel.execute(source, {
          timeoutMs: options.cellTimeoutMs,
          onMessage,
        });
        if (result.executionCount !== null) cell.execution_count = result.executionCount;
        if (result.status !== "ok") {
          status = "error";
          const ename = String(result.reply.ename ?? "Error");
          const evalue = String(result.reply.evalue ?? result.status);
          if (!collector.outputs(index).some((o) => o.output_type === "error")) {
            collector.push(index, errorOutput(ename, evalue)); // kernel sent no error output
          }
          failures.push({
            kind: "error",
            cellIndex: index,
            position,
            message: `${describe(position, index)} raised ${ename}: ${evalue}`,
          });
        }
      } catch (e) {
        if (e instanceof ExecuteTimeoutError) {
          status = "timeout";
          const limit = (options.cellTimeoutMs ?? 0) / 1000;
          const stopped = await kernel.interrupt(options.interruptGraceMs ?? 3000);
          if (!stopped && kernel.alive) kernel.kill(`cell timed out after ${limit} s`);
          const how = stopped ? "it was interrupted" : "the kernel was killed";
          collector.push(
            index,
            errorOutput("TimeoutError", `Cell timed out after ${limit} s; ${how}.`),
          );
          failures.push({
            kind: "timeout",
            cellIndex: index,
            position,
            message: `${describe(position, index)} timed out after ${limit} s (${how})`,
          });
        } else if (e instanceof KernelDiedError) {
          status = "died";
          collector.push(
            index,
            errorOutput(
              "KernelDied",
              `The kernel died while running this cell (${e.exit.reason}).`,
            ),
          );
          failures.push({
            kind: "died",
            cellIndex: index,
            position,
            message: `the kernel died while running ${
              describe(position, index)
            } (${e.exit.reason})`,
          });
        } else {
          // Not expected; still keep what was gathered and say where it happened.
          status = "error";
          const text = e instanceof Error ? e.message : String(e);
          collector.push(index, errorOutput("RunnerError", text));
          failures.push({
            kind: "error",
            cellIndex: index,
            position,
            message: `${describe(position, index)} could not run: ${text}`,
          });
        }
      }
      options.onProgress?.({
        phase: "end",
        ...progress,
        seconds: (performance.now() - t0) / 1000,
        status,
      });
      if (status !== "ok" && (!options.continueOnError || !kernel.alive)) break;
    }
    if (kernel?.alive) await kernel.drain();
  } finally {
    if (kernel) {
      kernelFacts = {
        pid: kernel.pid,
        connectionFile: kernel.connectionFile,
        startupMs: kernel.startupMs,
        reattributed: kernel.reattributed,
        droppedMessages: Object.values(kernel.dropped).reduce((a, b) => a + b, 0) +
          kernel.streamRepairs.skipped,
        repairedMessages: kernel.streamRepairs.repaired,
      };
      const info = kernel.info.language_info;
      if (info && typeof info === "object") {
        notebook.metadata.language_info = info as { name: string };
      }
      await kernel.shutdown();
    }
    for (const { cell, index } of codeCells) cell.outputs = collector.outputs(index);
  }

  const seconds = (performance.now() - started) / 1000;
  notebook.metadata.kernelspec ??= { name: "deno", display_name: "Deno", language: "typescript" };
  notebook.metadata.deno_runner = {
    parameters,
    start_time: startDate.toISOString(),
    end_time: new Date().toISOString(),
    duration_seconds: Math.round(seconds * 1000) / 1000,
    status: failures.length ? "error" : "ok",
    ...(failures.length ? { error: failures[0].message } : {}),
  };
  return {
    notebook,
    status: failures.length ? "error" : "ok",
    error: failures[0],
    failures,
    parameters,
    seconds,
    executedCells: executed,
    kernel: kernelFacts,
  };
}
