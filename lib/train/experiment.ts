/**
 * The article's experiment as one function: for each seed, a conv DenseNet, a transposed
 * DenseNet and (optionally) the control arm — a transposed DenseNet initialised from the conv
 * network's weights through the stride-1 equivalence — trained side by side on the same batches,
 * augmentation draws and hyperparameters.
 *
 * @example
 * ```ts
 * import { runExperiment } from "./experiment.ts";
 * const runs = await runExperiment({ dataset, seeds: [0], hyper: { epochs: 2, batchSize: 32, lr: 0.05 } });
 * runs[0].results.arms.map((a) => a.name); // ["conv", "transposed", "control"]
 * ```
 * @module
 */
import { join } from "node:path";
import { interruptSafe } from "../backend/engine_repair.ts";
import { batches, type Dataset } from "../data/mod.ts";
import { copyConvWeightsToTransposed, DenseNet, transposedToConv } from "../nn/densenet.ts";
import type { GradientCheckSpec } from "./gradient_check.ts";
import { INIT_SCHEMES, type InitScheme } from "../nn/init.ts";
import { parseChoice } from "../util/choice.ts";
import {
  type Arm,
  checkHyperparameters,
  type HyperparameterInput,
  type RunResults,
  type StepProgress,
  train,
  type TrainingData,
} from "./trainer.ts";

/**
 * Wraps a loaded dataset as the trainer's data source: shuffled, optionally augmented,
 * normalised training batches that depend only on `seed` and the epoch; test batches in order.
 *
 * @example
 * ```ts
 * const data = trainingData(await loadDataset({ dataset: "synthetic" }), { seed: 0, augment: true });
 * ```
 */
export function trainingData(
  ds: Dataset,
  options: { seed: number; augment: boolean },
): TrainingData {
  return {
    name: ds.name,
    classNames: ds.classNames,
    trainSize: ds.train.length,
    testSize: ds.test.length,
    trainBatches: (epoch, batchSize) =>
      batches(ds.train, {
        batchSize,
        seed: options.seed,
        epoch,
        augment: options.augment,
        normalize: ds.stats,
      }),
    testBatches: (batchSize) =>
      batches(ds.test, { batchSize, shuffle: false, normalize: ds.stats }),
  };
}

/** Options of {@linkcode runExperiment}. */
export interface ExperimentOptions {
  /** The loaded dataset. */
  dataset: Dataset;
  /** One run per seed (initialisation, data order and augmentation draws). */
  seeds: number[];
  /** Hyperparameters shared by every arm and seed. */
  hyper: HyperparameterInput;
  /** Random crop and flip (default true). */
  augment?: boolean;
  /** Train the control arm too (default true). */
  control?: boolean;
  /**
   * Initialisation of the conv and transposed networks' block and transition layers: "default"
   * (each its own layer type's, the article's setting) or "swapped" (each its counterpart's),
   * recorded in the results' config. The control arm copies the conv network either way. A
   * notebook's raw string parameter is accepted; anything else is refused by name.
   */
  init?: InitScheme | string;
  /** Folder for results and checkpoints (one subfolder per seed); none when unset. */
  runDir?: string;
  /** Extra configuration recorded with the results (backend…). */
  config?: Record<string, unknown>;
  /** Called after every step with the seed. */
  onStep?: (seed: number, p: StepProgress) => void | Promise<void>;
  /** Called after every epoch with the seed and the results so far. */
  onEpoch?: (seed: number, r: RunResults) => void | Promise<void>;
}

/** The results of one seed. */
export interface SeedRun {
  /** The seed. */
  seed: number;
  /** Its results. */
  results: RunResults;
}

/**
 * Runs the experiment (see the module doc) seed after seed; returns every seed's results.
 *
 * @example
 * ```ts
 * const runs = await runExperiment({ dataset, seeds: [0, 1], hyper, control: false });
 * ```
 */
export function runExperiment(options: ExperimentOptions): Promise<SeedRun[]> {
  // A Stop leaves a working engine; the networks made here are reclaimed (engine_repair.ts).
  return interruptSafe("runExperiment", () => experiment(options));
}

async function experiment(options: ExperimentOptions): Promise<SeedRun[]> {
  const { dataset, seeds, augment = true, control = true } = options;
  const hyper = checkHyperparameters(options.hyper);
  const init = parseChoice("init", options.init ?? "default", INIT_SCHEMES);
  if (!Array.isArray(seeds) || seeds.length === 0 || !seeds.every(Number.isInteger)) {
    throw new RangeError(
      `seeds must be a non-empty list of integers, got ${JSON.stringify(seeds)}`,
    );
  }
  const runs: SeedRun[] = [];
  for (const seed of seeds) {
    const classes = dataset.classNames.length;
    const conv = DenseNet({ variant: "conv", classes, seed, init });
    const transposed = DenseNet({ variant: "transposed", classes, seed, init });
    const arms: Arm[] = [{ name: "conv", model: conv }, { name: "transposed", model: transposed }];
    const gradientChecks: GradientCheckSpec[] = [];
    if (control) {
      const c = DenseNet({ variant: "transposed", classes: dataset.classNames.length });
      copyConvWeightsToTransposed(conv, c);
      arms.push({ name: "control", model: c });
      // The same function from the same start: the first step's gradients must agree.
      gradientChecks.push({ reference: "conv", arm: "control", map: transposedToConv(c) });
    }
    try {
      const results = await train({
        arms,
        data: trainingData(dataset, { seed, augment }),
        hyper,
        gradientChecks,
        runDir: options.runDir ? join(options.runDir, `seed-${seed}`) : undefined,
        config: { seed, augment, init, ...options.config },
        onStep: options.onStep && ((p) => options.onStep!(seed, p)),
        onEpoch: options.onEpoch && ((r) => options.onEpoch!(seed, r)),
      });
      runs.push({ seed, results });
    } finally {
      arms.forEach((a) => a.model.dispose());
    }
  }
  return runs;
}
