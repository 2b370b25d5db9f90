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
import type { CellStatus } from "./cell.ts";
import { Checkpoints } from "./_checkpoint.ts";
import { cellOutputs, runCodeCell, SKIP_TAG, skippedNote } from "./_execute_cell.ts";
import { Kernel, type KernelOptions, type Message, receivedSignal } from "./kernel.ts";
import { LostMessageLedger } from "./_lost.ts";
import type { CodeCell, Notebook } from "./nbformat.ts";
import { hasTag, joinSource, newCellId } from "./nbformat.ts";
import { OutputCollector } from "./_outputs.ts";
import { injectParameters, parametersInEffect } from "./parameters.ts";
import { NotebookSyntaxError, notebookSyntaxErrors } from "./syntax.ts";

export { NotebookSyntaxError } from "./syntax.ts";
export { type CellStatus, executeCell, RAISES_TAG, SKIP_TAG } from "./cell.ts";

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

/** Statuses that stop the run (unless `continueOnError` and the kernel lives). */
const FAILED: ReadonlySet<CellStatus> = new Set(["error", "timeout", "died"]);

/** One run's notebook and bookkeeping, shared by the steps of {@linkcode runNotebook}. */
class NotebookRun {
  readonly startDate: Date = new Date();
  readonly options: RunOptions;
  readonly notebook: Notebook;
  readonly parameters: Record<string, unknown>;
  /** The code cells that run (non-empty ones), with their index in the notebook. */
  readonly codeCells: { cell: CodeCell; index: number }[];
  readonly collector: OutputCollector;
  readonly failures: RunFailure[] = [];
  readonly lost: LostMessageLedger = new LostMessageLedger();
  readonly checkpoints: Checkpoints;
  /** Code cells executed so far (skipped ones not counted). */
  executed = 0;

  constructor(nb: Notebook, options: RunOptions) {
    this.options = options;
    this.notebook = prepare(injectParameters(nb, options.parameters ?? {}));
    this.parameters = parametersInEffect(nb, options.parameters ?? {});
    this.codeCells = this.notebook.cells
      .map((cell, index) => ({ cell, index }))
      .filter((c): c is { cell: CodeCell; index: number } =>
        c.cell.cell_type === "code" && joinSource(c.cell.source).trim() !== ""
      );
    if (options.checkSyntax ?? true) {
      const willRun = (i: number) => !hasTag(this.notebook.cells[i], SKIP_TAG);
      const problems = notebookSyntaxErrors(this.notebook, willRun);
      if (problems.length > 0) throw new NotebookSyntaxError(problems);
    }
    this.collector = new OutputCollector({ streamLineLimit: options.streamLineLimit });
    this.checkpoints = new Checkpoints({
      save: options.onCheckpoint,
      onError: options.onCheckpointError,
      changes: () => this.collector.applied,
      snapshot: (running) => this.#snapshot(running),
    });
  }

  /** Copies the outputs gathered so far into the notebook's cells. */
  gatherOutputs(): void {
    for (const { cell, index } of this.codeCells) cell.outputs = this.collector.outputs(index);
  }

  /** Writes the run's record (`metadata.deno_runner`) with `extra` facts. */
  stamp(extra: Record<string, unknown>): void {
    this.notebook.metadata.deno_runner = {
      parameters: this.parameters,
      start_time: this.startDate.toISOString(),
      ...extra,
    };
  }

  #snapshot(running: number | null): Notebook {
    this.gatherOutputs();
    this.stamp({
      status: "running",
      saved_at: new Date().toISOString(),
      ...(running === null ? {} : { running_cell: running + 1 }),
      cells_done: this.executed - (running === null ? 0 : 1),
      cells_total: this.codeCells.length,
    });
    return this.notebook;
  }
}

/**
 * Runs every code cell of `nb` in order on a new kernel and returns the executed notebook.
 * Parameter problems throw `ParameterError` and syntax errors {@linkcode NotebookSyntaxError}
 * before anything runs; every other failure is reported in the result (with the outputs
 * gathered so far), never thrown. One cell at a time can also be run on a kernel of one's own
 * with {@linkcode executeCell} (`cell.ts`).
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
  const run = new NotebookRun(nb, options);
  let kernel: Kernel | undefined;
  let facts: RunResult["kernel"];
  try {
    kernel = await startKernel(run);
    if (kernel) await runCells(run, kernel);
  } finally {
    if (kernel) facts = await closeKernel(run.notebook, kernel);
    await run.checkpoints.settled();
    run.gatherOutputs();
  }
  return finish(run, (performance.now() - started) / 1000, facts);
}

/** Starts the kernel; a kernel that does not start is the run's failure, not an exception. */
async function startKernel(run: NotebookRun): Promise<Kernel | undefined> {
  try {
    return await Kernel.start({ ...run.options.kernel, cwd: run.options.cwd });
  } catch (e) {
    run.failures.push({
      kind: "startup",
      cellIndex: -1,
      position: 0,
      message: `the kernel did not start: ${e instanceof Error ? e.message : String(e)}`,
    });
    return undefined;
  }
}

/** Runs the code cells in order until one stops the run, then waits for late output. */
async function runCells(run: NotebookRun, kernel: Kernel): Promise<void> {
  await run.checkpoints.take(null, true);
  run.lost.count(kernel.lostMessages); // at start-up
  const total = run.codeCells.length;
  for (let n = 0; n < total; n++) {
    if (receivedSignal()) break; // stopped between two cells: run nothing more
    const status = await runCell(run, kernel, n);
    const stop = status === "interrupted" ||
      FAILED.has(status) && (!run.options.continueOnError || !kernel.alive);
    if (stop) break;
    if (status !== "skipped" && n < total - 1) await run.checkpoints.take(null, true);
  }
  if (kernel.alive) await kernel.drain();
  run.lost.count(kernel.lostMessages);
}

/** Runs code cell `n` (0-based among those that run), with progress, checkpoints and losses. */
async function runCell(run: NotebookRun, kernel: Kernel, n: number): Promise<CellStatus> {
  const { cell, index } = run.codeCells[n];
  const { options, collector } = run;
  const position = n + 1;
  const progress = {
    cellIndex: index,
    position,
    total: run.codeCells.length,
    firstLine: joinSource(cell.source).trim().split("\n")[0].slice(0, 80),
  };
  options.onProgress?.({ phase: "start", ...progress });
  if (hasTag(cell, SKIP_TAG)) {
    collector.push(index, skippedNote());
    options.onProgress?.({ phase: "end", ...progress, seconds: 0, status: "skipped" });
    return "skipped";
  }
  run.executed++;
  run.lost.ran(index, position);
  const stopTimer = run.checkpoints.during(index, options.checkpointIntervalMs ?? 30_000);
  const onMessage = options.onOutput &&
    ((message: Message) => options.onOutput!({ cellIndex: index, position, message }));
  let done;
  try {
    done = await runCodeCell(kernel, cell, cellOutputs(collector, index), {
      timeoutMs: options.cellTimeoutMs,
      interruptGraceMs: options.interruptGraceMs,
      label: describe(position, index),
      onMessage,
    });
  } finally {
    stopTimer();
  }
  if (done.failure !== undefined) {
    const kind = done.status as RunFailure["kind"]; // a failed status names its kind
    run.failures.push({ kind, cellIndex: index, position, message: done.failure });
  }
  run.lost.count(kernel.lostMessages);
  options.onProgress?.({ phase: "end", ...progress, seconds: done.seconds, status: done.status });
  return done.status;
}

/** Notes the kernel's facts and language, then shuts it down. */
async function closeKernel(notebook: Notebook, kernel: Kernel): Promise<RunResult["kernel"]> {
  const facts = {
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
  return facts;
}

/** The run's status and record in the notebook's metadata, and its result. */
function finish(run: NotebookRun, seconds: number, kernel: RunResult["kernel"]): RunResult {
  const { notebook, failures, lost } = run;
  const status = failures.length ? "error" : lost.total > 0 ? "degraded" : "ok";
  notebook.metadata.kernelspec ??= { name: "deno", display_name: "Deno", language: "typescript" };
  run.stamp({
    end_time: new Date().toISOString(),
    duration_seconds: Math.round(seconds * 1000) / 1000,
    status,
    ...(failures.length ? { error: failures[0].message } : {}),
    ...(lost.total > 0 ? { lost_messages: describeLost(lost.entries) } : {}),
  });
  return {
    notebook,
    status,
    error: failures[0],
    failures,
    lost: lost.entries,
    parameters: run.parameters,
    seconds,
    executedCells: run.executed,
    kernel,
  };
}
