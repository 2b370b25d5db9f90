/**
 * Converting notebooks between `.ipynb` and percent-format `.ts` (see `percent.ts`), and finding
 * the notebooks of a folder when both forms may be there.
 *
 * @example
 * ```ts
 * import { convertNotebook } from "./convert.ts";
 * const { output } = await convertNotebook("notebooks/01_shapes.ipynb", { to: "ts", out: "/tmp/nb" });
 * console.log(output); // /tmp/nb/01_shapes.ts
 * ```
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { exists } from "../util/fs.ts";
import { type Cell, joinSource, type Notebook, notebookStem, readNotebook } from "./nbformat.ts";
import { isPercentText, notebookToPercent, PercentFormatError } from "./percent.ts";

/** The two forms a notebook converts between. */
export type NotebookForm = "ts" | "ipynb";

/** A conversion refused before anything was written: bad arguments, files or content. */
export class ConvertError extends Error {
  /**
   * @example
   * ```ts
   * import { ConvertError } from "./convert.ts";
   * throw new ConvertError("notebooks/a.ts exists (--force replaces it)");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "ConvertError";
  }
}

/** Options of {@linkcode convertNotebook}. */
export interface ConvertOptions {
  /** The form to write; must differ from the input's. */
  to: NotebookForm;
  /** Folder of the written file (default: the input's folder). */
  out?: string;
  /** Replace the output file when it exists. */
  force?: boolean;
}

/** What {@linkcode convertNotebook} did. */
export interface ConvertResult {
  /** The file written. */
  output: string;
  /** Number of cells. */
  cells: number;
  /** Code cells whose outputs were kept from the `.ipynb` that was replaced. */
  keptOutputs: number;
}

/**
 * Converts a notebook file to the other form and writes it atomically as `<out>/<name>.ts` or
 * `<out>/<name>.ipynb`. An existing output file is replaced only with `force`; the input file is
 * never the output (the extensions differ). When an `.ipynb` is replaced, each code cell whose
 * id and source are unchanged keeps its outputs and execution count from it, as jupytext does
 * for a pair. Throws {@linkcode ConvertError} (nothing written) for a wrong extension, a
 * missing or unreadable file, an output that exists, or content the `.ts` form cannot hold.
 *
 * @example
 * ```ts
 * import { convertNotebook } from "./convert.ts";
 * await convertNotebook("/tmp/nb/01_shapes.ts", { to: "ipynb", out: "/tmp/back" });
 * ```
 */
export async function convertNotebook(
  path: string,
  options: ConvertOptions,
): Promise<ConvertResult> {
  const from = formOf(path);
  if (from === undefined) {
    throw new ConvertError(`${path}: expected a .ipynb or .ts notebook file`);
  }
  if (options.to === from) {
    throw new ConvertError(
      `${path} is already .${from}; --to ${from === "ts" ? "ipynb" : "ts"} converts it`,
    );
  }
  const output = join(options.out ?? dirname(path), `${notebookStem(path)}.${options.to}`);
  if (resolve(output) === resolve(path)) {
    throw new ConvertError(`refusing to write over the input ${path}`);
  }
  let nb: Notebook;
  try {
    nb = await readNotebook(path);
  } catch (e) {
    throw new ConvertError(e instanceof Error ? e.message : String(e));
  }
  const existing = await exists(output);
  if (existing && !options.force) {
    throw new ConvertError(`${output} exists (--force replaces it)`);
  }
  let text: string;
  let keptOutputs = 0;
  if (options.to === "ts") {
    try {
      text = notebookToPercent(nb);
    } catch (e) {
      if (e instanceof PercentFormatError) throw new ConvertError(`${path}: ${e.message}`);
      throw e;
    }
  } else {
    if (existing) keptOutputs = await keepOutputs(nb, output);
    text = ipynbText(nb);
  }
  await writeFileAtomic(output, text);
  return { output, cells: nb.cells.length, keptOutputs };
}

function formOf(path: string): NotebookForm | undefined {
  return path.endsWith(".ipynb") ? "ipynb" : path.endsWith(".ts") ? "ts" : undefined;
}

/** Copies outputs from the `.ipynb` at `path` into `nb`'s unchanged code cells; their number. */
async function keepOutputs(nb: Notebook, path: string): Promise<number> {
  let old: Notebook;
  try {
    old = await readNotebook(path);
  } catch {
    return 0; // not a notebook we can read: it is replaced as asked, with nothing to keep
  }
  const byId = new Map(old.cells.filter((c) => c.id !== undefined).map((c) => [c.id, c]));
  let kept = 0;
  for (const cell of nb.cells) {
    const before = cell.id === undefined ? undefined : byId.get(cell.id);
    if (
      cell.cell_type === "code" && before?.cell_type === "code" &&
      joinSource(before.source) === joinSource(cell.source) && before.outputs.length > 0
    ) {
      cell.outputs = before.outputs;
      cell.execution_count = before.execution_count;
      kept++;
    }
  }
  return kept;
}

/**
 * A notebook as `.ipynb` text the way Jupyter's nbformat writes it: keys sorted, one-space
 * indent, sources as lists of lines, a final newline.
 *
 * @example
 * ```ts
 * import { ipynbText } from "./convert.ts";
 * ipynbText({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] });
 * // '{\n "cells": [],\n "metadata": {},\n "nbformat": 4,\n "nbformat_minor": 5\n}\n'
 * ```
 */
export function ipynbText(nb: Notebook): string {
  const cells = nb.cells.map((c) => ({ ...c, source: sourceLines(joinSource(c.source)) }));
  return JSON.stringify(sortKeys({ ...nb, cells }), null, 1) + "\n";
}

function sourceLines(source: string): string[] {
  return source === "" ? [] : source.split(/(?<=\n)/);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0
  );
  return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
}

/**
 * Whether two notebooks hold the same inputs: cells' types, sources, metadata and ids, and the
 * notebook's metadata (outputs and execution counts are not compared).
 *
 * @example
 * ```ts
 * import { sameInputs } from "./convert.ts";
 * import { readNotebook } from "./nbformat.ts";
 * sameInputs(await readNotebook("a.ipynb"), await readNotebook("a.ts")); // true when in sync
 * ```
 */
export function sameInputs(a: Notebook, b: Notebook): boolean {
  const inputs = (nb: Notebook) =>
    JSON.stringify(sortKeys({
      metadata: nb.metadata,
      nbformat_minor: nb.nbformat_minor,
      cells: nb.cells.map((c: Cell) => ({
        cell_type: c.cell_type,
        id: c.id,
        metadata: c.metadata,
        source: joinSource(c.source),
      })),
    }));
  return inputs(a) === inputs(b);
}

/**
 * The notebooks of a folder, sorted: every `*.ipynb`, and every `*.ts` with a `// %%` cell
 * marker (other `.ts` files are modules, not notebooks). Where `x.ipynb` and `x.ts` are a pair,
 * only `x.ipynb` is listed, with a warning when the `.ts` holds other inputs.
 *
 * @example
 * ```ts
 * import { listNotebooks } from "./convert.ts";
 * const { names, warnings } = await listNotebooks("notebooks");
 * ```
 */
export async function listNotebooks(dir: string): Promise<{ names: string[]; warnings: string[] }> {
  const ipynb = new Set<string>();
  const ts: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile) continue;
    if (e.name.endsWith(".ipynb")) ipynb.add(e.name);
    else if (e.name.endsWith(".ts") && isPercentText(await Deno.readTextFile(join(dir, e.name)))) {
      ts.push(e.name);
    }
  }
  const names = [...ipynb];
  const warnings: string[] = [];
  for (const name of ts) {
    const pair = `${notebookStem(name)}.ipynb`;
    if (!ipynb.has(pair)) {
      names.push(name);
      continue;
    }
    const same = await Promise.all([readNotebook(join(dir, pair)), readNotebook(join(dir, name))])
      .then(([a, b]) => sameInputs(a, b), () => false);
    if (!same) {
      warnings.push(
        `${join(dir, name)} differs from ${join(dir, pair)}, which is the one run; after editing ` +
          `the .ts: deno task convert ${join(dir, name)} --to ipynb --force`,
      );
    }
  }
  return { names: names.sort(), warnings };
}
