/**
 * Progress of training, shown where the run happens: in a notebook, one progress bar updated in
 * place (a {@linkcode LiveDisplay}); in a terminal, a bar redrawn on one line of stderr; in a log
 * (stderr not a terminal), a line every 10% of the run.
 *
 * @example
 * ```ts
 * import { progressReporter } from "./progress.ts";
 * await train({ arms, data, hyper, onStep: progressReporter() });
 * ```
 * @module
 */
import { inJupyter } from "../viz/plotly.ts";
import { LiveDisplay } from "../viz/live.ts";
import type { StepProgress } from "./trainer.ts";
import { escapeHtml } from "../util/html.ts";

/**
 * Seconds as `1h02m`, `3m05s` or `42s`.
 *
 * @example
 * ```ts
 * formatEta(185); // "3m05s"
 * ```
 */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s >= 3600) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  return `${s}s`;
}

/**
 * One line describing a step: bar, epoch, step, losses, throughput and ETA.
 *
 * @example
 * ```ts
 * progressLine({ epoch: 1, epochs: 2, step: 5, stepsPerEpoch: 10, losses: { conv: 1.5 }, imagesPerSecond: 80, etaSeconds: 20 });
 * // "[█████░░░░░░░░░░░░░░░]  25% epoch 1/2 step 5/10 | loss conv 1.500 | 80 img/s | ETA 20s"
 * ```
 */
export function progressLine(p: StepProgress, width = 20): string {
  const done = fractionDone(p);
  const filled = Math.round(done * width);
  const bar = "█".repeat(filled) + "░".repeat(width - filled);
  const losses = Object.entries(p.losses).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ");
  return `[${bar}] ${String(Math.round(done * 100)).padStart(3)}% epoch ${p.epoch}/${p.epochs} ` +
    `step ${p.step}/${p.stepsPerEpoch} | loss ${losses} | ${
      Math.round(p.imagesPerSecond)
    } img/s | ` +
    `ETA ${formatEta(p.etaSeconds)}`;
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
  const tty = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  let lastDecile = -1;
  return (p) => {
    const line = `${label}: ${progressLine(p)}`;
    if (tty) {
      const now = performance.now();
      if (now - last >= 100 || isLast(p)) {
        last = now;
        Deno.stderr.writeSync(
          encoder.encode(`\r\x1b[2K${line}${p.epoch === p.epochs && isLast(p) ? "\n" : ""}`),
        );
      }
    } else {
      const { done, total } = stepsOfRun(p);
      const decile = Math.floor(10 * done / total);
      if (decile !== lastDecile) {
        lastDecile = decile;
        console.error(line);
      }
    }
    return Promise.resolve();
  };
}
