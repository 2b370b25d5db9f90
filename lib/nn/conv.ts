/**
 * PyTorch-faithful `Conv2d` and `ConvTranspose2d` as tfjs Layers.
 *
 * **Data layout.** Activations are NHWC (`[batch, height, width, channels]`), tfjs's native
 * layout, so the layers compose with every other tfjs layer and kernel. Weights are stored in
 * tfjs's layout: `Conv2d` kernel `[kh, kw, in, out]`, `ConvTranspose2d` kernel `[kh, kw, out, in]`
 * (what `tf.conv2dTranspose` takes). {@linkcode loadTorchWeights} and {@linkcode torchWeights}
 * convert from and to PyTorch's layouts (`Conv2d` weight `[out, in, kh, kw]`, `ConvTranspose2d`
 * weight `[in, out, kh, kw]`, bias `[out]`).
 *
 * **Arguments** follow PyTorch: integer (symmetric) padding, stride, dilation, `outputPadding`
 * for the transposed layer, and `bias` (default true); each may be a number or `[height, width]`.
 * Output sizes follow {@linkcode convOutputSize} / {@linkcode convTransposeOutputSize} exactly,
 * including the combination of stride > 1 with dilation > 1 (which `tf.conv2d` refuses, so the
 * kernel is dilated explicitly there).
 *
 * **Pieces and a fused LeakyReLU.** Either layer takes one NHWC tensor or a list of them whose
 * channels add up to `inChannels`: the input is their concatenation along channels (as
 * torchvision's DenseNet layers take a list of features). `leakyRelu: { alpha, times }` applies
 * LeakyReLU `times` times after the bias. With the native kernels a stride-1 "same" layer runs
 * both inside oneDNN's convolutions (`lib/backend/native/conv_pieces.ts`, close to the tensor
 * path up to float32 rounding); elsewhere the layer computes `tf.concat` → convolution → bias →
 * `tf.leakyRelu`, bit for bit those ops.
 *
 * **Initialisation** is PyTorch's default: weight and bias uniform in ±1/√fan_in with fan_in from
 * the PyTorch-layout weight, see `init.ts`; with `init: "swapped"`, the counterpart layer's
 * default instead.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Conv2d, ConvTranspose2d } from "./conv.ts";
 * const up = new ConvTranspose2d({ inChannels: 1, outChannels: 1, kernelSize: 3, stride: 2, padding: 1 });
 * const y = up.apply(tf.randomNormal([1, 5, 5, 1])) as tf.Tensor; // shape [1, 9, 9, 1]
 * const fused = new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, leakyRelu: { alpha: 0.01, times: 2 } });
 * fused.apply([tf.zeros([1, 5, 5, 1]), tf.zeros([1, 5, 5, 2])]); // [1, 5, 5, 4]
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
// The backend's gradient code dilates filters the same way; one implementation serves both.
import { dilateFilter } from "../backend/mod.ts";
import { pair, type Size2 } from "./_pair.ts";
import { checkInt, checkOutputPadding, convOutputSize, convTransposeOutputSize } from "./shapes.ts";
import { type InitScheme, initShape, torchFanIn, torchUniform, torchUniformBound } from "./init.ts";
import {
  nativeConvPieces,
  nativeConvPiecesActive,
  nativeFlipFilter,
} from "../backend/native/conv_pieces.ts";

/** Constructor arguments of {@linkcode Conv2d}, PyTorch's names in camelCase. */
export interface Conv2dArgs {
  /** Channels of the input (last dimension, NHWC). */
  inChannels: number;
  /** Channels of the output. */
  outChannels: number;
  /** Kernel size, one number or `[kh, kw]`. */
  kernelSize: Size2;
  /** Stride (default 1). */
  stride?: Size2;
  /** Zero padding added on both sides of each spatial dimension (default 0). */
  padding?: Size2;
  /** Spacing between kernel elements (default 1). */
  dilation?: Size2;
  /** Whether to add a learnable bias (default true). */
  bias?: boolean;
  /** Seed for the default initialisation (weight uses `seed`, bias `seed + 1`); random if unset. */
  seed?: number;
  /**
   * PyTorch's default initialisation for this layer type (`"default"`), or for its counterpart
   * (`"swapped"`: fan_in taken from the other layer type's weight shape), see `init.ts`.
   */
  init?: InitScheme;
  /** Layer name (tfjs); unique by default. */
  name?: string;
  /**
   * A LeakyReLU fused into the layer, applied `times` times (default 1) after the bias:
   * `y = leaky(leaky(conv(x) + b))` for `times: 2`, the same values as separate
   * `tf.leakyRelu(·, alpha)` calls. With oneDNN (see `lib/backend/native/conv_pieces.ts`) it runs
   * inside the convolution; elsewhere it is those calls. Default: none.
   */
  leakyRelu?: FusedLeakyRelu;
}

/** The LeakyReLU a convolution layer applies to its output, see {@linkcode Conv2dArgs.leakyRelu}. */
export interface FusedLeakyRelu {
  /** Slope for negative inputs (≥ 0 keeps the native path; the DenseNet's is 0.01). */
  alpha: number;
  /** How many times it is applied (default 1). */
  times?: 1 | 2;
}

/** Constructor arguments of {@linkcode ConvTranspose2d}. */
export interface ConvTranspose2dArgs extends Conv2dArgs {
  /** Extra rows/columns added at the bottom/right of the output (default 0). */
  outputPadding?: Size2;
}

interface Geometry {
  inChannels: number;
  outChannels: number;
  kernelSize: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  bias: boolean;
  /** The fused LeakyReLU, normalised; undefined when none. */
  leakyRelu?: { alpha: number; times: 1 | 2 };
}

function fusedLeakyRelu(value: FusedLeakyRelu | undefined): Geometry["leakyRelu"] {
  if (value === undefined) return undefined;
  const { alpha, times = 1 } = value ?? {};
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) {
    throw new TypeError(`leakyRelu.alpha must be a finite number, got ${String(alpha)}`);
  }
  if (times !== 1 && times !== 2) {
    throw new RangeError(`leakyRelu.times must be 1 or 2, got ${String(times)}`);
  }
  return { alpha, times };
}

function geometry(args: Conv2dArgs): Geometry {
  if (args === null || typeof args !== "object") {
    throw new TypeError(
      "convolution arguments must be an object like { inChannels, outChannels, kernelSize }",
    );
  }
  if (args.bias !== undefined && typeof args.bias !== "boolean") {
    throw new TypeError(`bias must be true or false, got ${String(args.bias)}`);
  }
  return {
    inChannels: checkInt("inChannels", args.inChannels, 1),
    outChannels: checkInt("outChannels", args.outChannels, 1),
    kernelSize: pair("kernelSize", args.kernelSize, 1),
    stride: pair("stride", args.stride ?? 1, 1),
    padding: pair("padding", args.padding ?? 0, 0),
    dilation: pair("dilation", args.dilation ?? 1, 1),
    bias: args.bias ?? true,
    leakyRelu: fusedLeakyRelu(args.leakyRelu),
  };
}

/** The input's shapes as a list of pieces (one shape, or one per tensor of a list input). */
function pieceShapes(inputShape: tf.Shape | tf.Shape[]): tf.Shape[] {
  return (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as tf.Shape[];
}

/** Shared machinery of the two layers: weights, checks, config. */
abstract class ConvBase extends tf.layers.Layer {
  /** The layer's geometry, normalised to `[height, width]` pairs. */
  readonly geometry: Geometry;
  protected readonly seed?: number;
  /** The initialisation scheme (see {@linkcode Conv2dArgs.init}). */
  readonly init: InitScheme;
  protected kernel?: tf.LayerVariable;
  protected biasVariable?: tf.LayerVariable;

  constructor(args: Conv2dArgs) {
    super({ name: args?.name, trainable: true });
    this.geometry = geometry(args);
    this.seed = args.seed;
    this.init = args.init ?? "default";
    initShape([1, 1], this.init); // refuses an unknown scheme now, not at build time
  }

  /** PyTorch's weight shape for this layer. */
  abstract torchWeightShape(): [number, number, number, number];
  /** tfjs kernel shape for this layer. */
  protected abstract kernelShape(): [number, number, number, number];
  /** Output height and width for an input of `h × w`. */
  abstract outputSize(h: number, w: number): [number, number];

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    // Shape checks first, so a refused input creates no weights.
    this.computeOutputShape(inputShape);
    const bound = torchUniformBound(torchFanIn(initShape(this.torchWeightShape(), this.init)));
    this.kernel = this.addWeight(
      "kernel",
      this.kernelShape(),
      "float32",
      torchUniform(bound, this.seed),
    );
    if (this.geometry.bias) {
      this.biasVariable = this.addWeight(
        "bias",
        [this.geometry.outChannels],
        "float32",
        torchUniform(bound, this.seed === undefined ? undefined : this.seed + 1),
      );
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = this.checkInputShape(pieceShapes(inputShape));
    const [h, w] = [shape[1], shape[2]];
    const [oh, ow] = h == null || w == null ? [null, null] : this.outputSize(h, w);
    return [shape[0], oh, ow, this.geometry.outChannels];
  }

  /**
   * The shape of the input the pieces make together (their concatenation along channels), or an
   * error naming the layer and every piece's shape: each piece NHWC with the same batch, height
   * and width, their channels adding up to `inChannels`.
   */
  protected checkInputShape(pieces: tf.Shape[]): tf.Shape {
    const c = this.geometry.inChannels;
    const text = (shape: tf.Shape) => `[${shape.map((d) => d ?? "?").join(", ")}]`;
    if (pieces.length === 1) {
      const shape = pieces[0];
      if (shape.length !== 4 || (shape[3] != null && shape[3] !== c)) {
        throw new RangeError(
          `${this.getClassName()} "${this.name}" expects input of shape [batch, height, width, ${c}] ` +
            `(NHWC), got ${text(shape)}`,
        );
      }
      return shape;
    }
    const channels = pieces.map((s) => s[3]);
    const known = channels.every((k) => k != null);
    const sum = known ? channels.reduce((a, b) => a! + b!, 0) : null;
    const agree = (axis: number) =>
      new Set(pieces.map((s) => s[axis]).filter((d) => d != null)).size <= 1;
    if (
      pieces.length === 0 || pieces.some((s) => s.length !== 4) || ![0, 1, 2].every(agree) ||
      (sum !== null && sum !== c)
    ) {
      throw new RangeError(
        `${this.getClassName()} "${this.name}" expects NHWC pieces of the same batch, height and ` +
          `width whose channels add up to ${c}, got ${pieces.map(text).join(", ") || "none"}`,
      );
    }
    const first = (axis: number) => pieces.map((s) => s[axis]).find((d) => d != null) ?? null;
    return [first(0), first(1), first(2), c];
  }

  /** The input as a list of NHWC pieces, checked (see {@linkcode checkInputShape}). */
  protected pieces(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor4D[] {
    const pieces = (Array.isArray(inputs) ? inputs : [inputs]) as tf.Tensor4D[];
    this.checkInputShape(pieces.map((x) => x.shape));
    return pieces;
  }

  /** The concatenation of `pieces` along channels (the piece itself when there is one). */
  protected concatenated(pieces: tf.Tensor4D[]): tf.Tensor4D {
    return pieces.length === 1 ? pieces[0] : tf.concat(pieces, -1);
  }

  protected addBias(y: tf.Tensor4D): tf.Tensor4D {
    return this.biasVariable ? tf.add(y, this.biasVariable.read()) : y;
  }

  /** The fused LeakyReLU (see {@linkcode Conv2dArgs.leakyRelu}), applied as tfjs ops. */
  protected activate(y: tf.Tensor4D): tf.Tensor4D {
    const fused = this.geometry.leakyRelu;
    if (fused === undefined) return y;
    for (let i = 0; i < fused.times; i++) y = tf.leakyRelu(y, fused.alpha);
    return y;
  }

  /**
   * `conv(pieces)` (bias and LeakyReLU included) by the native op when it runs here: stride 1,
   * dilation 1, "same" padding, and pieces or a fused LeakyReLU to save; else undefined.
   * `filter` gives the convolution's `[kh, kw, in, out]` filter.
   */
  protected nativeCall(
    pieces: tf.Tensor4D[],
    filter: () => tf.Tensor4D,
  ): tf.Tensor4D | undefined {
    const g = this.geometry;
    const fused = g.leakyRelu;
    if (pieces.length === 1 && fused === undefined) return undefined;
    if (fused !== undefined && !(fused.alpha >= 0)) return undefined;
    const same = [0, 1].every((i) =>
      g.stride[i] === 1 && g.dilation[i] === 1 && 2 * g.padding[i] === g.kernelSize[i] - 1
    );
    if (!same || !pieces.every((p) => nativeConvPiecesActive(p))) return undefined;
    return nativeConvPieces(pieces, filter(), this.biasVariable?.read(), {
      padding: g.padding,
      leakyRelu: fused,
    }) as tf.Tensor4D;
  }

  override getConfig(): tf.serialization.ConfigDict {
    const g = this.geometry;
    return {
      ...super.getConfig(),
      inChannels: g.inChannels,
      outChannels: g.outChannels,
      kernelSize: g.kernelSize,
      stride: g.stride,
      padding: g.padding,
      dilation: g.dilation,
      bias: g.bias,
      init: this.init,
      ...(g.leakyRelu ? { leakyRelu: { ...g.leakyRelu } } : {}),
    };
  }
}

/**
 * 2-D convolution with PyTorch's `nn.Conv2d` semantics on NHWC tensors.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * const conv = new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 3, padding: 1 });
 * (conv.apply(tf.zeros([1, 5, 5, 1])) as tf.Tensor).shape; // [1, 5, 5, 1]
 * ```
 */
export class Conv2d extends ConvBase {
  /** tfjs serialization name. */
  static className = "Conv2d";

  /** `[out, in, kh, kw]`, PyTorch's `Conv2d.weight` shape. */
  torchWeightShape(): [number, number, number, number] {
    const g = this.geometry;
    return [g.outChannels, g.inChannels, ...g.kernelSize];
  }

  protected kernelShape(): [number, number, number, number] {
    const g = this.geometry;
    return [...g.kernelSize, g.inChannels, g.outChannels];
  }

  outputSize(h: number, w: number): [number, number] {
    const g = this.geometry;
    return [0, 1].map((i) =>
      convOutputSize([h, w][i], {
        kernelSize: g.kernelSize[i],
        stride: g.stride[i],
        padding: g.padding[i],
        dilation: g.dilation[i],
      })
    ) as [number, number];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const pieces = this.pieces(inputs);
      this.outputSize(pieces[0].shape[1], pieces[0].shape[2]); // PyTorch's checks and messages
      const native = this.nativeCall(pieces, () => this.kernel!.read() as tf.Tensor4D);
      if (native !== undefined) return native;
      const x = this.concatenated(pieces);
      const g = this.geometry;
      let kernel = this.kernel!.read() as tf.Tensor4D;
      let dilation = g.dilation;
      // tf.conv2d refuses stride > 1 together with dilation > 1; a dilated kernel is equivalent.
      if (g.stride.some((s) => s > 1) && g.dilation.some((d) => d > 1)) {
        kernel = dilateFilter(kernel, g.dilation);
        dilation = [1, 1];
      }
      const [ph, pw] = g.padding;
      const y = tf.conv2d(
        x,
        kernel,
        g.stride,
        [[0, 0], [ph, ph], [pw, pw], [0, 0]],
        "NHWC",
        dilation,
      );
      return this.activate(this.addBias(y));
    });
  }
}

/**
 * 2-D transposed convolution with PyTorch's `nn.ConvTranspose2d` semantics on NHWC tensors: the
 * gradient of a `Conv2d` with respect to its input, i.e. multiplication by the transposed
 * convolution matrix.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * const up = new ConvTranspose2d({ inChannels: 1, outChannels: 1, kernelSize: 3 });
 * (up.apply(tf.zeros([1, 5, 5, 1])) as tf.Tensor).shape; // [1, 7, 7, 1]
 * ```
 */
export class ConvTranspose2d extends ConvBase {
  /** tfjs serialization name. */
  static className = "ConvTranspose2d";
  /** Extra output rows/columns, `[height, width]`. */
  readonly outputPadding: [number, number];

  constructor(args: ConvTranspose2dArgs) {
    super(args);
    this.outputPadding = pair("outputPadding", args.outputPadding ?? 0, 0);
    // PyTorch refuses an output padding not smaller than stride or dilation at construction.
    this.outputPadding.forEach((op, i) =>
      checkOutputPadding(op, this.geometry.stride[i], this.geometry.dilation[i])
    );
  }

  /** `[in, out, kh, kw]`, PyTorch's `ConvTranspose2d.weight` shape. */
  torchWeightShape(): [number, number, number, number] {
    const g = this.geometry;
    return [g.inChannels, g.outChannels, ...g.kernelSize];
  }

  protected kernelShape(): [number, number, number, number] {
    const g = this.geometry;
    return [...g.kernelSize, g.outChannels, g.inChannels];
  }

  outputSize(h: number, w: number): [number, number] {
    const g = this.geometry;
    return [0, 1].map((i) =>
      convTransposeOutputSize([h, w][i], {
        kernelSize: g.kernelSize[i],
        stride: g.stride[i],
        padding: g.padding[i],
        dilation: g.dilation[i],
        outputPadding: this.outputPadding[i],
      })
    ) as [number, number];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const pieces = this.pieces(inputs);
      const g = this.geometry;
      const [oh, ow] = this.outputSize(pieces[0].shape[1], pieces[0].shape[2]);
      // At stride 1 a transposed convolution is the convolution with the flipped, channel-swapped
      // filter ("same" padding stays): the native op takes that, so that a conv layer and its
      // transposed twin with mapped weights (the control arm) compute the same bits.
      const flipped = () => nativeFlipFilter(this.kernel!.read() as tf.Tensor4D);
      if (this.outputPadding.every((p) => p === 0)) {
        const native = this.nativeCall(pieces, flipped);
        if (native !== undefined) return native;
      }
      const x = this.concatenated(pieces);
      let kernel = this.kernel!.read() as tf.Tensor4D;
      // tf.conv2dTranspose has no dilation argument; a dilated kernel is equivalent.
      if (g.dilation.some((d) => d > 1)) kernel = dilateFilter(kernel, g.dilation);
      const [ph, pw] = g.padding;
      const [oph, opw] = this.outputPadding;
      const n = x.shape[0];
      let y: tf.Tensor4D;
      if (oph < g.stride[0] && opw < g.stride[1]) {
        // Conv2DBackpropInput given PyTorch's output shape directly: output_padding rows are the
        // ones no input reaches beyond the last stride. Exact while outputPadding < stride.
        y = tf.conv2dTranspose(x, kernel, [n, oh, ow, g.outChannels], g.stride, [
          [0, 0],
          [ph, ph],
          [pw, pw],
          [0, 0],
        ] as unknown as number);
      } else {
        // outputPadding ≥ stride (allowed when dilation is larger): tfjs would read past its input,
        // so build the whole uncropped canvas, extend it by outputPadding, then crop padding.
        const [fh, fw] = [0, 1].map((i) =>
          (x.shape[i + 1] - 1) * g.stride[i] + g.dilation[i] * (g.kernelSize[i] - 1) + 1
        );
        const canvas = tf.conv2dTranspose(x, kernel, [n, fh, fw, g.outChannels], g.stride, 0);
        y = canvas.pad([[0, 0], [0, oph], [0, opw], [0, 0]])
          .slice([0, ph, pw, 0], [n, oh, ow, g.outChannels]) as tf.Tensor4D;
      }
      return this.activate(this.addBias(y));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), outputPadding: this.outputPadding };
  }
}

tf.serialization.registerClass(Conv2d);
tf.serialization.registerClass(ConvTranspose2d);

/** Weights in PyTorch's layout: `weight` and (when the layer has one) `bias`. */
export interface TorchConvWeights {
  /** `[out, in, kh, kw]` for `Conv2d`, `[in, out, kh, kw]` for `ConvTranspose2d`. */
  weight: tf.Tensor | tf.TensorLike;
  /** `[out]`. */
  bias?: tf.Tensor | tf.TensorLike;
}

function ensureBuilt(layer: Conv2d | ConvTranspose2d): void {
  if (!layer.built) layer.build([null, null, null, layer.geometry.inChannels]);
}

/**
 * Loads weights given in PyTorch's layout into a {@linkcode Conv2d} or {@linkcode ConvTranspose2d}
 * (building it if needed). Shapes are checked and a mismatch names the tensor and both shapes.
 *
 * @example
 * ```ts
 * const conv = new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 2, bias: false });
 * loadTorchWeights(conv, { weight: [[[[1, 2], [3, 4]]]] }); // torch shape [1, 1, 2, 2]
 * ```
 */
export function loadTorchWeights(layer: Conv2d | ConvTranspose2d, weights: TorchConvWeights): void {
  ensureBuilt(layer);
  const expected = layer.torchWeightShape();
  const tensors = tf.tidy(() => {
    const w = weights.weight instanceof tf.Tensor ? weights.weight : tf.tensor(weights.weight);
    if (w.shape.join() !== expected.join()) {
      throw new RangeError(
        `${layer.getClassName()} weight must have PyTorch shape [${expected.join(", ")}], ` +
          `got [${w.shape.join(", ")}]`,
      );
    }
    const out: tf.Tensor[] = [w.toFloat().transpose([2, 3, 1, 0])];
    const hasBias = layer.geometry.bias;
    if (hasBias !== (weights.bias !== undefined)) {
      throw new RangeError(
        hasBias
          ? `${layer.getClassName()} has a bias: weights.bias of shape [${layer.geometry.outChannels}] is required`
          : `${layer.getClassName()} was built with bias: false, but weights.bias was given`,
      );
    }
    if (weights.bias !== undefined) {
      const b = weights.bias instanceof tf.Tensor ? weights.bias : tf.tensor(weights.bias);
      if (b.shape.join() !== String(layer.geometry.outChannels)) {
        throw new RangeError(
          `${layer.getClassName()} bias must have shape [${layer.geometry.outChannels}], got [${
            b.shape.join(", ")
          }]`,
        );
      }
      out.push(b.toFloat());
    }
    return out;
  });
  layer.setWeights(tensors);
  tf.dispose(tensors);
}

/**
 * Returns a layer's weights in PyTorch's layout (new tensors; the caller disposes them).
 *
 * @example
 * ```ts
 * const { weight } = torchWeights(new ConvTranspose2d({ inChannels: 2, outChannels: 3, kernelSize: 3 }));
 * weight.shape; // [2, 3, 3, 3]
 * ```
 */
export function torchWeights(
  layer: Conv2d | ConvTranspose2d,
): { weight: tf.Tensor4D; bias?: tf.Tensor1D } {
  ensureBuilt(layer);
  const [kernel, bias] = layer.getWeights();
  return {
    weight: tf.tidy(() => kernel.transpose([3, 2, 0, 1]) as tf.Tensor4D),
    ...(bias ? { bias: bias.clone() as tf.Tensor1D } : {}),
  };
}
