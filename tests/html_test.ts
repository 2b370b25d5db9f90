import {
  assert,
  assertEquals,
  assertGreater,
  assertMatch,
  assertNotMatch,
  assertStringIncludes,
} from "@std/assert";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openPage } from "../lib/browser/mod.ts";
import {
  cellRunSeconds,
  formatDuration,
  renderReport,
  type ReportHeader,
  writeReportAtomic,
} from "../lib/notebook/html.ts";
import {
  type Cell,
  type CodeCell,
  joinSource,
  type Notebook,
  type Output,
} from "../lib/notebook/nbformat.ts";
import { figureBundle, groupedBars, heatmap, lineChart, table } from "../lib/viz/plotly.ts";
import { plotlyJsForInlineScript } from "../lib/util/plotly_bundle.ts";
import { compressedPlotlyBundles } from "../lib/util/plotly_embed.ts";

const FIXTURE = new URL("./fixtures/report_sample.ipynb", import.meta.url);
/** The banner at the top of every plotly.js bundle: appears once per copy of plotly.js. */
const PLOTLY_BANNER = "plotly.js v";
/** The script that carries a (compressed) plotly.js: once per report. */
const PLOTLY_EMBED = "window.plotlyReady = (async function";

/** The plotly.js source a report embeds, decompressed; "" when it embeds none. */
function embeddedPlotly(html: string): string {
  const bundles = compressedPlotlyBundles(html);
  assert(bundles.length <= 1, `${bundles.length} copies of plotly.js`);
  return bundles[0] ?? "";
}

async function loadFixture(): Promise<Notebook> {
  return JSON.parse(await Deno.readTextFile(FIXTURE));
}

const HEADER: ReportHeader = {
  notebook: "report_sample.ipynb",
  parameters: { epochs: 5, learningRate: 0.01, tag: "<b>bold</b>", layers: [16, 8] },
  dataset: "data/shapes.csv",
  date: "2026-11-28T06:00:00Z",
  runSeconds: 12.34,
  status: "error",
  error: "cell 4 failed: TypeError: f is not a function <here>",
};

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

function isPlotlyOutput(output: Output): boolean {
  return (output.output_type === "display_data" || output.output_type === "execute_result") &&
    "application/vnd.plotly.v1+json" in output.data;
}

function withoutPlotly(nb: Notebook): Notebook {
  const cells: Cell[] = nb.cells.map((cell) =>
    cell.cell_type === "code"
      ? { ...cell, outputs: cell.outputs.filter((output) => !isPlotlyOutput(output)) }
      : cell
  );
  return { ...nb, cells };
}

function tinyNotebook(outputs: Output[]): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [{ cell_type: "code", source: "x", metadata: {}, execution_count: 1, outputs }],
  };
}

Deno.test("renderReport: header, markdown, highlighted code and prompts", async () => {
  const html = renderReport(await loadFixture(), HEADER);
  assert(html.startsWith("<!DOCTYPE html>"));
  assertStringIncludes(html, "<title>report_sample.ipynb — report</title>");
  assertStringIncludes(html, "<h1>report_sample.ipynb</h1>");
  assertStringIncludes(html, `<dd class="report-dataset">data/shapes.csv</dd>`);
  assertEquals(html.includes("report-backend"), false, "no backend line without a backend");
  assertStringIncludes(
    renderReport(await loadFixture(), { ...HEADER, backend: "wasm (2 threads)" }),
    `<dt>Backend</dt><dd class="report-backend">wasm (2 threads)</dd>`,
  );
  assertStringIncludes(html, `<dd class="report-date">2026-11-28T06:00:00Z</dd>`);
  assertStringIncludes(html, `<dd class="report-runtime">12.3 s</dd>`);
  assertStringIncludes(html, `<span class="status status-error">error</span>`);
  assertStringIncludes(html, "TypeError: f is not a function &lt;here&gt;");
  assertStringIncludes(html, `<th scope="row">learningRate</th><td><code>0.01</code></td>`);
  assertStringIncludes(html, "<code>&quot;&lt;b&gt;bold&lt;/b&gt;&quot;</code>");
  assertStringIncludes(html, "<code>[16,8]</code>");
  // markdown: heading, list, fenced code (highlighted), table
  assertStringIncludes(html, `<h1 id="sec-sample-report">Sample report</h1>`);
  assertMatch(html, /<ul>\s*<li>stream output on <em>stdout<\/em>/);
  assertStringIncludes(html, `<code class="hljs language-ts">`);
  assertStringIncludes(html, "<td>accuracy</td>");
  // code cells: highlight.js spans and execution counts
  assertStringIncludes(html, `<span class="hljs-keyword">const</span>`);
  assertStringIncludes(html, `<span class="hljs-string">&quot;data/shapes.csv&quot;</span>`);
  assertStringIncludes(html, `<span class="tag">parameters</span>`);
  assertStringIncludes(html, "In [2]:");
  assertStringIncludes(html, "Out [2]:");
  assertStringIncludes(html, "Out [8]:");
  // the style sheets are inlined, nothing is linked
  assertStringIncludes(html, ".hljs-keyword");
  assertNotMatch(html, /<link\b|\bsrc="(https?:)?\/\//);
});

Deno.test("renderReport: streams, ANSI colours and tracebacks", async () => {
  const html = renderReport(await loadFixture(), HEADER);
  assert(!html.includes("\x1b"), "raw ANSI escape left in the report");
  // HTML in stream text is shown literally
  assertStringIncludes(html, "hello &lt;b&gt;world&lt;/b&gt; &amp; friends");
  assert(!html.includes("hello <b>world</b>"));
  // carriage returns: only the last state of a progress line is kept
  assertStringIncludes(html, "progress 100%");
  assert(!html.includes("progress 10%"));
  assertMatch(
    html,
    /<div class="output output-stream stderr"><pre><span class="ansi-yellow-fg">warning:<\/span>/,
  );
  assertMatch(html, /<div class="output output-error"><pre><span class="ansi-red-fg">TypeError/);
  assertStringIncludes(html, `<span class="ansi-cyan-fg">&lt;anonymous&gt;</span>`);
  // text/plain results may carry colours too (Deno.inspect)
  assertStringIncludes(html, `<span class="ansi-yellow-fg">42</span>`);
  assertStringIncludes(html, ".ansi-red-fg {");
});

Deno.test("renderReport: rich outputs pick the richest MIME type", async () => {
  const html = renderReport(await loadFixture(), HEADER);
  assertMatch(html, /<img src="data:image\/png;base64,iVBORw0KGgo[A-Za-z0-9+/=]+" [^>]*width="96"/);
  assertStringIncludes(html, `<img src="data:image/svg+xml;base64,`);
  assertStringIncludes(html, `<div class="output output-html" data-mime-type="text/html">`);
  assertStringIncludes(html, `<table class="wide-table">`);
  assertStringIncludes(html, `<div class="output output-json" data-mime-type="application/json">`);
  assert(!html.includes("&lt;image 24x16&gt;"), "text/plain used although image/png exists");

  const mixed = renderReport(
    tinyNotebook([
      {
        output_type: "display_data",
        metadata: {},
        data: { "text/plain": "plain", "image/png": "iVBORw0KGgo=", "image/svg+xml": "<svg/>" },
      },
      {
        output_type: "display_data",
        metadata: {},
        data: { "text/plain": "plain <tag>", "text/latex": "$x^2$" },
      },
      { output_type: "display_data", metadata: {}, data: { "text/markdown": "**md**" } },
      { output_type: "display_data", metadata: {}, data: { "application/x-unknown": "?" } },
    ]),
    { ...HEADER, status: "ok", error: undefined, parameters: {} },
  );
  assertStringIncludes(mixed, `data-mime-type="image/svg+xml"`);
  assert(!mixed.includes(`data-mime-type="image/png"`));
  assertStringIncludes(mixed, `<div class="output output-latex" data-mime-type="text/latex">`);
  assertStringIncludes(mixed, "<strong>md</strong>");
  assertStringIncludes(mixed, "output not shown; MIME types: application/x-unknown");
  assertStringIncludes(mixed, `<span class="status status-ok">ok</span>`);
  assertStringIncludes(mixed, "no parameters");
  assert(!mixed.includes(`class="report-error"`));
});

Deno.test("renderReport: plotly figures use the JSON and embed a compressed partial plotly.js once", async () => {
  const html = renderReport(await loadFixture(), HEADER);
  assertEquals(count(html, PLOTLY_EMBED), 1);
  const plotly = embeddedPlotly(html);
  assertEquals(count(plotly, PLOTLY_BANNER), 1);
  // only the core and the trace types the figures use (a heatmap and a scatter chart)
  assertStringIncludes(plotly, "partial bundle: core + heatmap, scatter */");
  assert(!plotly.includes("src/traces/table"), "unused trace types embedded");
  // far smaller than the full bundle, and smaller still compressed
  const full = plotlyJsForInlineScript().length;
  assertGreater(full, 4_000_000);
  assert(plotly.length < full / 2, `partial bundle is ${plotly.length} bytes`);
  assert(html.length < 800_000, `report is ${html.length} bytes`);
  const ids = [...html.matchAll(/Plotly\.newPlot\("([^"]+)"/g)].map((m) => m[1]);
  assertEquals(ids.length, 2);
  assertEquals(new Set(ids).size, 2);
  for (const id of ids) assertStringIncludes(html, `<div id="${id}" class="plotly-figure"></div>`);
  assertStringIncludes(html, `"type":"heatmap"`);
  assertStringIncludes(html, `"mode":"lines+markers"`);
  // the text/html alternatives of the plotly bundles are not used
  assert(!html.includes("PLOTLY_FROM_HTML_ALT"));
  assert(!html.includes("plotly html alternative"));
  // figures are drawn once plotly.js is decoded, and the page says when all have drawn
  assertEquals(count(html, "window.reportFigures.push(window.plotlyReady.then("), 2);
  assertStringIncludes(html, "window.reportDrawn = Promise.all(window.reportFigures");
});

Deno.test("renderReport: the embedded trace types follow the figures", () => {
  const bars = groupedBars(["a", "b"], [{ name: "s", values: [1, 2] }]);
  const sweep = table(["k"], [[1]]);
  const untyped = { data: [{ y: [1, 2] }], layout: {} };
  const outputs: Output[] = [bars, sweep, untyped].map((figure) => ({
    output_type: "display_data",
    metadata: {},
    data: figureBundle(figure, { embedPlotly: false }),
  }));
  const plotly = embeddedPlotly(renderReport(tinyNotebook(outputs), HEADER));
  assertStringIncludes(plotly, "partial bundle: core + bar, scatter, table */");
  // a trace type plotly does not know is left out rather than failing the report
  const unknown = embeddedPlotly(renderReport(
    tinyNotebook([{
      output_type: "display_data",
      metadata: {},
      data: { "application/vnd.plotly.v1+json": { data: [{ type: "no-such-trace" }] } },
    }]),
    HEADER,
  ));
  assertStringIncludes(unknown, "partial bundle: core + scatter */");
});

Deno.test("renderReport: bundles from lib/viz (plotly.js inside their text/html) embed it once", () => {
  // Each bundle below carries a compressed plotly.js in its text/html representation, as the
  // first figure of a kernel session does; the report must draw from the JSON and embed its own
  // copy only.
  const figures = [
    heatmap([[1, 2], [3, 4]], { title: "heat" }),
    lineChart([{ name: "loss", y: [3, 2, 1] }], { title: "line" }),
  ];
  const outputs: Output[] = figures.map((figure) => ({
    output_type: "display_data",
    metadata: {},
    data: figureBundle(figure, { embedPlotly: true }),
  }));
  for (const output of outputs) {
    if (output.output_type === "display_data") {
      assertEquals(compressedPlotlyBundles(String(output.data["text/html"])).length, 1);
    }
  }
  const html = renderReport(tinyNotebook(outputs), HEADER);
  assertEquals(count(html, PLOTLY_BANNER), 0, "an uncompressed bundle was embedded");
  assertEquals(count(html, PLOTLY_EMBED), 1, "the bundle from text/html was used");
  assertEquals(count(embeddedPlotly(html), PLOTLY_BANNER), 1);
  assertEquals(count(html, "Plotly.newPlot("), 2);
  assert(!html.includes("plotly-graph-div"), "the text/html representation was used");
});

Deno.test("renderReport: a report without plotly figures does not embed plotly.js", async () => {
  const nb = withoutPlotly(await loadFixture());
  const html = renderReport(nb, HEADER);
  assertEquals(count(html, PLOTLY_BANNER), 0);
  assert(!html.includes("Plotly.newPlot"));
  assert(!html.includes(PLOTLY_EMBED));
  assertStringIncludes(html, "window.reportDrawn = Promise.all(window.reportFigures || [])");
  assert(html.length < 100_000, `report without plotly is ${html.length} bytes`);
  // a bundle with only the plotly HTML alternative (no JSON) shows that HTML as is
  const htmlOnly = renderReport(
    tinyNotebook([{
      output_type: "display_data",
      metadata: {},
      data: { "text/html": "<div id='only-html'>x</div>", "text/plain": "x" },
    }]),
    HEADER,
  );
  assertStringIncludes(htmlOnly, "<div id='only-html'>x</div>");
  assertEquals(count(htmlOnly, PLOTLY_BANNER), 0);
});

Deno.test("renderReport: untrusted header text is escaped", () => {
  const html = renderReport(tinyNotebook([]), {
    ...HEADER,
    notebook: "<script>alert(1)</script>.ipynb",
    dataset: `"quoted" & <b>`,
  });
  assert(!html.includes("<script>alert(1)</script>"));
  assertStringIncludes(html, "&lt;script&gt;alert(1)&lt;/script&gt;.ipynb");
  assertStringIncludes(html, "&quot;quoted&quot; &amp; &lt;b&gt;");
});

Deno.test("formatDuration: seconds, minutes, hours", () => {
  assertEquals(formatDuration(0.421), "0.42 s");
  assertEquals(formatDuration(12.34), "12.3 s");
  assertEquals(formatDuration(125), "2 min 05 s");
  assertEquals(formatDuration(3720), "1 h 02 min");
  assertEquals(formatDuration(Number.NaN), "unknown");
});

Deno.test({
  name: "report in headless Chromium: figures drawn, image loaded, no errors, no network",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "html_test_" });
    try {
      const nb = await loadFixture();
      const reportPath = join(dir, "report.html");
      await writeReportAtomic(reportPath, renderReport(nb, HEADER));
      const plainPath = join(dir, "plain.html");
      await writeReportAtomic(plainPath, renderReport(withoutPlotly(nb), HEADER));

      let profile = "";
      {
        await using page = await openPage(reportPath);
        profile = page.userDataDir;
        await page.waitFor(
          `[...document.querySelectorAll(".plotly-figure")]
            .every((div) => div.querySelector("svg.main-svg"))`,
          20_000,
        );
        assertEquals(await page.evaluate("window.reportDrawn"), 2);
        assertEquals(page.pageErrors, []);
        assertEquals(page.consoleErrors, []);
        assertEquals(page.failedRequests, []);
        const external = page.requests.filter((r) =>
          r.url !== page.url && !r.url.startsWith("data:")
        );
        assertEquals(external, [], "the report made requests besides its own file");
        assertEquals(await page.evaluate("document.querySelectorAll('.plotly-figure').length"), 2);
        // the partial bundle registered exactly the trace types drawn
        assertEquals(
          await page.evaluate("Object.keys(Plotly.PlotSchema.get().traces).sort()"),
          ["heatmap", "scatter"],
        );
        // figures are interactive: moving the mouse onto a point shows its label; a mode bar
        assert(
          await page.evaluate(`(async () => {
            const gd = [...document.querySelectorAll(".plotly-figure")]
              .find((d) => d.data[0].type === "scatter");
            const drag = gd.querySelector(".nsewdrag").getBoundingClientRect();
            const [x, y] = [gd._fullLayout.xaxis, gd._fullLayout.yaxis];
            const px = drag.left + x.d2p(gd.data[0].x ? gd.data[0].x[1] : 1);
            const py = drag.top + y.d2p(gd.data[0].y[1]);
            gd.querySelector(".nsewdrag").dispatchEvent(
              new MouseEvent("mousemove", { clientX: px, clientY: py, bubbles: true }),
            );
            await new Promise((r) => setTimeout(r, 100));
            return gd.querySelectorAll(".hoverlayer .hovertext").length > 0 &&
              gd.querySelectorAll(".modebar-btn").length > 0;
          })()`),
          "a figure does not react to the mouse",
        );
        assertEquals(await page.evaluate("typeof window.PLOTLY_FROM_HTML_ALT"), "undefined");
        const images = await page.evaluate<{ src: string; width: number }[]>(
          `[...document.images].map((img) => ({ src: img.src.slice(0, 15), width: img.naturalWidth }))`,
        );
        assertEquals(images.length, 2);
        for (const image of images) assertGreater(image.width, 0, `${image.src} did not load`);
        // the wide HTML table scrolls inside its output instead of widening the page
        assert(
          await page.evaluate(`(() => {
            const out = document.querySelector(".output-html");
            return out.scrollWidth > out.clientWidth &&
              document.documentElement.scrollWidth <= window.innerWidth;
          })()`),
          "wide table does not scroll in its own box",
        );
        const shot = join(dir, "report.png");
        await page.screenshot(shot);
        const png = await Deno.readFile(shot);
        assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
        assertGreater(png.length, 20_000);
        const keep = Deno.env.get("HTML_TEST_SCREENSHOT");
        if (keep) await Deno.copyFile(shot, keep);
      }
      assert(!existsSync(profile), "browser profile directory left behind");

      await using plain = await openPage(plainPath);
      assertEquals(plain.pageErrors, []);
      assertEquals(plain.failedRequests, []);
      assertEquals(await plain.evaluate("typeof window.Plotly"), "undefined");
      assertEquals(await plain.evaluate("document.querySelectorAll('img').length"), 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "browser driver: records page errors, console errors and failed requests",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "html_test_" });
    try {
      const path = join(dir, "broken.html");
      await Deno.writeTextFile(
        path,
        `<!DOCTYPE html><title>broken</title><img src="missing.png">
<script>console.error("boom"); setTimeout(() => { throw new Error("bad thing"); });</script>`,
      );
      const page = await openPage(path);
      const { browserPid, userDataDir } = page;
      try {
        await page.waitFor("document.readyState === 'complete'");
        await new Promise((resolve) => setTimeout(resolve, 200));
        assertEquals(await page.evaluate("document.title"), "broken");
        assertEquals(await page.evaluate("Promise.resolve(6 * 7)"), 42);
        assertMatch(page.pageErrors.join("\n"), /bad thing/);
        assertMatch(page.consoleErrors.join("\n"), /boom/);
        assertEquals(page.failedRequests.length, 1);
        assertMatch(page.failedRequests[0], /missing\.png: net::ERR_FILE_NOT_FOUND/);
        let threw = false;
        try {
          await page.evaluate("undefinedName.property");
        } catch {
          threw = true;
        }
        assert(threw, "evaluate did not reject on an exception");
      } finally {
        await page.close();
      }
      assert(!existsSync(userDataDir), "browser profile directory left behind");
      if (Deno.build.os === "linux") {
        assert(!existsSync(`/proc/${browserPid}`), "browser process still running");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("renderReport: code cells fold in a details element; noInput leaves all code out", async () => {
  const nb = await loadFixture();
  const codeCells = nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
  const withOutputs = codeCells.filter((c) => c.outputs.length > 0);
  assert(withOutputs.length < codeCells.length, "the fixture needs a code cell without outputs");
  const html = renderReport(nb, HEADER);
  assertEquals(count(html, `<details class="source" open><summary>`), codeCells.length);
  assertEquals(count(html, `<code class="hljs language-typescript">`), codeCells.length);

  const bare = renderReport(nb, HEADER, { noInput: true });
  assert(!bare.includes("<details"), "a code cell is still shown");
  assert(!bare.includes("language-typescript"), "highlighted code left in the report");
  assert(!bare.includes("In ["), "input prompts left in the report");
  for (const cell of codeCells) {
    // every line of every code cell's source is gone (as source: escaped or highlighted)
    for (const line of joinSource(cell.source).split("\n").filter((l) => l.trim().length > 8)) {
      assert(!bare.includes(line.trim()), `code left in the report: ${line}`);
    }
  }
  // one section per code cell that has outputs, and the outputs are all still there
  assertEquals(count(bare, `<section class="cell cell-code">`), withOutputs.length);
  assertStringIncludes(bare, "hello &lt;b&gt;world&lt;/b&gt; &amp; friends");
  assertEquals(count(bare, `class="plotly-figure"`), 2);
  assertEquals(count(bare, "Out [8]:"), 1);
  assertStringIncludes(bare, '<h1 id="sec-sample-report">Sample report</h1>');
});

Deno.test("renderReport: markdown headings get ids and a table of contents", () => {
  const nb: Notebook = {
    ...tinyNotebook([]),
    cells: [
      { cell_type: "markdown", source: "# Shapes\n## Input & output\ntext", metadata: {} },
      {
        cell_type: "markdown",
        source: "## Input & output\n#### too deep\n### `code` x",
        metadata: {},
      },
      { cell_type: "code", source: "1", metadata: {}, execution_count: 1, outputs: [] },
    ],
  };
  const html = renderReport(nb, HEADER);
  assertStringIncludes(html, `<h1 id="sec-shapes">Shapes</h1>`);
  assertStringIncludes(html, `<h2 id="sec-input-amp-output">Input &amp; output</h2>`);
  assertStringIncludes(html, `<h2 id="sec-input-amp-output-2">Input &amp; output</h2>`);
  assertStringIncludes(html, `<h4 id="sec-too-deep">too deep</h4>`);
  const toc = html.slice(html.indexOf(`<nav class="toc"`), html.indexOf("</nav>"));
  assertEquals(
    [...toc.matchAll(/<li class="toc-level-(\d)"><a href="#([^"]+)">([^<]*)<\/a>/g)].map((m) =>
      m.slice(1)
    ),
    [
      ["1", "sec-shapes", "Shapes"],
      ["2", "sec-input-amp-output", "Input &amp; output"],
      ["2", "sec-input-amp-output-2", "Input &amp; output"],
      ["3", "sec-code-x", "code x"],
    ],
  );
  // the contents come before the cells; without headings there is none
  assert(html.indexOf(`<nav class="toc"`) < html.indexOf(`<article class="notebook">`));
  assert(!renderReport(tinyNotebook([]), HEADER).includes(`<nav class="toc"`));
});

Deno.test("renderReport: each code cell shows its run time from metadata.execution", () => {
  const timed = (execution: Record<string, unknown> | undefined): CodeCell => ({
    cell_type: "code",
    source: "await work()",
    metadata: execution ? { execution } : {},
    execution_count: 1,
    outputs: [{ output_type: "stream", name: "stdout", text: "done\n" }],
  });
  const nbclient = {
    "iopub.status.busy": "2026-11-28T06:00:00.000Z",
    "iopub.execute_input": "2026-11-28T06:00:00.250Z",
    "shell.execute_reply": "2026-11-28T06:02:05.250Z",
    "iopub.status.idle": "2026-11-28T06:02:05.300Z",
  };
  assertEquals(cellRunSeconds(timed(nbclient)), 125);
  assertEquals(cellRunSeconds(timed(undefined)), undefined);
  assertEquals(
    cellRunSeconds(timed({ "iopub.execute_input": nbclient["iopub.execute_input"] })),
    undefined,
  );
  assertEquals(
    cellRunSeconds(timed({ "iopub.execute_input": "later", "shell.execute_reply": "now" })),
    undefined,
  );
  assertEquals(
    cellRunSeconds(timed({
      "iopub.execute_input": "2026-11-28T06:00:01Z",
      "shell.execute_reply": "2026-11-28T06:00:00Z",
    })),
    undefined,
  );
  const nb = (cell: CodeCell): Notebook => ({ ...tinyNotebook([]), cells: [cell] });
  const html = renderReport(nb(timed(nbclient)), HEADER);
  assertStringIncludes(
    html,
    `<div class="prompt prompt-in">In [1]:<div class="cell-time" title="run time">2 min 05 s</div></div>`,
  );
  assertStringIncludes(
    renderReport(nb(timed(nbclient)), HEADER, { noInput: true }),
    `<div class="cell-time" title="run time">2 min 05 s</div>`,
  );
  assert(!renderReport(nb(timed(undefined)), HEADER).includes(`class="cell-time"`));
});
