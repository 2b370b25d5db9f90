/**
 * The training loop: several networks ("arms") trained side by side on exactly the same batches,
 * with PyTorch's SGD and cross-entropy, evaluated after every epoch, checkpointed and resumable.
 *
 * Per step it records each arm's training loss; per epoch, the mean training loss, test loss,
 * test accuracy, per-class accuracy and confusion matrix. With a `runDir` it writes, after every
 * epoch, `results.json` (hyperparameters, dataset, all metrics), `steps.csv` and `epochs.csv`, and
 * a checkpoint of every arm with its optimizer state (`checkpoint/`). Started again with the same
 * `runDir` and configuration, it resumes after the last complete epoch and ends with the same
 * metrics as an uninterrupted run, because batches and augmentation are functions of the seed and
 * the epoch. A NaN or infinite loss stops training with an error naming the arm, epoch and step;
 * the last good checkpoint stays.
 *
 * @example
 * ```ts
 * import { train } from "./trainer.ts";
 * const results = await train({
 *   arms: [{ name: "conv", model: DenseNet({ variant: "conv", seed: 0 }) }],
 *   data,
 *   hyper: { epochs: 2, batchSize: 64, lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
 *   runDir: "runs/quick",
 * });
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { parseChoice } from "../util/choice.ts";
import { interruptSafe } from "../backend/engine_repair.ts";
import { completeCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { accuracy, addConfusion, confusionMatrix, perClassAccuracy } from "./metrics.ts";
import { SGD } from "./sgd.ts";
import {
  type GradientCheck,
  type GradientCheckSpec,
  GradientMismatchError,
  GradientRecorder,
} from "./gradient_check.ts";
import { trainableVariables } from "./_variables.ts";

/** A batch of images (NHWC float32) and integer labels. */
export interface LabelledBatch {
  /** Images `[n, h, w, c]`. */
  x: tf.Tensor4D;
  /** Labels `[n]` (int32). */
  y: tf.Tensor1D;
}

/**
 * The data the trainer needs. Batches must be a pure function of the epoch (and the source's own
 * seed), so that every arm and every resumed run sees the same images in the same order with the
 * same augmentation. The trainer disposes every batch it receives.
 */
export interface TrainingData {
  /** Dataset name for results and plots ("CIFAR-10", "synthetic shapes (built-in)"…). */
  name: string;
  /** Class names, index = label. */
  classNames: string[];
  /** Number of training images. */
  trainSize: number;
  /** Number of test images. */
  testSize: number;
  /** The training batches of epoch `epoch` (1-based). */
  trainBatches(epoch: number, batchSize: number): Iterable<LabelledBatch>;
  /** The test batches (no augmentation). */
  testBatches(batchSize: number): Iterable<LabelledBatch>;
}

/** Hyperparameters shared by all arms. */
export interface Hyperparameters {
  /** Epochs (positive integer). */
  epochs: number;
  /** LabelledBatch size (positive integer). */
  batchSize: number;
  /** Learning rate (> 0). */
  lr: number;
  /** SGD momentum in [0, 1) (default 0). */
  momentum?: number;
  /** L2 weight decay ≥ 0 (default 0). */
  weightDecay?: number;
  /** Learning-rate schedule over epochs: "constant" (default) or "cosine" (to 0 at the end). */
  schedule?: Schedule;
}

/** The learning-rate schedules: constant, or cosine decay to 0 at the end. */
export const SCHEDULES = ["constant", "cosine"] as const;

/** A name from {@linkcode SCHEDULES}. */
export type Schedule = typeof SCHEDULES[number];

/**
 * {@linkcode Hyperparameters} as a notebook passes them: the schedule may be its raw string
 * parameter, checked by {@linkcode checkHyperparameters}.
 */
export type HyperparameterInput = Omit<Hyperparameters, "schedule"> & {
  /** One of {@linkcode SCHEDULES}; any other string is refused by name. */
  schedule?: Schedule | string;
};

/** One network to train. */
export interface Arm {
  /** Short name used in results, plots and file names ("conv", "transposed", "control"). */
  name: string;
  /** The model; outputs logits. */
  model: tf.LayersModel;
}

/** Metrics of one arm after one epoch. */
export interface EpochMetrics {
  /** Epoch number (1-based). */
  epoch: number;
  /** Learning rate used in this epoch. */
  lr: number;
  /** Mean training loss over the epoch's steps. */
  trainLoss: number;
  /** Mean test loss. */
  testLoss: number;
  /** Test accuracy in [0, 1]. */
  testAccuracy: number;
  /** Test accuracy per class. */
  perClassAccuracy: number[];
  /** Test confusion matrix `[true][predicted]`. */
  confusion: number[][];
  /** Seconds this arm spent training in this epoch. */
  trainSeconds: number;
}

/** Everything recorded for one arm. */
export interface ArmResults {
  /** Arm name. */
  name: string;
  /** Training loss of every step: `[epoch, step, loss]` (steps 1-based within the epoch). */
  steps: [number, number, number][];
  /** Per-epoch metrics. */
  epochs: EpochMetrics[];
}

/** The results of a run, as saved in `results.json`. */
export interface RunResults {
  /** Dataset name. */
  dataset: string;
  /** Class names. */
  classNames: string[];
  /** Training and test set sizes. */
  trainSize: number;
  /** Test set size. */
  testSize: number;
  /** Hyperparameters. */
  hyper: Required<Hyperparameters>;
  /** Caller's extra configuration (seed, backend…), saved as is. */
  config: Record<string, unknown>;
  /** Epochs completed. */
  completedEpochs: number;
  /** Per arm. */
  arms: ArmResults[];
  /** The first step's gradient checks ({@linkcode TrainOptions.gradientChecks}), when asked for. */
  gradientChecks?: GradientCheck[];
}

/** Progress after each training step. */
export interface StepProgress {
  /** Epoch (1-based). */
  epoch: number;
  /** Total epochs. */
  epochs: number;
  /** Step within the epoch (1-based). */
  step: number;
  /** Steps per epoch. */
  stepsPerEpoch: number;
  /** This step's loss per arm. */
  losses: Record<string, number>;
  /** Training images per second (all arms together count once per image). */
  imagesPerSecond: number;
  /** Estimated seconds to the end of training (evaluation excluded). */
  etaSeconds: number;
}

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** Networks to train on identical batches. */
  arms: Arm[];
  /** Data. */
  data: TrainingData;
  /** Hyperparameters. */
  hyper: Hyperparameters;
  /** Folder for results and checkpoints; resumes from it when it holds a checkpoint. */
  runDir?: string;
  /** Extra configuration recorded in the results (seed, backend…); part of the resume check. */
  config?: Record<string, unknown>;
  /**
   * Pairs of arms whose gradients must agree at the first step (see gradient_check.ts): the
   * results record each check, and a failed one stops training with a
   * {@linkcode GradientMismatchError} (a kernel or weight copy is wrong).
   */
  gradientChecks?: GradientCheckSpec[];
  /** Called after every step. */
  onStep?: (p: StepProgress) => void | Promise<void>;
  /** Called after every epoch with the results so far. */
  onEpoch?: (r: RunResults) => void | Promise<void>;
}

/** Training stopped because a loss became NaN or infinite. */
export class DivergenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DivergenceError";
  }
}

/**
 * Checks hyperparameters and fills in defaults; throws a `RangeError` naming the first bad one.
 *
 * @example
 * ```ts
 * checkHyperparameters({ epochs: 1, batchSize: 32, lr: 0.01 }); // momentum 0, weightDecay 0, "constant"
 * ```
 */
export function checkHyperparameters(h: HyperparameterInput): Required<Hyperparameters> {
  const int = (name: string, v: unknown) => {
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    }
  };
  int("epochs", h.epochs);
  int("batchSize", h.batchSize);
  if (typeof h.lr !== "number" || !(h.lr > 0) || !Number.isFinite(h.lr)) {
    throw new RangeError(`lr must be a positive number, got ${JSON.stringify(h.lr)}`);
  }
  const momentum = h.momentum ?? 0, weightDecay = h.weightDecay ?? 0;
  if (typeof momentum !== "number" || !(momentum >= 0 && momentum < 1)) {
    throw new RangeError(`momentum must be in [0, 1), got ${JSON.stringify(momentum)}`);
  }
  if (typeof weightDecay !== "number" || !(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
    throw new RangeError(
      `weightDecay must be a non-negative number, got ${JSON.stringify(weightDecay)}`,
    );
  }
  const schedule = parseChoice("schedule", h.schedule ?? "constant", SCHEDULES);
  return { epochs: h.epochs, batchSize: h.batchSize, lr: h.lr, momentum, weightDecay, schedule };
}

/**
 * Learning rate of an epoch (1-based) under a schedule.
 *
 * @example
 * ```ts
 * epochLr({ epochs: 4, batchSize: 1, lr: 0.1, momentum: 0, weightDecay: 0, schedule: "cosine" }, 3); // 0.05
 * ```
 */
export function epochLr(h: Required<Hyperparameters>, epoch: number): number {
  return h.schedule === "cosine"
    ? h.lr * 0.5 * (1 + Math.cos(Math.PI * (epoch - 1) / h.epochs))
    : h.lr;
}

/**
 * Mean softmax cross-entropy of logits against integer labels (PyTorch's `CrossEntropyLoss`).
 *
 * @example
 * ```ts
 * crossEntropy(tf.tensor2d([[0, 0]]), tf.tensor1d([1], "int32")); // ln 2
 * ```
 */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const onehot = tf.oneHot(labels.toInt(), logits.shape[1]!);
    return logp.mul(onehot).sum(1).mean().neg() as tf.Scalar;
  });
}

type TestMetrics = Pick<
  EpochMetrics,
  "testLoss" | "testAccuracy" | "perClassAccuracy" | "confusion"
>;

/**
 * Test-set evaluation of one model: mean loss, accuracy, per-class accuracy, confusion matrix.
 *
 * @example
 * ```ts
 * const { testAccuracy } = await evaluate(model, data, 256);
 * ```
 */
export async function evaluate(
  model: tf.LayersModel,
  data: TrainingData,
  batchSize: number,
): Promise<TestMetrics> {
  return (await evaluateAll([model], data, batchSize))[0];
}

/**
 * {@linkcode evaluate} for several models in one pass over the test set: each test batch is
 * built and its labels read once, for every model. Values are read asynchronously (a GPU backend
 * has no synchronous read under Deno, see lib/backend/webgpu/).
 *
 * @example
 * ```ts
 * const [conv, transposed] = await evaluateAll([convNet, transposedNet], data, 256);
 * ```
 */
export function evaluateAll(
  models: tf.LayersModel[],
  data: TrainingData,
  batchSize: number,
): Promise<TestMetrics[]> {
  // A Stop during evaluation leaves a working engine and no tensors (see engine_repair.ts).
  return interruptSafe("evaluate", () => evaluateModels(models, data, batchSize), {
    keep: () => models.flatMap(modelWeights),
  });
}

/** The variables of a model's weights (none once it is disposed). */
function modelWeights(model: tf.LayersModel): tf.Tensor[] {
  try {
    return model.weights.map((w) => w.read());
  } catch {
    return [];
  }
}

async function evaluateModels(
  models: tf.LayersModel[],
  data: TrainingData,
  batchSize: number,
): Promise<TestMetrics[]> {
  const classes = data.classNames.length;
  const confusions = models.map(() =>
    Array.from({ length: classes }, () => new Array<number>(classes).fill(0))
  );
  const lossSums = models.map(() => 0);
  let n = 0;
  for (const { x, y } of data.testBatches(batchSize)) {
    const labels = await y.data();
    for (const [i, model] of models.entries()) {
      const [lossTensor, predTensor] = tf.tidy(() => {
        const logits = inferInChunks(model, x);
        return [crossEntropy(logits, y), logits.argMax(1)];
      });
      const [loss, pred] = [(await lossTensor.data())[0], await predTensor.data()];
      tf.dispose([lossTensor, predTensor]);
      addConfusion(confusions[i], confusionMatrix(labels, pred, classes));
      lossSums[i] += loss * labels.length;
    }
    n += labels.length;
    tf.dispose([x, y]);
  }
  return confusions.map((confusion, i) => ({
    testLoss: lossSums[i] / n,
    testAccuracy: accuracy(confusion),
    perClassAccuracy: perClassAccuracy(confusion),
    confusion,
  }));
}

/**
 * Images a test batch's forward pass runs at once. A tidy keeps every activation of its pass
 * until it ends, so a pass over 256 DenseNet images grew tfjs-wasm's heap (which never shrinks)
 * from 177 to 617 MB, the main job's peak; passes of 64 keep a quarter of that. Inference is
 * per image (normalisation uses running statistics), so the logits, and thus the loss summed
 * over the whole batch, are the same bits (tests/trainer_test.ts checks it).
 */
export const INFERENCE_CHUNK = 64;

/**
 * Logits of `model` for `x` in inference mode, computed `chunk` images at a time and joined,
 * each chunk's activations freed before the next (tfjs's `predict` with that batch size).
 *
 * @example
 * ```ts
 * const logits = inferInChunks(model, tf.zeros([256, 32, 32, 3]), 64); // [256, classes]
 * ```
 */
export function inferInChunks(
  model: tf.LayersModel,
  x: tf.Tensor,
  chunk: number = INFERENCE_CHUNK,
): tf.Tensor {
  if (!(Number.isInteger(chunk) && chunk > 0)) {
    throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
  }
  // tfjs's predict runs batches of `batchSize`, each in its own tidy, in inference mode.
  return model.predict(x, { batchSize: chunk }) as tf.Tensor;
}

/**
 * One SGD step of one model on one batch; returns the loss. The loss is read asynchronously:
 * the thread is free while a GPU computes (and there is no synchronous read on WebGPU under Deno).
 */
async function trainStep(
  model: tf.LayersModel,
  opt: SGD,
  vars: tf.Variable[],
  batch: LabelledBatch,
  inspect?: (grads: tf.NamedTensorMap) => void,
): Promise<number> {
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.apply(batch.x, { training: true }) as tf.Tensor;
    return crossEntropy(logits, batch.y);
  }, vars);
  inspect?.(grads);
  const loss = (await value.data())[0];
  if (Number.isFinite(loss)) opt.step(grads);
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

/**
 * The trainer's own handle on a batch: sources may dispose a batch when the next one is asked
 * for (lib/data's `batches` does), so the tensors are cloned (shared data, no copy) and the
 * source's disposed, as the trainer disposes every batch it receives.
 */
function ownBatch(r: IteratorResult<LabelledBatch>): LabelledBatch | undefined {
  if (r.done) return undefined;
  const own = { ...r.value, x: tf.clone(r.value.x), y: tf.clone(r.value.y) };
  tf.dispose([r.value.x, r.value.y]);
  return own;
}

function sameConfig(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Trains every arm on the same batches for `hyper.epochs` epochs (see the module doc) and returns
 * the results.
 *
 * @example
 * ```ts
 * const r = await train({ arms, data, hyper: { epochs: 1, batchSize: 32, lr: 0.01 } });
 * r.arms[0].epochs[0].testAccuracy;
 * ```
 */
export function train(options: TrainOptions): Promise<RunResults> {
  // A Stop during training leaves a working engine and no tensors, and the next run works
  // (see engine_repair.ts); the caller's models keep their weights.
  return interruptSafe("train", () => trainArms(options), {
    keep: () => options.arms.flatMap((a) => modelWeights(a.model)),
  });
}

async function trainArms(options: TrainOptions): Promise<RunResults> {
  const { arms, data, runDir, onStep, onEpoch } = options;
  const hyper = checkHyperparameters(options.hyper);
  if (arms.length === 0) throw new RangeError("train needs at least one arm");
  const names = new Set(arms.map((a) => a.name));
  if (names.size !== arms.length) throw new RangeError("arm names must be unique");
  const vars = arms.map((a) => trainableVariables(a.model));
  const optimizers = vars.map((v) =>
    new SGD(v, { lr: hyper.lr, momentum: hyper.momentum, weightDecay: hyper.weightDecay })
  );
  let results: RunResults = {
    dataset: data.name,
    classNames: data.classNames,
    trainSize: data.trainSize,
    testSize: data.testSize,
    hyper,
    config: options.config ?? {},
    completedEpochs: 0,
    arms: arms.map((a) => ({ name: a.name, steps: [], epochs: [] })),
  };
  const checkpointDir = runDir ? join(runDir, "checkpoint") : undefined;
  const models = arms.map((a, i) => ({ name: a.name, model: a.model, optimizer: optimizers[i] }));
  let prefetched: LabelledBatch | undefined;
  let recorder: GradientRecorder | undefined;
  try {
    if (checkpointDir && completeCheckpoint(checkpointDir)) {
      const saved = await loadCheckpoint(checkpointDir, models) as RunResults;
      const keys = ["dataset", "trainSize", "testSize", "hyper", "config"] as const;
      const differs = keys.filter((k) => !sameConfig(saved[k], results[k]));
      if (differs.length > 0 || !sameConfig(saved.arms.map((a) => a.name), [...names])) {
        throw new Error(
          `run folder ${runDir} holds a run with a different configuration ` +
            `(${differs.join(", ") || "arms"}); use another runDir or delete it`,
        );
      }
      results = saved;
    }
    // A resumed run recorded its checks at its own first step (they are in `results`).
    if (options.gradientChecks?.length && results.completedEpochs === 0) {
      recorder = new GradientRecorder(options.gradientChecks, arms);
    }
    const stepsPerEpoch = Math.ceil(data.trainSize / hyper.batchSize);
    const totalSteps = stepsPerEpoch * hyper.epochs;
    let stepsDone = 0, trainingSeconds = 0;
    for (let epoch = results.completedEpochs + 1; epoch <= hyper.epochs; epoch++) {
      const lr = epochLr(hyper, epoch);
      optimizers.forEach((o) => o.lr = lr);
      const sums = arms.map(() => 0), seconds = arms.map(() => 0);
      let step = 0;
      // The next batch is taken before this step runs, so that its preparation (on a GPU: its
      // upload and gather) is queued ahead of the step rather than after the loss is read.
      const batches = data.trainBatches(epoch, hyper.batchSize)[Symbol.iterator]();
      prefetched = ownBatch(batches.next());
      while (prefetched) {
        const batch: LabelledBatch = prefetched;
        prefetched = ownBatch(batches.next());
        step++;
        const losses: Record<string, number> = {};
        const t0 = performance.now();
        try {
          for (const [i, arm] of arms.entries()) {
            const t = performance.now();
            const inspect = recorder?.wants(arm.name)
              ? (g: tf.NamedTensorMap) => recorder!.record(arm.name, g)
              : undefined;
            const loss = await trainStep(arm.model, optimizers[i], vars[i], batch, inspect);
            seconds[i] += (performance.now() - t) / 1000;
            if (!Number.isFinite(loss)) {
              throw new DivergenceError(
                `loss of "${arm.name}" became ${loss} at epoch ${epoch}, step ${step}; ` +
                  (results.completedEpochs > 0 && runDir
                    ? `the checkpoint of epoch ${results.completedEpochs} in ${checkpointDir} is kept`
                    : "no checkpoint was written yet") +
                  `. Lower the learning rate (lr = ${lr}).`,
              );
            }
            losses[arm.name] = loss;
            sums[i] += loss;
            results.arms[i].steps.push([epoch, step, loss]);
          }
          if (recorder) {
            results.gradientChecks = await recorder.finish();
            recorder = undefined;
            const failed = results.gradientChecks.find((c) => !c.passed);
            if (failed) throw new GradientMismatchError(failed);
          }
        } finally {
          tf.dispose([batch.x, batch.y]);
        }
        const dt = (performance.now() - t0) / 1000;
        trainingSeconds += dt;
        stepsDone++;
        const perStep = trainingSeconds / stepsDone;
        await onStep?.({
          epoch,
          epochs: hyper.epochs,
          step,
          stepsPerEpoch,
          losses,
          imagesPerSecond: batch.x.shape[0] / dt,
          etaSeconds: perStep * (totalSteps - (epoch - 1) * stepsPerEpoch - step),
        });
      }
      const tests = await evaluateAll(
        arms.map((a) => a.model),
        data,
        Math.max(hyper.batchSize, 256),
      );
      arms.forEach((_, i) => {
        results.arms[i].epochs.push({
          epoch,
          lr,
          trainLoss: sums[i] / step,
          ...tests[i],
          trainSeconds: seconds[i],
        });
      });
      results.completedEpochs = epoch;
      if (runDir && checkpointDir) {
        await saveCheckpoint(checkpointDir, { models, meta: results });
        await writeResultFiles(runDir, results);
      }
      await onEpoch?.(results);
    }
    return results;
  } finally {
    if (prefetched) tf.dispose([prefetched.x, prefetched.y]);
    recorder?.dispose();
    optimizers.forEach((o) => o.dispose());
  }
}

/**
 * Writes `results.json`, `steps.csv` (epoch, step, arm, loss) and `epochs.csv` (one row per arm
 * and epoch) into `runDir`, each atomically.
 *
 * @example
 * ```ts
 * await writeResultFiles("runs/quick", results);
 * ```
 */
export async function writeResultFiles(runDir: string, results: RunResults): Promise<void> {
  await writeFileAtomic(join(runDir, "results.json"), JSON.stringify(results, null, 1));
  const steps = ["epoch,step,arm,loss"];
  for (const arm of results.arms) {
    for (const [e, s, l] of arm.steps) steps.push(`${e},${s},${arm.name},${l}`);
  }
  await writeFileAtomic(join(runDir, "steps.csv"), steps.join("\n") + "\n");
  const classCols = results.classNames.map((c) => `acc_${c.replace(/[^A-Za-z0-9]+/g, "_")}`);
  const epochs = [
    ["arm", "epoch", "lr", "train_loss", "test_loss", "test_accuracy", ...classCols].join(","),
  ];
  for (const arm of results.arms) {
    for (const m of arm.epochs) {
      epochs.push(
        [arm.name, m.epoch, m.lr, m.trainLoss, m.testLoss, m.testAccuracy, ...m.perClassAccuracy]
          .join(","),
      );
    }
  }
  await writeFileAtomic(join(runDir, "epochs.csv"), epochs.join("\n") + "\n");
}
