// The sweep explorer: the data it embeds (unit) and the report's size for 20 runs of notebook 02.
// A real 2×2 sweep's report driven in Chromium is in sweep_densenet_test.ts (it shares that sweep).
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import type { RunResults } from "../lib/train/trainer.ts";
import { pairedDifference } from "../lib/train/stats.ts";
import {
  type ExplorerData,
  explorerData,
  sweepExplorerBundle,
  sweepExplorerOutputs,
} from "../lib/viz/sweep_explorer.ts";
import type { SweepRunResult, SweepSummary } from "../lib/viz/sweep_views.ts";
import { figureBundle, lineChart, type MimeBundle } from "../lib/viz/plotly.ts";
import { compressedPlotlyBundles } from "../lib/util/plotly_embed.ts";
import { openPage, type Page } from "../lib/browser/mod.ts";
import { showInFrontend } from "./_plotly_page.ts";
import { renderReport } from "../lib/notebook/html.ts";
import type { Output } from "../lib/notebook/nbformat.ts";
import { codeCell, notebookOf } from "./_notebook_helpers.ts";
import { ROOT } from "./_sweep_helpers.ts";

/** One seed's results with `epochs` epochs of `steps` steps per arm; accuracies from `acc`. */
function results(
  seed: number,
  arms: string[],
  epochs: number,
  steps: number,
  acc: (arm: string, epoch: number) => number,
): RunResults {
  return {
    dataset: "test set",
    classNames: ["a", "b"],
    trainSize: 100,
    testSize: 50,
    config: { seed },
    completedEpochs: epochs,
    arms: arms.map((name, k) => ({
      name,
      steps: Array.from(
        { length: epochs * steps },
        (_, i) => [Math.floor(i / steps) + 1, (i % steps) + 1, 2 - i / 100 + k / 7 + seed / 13],
      ),
      epochs: Array.from({ length: epochs }, (_, e) => ({
        epoch: e + 1,
        lr: 0.01 / (e + 1),
        trainLoss: 1.5 - e / 10 + seed / 31,
        testLoss: 1.7 - e / 10 + k / 17,
        testAccuracy: acc(name, e + 1),
        perClassAccuracy: [0, 0],
        confusion: [[0, 0], [0, 0]],
        trainSeconds: 1,
      })),
    })),
  } as unknown as RunResults;
}

/** A sweep over init × lr with seeds 0–2, where run "run-007" holds seeds 3 and 4 of one cell. */
function syntheticSummary(): SweepSummary {
  const out: SweepRunResult[] = [];
  let id = 0;
  const acc = (seed: number, init: string, lr: number) => (arm: string, epoch: number) =>
    0.3 + epoch / 20 + (arm === "transposed" ? 0.02 : 0) + (init === "swapped" ? 0.05 : 0) +
    lr + ((seed * 7919 + arm.length * 31) % 11) / 400;
  for (const init of ["default", "swapped"]) {
    for (const lr of [0.01, 0.1]) {
      for (const seed of [0, 1, 2]) {
        const run = `run-${String(id++).padStart(3, "0")}`;
        out.push({
          id: run,
          report: `runs/${run}/02_train.html`,
          values: { init, lr },
          seed,
          results: results(seed, ["conv", "transposed"], 3, 5, acc(seed, init, lr)),
        });
      }
    }
  }
  for (const seed of [3, 4]) {
    out.push({
      id: "run-099",
      report: "runs/run-099/02_train.html",
      values: { init: "default", lr: 0.5 },
      seed,
      results: results(seed, ["conv"], 3, 5, acc(seed, "default", 0.5)),
    });
  }
  return { runs: [], missing: "", axes: ["init", "lr"], results: out };
}

Deno.test("explorerData: every arm of every run and seed once, curves complete, controls and pairs", () => {
  const summary = syntheticSummary();
  const data = explorerData(summary, { margin: 0.01, maxStepPoints: 4 });
  assertEquals(data.controls.map((c) => [c.name, c.values]), [
    ["arm", ["conv", "transposed"]],
    ["init", ["default", "swapped"]],
    ["lr", ["0.01", "0.1", "0.5"]],
    ["seed", ["0", "1", "2", "3", "4"]],
  ]);
  const expected = summary.results!.flatMap((r) =>
    r.results.arms.map((a) => ({ r, a, key: `${r.id}/${r.seed}/${a.name}` }))
  );
  const keys = data.runs.map((x) => `${x.run}/${x.seed}/${data.settings[x.setting].label}`);
  assertEquals(new Set(keys).size, keys.length, "a run appears twice");
  assertEquals(data.runs.length, expected.length);
  for (const [i, { r, a }] of expected.entries()) {
    const run = data.runs[i];
    assertEquals([run.run, run.seed, run.report], [r.id, r.seed, r.report]);
    const setting = data.settings[run.setting];
    assertEquals(setting.label, `${a.name} · init=${r.values.init} · lr=${r.values.lr}`);
    // Curves complete: every epoch, every metric, equal to results.json to 6 digits.
    for (const m of ["trainLoss", "testLoss", "testAccuracy", "lr"] as const) {
      assertEquals(run.epochs[m].length, r.results.completedEpochs);
      run.epochs[m].forEach((v, e) => assertAlmostEquals(v, a.epochs[e][m], 1e-5 * Math.abs(v)));
    }
    // 15 steps into at most 4 points: buckets of 4 steps, the last one ending at epoch 3.
    assertEquals(run.steps.every, 4);
    assertEquals(run.steps.loss.length, 4);
    assertEquals(run.steps.x.at(-1), 3);
    const mean = a.steps.slice(0, 4).reduce((s, v) => s + v[2], 0) / 4;
    assertAlmostEquals(run.steps.loss[0], mean, 1e-5);
  }
  // Settings: 2 arms × 2 inits × 2 lrs, plus conv at lr 0.5.
  assertEquals(data.settings.length, 9);
  // Pairs: every ordered pair of the 8 settings on seeds 0–2; the lr 0.5 cell has no seed in
  // common with them, so it pairs with nothing.
  assertEquals(data.pairs.length, 8 * 7);
  const lone = data.settings.findIndex((s) => s.label === "conv · init=default · lr=0.5");
  assert(data.pairs.every((p) => p.a !== lone && p.b !== lone));
  // A pair's numbers are lib/train/stats.ts's paired difference of the final accuracies.
  const final = (label: string, seed: number) => {
    const [arm, init, lr] = label.split(" · ");
    const r = summary.results!.find((x) =>
      x.seed === seed && `init=${x.values.init}` === init && `lr=${x.values.lr}` === lr
    )!;
    return r.results.arms.find((x) => x.name === arm)!.epochs.at(-1)!.testAccuracy;
  };
  for (const p of data.pairs) {
    const [la, lb] = [data.settings[p.a].label, data.settings[p.b].label];
    const d = pairedDifference(p.seeds.map((s) => final(la, s)), p.seeds.map((s) => final(lb, s)));
    assertEquals(p.seeds, [0, 1, 2]);
    assertAlmostEquals(p.mean, d.mean, 1e-7);
    assertAlmostEquals(p.ci95[0], d.ci95[0], 1e-7);
    assertAlmostEquals(p.ci95[1], d.ci95[1], 1e-7);
    assertMatch(p.text, /^[+−]\d+\.\d pp, 95% interval [+−]\d+\.\d to [+−]\d+\.\d pp$/);
    assert(p.verdict.length > 0);
  }
  // The bundle holds the data once, as JSON that survives a `</script>` in a value.
  summary.results![0].values.init = "</script><b>x";
  const html = String(sweepExplorerBundle(summary)["text/html"]);
  assertEquals(html.match(/class="sx-data"/g)?.length, 1);
  assert(!html.includes("</script><b>x") && !html.includes("<b>x"));
  const embedded: ExplorerData = JSON.parse(
    html.match(/class="sx-data">(.*?)<\/script>/s)![1],
  );
  assertEquals(embedded.controls[1].values[0], "</script><b>x");
  assertEquals(embedded.runs.length, expected.length);
});

Deno.test({
  name: "explorer report of 20 runs of notebook 02 stays under 3 MB (bench/sweep_explorer_size.ts)",
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "sweep-explorer-size-" });
    try {
      const run = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "bench/sweep_explorer_size.ts",
          ...["--setting", "default", "--runs", "20", "--out", tmp, "--json"],
        ],
        cwd: ROOT,
      }).output();
      const text = new TextDecoder();
      assertEquals(run.code, 0, text.decode(run.stdout) + text.decode(run.stderr));
      const measured = JSON.parse(text.decode(run.stdout).trim());
      const html = await Deno.readTextFile(`${tmp}/03_sweep.html`);
      assertEquals(measured.reportBytes, new TextEncoder().encode(html).length);
      console.log(`20-run report: ${measured.reportBytes} bytes`);
      assert(measured.reportBytes <= 3_000_000, `report is ${measured.reportBytes} bytes`);
      // It holds the explorer with all 20 runs × 3 arms, each with both epochs.
      const data: ExplorerData = JSON.parse(
        html.match(/class="sx-data">(.*?)<\/script>/s)![1],
      );
      assertEquals(new Set(data.runs.map((r) => r.run)).size, 20);
      assertEquals(data.runs.length, 60);
      assert(data.runs.every((r) => r.epochs.testAccuracy.length === 2));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

/** Clicks the checkbox of `value` in control `control`. */
const CLICK = (control: string, value: string) =>
  `document.querySelector('.sweep-explorer input[data-control="${control}"][value="${value}"]')` +
  `.click()`;
/** plotly.js bundles decoded and run in the page (each as a script element in the head). */
const RUN_BUNDLES = `[...document.head.querySelectorAll("script")]
  .filter((s) => s.textContent.startsWith("/* plotly.js v")).length`;
/** Trace names of the explorer's chart `selector`. */
const TRACES = (selector: string) =>
  `Array.from(document.querySelector(".sweep-explorer ${selector}").data, (t) => t.name)`;
/** True once the explorer's four charts are drawn. */
const DRAWN = `[".sx-curves", ".sx-finals", ".sx-pair-curves", ".sx-pair-finals"].every((s) =>
  document.querySelector(".sweep-explorer " + s)?.querySelector("svg.main-svg"))`;

function assertQuiet(page: Page) {
  assertEquals(page.pageErrors, []);
  assertEquals(page.consoleErrors, []);
  assertEquals(page.requests.map((r) => r.url), [page.url], "requests beyond the page");
}

Deno.test({
  name: "explorer outputs in a notebook page with no plotly.js (JupyterLab, VS Code) draw, and " +
    "the controls change the plotted runs, offline",
  sanitizeResources: false,
  fn: async () => {
    const summary = syntheticSummary();
    const outputs = sweepExplorerOutputs(summary, { margin: 0.01 });
    assertEquals(outputs.length, 2);
    // plotly.js comes once, compressed, with the first output; the explorer carries none.
    const [js, ...more] = compressedPlotlyBundles(String(outputs[0]["text/html"]));
    assertEquals(more, []);
    assertStringIncludes(js, "partial bundle: core + ");
    assertEquals(compressedPlotlyBundles(String(outputs[1]["text/html"])), []);

    await using page = await showInFrontend(outputs);
    assertEquals(await page.evaluate("typeof window.Plotly"), "undefined");
    await page.waitFor(DRAWN, 30_000);
    assertEquals(await page.evaluate(RUN_BUNDLES), 1);
    const data = explorerData(summary);
    const all = await page.evaluate<string[]>(TRACES(".sx-curves"));
    assertEquals(all.length, data.runs.length);
    // Untick lr=0.1 and seed 0: the runs of the other lrs on seeds 1 and 2 remain.
    await page.evaluate(CLICK("lr", "0.1"));
    await page.evaluate(CLICK("seed", "0"));
    const expected = data.runs.filter((r) =>
      !data.settings[r.setting].label.includes("lr=0.1") && r.seed !== 0
    ).length;
    await page.waitFor(`${TRACES(".sx-curves")}.length === ${expected}`);
    const names = await page.evaluate<string[]>(TRACES(".sx-curves"));
    assert(names.every((n) => !n.includes("lr=0.1") && !n.endsWith("seed 0")), names.join(", "));
    assertEquals(
      await page.evaluate(`document.querySelectorAll(".sweep-explorer .sx-table tr").length`),
      expected + 1,
    );
    // The compare view draws the pair chosen, with its paired difference.
    const b = data.settings.findIndex((s) => s.label === "transposed · init=swapped · lr=0.1");
    await page.evaluate(`(() => { const s = document.querySelector(".sweep-explorer .sx-b");
      s.value = "${b}"; s.dispatchEvent(new Event("change")); })()`);
    await page.waitFor(`${TRACES(".sx-pair-curves")}.some((n) => n.startsWith("B · transposed"))`);
    assertMatch(
      await page.evaluate<string>(`document.querySelector(".sx-difference").textContent`),
      /^B − A = [+−][\d.]+ pp, 95% interval .* over 3 seeds \(0, 1, 2\)/,
    );
    assertQuiet(page);
  },
});

Deno.test({
  name: "explorer outputs after a figure's (classic Notebook) reuse its plotly.js: one copy runs",
  sanitizeResources: false,
  fn: async () => {
    const figure = figureBundle(lineChart([{ name: "loss", y: [3, 2, 1] }]), { embedPlotly: true });
    await using page = await showInFrontend([figure, ...sweepExplorerOutputs(syntheticSummary())]);
    await page.waitFor(DRAWN, 30_000);
    await page.waitFor(`document.querySelector(".plotly-graph-div svg.main-svg")`);
    // Only the figure's bundle ran.
    assertEquals(await page.evaluate(RUN_BUNDLES), 1);
    assertQuiet(page);
  },
});

Deno.test({
  name: "explorer outputs where scripts do not run (untrusted notebook) say what to do",
  sanitizeResources: false,
  fn: async () => {
    await using page = await showInFrontend(sweepExplorerOutputs(syntheticSummary()), false);
    const status = await page.evaluate<string>(
      `document.querySelector(".sweep-explorer .sx-status").textContent`,
    );
    assertStringIncludes(status, "trust the notebook");
    assertStringIncludes(status, "03_sweep.html");
    assertEquals(await page.evaluate(`document.querySelectorAll("svg.main-svg").length`), 0);
  },
});

for (const withFigure of [true, false]) {
  Deno.test({
    name: `explorer outputs in a report${
      withFigure ? "" : " without any figure (a sweep whose seeds all lack an arm)"
    }: one plotly.js (the report's), the loader left out, the explorer draws`,
    sanitizeResources: false,
    fn: async () => {
      const display = (data: MimeBundle): Output => ({
        output_type: "display_data",
        metadata: {},
        data,
      });
      // As an executed notebook 03 holds them: the first figure embeds plotly.js in its text/html,
      // then the explorer's two outputs, the first with another copy in its text/html.
      const figure = figureBundle(lineChart([{ name: "loss", y: [3, 2, 1] }]), {
        embedPlotly: true,
      });
      const explorer = sweepExplorerOutputs(syntheticSummary());
      const outputs = (withFigure ? [figure, ...explorer] : explorer).map(display);
      const nb = notebookOf({
        ...codeCell("await showSweepExplorer(summary);"),
        execution_count: 1,
        outputs,
      });
      const html = renderReport(nb, {
        notebook: "03_sweep.ipynb",
        parameters: {},
        dataset: "test set",
        date: "2026-01-01T00:00:00Z",
        runSeconds: 1,
        status: "ok",
      });
      assertEquals(compressedPlotlyBundles(html).length, 1, "copies of plotly.js in the report");
      assertEquals(
        html.match(/class="output /g)?.length,
        withFigure ? 2 : 1,
        "the loader is left out",
      );
      const dir = await Deno.makeTempDir({ prefix: "explorer_report_" });
      try {
        await Deno.writeTextFile(`${dir}/03_sweep.html`, html);
        await using page = await openPage(`${dir}/03_sweep.html`);
        await page.waitFor(DRAWN, 30_000);
        assertEquals(await page.evaluate(RUN_BUNDLES), 1);
        assertEquals(page.pageErrors, []);
        assertEquals(page.consoleErrors, []);
        const requests = page.requests.filter((r) =>
          r.url !== page.url && !r.url.startsWith("data:")
        );
        assertEquals(requests, [], "requests beyond the page");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
