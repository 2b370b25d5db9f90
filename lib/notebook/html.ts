/**
 * HTML export of executed notebooks: {@linkcode renderReport} turns a notebook and a run header
 * into ONE self-contained HTML file that opens offline (styles, images and — only when the
 * notebook has plotly figures — the plotly.js bundle are all inlined; nothing is fetched).
 *
 * What is shown: a header with the run's notebook, parameters, dataset, backend, date, run time and
 * status;
 * markdown cells (rendered with marked); code cells highlighted as TypeScript with their execution
 * counts; and their outputs. Stream text and tracebacks keep their ANSI colours. Rich outputs show
 * the first MIME type the report can render from: plotly JSON (drawn interactively), SVG, PNG,
 * JPEG, HTML, markdown, LaTeX (as source), JSON, plain text.
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
import { plotlyJsForInlineScript } from "../viz/plotly_bundle.ts";
import { ansiToHtml, highlightCode, renderMarkdown } from "./_html_text.ts";

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
export function renderReport(nb: Notebook, header: ReportHeader): string {
  const ctx = new RenderContext();
  const language = codeLanguage(nb);
  const cells = nb.cells.map((cell) => renderCell(cell, language, ctx)).join("\n");
  const plotly = ctx.plotlyFigures > 0
    ? `<script id="plotly-js">${plotlyJsForInlineScript()}</script>\n`
    : "";
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
<article class="notebook">
${cells}
</article>
<footer class="footer">Generated ${escapeHtml(header.date)} from ${
    escapeHtml(header.notebook)
  }</footer>
</main>
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

function renderCell(cell: Cell, language: string, ctx: RenderContext): string {
  const tags = (cell.metadata?.tags ?? []).filter((tag) => typeof tag === "string");
  const tagHtml = tags.length > 0
    ? `<div class="tags">${
      tags.map((tag) => `<span class="tag">${escapeHtml(tag)}</span>`).join("")
    }</div>`
    : "";
  switch (cell.cell_type) {
    case "markdown":
      return `<section class="cell cell-markdown"><div class="prompt"></div><div class="cell-body">${
        renderMarkdownCell(cell)
      }</div></section>`;
    case "code":
      return renderCodeCell(cell, language, tagHtml, ctx);
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
): string {
  const count = cell.execution_count ?? " ";
  const source = joinSource(cell.source);
  const outputs = cell.outputs?.length
    ? `\n<div class="outputs">\n${renderOutputs(cell.outputs, ctx)}\n</div>`
    : "";
  return `<section class="cell cell-code">
<div class="prompt prompt-in">In [${count}]:</div>
<div class="cell-body">${tagHtml}<div class="source"><pre><code class="hljs language-${language}">${
    highlightCode(source, language)
  }</code></pre></div></div>${outputs}
</section>`;
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
