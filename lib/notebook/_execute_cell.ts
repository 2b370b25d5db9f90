/**
 * One code cell on a live kernel: send it, route its messages into its outputs, note nbclient's
 * timing keys, and turn how it ended (reply status, timeout, kernel death, SIGINT) into a
 * status, a one-line failure and, where the kernel sent none, an error output. Private helper of
 * `cell.ts` and `runner.ts`, which own the outputs (`runner.ts` shares one collector between all
 * cells, so that display updates reach earlier cells).
 *
 * @module
 */
import type { CellExecution, CellStatus, ExecuteCellOptions } from "./cell.ts";
import {
  type ExecuteResult,
  ExecuteTimeoutError,
  type Kernel,
  KernelDiedError,
  type Message,
  receivedSignal,
} from "./kernel.ts";
import { type CodeCell, type ErrorOutput, hasTag, joinSource, type Output } from "./nbformat.ts";
import type { OutputCollector } from "./_outputs.ts";
import { syntaxErrors } from "./syntax.ts";

/** Tag of a code cell that is not run (nbclient's name). */
export const SKIP_TAG = "skip-execution";
/** Tag of a code cell whose error does not stop or fail the run (nbclient's name). */
export const RAISES_TAG = "raises-exception";

/** Where one cell's outputs go. */
export interface CellOutputs {
  /** Applies an iopub message (stream, display, error, clear_output, ...). */
  apply(message: Message): void;
  /** Adds an output the client made up (an error the kernel did not send). */
  push(output: Output): void;
  /** The cell's outputs so far. */
  list(): Output[];
}

/** The outputs of cell `index` in a collector shared by several cells. */
export function cellOutputs(collector: OutputCollector, index: number): CellOutputs {
  return {
    apply: (m) => collector.apply(index, m),
    push: (o) => collector.push(index, o),
    list: () => collector.outputs(index),
  };
}

/** The output that stands in a cell tagged `skip-execution`. */
export function skippedNote(): Output {
  return {
    output_type: "stream",
    name: "stderr",
    text: [`Not run: this cell is tagged "${SKIP_TAG}".\n`],
  };
}

function errorOutput(ename: string, evalue: string): ErrorOutput {
  return { output_type: "error", ename, evalue, traceback: [`${ename}: ${evalue}`] };
}

/** Order of nbclient's timing keys in `metadata.execution`. */
const TIMING_KEYS = [
  "iopub.status.busy",
  "iopub.execute_input",
  "shell.execute_reply",
  "iopub.status.idle",
] as const;

type Timing = Partial<Record<(typeof TIMING_KEYS)[number], string>>;

function dateOf(m: Message): string {
  const d = m.header?.date;
  return typeof d === "string" && d !== "" ? d : new Date().toISOString();
}

/** How an execution ended: its status, the failure line, an error output to add. */
interface Outcome {
  status: CellStatus;
  failure?: string;
  output?: ErrorOutput;
}

/**
 * Executes `cell` on `kernel`: its outputs go to `outputs`, its execution count and timing
 * metadata into the cell. Failures are returned, never thrown (but for a kernel that cannot even
 * be interrupted). The skip tag is the caller's to check.
 */
export async function runCodeCell(
  kernel: Kernel,
  cell: CodeCell,
  outputs: CellOutputs,
  options: ExecuteCellOptions = {},
): Promise<CellExecution> {
  const started = performance.now();
  const source = joinSource(cell.source);
  const label = options.label ?? "the cell";
  const timing: Timing = {};
  let outcome: Outcome;
  try {
    const result = await kernel.execute(source, {
      timeoutMs: options.timeoutMs,
      onMessage: (m) => route(m, cell, timing, outputs, options.onMessage),
      keepMessages: false,
    });
    if (result.executionCount !== null) cell.execution_count = result.executionCount;
    if (result.replyDate) timing["shell.execute_reply"] = result.replyDate;
    outcome = replyOutcome(result, cell, outputs, label);
  } catch (e) {
    outcome = await thrownOutcome(e, kernel, label, options);
  }
  if (outcome.output) outputs.push(outcome.output);
  cell.metadata.execution = Object.fromEntries(
    TIMING_KEYS.filter((k) => timing[k] !== undefined).map((k) => [k, timing[k]]),
  );
  return {
    status: outcome.status,
    ...(outcome.failure === undefined ? {} : { failure: outcome.failure }),
    seconds: (performance.now() - started) / 1000,
    outputs: outputs.list(),
  };
}

/** One iopub message of the cell: status and execute_input give timing, the rest outputs. */
function route(
  m: Message,
  cell: CodeCell,
  timing: Timing,
  outputs: CellOutputs,
  onMessage?: (m: Message) => void,
): void {
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
  outputs.apply(m);
  onMessage?.(m);
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

/** A reply came: ok, an error (expected when tagged `raises-exception`), or a SIGINT. */
function replyOutcome(
  result: ExecuteResult,
  cell: CodeCell,
  outputs: CellOutputs,
  label: string,
): Outcome {
  if (result.status === "ok") return { status: "ok" };
  if (receivedSignal() === "SIGINT") {
    return {
      status: "interrupted",
      failure: `${label} was interrupted (SIGINT)`,
      output: errorOutput("Interrupted", "Interrupted by SIGINT (Ctrl-C); the run stopped here."),
    };
  }
  const ename = String(result.reply.ename ?? "Error");
  let evalue = String(result.reply.evalue ?? result.status);
  const list = outputs.list();
  if (isBareExecutionFailure(ename, evalue, list)) evalue += parserNote(joinSource(cell.source));
  // The kernel usually sends the error as an output itself; add one only when it did not.
  const sent = list.some((o) => o.output_type === "error");
  const output = sent ? undefined : errorOutput(ename, evalue);
  if (hasTag(cell, RAISES_TAG)) return { status: "raised", output };
  return { status: "error", failure: `${label} raised ${ename}: ${evalue}`, output };
}

/** No reply: the time limit passed, the kernel died (perhaps killed after a SIGINT), or worse. */
async function thrownOutcome(
  e: unknown,
  kernel: Kernel,
  label: string,
  options: ExecuteCellOptions,
): Promise<Outcome> {
  if (e instanceof ExecuteTimeoutError) {
    const limit = (options.timeoutMs ?? 0) / 1000;
    const stopped = await kernel.interrupt(options.interruptGraceMs ?? 3000);
    if (!stopped && kernel.alive) kernel.kill(`cell timed out after ${limit} s`);
    const how = stopped ? "it was interrupted" : "the kernel was killed";
    return {
      status: "timeout",
      failure: `${label} timed out after ${limit} s (${how})`,
      output: errorOutput("TimeoutError", `Cell timed out after ${limit} s; ${how}.`),
    };
  }
  if (e instanceof KernelDiedError) {
    const why = e.exit.reason;
    return receivedSignal() === "SIGINT"
      ? {
        status: "interrupted",
        failure: `${label} was interrupted (SIGINT); the kernel was ${why}`,
        output: errorOutput(
          "Interrupted",
          `Interrupted by SIGINT (Ctrl-C); the cell did not stop, so the kernel was ${why}.`,
        ),
      }
      : {
        status: "died",
        failure: `the kernel died while running ${label} (${why})`,
        output: errorOutput("KernelDied", `The kernel died while running this cell (${why}).`),
      };
  }
  // Not expected; still keep what was gathered and say where it happened.
  const text = e instanceof Error ? e.message : String(e);
  return {
    status: "error",
    failure: `${label} could not run: ${text}`,
    output: errorOutput("RunnerError", text),
  };
}
