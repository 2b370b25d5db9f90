import { assert, assertEquals, assertLessOrEqual, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { useBackend } from "../lib/backend/mod.ts";
import {
  BatchNorm2d,
  copyConvWeightsToTransposed,
  denseBlock,
  DenseNet,
  loadTorchStateDict,
  transitionLayer,
  type Variant,
} from "../lib/nn/mod.ts";

const trainable = (m: tf.LayersModel) =>
  m.trainableWeights.reduce((s, w) => s + w.shape.reduce((a, b) => a! * b!, 1)!, 0);

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

Deno.test("DenseNet: both variants have PyTorch's 961,066 trainable parameters", () => {
  for (const variant of ["conv", "transposed"] as const) {
    const net = DenseNet({ variant });
    assertEquals(trainable(net), 961_066, variant);
    assertEquals(net.outputs[0].shape, [null, 10]);
    net.dispose();
  }
  assertEquals(trainable(DenseNet({ variant: "conv", classes: 100 })), 961_066 + 90 * 513);
});

Deno.test("dense block and transition layer: channel arithmetic 64/96/128/160 and halving", () => {
  for (const variant of ["conv", "transposed"] as const) {
    const x = tf.input({ shape: [16, 16, 64] });
    const block = denseBlock(x, { inChannels: 64, variant, name: "b" });
    assertEquals(block.shape, [null, 16, 16, 160]);
    const t = transitionLayer(block, { inChannels: 160, outChannels: 128, variant, name: "t" });
    assertEquals(t.shape, [null, 8, 8, 128]);
    const m = tf.model({ inputs: x, outputs: t });
    // kernels: conv [3, 3, in, 32]; transposed [3, 3, 32, in]
    const kernels = m.layers.filter((l) => l.name.startsWith("b_conv")).map((l) =>
      l.getWeights()[0].shape
    );
    const ins = kernels.map((s) => variant === "conv" ? s[2] : s[3]);
    assertEquals(ins, [64, 32, 64, 96, 128]);
    const cats = m.layers.filter((l) => l.getClassName() === "Concatenate");
    assertEquals(cats.map((l) => (l.output as tf.SymbolicTensor).shape[3]), [64, 96, 128, 160]);
    m.dispose();
  }
});

// The same deterministic weights and input as tests/fixtures/torch_densenet_reference.json.
function torchValue(name: string, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const h = [...name].reduce((s, c) => s + c.charCodeAt(0), 0) % 97;
  const out = new Float32Array(n);
  const isBn = name.includes(".bn.") || name.startsWith("bn.");
  for (let i = 0; i < n; i++) {
    const base = Math.sin(0.7 * i + h);
    if (name.endsWith("running_mean")) out[i] = 0;
    else if (name.endsWith("running_var")) out[i] = 1;
    else if (name.endsWith(".weight") && shape.length >= 2) {
      out[i] = base / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
    } else if (isBn) out[i] = name.endsWith("weight") ? 1 + 0.1 * base : 0.1 * base;
    else out[i] = 0.1 * base;
  }
  return out;
}

const torchRef = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_densenet_reference.json", import.meta.url)),
);

Deno.test("DenseNet equals PyTorch 1.13's (train-mode BatchNorm, running stats, eval mode)", () => {
  const x = tf.tidy(() => {
    const v = Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(0.37 * i));
    return tf.tensor4d(v, [2, 3, 32, 32]).transpose([0, 2, 3, 1]);
  });
  for (const variant of ["conv", "transposed"] as Variant[]) {
    const ref = torchRef.variants[variant];
    const net = DenseNet({ variant });
    const names = loadTorchStateDict(net, torchValue);
    assertEquals(names.length, 1 + 3 * (4 + 10) + 3 * 5 + 4 + 4, "every PyTorch tensor loaded");
    const train = net.apply(x, { training: true }) as tf.Tensor;
    const tol = 1e-4 * Math.max(1, ...ref.train_logits.flat().map(Math.abs));
    assertLessOrEqual(maxAbsDiff(train, tf.tensor(ref.train_logits)), tol, `${variant} train`);
    const bn = net.getLayer("transition1_bn") as BatchNorm2d;
    const [, , rm, rv] = bn.getWeights();
    assertLessOrEqual(maxAbsDiff(rm.slice(0, 4), tf.tensor(ref.transition1_bn_running_mean)), 1e-5);
    assertLessOrEqual(maxAbsDiff(rv.slice(0, 4), tf.tensor(ref.transition1_bn_running_var)), 1e-5);
    const evalOut = net.apply(x, { training: false }) as tf.Tensor;
    assertLessOrEqual(maxAbsDiff(evalOut, tf.tensor(ref.eval_logits)), tol, `${variant} eval`);
    tf.dispose([train, evalOut]);
    net.dispose();
  }
  x.dispose();
});

Deno.test("control arm: transposed net with mapped conv weights computes the same function", () => {
  const conv = DenseNet({ variant: "conv", seed: 3 });
  const control = DenseNet({ variant: "transposed", seed: 4 });
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 5);
  const before = maxAbsDiff(conv.predict(x) as tf.Tensor, control.predict(x) as tf.Tensor);
  copyConvWeightsToTransposed(conv, control);
  const a = conv.apply(x, { training: true }) as tf.Tensor;
  const b = control.apply(x, { training: true }) as tf.Tensor;
  assert(before > 1e-3, "different before mapping");
  assertLessOrEqual(maxAbsDiff(a, b), 1e-4);
  tf.dispose([x, a, b]);
});

/** A one-layer model around a built `BatchNorm2d` with random γ and β. */
function bnModel(shape: number[], seed: number): tf.LayersModel {
  const c = shape[3];
  const input = tf.input({ shape: shape.slice(1) });
  const out = new BatchNorm2d({ numFeatures: c, name: "bn" }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const bn = model.getLayer("bn");
  const [, , rm, rv] = bn.getWeights();
  bn.setWeights([
    tf.randomNormal([c], 1, 0.5, "float32", seed),
    tf.randomNormal([c], 0, 0.5, "float32", seed + 1),
    rm,
    rv,
  ]);
  return model;
}

/** Runs `f` on the cpu and then the wasm backend; the previous backend is restored. */
async function onEachBackend(f: (backend: "cpu" | "wasm") => void): Promise<void> {
  await tf.ready();
  const previous = tf.getBackend();
  try {
    for (const backend of ["cpu", "wasm"] as const) {
      await useBackend(backend);
      f(backend);
    }
  } finally {
    await tf.setBackend(previous);
  }
}

/** `max |a − b| / max |b|`. */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().div(b.abs().max()).dataSync()[0]);
}

Deno.test("BatchNorm2d: closed-form training gradients equal autograd through tf.moments and tf.batchNorm (cpu, wasm)", async () => {
  await onEachBackend((backend) => {
    for (const [k, shape] of [[4, 5, 6, 3], [2, 3, 3, 7]].entries()) {
      const label = `${backend} [${shape}]`;
      const model = bnModel(shape, 10 * k);
      const [gamma, beta] = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const x = tf.tidy(() => tf.variable(tf.randomNormal(shape, 0.3, 2, "float32", 10 * k + 2)));
      const r = tf.randomNormal(shape, 0, 1, "float32", 10 * k + 3);
      const vars = [x, gamma, beta];
      const ours = tf.variableGrads(
        () => (model.apply(x, { training: true }) as tf.Tensor).mul(r).sum(),
        vars,
      );
      // The formulation BatchNorm2d used before: autograd through moments and batchNorm.
      const reference = tf.variableGrads(() => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        return tf.batchNorm(x, mean, variance, beta, gamma, 1e-5).mul(r).sum();
      }, vars);
      assertLessOrEqual(relErr(ours.value, reference.value), 1e-5, `${label} loss`);
      for (const v of vars) {
        const err = relErr(ours.grads[v.name], reference.grads[v.name]);
        assertLessOrEqual(err, 1e-5, `${label} d/d${v === x ? "x" : v.name}`);
      }
      tf.dispose([ours.value, reference.value, ...Object.values(ours.grads)]);
      tf.dispose([...Object.values(reference.grads), x, r]);
      model.dispose();
    }
  });
});

Deno.test("BatchNorm2d: training step leaks no tensors and updates running stats as PyTorch", async () => {
  await onEachBackend((backend) => {
    const shape = [4, 5, 6, 3];
    const model = bnModel(shape, 1);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.randomNormal(shape, 0.3, 2, "float32", 4);
    const r = tf.randomNormal(shape, 0, 1, "float32", 5);
    const baseline = tf.memory().numTensors;
    for (let step = 0; step < 2; step++) {
      const { value, grads } = tf.variableGrads(
        () => (model.apply(x, { training: true }) as tf.Tensor).mul(r).sum(),
        vars,
      );
      assertEquals(Object.keys(grads).length, 2, `${backend}: grads reach γ and β`);
      tf.dispose([value, ...Object.values(grads)]);
      assertEquals(tf.memory().numTensors, baseline, `${backend}: tensors after step ${step}`);
    }
    const y = model.apply(x, { training: true }) as tf.Tensor; // no tape
    y.dispose();
    assertEquals(tf.memory().numTensors, baseline, `${backend}: tensors after a forward`);
    // Three updates from (0, 1): running = 0.9^3·start + (1 − 0.9^3)·batch statistic.
    const [, , rm, rv] = model.getLayer("bn").getWeights();
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const n = 4 * 5 * 6, keep = 0.9 ** 3;
    const wantMean = mean.mul(1 - keep);
    const wantVar = variance.mul((1 - keep) * n / (n - 1)).add(keep);
    assertLessOrEqual(maxAbsDiff(rm, wantMean), 1e-5, `${backend} running mean`);
    assertLessOrEqual(maxAbsDiff(rv, wantVar), 1e-5, `${backend} running var`);
    tf.dispose([x, r, mean, variance, wantMean, wantVar]);
    model.dispose();
  });
});

Deno.test("DenseNet refuses bad options", () => {
  assertThrows(
    () => DenseNet({ variant: "deconv" as Variant }),
    RangeError,
    'variant must be "conv" or "transposed"',
  );
  assertThrows(() => DenseNet({ variant: "conv", classes: 0 }), RangeError, "classes");
  assertThrows(() => DenseNet({ variant: "conv", imageSize: 30 }), RangeError, "multiple of 8");
});
