/**
 * Measures how hard a dataset is: a linear softmax classifier on raw pixels and a tiny convnet
 * (3 conv layers, 16-32-64 channels, global average pooling), both trained with Adam on the same
 * seeded batches, reporting train and test accuracy per epoch. Used to check that the built-in
 * synthetic set is learnable by a convnet but not by a linear model.
 *
 * ```sh
 * deno run -A bench/learnability.ts --dataset synthetic --train 10000 --test 2000 --epochs 3
 * ```
 *
 * @example
 * ```ts
 * import { measureLearnability } from "./learnability.ts";
 * const rows = await measureLearnability({ dataset: "synthetic", trainSize: 2000, testSize: 500, epochs: 1 });
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import { type BackendName, useBackend } from "../lib/backend/mod.ts";
import { batches, batchTensors } from "../lib/data/batches.ts";
import { type DatasetName, loadDataset } from "../lib/data/dataset.ts";
import type { ImageSet } from "../lib/data/cifar10.ts";

/** Options of {@linkcode measureLearnability}. */
export interface LearnabilityOptions {
  /** Dataset (default "synthetic"). */
  dataset?: DatasetName;
  /** Training images (class-balanced subset, default 10,000). */
  trainSize?: number;
  /** Test images (default 2,000). */
  testSize?: number;
  /** Epochs per model (default 3). */
  epochs?: number;
  /** Which models (default both). */
  models?: ("linear" | "convnet")[];
  /** Seed of subsets, batch order and weights (default 0). */
  seed?: number;
  /** Receives one line per epoch (default console.log). */
  log?: (line: string) => void;
}

/** One measured epoch. */
export interface LearnabilityRow {
  /** "linear" or "convnet". */
  model: string;
  /** Epoch, from 1. */
  epoch: number;
  /** Accuracy on (up to 2,000 images of) the training subset. */
  trainAccuracy: number;
  /** Accuracy on the test subset. */
  testAccuracy: number;
  /** Seconds the epoch's training took. */
  seconds: number;
}

function buildModel(kind: "linear" | "convnet", seed: number): tf.Sequential {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 10 + k });
  if (kind === "linear") {
    return tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [32, 32, 3] }),
        tf.layers.dense({ units: 10, activation: "softmax", kernelInitializer: init(0) }),
      ],
    });
  }
  const conv = (filters: number, k: number, first = false) =>
    tf.layers.conv2d({
      ...(first ? { inputShape: [32, 32, 3] } : {}),
      filters,
      kernelSize: 3,
      padding: "same",
      activation: "relu",
      kernelInitializer: init(k),
    });
  return tf.sequential({
    layers: [
      conv(16, 1, true),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      conv(32, 2),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      conv(64, 3),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 10, activation: "softmax", kernelInitializer: init(4) }),
    ],
  });
}

function accuracy(
  model: tf.Sequential,
  set: ImageSet,
  count: number,
  normalize: Parameters<typeof batchTensors>[2],
): number {
  let correct = 0;
  for (let start = 0; start < count; start += 500) {
    const idx = Array.from({ length: Math.min(500, count - start) }, (_, i) => start + i);
    const { x, y } = batchTensors(set, idx, normalize);
    correct += tf.tidy(() =>
      (model.predict(x) as tf.Tensor).argMax(-1).equal(y).sum().dataSync()[0]
    );
    tf.dispose([x, y]);
  }
  return correct / count;
}

/**
 * Trains the two probes and returns one row per model and epoch (see the module doc).
 *
 * @example
 * ```ts
 * const rows = await measureLearnability({ trainSize: 5000, epochs: 2, models: ["linear"] });
 * ```
 */
export async function measureLearnability(
  options: LearnabilityOptions = {},
): Promise<LearnabilityRow[]> {
  const seed = options.seed ?? 0;
  const log = options.log ?? ((line: string) => console.log(line));
  const data = await loadDataset({
    dataset: options.dataset ?? "synthetic",
    trainSize: options.trainSize ?? 10_000,
    testSize: options.testSize ?? 2_000,
    seed,
    log,
  });
  log(`${data.name}: ${data.train.length} training, ${data.test.length} test images`);
  const normalize = { normalize: data.stats };
  const rows: LearnabilityRow[] = [];
  for (const kind of options.models ?? ["linear", "convnet"]) {
    const model = buildModel(kind, seed);
    model.compile({
      optimizer: tf.train.adam(1e-3),
      loss: "sparseCategoricalCrossentropy",
    });
    for (let epoch = 0; epoch < (options.epochs ?? 3); epoch++) {
      const t0 = performance.now();
      for (const { x, y } of batches(data.train, { batchSize: 128, seed, epoch, ...normalize })) {
        const labels = y.toFloat(); // tfjs-layers' sparse cross-entropy wants float labels
        await model.trainOnBatch(x, labels);
        labels.dispose();
      }
      const seconds = (performance.now() - t0) / 1000;
      const row = {
        model: kind,
        epoch: epoch + 1,
        trainAccuracy: accuracy(model, data.train, Math.min(2000, data.train.length), normalize),
        testAccuracy: accuracy(model, data.test, data.test.length, normalize),
        seconds,
      };
      rows.push(row);
      log(
        `${kind.padEnd(8)} epoch ${row.epoch}: train ${row.trainAccuracy.toFixed(3)}  ` +
          `test ${row.testAccuracy.toFixed(3)}  (${seconds.toFixed(1)} s)`,
      );
    }
    model.dispose();
  }
  return rows;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dataset: { type: "string", default: "synthetic" },
      train: { type: "string", default: "10000" },
      test: { type: "string", default: "2000" },
      epochs: { type: "string", default: "3" },
      backend: { type: "string", default: "wasm" },
      seed: { type: "string", default: "0" },
    },
    strict: true,
  });
  await useBackend(values.backend as BackendName);
  await measureLearnability({
    dataset: values.dataset as DatasetName,
    trainSize: Number(values.train),
    testSize: Number(values.test),
    epochs: Number(values.epochs),
    seed: Number(values.seed),
  });
}
