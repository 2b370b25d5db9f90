/**
 * Stride-1 equivalence of the two layers: `ConvTranspose2d(k, stride 1, padding p, dilation d)`
 * computes exactly what `Conv2d(k, stride 1, padding d(k−1) − p, dilation d)` computes with the
 * kernel flipped in both spatial dimensions and its in/out channels swapped. A stride-1 transposed
 * network is therefore a re-parameterised convolutional network; only the default initialisation
 * differs (fan_in = out·k² instead of in·k²).
 *
 * @example
 * ```ts
 * import { ConvTranspose2d } from "./conv.ts";
 * import { convTransposeAsConv2d } from "./equivalence.ts";
 * const t = new ConvTranspose2d({ inChannels: 4, outChannels: 2, kernelSize: 3, padding: 1 });
 * const c = convTransposeAsConv2d(t); // Conv2d 4→2, k 3, padding 1, same outputs as t
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { Conv2d, ConvTranspose2d, loadTorchWeights, torchWeights } from "./conv.ts";
import { convMatrix, matVec, transpose } from "./conv_matrix.ts";

/**
 * Flips a kernel in height and width and swaps its channel axes (`[kh, kw, a, b]` →
 * `[kh, kw, b, a]`): maps a `Conv2d` kernel to the `ConvTranspose2d` kernel that computes the same
 * stride-1 function, and back (the map is its own inverse).
 *
 * @example
 * ```ts
 * flipKernel(tf.zeros([3, 3, 2, 5]) as tf.Tensor4D).shape; // [3, 3, 5, 2]
 * ```
 */
export function flipKernel(kernel: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.reverse(kernel, [0, 1]).transpose([0, 1, 3, 2]));
}

/**
 * Builds the {@linkcode Conv2d} that computes the same function as a stride-1
 * {@linkcode ConvTranspose2d}, with the flipped, channel-swapped kernel and the same bias. Refuses
 * stride ≠ 1, output padding ≠ 0, or padding larger than `d(k−1)` (no such convolution exists).
 *
 * @example
 * ```ts
 * const t = new ConvTranspose2d({ inChannels: 1, outChannels: 1, kernelSize: 3 });
 * convTransposeAsConv2d(t).geometry.padding; // [2, 2]
 * ```
 */
export function convTransposeAsConv2d(layer: ConvTranspose2d): Conv2d {
  const g = layer.geometry;
  if (g.stride.some((s) => s !== 1)) {
    throw new RangeError(
      `only stride 1 has an equivalent Conv2d, got stride [${g.stride.join(", ")}]`,
    );
  }
  if (layer.outputPadding.some((p) => p !== 0)) {
    throw new RangeError(`outputPadding must be 0, got [${layer.outputPadding.join(", ")}]`);
  }
  const padding = [0, 1].map((i) => g.dilation[i] * (g.kernelSize[i] - 1) - g.padding[i]);
  if (padding.some((p) => p < 0)) {
    throw new RangeError(
      `padding [${
        g.padding.join(", ")
      }] exceeds dilation·(kernelSize − 1); no Conv2d is equivalent`,
    );
  }
  const conv = new Conv2d({
    inChannels: g.inChannels,
    outChannels: g.outChannels,
    kernelSize: g.kernelSize,
    padding: padding as [number, number],
    dilation: g.dilation,
    bias: g.bias,
    leakyRelu: g.leakyRelu,
  });
  if (!layer.built) layer.build([null, null, null, g.inChannels]);
  conv.build([null, null, null, g.inChannels]);
  const [kernel, bias] = layer.getWeights();
  // Transposed kernel [kh, kw, out, in] → conv kernel [kh, kw, in, out], flipped in space.
  const flipped = flipKernel(kernel as tf.Tensor4D);
  conv.setWeights(bias ? [flipped, bias] : [flipped]);
  flipped.dispose();
  return conv;
}

/** How far a layer is from its convolution matrix (see {@linkcode layerMatrixGaps}). */
export interface LayerMatrixGap {
  /** What is compared, e.g. `Conv2d(x) vs C·vec(x)`. */
  operation: string;
  /** Input height and width. */
  from: [number, number];
  /** Output height and width. */
  to: [number, number];
  /** Largest absolute difference between the layer's outputs and the matrix product's. */
  maxAbsDiff: number;
}

/**
 * Checks the name "transposed convolution" on a single-channel, bias-free, stride-1 `conv` and
 * input `x` (`[1, h, w, 1]`): `conv(x)` against `C·vec(x)` with `C` its convolution matrix, and the
 * `ConvTranspose2d` with the same kernel and geometry, applied to `y = conv(x)`, against
 * `Cᵀ·vec(y)`. Leaves no tensors behind.
 *
 * @example
 * ```ts
 * const conv = new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 3, bias: false, seed: 0 });
 * layerMatrixGaps(conv, tf.randomNormal([1, 5, 5, 1]) as tf.Tensor4D)[1].maxAbsDiff; // ~1e-7
 * ```
 */
export function layerMatrixGaps(conv: Conv2d, x: tf.Tensor4D): LayerMatrixGap[] {
  const g = conv.geometry;
  const square = [g.kernelSize, g.padding, g.dilation].every(([a, b]) => a === b);
  if (
    g.inChannels !== 1 || g.outChannels !== 1 || g.bias || !square ||
    g.stride.some((s) => s !== 1) || x.shape[0] !== 1 || x.shape[3] !== 1
  ) {
    throw new RangeError(
      "layerMatrixGaps needs a bias-free, stride-1 Conv2d with one input and one output " +
        "channel, the same geometry in height and width, and one single-channel image; got " +
        `${g.inChannels}→${g.outChannels} channels, bias ${g.bias}, stride ` +
        `[${g.stride.join(", ")}], input [${x.shape.join(", ")}]`,
    );
  }
  const [h, w] = [x.shape[1], x.shape[2]];
  const weights = torchWeights(conv);
  const kernel = (weights.weight.arraySync() as number[][][][])[0][0];
  tf.dispose(Object.values(weights));
  const options = { padding: g.padding[0], dilation: g.dilation[0] };
  const { matrix: c, outH, outW } = convMatrix(kernel, h, w, options);
  const maxAbsDiff = (t: tf.Tensor, v: number[]) =>
    Math.max(...Array.from(t.dataSync()).map((a, i) => Math.abs(a - v[i])));
  const up = new ConvTranspose2d({
    inChannels: 1,
    outChannels: 1,
    kernelSize: g.kernelSize,
    padding: g.padding,
    dilation: g.dilation,
    bias: false,
  });
  const y = conv.apply(x) as tf.Tensor4D;
  loadTorchWeights(up, { weight: [[kernel]] }); // the same kernel, in PyTorch layout [in, out, kh, kw]
  const back = up.apply(y) as tf.Tensor4D;
  try {
    return [
      {
        operation: "Conv2d(x) vs C·vec(x)",
        from: [h, w],
        to: [outH, outW],
        maxAbsDiff: maxAbsDiff(y, matVec(c, Array.from(x.dataSync()))),
      },
      {
        operation: "ConvTranspose2d(y) vs Cᵀ·vec(y)",
        from: [outH, outW],
        to: [back.shape[1], back.shape[2]],
        maxAbsDiff: maxAbsDiff(back, matVec(transpose(c), Array.from(y.dataSync()))),
      },
    ];
  } finally {
    tf.dispose([y, back]);
    // Layer.dispose refuses a layer never called symbolically; its weights go directly.
    up.weights.forEach((w) => w.dispose());
  }
}
