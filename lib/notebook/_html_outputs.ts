// Renders code-cell outputs for the HTML report (private to lib/notebook/html.ts).
import { joinSource, type MimeBundle, type Output } from "./nbformat.ts";
import { jsonForScript } from "./_html_escape.ts";
import { escapeHtml } from "../util/html.ts";
import { bytesToBase64 } from "../util/bytes.ts";
import { ansiToHtml, renderMarkdown } from "./_html_text.ts";
import { PLOTLY_MIME } from "../util/plotly_bundle.ts";
import { REPORT_OUTPUT_MIME, type ReportOutputHints } from "../util/report_facts.ts";
import { plotlyFigureScript } from "./_html_plotly.ts";

/** MIME types the report can show, richest first; the first one present in a bundle is used. */
export const MIME_ORDER: readonly string[] = [
  PLOTLY_MIME,
  "image/svg+xml",
  "image/png",
  "image/jpeg",
  "text/html",
  "text/markdown",
  "text/latex",
  "application/json",
  "text/plain",
];

/** Per-report state: counts plotly figures so each gets a unique id, and their trace types. */
export class RenderContext {
  /** Number of plotly figures rendered so far. */
  plotlyFigures = 0;
  /** Trace types the figures use (plotly's default, `scatter`, for traces without a type). */
  readonly traceTypes = new Set<string>();
  /** Outputs that draw with the page's plotly.js from their own scripts (report output hints). */
  plotlyScripts = 0;

  /** Whether the report needs plotly.js: a figure, or an output that draws with it. */
  get needsPlotly(): boolean {
    return this.plotlyFigures > 0 || this.plotlyScripts > 0;
  }

  /** Counts one more plotly figure and returns its element id, unique within the report. */
  nextPlotlyId(): string {
    return `plotly-figure-${++this.plotlyFigures}`;
  }
}

/** Picks the MIME type to show from a bundle, or `undefined` when none can be shown. */
export function pickMimeType(bundle: MimeBundle): string | undefined {
  return MIME_ORDER.find((mime) => bundle[mime] !== undefined && bundle[mime] !== null);
}

/** Renders the outputs of one code cell; consecutive stream outputs of one name are merged. */
export function renderOutputs(outputs: Output[], ctx: RenderContext): string {
  const merged: Output[] = [];
  for (const output of outputs) {
    const last = merged[merged.length - 1];
    if (
      output.output_type === "stream" && last?.output_type === "stream" &&
      last.name === output.name
    ) {
      merged[merged.length - 1] = {
        ...last,
        text: joinSource(last.text) + joinSource(output.text),
      };
    } else {
      merged.push(output);
    }
  }
  return merged.map((output) => renderOutput(output, ctx)).join("\n");
}

function renderOutput(output: Output, ctx: RenderContext): string {
  switch (output.output_type) {
    case "stream": {
      const name = output.name === "stderr" ? "stderr" : "stdout";
      return `<div class="output output-stream ${name}"><pre>${
        ansiToHtml(joinSource(output.text))
      }</pre></div>`;
    }
    case "error": {
      const traceback = output.traceback?.length
        ? output.traceback.join("\n")
        : `${output.ename}: ${output.evalue}`;
      return `<div class="output output-error"><pre>${ansiToHtml(traceback)}</pre></div>`;
    }
    case "execute_result": {
      const count = output.execution_count;
      const prompt = `<div class="prompt prompt-out">Out [${count ?? " "}]:</div>`;
      return prompt + renderRich(output.data, output.metadata ?? {}, ctx);
    }
    case "display_data":
      return renderRich(output.data, output.metadata ?? {}, ctx);
    default: {
      const type = (output as { output_type?: unknown }).output_type;
      return `<div class="output output-unknown">[unsupported output type ${
        escapeHtml(String(type))
      }]</div>`;
    }
  }
}

function renderRich(
  bundle: MimeBundle,
  metadata: Record<string, unknown>,
  ctx: RenderContext,
): string {
  const hints = (bundle ?? {})[REPORT_OUTPUT_MIME] as ReportOutputHints | undefined;
  if (hints?.omit === true) return "";
  if (Array.isArray(hints?.plotly)) {
    ctx.plotlyScripts++;
    for (const type of hints.plotly) if (typeof type === "string") ctx.traceTypes.add(type);
  }
  const mime = pickMimeType(bundle ?? {});
  if (mime === undefined) {
    const types = Object.keys(bundle ?? {}).join(", ") || "none";
    return `<div class="output output-unknown">[output not shown; MIME types: ${
      escapeHtml(types)
    }]</div>`;
  }
  const data = bundle[mime];
  const div = (kind: string, html: string) =>
    `<div class="output output-${kind}" data-mime-type="${escapeHtml(mime)}">${html}</div>`;
  switch (mime) {
    case PLOTLY_MIME:
      return div("plotly", renderPlotly(data, ctx));
    case "image/svg+xml": {
      const bytes = new TextEncoder().encode(textOf(data));
      return div("image", imageTag(`data:${mime};base64,${bytesToBase64(bytes)}`, mime, metadata));
    }
    case "image/png":
    case "image/jpeg":
      return div(
        "image",
        imageTag(`data:${mime};base64,${textOf(data).replace(/\s+/g, "")}`, mime, metadata),
      );
    case "text/html":
      return div("html", textOf(data));
    case "text/markdown":
      return div("markdown", renderMarkdown(textOf(data)));
    case "text/latex":
      return div("latex", `<pre>${escapeHtml(textOf(data))}</pre>`);
    case "application/json": {
      const text = typeof data === "string" ? data : JSON.stringify(data, null, 2);
      return div("json", `<pre>${escapeHtml(text)}</pre>`);
    }
    default:
      return div("text", `<pre>${ansiToHtml(textOf(data))}</pre>`);
  }
}

function textOf(data: unknown): string {
  if (typeof data === "string" || Array.isArray(data)) return joinSource(data as string[]);
  return JSON.stringify(data) ?? "";
}

function imageTag(src: string, mime: string, metadata: Record<string, unknown>): string {
  const own = metadata[mime];
  const dims = (typeof own === "object" && own !== null ? own : metadata) as Record<
    string,
    unknown
  >;
  let attrs = "";
  for (const key of ["width", "height"]) {
    const value = dims[key];
    if (typeof value === "number" && value > 0) attrs += ` ${key}="${Math.round(value)}"`;
  }
  return `<img src="${src}" alt="output image (${escapeHtml(mime)})"${attrs}>`;
}

interface PlotlyFigure {
  data?: unknown[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
  frames?: unknown[];
}

function renderPlotly(raw: unknown, ctx: RenderContext): string {
  let figure: PlotlyFigure;
  try {
    figure = (typeof raw === "string" || Array.isArray(raw) ? JSON.parse(textOf(raw)) : raw) ??
      {};
  } catch (error) {
    return `<pre class="output-unknown">[invalid plotly figure: ${
      escapeHtml(String(error))
    }]</pre>`;
  }
  const id = ctx.nextPlotlyId();
  const data = Array.isArray(figure.data) ? figure.data : [];
  const frames = Array.isArray(figure.frames) ? figure.frames : [];
  for (const frame of [{ data }, ...frames]) {
    const traces = (frame as { data?: unknown })?.data;
    if (!Array.isArray(traces)) continue;
    for (const trace of traces) {
      const type = (trace as { type?: unknown })?.type;
      ctx.traceTypes.add(typeof type === "string" ? type : "scatter");
    }
  }
  const layout = figure.layout ?? {};
  const config = { responsive: true, displaylogo: false, ...figure.config };
  const call = `Plotly.newPlot(${jsonForScript(id)}, ${jsonForScript(data)}, ${
    jsonForScript(layout)
  }, ${jsonForScript(config)})`;
  const addFrames = frames.length > 0
    ? `.then(function (gd) { return Plotly.addFrames(gd, ${jsonForScript(frames)}); })`
    : "";
  return `<div id="${id}" class="plotly-figure"></div>\n${plotlyFigureScript(call + addFrames)}`;
}
