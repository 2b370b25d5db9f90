import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  disableNativeKernels,
  enableNativeKernels,
  nativeKernels,
  tf,
  wasmFlavour,
} from "../lib/backend/mod.ts";
import { onWasm } from "./_native_helpers.ts";
import { FLIP_FILTER_KERNEL } from "../lib/backend/native/conv_pieces.ts";
import { copyConvWeightsToTransposed, DenseNet, transposedToConv } from "../lib/nn/mod.ts";
import {
  checkHyperparameters,
  DivergenceError,
  GRADIENT_TOLERANCE,
  GradientMismatchError,
  inferInChunks,
  runExperiment,
  type RunResults,
  SGD,
  train,
  trainingData,
} from "../lib/train/mod.ts";
import { loadDataset } from "../lib/data/mod.ts";
import { tinyData, tinyModel } from "./_train_helpers.ts";
import { CONTROL_START_STEPS, CONTROL_TOLERANCE, controlGap } from "../lib/viz/training_views.ts";

const HYPER = { epochs: 2, batchSize: 16, lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };

Deno.test("SGD follows PyTorch's update (momentum, weight decay), by hand", () => {
  const w = tf.variable(tf.scalar(1), true, "w_sgd_test");
  const opt = new SGD([w], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
  const grad = tf.scalar(2);
  opt.step({ [w.name]: grad }); // g = 2.1, buf = 2.1, w = 0.79
  assertAlmostEquals(w.dataSync()[0], 0.79, 1e-6);
  opt.step({ [w.name]: grad }); // g = 2.079, buf = 0.9·2.1 + 2.079 = 3.969, w = 0.3931
  assertAlmostEquals(w.dataSync()[0], 0.3931, 1e-6);
  opt.dispose();
  tf.dispose([w, grad]);
});

Deno.test("bad hyperparameters are refused before training, naming the parameter", () => {
  assertThrows(
    () => checkHyperparameters({ ...HYPER, lr: -0.1 }),
    RangeError,
    "lr must be a positive number",
  );
  assertThrows(
    () => checkHyperparameters({ ...HYPER, batchSize: 0 }),
    RangeError,
    "batchSize must be a positive integer",
  );
  assertThrows(() => checkHyperparameters({ ...HYPER, epochs: 1.5 }), RangeError, "epochs");
  assertThrows(() => checkHyperparameters({ ...HYPER, momentum: 1 }), RangeError, "momentum");
  assertThrows(
    () => checkHyperparameters({ ...HYPER, weightDecay: -1 }),
    RangeError,
    "weightDecay",
  );
  assertThrows(
    () => checkHyperparameters({ ...HYPER, schedule: "step" as "cosine" }),
    RangeError,
    "schedule",
  );
});

Deno.test("a tiny run writes every result file with the documented fields, and learns", async () => {
  const dir = await Deno.makeTempDir({ prefix: "trainer_test_" });
  try {
    const data = tinyData();
    const before = tf.memory().numTensors;
    const model = tinyModel(1);
    const afterModel = tf.memory().numTensors;
    const stepLog: number[] = [];
    const r = await train({
      arms: [{ name: "tiny", model }],
      data,
      hyper: HYPER,
      runDir: dir,
      config: { seed: 1 },
      onStep: (p) => void stepLog.push(p.step),
    });
    assertEquals(stepLog, [1, 2, 3, 1, 2, 3]);
    assertEquals(tf.memory().numTensors, afterModel, "no tensors leak across steps");
    assert(afterModel > before);
    for (const f of ["results.json", "steps.csv", "epochs.csv", "checkpoint/meta.json"]) {
      assert(existsSync(join(dir, f)), f);
    }
    for (const f of ["model.json", "weights.bin", "optimizer.json", "optimizer.bin"]) {
      assert(existsSync(join(dir, "checkpoint", "tiny", f)), f);
    }
    const saved: RunResults = JSON.parse(await Deno.readTextFile(join(dir, "results.json")));
    assertEquals(saved.dataset, "tiny test set");
    assertEquals(saved.completedEpochs, 2);
    assertEquals(saved.hyper, { ...HYPER, schedule: "constant" });
    const e = saved.arms[0].epochs[1];
    for (
      const k of [
        "epoch",
        "lr",
        "trainLoss",
        "testLoss",
        "testAccuracy",
        "perClassAccuracy",
        "confusion",
      ]
    ) {
      assert(k in e, k);
    }
    assertEquals(e.confusion.flat().reduce((a, b) => a + b, 0), 24);
    assertEquals(saved.arms[0].steps.length, 6);
    assertGreater(e.testAccuracy, 0.6, "separable colours are learnt");
    const csv = await Deno.readTextFile(join(dir, "epochs.csv"));
    assertStringIncludes(
      csv.split("\n")[0],
      "arm,epoch,lr,train_loss,test_loss,test_accuracy,acc_red",
    );
    assertEquals(r.arms[0].epochs.length, 2);
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resuming an interrupted run ends with the same metrics as an uninterrupted one", async () => {
  const dirA = await Deno.makeTempDir(), dirB = await Deno.makeTempDir();
  try {
    const hyper = { ...HYPER, epochs: 3 };
    const full = await train({
      arms: [{ name: "m", model: tinyModel(2) }],
      data: tinyData(),
      hyper,
      runDir: dirA,
    });
    // Interrupt after epoch 1 (the checkpoint of epoch 1 is complete), then start again.
    await assertRejects(
      () =>
        train({
          arms: [{ name: "m", model: tinyModel(2) }],
          data: tinyData(),
          hyper,
          runDir: dirB,
          onEpoch: (r) => {
            if (r.completedEpochs === 1) throw new Error("interrupted");
          },
        }),
      Error,
      "interrupted",
    );
    const resumedSteps: number[] = [];
    const resumed = await train({
      arms: [{ name: "m", model: tinyModel(99) }], // different init: the checkpoint must win
      data: tinyData(),
      hyper,
      runDir: dirB,
      onStep: (p) => void resumedSteps.push(p.epoch),
    });
    assertEquals(new Set(resumedSteps), new Set([2, 3]), "only epochs 2 and 3 ran again");
    const metrics = (r: RunResults) =>
      r.arms.map((a) => ({ ...a, epochs: a.epochs.map(({ trainSeconds: _, ...m }) => m) }));
    assertEquals(metrics(resumed), metrics(full));
    // A different configuration in the same folder is refused.
    await assertRejects(
      () =>
        train({
          arms: [{ name: "m", model: tinyModel(2) }],
          data: tinyData(),
          hyper: { ...hyper, lr: 0.01 },
          runDir: dirB,
        }),
      Error,
      "different configuration (hyper)",
    );
  } finally {
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  }
});

Deno.test("a NaN loss stops training, names epoch and step, and keeps the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const err = await assertRejects(
      () =>
        train({
          arms: [{ name: "m", model: tinyModel(3) }],
          data: tinyData({ poison: [2, 2] }),
          hyper: HYPER,
          runDir: dir,
        }),
      DivergenceError,
      'loss of "m" became NaN at epoch 2, step 2',
    );
    assertStringIncludes(err.message, "checkpoint of epoch 1");
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "checkpoint", "meta.json")));
    assertEquals(meta.completedEpochs, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control arm: same function as the conv net, so losses stay equal over SGD steps", async () => {
  // On wasm: tfjs-cpu's filter gradient is too slow for a DenseNet.
  await onWasm(controlArmSteps);
});

async function controlArmSteps() {
  const conv = DenseNet({ variant: "conv", imageSize: 8, classes: 3, seed: 5 });
  const control = DenseNet({ variant: "transposed", imageSize: 8, classes: 3, seed: 6 });
  copyConvWeightsToTransposed(conv, control);
  const r = await train({
    arms: [{ name: "conv", model: conv }, { name: "control", model: control }],
    data: tinyData({ trainSize: 24, testSize: 6 }),
    hyper: { epochs: 1, batchSize: 8, lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
  });
  const [a, b] = r.arms.map((arm) => arm.steps.map((s) => s[2]));
  assertEquals(a.length, 3);
  // The tolerance the notebook's conclusion applies (float32 rounding; exactly 0 on wasm).
  a.forEach((loss, i) => assertAlmostEquals(b[i], loss, CONTROL_TOLERANCE * Math.max(1, loss)));
}

/**
 * Runs `body` with the filter gradient of the transposed convolutions whose kernel has `shape`
 * scaled by `factor`: a wrong filter-gradient kernel on the transposed path only, as the control
 * arm would meet it while the conv arm does not. On the tensor path that is the gradient of
 * `Conv2DBackpropInput` (the op of ConvTranspose2d's forward pass); with the native convolution
 * op (lib/backend/native/conv_pieces.ts) the layer flips its kernel into a convolution's, and the
 * gradient of that flip (`TconvFlipFilter`) is the transposed path's own.
 */
async function withTransposedFilterGradient<T>(
  factor: number,
  shape: number[],
  body: () => Promise<T>,
): Promise<T> {
  const original = tf.getGradient("Conv2DBackpropInput")!;
  const flip = tf.getGradient(FLIP_FILTER_KERNEL)!;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const grads = original.gradFunc(dy, saved, attrs);
      if (saved[1].shape.join() !== shape.join()) return grads;
      return { ...grads, filter: () => tf.tidy(() => grads.filter().mul(factor)) };
    },
  });
  tf.registerGradient({
    ...flip,
    gradFunc: (dy, saved, attrs) => {
      const grads = flip.gradFunc(dy, saved, attrs);
      if ((dy as tf.Tensor).shape.join() !== shape.join()) return grads;
      return { x: () => tf.tidy(() => grads.x().mul(factor)) };
    },
  });
  try {
    return await body();
  } finally {
    tf.registerGradient(original);
    tf.registerGradient(flip);
  }
}

/** The wasm backend's convolution paths here: oneDNN where it loads, and wasm's own kernels. */
async function onEveryWasmPath(body: (path: string) => Promise<void>) {
  await onWasm(async () => {
    const native = nativeKernels().active;
    if (native) await body(`wasm + ${nativeKernels().library}`);
    disableNativeKernels();
    try {
      await body("wasm kernels");
    } finally {
      if (native) enableNativeKernels(wasmFlavour().threadsCount);
    }
  });
}

Deno.test("control arm: a filter gradient 1 % off on the transposed path is named a wrong kernel at the first step, not drift", async () => {
  // Notebook 02's DenseNet, data and default hyperparameters (lr 0.003, momentum 0.9, batch 16).
  const dataset = await loadDataset({
    dataset: "synthetic",
    trainSize: 32,
    testSize: 4,
    log: false,
  });
  const controlRun = (steps: number, gradientChecks: boolean) => {
    const conv = DenseNet({ variant: "conv", classes: 10, seed: 0 });
    const control = DenseNet({ variant: "transposed", classes: 10 });
    copyConvWeightsToTransposed(conv, control);
    const data = trainingData(dataset, { seed: 0, augment: false });
    return train({
      arms: [{ name: "conv", model: conv }, { name: "control", model: control }],
      data: { ...data, trainSize: 16 * steps },
      hyper: { epochs: 1, batchSize: 16, lr: 0.003, momentum: 0.9, weightDecay: 5e-4 },
      gradientChecks: gradientChecks
        ? [{ reference: "conv", arm: "control", map: transposedToConv(control) }]
        : undefined,
    }).finally(() => [conv, control].forEach((m) => m.dispose()));
  };
  // The three dense blocks' conv2 (32 → 32 channels).
  const layer = [3, 3, 32, 32];
  await onEveryWasmPath(async (path) => {
    // Correct kernels: the same gradients, recorded in the results.
    const ok = await controlRun(1, true);
    const check = ok.gradientChecks![0];
    assertEquals([check.arm, check.reference, check.passed], ["control", "conv", true], path);
    assertEquals(check.parameters, 52);
    if (path === "wasm kernels") assertEquals(check.maxRelDiff, 0, path);
    else assert(check.maxRelDiff <= GRADIENT_TOLERANCE, `${path}: ${check.maxRelDiff}`);
    // 1 % off: the losses of the first two steps stay within CONTROL_TOLERANCE, so the losses
    // alone would call the later gap drift...
    const before = tf.memory().numTensors;
    const losses = await withTransposedFilterGradient(1.01, layer, () => controlRun(2, false));
    const gap = controlGap([{ seed: 0, results: losses }])!;
    assertEquals(gap[0].steps, CONTROL_START_STEPS);
    assert(gap[0].startRelDiff < CONTROL_TOLERANCE, `${path}: ${gap[0].startRelDiff}`);
    // ...the first step's gradients name a wrong kernel; training stops, nothing leaks.
    const e = await assertRejects(
      () => withTransposedFilterGradient(1.01, layer, () => controlRun(1, true)),
      GradientMismatchError,
      "a kernel (or the weight copy) is wrong; this is not rounding drift",
    );
    assertStringIncludes(e.message, "the control arm's gradients differ from the conv arm's by");
    // 1 % of those layers' gradients, relative to the network's largest gradient: at most 1e-2.
    assert(
      e.check.maxRelDiff > 100 * GRADIENT_TOLERANCE && e.check.maxRelDiff <= 0.0100001,
      `${path}: ${e.check.maxRelDiff}`,
    );
    assertMatch(e.check.worstParameter, /^denseblock\d_conv2\/kernel$/);
    assertEquals(tf.memory().numTensors, before, `${path}: tensors left after the failed check`);
  });
});

Deno.test("runExperiment leaves no tensors behind, so re-running the training cell does not leak", async () => {
  await onWasm(async () => {
    const dataset = await loadDataset({
      dataset: "synthetic",
      trainSize: 20,
      testSize: 10,
      log: false,
    });
    const hyper = { epochs: 1, batchSize: 10, lr: 0.01 };
    const before = tf.memory().numTensors;
    for (let run = 0; run < 2; run++) {
      const runs = await runExperiment({ dataset, seeds: [run], hyper });
      assertEquals(runs[0].results.arms.map((a) => a.name), ["conv", "transposed", "control"]);
      // The control arm's first-step gradient check ran, and passed, in the experiment itself.
      assertEquals(runs[0].results.gradientChecks?.map((c) => [c.arm, c.passed]), [
        ["control", true],
      ]);
      assertEquals(tf.memory().numTensors, before, `after run ${run + 1}`);
    }
    await assertRejects(
      () => runExperiment({ dataset, seeds: [], hyper }),
      RangeError,
      "seeds must be a non-empty list",
    );
  });
});

Deno.test("inference in chunks gives the same logits, bit for bit, as one pass, and leaves no tensors", async () => {
  await onWasm(() => {
    assert(nativeKernels().active, "oneDNN should run the convolutions, as in notebook 02");
    for (const variant of ["conv", "transposed"] as const) {
      const model = DenseNet({ variant, classes: 10, seed: 3 });
      const x = tf.randomNormal([70, 32, 32, 3], 0, 1, "float32", 7);
      const whole = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor);
      const before = tf.memory().numTensors;
      // 70 = 32 + 32 + 6: a last chunk shorter than the others.
      const chunked = inferInChunks(model, x, 32);
      assertEquals(tf.memory().numTensors, before + 1, `${variant}: only the logits are left`);
      assertEquals(chunked.shape, [70, 10]);
      const [a, b] = [whole.dataSync(), chunked.dataSync()];
      const differing = a.filter((v, i) => !Object.is(v, b[i])).length;
      assertEquals(differing, 0, `${variant}: logits differing from one pass`);
      assertThrows(
        () => inferInChunks(model, x, 0),
        RangeError,
        "chunk must be a positive integer",
      );
      tf.dispose([x, whole, chunked]);
      model.dispose();
    }
  });
});
