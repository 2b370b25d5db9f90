/**
 * Runs a notebook top to bottom on a fresh Deno kernel and returns the executed notebook in
 * nbformat 4 form, like `jupyter nbconvert --execute` but without losing late outputs (see
 * `kernel.ts` for how completion is decided).
 *
 * Every code cell runs in order. Outputs are stored as a notebook frontend would keep them:
 * stream text merged per consecutive stream of the same name, `display_data`,
 * `execute_result` with its execution count, `error` with ename/evalue/traceback, display
 * updates applied to the output with the same display id, and `clear_output` (including
 * `wait: true`); a runaway stream keeps its first and last lines (`streamLineLimit`). A cell
 * error stops the run unless `continueOnError` is set or the cell is tagged `raises-exception`;
 * a cell tagged `skip-execution` is not run (its old outputs go, a note says it was skipped). A
 * cell that runs past `cellTimeoutMs` is interrupted (or, when interrupting does not stop it,
 * the kernel is killed) and gets an error output saying it timed out; a kernel that dies gets
 * an error output in the cell that was running, and the run stops there. On SIGINT (Ctrl-C) the
 * kernel client interrupts the running cell (`kernel.ts`); the cell gets an error output saying
 * it was interrupted and the run stops there, with the kernel shut down cleanly. Whatever
 * happens, the result holds every output gathered so far.
 *
 * Before anything runs, every code cell that will run is parsed (`syntax.ts`); a syntax error
 * throws {@linkcode NotebookSyntaxError} naming cell, line and column. Each code cell's
 * `metadata.execution` gets nbclient's timestamps (`iopub.status.busy`, `iopub.execute_input`,
 * `shell.execute_reply`, `iopub.status.idle`, as the kernel dated its messages). With
 * `onCheckpoint`, the notebook so far (metadata saying the run is in progress) is handed over
 * before the first cell, after every cell and every `checkpointIntervalMs` during a long one,
 * so that a caller can save it. A kernel message lost on the way (dropped, or failing its
 * signature) makes the run "degraded": outputs may be missing, and the result says which cells
 * were running when it happened.
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
  receivedSignal,
} from "./kernel.ts";
import type { Cell, CodeCell, ErrorOutput, Notebook, Output } from "./nbformat.ts";
import { joinSource, newCellId } from "./nbformat.ts";
import { injectParameters, parametersInEffect } from "./parameters.ts";
import { NotebookSyntaxError, notebookSyntaxErrors, syntaxErrors } from "./syntax.ts";

export { NotebookSyntaxError } from "./syntax.ts";

/** Tag of a code cell that is not run (nbclient's name). */
export const SKIP_TAG = "skip-execution";
/** Tag of a code cell whose error does not stop or fail the run (nbclient's name). */
export const RAISES_TAG = "raises-exception";

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
  /** Parse every code cell before running and refuse syntax errors (default true). */
  checkSyntax?: boolean;
  /** Lines a stream output keeps before it is capped to its first and last half (10,000). */
  streamLineLimit?: number;
  /** Called when a cell starts and when it ends. */
  onProgress?: (event: CellProgress) => void;
  /** Called for every output message of a cell as it arrives (e.g. to log it). */
  onOutput?: (event: CellOutput) => void;
  /**
   * Called with the executed notebook so far: before the first cell, after every cell, and
   * every `checkpointIntervalMs` during a cell that produced new output. The notebook is the
   * runner's live copy: serialize it before the first `await`. Calls never overlap; an error
   * thrown here is handed to `onCheckpointError` and the run goes on.
   */
  onCheckpoint?: (notebook: Notebook) => void | Promise<void>;
  /** Interval of checkpoints during a long cell (default 30 000 ms). */
  checkpointIntervalMs?: number;
  /** Told when `onCheckpoint` failed. */
  onCheckpointError?: (error: unknown) => void;
  /** Options for the kernel (its `cwd` comes from {@linkcode RunOptions.cwd}). */
  kernel?: Omit<KernelOptions, "cwd">;
}

/**
 * How a cell ended: "raised" is an error in a cell tagged `raises-exception`, "interrupted" a
 * cell stopped because this process received SIGINT.
 */
export type CellStatus =
  | "ok"
  | "error"
  | "timeout"
  | "died"
  | "skipped"
  | "raised"
  | "interrupted";

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

/** One output message of a cell, as it arrives. */
export interface CellOutput {
  /** Index of the cell in the executed notebook's `cells`. */
  cellIndex: number;
  /** 1-based position among the code cells that run. */
  position: number;
  /** The iopub message (`stream`, `display_data`, `execute_result`, `error`, ...). */
  message: Message;
}

/** Why a run failed. */
export interface RunFailure {
  /**
   * What went wrong: a cell error, a timeout, a kernel death, the kernel not starting, or a
   * SIGINT (Ctrl-C) that interrupted the run.
   */
  kind: "error" | "timeout" | "died" | "startup" | "interrupted";
  /** Index of the cell in the executed notebook (-1 when the kernel did not start). */
  cellIndex: number;
  /** 1-based position among the code cells that run (0 when the kernel did not start). */
  position: number;
  /** One-line description naming the cell. */
  message: string;
}

/** Kernel messages lost while one cell was the current execution. */
export interface LostMessages {
  /** Index of the cell in the executed notebook; -1 for losses before the first cell. */
  cellIndex: number;
  position: number;
  count: number;
}

/** Outcome of {@linkcode runNotebook}. */
export interface RunResult {
  /** The executed notebook (a copy; the input is not modified). */
  notebook: Notebook;
  /**
   * "ok" when every cell ran without error and no kernel message was lost; "degraded" when
   * the cells ran but messages were lost (outputs may be missing); "error" otherwise.
   */
  status: "ok" | "error" | "degraded";
  /** The failure that stopped the run, or the first one when `continueOnError` is set. */
  error?: RunFailure;
  /** Every failure, in cell order. */
  failures: RunFailure[];
  /** Kernel messages lost (dropped or failing verification), by the cell running then. */
  lost: LostMessages[];
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

/**
 * One line describing the lost messages of a run, e.g. "3 kernel messages lost (cell 4: 2,
 * cell 7: 1)"; empty when none were.
 *
 * @example
 * ```ts
 * import { describeLost } from "./runner.ts";
 * describeLost([{ cellIndex: 3, position: 2, count: 2 }]); // "2 kernel messages lost (cell 4: 2)"
 * ```
 */
export function describeLost(lost: LostMessages[]): string {
  const total = lost.reduce((n, l) => n + l.count, 0);
  if (total === 0) return "";
  const cells = lost.map((l) =>
    `${l.cellIndex < 0 ? "before the first cell" : `cell ${l.cellIndex + 1}`}: ${l.count}`
  ).join(", ");
  return `${total} kernel message${total === 1 ? "" : "s"} lost (${cells})`;
}

function errorOutput(ename: string, evalue: string): ErrorOutput {
  return { output_type: "error", ename, evalue, traceback: [`${ename}: ${evalue}`] };
}

function hasTag(cell: Cell, tag: string): boolean {
  const tags = cell.metadata?.tags;
  return Array.isArray(tags) && tags.includes(tag);
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
      delete cell.metadata.execution;
    }
  }
  return copy;
}

function describe(position: number, cellIndex: number): string {
  return `cell ${cellIndex + 1} (code cell ${position})`;
}

/** The kernel's bare answer to code it could not compile (it sends no message or position). */
function isBareExecutionFailure(ename: string, evalue: string, outputs: Output[]): boolean {
  return ename === "Error" && evalue === "Execution failed" &&
    !outputs.some((o) => o.output_type === "error");
}

/** What the TypeScript parser says about a cell the kernel refused without a reason. */
function parserNote(source: string): string {
  const first = syntaxErrors(source)[0];
  return first
    ? ` (TypeScript parser: line ${first.line}, column ${first.column}: ${first.message})`
    : " (the kernel gave no reason; the TypeScript parser finds no syntax error in this cell)";
}

/** Order of nbclient's timing keys in `metadata.execution`. */
const TIMING_KEYS = [
  "iopub.status.busy",
  "iopub.execute_input",
  "shell.execute_reply",
  "iopub.status.idle",
] as const;

function dateOf(m: Message): string {
  const d = m.header?.date;
  return typeof d === "string" && d !== "" ? d : new Date().toISOString();
}

/**
 * Runs every code cell of `nb` in order on a new kernel and returns the executed notebook.
 * Parameter problems throw `ParameterError` and syntax errors {@linkcode NotebookSyntaxError}
 * before anything runs; every other failure is reported in the result (with the outputs
 * gathered so far), never thrown.
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
  const parameters = parametersInEffect(nb, options.parameters ?? {});
  const codeCells = notebook.cells
    .map((cell, index) => ({ cell, index }))
    .filter((c): c is { cell: CodeCell; index: number } =>
      c.cell.cell_type === "code" && joinSource(c.cell.source).trim() !== ""
    );
  if (options.checkSyntax ?? true) {
    const problems = notebookSyntaxErrors(notebook, (i) => !hasTag(notebook.cells[i], SKIP_TAG));
    if (problems.length > 0) throw new NotebookSyntaxError(problems);
  }
  const collector = new OutputCollector({ streamLineLimit: options.streamLineLimit });
  const failures: RunFailure[] = [];
  const lost: LostMessages[] = [];
  let executed = 0;
  let kernel: Kernel | undefined;
  let kernelFacts: RunResult["kernel"];

  const runnerMetadata = (extra: Record<string, unknown>) => {
    notebook.metadata.deno_runner = {
      parameters,
      start_time: startDate.toISOString(),
      ...extra,
    };
  };
  const gatherOutputs = () => {
    for (const { cell, index } of codeCells) cell.outputs = collector.outputs(index);
  };

  // Checkpoints: never two at once; during a cell only when something new arrived.
  let saving: Promise<void> | null = null;
  let savedAt = -1;
  const checkpoint = async (running: number | null, force: boolean) => {
    if (!options.onCheckpoint) return;
    if (saving) {
      if (!force) return;
      await saving;
    }
    if (!force && collector.applied === savedAt) return;
    savedAt = collector.applied;
    gatherOutputs();
    runnerMetadata({
      status: "running",
      saved_at: new Date().toISOString(),
      ...(running === null ? {} : { running_cell: running + 1 }),
      cells_done: executed - (running === null ? 0 : 1),
      cells_total: codeCells.length,
    });
    const mine: Promise<void> = (async () => {
      try {
        await options.onCheckpoint!(notebook);
      } catch (e) {
        options.onCheckpointError?.(e);
      }
    })();
    saving = mine;
    await mine;
    if (saving === mine) saving = null;
  };

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
    if (kernel) await checkpoint(null, true);
    let lostSoFar = 0;
    // Losses are charged to the cell that ran last (-1: before the first cell, at start-up).
    let lastRun = { index: -1, position: 0 };
    const countLost = () => {
      const now = kernel!.lostMessages;
      if (now > lostSoFar) {
        const count = now - lostSoFar;
        const entry = lost.find((l) => l.cellIndex === lastRun.index);
        if (entry) entry.count += count;
        else lost.push({ cellIndex: lastRun.index, position: lastRun.position, count });
      }
      lostSoFar = now;
    };
    if (kernel) countLost(); // at start-up
    for (let n = 0; kernel && n < codeCells.length; n++) {
      if (receivedSignal()) break; // stopped between two cells: run nothing more
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
      if (hasTag(cell, SKIP_TAG)) {
        collector.push(index, {
          output_type: "stream",
          name: "stderr",
          text: [`Not run: this cell is tagged "${SKIP_TAG}".\n`],
        });
        options.onProgress?.({ phase: "end", ...progress, seconds: 0, status: "skipped" });
        continue;
      }
      const t0 = performance.now();
      const timing: Partial<Record<(typeof TIMING_KEYS)[number], string>> = {};
      const onMessage = (m: Message) => {
        const type = m.header.msg_type;
        if (type === "status") {
          const state = m.content.execution_state;
          if (state === "busy") timing["iopub.status.busy"] ??= dateOf(m);
          if (state === "idle") timing["iopub.status.idle"] ??= dateOf(m);
          return;
        }
        if (type === "execute_input") {
          timing["iopub.execute_input"] ??= dateOf(m);
          const count = m.content.execution_count;
          if (typeof count === "number") cell.execution_count = count;
        }
        collector.apply(index, m);
        options.onOutput?.({ cellIndex: index, position, message: m });
      };
      let status: CellStatus = "ok";
      executed++;
      lastRun = { index, position };
      /** Records a failure of this cell, with an error output unless the kernel sent one. */
      const fail = (kind: RunFailure["kind"], message: string, output?: ErrorOutput) => {
        if (output) collector.push(index, output);
        failures.push({ kind, cellIndex: index, position, message: `${message}` });
      };
      const interval = options.onCheckpoint
        ? setInterval(() => checkpoint(index, false), options.checkpointIntervalMs ?? 30_000)
        : undefined;
      try {
        const result = await kernel.execute(source, {
          timeoutMs: options.cellTimeoutMs,
          onMessage,
          keepMessages: false,
        });
        if (result.executionCount !== null) cell.execution_count = result.executionCount;
        if (result.replyDate) timing["shell.execute_reply"] = result.replyDate;
        if (result.status !== "ok" && receivedSignal() === "SIGINT") {
          status = "interrupted";
          fail(
            "interrupted",
            `${describe(position, index)} was interrupted (SIGINT)`,
            errorOutput("Interrupted", "Interrupted by SIGINT (Ctrl-C); the run stopped here."),
          );
        } else if (result.status !== "ok") {
          const ename = String(result.reply.ename ?? "Error");
          let evalue = String(result.reply.evalue ?? result.status);
          const outputs = collector.outputs(index);
          const bare = isBareExecutionFailure(ename, evalue, outputs);
          if (bare) evalue += parserNote(source);
          const sent = outputs.some((o) => o.output_type === "error");
          if (hasTag(cell, RAISES_TAG)) {
            status = "raised";
            if (!sent) collector.push(index, errorOutput(ename, evalue));
          } else {
            status = "error";
            fail(
              "error",
              `${describe(position, index)} raised ${ename}: ${evalue}`,
              sent ? undefined : errorOutput(ename, evalue), // kernel sent no error output
            );
          }
        }
      } catch (e) {
        if (e instanceof ExecuteTimeoutError) {
          status = "timeout";
          const limit = (options.cellTimeoutMs ?? 0) / 1000;
          const stopped = await kernel.interrupt(options.interruptGraceMs ?? 3000);
          if (!stopped && kernel.alive) kernel.kill(`cell timed out after ${limit} s`);
          const how = stopped ? "it was interrupted" : "the kernel was killed";
          fail(
            "timeout",
            `${describe(position, index)} timed out after ${limit} s (${how})`,
            errorOutput("TimeoutError", `Cell timed out after ${limit} s; ${how}.`),
          );
        } else if (e instanceof KernelDiedError && receivedSignal() === "SIGINT") {
          status = "interrupted";
          const why = e.exit.reason;
          fail(
            "interrupted",
            `${describe(position, index)} was interrupted (SIGINT); the kernel was ${why}`,
            errorOutput(
              "Interrupted",
              `Interrupted by SIGINT (Ctrl-C); the cell did not stop, so the kernel was ${why}.`,
            ),
          );
        } else if (e instanceof KernelDiedError) {
          status = "died";
          const why = e.exit.reason;
          fail(
            "died",
            `the kernel died while running ${describe(position, index)} (${why})`,
            errorOutput("KernelDied", `The kernel died while running this cell (${why}).`),
          );
        } else {
          // Not expected; still keep what was gathered and say where it happened.
          status = "error";
          const text = e instanceof Error ? e.message : String(e);
          fail(
            "error",
            `${describe(position, index)} could not run: ${text}`,
            errorOutput("RunnerError", text),
          );
        }
      } finally {
        clearInterval(interval);
      }
      cell.metadata.execution = Object.fromEntries(
        TIMING_KEYS.filter((k) => timing[k] !== undefined).map((k) => [k, timing[k]]),
      );
      countLost();
      options.onProgress?.({
        phase: "end",
        ...progress,
        seconds: (performance.now() - t0) / 1000,
        status,
      });
      const stop = status === "interrupted" ||
        (status === "error" || status === "timeout" || status === "died") &&
          (!options.continueOnError || !kernel.alive);
      if (!stop && n < codeCells.length - 1) await checkpoint(null, true);
      if (stop) break;
    }
    if (kernel?.alive) await kernel.drain();
    if (kernel) countLost();
  } finally {
    if (kernel) {
      kernelFacts = {
        pid: kernel.pid,
        connectionFile: kernel.connectionFile,
        startupMs: kernel.startupMs,
        reattributed: kernel.reattributed,
        droppedMessages: kernel.lostMessages,
        repairedMessages: kernel.streamRepairs.repaired,
      };
      const info = kernel.info.language_info;
      if (info && typeof info === "object") {
        notebook.metadata.language_info = info as { name: string };
      }
      await kernel.shutdown();
    }
    await saving;
    gatherOutputs();
  }

  const seconds = (performance.now() - started) / 1000;
  const lostTotal = lost.reduce((a, l) => a + l.count, 0);
  const status = failures.length ? "error" : lostTotal > 0 ? "degraded" : "ok";
  notebook.metadata.kernelspec ??= { name: "deno", display_name: "Deno", language: "typescript" };
  runnerMetadata({
    end_time: new Date().toISOString(),
    duration_seconds: Math.round(seconds * 1000) / 1000,
    status,
    ...(failures.length ? { error: failures[0].message } : {}),
    ...(lostTotal > 0 ? { lost_messages: describeLost(lost) } : {}),
  });
  return {
    notebook,
    status,
    error: failures[0],
    failures,
    lost,
    parameters,
    seconds,
    executedCells: executed,
    kernel: kernelFacts,
  };
}
