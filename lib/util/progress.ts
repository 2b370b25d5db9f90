/**
 * Progress shown in a terminal or a log, shared by the download bar and the training bar: one
 * bar style, one duration format for ETAs, and one way of writing ({@linkcode TerminalProgress}):
 * on a terminal the line is redrawn in place (at most ten times a second); elsewhere (CI logs,
 * pipes) a line is printed at every 10 % step or every 30 seconds, whichever comes first.
 * {@linkcode ProgressBar} is the download bar (bytes, rate and ETA).
 *
 * Hand-written because npm's cli-progress (3.12.0, tried under Deno) fits only half the job: it
 * prints nothing when stderr is not a terminal unless told to, and then on a timer rather than at
 * 10 % steps; it redraws from its own timers and clock, so what a log shows could only be tested
 * by sleeping; and the notebook's bar (an HTML `<progress>` updated in place) is not a terminal.
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

const MiB = 1024 * 1024;

/**
 * Bytes as MiB or KiB with one decimal, or B for small amounts.
 *
 * @example
 * ```ts
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(n: number): string {
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/**
 * Seconds as `m:ss` or `h:mm:ss` (the ETA of every progress line); `--:--` when unknown.
 *
 * @example
 * ```ts
 * formatDuration(185); // "3:05"
 * formatDuration(3720); // "1:02:00"
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/**
 * A bar of `width` cells for a fraction done (clamped to 0–1).
 *
 * @example
 * ```ts
 * progressBar(0.5, 4); // "[██░░]"
 * ```
 */
export function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}]`;
}

/** Where a {@linkcode TerminalProgress} or {@linkcode ProgressBar} writes. */
export interface TerminalProgressOptions {
  /** Writes text (no newline added). */
  write: (text: string) => void;
  /** Redraw in place (terminal) or print occasional lines. */
  isTerminal: boolean;
  /** Clock in milliseconds (for tests; default `performance.now`). */
  now?: () => number;
}

/**
 * Writes the successive status lines of a task as the module doc describes.
 *
 * @example
 * ```ts
 * const out = new TerminalProgress({ write: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)), isTerminal: Deno.stderr.isTerminal() });
 * out.show("step 1/10", 1, 10);
 * out.show("step 10/10", 10, 10, true);
 * out.finish();
 * ```
 */
export class TerminalProgress {
  #o: TerminalProgressOptions;
  #now: () => number;
  #lastDraw = -Infinity;
  #lastStep = -1;
  #lastDone = NaN;
  #drawn = false;

  /** Progress written through `options.write`. */
  constructor(options: TerminalProgressOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts a new task: the next line is shown whatever came before. */
  reset(): void {
    this.#lastDraw = -Infinity;
    this.#lastStep = -1;
    this.#lastDone = NaN;
  }

  /**
   * Shows `line` for `done` out of `total` (unknown: undefined) if it is due; `force` shows it
   * now (in a log, unless `done` has not changed since the last line printed).
   */
  show(line: string, done: number, total?: number, force = false): void {
    const t = this.#now();
    if (this.#o.isTerminal) {
      if (!force && t - this.#lastDraw < 100) return;
      this.#lastDraw = t;
      this.#drawn = true;
      this.#o.write(`\r${line}\x1b[K`);
      return;
    }
    const step = total ? Math.floor((done / total) * 10) : -1;
    const due = force || step > this.#lastStep || t - this.#lastDraw >= 30_000;
    if (!due || done === this.#lastDone) return;
    this.#lastDraw = t;
    this.#lastStep = Math.max(step, this.#lastStep);
    this.#lastDone = done;
    this.#o.write(`${line}\n`);
  }

  /** Ends the line redrawn in place, so that what follows starts on a line of its own. */
  finish(): void {
    if (this.#o.isTerminal && this.#drawn) this.#o.write("\n");
    this.#drawn = false;
  }
}

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
export interface ProgressBarOptions extends TerminalProgressOptions {
  /** Shown before the bar. */
  label: string;
}

/** The download bar described in the module doc. */
export class ProgressBar implements ProgressSink {
  #o: ProgressBarOptions;
  #out: TerminalProgress;
  #now: () => number;
  #total: number | undefined;
  #offset = 0;
  #received = 0;
  #t0 = 0;
  #active = false;

  /** A bar writing through `options.write`. */
  constructor(options: ProgressBarOptions) {
    this.#o = options;
    this.#out = new TerminalProgress(options);
    this.#now = options.now ?? (() => performance.now());
  }

  /** See {@linkcode ProgressSink.start}. */
  start(total: number | undefined, offset: number): void {
    this.#total = total;
    this.#offset = this.#received = offset;
    this.#t0 = this.#now();
    this.#active = true;
    this.#out.reset();
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
    this.#out.finish();
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
      parts.push(progressBar(frac, 24));
      parts.push(`${(frac * 100).toFixed(1).padStart(5)} %`);
      parts.push(`${formatBytes(this.#received)} / ${formatBytes(total)}`);
    } else {
      parts.push(formatBytes(this.#received));
    }
    parts.push(`${formatBytes(Math.round(rate))}/s`);
    if (total !== undefined && total > 0) {
      const left = total - this.#received;
      parts.push(`ETA ${formatDuration(left <= 0 ? 0 : rate > 0 ? left / rate : Infinity)}`);
    }
    return parts.join("  ");
  }

  #draw(force: boolean): void {
    this.#out.show(this.line(), this.#received, this.#total, force);
  }
}
