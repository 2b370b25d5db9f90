// plotly.js for notebook outputs that draw with it from their own scripts (private to lib/viz;
// the sweep explorer). VS Code and JupyterLab with plotly's extension draw the figures' plotly
// JSON with a plotly.js of their own that the page's scripts cannot reach, and never run the
// figures' text/html that carries the kernel's copy; this output brings one.
//
// It is an output of its own, shown before the one that draws, because the report must not take
// it: lib/notebook's report prefers image/svg+xml to text/html and embeds its single plotly.js
// in the page head, while Jupyter frontends (classic Notebook, JupyterLab, VS Code, nbconvert)
// prefer text/html to image/svg+xml. So a frontend runs the script, and the report shows an
// empty 0×0 image.
import { compressedPlotlyScript } from "../util/plotly_embed.ts";
import { partialPlotlyJs } from "../util/plotly_partial.ts";
import { KERNEL_TRACE_TYPES, type MimeBundle } from "./plotly.ts";

const EMPTY_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>`;

/**
 * A MIME bundle whose `text/html` sets `window.plotlyReady` (a promise of `window.Plotly`) where
 * the page has no plotly.js yet: it keeps the page's `plotlyReady` or `Plotly` when there is one,
 * and otherwise decodes the kernel's compressed partial bundle (the one figures embed), offline.
 */
export function plotlyLoaderBundle(): MimeBundle {
  const script = compressedPlotlyScript(partialPlotlyJs(KERNEL_TRACE_TYPES), { ifAbsent: true });
  return {
    "text/html": script.trimEnd(),
    "image/svg+xml": EMPTY_SVG,
    "text/plain": "<plotly.js for the next output, where the page has none>",
  };
}
