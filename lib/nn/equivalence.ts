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
import { Conv2d, ConvTranspose2d } from "./conv.ts";

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
