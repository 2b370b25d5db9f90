// Training on tfjs's WebGPU backend (here: Mesa's software adapter llvmpipe), at tiny size: one
// whole DenseNet training step against wasm, parameter by parameter, for both variants; and the
// trainer's loop on WebGPU (asynchronous loss reads, tensors and GPU memory back to baseline).
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { tf, useBackend } from "../lib/backend/mod.ts";
import { startWebGpu } from "../lib/backend/webgpu/mod.ts";
import { DenseNet } from "../lib/nn/mod.ts";
import { crossEntropy, train, type TrainingData } from "../lib/train/mod.ts";
import { tinyData, tinyModel } from "./_train_helpers.ts";

/** Selects WebGPU on whatever adapter there is; fails (never skips) when there is none. */
async function onWebGpu(): Promise<void> {
  try {
    await startWebGpu({ allowSoftware: true });
  } catch (e) {
    throw new Error(
      "the WebGPU tests need a WebGPU adapter; on Debian, Mesa's software one comes with " +
        "libgl1-mesa-dri, libegl1 and libegl-mesa0 (deno run -A tests/setup.ts installs them): " +
        (e instanceof Error ? e.message : e),
    );
  }
}

/** Loss, every gradient and every running statistic after one training step, in layer order. */
async function denseNetStep(variant: "conv" | "transposed"): Promise<[string, Float32Array][]> {
  const model = DenseNet({ variant, imageSize: 8, seed: 3 });
  const x = tf.randomNormal([2, 8, 8, 3], 0, 1, "float32", 9);
  const y = tf.tensor1d([1, 7], "int32");
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
    vars,
  );
  const out: [string, Float32Array][] = [["loss", await value.data() as Float32Array]];
  for (const [i, w] of model.trainableWeights.entries()) {
    out.push([`d ${w.originalName}`, await grads[vars[i].name].data() as Float32Array]);
  }
  for (const w of model.nonTrainableWeights) {
    out.push([w.originalName, await w.read().data() as Float32Array]);
  }
  tf.dispose([x, y, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

const norm = (a: Float32Array) => Math.hypot(...a);

for (const variant of ["conv", "transposed"] as const) {
  Deno.test(`webgpu: a DenseNet (${variant}) training step equals wasm's, parameter by parameter`, async () => {
    await useBackend("wasm");
    const want = await denseNetStep(variant);
    await onWebGpu();
    const got = await denseNetStep(variant);
    await useBackend("cpu");
    assertEquals(got.map(([n]) => n), want.map(([n]) => n));
    // Float32 sums in another order through 20 layers and batch-2 statistics: measured here up
    // to 3e-4 of a parameter's gradient norm. A wrong kernel is off by its whole size. Gradients
    // that are zero in exact arithmetic (the bias of a BatchNorm followed by a BatchNorm, ~1e-8)
    // are held to a floor of 1e-5 of the largest gradient norm instead.
    const largest = Math.max(...want.filter(([n]) => n.startsWith("d ")).map(([, g]) => norm(g)));
    for (const [i, [name, w]] of want.entries()) {
      const g = got[i][1];
      const diff = norm(g.map((v, j) => v - w[j]));
      const allowed = 2e-3 * norm(w) + (name.startsWith("d ") ? 1e-5 * largest : 1e-6);
      assert(
        diff <= allowed,
        `${variant} ${name}: |webgpu - wasm| = ${diff.toExponential(2)} > ${
          allowed.toExponential(2)
        } (|wasm| = ${norm(w).toExponential(2)})`,
      );
    }
  });
}

Deno.test("webgpu: the trainer reads losses asynchronously; tensors and GPU memory stay flat over steps", async () => {
  const gpuBytes = () => (tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number }).numBytesInGPU;
  const run = async (data: TrainingData) => {
    const memory: [number, number | undefined][] = [];
    const model = tinyModel(5);
    const before = tf.memory().numTensors;
    const results = await train({
      arms: [{ name: "tiny", model }],
      data,
      hyper: { epochs: 2, batchSize: 4, lr: 0.05, momentum: 0.9 },
      onStep: () => void memory.push([tf.memory().numTensors, gpuBytes()]),
    });
    assertEquals(tf.memory().numTensors, before, "tensors after the run");
    model.dispose();
    return { memory, after: gpuBytes(), losses: results.arms[0].steps.map((s) => s[2]) };
  };
  await useBackend("cpu");
  const reference = await run(tinyData({ trainSize: 12, testSize: 6 }));
  await onWebGpu();
  const data = tinyData({ trainSize: 12, testSize: 6 });
  const first = await run(data);
  const second = await run(data);
  await useBackend("cpu");
  assertEquals(first.losses.length, 6);
  // The same losses as tfjs-cpu records (float32 in another order), step by step, every run.
  first.losses.forEach((loss, i) => assertAlmostEquals(loss, reference.losses[i], 1e-4));
  assertEquals(second.losses, first.losses);
  // No growth: after each step of epoch 2 as many tensors as after the same step of epoch 1 (the
  // last step of an epoch has no batch prepared ahead), and the second run as the first. GPU
  // bytes in use vary by a few dozen bytes with tfjs-webgpu's deferred buffer release; anything
  // leaked per step (one batch: 3 KiB) would exceed the 1 KiB allowed.
  const sameBytes = (a: number | undefined, b: number | undefined, what: string) =>
    assert(a !== undefined && b !== undefined && Math.abs(a - b) <= 1024, `${what}: ${a} vs ${b}`);
  for (const { memory } of [first, second]) {
    assert(memory[1][1] !== undefined && memory[1][1] > 0, "numBytesInGPU reported on webgpu");
    for (const i of [0, 1, 2]) {
      assertEquals(memory[i + 3][0], memory[i][0], `tensors after step ${i + 1}`);
      // From step 2 on: the optimizer's momentum buffers are allocated by step 1.
      if (i > 0) sameBytes(memory[i + 3][1], memory[i][1], `GPU bytes after step ${i + 1}`);
    }
  }
  assertEquals(second.memory.map(([n]) => n), first.memory.map(([n]) => n));
  sameBytes(second.after, first.after, "GPU bytes after the run");
});
