import { assert, assertEquals, assertLessOrEqual, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { useBackend } from "../lib/backend/mod.ts";
import {
  BatchNorm2d,
  copyConvWeightsToTransposed,
  denseBlock,
  denseBlockPieces,
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
    // Each transition convolution takes its block's five pieces: no Concatenate layer at all.
    assertEquals(net.layers.filter((l) => l.getClassName() === "Concatenate"), []);
    const transitions = net.layers.filter((l) => /^transition\d_conv$/.test(l.name));
    assertEquals(
      transitions.map((l) => [l.input].flat().map((t) => (t as tf.SymbolicTensor).shape)),
      [32, 16, 8].map((side) => Array(5).fill([null, side, side, 32])),
    );
    net.dispose();
  }
  assertEquals(trainable(DenseNet({ variant: "conv", classes: 100 })), 961_066 + 90 * 513);
});

Deno.test("dense block and transition layer: channel arithmetic 64/96/128/160 and halving", () => {
  for (const variant of ["conv", "transposed"] as const) {
    const x = tf.input({ shape: [16, 16, 64] });
    const block = denseBlock(x, { inChannels: 64, variant, name: "b" });
    assertEquals(block.shape, [null, 16, 16, 160]);
    const catFed = transitionLayer(block, {
      inChannels: 160,
      outChannels: 128,
      variant,
      name: "u",
    });
    assertEquals(catFed.shape, [null, 8, 8, 128]);
    // The public block concatenates its pieces with one Concatenate (`b_cat`).
    const withCat = tf.model({ inputs: x, outputs: catFed });
    const cat = withCat.layers.filter((l) => l.getClassName() === "Concatenate");
    assertEquals(cat.map((l) => [l.name, (l.output as tf.SymbolicTensor).shape[3]]), [[
      "b_cat",
      160,
    ]]);
    withCat.dispose();
    const pieces = denseBlockPieces(x, { inChannels: 64, variant, name: "b" });
    assertEquals(pieces.map((p) => p.shape), Array(5).fill([null, 16, 16, 32]));
    const t = transitionLayer(pieces, { inChannels: 160, outChannels: 128, variant, name: "t" });
    assertEquals(t.shape, [null, 8, 8, 128]);
    const m = tf.model({ inputs: x, outputs: t });
    // kernels: conv [3, 3, in, 32]; transposed [3, 3, 32, in]
    const kernels = m.layers.filter((l) => l.name.startsWith("b_conv")).map((l) =>
      l.getWeights()[0].shape
    );
    const ins = kernels.map((s) => variant === "conv" ? s[2] : s[3]);
    assertEquals(ins, [64, 32, 64, 96, 128]);
    // Convolutions 3…5 and the transition's take the pieces of 32 channels (conv1's LeakyReLU
    // again, conv2…) as a list, their implicit concatenation; no Concatenate layer is left.
    const inputs = m.layers.filter((l) => /^(b_conv|t_conv)/.test(l.name)).map((l) =>
      [l.input].flat().map((t) => (t as tf.SymbolicTensor).shape[3])
    );
    assertEquals(inputs, [[64], [32], [32, 32], [32, 32, 32], [32, 32, 32, 32], Array(5).fill(32)]);
    assertEquals(m.layers.filter((l) => l.getClassName() === "Concatenate"), []);
    // The activations are the convolutions' own (fused), but for conv1's second one.
    const leaky = m.layers.filter((l) => l.getClassName() === "LeakyReLU").map((l) => l.name);
    assertEquals(leaky, ["b_relu1_again"]);
    m.dispose();
  }
});

// Deterministic weights and input shared with tests/fixtures/torch_densenet_reference.json (its
// "generator" says how it was made). Weights come from a 32-bit integer hash of (name, index),
// bit-identical in Python: a formula with structure (the sine of the index, used before) makes every
// layer nearly rank 2 and the output nearly independent of the input, so a kernel that mixed the
// samples passed.

/** FNV-1a hash of an ASCII name. */
function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

/** MurmurHash3's 32-bit finaliser. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** `n` pseudo-random values in [−1, 1), a function of `name` and the index only. */
function signedUniform(name: string, n: number): Float64Array {
  const h = fnv1a(name);
  return Float64Array.from(
    { length: n },
    (_, i) => mix32((h + Math.imul(i, 0x9e3779b9)) >>> 0) / 2 ** 32 * 2 - 1,
  );
}

/**
 * A PyTorch state-dict tensor by name: Glorot-uniform weights, biases and BatchNorm β in ±0.2,
 * γ in [0.5, 1.5), and starting running statistics away from every batch statistic of the
 * fixture's first step (means in [−0.6, −0.3), variances in [1, 1.5)), so that eval mode depends
 * on them and every channel's update shows.
 */
function torchValue(name: string, shape: number[]): Float32Array {
  const s = signedUniform(name, shape.reduce((a, b) => a * b, 1));
  if (name.endsWith("running_mean")) return Float32Array.from(s, (v) => -0.45 + 0.15 * v);
  if (name.endsWith("running_var")) return Float32Array.from(s, (v) => 1.25 + 0.25 * v);
  if (name.endsWith(".weight") && shape.length >= 2) {
    const fans = (shape[0] + shape[1]) * shape.slice(2).reduce((a, b) => a * b, 1);
    return Float32Array.from(s, (v) => v * Math.sqrt(6 / fans));
  }
  if (name.endsWith(".weight")) return Float32Array.from(s, (v) => 1 + 0.5 * v);
  return Float32Array.from(s, (v) => 0.2 * v);
}

/**
 * Two NCHW images that differ in pattern, scale and offset: 0.5 + 2·sin(0.37 i) and −1.5 + 4·noise;
 * returned NHWC `[2, 32, 32, 3]`.
 */
function densenetInput(): tf.Tensor4D {
  const n = 3 * 32 * 32;
  const noise = signedUniform("input", n);
  const values = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    values[i] = 0.5 + 2 * Math.sin(0.37 * i);
    values[n + i] = -1.5 + 4 * noise[i];
  }
  return tf.tidy(() => tf.tensor4d(values, [2, 3, 32, 32]).transpose([0, 2, 3, 1]));
}

const torchRef = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_densenet_reference.json", import.meta.url)),
);

/** max |x| over a nested array of numbers. */
const maxAbs = (x: number[] | number[][]) => Math.max(...x.flat().map(Math.abs));

// Tolerances relative to the magnitude of what is compared, for float32 against the float64
// reference: logits pass through ~20 layers (1e-4; PyTorch's own float32 run is within 3e-6 of
// it, tfjs's cpu backend 1.5e-6, its wasm backend 1.5e-5), running statistics through ~8 (1e-5;
// tfjs within 1e-6).
const LOGIT_RTOL = 1e-4, STAT_RTOL = 1e-5;

Deno.test("DenseNet equals PyTorch 1.13's (train-mode BatchNorm, running stats, eval mode)", () => {
  const x = densenetInput();
  const second = x.slice([1], [1]);
  for (const variant of ["conv", "transposed"] as Variant[]) {
    const ref = torchRef.variants[variant];
    const net = DenseNet({ variant });
    const names = loadTorchStateDict(net, torchValue);
    assertEquals(names.length, 1 + 3 * (4 + 10) + 3 * 5 + 4 + 4, "every PyTorch tensor loaded");
    assertEquals(names.length, ref.state_dict_tensors, "as many tensors as PyTorch's state dict");

    const train = net.apply(x, { training: true }) as tf.Tensor;
    const trainTol = LOGIT_RTOL * maxAbs(ref.train_logits);
    assertLessOrEqual(maxAbsDiff(train, tf.tensor(ref.train_logits)), trainTol, `${variant} train`);

    // Every channel of two BatchNorms (n = 2·32·32 and n = 2·4·4 values per channel) after one
    // update; each channel's expected change from its start must dwarf the tolerance, or a
    // skipped or mis-weighted update would pass.
    for (const [layer, torchName] of [["transition1_bn", "transitionLayer1.bn"], ["bn", "bn"]]) {
      const [, , rm, rv] = net.getLayer(layer).getWeights();
      const stats = { mean: rm, var: rv };
      for (const [stat, actual] of Object.entries(stats)) {
        const label = `${variant} ${layer} running ${stat}`;
        const want: number[] = ref.running_stats[torchName][stat];
        assertEquals(want.length, actual.size, `${label}: all channels`);
        const tol = STAT_RTOL * maxAbs(want);
        const start = torchValue(`${torchName}.running_${stat}`, [want.length]);
        const change = Math.min(...want.map((w, c) => Math.abs(w - start[c])));
        assert(change >= 100 * tol, `${label}: change ${change} ≥ 100 × tolerance ${tol}`);
        assertLessOrEqual(maxAbsDiff(actual, tf.tensor(want)), tol, label);
      }
    }

    const evalTol = LOGIT_RTOL * maxAbs(ref.eval_logits);
    const [ref0, ref1] = ref.eval_logits as number[][];
    const apart = Math.max(...ref0.map((v, j) => Math.abs(v - ref1[j])));
    assert(apart >= 100 * evalTol, `${variant}: samples' logits ${apart} apart ≥ 100 × ${evalTol}`);
    const evalOut = net.apply(x, { training: false }) as tf.Tensor;
    assertLessOrEqual(maxAbsDiff(evalOut, tf.tensor(ref.eval_logits)), evalTol, `${variant} eval`);
    // Eval mode is per sample: the second image alone gives its row of the batch.
    const alone = net.apply(second, { training: false }) as tf.Tensor;
    assertLessOrEqual(maxAbsDiff(alone, tf.tensor([ref1])), evalTol, `${variant} eval, one image`);
    tf.dispose([train, evalOut, alone]);
    net.dispose();
  }
  tf.dispose([x, second]);
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
      // The loss is a sum of terms of both signs; float32 rounding scales with Σ|term|, not with
      // the (possibly small) sum itself.
      const scale = tf.tidy(() => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        return tf.batchNorm(x, mean, variance, beta, gamma, 1e-5).mul(r).abs().sum().dataSync()[0];
      });
      const lossDiff = Math.abs(ours.value.dataSync()[0] - reference.value.dataSync()[0]);
      assertLessOrEqual(lossDiff, 1e-6 * scale, `${label} loss`);
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
