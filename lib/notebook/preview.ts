/**
 * A live preview of a notebook's report (`deno task preview`, like `quarto preview`): runs the
 * notebook, serves its HTML report on 127.0.0.1, watches the notebook file and `lib/`, and after a
 * change renders again and makes every open page reload itself (server-sent events).
 *
 * A render does as little as it can (see `_preview_session.ts`): an edit to markdown renders
 * again without the kernel; an edit to code runs from the first changed code cell in the kernel
 * kept alive since the last render; a change in `lib/` restarts the kernel and runs every cell.
 * While cells run, a banner in the page says which; a failing cell shows its error in the report
 * and the preview goes on serving. A notebook that cannot be read or parsed (a half-saved file, a
 * syntax error) keeps the last report and shows the problem in the banner. File events are
 * debounced: editors write a file several times per save. A change that comes during a run and
 * makes it obsolete (a code cell at or before the running one, lib/) stops it (interrupt, else
 * kill); other changes are rendered when the run is done.
 *
 * Served paths: `/` (the report), `/events` (the state stream), `POST /restart` (restart the
 * kernel and run every cell; the page's Restart button).
 *
 * @example
 * ```ts
 * import { Preview } from "./preview.ts";
 * const preview = await Preview.start("notebooks/01_shapes.ipynb", { params: ["seed=7"] });
 * console.log(`open ${preview.url}`);
 * await preview.idle();
 * console.log(preview.stats);
 * await preview.stop();
 * ```
 * @module
 */
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { injectPreviewClient, waitingPage } from "./_preview_client.ts";
import { CellSession } from "./_preview_session.ts";
import { backendName, datasetName } from "./facts.ts";
import { cellRunSeconds, renderReport } from "./html.ts";
import type { KernelOptions } from "./kernel.ts";
import { hasTag, type Notebook, readNotebook } from "./nbformat.ts";
import {
  injectParameters,
  parametersInEffect,
  parseParameterArgs,
  readParameterFile,
} from "./parameters.ts";
import { SKIP_TAG } from "./cell.ts";
import { describeSyntaxProblem, notebookSyntaxErrors } from "./syntax.ts";

/** Options for {@linkcode Preview.start}. */
export interface PreviewOptions {
  /** Port to serve on (default 0: a free one). */
  port?: number;
  /** Parameter overrides, `name=value` as on the command line. */
  params?: string[];
  /** Parameter files (JSON or YAML), read before `params`, which win. */
  paramFiles?: string[];
  /**
   * Folder whose changes restart the kernel (default: this project's `lib/`; `null`: none).
   */
  libDir?: string | null;
  /** Quiet time after a file event before rendering (default 150 ms). */
  debounceMs?: number;
  /** Time limit per cell in milliseconds (default: none). */
  cellTimeoutMs?: number;
  /** Options for the kernel (its `cwd` is the notebook's folder). */
  kernel?: Omit<KernelOptions, "cwd">;
  /** Leave code out of the report (as `deno task run --no-input`). */
  noInput?: boolean;
  /** Where progress lines go (default: none). */
  log?: (line: string) => void;
}

/** What the preview is doing, as sent to the pages. */
export interface PreviewState {
  /** Number of the last finished render (0: none yet). */
  version: number;
  /** "running" while cells run. */
  phase: "running" | "idle";
  /** While running: e.g. "cell 4 (code cell 2 of 5): const x = 1". */
  progress?: string;
  /** Whether this render restarted the kernel. */
  restarted?: boolean;
  /** Why the last change was not rendered (unreadable notebook, syntax or parameter error). */
  problem?: string;
}

/** Counters over the preview's life, for tests and logs. */
export interface PreviewStats {
  /** Renders that produced a new page. */
  renders: number;
  /** Code cells the kernel executed, over all renders. */
  cellsExecuted: number;
  /** Kernels started. */
  kernelStarts: number;
  /** Process id of the kernel now running, if any. */
  kernelPid?: number;
  /** The last render: cells executed and reused, restart, wall-clock milliseconds. */
  last?: { executed: number; reused: number; restarted: boolean; ms: number };
}

/** This project's lib/ folder (the default `libDir`). */
const LIB_DIR = fileURLToPath(new URL("../", import.meta.url));

/** What a file event asks for. */
interface Pending {
  notebook: boolean;
  lib: boolean;
  restart: boolean;
}

/**
 * A running preview: a server, file watchers, and the kernel session.
 *
 * @example
 * ```ts
 * import { Preview } from "./preview.ts";
 * await using preview = await Preview.start("notebooks/01_shapes.ipynb", { port: 8123 });
 * await preview.idle();
 * ```
 */
export class Preview {
  readonly #path: string;
  readonly #absolute: string;
  readonly #options: PreviewOptions;
  readonly #session: CellSession;
  readonly #fromFiles: Record<string, unknown>;
  #server?: Deno.HttpServer<Deno.NetAddr>;
  readonly #watchers: Deno.FsWatcher[] = [];
  readonly #streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #page: string;
  #state: PreviewState = { version: 0, phase: "idle" };
  #pending: Pending = { notebook: true, lib: false, restart: false };
  #timer?: ReturnType<typeof setTimeout>;
  #loop?: Promise<void>;
  #lastSource?: string;
  /** The page shows outputs from before a lib/ change or a restart. */
  #invalidated = false;
  #stopped = false;
  #renders = 0;
  #last?: PreviewStats["last"];
  #keepAlive?: ReturnType<typeof setInterval>;

  private constructor(path: string, options: PreviewOptions, fromFiles: Record<string, unknown>) {
    this.#path = path;
    this.#absolute = resolve(path);
    this.#options = options;
    this.#fromFiles = fromFiles;
    this.#session = new CellSession({
      cwd: dirname(this.#absolute),
      kernel: options.kernel,
      cellTimeoutMs: options.cellTimeoutMs,
    });
    this.#page = waitingPage(path);
  }

  /**
   * Checks the notebook and its parameters (throwing `NotebookFileError` or `ParameterError`
   * before anything starts), starts the server and the watchers, and starts the first render;
   * {@linkcode Preview.idle} waits for it.
   *
   * @example
   * ```ts
   * import { Preview } from "./preview.ts";
   * const preview = await Preview.start("notebooks/01_shapes.ipynb");
   * console.log(preview.url); // e.g. http://127.0.0.1:40123/
   * await preview.stop();
   * ```
   */
  static async start(path: string, options: PreviewOptions = {}): Promise<Preview> {
    const nb = await readNotebook(path);
    const fromFiles: Record<string, unknown> = {};
    for (const file of options.paramFiles ?? []) {
      Object.assign(fromFiles, await readParameterFile(file));
    }
    parseParameterArgs(nb, options.params ?? [], fromFiles);
    const preview = new Preview(path, options, fromFiles);
    try {
      preview.#serve(options.port ?? 0);
      preview.#watch();
    } catch (e) {
      await preview.stop();
      throw e;
    }
    preview.#kick();
    return preview;
  }

  /** The page's address, e.g. `http://127.0.0.1:40123/`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** The port the server listens on. */
  get port(): number {
    return this.#server?.addr.port ?? 0;
  }

  /** The state the pages were last sent. */
  get state(): PreviewState {
    return { ...this.#state };
  }

  /** Counters over the preview's life. */
  get stats(): PreviewStats {
    return {
      renders: this.#renders,
      cellsExecuted: this.#session.cellsExecuted,
      kernelStarts: this.#session.kernelStarts,
      ...(this.#session.kernelPid === undefined ? {} : { kernelPid: this.#session.kernelPid }),
      ...(this.#last ? { last: { ...this.#last } } : {}),
    };
  }

  /**
   * Resolves when no render is running or waiting (debounced events included).
   *
   * @example
   * ```ts
   * import { Preview } from "./preview.ts";
   * await using preview = await Preview.start("notebooks/01_shapes.ipynb");
   * await preview.idle();
   * ```
   */
  async idle(): Promise<void> {
    while (!this.#stopped && (this.#loop || this.#timer !== undefined)) {
      if (this.#loop) await this.#loop;
      else await new Promise((done) => setTimeout(done, 20));
    }
  }

  /**
   * Asks for a render as a save of the notebook would: the notebook is read again and what
   * changed is rendered (nothing, when nothing changed). `lib: true` renders as a change in lib/
   * would, `restart: true` as the page's Restart button: both clear the cache, restart the
   * kernel and run every cell. Debounced like file events.
   *
   * @example
   * ```ts
   * import { Preview } from "./preview.ts";
   * await using preview = await Preview.start("notebooks/01_shapes.ipynb");
   * preview.refresh(); // as a save
   * preview.refresh({ restart: true }); // a clean kernel, every cell run again
   * await preview.idle();
   * ```
   */
  refresh(what: { lib?: boolean; restart?: boolean } = {}): void {
    if (what.lib) this.#schedule("lib");
    if (what.restart) this.#schedule("restart");
    if (!what.lib && !what.restart) this.#schedule("notebook");
  }

  /**
   * Stops the watchers, the kernel (a running cell is abandoned) and the server; idempotent.
   *
   * @example
   * ```ts
   * import { Preview } from "./preview.ts";
   * const preview = await Preview.start("notebooks/01_shapes.ipynb");
   * await preview.stop();
   * ```
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearInterval(this.#keepAlive);
    for (const w of this.#watchers) {
      try {
        w.close();
      } catch {
        // already closed
      }
    }
    await this.#session.close();
    await this.#loop?.catch(() => {});
    await this.#session.close(); // a kernel the loop started meanwhile
    for (const c of this.#streams) {
      try {
        c.close();
      } catch {
        // the page went away
      }
    }
    this.#streams.clear();
    await this.#server?.shutdown();
  }

  /** Same as {@linkcode Preview.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  #serve(port: number): void {
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: () => {},
    }, (request) => this.#handle(request));
    // Comments keep idle event streams open through proxies and tell a closed page apart.
    this.#keepAlive = setInterval(() => this.#send(": keep-alive\n\n"), 15_000);
  }

  #handle(request: Request): Response {
    const path = new URL(request.url).pathname;
    if (path === "/" && (request.method === "GET" || request.method === "HEAD")) {
      return new Response(request.method === "HEAD" ? null : this.#page, {
        headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
      });
    }
    if (path === "/events" && request.method === "GET") return this.#events();
    if (path === "/restart" && request.method === "POST") {
      this.refresh({ restart: true });
      return new Response("restarting\n");
    }
    return new Response(`not found: ${path} (the preview serves / and /events)\n`, {
      status: 404,
    });
  }

  #events(): Response {
    let mine: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        mine = controller;
        this.#streams.add(controller);
        controller.enqueue(this.#encode(this.#state));
      },
      cancel: () => {
        this.#streams.delete(mine);
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      },
    });
  }

  #encode(state: PreviewState): Uint8Array {
    return new TextEncoder().encode(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
  }

  #send(chunk: string | PreviewState): void {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : this.#encode(chunk);
    for (const c of this.#streams) {
      try {
        c.enqueue(bytes);
      } catch {
        this.#streams.delete(c); // closed by the page
      }
    }
  }

  #setState(state: Omit<PreviewState, "version">): void {
    this.#state = { version: this.#state.version, ...state };
    this.#send(this.#state);
  }

  #watch(): void {
    const dir = dirname(this.#absolute);
    const notebook = Deno.watchFs(dir, { recursive: false });
    this.#watchers.push(notebook);
    (async () => {
      for await (const event of notebook) {
        if (event.kind === "access") continue;
        if (event.paths.some((p) => resolve(p) === this.#absolute)) this.#schedule("notebook");
      }
    })().catch(() => {});
    const lib = this.#options.libDir === undefined ? LIB_DIR : this.#options.libDir;
    if (lib === null) return;
    const libWatcher = Deno.watchFs(lib, { recursive: true });
    this.#watchers.push(libWatcher);
    (async () => {
      for await (const event of libWatcher) {
        if (event.kind === "access") continue;
        // Editors' swap and backup files are not lib's code.
        const real = event.paths.filter((p) => !/(^|\/)\.|~$|\.swp$/.test(relative(lib, p)));
        if (real.length > 0) this.#schedule("lib");
      }
    })().catch(() => {});
  }

  #schedule(what: "notebook" | "lib" | "restart"): void {
    if (this.#stopped) return;
    if (what === "notebook") this.#pending.notebook = true;
    else this.#pending[what] = true;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#loop) this.#cancelIfStale({ ...this.#pending }).catch(() => {});
      else this.#kick();
    }, this.#options.debounceMs ?? 150);
  }

  #kick(): void {
    if (this.#loop || this.#stopped) return; // the running loop picks the change up
    this.#loop = (async () => {
      try {
        while (!this.#stopped && this.#hasPending()) {
          const pending = this.#pending;
          this.#pending = { notebook: false, lib: false, restart: false };
          await this.#render(pending);
        }
      } finally {
        this.#loop = undefined;
      }
    })();
  }

  /**
   * A change during a run: stops the run when the change makes what runs obsolete (a code cell
   * at or before the running one, lib/, a restart); the loop then renders the change.
   */
  async #cancelIfStale(pending: Pending): Promise<void> {
    let changed: Notebook | undefined;
    if (!pending.lib && !pending.restart) {
      try {
        const nb = await readNotebook(this.#path);
        const parameters = parseParameterArgs(nb, this.#options.params ?? [], this.#fromFiles);
        changed = injectParameters(nb, parameters);
        // A half-typed save does not stop a long cell: the loop reports it after the run.
        if (notebookSyntaxErrors(changed).length > 0) return;
      } catch {
        return; // unreadable: the loop reports it after the run
      }
    }
    if (await this.#session.cancel(changed)) {
      this.#log("stopping the run: what it computes changed");
    }
  }

  #hasPending(): boolean {
    return this.#pending.notebook || this.#pending.lib || this.#pending.restart;
  }

  async #render(pending: Pending): Promise<void> {
    const started = performance.now();
    if (pending.lib || pending.restart) {
      this.#session.invalidate();
      this.#invalidated = true;
    }
    let nb: Notebook;
    let source: string;
    try {
      nb = await readNotebook(this.#path);
      source = JSON.stringify(nb);
    } catch (e) {
      return this.#problem(`${e instanceof Error ? e.message : e}`);
    }
    // A save that changed nothing (or a second write of the same save) renders nothing.
    if (source === this.#lastSource && !this.#invalidated) {
      // Back to what the page shows (after a problem, or a run stopped by a change undone).
      if (this.#state.problem || this.#state.phase !== "idle") this.#setState({ phase: "idle" });
      return;
    }
    let prepared: Notebook;
    let inEffect: Record<string, unknown>;
    try {
      const parameters = parseParameterArgs(nb, this.#options.params ?? [], this.#fromFiles);
      prepared = injectParameters(nb, parameters);
      inEffect = parametersInEffect(nb, parameters);
    } catch (e) {
      return this.#problem(`bad parameters: ${e instanceof Error ? e.message : e}`);
    }
    const syntax = notebookSyntaxErrors(prepared, (i) => !hasTag(prepared.cells[i], SKIP_TAG));
    if (syntax.length > 0) {
      return this.#problem(`syntax error: ${syntax.map(describeSyntaxProblem).join("; ")}`);
    }
    let outcome;
    try {
      outcome = await this.#session.render(prepared, (p) => {
        this.#setState({
          phase: "running",
          progress: `cell ${
            p.cellIndex + 1
          } (code cell ${p.position} of ${p.total}): ${p.firstLine}`,
          restarted: p.restarted,
        });
      });
    } catch (e) {
      return this.#problem(`the kernel could not run: ${e instanceof Error ? e.message : e}`);
    }
    if (this.#stopped) return;
    if (outcome.cancelled) return; // a newer change is pending: the loop renders it
    this.#lastSource = source;
    this.#invalidated = false;
    const runSeconds = prepared.cells.reduce(
      (sum, cell) => sum + (cell.cell_type === "code" ? cellRunSeconds(cell) ?? 0 : 0),
      0,
    );
    const html = renderReport(prepared, {
      notebook: this.#path,
      parameters: inEffect,
      dataset: datasetName(prepared, inEffect.dataset),
      backend: backendName(prepared),
      date: new Date().toISOString(),
      runSeconds,
      status: outcome.failure ? "error" : "ok",
      ...(outcome.failure ? { error: outcome.failure.message } : {}),
    }, { noInput: this.#options.noInput });
    const version = this.#state.version + 1;
    this.#page = injectPreviewClient(html, version);
    this.#renders++;
    const ms = performance.now() - started;
    this.#last = {
      executed: outcome.executed,
      reused: outcome.reused,
      restarted: outcome.restarted,
      ms,
    };
    this.#state = { version, phase: "idle" };
    this.#send(this.#state);
    this.#log(
      `rendered ${this.#path} in ${(ms / 1000).toFixed(2)} s: ${outcome.executed} code cell${
        outcome.executed === 1 ? "" : "s"
      } run, ${outcome.reused} reused${outcome.restarted ? ", kernel (re)started" : ""}${
        outcome.failure ? `; ${outcome.failure.message}` : ""
      }`,
    );
  }

  #problem(message: string): void {
    this.#log(`not rendered: ${message}`);
    this.#setState({ phase: "idle", problem: message });
  }
}
