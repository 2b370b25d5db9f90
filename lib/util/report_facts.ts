/**
 * The one output type through which a notebook tells the runner about its run: "report facts",
 * a JSON object beside an ordinary display output. The notebook engine (lib/notebook) reads it
 * for the report header and the report cache and knows nothing else of the experiment; the views
 * that choose a dataset or a backend (lib/viz) publish it. It lives here, below both.
 *
 * Each output carries some of the facts; the runner merges them in output order, a later fact
 * replacing an earlier one of the same name.
 *
 * @example
 * ```ts
 * import { REPORT_FACTS_MIME, type ReportFacts } from "./report_facts.ts";
 * const facts: ReportFacts = { dataset: { name: "CIFAR-10", dataDir: "../data" } };
 * const bundle = { "text/plain": "CIFAR-10", [REPORT_FACTS_MIME]: facts };
 * ```
 * @module
 */

/** MIME type of the report facts a notebook publishes in a display output. */
export const REPORT_FACTS_MIME = "application/vnd.tconv.report-facts+json";

/** The dataset a run read: named in the report header, its folder listed for the report cache. */
export interface DatasetFacts {
  /** As shown, e.g. `"CIFAR-10"`. */
  name: string;
  /** Where it came from (a folder, or "built-in"). */
  source?: string;
  /** The folder the run read (absolute, or relative to the notebook's folder). */
  dataDir?: string;
}

/** The backend a run computed on: named in the report header, recorded by the report cache. */
export interface BackendFacts {
  /** As shown, e.g. `"wasm + oneDNN 2.6.3"`. */
  backend: string;
  /** Threads it computes on. */
  threads?: number;
  /** Why this backend. */
  reason?: string;
  /** The native library running the convolutions, or null. */
  native?: string | null;
  /** Threads of the native library's pool (oneDNN's OpenMP threads), when it runs. */
  nativeThreads?: number;
  /** The WebGPU adapter, for `webgpu`. */
  adapter?: string;
}

/**
 * A backend's threads as the backend line and the report header show them: `"2 threads"`, or,
 * when the native library's pool has another size than the backend's, both
 * (`"1 thread; oneDNN 2 threads"`).
 *
 * @example
 * ```ts
 * threadsShown(2); // "2 threads"
 * threadsShown(1, 2, "oneDNN 2.6.3"); // "1 thread; oneDNN 2 threads"
 * ```
 */
export function threadsShown(
  threads: number,
  nativeThreads?: number,
  native?: string | null,
): string {
  const count = (n: number) => `${n} thread${n === 1 ? "" : "s"}`;
  if (nativeThreads === undefined || nativeThreads === threads || !native) return count(threads);
  return `${count(threads)}; ${native.split(" ")[0]} ${count(nativeThreads)}`;
}

/** What a notebook can tell the runner; every fact is optional. */
export interface ReportFacts {
  dataset?: DatasetFacts;
  backend?: BackendFacts;
}

/**
 * MIME type of the per-output hints a notebook gives the HTML report (beside an ordinary display
 * output, like {@linkcode REPORT_FACTS_MIME}); Jupyter frontends ignore it. See
 * {@linkcode ReportOutputHints}.
 */
export const REPORT_OUTPUT_MIME = "application/vnd.tconv.report-output+json";

/**
 * How the HTML report treats one output. `omit`: leave it out of the report (an output only a
 * live Jupyter page needs, such as a script loader). `plotly`: the output draws with the page's
 * plotly.js from its own script, so the report embeds plotly.js with these trace types even when
 * no plotly figure comes with it.
 *
 * @example
 * ```ts
 * import { REPORT_OUTPUT_MIME, type ReportOutputHints } from "./report_facts.ts";
 * const hints: ReportOutputHints = { plotly: ["scatter"] };
 * const bundle = { "text/html": "<div id=chart></div><script>…</script>", [REPORT_OUTPUT_MIME]: hints };
 * ```
 */
export interface ReportOutputHints {
  omit?: boolean;
  plotly?: string[];
}
