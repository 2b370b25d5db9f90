/**
 * Checkpoints of a run: the partly executed notebook handed to a caller's save function (which
 * autosaves it), before the first cell, after every cell and now and then during a long one.
 * Never two saves at once; a save during a cell only when some output arrived since the last.
 * Private helper of `runner.ts`.
 *
 * @module
 */
import type { Notebook } from "./nbformat.ts";

/** What {@linkcode Checkpoints} needs from the run. */
export interface CheckpointOptions {
  /** The caller's save function; without one, checkpoints do nothing. */
  save?: (notebook: Notebook) => void | Promise<void>;
  /** Told when `save` failed; the run goes on. */
  onError?: (error: unknown) => void;
  /** A count that grows with every output applied. */
  changes: () => number;
  /** Brings the notebook up to date for a save, marked as running cell `running` (or none). */
  snapshot: (running: number | null) => Notebook;
}

/** Hands the notebook so far to a save function, one save at a time. */
export class Checkpoints {
  readonly #options: CheckpointOptions;
  #saving: Promise<void> | null = null;
  #savedAt = -1;

  constructor(options: CheckpointOptions) {
    this.#options = options;
  }

  /**
   * Saves the notebook (cell `running` marked as running). Without `force` (the timer during a
   * cell), it does nothing while a save is under way or when no output arrived since the last.
   */
  async take(running: number | null, force: boolean): Promise<void> {
    const save = this.#options.save;
    if (!save) return;
    if (this.#saving) {
      if (!force) return;
      await this.#saving;
    }
    const changes = this.#options.changes();
    if (!force && changes === this.#savedAt) return;
    this.#savedAt = changes;
    const notebook = this.#options.snapshot(running);
    const mine: Promise<void> = (async () => {
      try {
        await save(notebook);
      } catch (e) {
        this.#options.onError?.(e);
      }
    })();
    this.#saving = mine;
    await mine;
    if (this.#saving === mine) this.#saving = null;
  }

  /** Takes a checkpoint every `intervalMs` while cell `running` runs; returns the stop switch. */
  during(running: number, intervalMs: number): () => void {
    if (!this.#options.save) return () => {};
    const timer = setInterval(() => this.take(running, false), intervalMs);
    return () => clearInterval(timer);
  }

  /** Resolves once the save under way (if any) has ended. */
  async settled(): Promise<void> {
    await this.#saving;
  }
}
