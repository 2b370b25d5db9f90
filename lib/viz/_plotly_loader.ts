// plotly.js for notebook outputs that draw with it from their own scripts (private to lib/viz;
// the sweep explorer). VS Code and JupyterLab with plotly's extension draw the figures' plotly
// JSON with a plotly.js of their own that the page's scripts cannot reach, and never run the
// figures' text/html that carries the kernel's copy; this output brings one.
//
// It is an output of its own, shown before the one that draws, because the report must not take
// it: the report embeds its single plotly.js in the page head, so this output carries the report
// output hint `omit` (lib/util/report_facts.ts), which the report honours and Jupyter frontends
// ignore.
import { compressedPlotlyScript } from "../util/plotly_embed.ts";
import { REPORT_OUTPUT_MIME, type ReportOutputHints } from "../util/report_facts.ts";
import { partialPlotlyJs } from "../util/plotly_partial.ts";
import { KERNEL_TRACE_TYPES, type MimeBundle } from "./plotly.ts";

/**
 * A MIME bundle whose `text/html` sets `window.plotlyReady` (a promise of `window.Plotly`) where
 * the page has no plotly.js yet: it keeps the page's `plotlyReady` or `Plotly` when there is one,
 * and otherwise decodes the kernel's compressed partial bundle (the one figures embed), offline.
 */
export function plotlyLoaderBundle(): MimeBundle {
  const script = compressedPlotlyScript(partialPlotlyJs(KERNEL_TRACE_TYPES), { ifAbsent: true });
  return {
    "text/html": script.trimEnd(),
    [REPORT_OUTPUT_MIME]: { omit: true } satisfies ReportOutputHints,
    "text/plain": "<plotly.js for the next output, where the page has none>",
  };
}
