/**
 * Types for Jupyter notebooks in nbformat 4 (the `.ipynb` JSON), as the runner reads and writes
 * them. Multiline strings may be stored as a string or a list of lines; {@linkcode joinSource}
 * turns either into one string.
 *
 * @example
 * ```ts
 * import { joinSource, type Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * console.log(joinSource(nb.cells[0].source));
 * ```
 * @module
 */
import {
  isPercentText,
  PERCENT_EXTENSION,
  PercentFormatError,
  percentToNotebook,
} from "./percent.ts";

/** A string, or a list of lines that are concatenated as they are (each keeps its "\n"). */
export type MultilineString = string | string[];

/** A MIME bundle: MIME type to data (text types may be multiline strings, JSON types objects). */
export type MimeBundle = Record<string, unknown>;

/** `stream` output: text written to stdout or stderr. */
export interface StreamOutput {
  output_type: "stream";
  name: "stdout" | "stderr";
  text: MultilineString;
}

/** `display_data` output; `transient.display_id` is kept out of the saved file, as Jupyter does. */
export interface DisplayDataOutput {
  output_type: "display_data";
  data: MimeBundle;
  metadata: Record<string, unknown>;
}

/** `execute_result` output: the value of a cell's last expression. */
export interface ExecuteResultOutput {
  output_type: "execute_result";
  execution_count: number | null;
  data: MimeBundle;
  metadata: Record<string, unknown>;
}

/** `error` output: an exception raised by a cell. */
export interface ErrorOutput {
  output_type: "error";
  ename: string;
  evalue: string;
  traceback: string[];
}

/** Any output of a code cell. */
export type Output = StreamOutput | DisplayDataOutput | ExecuteResultOutput | ErrorOutput;

/** A code cell. */
export interface CodeCell {
  cell_type: "code";
  id?: string;
  source: MultilineString;
  metadata: { tags?: string[]; [key: string]: unknown };
  execution_count: number | null;
  outputs: Output[];
}

/** A markdown cell. */
export interface MarkdownCell {
  cell_type: "markdown";
  id?: string;
  source: MultilineString;
  metadata: { tags?: string[]; [key: string]: unknown };
  attachments?: Record<string, MimeBundle>;
}

/** A raw cell. */
export interface RawCell {
  cell_type: "raw";
  id?: string;
  source: MultilineString;
  metadata: { tags?: string[]; [key: string]: unknown };
}

/** Any cell. */
export type Cell = CodeCell | MarkdownCell | RawCell;

/** A whole notebook. */
export interface Notebook {
  nbformat: 4;
  nbformat_minor: number;
  metadata: {
    kernelspec?: { name: string; display_name: string; language?: string };
    language_info?: { name: string; [key: string]: unknown };
    [key: string]: unknown;
  };
  cells: Cell[];
}

/**
 * Joins a multiline string into one string.
 *
 * @example
 * ```ts
 * joinSource(["a\n", "b"]); // "a\nb"
 * ```
 */
export function joinSource(source: MultilineString): string {
  return Array.isArray(source) ? source.join("") : source;
}

/**
 * Whether a cell carries `tag` in its `metadata.tags` (nbclient's and papermill's cell tags).
 *
 * @example
 * ```ts
 * import { hasTag } from "./nbformat.ts";
 * hasTag({ cell_type: "markdown", source: "", metadata: { tags: ["parameters"] } }, "parameters"); // true
 * ```
 */
export function hasTag(cell: Cell, tag: string): boolean {
  const tags = cell.metadata?.tags;
  return Array.isArray(tags) && tags.includes(tag);
}

/**
 * A fresh cell id (nbformat 4.5: 1–64 characters of letters, digits, `-` and `_`).
 *
 * @example
 * ```ts
 * newCellId().length; // 12
 * ```
 */
export function newCellId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 12);
}

/** A notebook file that cannot be read or is not an nbformat 4 notebook (nothing ran). */
export class NotebookFileError extends Error {
  /**
   * @example
   * ```ts
   * import { NotebookFileError } from "./nbformat.ts";
   * throw new NotebookFileError("notebook not found: a.ipynb");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "NotebookFileError";
  }
}

/**
 * A notebook file's name without its folder and its `.ipynb` or `.ts` extension: the name of
 * the executed notebook and report written for it.
 *
 * @example
 * ```ts
 * notebookStem("notebooks/01_shapes.ts"); // "01_shapes"
 * ```
 */
export function notebookStem(path: string): string {
  return path.replace(/^.*[\\/]/, "").replace(/\.(ipynb|ts)$/, "");
}

/**
 * Reads and checks a notebook file: it must exist, end in `.ipynb` (JSON, nbformat 4) or `.ts`
 * (percent format, see `percent.ts`), and parse; throws {@linkcode NotebookFileError} saying
 * which.
 *
 * @example
 * ```ts
 * import { readNotebook } from "./nbformat.ts";
 * const nb = await readNotebook("notebooks/01_shapes.ipynb");
 * ```
 */
export async function readNotebook(path: string): Promise<Notebook> {
  const percent = path.endsWith(PERCENT_EXTENSION);
  if (!path.endsWith(".ipynb") && !percent) {
    throw new NotebookFileError(
      `${path} is not a notebook (.ipynb) or a notebook in percent format (.ts)`,
    );
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotebookFileError(`notebook not found: ${path}`);
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new NotebookFileError(`${path} is a directory`);
    }
    throw new NotebookFileError(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
  }
  if (percent) {
    if (!isPercentText(text)) {
      throw new NotebookFileError(
        `${path} is not a percent-format notebook: no "// %%" cell marker line`,
      );
    }
    try {
      return percentToNotebook(text);
    } catch (e) {
      if (e instanceof PercentFormatError) throw new NotebookFileError(`${path}: ${e.message}`);
      throw e;
    }
  }
  let nb: Notebook;
  try {
    nb = JSON.parse(text);
  } catch (e) {
    throw new NotebookFileError(`${path} is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (!nb || typeof nb !== "object" || nb.nbformat !== 4 || !Array.isArray(nb.cells)) {
    throw new NotebookFileError(`${path} is not an nbformat 4 notebook`);
  }
  return nb;
}
