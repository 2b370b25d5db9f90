// The sweep explorer: the data it embeds (unit), a real 2×2 sweep's report driven in Chromium,
// and the report's size for 20 runs of notebook 02.
import { assert, assertAlmostEquals, assertEquals, assertMatch } from "@std/assert";
import { openPage } from "../lib/browser/mod.ts";
import type { RunResults } from "../lib/train/trainer.ts";
import { pairedDifference } from "../lib/train/stats.ts";
import { type ExplorerData, explorerData, sweepExplorerBundle } from "../lib/viz/sweep_explorer.ts";
import type { SweepRunResult, SweepSummary } from "../lib/viz/sweep_views.ts";
import { readSweepSummary } from "../lib/sweep/results.ts";
import { manifest, ROOT, sweep } from "./_sweep_helpers.ts";

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

/** Trace names of the plotly chart `selector` inside the explorer. */
const NAMES = (selector: string) =>
  `Array.from(document.querySelector(".sweep-explorer ${selector}").data, (t) => t.name)`;
/** Clicks the checkbox of `value` in control `control`. */
const CLICK = (control: string, value: string) =>
  `document.querySelector('.sweep-explorer input[data-control="${control}"][value="${value}"]')` +
  `.click()`;

Deno.test({
  name: "explorer in a real 2×2 sweep's report: controls change the plotted runs, compare shows " +
    "the paired difference, no errors, no requests",
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "sweep-explorer-" });
    const out = `${tmp}/s`;
    try {
      const r = await sweep([
        "notebooks/02_train.ipynb",
        "--grid",
        "init=default,swapped",
        "--grid",
        "seeds=[0],[1]",
        ...["dataset=synthetic", "trainSize=16", "testSize=16", "epochs=2", "batchSize=8"]
          .flatMap((p) => ["-p", p]),
        "-p",
        "control=false",
        "--out",
        out,
        "--jobs",
        "2",
      ]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      assertEquals((await manifest(out)).runs.map((x) => x.state), [
        "done",
        "done",
        "done",
        "done",
      ]);
      const report = `${out}/03_sweep.html`;
      console.log(`2×2 sweep report: ${(await Deno.stat(report)).size} bytes`);

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
      assertEquals(page.requests.map((x) => x.url), [page.url], "requests beyond the page");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
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
