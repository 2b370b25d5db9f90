/**
 * Stop during notebook 02's training, measured: its cells run in a real Deno kernel through the
 * project's client (`lib/notebook/kernel.ts`), which interrupts by message (`interrupt_request`,
 * as a frontend does with a kernelspec whose `interrupt_mode` is `message`). Each trial starts
 * the training cell, waits until the progress bar has moved `--after` times (default once) and
 * a delay that differs per trial (so that the Stop lands in different parts of a step),
 * interrupts, and
 * records: the seconds from the interrupt to the cell's end (reply and idle), `tf.memory()
 * .numTensors` before the cell and after it, the repair lib made (`lastEngineRepair()`), and
 * whether a new training run with other hyperparameters (on a small subset, every arm) then
 * trains with finite losses. All trials share one kernel, as a person's session would; a kernel
 * stuck after a Stop is recorded as such and replaced by a new one for the next trial.
 *
 * ```sh
 * deno run -A bench/interrupt.ts                 # 10 trials, notebook 02's default parameters
 * deno run -A bench/interrupt.ts --trials 3 --json
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Kernel, type Message } from "../lib/notebook/kernel.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    trials: { type: "string", default: "10" },
    after: { type: "string", default: "1" },
    json: { type: "boolean" },
  },
});
const trials = Number(args.values.trials), after = Number(args.values.after);
if (!Number.isInteger(trials) || trials < 1 || !Number.isInteger(after) || after < 1) {
  console.error("--trials and --after expect positive integers");
  Deno.exit(2);
}

const NOTEBOOKS = fileURLToPath(new URL("../notebooks/", import.meta.url));
const nb = JSON.parse(await Deno.readTextFile(NOTEBOOKS + "02_train.ipynb"));
const code: string[] = nb.cells.filter((c: { cell_type: string }) => c.cell_type === "code")
  .map((c: { source: string | string[] }) =>
    Array.isArray(c.source) ? c.source.join("") : c.source
  );
const training = code.find((c) => c.includes("runExperiment(")) ?? "";
if (!training) throw new Error("notebook 02 has no cell calling runExperiment");
const setup = code.slice(0, code.indexOf(training));

function printed(messages: Message[]): string {
  return messages.filter((m) => m.header.msg_type === "stream").map((m) => String(m.content.text))
    .join("");
}

function failure(messages: Message[]): string {
  const e = messages.find((m) => m.header.msg_type === "error");
  return e ? `${e.content.ename}: ${e.content.evalue}` : "";
}

async function run(kernel: Kernel, source: string): Promise<string> {
  const r = await kernel.execute(source, { timeoutMs: CELL_MS });
  if (r.status !== "ok") throw new Error(`cell failed: ${failure(r.messages)}\n${source}`);
  return printed(r.messages);
}

/** A cell after a Stop that has not ended after this long counts as a hung kernel. */
const CELL_MS = 180_000;

/** A stopped cell that has not ended after this long counts as a hung kernel. */
const HANG_MS = 60_000;

interface Trial {
  trial: number;
  secondsToIdle: number;
  tensorsBefore: number;
  tensorsAfter: number;
  repair: unknown;
  nextRun: "ok" | string;
  tensorsAfterNextRun: number;
}

/** A kernel with notebook 02's set-up cells run, and a small dataset for the next runs. */
async function startKernel(): Promise<Kernel> {
  const kernel = await Kernel.start({ cwd: NOTEBOOKS });
  for (const cell of setup) await run(kernel, cell);
  await run(
    kernel,
    `import { lastEngineRepair, nativeKernels, wasmFlavour } from "../lib/mod.ts";`,
  );
  await run(
    kernel,
    `const small = await loadDataset({ dataset: dataset as "auto", trainSize: 20, testSize: 10, seed: 1, log: false });`,
  );
  return kernel;
}

let kernel = await startKernel();
const results: Trial[] = [];
try {
  const backend = await run(
    kernel,
    `const f = wasmFlavour(), n = nativeKernels();
    console.log(tf.getBackend() === "wasm" ? "wasm, " + f.threadsCount + " threads" + (n.active ? ", " + n.library + " on " + n.threads + " threads" : "") : tf.getBackend());`,
  );
  for (let trial = 1; trial <= trials; trial++) {
    const before = Number(await run(kernel, `console.log(tf.memory().numTensors)`));
    let updates = 0;
    const moved = Promise.withResolvers<void>();
    const cell = kernel.execute(training, {
      timeoutMs: 600_000,
      onMessage: (m) => {
        const t = m.header.msg_type;
        // The progress bar: a display updated in place in a frontend, lines on stderr here.
        const progress = t === "update_display_data" || t === "display_data" || t === "stream";
        if (progress && ++updates >= after) {
          moved.resolve();
        }
      },
    });
    const first = await Promise.race([moved.promise.then(() => "moved"), cell.then(() => "ended")]);
    if (first !== "moved") {
      throw new Error(
        `the training cell ended (${(await cell).status}) before the Stop: ${
          failure((await cell).messages)
        }`,
      );
    }
    // A different moment within a step on each trial.
    await new Promise((r) => setTimeout(r, (trial * 137) % 1000));
    const t0 = performance.now();
    await kernel.interrupt(1000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reply = await Promise.race([
      cell,
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), HANG_MS)),
    ]);
    clearTimeout(timer);
    const secondsToIdle = (performance.now() - t0) / 1000;
    if (reply === null) {
      // The kernel is stuck: recorded, and the next trial gets a new kernel.
      results.push({
        trial,
        secondsToIdle,
        tensorsBefore: before,
        tensorsAfter: NaN,
        repair: null,
        nextRun: `kernel hung (no end within ${HANG_MS / 1000} s)`,
        tensorsAfterNextRun: NaN,
      });
      if (!args.values.json) console.log(`trial ${trial}: ${results.at(-1)!.nextRun}`);
      await kernel.shutdown();
      kernel = await startKernel();
      continue;
    }
    if (reply.status === "ok") throw new Error(`trial ${trial}: the training cell finished`);
    try {
      const tensorsAfter = Number(await run(kernel, `console.log(tf.memory().numTensors)`));
      const repair = JSON.parse(
        await run(kernel, `console.log(JSON.stringify(lastEngineRepair()))`),
      );
      let nextRun = "ok";
      try {
        const losses = JSON.parse(
          await run(
            kernel,
            `{ const r = await runExperiment({ dataset: small, seeds: [${trial}], augment: false,
              hyper: { epochs: 1, batchSize: ${4 + trial}, lr: ${0.001 * trial}, momentum: 0.5 } });
            console.log(JSON.stringify(r[0].results.arms.flatMap((a) => a.steps.map((s) => s[2])))); }`,
          ),
        ) as number[];
        if (losses.length === 0 || !losses.every(Number.isFinite)) nextRun = `losses ${losses}`;
      } catch (e) {
        nextRun = (e as Error).message.split("\n")[0];
      }
      const tensorsAfterNextRun = Number(
        await run(kernel, `console.log(tf.memory().numTensors)`),
      );
      const t: Trial = {
        trial,
        secondsToIdle,
        tensorsBefore: before,
        tensorsAfter,
        repair,
        nextRun,
        tensorsAfterNextRun,
      };
      results.push(t);
      if (!args.values.json) {
        console.log(
          `trial ${trial}: idle after ${
            secondsToIdle.toFixed(2)
          } s; tensors ${before} → ${tensorsAfter}` +
            ` (after next run ${tensorsAfterNextRun}); next run ${nextRun}; repair ${
              JSON.stringify(repair)
            }`,
        );
      }
    } catch (e) {
      // A cell after the Stop did not end: the kernel is stuck (see docs/interactive.md).
      results.push({
        trial,
        secondsToIdle,
        tensorsBefore: before,
        tensorsAfter: NaN,
        repair: null,
        nextRun: `kernel hung after the Stop (${(e as Error).message.split("\n")[0]})`,
        tensorsAfterNextRun: NaN,
      });
      if (!args.values.json) console.log(`trial ${trial}: ${results.at(-1)!.nextRun}`);
      kernel.kill("hung");
      await kernel.shutdown();
      kernel = await startKernel();
      continue;
    }
  }
  const ok = results.filter((t) =>
    t.secondsToIdle <= 2 && t.tensorsAfter === t.tensorsBefore && t.nextRun === "ok"
  ).length;
  const slowest = Math.max(...results.map((t) =>
    t.secondsToIdle
  ));
  if (args.values.json) {
    console.log(JSON.stringify({ backend: backend.trim(), trials: results, ok, slowest }, null, 1));
  } else {
    console.log(
      `backend ${backend.trim()}: ${ok} of ${trials} stops ended within 2 s with the tensor count ` +
        `restored and the next run training; slowest ${slowest.toFixed(2)} s`,
    );
  }
} finally {
  await kernel.shutdown();
}
