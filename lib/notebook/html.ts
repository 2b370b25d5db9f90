/**
 * HTML export of executed notebooks: {@linkcode renderReport} turns a notebook and a run header
 * into ONE self-contained HTML file that opens offline (styles, images and — only when the
 * notebook has plotly figures — the plotly.js bundle are all inlined; nothing is fetched).
 *
 * What is shown: a header with the run's notebook, parameters, dataset, backend, date, run time and
 * status; a table of contents made from the markdown cells' headings; markdown cells (rendered
 * with marked); code cells highlighted as TypeScript in a foldable `<details>` element (open), with
 * their execution counts and run times (from nbclient's `metadata.execution` timestamps, when the
 * cell has them); and their outputs. With `noInput` (nbconvert's `--no-input`) code is left out and
 * only outputs are shown. Stream text and tracebacks keep their ANSI colours. Rich outputs show
 * the first MIME type the report can render from: plotly JSON (drawn interactively), SVG, PNG,
 * JPEG, HTML, markdown, LaTeX (as source), JSON, plain text.
 *
 * plotly.js is embedded once, and only as much as the figures need: a partial bundle with the
 * trace types they use (see lib/util/plotly_partial.ts), gzip-compressed and decoded in the page;
 * once every figure has drawn, the page's `window.reportDrawn` promise resolves (with the number of
 * figures). {@linkcode printReportPdf} in ./pdf.ts prints a report to PDF after that.
 *
 * @example
 * ```ts
 * import { renderReport, writeReportAtomic } from "./html.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("reports/run.ipynb"));
 * const html = renderReport(nb, {
 *   notebook: "01_shapes.ipynb",
 *   parameters: { epochs: 5 },
 *   dataset: "data/shapes.csv",
 *   date: new Date().toISOString(),
 *   runSeconds: 12.5,
 *   status: "ok",
 * });
 * await writeReportAtomic("reports/run.html", html);
 * ```
 * @module
 */
import { writeFileAtomic } from "../util/atomic.ts";
import {
  type Cell,
  type CodeCell,
  joinSource,
  type MarkdownCell,
  type Notebook,
} from "./nbformat.ts";
import { ANSI_CSS, HIGHLIGHT_CSS, PAGE_CSS } from "./_html_css.ts";
import { escapeHtml } from "../util/html.ts";
import { RenderContext, renderOutputs } from "./_html_outputs.ts";
import { plotlyEmbed, REPORT_DRAWN_SCRIPT } from "./_html_plotly.ts";
import { ansiToHtml, highlightCode, renderMarkdown } from "./_html_text.ts";
import { stripTags } from "./_html_escape.ts";

/** What the report's header says about the run. */
export interface ReportHeader {
  /** Notebook name or path. */
  notebook: string;
  /** Parameters the notebook ran with (shown as a table, values as JSON). */
  parameters: Record<string, unknown>;
  /** Dataset the run used. */
  dataset: string;
  /** Backend the run computed on, e.g. "wasm (2 threads)"; not shown when absent. */
  backend?: string;
  /** When the run happened (shown as given, e.g. an ISO 8601 timestamp). */
  date: string;
  /** Wall-clock run time in seconds. */
  runSeconds: number;
  /**
   * Whether the run finished, stopped at an error, finished with kernel messages lost
   * ("degraded"), or is still going (a report saved during the run).
   */
  status: "ok" | "error" | "degraded" | "running";
  /** Error message when `status` is `"error"`. */
  error?: string;
  /** What was lost when `status` is `"degraded"`, e.g. "2 kernel messages lost (cell 4: 2)". */
  integrity?: string;
  /** What the results were computed from (source, parameters, dataset, lib/ hashes). */
  computedFrom?: string;
}

/** Options for {@linkcode renderReport}. */
export interface ReportOptions {
  /** Leave code cells' source out, keep their outputs (nbconvert's `--no-input`). */
  noInput?: boolean;
}

/**
 * Renders an executed notebook as one self-contained HTML document (see the module docs). The
 * plotly.js bundle is embedded once, and only when at least one output is a plotly figure.
 *
 * @example
 * ```ts
 * import { renderReport } from "./html.ts";
 * const html = renderReport(
 *   { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] },
 *   {
 *     notebook: "empty.ipynb",
 *     parameters: {},
 *     dataset: "none",
 *     date: "2026-01-01T00:00:00Z",
 *     runSeconds: 0.1,
 *     status: "ok",
 *   },
 * );
 * console.log(html.startsWith("<!DOCTYPE html>")); // true
 * ```
 */
export function renderReport(
  nb: Notebook,
  header: ReportHeader,
  options: ReportOptions = {},
): string {
  const ctx = new RenderContext();
  const toc = new TableOfContents();
  const language = codeLanguage(nb);
  const cells = nb.cells.map((cell) => renderCell(cell, language, ctx, toc, options)).join("\n");
  const plotly = ctx.needsPlotly ? plotlyEmbed(ctx.traceTypes) : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${escapeHtml(header.notebook)} — report</title>
<style>${PAGE_CSS}${HIGHLIGHT_CSS}${ANSI_CSS}</style>
${plotly}</head>
<body>
<main>
${renderHeader(header)}
${toc.render()}<article class="notebook${options.noInput ? " no-input" : ""}">
${cells}
</article>
<footer class="footer">Generated ${escapeHtml(header.date)} from ${
    escapeHtml(header.notebook)
  }</footer>
</main>
${REPORT_DRAWN_SCRIPT}
</body>
</html>
`;
}

/**
 * Writes a report atomically (temp file + rename, see {@linkcode writeFileAtomic}): readers see
 * the old report or the complete new one, and a failed write leaves the old report untouched.
 *
 * @example
 * ```ts
 * import { writeReportAtomic } from "./html.ts";
 * await writeReportAtomic("/tmp/reports/run.html", "<!DOCTYPE html><title>run</title>");
 * ```
 */
export function writeReportAtomic(path: string, html: string): Promise<void> {
  return writeFileAtomic(path, html);
}

/**
 * Formats a duration in seconds for the header: `"0.42 s"`, `"12.3 s"`, `"2 min 05 s"`,
 * `"1 h 02 min"`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./html.ts";
 * formatDuration(125); // "2 min 05 s"
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "unknown";
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h} h ${pad(m)} min` : `${m} min ${pad(s)} s`;
}

function renderHeader(header: ReportHeader): string {
  const status = header.status === "ok"
    ? `<span class="status status-ok">ok</span>`
    : header.status === "running"
    ? `<span class="status">running</span>`
    : `<span class="status status-error">${header.status}</span>`;
  const error = header.status === "error" || header.error
    ? `<div class="report-error"><pre>${
      ansiToHtml(header.error ?? "the run failed (no message)")
    }</pre></div>`
    : "";
  const integrity = header.integrity
    ? `<div class="report-error report-degraded"><pre>${
      escapeHtml(`degraded: ${header.integrity}; outputs may be missing`)
    }</pre></div>\n`
    : "";
  const computed = header.computedFrom === undefined
    ? ""
    : `<dt>Computed from</dt><dd class="report-computed">${escapeHtml(header.computedFrom)}</dd>\n`;
  const params = Object.entries(header.parameters ?? {});
  const rows = params.map(([name, value]) =>
    `<tr><th scope="row">${escapeHtml(name)}</th><td><code>${
      escapeHtml(formatValue(value))
    }</code></td></tr>`
  ).join("\n");
  const table = params.length > 0
    ? `<div class="scroll-x"><table class="params-table">
<thead><tr><th>name</th><th>value</th></tr></thead>
<tbody>
${rows}
</tbody>
</table></div>`
    : `<p class="params-empty">no parameters</p>`;
  return `<header class="report-header">
<h1>${escapeHtml(header.notebook)}</h1>
<dl class="report-meta">
<dt>Dataset</dt><dd class="report-dataset">${escapeHtml(header.dataset)}</dd>
${
    header.backend === undefined
      ? ""
      : `<dt>Backend</dt><dd class="report-backend">${escapeHtml(header.backend)}</dd>\n`
  }<dt>Date</dt><dd class="report-date">${escapeHtml(header.date)}</dd>
<dt>Run time</dt><dd class="report-runtime">${escapeHtml(formatDuration(header.runSeconds))}</dd>
<dt>Status</dt><dd class="report-status">${status}</dd>
${computed}</dl>
${integrity}${error}
<section class="params"><h2>Parameters</h2>
${table}
</section>
</header>`;
}

function formatValue(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function codeLanguage(nb: Notebook): string {
  const name = String(nb.metadata?.language_info?.name ?? "").toLowerCase();
  return name === "javascript" ? "javascript" : "typescript";
}

function renderCell(
  cell: Cell,
  language: string,
  ctx: RenderContext,
  toc: TableOfContents,
  options: ReportOptions,
): string {
  const tags = (cell.metadata?.tags ?? []).filter((tag) => typeof tag === "string");
  const tagHtml = tags.length > 0
    ? `<div class="tags">${
      tags.map((tag) => `<span class="tag">${escapeHtml(tag)}</span>`).join("")
    }</div>`
    : "";
  switch (cell.cell_type) {
    case "markdown":
      return `<section class="cell cell-markdown"><div class="prompt"></div><div class="cell-body">${
        toc.addIds(renderMarkdownCell(cell))
      }</div></section>`;
    case "code":
      return renderCodeCell(cell, language, tagHtml, ctx, options);
    case "raw": {
      const format = cell.metadata?.format ?? cell.metadata?.raw_mimetype;
      const body = format === "text/html"
        ? joinSource(cell.source)
        : `<pre class="raw">${escapeHtml(joinSource(cell.source))}</pre>`;
      return `<section class="cell cell-raw"><div class="prompt"></div><div class="cell-body">${body}</div></section>`;
    }
    default:
      return "";
  }
}

function renderCodeCell(
  cell: CodeCell,
  language: string,
  tagHtml: string,
  ctx: RenderContext,
  options: ReportOptions,
): string {
  const count = cell.execution_count ?? " ";
  const seconds = cellRunSeconds(cell);
  const time = seconds === undefined
    ? ""
    : `<div class="cell-time" title="run time">${escapeHtml(formatDuration(seconds))}</div>`;
  const outputs = cell.outputs?.length
    ? `\n<div class="outputs">\n${renderOutputs(cell.outputs, ctx)}\n</div>`
    : "";
  if (options.noInput) {
    if (outputs === "") return "";
    return `<section class="cell cell-code">${
      time ? `\n<div class="prompt prompt-in">${time}</div>` : ""
    }${outputs}
</section>`;
  }
  const source = joinSource(cell.source);
  const lines = source === "" ? 0 : source.split("\n").length;
  return `<section class="cell cell-code">
<div class="prompt prompt-in">In [${count}]:${time}</div>
<div class="cell-body">${tagHtml}<details class="source" open><summary>code · ${lines} line${
    lines === 1 ? "" : "s"
  }</summary><pre><code class="hljs language-${language}">${
    highlightCode(source, language)
  }</code></pre></details></div>${outputs}
</section>`;
}

/**
 * A code cell's run time in seconds, from the timestamps nbclient (and this project's runner)
 * record in `metadata.execution`: from `iopub.execute_input` to `shell.execute_reply`.
 * `undefined` when either is missing or they do not make a valid interval.
 *
 * @example
 * ```ts
 * import { cellRunSeconds } from "./html.ts";
 * cellRunSeconds({
 *   cell_type: "code",
 *   source: "1 + 1",
 *   execution_count: 1,
 *   outputs: [],
 *   metadata: {
 *     execution: {
 *       "iopub.execute_input": "2026-01-01T00:00:00.000Z",
 *       "shell.execute_reply": "2026-01-01T00:00:01.500Z",
 *     },
 *   },
 * }); // 1.5
 * ```
 */
export function cellRunSeconds(cell: CodeCell): number | undefined {
  const execution = cell.metadata?.execution as Record<string, unknown> | undefined;
  if (execution === null || typeof execution !== "object") return undefined;
  const start = execution["iopub.execute_input"];
  const end = execution["shell.execute_reply"];
  if (typeof start !== "string" || typeof end !== "string") return undefined;
  const ms = Date.parse(end) - Date.parse(start);
  return Number.isFinite(ms) && ms >= 0 ? ms / 1000 : undefined;
}

/** Collects markdown headings, gives each a unique id, and renders the table of contents. */
class TableOfContents {
  readonly #entries: { level: number; id: string; text: string }[] = [];
  readonly #ids = new Set<string>();

  /** Adds an `id` to every heading in `html` (keeping an existing one) and records it. */
  addIds(html: string): string {
    return html.replace(
      /<h([1-6])((?:\s[^>]*)?)>([\s\S]*?)<\/h\1>/g,
      (_match, level: string, attrs: string, inner: string) => {
        const text = stripTags(inner).trim();
        const existing = attrs.match(/\sid="([^"]*)"/)?.[1];
        const id = existing ?? this.#uniqueId(text);
        this.#ids.add(id);
        this.#entries.push({ level: Number(level), id, text });
        return `<h${level}${
          existing ? attrs : `${attrs} id="${escapeHtml(id)}"`
        }>${inner}</h${level}>`;
      },
    );
  }

  /** The `<nav>` listing the headings (levels 1–3), or nothing when there are none. */
  render(): string {
    const shown = this.#entries.filter((e) => e.level <= 3);
    if (shown.length === 0) return "";
    const top = Math.min(...shown.map((e) => e.level));
    const items = shown.map((e) =>
      `<li class="toc-level-${e.level - top + 1}"><a href="#${escapeHtml(e.id)}">${e.text}</a></li>`
    ).join("\n");
    return `<nav class="toc" aria-label="Contents"><h2>Contents</h2>
<ol>
${items}
</ol>
</nav>
`;
  }

  #uniqueId(text: string): string {
    const base = "sec-" +
      (text.toLowerCase().normalize("NFKD").replace(/[^\p{L}\p{N}]+/gu, "-").replace(
        /^-+|-+$/g,
        "",
      ) || "heading");
    let id = base;
    for (let n = 2; this.#ids.has(id); n++) id = `${base}-${n}`;
    return id;
  }
}

function renderMarkdownCell(cell: MarkdownCell): string {
  const html = renderMarkdown(joinSource(cell.source));
  const attachments = cell.attachments;
  if (!attachments) return html;
  // Images stored in the cell itself are referenced as `attachment:<name>`.
  return html.replace(/(src=")attachment:([^"]*)"/g, (match, prefix: string, name: string) => {
    let key = name;
    try {
      key = decodeURIComponent(name);
    } catch {
      // keep the raw name
    }
    const bundle = attachments[key];
    if (!bundle) return match;
    const mime = Object.keys(bundle).find((type) => type.startsWith("image/"));
    if (!mime) return match;
    const data = joinSource(bundle[mime] as string | string[]);
    const uri = mime === "image/svg+xml"
      ? `data:${mime};charset=utf-8,${encodeURIComponent(data)}`
      : `data:${mime};base64,${data.replace(/\s+/g, "")}`;
    return `${prefix}${uri}"`;
  });
}
