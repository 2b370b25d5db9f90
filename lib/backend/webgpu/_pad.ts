/**
 * A `PadV2` kernel for tfjs's WebGPU backend that also pads tensors of rank 5 and 6.
 *
 * tfjs-backend-webgpu 4.22's pad shader only spells out four coordinates (`coords[0]` …
 * `coords[3]`) and compares coordinates with `any(…)`, which WGSL has no form of for the structs
 * it uses for rank 5 and 6: the shader does not compile, WebGPU reports that only as an
 * asynchronous validation error, tfjs does not look, and every command recorded in the same
 * submission is dropped. Measured here: `tf.pad` of a rank-6 tensor returned all zeros, and so did
 * unrelated kernels batched with it. `dilateFilter` (lib/backend/conv_grad.ts) pads a rank-6
 * view of the filter, so every convolution with dilation > 1 on WebGPU (the strided `Conv2d`, every
 * `ConvTranspose2d`, and the `Conv2D` gradient) came out wrong.
 *
 * This kernel keeps tfjs's for rank ≤ 4 and, above that, pads one axis at a time on a rank-3 view
 * `[before, axis, after]` of the tensor, with tfjs's own kernel: the same values, one pass per
 * padded axis.
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { padAnyRank } from "./_pad.ts";
 * const stock = tf.getKernel("PadV2", "webgpu")!;
 * tf.unregisterKernel("PadV2", "webgpu");
 * tf.registerKernel({ ...stock, kernelFunc: padAnyRank(stock.kernelFunc) });
 * ```
 * @module
 */
import { tf } from "../tf.ts";

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Wraps the stock WebGPU `PadV2` kernel function so that ranks above 4 are padded correctly.
 *
 * @example
 * ```ts
 * const fixed = padAnyRank(tf.getKernel("PadV2", "webgpu")!.kernelFunc);
 * ```
 */
export function padAnyRank(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.shape.length <= 4) return stock(args);
    const { paddings, constantValue } = args.attrs as unknown as tf.PadV2Attrs;
    const backend = args.backend as tf.KernelBackend;
    const reshape = (t: tf.TensorInfo, shape: number[]) =>
      tf.getKernel(tf.Reshape, "webgpu")!.kernelFunc({
        inputs: { x: t },
        backend,
        attrs: { shape },
      }) as tf.TensorInfo;
    const made: tf.TensorInfo[] = [];
    const shape = [...x.shape];
    let current = x;
    paddings.forEach(([before, after], axis) => {
      if (before === 0 && after === 0) return;
      const view = reshape(current, [
        product(shape.slice(0, axis)),
        shape[axis],
        product(shape.slice(axis + 1)),
      ]);
      const padded = stock({
        inputs: { x: view },
        backend,
        attrs: { paddings: [[0, 0], [before, after], [0, 0]], constantValue },
      }) as tf.TensorInfo;
      made.push(view, padded);
      shape[axis] += before + after;
      current = padded;
    });
    const out = reshape(current, shape);
    // Reshapes are views: disposing the intermediates only drops their references.
    for (const t of made) backend.disposeData(t.dataId);
    return out;
  };
}
