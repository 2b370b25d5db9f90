// plotly.js in the HTML report, embedded once (private to lib/notebook/html.ts): a partial bundle
// with only the trace types the report draws, gzip-compressed and base64-encoded in an inert
// <script> element, decoded in the page with DecompressionStream (no request is made), then run.
// Figures wait for it through the promise `window.plotlyReady`; `window.reportDrawn` resolves once
// every figure has drawn (the PDF printer waits for it).
import { gzipSync } from "node:zlib";
import { bytesToBase64 } from "../util/bytes.ts";
import { partialPlotlyJs } from "../util/plotly_partial.ts";

const encoded = new Map<string, string>();

/** The `<script>` elements that embed and start plotly.js for figures of `traceTypes`. */
export function plotlyEmbed(traceTypes: Iterable<string>): string {
  const js = partialPlotlyJs(traceTypes);
  let base64 = encoded.get(js);
  if (base64 === undefined) {
    base64 = bytesToBase64(gzipSync(new TextEncoder().encode(js), { level: 9 }));
    encoded.set(js, base64);
  }
  return `<script id="plotly-js" type="application/gzip;base64">${base64}</script>
<script>${LOADER}</script>
`;
}

// Runs before any figure script: each figure calls `plotlyReady.then(...)` and is collected in
// `reportFigures`.
const LOADER = `window.reportFigures = [];
window.plotlyReady = (async function () {
  var text = document.getElementById("plotly-js").textContent;
  var binary = atob(text.replace(/\\s+/g, ""));
  var bytes = new Uint8Array(binary.length);
  for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  var script = document.createElement("script");
  script.textContent = await new Response(stream).text();
  document.head.appendChild(script);
  return window.Plotly;
})();`;

/** The script that runs `call` (a `Plotly.newPlot(…)` expression) once plotly.js is ready. */
export function plotlyFigureScript(call: string): string {
  return `<script>window.reportFigures.push(window.plotlyReady.then(function (Plotly) { return ${call}; }));</script>`;
}

/** The script, at the end of the body, that sets `window.reportDrawn`. */
export const REPORT_DRAWN_SCRIPT =
  `<script>window.reportDrawn = Promise.all(window.reportFigures || []).then(function (figures) { return figures.length; });</script>`;
