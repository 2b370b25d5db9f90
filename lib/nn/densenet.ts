/**
 * The article's DenseNet, in a convolutional and a transposed-convolutional variant that differ
 * only in the layer class of the dense blocks and transition layers.
 *
 * ```
 * lowconv Conv2d(3→64, 7×7, padding 3, no bias) → ReLU          (a plain convolution in both variants)
 * DenseBlock(64)  → Transition(160→128)                          32×32 → 16×16
 * DenseBlock(128) → Transition(160→128)                          16×16 → 8×8
 * DenseBlock(128) → Transition(160→64)                            8×8 → 4×4
 * BatchNorm(64) → flatten 64·4·4 → Linear(1024→512) → Linear(512→classes)
 * ```
 *
 * A dense block (the article's `Dense_Block`) normalises its input, then runs five 3×3 stride-1
 * padding-1 convolutions of 32 channels, each followed by LeakyReLU (slope 0.01); convolutions 3, 4
 * and 5 and the block's output see the LeakyReLU of the concatenation of all earlier outputs
 * (64, 96, 128 and 160 channels). A transition layer (`Transition_Layer`) is a 1×1 convolution
 * without bias, LeakyReLU, BatchNorm over its output channels, and 2×2 average pooling.
 *
 * In the tfjs graph the LeakyReLUs are the convolutions' own (`leakyRelu`, see `conv.ts`):
 * `conv1` applies one, `conv2`…`conv5` two (the second being the concatenation's, applied per
 * piece), a `LeakyReLU` layer `relu1_again` gives conv1's piece, and convolutions 3…5 and the
 * transition convolution take the list of pieces (an implicit concatenation), so the model has no
 * `Concatenate` layer (with oneDNN, the block's 160-channel output is never materialised). The
 * transition convolution applies its LeakyReLU too. The same values as the article's graph, with
 * its weighted layers' names, classes, shapes and order. The article's listing declares that
 * BatchNorm with `in_channels` features but applies it to the convolution's `out_channels` outputs,
 * which PyTorch refuses for 160→128; as in the DenseNet code the article builds on, it is built
 * with `out_channels` here. Both variants have 961,066 trainable parameters, like the PyTorch
 * model.
 *
 * @example
 * ```ts
 * import { DenseNet } from "./densenet.ts";
 * const model = DenseNet({ variant: "transposed", classes: 10, seed: 1 });
 * model.countParams(); // 961066
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { Conv2d, ConvTranspose2d } from "./conv.ts";
import { BatchNorm2d, FlattenCHW, linear } from "./layers.ts";
import { flipKernel } from "./equivalence.ts";
import type { InitScheme } from "./init.ts";

/** Which convolution the dense blocks and transition layers use. */
export type Variant = "conv" | "transposed";

/** Options of {@linkcode DenseNet}. */
export interface DenseNetOptions {
  /** "conv" (Conv2d) or "transposed" (ConvTranspose2d) in blocks and transitions. */
  variant: Variant;
  /** Number of classes (default 10). */
  classes?: number;
  /** Seed of the default initialisation (each layer derives its own); random when unset. */
  seed?: number;
  /** Input height and width (default 32, CIFAR-10). Must be divisible by 8. */
  imageSize?: number;
  /**
   * Initialisation of the block and transition convolutions (the layers the two variants swap):
   * `"default"` (PyTorch's for the variant's layer type, the article's setting) or `"swapped"`
   * (the other variant's default: fan_in from `out·k²` in the conv network, `in·k²` in the
   * transposed one). The first convolution and the linear layers, the same in both variants,
   * keep their default.
   */
  init?: InitScheme;
}

/** Builds layers with distinct names and per-layer seeds derived from one seed. */
class Builder {
  #count = 0;
  constructor(
    readonly variant: Variant,
    readonly seed?: number,
    readonly init: InitScheme = "default",
  ) {}

  nextSeed(): number | undefined {
    this.#count++;
    return this.seed === undefined ? undefined : this.seed * 1000 + this.#count * 2;
  }

  conv(
    name: string,
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    { bias = true, times }: { bias?: boolean; times: 1 | 2 },
  ) {
    const args = {
      inChannels,
      outChannels,
      kernelSize,
      padding: (kernelSize - 1) / 2,
      bias,
      seed: this.nextSeed(),
      name,
      init: this.init,
      leakyRelu: { alpha: SLOPE, times },
    };
    return this.variant === "conv" ? new Conv2d(args) : new ConvTranspose2d(args);
  }
}

/** The article's LeakyReLU slope. */
const SLOPE = 0.01;
const leaky = (name: string) => tf.layers.leakyReLU({ alpha: SLOPE, name });

/**
 * The article's `Dense_Block(in_channels)` applied to `x`; returns its 160-channel output, the
 * concatenation (a `Concatenate` layer `<name>_cat`) of its five 32-channel pieces. `DenseNet`
 * itself passes the pieces to the transition convolution instead, without that layer; so can a
 * caller, with {@linkcode denseBlockPieces}.
 *
 * @example
 * ```ts
 * const input = tf.input({ shape: [32, 32, 64] });
 * const out = denseBlock(input, { inChannels: 64, variant: "conv", name: "block1" }); // [null, 32, 32, 160]
 * ```
 */
export function denseBlock(
  x: tf.SymbolicTensor,
  options: { inChannels: number; variant: Variant; name: string; seed?: number },
): tf.SymbolicTensor {
  const pieces = denseBlockPieces(x, options);
  return tf.layers.concatenate({ axis: -1, name: `${options.name}_cat` }).apply(
    pieces,
  ) as tf.SymbolicTensor;
}

/**
 * {@linkcode denseBlock}'s five 32-channel pieces, in channel order, not concatenated: what
 * `transitionLayer` (and the block convolutions of `Conv2d`/`ConvTranspose2d`) take as a list, the
 * same values without materialising the 160-channel tensor.
 *
 * @example
 * ```ts
 * const input = tf.input({ shape: [32, 32, 64] });
 * const pieces = denseBlockPieces(input, { inChannels: 64, variant: "conv", name: "block1" }); // 5 × [null, 32, 32, 32]
 * transitionLayer(pieces, { inChannels: 160, outChannels: 128, variant: "conv", name: "t1" }); // [null, 16, 16, 128]
 * ```
 */
export function denseBlockPieces(
  x: tf.SymbolicTensor,
  options: { inChannels: number; variant: Variant; name: string; seed?: number },
): tf.SymbolicTensor[] {
  return denseBlockWith(new Builder(options.variant, options.seed), x, options);
}

function denseBlockWith(
  b: Builder,
  x: tf.SymbolicTensor,
  { inChannels, name }: { inChannels: number; name: string },
): tf.SymbolicTensor[] {
  const apply = (layer: tf.layers.Layer, input: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    layer.apply(input) as tf.SymbolicTensor;
  const bn = apply(new BatchNorm2d({ numFeatures: inChannels, name: `${name}_bn` }), x);
  // The article applies LeakyReLU to every convolution's output and again to every concatenation
  // (c2_dense … c5_dense). LeakyReLU is elementwise, so it is applied to each piece instead: each
  // convolution i ≥ 2 applies it twice itself (its fused `leakyRelu`, times 2) and yields its
  // piece a_i directly, and convolutions 3…5 (and the transition's) take the list of pieces, an
  // implicit concatenation (`relu1_again` makes conv1's piece). The same values, bit for bit, as
  // the article's concatenations and separate activations, without materialising any of them
  // with oneDNN (and without separate bias and activation passes).
  const relu1 = apply(b.conv(`${name}_conv1`, inChannels, 32, 3, { times: 1 }), bn);
  const pieces = [apply(leaky(`${name}_relu1_again`), relu1)];
  for (let i = 2; i <= 5; i++) {
    const input = i === 2 ? relu1 : [...pieces];
    pieces.push(apply(b.conv(`${name}_conv${i}`, 32 * (i - 1), 32, 3, { times: 2 }), input));
  }
  return pieces;
}

/**
 * The article's `Transition_Layer(in_channels, out_channels)` applied to `x`: 1×1 convolution
 * without bias, LeakyReLU, BatchNorm(out_channels), 2×2 average pooling. `x` may be a list of NHWC
 * pieces whose channels add up to `inChannels` (their concatenation, e.g. from
 * {@linkcode denseBlockPieces}).
 *
 * @example
 * ```ts
 * const input = tf.input({ shape: [32, 32, 160] });
 * transitionLayer(input, { inChannels: 160, outChannels: 128, variant: "conv", name: "t1" }); // [null, 16, 16, 128]
 * ```
 */
export function transitionLayer(
  x: tf.SymbolicTensor | tf.SymbolicTensor[],
  options: {
    inChannels: number;
    outChannels: number;
    variant: Variant;
    name: string;
    seed?: number;
  },
): tf.SymbolicTensor {
  return transitionWith(new Builder(options.variant, options.seed), x, options);
}

function transitionWith(
  b: Builder,
  x: tf.SymbolicTensor | tf.SymbolicTensor[],
  { inChannels, outChannels, name }: { inChannels: number; outChannels: number; name: string },
): tf.SymbolicTensor {
  // The convolution applies the LeakyReLU itself (its fused `leakyRelu`).
  let h = b.conv(`${name}_conv`, inChannels, outChannels, 1, { bias: false, times: 1 })
    .apply(x) as tf.SymbolicTensor;
  h = new BatchNorm2d({ numFeatures: outChannels, name: `${name}_bn` }).apply(
    h,
  ) as tf.SymbolicTensor;
  return tf.layers.averagePooling2d({
    poolSize: 2,
    strides: 2,
    padding: "valid",
    name: `${name}_pool`,
  })
    .apply(h) as tf.SymbolicTensor;
}

/**
 * Builds the article's DenseNet as a tfjs `LayersModel` taking NHWC images `[n, 32, 32, 3]` and
 * returning logits `[n, classes]`. Layer names follow the PyTorch module names
 * (`lowconv`, `denseblock1_conv1`, `transition1_conv`, `pre_classifier`, `classifier`…).
 *
 * @example
 * ```ts
 * const net = DenseNet({ variant: "conv" });
 * const logits = net.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor; // [1, 10]
 * ```
 */
export function DenseNet(options: DenseNetOptions): tf.LayersModel {
  const { variant, classes = 10, imageSize = 32, seed, init = "default" } = options ?? {};
  if (variant !== "conv" && variant !== "transposed") {
    throw new RangeError(`variant must be "conv" or "transposed", got ${JSON.stringify(variant)}`);
  }
  if (!Number.isInteger(classes) || classes < 1) {
    throw new RangeError(`classes must be a positive integer, got ${classes}`);
  }
  if (!Number.isInteger(imageSize) || imageSize < 8 || imageSize % 8 !== 0) {
    throw new RangeError(`imageSize must be a positive multiple of 8, got ${imageSize}`);
  }
  const b = new Builder(variant, seed, init);
  const input = tf.input({ shape: [imageSize, imageSize, 3], name: "image" });
  // The first convolution is a plain Conv2d in both variants.
  const low = new Conv2d({
    inChannels: 3,
    outChannels: 64,
    kernelSize: 7,
    padding: 3,
    bias: false,
    seed: b.nextSeed(),
    name: "lowconv",
  });
  let h = tf.layers.reLU({ name: "lowconv_relu" }).apply(low.apply(input)) as tf.SymbolicTensor;
  const stages: [number, number][] = [[64, 128], [128, 128], [128, 64]];
  stages.forEach(([blockIn, transitionOut], i) => {
    // The transition convolution takes the block's pieces: no Concatenate (nor its gradient's
    // split) in the graph.
    const pieces = denseBlockWith(b, h, { inChannels: blockIn, name: `denseblock${i + 1}` });
    h = transitionWith(b, pieces, {
      inChannels: 160,
      outChannels: transitionOut,
      name: `transition${i + 1}`,
    });
  });
  h = new BatchNorm2d({ numFeatures: 64, name: "bn" }).apply(h) as tf.SymbolicTensor;
  h = new FlattenCHW({ name: "flatten" }).apply(h) as tf.SymbolicTensor;
  const features = 64 * (imageSize / 8) ** 2;
  h = linear({ inFeatures: features, outFeatures: 512, seed: b.nextSeed(), name: "pre_classifier" })
    .apply(h) as tf.SymbolicTensor;
  const logits = linear({
    inFeatures: 512,
    outFeatures: classes,
    seed: b.nextSeed(),
    name: "classifier",
  }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: `densenet_${variant}` });
}

/**
 * Copies the weights of a conv DenseNet into a transposed one so that both compute the same
 * function: every `ConvTranspose2d` gets its `Conv2d` twin's kernel flipped in space with in/out
 * channels swapped (the stride-1 equivalence; all these layers have padding (k−1)/2, so the
 * padding stays the same), everything else is copied as is. This is the control arm of the
 * experiment: same function, transposed layers.
 *
 * @example
 * ```ts
 * const conv = DenseNet({ variant: "conv", seed: 1 });
 * const control = DenseNet({ variant: "transposed" });
 * copyConvWeightsToTransposed(conv, control);
 * ```
 */
export function copyConvWeightsToTransposed(
  conv: tf.LayersModel,
  transposed: tf.LayersModel,
): void {
  if (conv.layers.length !== transposed.layers.length) {
    throw new RangeError("the two models must be DenseNets of the same architecture");
  }
  conv.layers.forEach((src, i) => {
    const dst = transposed.layers[i];
    if (src.name !== dst.name) {
      throw new RangeError(
        `layer ${i} is "${src.name}" in one model and "${dst.name}" in the other`,
      );
    }
    const weights = src.getWeights();
    if (dst instanceof ConvTranspose2d) {
      if (!(src instanceof Conv2d)) throw new RangeError(`layer "${src.name}" is not a Conv2d`);
      const g = dst.geometry;
      if (
        g.stride.some((s) => s !== 1) || g.padding.some((p, j) => 2 * p !== g.kernelSize[j] - 1)
      ) {
        throw new RangeError(`layer "${dst.name}" is not a stride-1 'same' convolution`);
      }
      // Conv2d kernel [kh, kw, in, out] → ConvTranspose2d kernel [kh, kw, out, in], flipped.
      const kernel = flipKernel(weights[0] as tf.Tensor4D);
      dst.setWeights([kernel, ...weights.slice(1)]);
      kernel.dispose();
    } else {
      dst.setWeights(weights);
    }
  });
}

/**
 * The map, for the control arm of {@linkcode copyConvWeightsToTransposed}, from a transposed
 * DenseNet's weights to its conv twin's parameterisation, by weight name (`"lowconv/kernel"`):
 * `ConvTranspose2d` kernels are flipped in space with their channel axes swapped
 * ({@linkcode flipKernel}), everything else is returned as is. The map is a permutation of each
 * kernel's entries and its own inverse, so it takes gradients too: since the control computes
 * `f(flip(w))`, its gradient mapped through this map is the conv network's gradient at the same
 * point. A new tensor is returned only for a mapped kernel (dispose it when it is not `value`).
 *
 * @example
 * ```ts
 * const toConv = transposedToConv(control);
 * const g = toConv("denseblock1_conv1/kernel", controlGrad); // comparable with the conv arm's
 * ```
 */
export function transposedToConv(
  transposed: tf.LayersModel,
): (weight: string, value: tf.Tensor) => tf.Tensor {
  // A ConvTranspose2d's first weight is its kernel (the bias, when there is one, comes second).
  const kernels = new Set(
    transposed.layers.filter((l) => l instanceof ConvTranspose2d)
      .map((l) => l.trainableWeights[0].originalName),
  );
  return (weight, value) => kernels.has(weight) ? flipKernel(value as tf.Tensor4D) : value;
}
