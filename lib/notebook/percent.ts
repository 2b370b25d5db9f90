/**
 * Notebooks as plain TypeScript files in jupytext's "percent" format: every cell starts with a
 * `// %%` line, markdown and raw cells are comment lines, and the notebook's metadata sits in a
 * commented YAML header. The file is an ordinary Deno module, so `deno check` type-checks all
 * cells together and an editor gives completion across them.
 *
 * ```ts
 * // ---
 * // jupyter:
 * //   kernelspec:
 * //     display_name: Deno
 * //     language: typescript
 * //     name: deno
 * //   nbformat: 4
 * //   nbformat_minor: 5
 * // ---
 *
 * // %% [markdown] id="intro"
 * // # Title
 *
 * // %% tags=["parameters"] id="params"
 * const seed = 0;
 * ```
 *
 * A cell marker is `// %%`, then `[markdown]` or `[raw]` for those cells, then `key=JSON` pairs:
 * the cell's metadata (`tags=["parameters"]`, as jupytext writes it) and `id="…"`, the nbformat
 * 4.5 cell id (jupytext leaves ids out; they are kept here so that a round trip is exact). One
 * blank line separates cells and is not part of their source. A code or comment line that would
 * read as a marker (`// %%`, `// // %%` …) is written with one more `// ` in front, and loses it
 * when read back. Outputs and execution counts are not kept: the `.ts` form holds the inputs.
 *
 * `notebookToPercent` and `percentToNotebook` are exact inverses on cells' types, sources,
 * metadata and ids and on the notebook's metadata and `nbformat_minor`.
 *
 * @example
 * ```ts
 * import { notebookToPercent, percentToNotebook } from "./percent.ts";
 * const nb = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * const text = notebookToPercent(nb);
 * percentToNotebook(text).cells.length === nb.cells.length; // true
 * ```
 * @module
 */
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { Cell, Notebook } from "./nbformat.ts";

/** The file extension of a percent-format notebook. */
export const PERCENT_EXTENSION = ".ts";

/**
 * A percent-format file that cannot be read as a notebook, or a notebook that cannot be written
 * as one; `line` is the 1-based line of the file at fault, when there is one.
 *
 * @example
 * ```ts
 * import { PercentFormatError } from "./percent.ts";
 * throw new PercentFormatError("unknown cell type [python]", 12);
 * ```
 */
export class PercentFormatError extends Error {
  /** 1-based line number in the percent file, when the error is about one line. */
  line?: number;
  /**
   * @example
   * ```ts
   * new PercentFormatError("unknown cell type [python]", 12).line; // 12
   * ```
   */
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = "PercentFormatError";
    this.line = line;
  }
}

const HEADER_FENCE = "// ---";
/** A cell marker: `// %%` alone or followed by a space. */
const MARKER = /^\/\/ %%(?: |$)/;
/** A line that would read as a marker once its comment prefixes are peeled: written escaped. */
const NEEDS_ESCAPE = /^(?:\/\/ )+%%(?: |$)/;
/** An escaped line: two or more prefixes before `%%`. */
const ESCAPED = /^(?:\/\/ ){2,}%%(?: |$)/;
/** Metadata keys that can stand bare before `=` in a marker. */
const KEY = /^[A-Za-z_][\w.-]*$/;
const DEFAULT_MINOR = 5;

/**
 * Whether a text has at least one `// %%` cell marker line, or starts with a `jupyter:` header:
 * how a `.ts` file is told to be a notebook rather than a module.
 *
 * @example
 * ```ts
 * import { isPercentText } from "./percent.ts";
 * isPercentText("// %%\nconst a = 1;\n"); // true
 * isPercentText("export const a = 1;\n"); // false
 * ```
 */
export function isPercentText(text: string): boolean {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  return (lines[0] === HEADER_FENCE && lines[1] === "// jupyter:") ||
    lines.some((line) => MARKER.test(line));
}

/**
 * Writes a notebook as percent-format TypeScript. Throws {@linkcode PercentFormatError} for what
 * the format cannot hold: attachments, or a metadata key that is not a plain name.
 *
 * @example
 * ```ts
 * import { notebookToPercent } from "./percent.ts";
 * notebookToPercent({
 *   nbformat: 4,
 *   nbformat_minor: 5,
 *   metadata: {},
 *   cells: [{ cell_type: "code", source: "1 + 1", metadata: {}, execution_count: null, outputs: [] }],
 * }); // "// %%\n1 + 1\n"
 * ```
 */
export function notebookToPercent(nb: Notebook): string {
  const header = headerText(nb);
  const cells = nb.cells.map((cell, i) => cellText(cell, i));
  const body = cells.length ? cells.join("\n\n") + "\n" : "";
  return header ? (body ? `${header}\n${body}` : header) : body;
}

function headerText(nb: Notebook): string {
  const metadata = nb.metadata ?? {};
  const minor = nb.nbformat_minor ?? DEFAULT_MINOR;
  if (Object.keys(metadata).length === 0 && minor === DEFAULT_MINOR) return "";
  for (const k of ["nbformat", "nbformat_minor"]) {
    if (Object.hasOwn(metadata, k)) {
      throw new PercentFormatError(`notebook metadata key "${k}" clashes with the header's own`);
    }
  }
  const yaml = stringifyYaml({ jupyter: { ...metadata, nbformat: 4, nbformat_minor: minor } }, {
    lineWidth: 0,
  });
  const lines = yaml.replace(/\n$/, "").split("\n").map(comment);
  return [HEADER_FENCE, ...lines, HEADER_FENCE].join("\n") + "\n";
}

function cellText(cell: Cell, index: number): string {
  const where = `cell ${index + 1} (${cell.cell_type})`;
  if (cell.cell_type === "markdown" && cell.attachments && Object.keys(cell.attachments).length) {
    throw new PercentFormatError(`${where} has attachments, which a .ts notebook cannot hold`);
  }
  const parts = ["// %%"];
  if (cell.cell_type === "markdown" || cell.cell_type === "raw") parts.push(`[${cell.cell_type}]`);
  else if (cell.cell_type !== "code") {
    throw new PercentFormatError(`${where}: unknown cell type`);
  }
  for (const [key, value] of Object.entries(cell.metadata ?? {})) {
    if (!KEY.test(key) || key === "id") {
      throw new PercentFormatError(
        `${where}: metadata key ${JSON.stringify(key)} cannot be written in a cell marker ` +
          `(expected a name of letters, digits, "_", "-" or ".", other than "id")`,
      );
    }
    if (value === undefined) continue;
    parts.push(`${key}=${JSON.stringify(value)}`);
  }
  if (cell.id !== undefined) parts.push(`id=${JSON.stringify(cell.id)}`);
  const source = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
  const lines = source.split("\n");
  const body = (cell.cell_type === "code" ? lines : lines.map(comment)).map(escape);
  return parts.join(" ") + "\n" + body.join("\n");
}

function comment(line: string): string {
  return line === "" ? "//" : `// ${line}`;
}

function uncomment(line: string): string {
  return line === "//" ? "" : line.startsWith("// ") ? line.slice(3) : line;
}

function escape(line: string): string {
  return NEEDS_ESCAPE.test(line) ? `// ${line}` : line;
}

function unescape(line: string): string {
  return ESCAPED.test(line) ? line.slice(3) : line;
}

/**
 * Reads percent-format TypeScript into a notebook (nbformat 4; code cells with no outputs).
 * Text before the first marker, if not blank, becomes a code cell, as in jupytext. Throws
 * {@linkcode PercentFormatError} naming the line of a bad header or cell marker.
 *
 * @example
 * ```ts
 * import { percentToNotebook } from "./percent.ts";
 * const nb = percentToNotebook('// %% [markdown]\n// # Hi\n\n// %% tags=["parameters"]\nconst a = 1;\n');
 * nb.cells[1].metadata.tags; // ["parameters"]
 * ```
 */
export function percentToNotebook(text: string): Notebook {
  const lines = text.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n");
  if (text === "") lines.length = 0;
  let i = 0;
  let metadata: Notebook["metadata"] = {};
  let minor = DEFAULT_MINOR;
  if (lines[0] === HEADER_FENCE) {
    const end = lines.indexOf(HEADER_FENCE, 1);
    if (end < 0) throw new PercentFormatError(`the header has no closing "${HEADER_FENCE}"`, 1);
    ({ metadata, minor } = parseHeader(lines.slice(1, end)));
    i = end + 1;
  }
  const cells: Cell[] = [];
  const start = i;
  while (i < lines.length && !MARKER.test(lines[i])) i++;
  const prelude = lines.slice(start, i);
  if (prelude.some((l) => l.trim() !== "")) {
    while (prelude[0]?.trim() === "") prelude.shift();
    cells.push(makeCell("code", {}, undefined, trimSeparator(prelude, i < lines.length)));
  }
  while (i < lines.length) {
    const markerLine = i + 1;
    const { type, metadata: cellMeta, id } = parseMarker(lines[i], markerLine);
    i++;
    const from = i;
    while (i < lines.length && !MARKER.test(lines[i])) i++;
    const body = trimSeparator(lines.slice(from, i), i < lines.length).map(unescape);
    cells.push(makeCell(type, cellMeta, id, type === "code" ? body : body.map(uncomment)));
  }
  return { nbformat: 4, nbformat_minor: minor, metadata, cells };
}

/** Drops the blank line that separates a cell from the next marker. */
function trimSeparator(body: string[], beforeMarker: boolean): string[] {
  return beforeMarker && body.length > 0 && body[body.length - 1] === "" ? body.slice(0, -1) : body;
}

function makeCell(
  type: Cell["cell_type"],
  metadata: Record<string, unknown>,
  id: string | undefined,
  lines: string[],
): Cell {
  const source = lines.join("\n");
  const idPart = id === undefined ? {} : { id };
  if (type === "code") {
    return { cell_type: "code", ...idPart, source, metadata, execution_count: null, outputs: [] };
  }
  return { cell_type: type, ...idPart, source, metadata };
}

function parseHeader(lines: string[]): { metadata: Notebook["metadata"]; minor: number } {
  let doc: unknown;
  try {
    doc = parseYaml(lines.map(uncomment).join("\n"));
  } catch (e) {
    throw new PercentFormatError(
      `the header is not YAML: ${e instanceof Error ? e.message.split("\n")[0] : e}`,
      2,
    );
  }
  if (doc === null || doc === undefined) return { metadata: {}, minor: DEFAULT_MINOR };
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new PercentFormatError("the header must be a YAML mapping with a `jupyter:` key", 2);
  }
  const extra = Object.keys(doc).filter((k) => k !== "jupyter");
  if (extra.length) {
    throw new PercentFormatError(
      `unknown header key ${JSON.stringify(extra[0])} (expected only "jupyter")`,
      2,
    );
  }
  const jupyter = (doc as { jupyter?: unknown }).jupyter ?? {};
  if (typeof jupyter !== "object" || jupyter === null || Array.isArray(jupyter)) {
    throw new PercentFormatError("the header's `jupyter:` must be a mapping", 2);
  }
  const { nbformat, nbformat_minor, ...metadata } = jupyter as Record<string, unknown>;
  if (nbformat !== undefined && nbformat !== 4) {
    throw new PercentFormatError(`nbformat ${JSON.stringify(nbformat)} in the header (expected 4)`);
  }
  if (
    nbformat_minor !== undefined &&
    (typeof nbformat_minor !== "number" || !Number.isInteger(nbformat_minor) ||
      nbformat_minor < 0)
  ) {
    throw new PercentFormatError(
      `nbformat_minor ${JSON.stringify(nbformat_minor)} in the header (expected an integer ≥ 0)`,
    );
  }
  return { metadata, minor: (nbformat_minor as number | undefined) ?? DEFAULT_MINOR };
}

function parseMarker(line: string, lineNo: number): {
  type: Cell["cell_type"];
  metadata: Record<string, unknown>;
  id?: string;
} {
  let rest = line.slice("// %%".length).trim();
  let type: Cell["cell_type"] = "code";
  const bracket = /^\[([^\]]*)\]\s*/.exec(rest);
  if (bracket) {
    const name = bracket[1].trim();
    if (name === "markdown" || name === "md") type = "markdown";
    else if (name === "raw") type = "raw";
    else {
      throw new PercentFormatError(
        `unknown cell type [${name}] (expected [markdown], [raw], or none for code)`,
        lineNo,
      );
    }
    rest = rest.slice(bracket[0].length);
  }
  const metadata: Record<string, unknown> = {};
  let id: string | undefined;
  while (rest !== "") {
    const eq = rest.indexOf("=");
    const key = eq < 0 ? rest : rest.slice(0, eq);
    if (eq < 0 || !KEY.test(key)) {
      throw new PercentFormatError(
        `cannot read ${JSON.stringify(rest)} in the cell marker (expected key=JSON, ` +
          `e.g. tags=["parameters"])`,
        lineNo,
      );
    }
    const end = jsonEnd(rest, eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(rest.slice(eq + 1, end));
    } catch {
      throw new PercentFormatError(
        `the value of ${key} in the cell marker is not JSON: ${rest.slice(eq + 1, end)}`,
        lineNo,
      );
    }
    if (key === "id") {
      if (typeof value !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
        throw new PercentFormatError(
          `cell id ${JSON.stringify(value)} (expected 1–64 letters, digits, "-" or "_")`,
          lineNo,
        );
      }
      id = value;
    } else {
      metadata[key] = value;
    }
    rest = rest.slice(end).trimStart();
  }
  return { type, metadata, ...(id === undefined ? {} : { id }) };
}

/** End (exclusive) of the JSON value starting at `from`: a string, a bracketed value or a word. */
function jsonEnd(s: string, from: number): number {
  const open = s[from];
  if (open !== '"' && open !== "[" && open !== "{") {
    const space = s.slice(from).search(/\s/);
    return space < 0 ? s.length : from + space;
  }
  let depth = 0;
  let inString = false;
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') {
        inString = false;
        if (depth === 0) return i + 1;
      }
    } else if (c === '"') inString = true;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return s.length; // unbalanced: JSON.parse reports it
}
