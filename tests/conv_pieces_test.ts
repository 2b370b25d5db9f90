// Conv2d and ConvTranspose2d with a list of pieces and a fused LeakyReLU (lib/nn/conv.ts), on
// their tensor path (bit for bit the explicit concat → conv → bias → LeakyReLU composition) and on
// the native op (lib/backend/native/conv_pieces.ts: close to it, deterministic, and the same bits
// for a convolution and its transposed twin).
import { assert, assertEquals, assertLessOrEqual, assertThrows } from "@std/assert";
import { nativeKernels, tf } from "../lib/backend/mod.ts";
import {
  CONV_PIECES_FILTER_GRAD_KERNEL,
  CONV_PIECES_KERNEL,
  nativeConvPieces,
  nativeConvPiecesActive,
  nativeFlipFilter,
} from "../lib/backend/native/conv_pieces.ts";
import { LEAKY_RELU_GRAD_KERNEL } from "../lib/backend/native/_eltwise.ts";
import {
  Conv2d,
  ConvTranspose2d,
  copyConvWeightsToTransposed,
  denseBlock,
  denseBlockPieces,
  DenseNet,
  flipKernel,
  transitionLayer,
  transposedToConv,
  type Variant,
} from "../lib/nn/mod.ts";
import { onWasm, seededStep, withWasmKernels } from "./_native_helpers.ts";

type Layer = typeof Conv2d | typeof ConvTranspose2d;
const WIDTHS = [3, 5, 1]; // pieces of unequal widths, 9 channels together
const SLOPE = 0.01;

/** Pieces `[2, 6, 5, c]`, mostly negative (mean −0.7), so that LeakyReLU's slope matters. */
function pieces(seed: number): tf.Tensor4D[] {
  return WIDTHS.map((c, j) => tf.randomNormal([2, 6, 5, c], -0.7, 1, "float32", seed + j));
}

/** A layer of 9 → 4 channels, 3×3, padding 1, and its twin without pieces or activation. */
function layers(cls: Layer, times: 0 | 1 | 2, seed: number, bias = true, size = 3) {
  const common = { inChannels: 9, outChannels: 4, kernelSize: size, padding: (size - 1) / 2 };
  const args = { ...common, seed, bias };
  const fused = new cls(times ? { ...args, leakyRelu: { alpha: SLOPE, times } } : args);
  const plain = new cls(args);
  return { fused, plain };
}

/**
 * Output, piece gradients, kernel and bias gradients of `loss = Σ y·dy` for `y = f(pieces)`.
 * `f` is the fused layer on the list, or the explicit composition.
 */
function outcome(
  f: (xs: tf.Tensor4D[]) => tf.Tensor,
  xs: tf.Tensor4D[],
  weights: tf.LayerVariable[],
  dySeed: number,
): Float32Array[] {
  return tf.tidy(() => {
    const y = f(xs);
    const dy = tf.randomNormal(y.shape, 0, 1, "float32", dySeed);
    const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(f(a as tf.Tensor4D[]), dy)) as tf.Scalar;
    const dxs = tf.grads(loss)(xs);
    const vars = weights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => loss(...xs), vars);
    return [y, ...dxs, ...vars.map((v) => grads[v.name])].map((t) => t.dataSync() as Float32Array);
  });
}

/** The fused layer's and the explicit composition's outcomes, same weights and inputs. */
function both(
  { cls, times, bias, size }: Case,
): { fused: Float32Array[]; explicit: Float32Array[] } {
  const { fused, plain } = layers(cls, times, 11, bias, size);
  const xs = pieces(20);
  try {
    fused.apply(xs);
    plain.apply(tf.concat(xs, -1));
    plain.setWeights(fused.getWeights());
    const composed = (a: tf.Tensor4D[]) => {
      let y = plain.apply(tf.concat(a, -1)) as tf.Tensor;
      for (let i = 0; i < times; i++) y = tf.leakyRelu(y, SLOPE);
      return y;
    };
    return {
      fused: outcome((a) => fused.apply(a) as tf.Tensor, xs, fused.trainableWeights, 30),
      explicit: outcome(composed, xs, plain.trainableWeights, 30),
    };
  } finally {
    tf.dispose(xs);
    fused.dispose();
    plain.dispose();
  }
}

/** `max |a − b| / max |b|`. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

interface Case {
  cls: Layer;
  times: 0 | 1 | 2;
  bias: boolean;
  size: number;
  label: string;
}
const CASES: Case[] = [Conv2d, ConvTranspose2d].flatMap((cls) => [
  ...([1, 2] as const).map((times) => ({
    cls,
    times,
    bias: true,
    size: 3,
    label: `${cls.className} 3×3 times ${times}`,
  })),
  // The transition layers' shape (1×1, no bias), and pieces without an activation.
  { cls, times: 1 as const, bias: false, size: 1, label: `${cls.className} 1×1 no bias` },
  { cls, times: 0 as const, bias: true, size: 3, label: `${cls.className} 3×3 no activation` },
]);
const NAMES = ["y", "dx0", "dx1", "dx2", "dkernel", "dbias"];

Deno.test("pieces + fused LeakyReLU: the tensor path is the explicit composition, bit for bit (cpu; wasm without native kernels)", async () => {
  for (const c of CASES) {
    const { fused, explicit } = both(c);
    const label = c.label;
    assertEquals(fused.length, NAMES.length - (c.bias ? 0 : 1));
    fused.forEach((v, i) => assertEquals(v, explicit[i], `cpu ${label}: ${NAMES[i]}`));
  }
  await onWasm(() =>
    withWasmKernels(() => {
      assert(!nativeConvPiecesActive(tf.zeros([1, 2, 2, 1])), "native op off");
      for (const c of CASES) {
        const { fused, explicit } = both(c);
        const label = c.label;
        fused.forEach((v, i) => assertEquals(v, explicit[i], `wasm ${label}: ${NAMES[i]}`));
      }
    })
  );
});

Deno.test("pieces + fused LeakyReLU: the native op is close to the composition in value and every gradient", async () => {
  await onWasm(async () => {
    if (!nativeKernels().active) return; // no libdnnl2: the native op does not exist here
    assert(nativeConvPiecesActive(tf.zeros([1, 2, 2, 1])));
    for (const c of CASES) {
      const { fused, explicit } = both(c);
      const { cls, times, label } = c;
      // float32 rounding: the pieces' partial sums are added in another order (measured: output
      // ≤ 4e-7 of its largest value, the gradients here equal).
      fused.forEach((v, i) =>
        assertLessOrEqual(relDiff(v, explicit[i]), 2e-6, `${label}: ${NAMES[i]}`)
      );
      // The fused layer ran as the native op, without a Concat or a LeakyRelu.
      const { fused: layer } = layers(cls, times, 3, c.bias, c.size);
      const xs = pieces(40);
      const profile = await tf.profile(() => layer.apply(xs) as tf.Tensor);
      const names = profile.kernels.map((k) => k.name);
      assert(names.includes(CONV_PIECES_KERNEL), names.join());
      assert(!names.includes("Concat") && !names.includes("LeakyRelu"), names.join());
      tf.dispose([...xs, profile.result as tf.Tensor]);
      layer.dispose();
    }
  });
});

Deno.test("the native LeakyReLU gradient of two applications, from the output, has the bits of two tfjs gradients", async () => {
  await onWasm(() => {
    if (!nativeKernels().active) return;
    const z = tf.randomNormal([3, 7, 5, 4], -0.5, 1, "float32", 5);
    const dy = tf.randomNormal([3, 7, 5, 4], 0, 1, "float32", 6);
    const twice = (v: tf.Tensor) => tf.leakyRelu(tf.leakyRelu(v, SLOPE), SLOPE);
    const reference = withWasmKernels(() =>
      tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(twice(v), dy)))(z).dataSync())
    );
    for (const times of [1, 2]) {
      const y = tf.leakyRelu(times === 2 ? tf.leakyRelu(z, SLOPE) : z, SLOPE);
      const dz = tf.engine().runKernel(LEAKY_RELU_GRAD_KERNEL, { dy, x: y }, {
        alpha: SLOPE,
        times,
      }) as tf.Tensor;
      const expected = times === 2
        ? reference
        : withWasmKernels(() =>
          tf.tidy(() =>
            tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(v, SLOPE), dy)))(z).dataSync()
          )
        );
      assertEquals(dz.dataSync(), expected, `times ${times}`);
      tf.dispose([y, dz]);
    }
    assertThrows(
      () => tf.engine().runKernel(LEAKY_RELU_GRAD_KERNEL, { dy, x: z }, { alpha: SLOPE, times: 3 }),
      RangeError,
      "times must be 1 or 2, got 3",
    );
    tf.dispose([z, dy]);
  });
});

Deno.test("the native filter flip is flipKernel's, and so is its gradient", async () => {
  await onWasm(() => {
    if (!nativeKernels().active) return;
    const w = tf.randomNormal([3, 2, 5, 4], 0, 1, "float32", 7) as tf.Tensor4D;
    const dy = tf.randomNormal([3, 2, 4, 5], 0, 1, "float32", 8) as tf.Tensor4D;
    const flipped = nativeFlipFilter(w);
    assertEquals(flipped.shape, [3, 2, 4, 5]);
    assertEquals(flipped.dataSync(), flipKernel(w).dataSync());
    const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(nativeFlipFilter(v as tf.Tensor4D), dy)))(
      w,
    );
    assertEquals(grad.dataSync(), flipKernel(dy).dataSync());
    tf.dispose([w, dy, flipped, grad]);
  });
});

Deno.test("pieces whose channels do not add up are refused, naming the layer and the shapes", () => {
  const conv = new Conv2d({ inChannels: 9, outChannels: 4, kernelSize: 3, name: "c9" });
  assertThrows(
    () => conv.apply([tf.input({ shape: [6, 5, 3] }), tf.input({ shape: [6, 5, 5] })]),
    RangeError,
    'Conv2d "c9" expects NHWC pieces of the same batch, height and width whose channels add up ' +
      "to 9, got [?, 6, 5, 3], [?, 6, 5, 5]",
  );
  const t = new ConvTranspose2d({ inChannels: 4, outChannels: 2, kernelSize: 3, name: "t4" });
  assertThrows(
    () => t.apply([tf.zeros([1, 6, 5, 2]), tf.zeros([1, 6, 4, 2])]),
    RangeError,
    'ConvTranspose2d "t4" expects NHWC pieces of the same batch, height and width whose ' +
      "channels add up to 4, got [1, 6, 5, 2], [1, 6, 4, 2]",
  );
  assertThrows(
    () =>
      new Conv2d({
        inChannels: 1,
        outChannels: 1,
        kernelSize: 1,
        leakyRelu: { alpha: 0.1, times: 3 as 1 },
      }),
    RangeError,
    "leakyRelu.times must be 1 or 2, got 3",
  );
});

Deno.test("the native op refuses pieces that do not fit its filter, naming the shapes", async () => {
  await onWasm(() => {
    if (!nativeKernels().active) return;
    const a = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D, b = tf.zeros([1, 4, 4, 3]) as tf.Tensor4D;
    const w = tf.zeros([3, 3, 6, 2]) as tf.Tensor4D;
    assertThrows(
      () => nativeConvPieces([a, b], w, undefined, { padding: [1, 1] }),
      RangeError,
      "the pieces' channels (2 + 3) must add up to the filter's input channels, 6 (filter [3, 3, 6, 2])",
    );
    assertThrows(
      () =>
        nativeConvPieces([a], tf.zeros([3, 3, 2, 2]) as tf.Tensor4D, undefined, {
          padding: [0, 1],
        }),
      RangeError,
      'padding [0, 1] is not "same" for a 3×3 filter',
    );
    // The kernel itself checks what it is given (a piece of another height here).
    const c = tf.zeros([1, 5, 4, 1]);
    assertThrows(
      () =>
        tf.engine().runKernel(CONV_PIECES_KERNEL, { x0: a, x1: b, x2: c, filter: w }, {
          padding: [1, 1],
          alpha: 0,
          times: 0,
        }),
      RangeError,
      "got pieces [1, 4, 4, 2], [1, 4, 4, 3], [1, 5, 4, 1], filter [3, 3, 6, 2]",
    );
    // Its gradient reads LeakyReLU's mask from the output: a negative slope is refused, as are
    // other repeat counts and pieces without channels (oneDNN takes none).
    for (
      const [leakyRelu, message] of [
        [{ alpha: -0.5, times: 1 }, "leakyRelu.alpha must be finite and ≥ 0, got -0.5"],
        [{ alpha: NaN, times: 2 }, "leakyRelu.alpha must be finite and ≥ 0, got NaN"],
        [{ alpha: 0.01, times: 3 }, "leakyRelu.times must be 1 or 2, got 3"],
      ] as const
    ) {
      assertThrows(
        () =>
          nativeConvPieces([a, b], tf.zeros([3, 3, 5, 2]) as tf.Tensor4D, undefined, {
            padding: [1, 1],
            leakyRelu: leakyRelu as unknown as { alpha: number; times: 1 | 2 },
          }),
        RangeError,
        message,
      );
    }
    const none = tf.zeros([1, 4, 4, 0]) as tf.Tensor4D;
    assertThrows(
      () =>
        nativeConvPieces([none, b], tf.zeros([3, 3, 3, 2]) as tf.Tensor4D, undefined, {
          padding: [1, 1],
        }),
      RangeError,
      "a piece has no channels ([1, 4, 4, 0])",
    );
    tf.dispose([a, b, c, w, none]);
  });
});

Deno.test("a piece without channels: the layers take the tensor path, the composition's bits", async () => {
  const run = () =>
    tf.tidy(() => {
      const conv = new Conv2d({
        inChannels: 3,
        outChannels: 2,
        kernelSize: 3,
        padding: 1,
        seed: 3,
        leakyRelu: { alpha: 0.01 },
      });
      const x = tf.randomNormal([1, 4, 4, 3], 0, 1, "float32", 5) as tf.Tensor4D;
      const y = conv.apply([tf.zeros([1, 4, 4, 0]), x]) as tf.Tensor;
      const [kernel, bias] = conv.getWeights() as [tf.Tensor4D, tf.Tensor1D];
      const explicit = tf.leakyRelu(tf.add(tf.conv2d(x, kernel, 1, "same"), bias), 0.01);
      return [y.arraySync(), explicit.arraySync()];
    });
  const [onCpu, cpuExplicit] = run();
  assertEquals(onCpu, cpuExplicit);
  await onWasm(() => {
    if (!nativeKernels().active) return;
    const [native, explicit] = run();
    assertEquals(native, explicit); // before: a oneDNN error for the empty piece
  });
});

/** The bits of a seeded training step's loss and gradients. */
function stepBits(model: tf.LayersModel): Float32Array[] {
  // In a tidy: seededStep's images and labels go too.
  return tf.tidy(() => {
    const { value, grads } = seededStep(model, [1, 7, 3, 0]);
    return [value, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

Deno.test("native DenseNet: a training step is the same bits run to run, and leaves no tensors", async () => {
  await onWasm(() => {
    if (!nativeKernels().active) return;
    for (const variant of ["conv", "transposed"] as const) {
      const model = DenseNet({ variant, seed: 8 });
      const first = stepBits(model);
      const before = tf.memory().numTensors;
      const second = stepBits(model);
      assertEquals(second, first, variant);
      assertEquals(tf.memory().numTensors, before, `${variant}: tensors left by a step`);
      model.dispose();
    }
  });
});

Deno.test("native DenseNet: the transposed net with the conv net's weights gives its logits, loss and gradients, bit for bit", async () => {
  await onWasm(() => {
    if (!nativeKernels().active) return;
    const conv = DenseNet({ variant: "conv", seed: 3 });
    const control = DenseNet({ variant: "transposed", seed: 4 });
    copyConvWeightsToTransposed(conv, control);
    const x = tf.randomNormal([4, 32, 32, 3], 0, 1, "float32", 6);
    const logits = [conv, control].map((m) =>
      tf.tidy(() => (m.apply(x, { training: false }) as tf.Tensor).dataSync())
    );
    assertEquals(logits[1], logits[0]);
    const a = stepBits(conv), b = stepBits(control);
    assertEquals(b[0], a[0], "loss");
    const toConv = transposedToConv(control);
    control.trainableWeights.forEach((w, i) => {
      const g = tf.tensor(b[i + 1], w.shape as number[]);
      const mapped = toConv(w.originalName, g);
      assertEquals(mapped.dataSync(), a[i + 1], w.originalName);
      tf.dispose([g, mapped]);
    });
    x.dispose();
    conv.dispose();
    control.dispose();
  });
});

/**
 * A dense block (64 → 160 channels) and a transition (160 → 64) on `[2, 8, 8, 64]` input, the
 * transition fed either the block's concatenation (a `Concatenate` layer, the graph before
 * DenseNet fed pieces) or its five pieces; the pieces-fed model gets the other's weights.
 */
function blockModels(variant: Variant): { cat: tf.LayersModel; pieces: tf.LayersModel } {
  const options = { inChannels: 64, variant, seed: 9 };
  const transition = { inChannels: 160, outChannels: 64, variant, seed: 10 };
  const x = tf.input({ shape: [8, 8, 64] });
  const cat = tf.model({
    inputs: x,
    outputs: transitionLayer(denseBlock(x, { ...options, name: "b" }), {
      ...transition,
      name: "t",
    }),
  });
  const y = tf.input({ shape: [8, 8, 64] });
  const pieces = tf.model({
    inputs: y,
    outputs: transitionLayer(denseBlockPieces(y, { ...options, name: "b" }), {
      ...transition,
      name: "t",
    }),
  });
  pieces.setWeights(cat.getWeights());
  return { cat, pieces };
}

/** Output, input gradient and every weight's gradient of `Σ m(x)·dy` (training mode), as bits. */
function blockOutcome(m: tf.LayersModel): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.randomNormal([2, 8, 8, 64], 0, 1, "float32", 12);
    const f = (a: tf.Tensor) => m.apply(a, { training: true }) as tf.Tensor;
    const dy = tf.randomNormal([2, 4, 4, 64], 0, 1, "float32", 13);
    const loss = (a: tf.Tensor) => tf.sum(tf.mul(f(a), dy)) as tf.Scalar;
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => loss(x), vars);
    return [f(x), tf.grad(loss)(x), ...vars.map((v) => grads[v.name])]
      .map((t) => t.dataSync() as Float32Array);
  });
}

Deno.test("a transition fed the block's pieces: the bits of one fed its concatenation on the tensor path, close on the native op", async () => {
  const compare = (label: string, exact: boolean) => {
    for (const variant of ["conv", "transposed"] as const) {
      const { cat, pieces } = blockModels(variant);
      const [a, b] = [cat, pieces].map(blockOutcome);
      const names = ["y", "dx", ...pieces.trainableWeights.map((w) => w.originalName)];
      assertEquals(b.length, a.length);
      assertEquals(names.length, a.length);
      b.forEach((v, i) => {
        const what = `${label} ${variant}: ${names[i]}`;
        if (exact) assertEquals(v, a[i], what);
        // The native op adds the five pieces' partial sums in another order than one convolution
        // over their concatenation (float32 rounding).
        else assertLessOrEqual(relDiff(v, a[i]), 2e-5, what);
      });
      cat.dispose();
      pieces.dispose();
    }
  };
  compare("cpu", true);
  await onWasm(() => {
    withWasmKernels(() => compare("wasm", true));
    if (nativeKernels().active) compare("native", false);
  });
});

Deno.test("the pieces' filter gradient written in place has the bits of per-piece Conv2DBackpropFilter joined by Concat", async () => {
  await onWasm(() => {
    if (!nativeKernels().active) return;
    for (const [size, pad] of [[3, 1], [1, 0]]) {
      tf.tidy(() => {
        const xs = [32, 32, 64, 1].map((c, j) =>
          tf.randomNormal([3, 6, 5, c], 0, 1, "float32", 50 + j)
        );
        const dy = tf.randomNormal([3, 6, 5, 7], 0, 1, "float32", 60);
        const named: tf.NamedTensorMap = { dy };
        xs.forEach((x, j) => named[`x${j}`] = x);
        const got = tf.engine().runKernel(CONV_PIECES_FILTER_GRAD_KERNEL, named, {
          padding: [pad, pad],
          kernelSize: [size, size],
        }) as tf.Tensor;
        const conv = { strides: [1, 1], pad: [[0, 0], [pad, pad], [pad, pad], [0, 0]] };
        const slices = xs.map((x) =>
          tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
            ...conv,
            dataFormat: "NHWC",
            filterShape: [size, size, x.shape[3], 7],
          } as unknown as tf.NamedAttrMap) as tf.Tensor
        );
        const expected = tf.concat(slices, 2);
        assertEquals(got.shape, [size, size, 129, 7]);
        assertEquals(got.dataSync(), expected.dataSync(), `${size}×${size}`);
        // Not zeros or one slice repeated: the slices differ.
        assert(slices[0].sub(slices[1]).abs().max().dataSync()[0] > 0);
      });
    }
    // Bad input is refused, naming the shapes.
    const a = tf.zeros([1, 4, 4, 2]), dy = tf.zeros([1, 4, 3, 2]);
    assertThrows(
      () =>
        tf.engine().runKernel(CONV_PIECES_FILTER_GRAD_KERNEL, { x0: a, dy }, {
          padding: [1, 1],
          kernelSize: [3, 3],
        }),
      RangeError,
      "got pieces [1, 4, 4, 2], dy [1, 4, 3, 2]",
    );
    tf.dispose([a, dy]);
  });
});

Deno.test("native DenseNet: a training step runs no Concat and no SplitV", async () => {
  await onWasm(async () => {
    if (!nativeKernels().active) return;
    const model = DenseNet({ variant: "conv", seed: 2 });
    stepBits(model); // plans made before the profile
    const profile = await tf.profile(() => void stepBits(model));
    const names = profile.kernels.map((k) => k.name);
    assert(names.includes(CONV_PIECES_FILTER_GRAD_KERNEL), names.join());
    assertEquals(names.filter((n) => n === "Concat" || n === "SplitV"), []);
    model.dispose();
  });
});
