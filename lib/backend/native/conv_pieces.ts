/**
 * A stride-1 "same" convolution of a list of NHWC pieces (their implicit concatenation along
 * channels) with its bias and LeakyReLU, as one native op each way, for `Conv2d` and
 * `ConvTranspose2d` (lib/nn) on the wasm backend while the native kernels run: the DenseNet's
 * blocks without their `Concat`, `SplitV`, bias `Add` and `LeakyRelu` passes.
 *
 * Forward ({@linkcode CONV_PIECES_KERNEL}, `_conv_pieces.ts`): one oneDNN convolution per piece
 * into the same output, with the filter's input-channel slice of that piece; the first adds the
 * bias, each later one adds its result to what is there (a `sum` post-op), and the last applies
 * LeakyReLU once or twice (`eltwise_relu` post-ops with the slope). Backward: the LeakyReLU
 * gradient from the output in one kernel (`y > 0` exactly where the convolution's output is, for
 * a slope ≥ 0, and tfjs's gradient is `dy` there and `dy·α` elsewhere, so `(dy·α)·α` from `y`
 * gives the bits of two separate gradients), the bias gradient by one sum, and per piece its own
 * input gradient by the convolution kernels (no split of the input gradient), and its slice of
 * the filter gradient written in place into one output ({@linkcode CONV_PIECES_FILTER_GRAD_KERNEL}:
 * no concatenation of the pieces, nor of the slices).
 *
 * The kernel is registered for the wasm backend only while the native kernels are installed
 * (`./mod.ts`), so `TCONV_NATIVE=off`, a machine without libdnnl2 or `disableNativeKernels()`
 * leave {@linkcode nativeConvPiecesActive} false, and the layers keep their tfjs ops.
 *
 * @example
 * ```ts
 * import { nativeConvPieces, nativeConvPiecesActive } from "./conv_pieces.ts";
 * if (pieces.every(nativeConvPiecesActive)) {
 *   const y = nativeConvPieces(pieces, filter, bias, { padding: [1, 1], leakyRelu: { alpha: 0.01, times: 2 } });
 * }
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { LEAKY_RELU_GRAD_KERNEL } from "./_eltwise.ts";

/**
 * Kernel: inputs `x0` … `x{k−1}` (NHWC pieces), `filter` (`[kh, kw, Σ channels, out]`) and
 * optionally `bias` (`[out]`); attrs `padding` (`[ph, pw]`), `alpha` and `times` (0 for no
 * LeakyReLU); output `[n, h, w, out]`.
 */
export const CONV_PIECES_KERNEL = "TconvConvPieces";

/**
 * Kernel: inputs `x0` … `x{k−1}` (NHWC pieces) and `dy` (`[n, h, w, out]`); attrs `padding`
 * (`[ph, pw]`, "same") and `kernelSize` (`[kh, kw]`); output the filter gradient
 * `[kh, kw, Σ channels, out]`, each piece's slice written in place by its own backward-weights
 * convolution (the bits of `Conv2DBackpropFilter` per piece joined by `Concat`).
 */
export const CONV_PIECES_FILTER_GRAD_KERNEL = "TconvConvPiecesFilterGrad";

/**
 * Kernel: input `x`, a filter `[kh, kw, a, b]`; output `[kh, kw, b, a]`, flipped in height and
 * width with its channel axes swapped (`flipKernel` of lib/nn/equivalence.ts, in one pass). Its
 * own gradient, as the map is a permutation that is its own inverse.
 */
export const FLIP_FILTER_KERNEL = "TconvFlipFilter";

/**
 * `x` (`[kh, kw, a, b]`) flipped in height and width with its channel axes swapped: the filter of
 * the convolution that a stride-1 transposed convolution with filter `x` is, in one kernel (the
 * tfjs ops, `reverse` then `transpose`, took ≈ 1 ms per DenseNet filter on wasm). Exact, and
 * differentiable (the gradient is the same map). Only while {@linkcode nativeConvPiecesActive}.
 *
 * @example
 * ```ts
 * nativeFlipFilter(tf.zeros([3, 3, 32, 64])).shape; // [3, 3, 64, 32]
 * ```
 */
export function nativeFlipFilter(x: tf.Tensor4D): tf.Tensor4D {
  return tf.engine().runKernel(FLIP_FILTER_KERNEL, { x }) as tf.Tensor4D;
}

tf.registerGradient({
  kernelName: FLIP_FILTER_KERNEL,
  gradFunc: (dy) => ({ x: () => nativeFlipFilter(dy as tf.Tensor4D) }),
});

/**
 * Whether the native op runs for piece `x`: a float32 NHWC tensor with channels on the wasm
 * backend while the native kernels (the op's and the LeakyReLU gradient's) are installed.
 *
 * @example
 * ```ts
 * nativeConvPiecesActive(tf.zeros([2, 4, 4, 3])); // true on wasm + oneDNN
 * ```
 */
export function nativeConvPiecesActive(x: tf.Tensor): boolean {
  // The gradient also runs the eltwise family's LeakyReLU gradient, which is made apart.
  return x.rank === 4 && x.dtype === "float32" && x.shape[3]! > 0 && tf.getBackend() === "wasm" &&
    tf.getKernel(CONV_PIECES_KERNEL, "wasm") !== undefined &&
    tf.getKernel(LEAKY_RELU_GRAD_KERNEL, "wasm") !== undefined;
}

/** Options of {@linkcode nativeConvPieces}. */
export interface ConvPiecesOptions {
  /** Zero padding `[ph, pw]`, "same" for the filter: `2·p = k − 1`. */
  padding: [number, number];
  /** LeakyReLU applied `times` times after the bias (slope `alpha` ≥ 0); none when absent. */
  leakyRelu?: { alpha: number; times: 1 | 2 };
}

/**
 * `leaky^times(conv(concat(pieces, −1), filter) + bias)` at stride 1 with "same" `padding`, and
 * its gradient for every piece, the filter and the bias (see the module doc). `filter` is
 * `[kh, kw, in, out]` with `in` the pieces' channels together.
 *
 * @example
 * ```ts
 * const y = nativeConvPieces([a, b], filter, bias, { padding: [1, 1], leakyRelu: { alpha: 0.01, times: 1 } });
 * ```
 */
export function nativeConvPieces(
  pieces: tf.Tensor4D[],
  filter: tf.Tensor4D,
  bias: tf.Tensor | undefined,
  options: ConvPiecesOptions,
): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  const channels = pieces.map((p) => p.shape[3]);
  if (channels.reduce((a, b) => a + b, 0) !== ci) {
    throw new RangeError(
      `nativeConvPieces: the pieces' channels (${channels.join(" + ")}) must add up to the ` +
        `filter's input channels, ${ci} (filter [${filter.shape.join(", ")}])`,
    );
  }
  const [ph, pw] = options.padding;
  if (2 * ph !== kh - 1 || 2 * pw !== kw - 1) {
    throw new RangeError(
      `nativeConvPieces: padding [${ph}, ${pw}] is not "same" for a ${kh}×${kw} filter`,
    );
  }
  const alpha = options.leakyRelu?.alpha ?? 0, times = options.leakyRelu?.times ?? 0;
  // The gradient reads LeakyReLU's mask from the output, right only for a slope ≥ 0.
  if (!(Number.isFinite(alpha) && alpha >= 0)) {
    throw new RangeError(`nativeConvPieces: leakyRelu.alpha must be finite and ≥ 0, got ${alpha}`);
  }
  if (times !== 0 && times !== 1 && times !== 2) {
    throw new RangeError(`nativeConvPieces: leakyRelu.times must be 1 or 2, got ${times}`);
  }
  const empty = pieces.find((p) => p.shape[3] === 0);
  if (empty !== undefined) {
    throw new RangeError(
      `nativeConvPieces: a piece has no channels ([${empty.shape.join(", ")}]); oneDNN ` +
        `takes none`,
    );
  }
  const attrs = { padding: [ph, pw], alpha, times };
  const k = pieces.length;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const named: tf.NamedTensorMap = { filter: inputs[k] };
    inputs.slice(0, k).forEach((p, j) => named[`x${j}`] = p);
    if (bias !== undefined) named.bias = inputs[k + 1];
    const y = tf.engine().runKernel(CONV_PIECES_KERNEL, named, attrs) as tf.Tensor4D;
    save([y, inputs[k], ...inputs.slice(0, k)]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [out, w, ...xs] = saved as tf.Tensor4D[];
          // LeakyReLU's gradient from the output: its sign is the convolution output's (α ≥ 0).
          const dz = times === 0 ? dy : tf.engine().runKernel(
            LEAKY_RELU_GRAD_KERNEL,
            { dy, x: out },
            { alpha, times },
          ) as tf.Tensor4D;
          const conv = {
            strides: [1, 1],
            pad: [[0, 0], [ph, ph], [pw, pw], [0, 0]],
            dataFormat: "NHWC",
          } as unknown as tf.NamedAttrMap;
          let at = 0;
          const dxs = xs.map((x) => {
            const c = x.shape[3];
            const wj = k === 1 ? w : tf.slice(w, [0, 0, at, 0], [kh, kw, c, co]);
            at += c;
            return tf.engine().runKernel(
              tf.Conv2DBackpropInput,
              { dy: dz, filter: wj },
              { ...conv, inputShape: x.shape } as unknown as tf.NamedAttrMap,
            ) as tf.Tensor;
          });
          // Each piece's slice of the filter gradient, written in place into one output: no
          // concatenation of the pieces, nor of the slices. Measured in one process, alternating
          // step by step, against one backward-weights convolution over their concatenation:
          // 0.98–0.99× the step (medians of 8–10 steps, both networks; slices then joined by Concat).
          const named: tf.NamedTensorMap = { dy: dz };
          xs.forEach((x, j) => named[`x${j}`] = x);
          const dw = k === 1
            ? tf.engine().runKernel(
              tf.Conv2DBackpropFilter,
              { x: xs[0], dy: dz },
              { ...conv, filterShape: [kh, kw, ci, co] } as unknown as tf.NamedAttrMap,
            ) as tf.Tensor
            : tf.engine().runKernel(CONV_PIECES_FILTER_GRAD_KERNEL, named, {
              padding: [ph, pw],
              kernelSize: [kh, kw],
            }) as tf.Tensor;
          return bias === undefined ? [...dxs, dw] : [...dxs, dw, tf.sum(dz, [0, 1, 2])];
        }),
    };
  });
  const inputs = bias === undefined ? [...pieces, filter] : [...pieces, filter, bias];
  return f(...inputs) as tf.Tensor4D;
}
