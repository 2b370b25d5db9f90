/**
 * Batch normalisation of NHWC tensors as one native op each way, for `BatchNorm2d` (lib/nn) on
 * the wasm backend while the native kernels run: oneDNN's batch normalization primitive computes
 * the training forward pass (normalised output, batch mean and biased variance in one call), its
 * backward pass (input, `γ` and `β` gradients in one call) and the inference pass, where the
 * tensor path takes about fifteen tfjs kernels and as many passes over the activation.
 * {@linkcode nativeBatchNormActive} says when; elsewhere `BatchNorm2d` keeps its tfjs ops.
 *
 * The kernels (`_batch_norm.ts`) are registered for the wasm backend only while the native
 * kernels are installed (`./mod.ts`), so `TCONV_NATIVE=off`, a machine without libdnnl2 or
 * `disableNativeKernels()` leave {@linkcode nativeBatchNormActive} false.
 *
 * @example
 * ```ts
 * import { nativeBatchNormActive, nativeBatchNormTraining } from "./batch_norm.ts";
 * if (nativeBatchNormActive(x)) {
 *   const y = nativeBatchNormTraining(x, gamma, beta, 1e-5, (mean, variance) => {});
 * }
 * ```
 * @module
 */
import { tf } from "../tf.ts";

/** Kernel: inputs `x` (NHWC), `scale`, `offset` (`[C]`); attr `eps`; outputs y, mean, variance. */
export const BATCH_NORM_TRAINING_KERNEL = "TconvBatchNormTraining";
/** Kernel: inputs `x`, `scale`, `offset`, `mean`, `variance`; attr `eps`; output y. */
export const BATCH_NORM_INFERENCE_KERNEL = "TconvBatchNormInference";
/** Kernel: inputs `x`, `mean`, `variance`, `scale`, `dy`; attr `eps`; outputs dx, dscale, doffset. */
export const BATCH_NORM_GRAD_KERNEL = "TconvBatchNormGrad";
/**
 * Kernel (JavaScript, wasm backend): inputs `runningMean`, `runningVar`, `mean`, `variance`;
 * attrs `momentum`, `count`; outputs the new running mean and variance.
 */
export const RUNNING_AVERAGES_KERNEL = "TconvBatchNormRunningAverages";

/**
 * Whether the native batch normalisation runs for `x`: a float32 NHWC tensor on the wasm backend
 * while the native kernels are installed.
 *
 * @example
 * ```ts
 * nativeBatchNormActive(tf.zeros([2, 4, 4, 3])); // true on wasm + oneDNN
 * ```
 */
export function nativeBatchNormActive(x: tf.Tensor): boolean {
  return x.rank === 4 && x.dtype === "float32" && tf.getBackend() === "wasm" &&
    tf.getKernel(BATCH_NORM_TRAINING_KERNEL, "wasm") !== undefined;
}

/**
 * A training-mode batch normalisation of NHWC `x` with scale `gamma` and shift `beta`: the
 * contract this module's native one and `lib/nn`'s tfjs one share, so that a layer takes either.
 * `onMoments` gets the batch mean and biased variance (`[C]`, disposed afterwards) outside the
 * gradient tape, for running averages.
 *
 * @example
 * ```ts
 * const normalise: BatchNormTraining = nativeBatchNormTraining;
 * ```
 */
export type BatchNormTraining = (
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
  onMoments: (mean: tf.Tensor, variance: tf.Tensor) => void,
) => tf.Tensor;

/**
 * Training-mode batch normalisation over batch, height and width, `y = γ·(x − mean)/√(var + eps) +
 * β` with the batch mean and biased variance, and its gradient for `x`, `gamma` and `beta` (one
 * oneDNN call each way). `onMoments` gets the batch mean and biased variance (`[C]`, disposed
 * afterwards) outside the gradient tape, for running averages.
 *
 * @example
 * ```ts
 * const y = nativeBatchNormTraining(x, gamma, beta, 1e-5, (mean, variance) => { ... });
 * ```
 */
export const nativeBatchNormTraining: BatchNormTraining = (x, gamma, beta, eps, onMoments) => {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, variance] = tf.engine().runKernel(
      BATCH_NORM_TRAINING_KERNEL,
      { x: xIn, scale: g, offset: b },
      { eps },
    ) as tf.Tensor[];
    onMoments(mean, variance);
    save([xIn, mean, variance, g, b]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, mu, v, gs, bs] = saved;
        return tf.engine().runKernel(
          BATCH_NORM_GRAD_KERNEL,
          { x: xs, mean: mu, variance: v, scale: gs, offset: bs, dy },
          { eps },
        ) as tf.Tensor[];
      },
    };
  });
  return f(x, gamma, beta);
};

/**
 * Inference-mode batch normalisation with given statistics, `y = γ·(x − mean)/√(var + eps) + β`,
 * in one oneDNN call. Its gradient (for `x`, `gamma` and `beta`, by tfjs ops) is registered too.
 *
 * @example
 * ```ts
 * const y = nativeBatchNormInference(x, gamma, beta, runningMean, runningVar, 1e-5);
 * ```
 */
export function nativeBatchNormInference(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  eps: number,
): tf.Tensor {
  return tf.engine().runKernel(
    BATCH_NORM_INFERENCE_KERNEL,
    { x, scale: gamma, offset: beta, mean, variance },
    { eps },
  ) as tf.Tensor;
}

/**
 * PyTorch's running averages after a training batch, in one pass over the `[C]` vectors where the
 * tensor path takes seven kernels: `(1 − m)·running + m·mean` and `(1 − m)·running + m·unbiased`
 * with `unbiased = n/(n − 1)·variance` (the biased variance when `count` is 1), each operation
 * rounded to float32 in the tensor path's order (`running·(1 − m) + mean·m`, scalars rounded to
 * float32), so the two give the same bits. Returns new tensors.
 *
 * @example
 * ```ts
 * const [mean2, var2] = runningAverages(runningMean, runningVar, mean, variance, 0.1, 64 * 32 * 32);
 * ```
 */
export function runningAverages(
  runningMean: tf.Tensor,
  runningVar: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  momentum: number,
  count: number,
): [tf.Tensor, tf.Tensor] {
  return tf.engine().runKernel(
    RUNNING_AVERAGES_KERNEL,
    { runningMean, runningVar, mean, variance },
    { momentum, count },
  ) as [tf.Tensor, tf.Tensor];
}

/** The part of tfjs-wasm's `BackendWasm` the running-averages kernel uses. */
interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

tf.registerKernel({
  kernelName: RUNNING_AVERAGES_KERNEL,
  backendName: "wasm",
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { runningMean, runningVar, mean, variance } = inputs as Record<string, tf.TensorInfo>;
    const { momentum, count } = attrs as unknown as { momentum: number; count: number };
    const heap = backend as unknown as WasmHeap;
    const outs = [heap.makeOutput(mean.shape, "float32"), heap.makeOutput(mean.shape, "float32")];
    // Views after the allocations, which may grow (and so detach) the heap.
    const [rm, rv, mu, v, newMean, newVar] = [runningMean, runningVar, mean, variance, ...outs]
      .map((t) => heap.typedArrayFromHeap(t) as Float32Array);
    const f = Math.fround;
    const keep = f(1 - momentum), m = f(momentum), unbias = f(count / (count - 1));
    for (let c = 0; c < mu.length; c++) {
      newMean[c] = f(f(rm[c] * keep) + f(mu[c] * m));
      const unbiased = count > 1 ? f(v[c] * unbias) : v[c];
      newVar[c] = f(f(rv[c] * keep) + f(unbiased * m));
    }
    return outs;
  },
});

tf.registerGradient({
  kernelName: BATCH_NORM_INFERENCE_KERNEL,
  inputsToSave: ["x", "scale", "mean", "variance"],
  gradFunc: (dy, saved, attrs) => {
    const [x, scale, mean, variance] = saved;
    const d = dy as tf.Tensor;
    const invStd = tf.rsqrt(tf.add(variance, (attrs as unknown as { eps: number }).eps));
    const axes = [0, 1, 2];
    return {
      x: () => tf.mul(d, tf.mul(scale, invStd)),
      scale: () => tf.sum(tf.mul(d, tf.mul(tf.sub(x, mean), invStd)), axes),
      offset: () => tf.sum(d, axes),
    };
  },
});
