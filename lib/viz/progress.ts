/**
 * Progress of training, shown where the run happens: in a notebook, one progress bar updated in
 * place (a {@linkcode LiveDisplay}); elsewhere on stderr through lib/util/progress.ts's
 * `TerminalProgress` (the download bar's too): on a terminal a bar redrawn on one line, in a log a
 * line every 10 % of the run (or 30 seconds).
 *
 * @example
 * ```ts
 * import { progressReporter } from "./progress.ts";
 * await train({ arms, data, hyper, onStep: progressReporter() });
 * ```
 * @module
 */
import { inJupyter } from "./plotly.ts";
import { LiveDisplay } from "./live.ts";
import type { StepProgress } from "../train/trainer.ts";
import { escapeHtml } from "../util/html.ts";
import { formatDuration, progressBar, TerminalProgress } from "../util/progress.ts";

/**
 * One line describing a step: bar, epoch, step, losses, throughput and ETA.
 *
 * @example
 * ```ts
 * progressLine({ epoch: 1, epochs: 2, step: 5, stepsPerEpoch: 10, losses: { conv: 1.5 }, imagesPerSecond: 80, etaSeconds: 20 });
 * // "[█████░░░░░░░░░░░░░░░]  25% epoch 1/2 step 5/10 | loss conv 1.500 | 80 img/s | ETA 0:20"
 * ```
 */
export function progressLine(p: StepProgress, width = 20): string {
  const done = fractionDone(p);
  const losses = Object.entries(p.losses).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ");
  return `${progressBar(done, width)} ${String(Math.round(done * 100)).padStart(3)}% ` +
    `epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.stepsPerEpoch} | loss ${losses} | ` +
    `${Math.round(p.imagesPerSecond)} img/s | ETA ${formatDuration(p.etaSeconds)}`;
}

/** Steps done over the whole run, and all of its steps. */
function stepsOfRun(p: StepProgress): { done: number; total: number } {
  return { done: (p.epoch - 1) * p.stepsPerEpoch + p.step, total: p.epochs * p.stepsPerEpoch };
}

function fractionDone(p: StepProgress): number {
  const { done, total } = stepsOfRun(p);
  return done / total;
}

/**
 * A step callback for {@linkcode train} that shows progress in the notebook or terminal (see the
 * module doc). Notebook updates are throttled to one per `minIntervalMs` (default 500 ms), and
 * the last step of every epoch is always shown.
 *
 * @example
 * ```ts
 * const onStep = progressReporter({ label: "conv vs transposed" });
 * ```
 */
export function progressReporter(
  options: { label?: string; minIntervalMs?: number } = {},
): (p: StepProgress) => Promise<void> {
  const { label = "training", minIntervalMs = 500 } = options;
  let last = 0;
  const isLast = (p: StepProgress) => p.step === p.stepsPerEpoch;
  if (inJupyter()) {
    const live = new LiveDisplay();
    return async (p) => {
      const now = performance.now();
      if (now - last < minIntervalMs && !isLast(p)) return;
      last = now;
      const line = progressLine(p);
      const { done, total } = stepsOfRun(p);
      await live.update({
        "text/plain": `${label}: ${line}`,
        "text/html": `<div style="font-family:monospace"><b>${escapeHtml(label)}</b> ` +
          `<progress value="${done}" max="${total}" style="width:12em"></progress> ` +
          `${escapeHtml(line.replace(/^\[[^\]]*\] */, ""))}</div>`,
      });
    };
  }
  const encoder = new TextEncoder();
  const out = new TerminalProgress({
    write: (text) => Deno.stderr.writeSync(encoder.encode(text)),
    isTerminal: Deno.stderr.isTerminal(),
  });
  return (p) => {
    const { done, total } = stepsOfRun(p);
    out.show(`${label}: ${progressLine(p)}`, done, total, isLast(p));
    if (done === total) out.finish();
    return Promise.resolve();
  };
}
