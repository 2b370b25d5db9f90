/**
 * A download progress bar with bytes, rate and ETA. On a terminal it redraws one line in place
 * (at most ten times a second); elsewhere (CI logs, pipes) it prints a line at every 10 % step or
 * every 30 seconds, whichever comes first.
 *
 * @example
 * ```ts
 * import { ProgressBar } from "./progress.ts";
 * const bar = new ProgressBar({ label: "file.tar.gz", write: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)), isTerminal: Deno.stderr.isTerminal() });
 * bar.start(1000, 0);
 * bar.update(500);
 * bar.end();
 * ```
 * @module
 */

/** Receives download progress. */
export interface ProgressSink {
  /** A transfer starts: `total` bytes expected (if known), `offset` already on disk. */
  start(total: number | undefined, offset: number): void;
  /** `received` bytes are now on disk in total (offset included). */
  update(received: number): void;
  /** The transfer ended (successfully or not). */
  end(): void;
}

/** Options of {@linkcode ProgressBar}. */
export interface ProgressBarOptions {
  /** Shown before the bar. */
  label: string;
  /** Writes text (no newline added). */
  write: (text: string) => void;
  /** Redraw in place (terminal) or print occasional lines. */
  isTerminal: boolean;
  /** Clock in milliseconds (for tests; default `performance.now`). */
  now?: () => number;
}

const MiB = 1024 * 1024;

/** Formats bytes as MiB with one decimal (or kB/B for small amounts). */
export function formatBytes(n: number): string {
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Formats seconds as m:ss or h:mm:ss. */
function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/** The progress bar described in the module doc. */
export class ProgressBar implements ProgressSink {
  #o: ProgressBarOptions;
  #now: () => number;
  #total: number | undefined;
  #offset = 0;
  #received = 0;
  #t0 = 0;
  #lastDraw = -Infinity;
  #lastStep = -1;
  #lastPrinted = -1;
  #active = false;

  /** A bar writing through `options.write`. */
  constructor(options: ProgressBarOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** See {@linkcode ProgressSink.start}. */
  start(total: number | undefined, offset: number): void {
    this.#total = total;
    this.#offset = this.#received = offset;
    this.#t0 = this.#lastDraw = this.#now();
    this.#lastStep = -1;
    this.#lastPrinted = -1;
    this.#active = true;
    if (offset > 0) this.#o.write(`resuming at ${formatBytes(offset)}\n`);
    this.#draw(true);
  }

  /** See {@linkcode ProgressSink.update}. */
  update(received: number): void {
    this.#received = received;
    this.#draw(false);
  }

  /** See {@linkcode ProgressSink.end}. */
  end(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#draw(true);
    if (this.#o.isTerminal) this.#o.write("\n");
  }

  /** The current status line. */
  line(): string {
    const elapsed = (this.#now() - this.#t0) / 1000;
    const fresh = this.#received - this.#offset;
    const rate = elapsed > 0 ? fresh / elapsed : 0;
    const total = this.#total;
    const parts = [this.#o.label];
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, this.#received / total);
      const width = 24, full = Math.round(frac * width);
      parts.push(`[${"#".repeat(full)}${".".repeat(width - full)}]`);
      parts.push(`${(frac * 100).toFixed(1).padStart(5)} %`);
      parts.push(`${formatBytes(this.#received)} / ${formatBytes(total)}`);
    } else {
      parts.push(formatBytes(this.#received));
    }
    parts.push(`${formatBytes(Math.round(rate))}/s`);
    if (total !== undefined && total > 0) {
      const left = total - this.#received;
      parts.push(`ETA ${left <= 0 ? "0:00" : formatDuration(rate > 0 ? left / rate : Infinity)}`);
    }
    return parts.join("  ");
  }

  #draw(force: boolean): void {
    const t = this.#now();
    if (this.#o.isTerminal) {
      if (!force && t - this.#lastDraw < 100) return;
      this.#lastDraw = t;
      this.#o.write(`\r${this.line()}\x1b[K`);
      return;
    }
    const total = this.#total;
    const step = total ? Math.floor((this.#received / total) * 10) : -1;
    const due = force || step > this.#lastStep || t - this.#lastDraw >= 30_000;
    if (!due || this.#received === this.#lastPrinted) return;
    this.#lastDraw = t;
    this.#lastStep = Math.max(step, this.#lastStep);
    this.#lastPrinted = this.#received;
    this.#o.write(`${this.line()}\n`);
  }
}
