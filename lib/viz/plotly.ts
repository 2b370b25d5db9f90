/**
 * Plotly figures as Jupyter MIME bundles that render inline and offline in JupyterLab, VS Code,
 * classic Notebook, nbconvert's HTML and this project's reports.
 *
 * A bundle carries three representations:
 * - `application/vnd.plotly.v1+json`: the figure itself (`{data, layout, config}`), which VS Code,
 *   JupyterLab with the plotly extension, and the HTML reports render interactively;
 * - `text/html`: a `<div>` and a script drawing it with plotly.js, for frontends without a plotly
 *   renderer (classic Notebook, nbconvert); plotly.js (from the npm package, no CDN) is embedded
 *   in the first figure of each kernel session only, later figures reuse it. What is embedded is a
 *   partial bundle of the trace types lib draws (heatmap, scatter, bar, table, image, plus any other
 *   type a figure uses), gzip-compressed: about 0.5 MB instead of the full bundle's 4.8 MB, so an
 *   executed notebook stays small (see lib/util/plotly_partial.ts and plotly_embed.ts);
 * - `text/plain`: a one-line description.
 *
 * @example
 * ```ts
 * import { heatmap, show } from "./plotly.ts";
 * await show(heatmap([[1, 2], [3, 4]], { title: "2×2" })); // inside a Deno notebook cell
 * ```
 * @module
 */
import { escapeScript, PLOTLY_MIME } from "../util/plotly_bundle.ts";
import { compressedPlotlyScript } from "../util/plotly_embed.ts";
import { knownTraceTypes, partialPlotlyJs } from "../util/plotly_partial.ts";

export { PLOTLY_MIME };

/** A plotly trace (`{type: "heatmap", z: …}`, `{type: "scatter", x, y}`, …). */
export type Trace = Record<string, unknown>;

/** A plotly figure. */
export interface Figure {
  /** Traces. */
  data: Trace[];
  /** Layout (title, axes, size…). */
  layout?: Record<string, unknown>;
  /** Config (`responsive`, `displaylogo`…). */
  config?: Record<string, unknown>;
}

/** A Jupyter MIME bundle as `Deno.jupyter.display(bundle, { raw: true })` takes it. */
export type MimeBundle = Record<string, unknown>;

/**
 * The trace types lib's figures use (heatmap, line and bar charts, tables, image grids): the
 * bundle a kernel session embeds holds them all, so that one copy serves every figure of the
 * notebooks (and the sweep explorer's charts).
 *
 * @example
 * ```ts
 * import { partialPlotlyJs } from "../util/plotly_partial.ts";
 * const js = partialPlotlyJs(KERNEL_TRACE_TYPES); // the bundle a kernel's first figure embeds
 * ```
 */
export const KERNEL_TRACE_TYPES: readonly string[] = [
  "bar",
  "heatmap",
  "image",
  "scatter",
  "table",
];

/** Trace types of the bundle embedded in this process so far (undefined: none yet). */
let embeddedTypes: Set<string> | undefined;
let figureCounter = 0;

const DEFAULT_CONFIG = { responsive: true, displaylogo: false };

/**
 * Turns a figure into a MIME bundle (see the module doc). The first call per process embeds
 * plotly.js in the `text/html` representation, and so does a later figure with a trace type the
 * embedded bundle lacks (a larger bundle then replaces `window.Plotly`); pass `embedPlotly` to
 * force either way.
 *
 * @example
 * ```ts
 * const bundle = figureBundle({ data: [{ type: "bar", x: ["a"], y: [1] }] });
 * Object.keys(bundle); // ["application/vnd.plotly.v1+json", "text/html", "text/plain"]
 * ```
 */
export function figureBundle(figure: Figure, options: { embedPlotly?: boolean } = {}): MimeBundle {
  if (!figure || !Array.isArray(figure.data)) {
    throw new TypeError("figure must be an object with a data array of traces");
  }
  const fig = {
    data: figure.data,
    layout: figure.layout ?? {},
    config: { ...DEFAULT_CONFIG, ...figure.config },
  };
  const types = knownTraceTypes(fig.data.map((t) => String(t.type ?? "scatter")));
  const embed = options.embedPlotly ??
    !(embeddedTypes && types.every((t) => embeddedTypes!.has(t)));
  let plotly = "";
  if (embed) {
    const all = knownTraceTypes([...KERNEL_TRACE_TYPES, ...(embeddedTypes ?? []), ...types]);
    plotly = compressedPlotlyScript(partialPlotlyJs(all));
    embeddedTypes = new Set(all);
  }
  const id = `plotly-${Date.now().toString(36)}-${(figureCounter++).toString(36)}`;
  const height = typeof fig.layout.height === "number" ? fig.layout.height : 420;
  const json = escapeScript(JSON.stringify(fig));
  const html = [
    `<div id="${id}" class="plotly-graph-div" style="width:100%;height:${height}px"></div>`,
    plotly.trimEnd(),
    `<script type="text/javascript">(function () {`,
    `  var fig = ${json};`,
    `  function draw(Plotly) { Plotly.newPlot("${id}", fig.data, fig.layout, fig.config); }`,
    `  function fail(why) { document.getElementById("${id}").textContent = "plotly.js: " + why; }`,
    // plotly.js comes with this output or an earlier one of this session (window.plotlyReady, set
    // by lib/util/plotly_embed.ts); wait for it briefly.
    `  var tries = 0;`,
    `  (function wait() {`,
    `    if (window.plotlyReady) window.plotlyReady.then(draw, fail);`,
    `    else if (window.Plotly) draw(window.Plotly);`,
    `    else if (++tries > 100) fail("not loaded: re-run the notebook's first plotting cell");`,
    `    else setTimeout(wait, 50);`,
    `  })();`,
    `})();</script>`,
  ].filter(Boolean).join("\n");
  return { [PLOTLY_MIME]: fig, "text/html": html, "text/plain": describe(fig) };
}

function describe(fig: { data: Trace[]; layout: Record<string, unknown> }): string {
  const title = titleText(fig.layout.title);
  const types = [...new Set(fig.data.map((t) => String(t.type ?? "scatter")))].join(", ");
  return `<Plotly figure${title ? ` "${title}"` : ""}: ${fig.data.length} trace(s) (${types})>`;
}

function titleText(title: unknown): string {
  if (typeof title === "string") return title;
  if (title && typeof title === "object" && "text" in title) return String(title.text);
  return "";
}

/**
 * Displays a figure in the current Jupyter cell (awaited, so it cannot land in another cell).
 * Outside Jupyter it prints the text/plain description instead.
 *
 * @example
 * ```ts
 * await show({ data: [{ type: "scatter", y: [1, 3, 2] }] });
 * ```
 */
export async function show(figure: Figure): Promise<void> {
  const bundle = figureBundle(figure);
  if (inJupyter()) {
    await Deno.jupyter.display(bundle, { raw: true });
  } else {
    console.log(bundle["text/plain"]);
  }
}

/**
 * True inside the Deno Jupyter kernel (elsewhere, merely reading `Deno.jupyter` throws).
 *
 * @example
 * ```ts
 * if (!inJupyter()) console.log("running as a script");
 * ```
 */
export function inJupyter(): boolean {
  try {
    return typeof Deno.jupyter.display === "function";
  } catch {
    return false;
  }
}

/** Common layout options of the chart helpers. */
export interface ChartOptions {
  /** Figure title. */
  title?: string;
  /** x-axis title. */
  xTitle?: string;
  /** y-axis title. */
  yTitle?: string;
  /** Height in pixels (default depends on the chart). */
  height?: number;
  /** Width in pixels (default: the cell's width). */
  width?: number;
}

function baseLayout(o: ChartOptions, height: number): Record<string, unknown> {
  return {
    ...(o.title ? { title: { text: o.title } } : {}),
    xaxis: o.xTitle ? { title: { text: o.xTitle } } : {},
    yaxis: o.yTitle ? { title: { text: o.yTitle } } : {},
    height: o.height ?? height,
    ...(o.width ? { width: o.width } : {}),
    margin: { l: 60, r: 30, t: o.title ? 60 : 30, b: 50 },
  };
}

/** Options of {@linkcode heatmap} and {@linkcode heatmaps}. */
export interface HeatmapOptions extends ChartOptions {
  /** Plotly colour scale name (default "RdBu", reversed so that positive is red). */
  colorscale?: string;
  /** Write each value in its cell (default: when the matrix has at most 15×15 cells). */
  annotate?: boolean;
  /** Digits of the annotations (default 2). */
  digits?: number;
}

/** A matrix as one heatmap panel, row 0 at the top like an image. */
function heatmapTrace(z: number[][], o: HeatmapOptions, axis = ""): Trace {
  if (!Array.isArray(z) || z.length === 0 || !z.every((r) => Array.isArray(r))) {
    throw new TypeError("heatmap data must be a non-empty matrix (array of rows)");
  }
  const annotate = o.annotate ?? (z.length <= 15 && z[0].length <= 15);
  const digits = o.digits ?? 2;
  const zmax = Math.max(...z.flat().map(Math.abs), 1e-12);
  return {
    type: "heatmap",
    z,
    colorscale: o.colorscale ?? "RdBu",
    reversescale: o.colorscale === undefined,
    zmin: -zmax,
    zmax,
    showscale: false,
    ...(annotate
      ? { text: z.map((r) => r.map((v) => v.toFixed(digits))), texttemplate: "%{text}" }
      : {}),
    hovertemplate: "row %{y}, col %{x}: %{z:.4f}<extra></extra>",
    ...(axis ? { xaxis: `x${axis}`, yaxis: `y${axis}` } : {}),
  };
}

/**
 * One matrix as a heatmap (row 0 at the top, symmetric colour range around 0).
 *
 * @example
 * ```ts
 * const fig = heatmap([[0, 1], [1, 0]], { title: "kernel" });
 * ```
 */
export function heatmap(z: number[][], options: HeatmapOptions = {}): Figure {
  const layout = baseLayout(options, 360);
  layout.xaxis = { ...(layout.xaxis as object), constrain: "domain" };
  layout.yaxis = {
    ...(layout.yaxis as object),
    autorange: "reversed",
    scaleanchor: "x",
    constrain: "domain",
  };
  return { data: [heatmapTrace(z, options)], layout };
}

/**
 * Several matrices side by side, each with its own title and axes (e.g. input and output of a
 * layer, whose sizes differ).
 *
 * @example
 * ```ts
 * const fig = heatmaps([{ title: "input 5×5", z: [[1]] }, { title: "output 7×7", z: [[2]] }]);
 * ```
 */
export function heatmaps(
  panels: { title: string; z: number[][] }[],
  options: HeatmapOptions = {},
): Figure {
  if (panels.length === 0) throw new RangeError("heatmaps needs at least one panel");
  const layout: Record<string, unknown> = {
    ...baseLayout(options, 340),
    grid: { rows: 1, columns: panels.length, pattern: "independent" },
    annotations: panels.map((p, i) => ({
      text: `<b>${p.title}</b>`,
      showarrow: false,
      xref: `x${i ? i + 1 : ""} domain`,
      yref: `y${i ? i + 1 : ""} domain`,
      x: 0.5,
      y: 1.12,
    })),
  };
  layout.margin = { l: 30, r: 30, t: options.title ? 90 : 60, b: 30 };
  panels.forEach((_p, i) => {
    const suffix = i ? String(i + 1) : "";
    layout[`xaxis${suffix}`] = { showticklabels: false, ticks: "", constrain: "domain" };
    layout[`yaxis${suffix}`] = {
      autorange: "reversed",
      showticklabels: false,
      ticks: "",
      scaleanchor: `x${suffix}`,
      constrain: "domain",
    };
  });
  return {
    data: panels.map((p, i) => heatmapTrace(p.z, options, i ? String(i + 1) : "")),
    layout,
  };
}

/** One line of a {@linkcode lineChart}. */
export interface LineSeries {
  /** Legend name. */
  name: string;
  /** y values. */
  y: number[];
  /** x values (default 0, 1, 2, …). */
  x?: number[];
}

/**
 * Line chart of one or more series (e.g. training loss per step, per network).
 *
 * @example
 * ```ts
 * const fig = lineChart([{ name: "conv", y: [2.3, 1.9, 1.6] }], { xTitle: "step", yTitle: "loss" });
 * ```
 */
export function lineChart(series: LineSeries[], options: ChartOptions = {}): Figure {
  return {
    data: series.map((s) => ({
      type: "scatter",
      mode: "lines",
      name: s.name,
      x: s.x ?? s.y.map((_, i) => i),
      y: s.y,
    })),
    layout: baseLayout(options, 380),
  };
}

/** One group of bars in a {@linkcode groupedBars} chart. */
export interface BarSeries {
  /** Legend name. */
  name: string;
  /** One value per category. */
  values: number[];
}

/**
 * Grouped bar chart: one group per category, one bar per series (e.g. per-class accuracy of
 * the two networks).
 *
 * @example
 * ```ts
 * const fig = groupedBars(["cat", "dog"], [{ name: "conv", values: [0.6, 0.5] }]);
 * ```
 */
export function groupedBars(
  categories: string[],
  series: BarSeries[],
  options: ChartOptions = {},
): Figure {
  for (const s of series) {
    if (s.values.length !== categories.length) {
      throw new RangeError(
        `series "${s.name}" has ${s.values.length} values for ${categories.length} categories`,
      );
    }
  }
  return {
    data: series.map((s) => ({ type: "bar", name: s.name, x: categories, y: s.values })),
    layout: { ...baseLayout(options, 400), barmode: "group" },
  };
}

/**
 * A table (plotly's table trace): column headers and rows of cells.
 *
 * @example
 * ```ts
 * const fig = table(["layer", "output"], [["Conv2d", 5], ["ConvTranspose2d", 7]]);
 * ```
 */
export function table(
  columns: string[],
  rows: (string | number | boolean | null)[][],
  options: ChartOptions = {},
): Figure {
  for (const [i, r] of rows.entries()) {
    if (r.length !== columns.length) {
      throw new RangeError(`row ${i} has ${r.length} cells for ${columns.length} columns`);
    }
  }
  const cells = columns.map((_, j) => rows.map((r) => r[j] === null ? "—" : String(r[j])));
  const height = options.height ?? Math.min(600, 80 + 26 * (rows.length + 1));
  return {
    data: [{
      type: "table",
      header: {
        values: columns.map((c) => `<b>${c}</b>`),
        align: "left",
        fill: { color: "#e8eef7" },
      },
      cells: { values: cells, align: "left", height: 24 },
    }],
    layout: {
      ...baseLayout(options, height),
      height,
      margin: { l: 10, r: 10, t: options.title ? 50 : 10, b: 10 },
    },
  };
}
