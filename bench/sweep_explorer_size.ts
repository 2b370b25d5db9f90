/**
 * How large notebook 03's report of a sweep is, explorer included, for a sweep of `--runs` runs
 * (default 20) of notebook 02: a sweep folder is written with synthetic `results.json` files of
 * the shape notebook 02 writes (its arms, epochs, steps per epoch, per-class accuracy and
 * confusion matrices; numbers drawn from a seeded generator), and notebook 03 is then run on it
 * for real (`deno task run`). Training 20 real runs would take far longer and give files of the
 * same shape. Prints, per setting, the report's size, the explorer's embedded JSON and the
 * executed notebook's size. Target (issue 20): ≤ 3 MB for 20 runs of notebook 02.
 *
 * Settings: `default` is notebook 02's defaults (500 training images, batch 16, 2 epochs, three
 * arms); `medium` is notebook 03's example sweep (2000 images, 3 epochs, no control arm);
 * `article` is the article's setting (50,000 images, batch 64, 60 epochs; step losses are
 * averaged to 400 points per arm).
 *
 * ```sh
 * deno run -A bench/sweep_explorer_size.ts                   # every setting, 20 runs each
 * deno run -A bench/sweep_explorer_size.ts --setting default --runs 20 --out /tmp/s --json
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { planSweep, writeManifest } from "../lib/sweep/manifest.ts";
import type { RunResults } from "../lib/train/trainer.ts";

/** The shape of one setting's runs. */
interface Setting {
  trainSize: number;
  testSize: number;
  batchSize: number;
  epochs: number;
  arms: string[];
}

const SETTINGS: Record<string, Setting> = {
  default: { trainSize: 500, testSize: 300, batchSize: 16, epochs: 2, arms: armNames(true) },
  medium: { trainSize: 2000, testSize: 1000, batchSize: 16, epochs: 3, arms: armNames(false) },
  article: { trainSize: 50000, testSize: 10000, batchSize: 64, epochs: 60, arms: armNames(false) },
};

function armNames(control: boolean): string[] {
  return control ? ["conv", "transposed", "control"] : ["conv", "transposed"];
}

/** A small seeded generator (mulberry32), so that every run of the bench writes the same files. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Results of one run and seed, shaped like notebook 02's `results.json`. */
function syntheticResults(
  s: Setting,
  seed: number,
  init: string,
  random: () => number,
): RunResults {
  const classes = 10;
  const steps = Math.ceil(s.trainSize / s.batchSize);
  const arms = s.arms.map((name) => {
    const level = 0.3 + 0.3 * random();
    return {
      name,
      steps: Array.from({ length: s.epochs * steps }, (_, i): [number, number, number] => {
        const t = i / (s.epochs * steps);
        return [Math.floor(i / steps) + 1, (i % steps) + 1, 2.3 - level * t + 0.1 * random()];
      }),
      epochs: Array.from({ length: s.epochs }, (_, e) => {
        const acc = Math.round(s.testSize * (0.1 + level * (e + 1) / s.epochs)) / s.testSize;
        return {
          epoch: e + 1,
          lr: 0.003,
          trainLoss: 2.3 - level * (e + 1) / s.epochs,
          testLoss: 2.3 - 0.8 * level * (e + 1) / s.epochs,
          testAccuracy: acc,
          perClassAccuracy: Array.from({ length: classes }, () => random()),
          confusion: Array.from(
            { length: classes },
            () => Array.from({ length: classes }, () => Math.floor(random() * s.testSize / 50)),
          ),
          trainSeconds: 10 * random(),
        };
      }),
    };
  });
  return {
    dataset: "synthetic shapes (built-in)",
    classNames: Array.from({ length: classes }, (_, i) => `class ${i}`),
    trainSize: s.trainSize,
    testSize: s.testSize,
    hyper: {
      epochs: s.epochs,
      batchSize: s.batchSize,
      lr: 0.003,
      momentum: 0.9,
      weightDecay: 0.0005,
      schedule: "constant" as const,
    },
    config: { seed, augment: false, init, backend: "wasm" },
    completedEpochs: s.epochs,
    arms,
  };
}

/**
 * Writes a done sweep of `runs` runs of notebook 02 (grid `init` × `seeds`, two inits, runs / 2
 * seeds) with synthetic results into `folder`.
 *
 * @example
 * ```ts
 * await writeSyntheticSweep("/tmp/s", "default", 20);
 * ```
 */
export async function writeSyntheticSweep(
  folder: string,
  setting: string,
  runs: number,
): Promise<void> {
  const s = SETTINGS[setting];
  if (!s) throw new Error(`unknown setting "${setting}"; expected ${Object.keys(SETTINGS)}`);
  const seeds = Array.from({ length: Math.ceil(runs / 2) }, (_, i) => i);
  const params = ["default", "swapped"].flatMap((init) => seeds.map((seed) => ({ init, seed })))
    .slice(0, runs);
  const m = planSweep({
    notebook: new URL("../notebooks/02_train.ipynb", import.meta.url).pathname,
    axes: [
      { name: "init", values: ["default", "swapped"] },
      { name: "seeds", values: seeds.map((x) => `[${x}]`) },
    ],
    fixed: [`trainSize=${s.trainSize}`, `testSize=${s.testSize}`, `epochs=${s.epochs}`],
    runs: params.map(({ init, seed }) => ({ init, seeds: [seed] })),
  });
  const random = rng(1);
  for (const [i, run] of m.runs.entries()) {
    const { init, seed } = params[i];
    const dir = join(folder, "runs", run.id);
    await Deno.mkdir(join(dir, "results", `seed-${seed}`), { recursive: true });
    const status = {
      state: "done",
      started: new Date().toISOString(),
      ended: new Date().toISOString(),
      seconds: 60,
      exitCode: 0,
      host: "bench",
      attempt: 1,
    };
    await Deno.writeTextFile(join(dir, "status.json"), JSON.stringify(status));
    await Deno.writeTextFile(
      join(dir, "results", `seed-${seed}`, "results.json"),
      JSON.stringify(syntheticResults(s, seed, init, random)),
    );
  }
  await writeManifest(folder, m);
}

/** One setting measured. */
interface Measured {
  setting: string;
  runs: number;
  reportBytes: number;
  explorerJsonBytes: number;
  notebookBytes: number;
  seconds: number;
}

async function measure(setting: string, runs: number, out?: string): Promise<Measured> {
  const folder = out ?? await Deno.makeTempDir({ prefix: "sweep-explorer-size-" });
  try {
    await writeSyntheticSweep(folder, setting, runs);
    const started = performance.now();
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../lib/notebook/cli.ts", import.meta.url).pathname,
        "run",
        new URL("../notebooks/03_sweep.ipynb", import.meta.url).pathname,
        "-p",
        `sweep=${JSON.stringify(folder)}`,
        "--out",
        folder,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (run.code !== 0) {
      const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      throw new Error(`notebook 03 failed on ${folder} (exit ${run.code}):\n${text}`);
    }
    const seconds = (performance.now() - started) / 1000;
    const html = await Deno.readTextFile(join(folder, "03_sweep.html"));
    const json = html.match(/<script type="application\/json" class="sx-data">(.*?)<\/script>/s);
    if (!json) throw new Error(`${folder}/03_sweep.html holds no sweep explorer`);
    return {
      setting,
      runs,
      reportBytes: new TextEncoder().encode(html).length,
      explorerJsonBytes: new TextEncoder().encode(json[1]).length,
      notebookBytes: (await Deno.stat(join(folder, "03_sweep.ipynb"))).size,
      seconds: Number(seconds.toFixed(1)),
    };
  } finally {
    if (!out) await Deno.remove(folder, { recursive: true });
  }
}

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "20" },
      setting: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean" },
    },
  });
  const runs = Number(args.values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`--runs expects a positive integer, got "${args.values.runs}"`);
    Deno.exit(2);
  }
  const settings = args.values.setting ? [args.values.setting] : Object.keys(SETTINGS);
  if (args.values.out && settings.length > 1) {
    console.error("--out keeps one sweep folder: give --setting too");
    Deno.exit(2);
  }
  for (const setting of settings) {
    if (!SETTINGS[setting]) {
      console.error(
        `--setting expects one of ${Object.keys(SETTINGS).join(", ")}, got "${setting}"`,
      );
      Deno.exit(2);
    }
    const m = await measure(setting, runs, args.values.out);
    const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
    console.log(
      args.values.json
        ? JSON.stringify(m)
        : `${setting}: ${runs} runs → report ${mb(m.reportBytes)} (explorer data ${
          mb(m.explorerJsonBytes)
        }), notebook ${mb(m.notebookBytes)}; notebook 03 ran in ${m.seconds} s`,
    );
  }
}
