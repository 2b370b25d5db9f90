/**
 * Many notebook runs started together (issue 17): `--runs` runs of a notebook through
 * `deno task run`, `--parallel` at a time, each into its own temporary folder. Prints how many
 * failed, with the first lines of each failure's output, and the wall-clock time. Kernel starts
 * that lost a port to another process show up as failures only if the client could not recover.
 * With `--kernels`, each run is only a kernel start, `1 + 1` and a shutdown in this process (the
 * start race without the notebook's work around it), and the starts that needed more than one
 * attempt are counted.
 *
 * ```sh
 * deno run -A bench/parallel_start.ts                          # 64 runs of notebook 01, 8 at a time
 * deno run -A bench/parallel_start.ts --runs 16 --parallel 4 --json
 * deno run -A bench/parallel_start.ts --repo /other/checkout   # the same in another checkout
 * deno run -A bench/parallel_start.ts --kernels --runs 200 --parallel 16
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Kernel } from "../lib/notebook/kernel.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "64" },
    parallel: { type: "string", default: "8" },
    notebook: { type: "string", default: "notebooks/01_shapes.ipynb" },
    repo: { type: "string", default: fileURLToPath(new URL("../", import.meta.url)) },
    json: { type: "boolean" },
    kernels: { type: "boolean" },
  },
});
const runs = Number(args.values.runs);
const parallel = Number(args.values.parallel);
for (const [name, n] of [["--runs", runs], ["--parallel", parallel]] as const) {
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name} expects a positive integer`);
    Deno.exit(2);
  }
}

const tmp = await Deno.makeTempDir({ prefix: "parallel-start-" });
const failures: { run: number; code: number; output: string }[] = [];
const seconds: number[] = [];
let retried = 0;
let next = 0;

async function kernelOnly(): Promise<void> {
  const kernel = await Kernel.start();
  try {
    if (kernel.startAttempts > 1) retried++;
    const r = await kernel.execute("1 + 1", { timeoutMs: 30_000 });
    if (r.status !== "ok") throw new Error(`1 + 1 ended with status ${r.status}`);
  } finally {
    await kernel.shutdown();
  }
}

const started = performance.now();
async function worker() {
  while (next < runs) {
    const run = next++;
    const t = performance.now();
    if (args.values.kernels) {
      try {
        await kernelOnly();
      } catch (e) {
        const output = String(e instanceof Error ? e.message : e).split("\n").slice(0, 3);
        failures.push({ run, code: 1, output: output.join("\n") });
      }
      seconds.push((performance.now() - t) / 1000);
      continue;
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "run", args.values.notebook, "--out", `${tmp}/${run}`],
      cwd: args.values.repo,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    seconds.push((performance.now() - t) / 1000);
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      failures.push({ run, code: out.code, output: text.split("\n").slice(0, 12).join("\n") });
      if (!args.values.json) console.error(`run ${run} failed (exit ${out.code})`);
    }
  }
}
await Promise.all(Array.from({ length: Math.min(parallel, runs) }, worker));
const wall = (performance.now() - started) / 1000;
await Deno.remove(tmp, { recursive: true });
const result = {
  notebook: args.values.kernels ? "(kernel starts only)" : args.values.notebook,
  repo: args.values.repo,
  runs,
  parallel,
  failed: failures.length,
  ...(args.values.kernels ? { retried } : {}),
  wallSeconds: Math.round(wall),
  runSeconds: {
    min: Math.round(Math.min(...seconds)),
    max: Math.round(Math.max(...seconds)),
  },
  failures,
};
if (args.values.json) console.log(JSON.stringify(result, null, 1));
else {
  console.log(
    `${runs} runs of ${result.notebook}, ${parallel} at a time: ${failures.length} failed` +
      (args.values.kernels ? `, ${retried} started on a later attempt ` : " ") +
      `(${result.wallSeconds} s; one run ${result.runSeconds.min}-${result.runSeconds.max} s)`,
  );
  for (const f of failures) console.log(`--- run ${f.run} (exit ${f.code}):\n${f.output}`);
}
Deno.exit(failures.length ? 1 : 0);
