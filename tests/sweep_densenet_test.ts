// One tiny real sweep of notebook 02 over the layer × init design, summarised by notebook 03.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import type { CodeCell, Notebook } from "../lib/notebook/nbformat.ts";
import { meanStd } from "../lib/train/metrics.ts";
import type { RunResults } from "../lib/train/trainer.ts";
import { assertValidNotebook, text } from "./_notebook_helpers.ts";
import { manifest, sweep } from "./_sweep_helpers.ts";

Deno.test({
  name: "sweep of notebook 02 over init × seeds: init reaches the networks; notebook 03 sums it up",
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "sweep-densenet-" });
    const out = `${tmp}/s`;
    try {
      const r = await sweep([
        "notebooks/02_train.ipynb",
        "--grid",
        "init=default,swapped",
        "--grid",
        "seeds=[0],[1]",
        ...["dataset=synthetic", "trainSize=16", "testSize=16", "epochs=1", "batchSize=8"]
          .flatMap((p) => ["-p", p]),
        "-p",
        "control=false",
        "--out",
        out,
        "--jobs",
        "2",
      ]);
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
          (finals[`${arm.name} ${run.parameters.init}`] ??= []).push(arm.epochs[0].testAccuracy);
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
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
