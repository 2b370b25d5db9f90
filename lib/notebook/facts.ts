/**
 * What a notebook said about its own run, read back from its outputs: the report facts
 * (`REPORT_FACTS_MIME`, lib/util/report_facts.ts) it published, merged in output order. The
 * report header names the dataset and the backend from them; the report cache records the
 * backend and lists the data folder. The engine reads nothing else of what a notebook computes.
 *
 * @example
 * ```ts
 * import { backendName, datasetName, publishedFacts } from "./facts.ts";
 * const nb = JSON.parse(await Deno.readTextFile("reports/02_train.ipynb"));
 * publishedFacts(nb).dataset?.name; // "synthetic shapes (built-in)"
 * datasetName(nb, "auto");
 * backendName(nb); // "wasm (2 threads)"
 * ```
 * @module
 */
import { REPORT_FACTS_MIME, type ReportFacts, threadsShown } from "../util/report_facts.ts";
import type { RecordedBackend } from "./cache.ts";
import type { Notebook } from "./nbformat.ts";

/**
 * The report facts a notebook's outputs carry, merged in output order (a later fact replaces an
 * earlier one of the same name); `{}` when it published none.
 *
 * @example
 * ```ts
 * import { publishedFacts } from "./facts.ts";
 * publishedFacts({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }); // {}
 * ```
 */
export function publishedFacts(nb: Notebook): ReportFacts {
  const facts: Record<string, unknown> = {};
  for (const cell of nb.cells) {
    if (cell.cell_type !== "code") continue;
    for (const o of cell.outputs) {
      if (o.output_type !== "display_data" && o.output_type !== "execute_result") continue;
      const d = o.data[REPORT_FACTS_MIME];
      if (d !== null && typeof d === "object" && !Array.isArray(d)) Object.assign(facts, d);
    }
  }
  return facts as ReportFacts;
}

/**
 * The dataset a run used, for the report header: the last name the notebook published (what
 * "auto" actually chose), else the `dataset` parameter, else "none".
 *
 * @example
 * ```ts
 * import { datasetName } from "./facts.ts";
 * datasetName({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }, "auto"); // "auto"
 * ```
 */
export function datasetName(nb: Notebook, parameter: unknown): string {
  const name = publishedFacts(nb).dataset?.name;
  if (typeof name === "string") return name;
  return parameter === undefined || parameter === null ? "none" : String(parameter);
}

/**
 * The backend a run computed on, for the report header, as the notebook published it
 * (`selectAndShowBackend`): e.g. "wasm (2 threads)"; `undefined` when it did not.
 *
 * @example
 * ```ts
 * import { backendName } from "./facts.ts";
 * backendName({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }); // undefined
 * ```
 */
export function backendName(nb: Notebook): string | undefined {
  const b = publishedFacts(nb).backend;
  if (typeof b?.backend !== "string") return undefined;
  const threads = typeof b.threads === "number" ? b.threads : undefined;
  const name = typeof b.adapter === "string" ? `${b.backend} on ${b.adapter}` : b.backend;
  const pool = typeof b.nativeThreads === "number" ? b.nativeThreads : undefined;
  const native = typeof b.native === "string" ? b.native : null;
  return threads === undefined ? name : `${name} (${threadsShown(threads, pool, native)})`;
}

/**
 * The backend a run published, for the report cache; `undefined` when it published none.
 *
 * @example
 * ```ts
 * import { recordedBackend } from "./facts.ts";
 * recordedBackend({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }); // undefined
 * ```
 */
export function recordedBackend(nb: Notebook): RecordedBackend | undefined {
  const b = publishedFacts(nb).backend;
  if (typeof b?.backend !== "string") return undefined;
  return {
    name: b.backend,
    ...(typeof b.threads === "number" ? { threads: b.threads } : {}),
    native: typeof b.native === "string" ? b.native : null,
    ...(typeof b.nativeThreads === "number" ? { nativeThreads: b.nativeThreads } : {}),
    ...(typeof b.adapter === "string" ? { adapter: b.adapter } : {}),
  };
}

/**
 * The data folder a run read, as it published it (`dataDir`, else the dataset's own folder
 * `source`), for the report cache; `undefined` when it published none.
 *
 * @example
 * ```ts
 * import { datasetDir } from "./facts.ts";
 * datasetDir({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }); // undefined
 * ```
 */
export function datasetDir(nb: Notebook): string | undefined {
  const d = publishedFacts(nb).dataset;
  const dir = d?.dataDir ?? d?.source;
  return typeof dir === "string" ? dir : undefined;
}
