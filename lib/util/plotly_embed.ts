/**
 * plotly.js inlined in an HTML page, gzip-compressed: one `<script>` that holds the bundle as a
 * base64 string, decodes it with the browser's `DecompressionStream` (no request is made), runs it
 * and sets `window.plotlyReady`, a promise of `window.Plotly`. A 1.3 MB partial bundle (see
 * ./plotly_partial.ts) takes about 0.5 MB this way. Used by the HTML reports
 * (lib/notebook/html.ts) and by the figures' HTML in notebook outputs (lib/viz/plotly.ts), which
 * wait for `window.plotlyReady` before drawing.
 *
 * @example
 * ```ts
 * import { compressedPlotlyScript } from "./plotly_embed.ts";
 * import { partialPlotlyJs } from "./plotly_partial.ts";
 * const html = compressedPlotlyScript(partialPlotlyJs(["bar"])) +
 *   `<script>window.plotlyReady.then((Plotly) => Plotly.newPlot("fig", [{ type: "bar", y: [1] }]));</script>`;
 * ```
 * @module
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { base64ToBytes, bytesToBase64 } from "./bytes.ts";

const encoded = new Map<string, string>();

// Runs in the page. The decoded bundle is run as an inline script element, as if it had been
// inlined itself; it defines the global Plotly.
const DECODER = `async function (base64) {
  var binary = atob(base64);
  var bytes = new Uint8Array(binary.length);
  for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  var script = document.createElement("script");
  script.textContent = await new Response(stream).text();
  document.head.appendChild(script);
  return window.Plotly;
}`;

// With `ifAbsent`: a page that already has plotly.js keeps it (a second copy would replace the
// global Plotly under figures drawn with the first).
const IF_ABSENT = "window.plotlyReady || (window.Plotly ? Promise.resolve(window.Plotly) : ";

/** Options of {@linkcode compressedPlotlyScript}. */
export interface CompressedPlotlyOptions {
  /**
   * Decode and run the bundle only where the page has neither `window.plotlyReady` nor
   * `window.Plotly` yet; otherwise `window.plotlyReady` becomes (or stays) a promise of the
   * page's plotly.js. Default false: the bundle always runs.
   */
  ifAbsent?: boolean;
}

/**
 * The `<script>` element that carries `js` (a plotly.js bundle) gzip-compressed and runs it,
 * setting `window.plotlyReady` to a promise of `window.Plotly` (rejected where the browser cannot
 * decompress). Base64 needs no escaping inside a script element. Encodings are cached per bundle.
 *
 * @example
 * ```ts
 * const script = compressedPlotlyScript("window.Plotly = {};");
 * script.startsWith("<script>window.plotlyReady = "); // true
 * compressedPlotlyScript("window.Plotly = {};", { ifAbsent: true }); // runs only without Plotly
 * ```
 */
export function compressedPlotlyScript(js: string, options: CompressedPlotlyOptions = {}): string {
  let base64 = encoded.get(js);
  if (base64 === undefined) {
    base64 = bytesToBase64(gzipSync(new TextEncoder().encode(js), { level: 9 }));
    encoded.set(js, base64);
  }
  const [open, close] = options.ifAbsent ? [IF_ABSENT, ")"] : ["", ""];
  return `<script>window.plotlyReady = ${open}(${DECODER})(\n"${base64}")${close};</script>\n`;
}

/**
 * The plotly.js bundles that `html` embeds with {@linkcode compressedPlotlyScript} (either
 * form), decoded, in page order (for checks: which bundle, how many copies).
 *
 * @example
 * ```ts
 * compressedPlotlyBundles(compressedPlotlyScript("var Plotly = 1;")); // ["var Plotly = 1;"]
 * ```
 */
export function compressedPlotlyBundles(html: string): string[] {
  return [
    ...html.matchAll(
      /window\.plotlyReady = (?:window\.plotlyReady \|\| \(window\.Plotly \? Promise\.resolve\(window\.Plotly\) : )?\(async function[^]*?\}\)\(\n"([A-Za-z0-9+/=]*)"\)\)?;/g,
    ),
  ]
    .map((m) => new TextDecoder().decode(gunzipSync(base64ToBytes(m[1]))));
}
