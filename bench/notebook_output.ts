/**
 * How fast the notebook runner takes in a flood of output: one cell prints `--lines` lines with
 * `console.log` (default 100,000), run on the real Deno kernel with `runNotebook`. Prints the
 * time from the cell's start to its last line, the whole run's, the CPU time the runner process used (receiving,
 * verifying and storing the messages), how many lines the executed notebook kept (runaway
 * streams are capped, see `lib/notebook/_outputs.ts`) and the notebook's size. Target (issue
 * 14): 100,000 lines handled by the runner in ≤ 5 s. Each `console.log` is one message from the
 * Deno 2.9 kernel, which spends about 0.2 ms of its own CPU on each; on a loaded machine that,
 * not the runner, sets the wall-clock time.
 *
 * ```sh
 * deno run -A bench/notebook_output.ts                 # 100,000 lines
 * deno run -A bench/notebook_output.ts --lines 10000 --json
 * ```
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { runNotebook } from "../lib/notebook/runner.ts";
import type { Notebook } from "../lib/notebook/nbformat.ts";

const args = parseArgs({
  args: Deno.args,
  options: { lines: { type: "string", default: "100000" }, json: { type: "boolean" } },
});
const lines = Number(args.values.lines);
if (!Number.isInteger(lines) || lines < 1) {
  console.error(`--lines expects a positive integer, got "${args.values.lines}"`);
  Deno.exit(2);
}
const nb: Notebook = {
  nbformat: 4,
  nbformat_minor: 5,
  metadata: {},
  cells: [{
    cell_type: "code",
    metadata: {},
    execution_count: null,
    outputs: [],
    source: `for (let i = 0; i < ${lines}; i++) console.log("line " + i);`,
  }],
};
let started = 0;
let lastLine = 0;
const cpu = process.cpuUsage();
const result = await runNotebook(nb, {
  onProgress: (e) => {
    if (e.phase === "start") started = performance.now();
  },
  // The time of the last line received: a cell can be "done" (reply, idle, a quiet moment)
  // while the kernel is still sending what it printed, which then arrives as late output.
  onOutput: () => {
    lastLine = performance.now();
  },
});
const used = process.cpuUsage(cpu);
if (result.status !== "ok") {
  console.error(`the run failed: ${result.error?.message}`);
  Deno.exit(1);
}
const cell = result.notebook.cells[0];
const kept = cell.cell_type === "code"
  ? cell.outputs.reduce((n, o) => n + (o.output_type === "stream" ? o.text.length : 0), 0)
  : 0;
const bytes = JSON.stringify(result.notebook).length;
const row = {
  lines,
  last_line_s: Math.round((lastLine - started) / 10) / 100,
  run_s: Math.round(result.seconds * 100) / 100,
  runner_cpu_s: Math.round((used.user + used.system) / 1e4) / 100,
  kept_lines: kept,
  notebook_bytes: bytes,
  dropped: result.kernel?.droppedMessages ?? 0,
};
if (args.values.json) console.log(JSON.stringify(row));
else {
  console.log(
    `${lines} lines: last line after ${row.last_line_s} s, run ${row.run_s} s (kernel start ` +
      `included), ` +
      `runner CPU ${row.runner_cpu_s} s (the rest is the kernel producing the messages); ` +
      `notebook keeps ${kept} lines, ${(bytes / 1024).toFixed(0)} KiB; ${row.dropped} dropped`,
  );
}
