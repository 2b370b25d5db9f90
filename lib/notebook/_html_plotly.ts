// plotly.js in the HTML report, embedded once (private to lib/notebook/html.ts): a partial bundle
// with only the trace types the report draws, compressed (lib/util/plotly_embed.ts). Figures wait
// for it through the promise `window.plotlyReady`; `window.reportDrawn` resolves once every figure
// has drawn (the PDF printer waits for it).
import { compressedPlotlyScript } from "../util/plotly_embed.ts";
import { partialPlotlyJs } from "../util/plotly_partial.ts";

/** The `<script>` elements that embed and start plotly.js for figures of `traceTypes`. */
export function plotlyEmbed(traceTypes: Iterable<string>): string {
  // Each figure calls `plotlyReady.then(...)` and is collected in `reportFigures`.
  return `<script>window.reportFigures = [];</script>\n` +
    compressedPlotlyScript(partialPlotlyJs(traceTypes));
}

/** The script that runs `call` (a `Plotly.newPlot(…)` expression) once plotly.js is ready. */
export function plotlyFigureScript(call: string): string {
  return `<script>window.reportFigures.push(window.plotlyReady.then(function (Plotly) { return ${call}; }));</script>`;
}

/** The script, at the end of the body, that sets `window.reportDrawn`. */
export const REPORT_DRAWN_SCRIPT =
  `<script>window.reportDrawn = Promise.all(window.reportFigures || []).then(function (figures) { return figures.length; });</script>`;
