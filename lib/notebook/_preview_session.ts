/**
 * The kernel side of `preview.ts`: one kernel kept alive between renders, and every code cell's
 * outputs cached under a key made of its own source and the sources of all code cells before it
 * (and the tags that change how it runs). A render reuses what it can:
 *
 * - every code cell found in the cache (up to the first cell that stopped the run): no kernel
 *   run at all (a markdown edit, or an edit undone);
 * - otherwise the kernel runs from the first code cell where the cells it ran last differ from
 *   the notebook's, in the same kernel (the cells before it hold the state they made);
 * - a fresh kernel when there is none, it died, nothing it ran is reusable (the first code cell
 *   changed), or {@linkcode CellSession.invalidate} was called (lib/ changed: cached outputs and
 *   the kernel's imports are stale).
 *
 * Like Jupyter's "run from here", the kernel keeps what the old versions of later cells
 * defined; a restart gives a clean state. Each cell runs through `executeCell` (`cell.ts`), as
 * `runNotebook` runs it: the same statuses, error outputs, time limit and tags.
 *
 * @module
 */
import { type CellStatus, executeCell, RAISES_TAG, SKIP_TAG } from "./cell.ts";
import { Kernel, type KernelOptions } from "./kernel.ts";
import { type CodeCell, hasTag, joinSource, type Notebook, type Output } from "./nbformat.ts";

/** What the cache keeps of one executed code cell. */
interface CellRecord {
  outputs: Output[];
  executionCount: number | null;
  execution: Record<string, unknown>;
  status: CellStatus;
  /** One line naming the failure ("error", "timeout", "died"). */
  failure?: string;
  /** Size of `outputs` as JSON (UTF-16 code units), for the cache's limit. */
  size: number;
}

/** Options of a {@linkcode CellSession}. */
export interface CellSessionOptions {
  /** The kernel's working directory (the notebook's folder). */
  cwd: string;
  /** Options for the kernel. */
  kernel?: Omit<KernelOptions, "cwd">;
  /** Time limit per cell in milliseconds (default: none). */
  cellTimeoutMs?: number;
  /**
   * Size of the cached outputs kept at most, as JSON characters (default 128,000,000): a plotly
   * figure embeds its 0.5 MB bundle, so a count alone does not bound the memory.
   */
  cacheLimit?: number;
}

/** Progress of a render, for the page's banner. */
export interface SessionProgress {
  /** 1-based position among the code cells. */
  position: number;
  total: number;
  /** Index in the notebook's `cells`. */
  cellIndex: number;
  firstLine: string;
  /** Whether the kernel was restarted for this render. */
  restarted: boolean;
}

/** What one render did. */
export interface SessionOutcome {
  /** Code cells executed by the kernel in this render. */
  executed: number;
  /** Code cells whose outputs came from the cache. */
  reused: number;
  /** Whether a new kernel was started. */
  restarted: boolean;
  /** Whether {@linkcode CellSession.cancel} stopped the run: the outputs are incomplete. */
  cancelled: boolean;
  /** The failure that stopped the run (from the cache or this render), if any. */
  failure?: { cellIndex: number; message: string };
}

/**
 * Cache entries kept at most, and their size by default (see
 * {@linkcode CellSessionOptions.cacheLimit}); entries the kernel's history uses are never dropped.
 */
const CACHE_ENTRIES = 2000;
const CACHE_SIZE = 128_000_000;

/** The code cells that run (non-empty ones) and their keys. */
async function cellKeys(
  nb: Notebook,
): Promise<{ cells: { cell: CodeCell; index: number }[]; keys: string[] }> {
  const cells = nb.cells
    .map((cell, index) => ({ cell, index }))
    .filter((c): c is { cell: CodeCell; index: number } =>
      c.cell.cell_type === "code" && joinSource(c.cell.source).trim() !== ""
    );
  const keys: string[] = [];
  let previous = "";
  for (const { cell } of cells) {
    const tags = [SKIP_TAG, RAISES_TAG].filter((t) => hasTag(cell, t)).join(",");
    previous = await sha256(`${previous}\0${tags}\0${joinSource(cell.source)}`);
    keys.push(previous);
  }
  return { cells, keys };
}

function sizeOf(outputs: Output[]): number {
  return JSON.stringify(outputs).length;
}

async function sha256(text: string): Promise<string> {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A kernel and the per-cell output cache of one previewed notebook.
 *
 * @example
 * ```ts
 * import { CellSession } from "./_preview_session.ts";
 * const session = new CellSession({ cwd: "notebooks" });
 * const nb = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * const outcome = await session.render(nb, () => {});
 * await session.shutdown();
 * ```
 */
export class CellSession {
  readonly #options: CellSessionOptions;
  #kernel?: Kernel;
  /** Keys of the code cells the kernel ran, in notebook order. */
  #history: string[] = [];
  readonly #cache = new Map<string, CellRecord>();
  #cacheSize = 0;
  #stale = false;
  #closed = false;
  /** The render now running: its keys and the position of the cell running. */
  #running?: { keys: string[]; at: number };
  #cancelled = false;
  /** Kernels started so far. */
  kernelStarts = 0;
  /** Code cells executed so far, over all renders. */
  cellsExecuted = 0;

  constructor(options: CellSessionOptions) {
    this.#options = options;
  }

  /** Process id of the current kernel, if one is running. */
  get kernelPid(): number | undefined {
    return this.#kernel?.alive ? this.#kernel.pid : undefined;
  }

  /** Size of the cached outputs as JSON (UTF-16 code units); for tests and logs. */
  get cacheSize(): number {
    return this.#cacheSize;
  }

  /** Forgets every cached output and restarts the kernel at the next render. */
  invalidate(): void {
    this.#stale = true;
    this.#cache.clear();
    this.#cacheSize = 0;
    this.#history = [];
  }

  /**
   * Fills the code cells of `nb` (parameters already injected; modified in place) with outputs,
   * from the cache or by running them, and says what it did.
   */
  async render(
    nb: Notebook,
    onProgress: (p: SessionProgress) => void,
  ): Promise<SessionOutcome> {
    this.#cancelled = false;
    const { cells, keys } = await cellKeys(nb);
    for (const cell of nb.cells) {
      if (cell.cell_type !== "code") continue;
      cell.outputs = [];
      cell.execution_count = null;
      delete cell.metadata.execution;
    }
    // Everything cached up to the cell that stopped the run: nothing to execute.
    let cachedUpTo = 0;
    let stopped = false;
    for (; cachedUpTo < keys.length && !this.#stale; cachedUpTo++) {
      const record = this.#cache.get(keys[cachedUpTo]);
      if (!record) break;
      if (record.failure) {
        stopped = true;
        cachedUpTo++;
        break;
      }
    }
    let restarted = false;
    let start = cachedUpTo;
    if (cachedUpTo < keys.length && !stopped) {
      let common = 0;
      while (common < this.#history.length && this.#history[common] === keys[common]) common++;
      if (this.#stale || !this.#kernel?.alive || common === 0) {
        await this.#restart();
        restarted = true;
        common = 0;
      }
      start = common;
    }
    let failure: SessionOutcome["failure"];
    for (let n = 0; n < Math.min(start, keys.length); n++) {
      const record = this.#cache.get(keys[n])!;
      this.#fill(cells[n].cell, record);
      if (record.failure) failure = { cellIndex: cells[n].index, message: record.failure };
    }
    let executed = 0;
    /** Cells run in this render: their records take late output after the drain. */
    const ran: { cell: CodeCell; key: string; record: CellRecord }[] = [];
    if (start < keys.length && !failure) {
      this.#history = this.#history.slice(0, start);
      this.#running = { keys, at: start };
      this.#cancelled = false;
      for (let n = start; n < keys.length; n++) {
        if (this.#closed || this.#cancelled) break;
        this.#running.at = n;
        const { cell, index } = cells[n];
        const source = joinSource(cell.source);
        onProgress({
          position: n + 1,
          total: keys.length,
          cellIndex: index,
          firstLine: source.trim().split("\n")[0].slice(0, 80),
          restarted,
        });
        const record = await this.#runCell(cell, n + 1, index);
        executed++;
        if (this.#cancelled) {
          // Stopped half-way: the kernel holds part of this cell's effects, so nothing may
          // reuse it; the cells before it stay valid.
          this.#history.push(`cancelled ${keys[n]}`);
          break;
        }
        this.#remember(keys[n], record);
        this.#history.push(keys[n]);
        ran.push({ cell, key: keys[n], record });
        if (record.failure) {
          failure = { cellIndex: index, message: record.failure };
          break;
        }
      }
    }
    await this.#drain(ran);
    this.#running = undefined;
    this.cellsExecuted += executed;
    return {
      executed,
      reused: Math.min(start, keys.length),
      restarted,
      cancelled: this.#cancelled,
      ...(failure ? { failure } : {}),
    };
  }

  /**
   * Stops the render now running when `nb` (parameters injected) changed a code cell at or
   * before the one running, or always when `nb` is not given: the running cell is interrupted
   * (the kernel is killed when that does not stop it, as a cell waiting in an `await` cannot be
   * stopped) and no later cell runs. Resolves whether it stopped anything.
   */
  async cancel(nb?: Notebook): Promise<boolean> {
    const running = this.#running;
    if (!running || this.#cancelled) return false;
    if (nb) {
      const { keys } = await cellKeys(nb);
      let same = 0;
      while (same < keys.length && keys[same] === running.keys[same]) same++;
      if (same > running.at || this.#running !== running) return false; // only later cells
    }
    this.#cancelled = true;
    const kernel = this.#kernel;
    if (kernel?.alive) {
      const stopped = await kernel.interrupt(2000);
      if (!stopped && kernel.alive && this.#running === running) {
        kernel.kill("killed: its cell did not stop after the notebook changed");
      }
    }
    return true;
  }

  /** Shuts the kernel down for good: a render running now stops after its cell, none starts. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.shutdown();
  }

  /** Shuts the kernel down (idempotent); the next render that needs one starts a new one. */
  async shutdown(): Promise<void> {
    const kernel = this.#kernel;
    this.#kernel = undefined;
    this.#history = [];
    await kernel?.shutdown();
  }

  async #restart(): Promise<void> {
    await this.shutdown();
    this.#stale = false;
    if (this.#closed) throw new Error("the preview was stopped");
    const kernel = await Kernel.start({ ...this.#options.kernel, cwd: this.#options.cwd });
    if (this.#closed) { // stopped while the kernel started: leave none behind
      await kernel.shutdown();
      throw new Error("the preview was stopped");
    }
    this.#kernel = kernel;
    this.kernelStarts++;
  }

  /**
   * Waits for late output of the cells run (the Deno kernel publishes console output
   * asynchronously), as `runNotebook` does after its last cell, then caches and shows what the
   * cells hold now. A stopped run is not drained: the next render replaces it.
   */
  async #drain(ran: { cell: CodeCell; key: string; record: CellRecord }[]): Promise<void> {
    const kernel = this.#kernel;
    if (ran.length > 0 && kernel?.alive && !this.#cancelled && !this.#closed) {
      await kernel.drain();
    }
    for (const { cell, key, record } of ran) {
      if (!this.#cancelled) {
        // executeCell keeps appending late output to the cell's own list until the drain ends.
        const outputs = structuredClone(cell.outputs);
        if (this.#cache.get(key) === record) {
          this.#cacheSize += sizeOf(outputs) - record.size;
          record.size = sizeOf(outputs);
        }
        record.outputs = outputs;
      }
      this.#fill(cell, record);
    }
    this.#trim();
  }

  #fill(cell: CodeCell, record: CellRecord): void {
    cell.outputs = structuredClone(record.outputs);
    cell.execution_count = record.executionCount;
    cell.metadata.execution = { ...record.execution };
  }

  #remember(key: string, record: CellRecord): void {
    this.#forget(key); // re-inserted last: the oldest entries go first
    this.#cache.set(key, record);
    this.#cacheSize += record.size;
    this.#trim();
  }

  #forget(key: string): void {
    const old = this.#cache.get(key);
    if (!old) return;
    this.#cache.delete(key);
    this.#cacheSize -= old.size;
  }

  /** Drops the oldest entries the kernel's history does not use, down to the limits. */
  #trim(): void {
    const limit = this.#options.cacheLimit ?? CACHE_SIZE;
    const over = () => this.#cache.size > CACHE_ENTRIES || this.#cacheSize > limit;
    if (!over()) return;
    const keep = new Set(this.#history);
    for (const old of [...this.#cache.keys()]) {
      if (!over()) break;
      if (!keep.has(old)) this.#forget(old);
    }
  }

  /** Runs one cell with `executeCell`, as the runner does, and keeps a copy of what it made. */
  async #runCell(cell: CodeCell, position: number, index: number): Promise<CellRecord> {
    const label = `cell ${index + 1} (code cell ${position})`;
    const kernel = this.#kernel;
    if (!kernel) {
      return {
        outputs: [],
        executionCount: null,
        execution: {},
        status: "died",
        failure: `${label} did not run: the kernel was shut down`,
        size: 0,
      };
    }
    const run = await executeCell(kernel, cell, { timeoutMs: this.#options.cellTimeoutMs, label });
    const outputs = structuredClone(run.outputs);
    return {
      outputs,
      size: sizeOf(outputs),
      executionCount: cell.execution_count,
      execution: { ...cell.metadata.execution as Record<string, unknown> },
      status: run.status,
      ...(run.failure ? { failure: run.failure } : {}),
    };
  }
}
