// One tiny real sweep of notebook 02 over the layer × init design (2×2: init × seeds), run once
// and checked two ways: notebook 03's summary of it, and its report's explorer in Chromium.
import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "@std/assert";
import type { CodeCell, Notebook } from "../lib/notebook/nbformat.ts";
import { meanStd } from "../lib/train/metrics.ts";
import type { RunResults } from "../lib/train/trainer.ts";
import { assertValidNotebook, text } from "./_notebook_helpers.ts";
import { openPage } from "../lib/browser/mod.ts";
import { pairedDifference } from "../lib/train/stats.ts";
import { explorerData } from "../lib/viz/sweep_explorer.ts";
import { readSweepSummary } from "../lib/sweep/results.ts";
import { manifest, sweepNotebook02 } from "./_sweep_helpers.ts";
import { compressedPlotlyBundles } from "../lib/util/plotly_embed.ts";
import { showInFrontend } from "./_plotly_page.ts";

/** Trace names of the plotly chart `selector` inside the explorer. */
const NAMES = (selector: string) =>
  `Array.from(document.querySelector(".sweep-explorer ${selector}").data, (t) => t.name)`;
/** Clicks the checkbox of `value` in control `control`. */
const CLICK = (control: string, value: string) =>
  `document.querySelector('.sweep-explorer input[data-control="${control}"][value="${value}"]')` +
  `.click()`;

Deno.test({
  name: "sweep of notebook 02 over init × seeds: init reaches the networks; notebook 03 sums it up",
  sanitizeResources: false,
  fn: async () => {
    const { out, ran: r } = await sweepNotebook02();
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const m = await manifest(out);
    assertEquals(m.runs.map((x) => x.state), ["done", "done", "done", "done"]);
    // Each run trained with its own init and seed, into its own runDir.
    const finals: Record<string, number[]> = {};
    for (const run of m.runs) {
      const seed = (run.parameters.seeds as number[])[0];
      const results: RunResults = JSON.parse(
        await Deno.readTextFile(`${out}/runs/${run.id}/results/seed-${seed}/results.json`),
      );
      assertEquals(results.config.init, run.parameters.init);
      assertEquals(results.config.seed, seed);
      for (const arm of results.arms) {
        (finals[`${arm.name} ${run.parameters.init}`] ??= []).push(arm.epochs.at(-1)!.testAccuracy);
      }
    }
    const nb: Notebook = JSON.parse(await Deno.readTextFile(`${out}/03_sweep.ipynb`));
    assertValidNotebook(nb, "03_sweep");
    const outputs = nb.cells.filter((c): c is CodeCell => c.cell_type === "code")
      .flatMap((c) => c.outputs);
    assertEquals(outputs.filter((o) => o.output_type === "error"), []);
    const markdown = outputs.map((o) =>
      o.output_type === "display_data" ? text(o.data["text/markdown"] ?? "") : ""
    ).join("\n");
    assertStringIncludes(markdown, "**4 runs** of `02_train.ipynb` — 4 done, 0 failed");
    // The 2×2 table: Conv2d layers with Conv2d's init are the conv arm of the default runs;
    // ConvTranspose2d layers with Conv2d's init are the transposed arm of the swapped runs.
    const cell = (v: number[]) => {
      const s = meanStd(v);
      return `${(100 * s.mean).toFixed(1)}% ± ${(100 * s.std).toFixed(1)}%`;
    };
    assertStringIncludes(
      markdown,
      `| Conv2d | ${cell(finals["conv default"])} | ${cell(finals["conv swapped"])} |`,
    );
    assertStringIncludes(
      markdown,
      `| ConvTranspose2d | ${cell(finals["transposed swapped"])} | ${
        cell(finals["transposed default"])
      } |`,
    );
    assertStringIncludes(markdown, "layer: ConvTranspose2d − Conv2d (averaged over init)");
    const figures = outputs.filter((o) =>
      o.output_type === "display_data" && o.data["application/vnd.plotly.v1+json"]
    );
    assertEquals(figures.length, 3); // loss, accuracy, final accuracy
    assert((await Deno.stat(`${out}/03_sweep.html`)).size > 0);

    // The executed notebook holds plotly.js twice, compressed: in the first figure's text/html
    // (classic Notebook) and in the output before the explorer (frontends that draw figures with
    // a plotly.js of their own); it stays small.
    const ipynbBytes = (await Deno.stat(`${out}/03_sweep.ipynb`)).size;
    console.log(`executed 03_sweep.ipynb of the 2×2 sweep: ${ipynbBytes} bytes`);
    assert(ipynbBytes <= 1_500_000, `03_sweep.ipynb is ${ipynbBytes} bytes, more than 1.5 MB`);
    const htmls = outputs.map((o) =>
      o.output_type === "display_data" ? text(o.data["text/html"] ?? "") : ""
    );
    assertEquals(htmls.flatMap((h) => compressedPlotlyBundles(h)).length, 2);
    // The explorer's outputs alone, in a page with no plotly.js (JupyterLab, VS Code), draw.
    const at = htmls.findIndex((h) => h.includes('class="sweep-explorer"'));
    const shown = [outputs[at - 1], outputs[at]].map((o) =>
      o.output_type === "display_data" ? o.data : {}
    );
    await using page = await showInFrontend(shown);
    await page.waitFor(`document.querySelector(".sweep-explorer .sx-curves svg.main-svg")`, 30_000);
    assertEquals((await page.evaluate<string[]>(NAMES(".sx-curves"))).length, 8);
    await page.evaluate(CLICK("init", "swapped"));
    await page.waitFor(`${NAMES(".sx-curves")}.length === 4`);
    assertEquals(page.pageErrors, []);
    assertEquals(page.consoleErrors, []);
    assertEquals(page.requests.map((x) => x.url), [page.url], "requests beyond the page");
  },
});

Deno.test({
  name: "explorer in a real 2×2 sweep's report: controls change the plotted runs, compare shows " +
    "the paired difference, no errors, no requests",
  sanitizeResources: false,
  fn: async () => {
    const { out, ran: r } = await sweepNotebook02();
    assertEquals(r.code, 0, r.stdout + r.stderr);
    assertEquals((await manifest(out)).runs.map((x) => x.state), [
      "done",
      "done",
      "done",
      "done",
    ]);
    const report = `${out}/03_sweep.html`;
    console.log(`2×2 sweep report: ${(await Deno.stat(report)).size} bytes`);
    // One plotly.js, the report's own: the explorer's loader output is shown as its empty image.
    assertEquals(compressedPlotlyBundles(await Deno.readTextFile(report)).length, 1);

    await using page = await openPage(report);
    await page.waitFor(`document.querySelector(".sweep-explorer .sx-curves")?.data`, 30_000);
    const all = await page.evaluate<string[]>(NAMES(".sx-curves"));
    // 4 runs × 2 arms, one trace each, named by setting and seed.
    assertEquals(all.length, 8);
    assertEquals(new Set(all).size, 8);
    for (const arm of ["conv", "transposed"]) {
      for (const init of ["default", "swapped"]) {
        for (const seed of [0, 1]) assert(all.includes(`${arm} · init=${init} · seed ${seed}`));
      }
    }
    // Untick init=swapped: only the default runs remain.
    await page.evaluate(CLICK("init", "swapped"));
    await page.waitFor(`${NAMES(".sx-curves")}.length === 4`);
    let names = await page.evaluate<string[]>(NAMES(".sx-curves"));
    assert(names.every((n) => n.includes("init=default")), names.join(", "));
    // Untick seed 1 and the transposed arm: one run left.
    await page.evaluate(CLICK("seed", "1"));
    await page.evaluate(CLICK("arm", "transposed"));
    await page.waitFor(`${NAMES(".sx-curves")}.length === 1`);
    assertEquals(await page.evaluate(NAMES(".sx-curves")), ["conv · init=default · seed 0"]);
    assertEquals(await page.evaluate(NAMES(".sx-finals")), ["conv · init=default"]);
    assertEquals(await page.evaluate(`document.querySelectorAll(".sx-table tr").length`), 2);
    // "all" on init brings the swapped run of the same arm and seed back.
    await page.evaluate(
      `document.querySelector('fieldset[data-control="init"] button[data-set="all"]').click()`,
    );
    await page.waitFor(`${NAMES(".sx-curves")}.length === 2`);
    names = await page.evaluate<string[]>(NAMES(".sx-curves"));
    assertEquals(names.sort(), ["conv · init=default · seed 0", "conv · init=swapped · seed 0"]);
    // The per-step curve: same runs, x in fractions of an epoch.
    await page.evaluate(`(() => { const s = document.querySelector(".sx-metric");
      s.value = "steps"; s.dispatchEvent(new Event("change")); })()`);
    await page.waitFor(
      `document.querySelector(".sx-curves").data[0].x.some((x) => x % 1 !== 0)`,
    );
    assertEquals((await page.evaluate<string[]>(NAMES(".sx-curves"))).length, 2);

    // Compare conv (default init) with transposed (swapped init) across seeds 0 and 1.
    const summary = await readSweepSummary(out);
    const data = explorerData(summary, { margin: 0.01 });
    const a = data.settings.findIndex((s) => s.label === "conv · init=default");
    const b = data.settings.findIndex((s) => s.label === "transposed · init=swapped");
    await page.evaluate(`(() => {
      for (const [cls, v] of [["sx-a", "${a}"], ["sx-b", "${b}"]]) {
        const s = document.querySelector(".sweep-explorer ." + cls);
        s.value = v;
        s.dispatchEvent(new Event("change"));
      }
    })()`);
    await page.waitFor(`${NAMES(".sx-pair-curves")}.some((n) => n.startsWith("B · transposed"))`);
    const text = await page.evaluate<string>(
      `document.querySelector(".sweep-explorer .sx-difference").textContent`,
    );
    const final = (arm: string, init: string, seed: number) =>
      summary.results!.find((x) => x.values.init === init && x.seed === seed)!.results.arms
        .find((x) => x.name === arm)!.epochs.at(-1)!.testAccuracy;
    const d = pairedDifference(
      [0, 1].map((s) => final("conv", "default", s)),
      [0, 1].map((s) => final("transposed", "swapped", s)),
    );
    const m = text.match(
      /B − A = ([+−][\d.]+) pp, 95% interval ([+−][\d.]+) to ([+−][\d.]+) pp, paired t over 2 seeds \(0, 1\): \S/,
    );
    assert(m, text);
    const num = (s: string) => Number(s.replace("−", "-")) / 100;
    assertAlmostEquals(num(m[1]), d.mean, 0.0006);
    assertAlmostEquals(num(m[2]), d.ci95[0], 0.0006);
    assertAlmostEquals(num(m[3]), d.ci95[1], 0.0006);
    const pair = await page.evaluate<string[]>(NAMES(".sx-pair-curves"));
    assertEquals(pair.length, 4); // two seeds of A, two of B
    assertEquals(
      (await page.evaluate<string[]>(NAMES(".sx-pair-finals"))).sort(),
      ["seed 0", "seed 1"],
    );

    assertEquals(page.pageErrors, []);
    assertEquals(page.consoleErrors, []);
    // Inline data: URLs are part of the page (the loader output's empty image, shown here).
    const requests = page.requests.filter((x) => x.url !== page.url && !x.url.startsWith("data:"));
    assertEquals(requests, [], "requests beyond the page");
  },
});
