/**
 * Executes one code cell on a live {@linkcode Kernel}, as `runNotebook` (`runner.ts`) runs each
 * cell (nbclient's `execute_cell` beside its `execute`): for a client that keeps a kernel alive
 * and re-runs single cells, e.g. a live preview.
 *
 * The cell is updated in place, as a notebook frontend would: its outputs (streams merged,
 * displays updated, `clear_output` applied, a runaway stream capped), its execution count and
 * nbclient's timing keys in `metadata.execution`. A cell tagged `skip-execution` is not run; an
 * error in a cell tagged `raises-exception` gives status "raised". A cell that runs past
 * `timeoutMs` is interrupted (the kernel is killed when that does not stop it). Failures are
 * returned, not thrown; the error output is added when the kernel sent none.
 *
 * @example
 * ```ts
 * import { Kernel } from "./kernel.ts";
 * import { executeCell } from "./cell.ts";
 * import type { CodeCell } from "./nbformat.ts";
 * await using kernel = await Kernel.start({ cwd: "notebooks" });
 * const cell: CodeCell = {
 *   cell_type: "code",
 *   metadata: {},
 *   source: 'console.log("hi"); 6 * 7',
 *   outputs: [],
 *   execution_count: null,
 * };
 * const run = await executeCell(kernel, cell, { timeoutMs: 60_000 });
 * console.log(run.status, cell.execution_count, cell.outputs.length); // "ok" 1 2
 * ```
 * @module
 */
import type { Kernel, Message } from "./kernel.ts";
import { type CodeCell, hasTag, type Output } from "./nbformat.ts";
import { OutputCollector } from "./_outputs.ts";
import { cellOutputs, runCodeCell, SKIP_TAG, skippedNote } from "./_execute_cell.ts";

export { RAISES_TAG, SKIP_TAG } from "./_execute_cell.ts";

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

/** Options for {@linkcode executeCell}. */
export interface ExecuteCellOptions {
  /** Time limit in milliseconds (default: none). */
  timeoutMs?: number;
  /** How long to wait for an interrupted cell to stop before killing the kernel (default 3 s). */
  interruptGraceMs?: number;
  /** Lines a stream output keeps before it is capped to its first and last half (10,000). */
  streamLineLimit?: number;
  /** Called for every output message of the cell as it arrives (not for `status` messages). */
  onMessage?: (message: Message) => void;
  /** How failure lines name the cell (default "the cell"), e.g. "cell 3 (code cell 2)". */
  label?: string;
}

/** Outcome of {@linkcode executeCell}. */
export interface CellExecution {
  /** How the cell ended. */
  status: CellStatus;
  /** One line naming the cell and what went wrong, when the status is a failure. */
  failure?: string;
  /** Run time in seconds. */
  seconds: number;
  /** The cell's outputs (also in the cell's `outputs`). */
  outputs: Output[];
}

/**
 * Executes `cell` on `kernel` and updates the cell in place (outputs, execution count, timing
 * metadata); see the module documentation. Output the kernel publishes after this returns
 * (late console output of unawaited work) is still appended to `cell.outputs`, until a later
 * execution on the kernel has finished (the kernel then releases the cell, so that a long-lived
 * kernel does not keep every call's outputs; `kernel.drain()` waits for late output). Each call
 * keeps its own outputs: a display update sent by another cell's call does not reach them (within one
 * `runNotebook` run it does). Calls on one kernel run one at a time, in call order.
 *
 * @example
 * ```ts
 * import { Kernel } from "./kernel.ts";
 * import { executeCell } from "./cell.ts";
 * import type { CodeCell } from "./nbformat.ts";
 * await using kernel = await Kernel.start();
 * const cell = (source: string): CodeCell => ({
 *   cell_type: "code", metadata: {}, source, outputs: [], execution_count: null,
 * });
 * await executeCell(kernel, cell("let n = 1;"));
 * const run = await executeCell(kernel, cell("n += 1; throw new Error(`n is ${n}`)"));
 * console.log(run.status, run.failure); // "error" "the cell raised Error: n is 2"
 * ```
 */
export async function executeCell(
  kernel: Kernel,
  cell: CodeCell,
  options: ExecuteCellOptions = {},
): Promise<CellExecution> {
  const collector = new OutputCollector({ streamLineLimit: options.streamLineLimit });
  const outputs = cellOutputs(collector, 0);
  cell.metadata ??= {};
  cell.outputs = outputs.list();
  cell.execution_count = null;
  delete cell.metadata.execution;
  if (hasTag(cell, SKIP_TAG)) {
    outputs.push(skippedNote());
    return { status: "skipped", seconds: 0, outputs: outputs.list() };
  }
  const run = await runCodeCell(kernel, cell, outputs, options);
  cell.outputs = run.outputs;
  return run;
}
