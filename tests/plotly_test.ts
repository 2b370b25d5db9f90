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

const PLOTLY_MARKER = "window.Plotly = Plotly";

Deno.test("figureBundle: plotly JSON, text/html and text/plain; plotly.js embedded once per session", () => {
  const first = figureBundle(heatmap([[1, -1], [0, 2]], { title: "kernel" }));
  const second = figureBundle(lineChart([{ name: "loss", y: [3, 2, 1] }]));
  assertEquals(Object.keys(first).sort(), [PLOTLY_MIME, "text/html", "text/plain"].sort());
  const fig = first[PLOTLY_MIME] as { data: { type: string; z: number[][] }[] };
  assertEquals(fig.data[0].type, "heatmap");
  assertEquals(fig.data[0].z, [[1, -1], [0, 2]]);
  const count = (s: string) => s.split(PLOTLY_MARKER).length - 1;
  assertEquals(count(first["text/html"] as string), 1);
  assertEquals(count(second["text/html"] as string), 0);
  assertStringIncludes(second["text/html"] as string, "window.Plotly.newPlot(");
  assertMatch(first["text/plain"] as string, /Plotly figure "kernel": 1 trace\(s\) \(heatmap\)/);
  // No network: nothing in the HTML loads a script from elsewhere.
  assert(!/<script[^>]+src=/.test(first["text/html"] as string));
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
