// The project's real notebooks, executed end to end on the real Deno kernel through the CLI, and
// their HTML reports opened in headless Chromium.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openPage } from "../lib/browser/mod.ts";
import type { CodeCell, Notebook, Output } from "../lib/notebook/nbformat.ts";
import { compressedPlotlyBundles } from "../lib/util/plotly_embed.ts";
import { assertValidNotebook, stripAnsi, text } from "./_notebook_helpers.ts";
import { drawHtmlOutputs } from "./_plotly_page.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

async function runNotebookCli(name: string, params: string[], out: string) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "run",
      `notebooks/${name}.ipynb`,
      ...params.flatMap((p) => ["-p", p]),
      "--out",
      out,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assertEquals(r.code, 0, log);
  const nb: Notebook = JSON.parse(await Deno.readTextFile(join(out, `${name}.ipynb`)));
  assertValidNotebook(nb, name);
  const outputs = nb.cells.filter((c): c is CodeCell => c.cell_type === "code").flatMap((c) =>
    c.outputs
  );
  return { nb, outputs, html: join(out, `${name}.html`), ipynb: join(out, `${name}.ipynb`) };
}

/**
 * The executed notebook stays small (plotly.js is embedded once, a compressed partial bundle) and
 * its own figures' HTML, as the classic Notebook shows it, defines Plotly and draws every figure
 * in Chromium, offline.
 */
async function assertNotebookFiguresDraw(ipynb: string, outputs: Output[], figures: number) {
  const { size } = await Deno.stat(ipynb);
  assert(size <= 1_500_000, `${ipynb} is ${size} bytes, more than 1.5 MB`);
  const htmls = outputs.flatMap((o) =>
    o.output_type === "display_data" || o.output_type === "execute_result"
      ? [text(o.data["text/html"] ?? "")].filter(Boolean)
      : []
  );
  const bundles = htmls.flatMap((h) => compressedPlotlyBundles(h));
  assertEquals(bundles.length, 1, "copies of plotly.js in the executed notebook");
  assertStringIncludes(bundles[0], "partial bundle: core + ");
  const drawn = await drawHtmlOutputs(htmls);
  assertEquals(drawn.figures, figures);
}

/** All text an output shows: markdown, plain text, streams, errors. */
function shown(o: Output): string {
  if (o.output_type === "stream") return text(o.text);
  if (o.output_type === "error") return `${o.ename}: ${o.evalue}`;
  return text(o.data["text/markdown"] ?? o.data["text/plain"] ?? "");
}

async function assertReportDrawn(html: string, figures: number) {
  await using page = await openPage(html);
  await page.waitFor(
    `[...document.querySelectorAll(".plotly-figure")].every((d) => d.querySelector("svg.main-svg"))`,
    60_000,
  );
  assertEquals(await page.evaluate("document.querySelectorAll('.plotly-figure').length"), figures);
  assertEquals(page.pageErrors, []);
  assertEquals(page.consoleErrors, []);
  // No request at all beyond the page itself (inline data: URLs are part of the page).
  const requests = page.requests.filter((r) => r.url !== page.url && !r.url.startsWith("data:"));
  assertEquals(requests, [], "the report made requests besides its own file");
  assertEquals(page.failedRequests, []);
  // plotly.js is embedded as a compressed partial bundle: the report stays small.
  const { size } = await Deno.stat(html);
  assert(size <= 1_500_000, `${html} is ${size} bytes, more than 1.5 MB`);
}

Deno.test("notebook 01 runs end to end: every article number, the sweep, no errors; report draws", async () => {
  const out = await Deno.makeTempDir({ prefix: "nb01_" });
  try {
    const { outputs, html, ipynb } = await runNotebookCli("01_shapes", [], out);
    assertEquals(outputs.filter((o) => o.output_type === "error"), []);
    const all = stripAnsi(outputs.map(shown).join("\n"));
    for (
      const line of [
        "**ConvTranspose2d(1, 1, kernel_size=3, stride=1, padding=0)** on a 5×5 input",
        "(5 − 1)·1 − 2·0 + 1·(3 − 1) + 0 + 1 = 7\n- measured: 7×7 ✓ equal",
        "**Conv2d(1, 1, kernel_size=3, stride=1, padding=1)** on a 5×5 input",
        "⌊(5 + 2·1 − 1·(3 − 1) − 1) / 1⌋ + 1 = 5\n- measured: 5×5 ✓ equal",
        "**ConvTranspose2d(1, 1, kernel_size=3, stride=2, padding=1)** on a 5×5 input",
        "(5 − 1)·2 − 2·1 + 1·(3 − 1) + 0 + 1 = 9\n- measured: 9×9 ✓ equal",
        "**ConvTranspose2d(1, 1, kernel_size=3, stride=1, padding=1)** on a 5×5 input",
        "(5 − 1)·1 − 2·1 + 1·(3 − 1) + 0 + 1 = 5\n- measured: 5×5 ✓ equal",
        "| Conv2d | 90 | 81 | 9 | 0 |",
        "| ConvTranspose2d | 270 | 195 | 75 | 0 |",
        "| 128 → 32, 3×3 | 1152 | 0.0295 | 288 | 0.0589 | 2.00× |",
      ]
    ) assertStringIncludes(all, line);
    assert(!all.includes("DIFFERENT"));
    assert(
      !/looks like you are running TensorFlow\.js in Node/.test(all),
      "tfjs banner in outputs",
    );
    // conv(x) = C·vec(x) and convT(y) = Cᵀ·vec(y) to float rounding; stride-1 equivalence likewise.
    const errors = [...all.matchAll(/\| (\d\.\d\de-\d+) \|/g)].map((m) => Number(m[1]));
    assertEquals(errors.length, 2);
    assert(errors.every((e) => e < 1e-5), String(errors));
    const eq = all.match(/max \|difference\| = \*\*([\d.e+-]+)\*\*/);
    assert(eq && Number(eq[1]) < 1e-5, eq?.[0]);
    const plots = outputs.filter((o) =>
      o.output_type === "display_data" && "application/vnd.plotly.v1+json" in o.data
    );
    assertEquals(plots.length, 7); // input, 4 experiments, sweep table, convolution matrix
    const report = await Deno.readTextFile(html);
    assertStringIncludes(report, '<dd class="report-dataset">none</dd>');
    // The backend, what runs its convolutions (oneDNN: tests/setup.ts installs it) and its
    // threads, as the notebook's first cell published them (every core).
    const threads = Math.min(8, navigator.hardwareConcurrency);
    assertMatch(
      report,
      new RegExp(
        `<dd class="report-backend">wasm \\+ oneDNN 2\\.\\d+\\.\\d+ \\(${threads} threads?\\)</dd>`,
      ),
    );
    await assertReportDrawn(html, 7);
    await assertNotebookFiguresDraw(ipynb, outputs, 7);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("notebook 02 runs end to end with small parameters: curves, bars, matrices, conclusion", async () => {
  const out = await Deno.makeTempDir({ prefix: "nb02_" });
  try {
    const { nb, outputs, html, ipynb } = await runNotebookCli("02_train", [
      "dataset=synthetic",
      "trainSize=40",
      "testSize=20",
      "epochs=2",
      "batchSize=20",
      "control=true",
    ], out);
    assertEquals(outputs.filter((o) => o.output_type === "error"), []);
    const all = stripAnsi(outputs.map(shown).join("\n"));
    assertStringIncludes(all, "**synthetic shapes (built-in)**: 40 training and 20 test images");
    assertStringIncludes(all, "| **total trainable** |  |  |  | **961,066** | **961,066** |");
    assertStringIncludes(all, "Transposed − conv:");
    assertStringIncludes(all, "| control |");
    // The control arm, at the notebook's own DenseNet size, computes the same function as the conv
    // arm: its first-step gradients and its loss gap over the first steps are within their
    // tolerances, as docs/results.md and the notebook claim, and the conclusion does not report a
    // different function.
    const gap = all.match(
      /\| 0 \| \*\*([\d.e+-]+)\*\* \([\w/]+\): same gradients \| ([\d.e+-]+) \|/,
    );
    assert(gap, "control arm row");
    assert(Number(gap[1]) <= 1e-5 && Number(gap[2]) <= 1e-5, gap[0]);
    assertStringIncludes(
      all,
      "gradient gap at step 1, relative to the largest gradient (tolerance 1e-5)",
    );
    assertEquals(all.includes("did **not** follow"), false);
    assertStringIncludes(all, "95% interval");
    // The live progress bar is one display, updated in place to its final state.
    const bars = outputs.filter((o) => shown(o).includes("seed 0: ["));
    assertEquals(bars.length, 1);
    assertStringIncludes(shown(bars[0]), "100% epoch 2/2 step 2/2");
    // Every figure names the dataset.
    const titles = outputs.flatMap((o) => {
      const fig = o.output_type === "display_data"
        ? o.data["application/vnd.plotly.v1+json"]
        : undefined;
      const t = (fig as { layout?: { title?: { text?: string } } })?.layout?.title?.text;
      return t ? [t] : [];
    });
    assert(titles.length >= 6, titles.join("; "));
    assert(titles.every((t) => t.includes("synthetic shapes (built-in)")), titles.join("; "));
    const injected = nb.cells.find((c) => c.metadata.tags?.includes("injected-parameters"));
    assertStringIncludes(text(injected?.source ?? ""), "trainSize = 40");
    // The report header names the dataset actually used (the notebook publishes it).
    assertStringIncludes(
      await Deno.readTextFile(html),
      '<dd class="report-dataset">synthetic shapes (built-in)</dd>',
    );
    await assertReportDrawn(html, titles.length);
    await assertNotebookFiguresDraw(ipynb, outputs, titles.length);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
