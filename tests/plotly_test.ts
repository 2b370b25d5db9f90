import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import {
  figureBundle,
  groupedBars,
  heatmap,
  heatmaps,
  lineChart,
  PLOTLY_MIME,
  plotlyJsForInlineScript,
  table,
} from "../lib/viz/mod.ts";
import { knownTraceTypes } from "../lib/util/plotly_partial.ts";
import { compressedPlotlyBundles } from "../lib/util/plotly_embed.ts";
import { drawHtmlOutputs } from "./_plotly_page.ts";

/** The plotly.js bundles a figure's text/html embeds (compressed), decoded. */
const bundles = (b: Record<string, unknown>) => compressedPlotlyBundles(String(b["text/html"]));

Deno.test("figureBundle: plotly JSON, text/html and text/plain; plotly.js embedded once per session", () => {
  const first = figureBundle(heatmap([[1, -1], [0, 2]], { title: "kernel" }));
  const second = figureBundle(lineChart([{ name: "loss", y: [3, 2, 1] }]));
  const third = figureBundle(table(["a"], [[1]]));
  assertEquals(Object.keys(first).sort(), [PLOTLY_MIME, "text/html", "text/plain"].sort());
  const fig = first[PLOTLY_MIME] as { data: { type: string; z: number[][] }[] };
  assertEquals(fig.data[0].type, "heatmap");
  assertEquals(fig.data[0].z, [[1, -1], [0, 2]]);
  // The first figure carries a partial bundle of every trace type lib draws, compressed: the
  // line chart and the table that follow need no copy of their own.
  const [js, ...more] = bundles(first);
  assertEquals(more, []);
  assertStringIncludes(js, "partial bundle: core + bar, heatmap, image, scatter, table */");
  assertEquals(bundles(second), []);
  assertEquals(bundles(third), []);
  const full = plotlyJsForInlineScript().length;
  const size = (first["text/html"] as string).length;
  assert(size < full / 8, `the first figure's HTML is ${size} bytes (full plotly.js: ${full})`);
  assertStringIncludes(second["text/html"] as string, "window.plotlyReady.then(draw, fail)");
  assertMatch(first["text/plain"] as string, /Plotly figure "kernel": 1 trace\(s\) \(heatmap\)/);
  // No network: nothing in the HTML loads a script from elsewhere.
  assert(!/<script[^>]+src=/.test(first["text/html"] as string));
});

Deno.test("figureBundle: a trace type the embedded bundle lacks brings a larger one", () => {
  figureBundle(heatmap([[1]])); // plotly.js is embedded by now, whichever test ran first
  const pie = figureBundle({ data: [{ type: "pie", values: [1, 2] }] });
  const [js] = bundles(pie);
  assertStringIncludes(js, "partial bundle: core + bar, heatmap, image, pie, scatter, table */");
  assertEquals(bundles(figureBundle({ data: [{ type: "pie", values: [3] }] })), []);
  // a name plotly does not know brings nothing (plotly would not draw it with any bundle)
  assertEquals(bundles(figureBundle({ data: [{ type: "no-such-trace" }] })), []);
  assertEquals(bundles(figureBundle(heatmap([[1]]), { embedPlotly: false })), []);
  assertEquals(bundles(figureBundle(heatmap([[1]]), { embedPlotly: true })).length, 1);
});

Deno.test("figureBundle: data cannot close the script element", () => {
  const bundle = figureBundle(
    table(["name"], [["</script><script>alert(1)</script>"]]),
    { embedPlotly: false },
  );
  const html = bundle["text/html"] as string;
  assertEquals(html.match(/<\/script>/g)?.length, 1);
  assertStringIncludes(html, "<\\/script><script>alert(1)<\\/script>");
  assert(!plotlyJsForInlineScript().includes("</script"));
});

Deno.test("chart helpers build the expected traces and refuse inconsistent data", () => {
  const bars = groupedBars(["cat", "dog"], [{ name: "conv", values: [0.5, 0.25] }]);
  assertEquals(bars.data[0], { type: "bar", name: "conv", x: ["cat", "dog"], y: [0.5, 0.25] });
  assertEquals(bars.layout?.barmode, "group");
  const two = heatmaps([{ title: "in", z: [[1]] }, { title: "out", z: [[1, 2], [3, 4]] }]);
  assertEquals(two.data.map((t) => [t.xaxis, t.yaxis]), [[undefined, undefined], ["x2", "y2"]]);
  const t = table(["a", "b"], [[1, null]]);
  assertEquals((t.data[0].cells as { values: string[][] }).values, [["1"], ["—"]]);
  assertThrows(
    () => groupedBars(["a"], [{ name: "s", values: [1, 2] }]),
    RangeError,
    '"s" has 2 values',
  );
  assertThrows(() => table(["a"], [[1, 2]]), RangeError, "row 0 has 2 cells for 1 columns");
  assertThrows(() => heatmap([]), TypeError, "non-empty matrix");
});

Deno.test("knownTraceTypes: plotly's trace types only, scatter always (the core draws it)", () => {
  assertEquals(knownTraceTypes([]), ["scatter"]);
  assertEquals(knownTraceTypes(["table", "heatmap", "heatmap", "bar"]), [
    "bar",
    "heatmap",
    "scatter",
    "table",
  ]);
  // not trace types: unknown names, plotly's non-trace modules, paths
  assertEquals(knownTraceTypes(["no-such-trace", "core", "calendars", "../lib/core", "Bar"]), [
    "scatter",
  ]);
});

Deno.test("figureBundle: in Chromium, the first figure's bundle defines Plotly and every figure draws", async () => {
  const figures = [
    heatmap([[1, -1], [0, 2]], { title: "kernel" }),
    lineChart([{ name: "loss", y: [3, 2, 1] }]),
    groupedBars(["cat", "dog"], [{ name: "conv", values: [0.5, 0.25] }]),
    table(["a"], [[1]]),
  ];
  const htmls = figures.map((f, i) =>
    figureBundle(f, { embedPlotly: i === 0 })["text/html"] as string
  );
  const drawn = await drawHtmlOutputs(htmls);
  assertEquals(drawn.figures, 4);
  // every trace type lib draws (and those earlier tests of this process added)
  for (const type of ["bar", "heatmap", "image", "scatter", "table"]) {
    assert(drawn.traceTypes.includes(type), `${type} missing from ${drawn.traceTypes}`);
  }
});
