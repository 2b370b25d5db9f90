/**
 * Accounting of kernel messages lost on the way (dropped, or failing their signature check),
 * by cell. A loss is charged to the cell that ran last: the Deno kernel publishes console output
 * asynchronously, so a message of a cell can still be on its way while the next one runs, and
 * only the kernel's running count of losses tells that one went missing. Private helper of
 * `runner.ts`.
 *
 * @module
 */
import type { LostMessages } from "./runner.ts";

/** Losses of a run, by the cell that ran last when they were noticed. */
export class LostMessageLedger {
  /** The losses, one entry per cell (-1: before the first cell, at start-up). */
  readonly entries: LostMessages[] = [];
  #seen = 0;
  #last = { index: -1, position: 0 };

  /** Cell `index` (code cell `position`) starts: later losses are charged to it. */
  ran(index: number, position: number): void {
    this.#last = { index, position };
  }

  /** Charges what the kernel's running count (`lostSoFar`) grew by since the last call. */
  count(lostSoFar: number): void {
    if (lostSoFar > this.#seen) {
      const count = lostSoFar - this.#seen;
      const entry = this.entries.find((l) => l.cellIndex === this.#last.index);
      if (entry) entry.count += count;
      else this.entries.push({ cellIndex: this.#last.index, position: this.#last.position, count });
    }
    this.#seen = lostSoFar;
  }

  /** Messages lost in all. */
  get total(): number {
    return this.entries.reduce((n, l) => n + l.count, 0);
  }
}
