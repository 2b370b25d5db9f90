/**
 * A `Conv2D` gradient that also handles dilation, and {@linkcode dilateFilter}, which `lib/nn`'s
 * layers use to express stride and dilation together. tfjs's own gradient refuses dilation rates
 * above 1 ("not yet supported in gradients"); this one keeps tfjs's gradient unchanged for
 * dilation 1 and, for dilation > 1, either passes `dilations` to the backprop kernels (when the
 * backend runs this project's kernels, which accept it) or, on any other backend, dilates the
 * filter explicitly, runs the ordinary backprop kernels, and keeps every `d`-th filter tap.
 *
 * @example
 * ```ts
 * import { tf } from "./tf.ts";
 * import { conv2DGradWithDilation } from "./conv_grad.ts";
 * tf.registerGradient(conv2DGradWithDilation(tf.getGradient("Conv2D")));
 * ```
 * @module
 */
import { tf } from "./tf.ts";

type Pair = [number, number];
type Shape4 = [number, number, number, number];

/**
 * Backprop kernels that accept a `dilations` attribute (tfjs's own do not); the wasm and native
 * rooms declare theirs with {@linkcode acceptDilations} when they install them.
 */
const TAKES_DILATIONS = new Set<tf.KernelFunc>();

/**
 * Declares that `kernelFunc`, a `Conv2DBackpropInput` or `Conv2DBackpropFilter` kernel, accepts a
 * `dilations` attribute, so that {@linkcode conv2DGradWithDilation} passes it instead of dilating
 * the filter.
 *
 * @example
 * ```ts
 * acceptDilations(myBackpropInputKernel);
 * ```
 */
export function acceptDilations(kernelFunc: tf.KernelFunc): void {
  TAKES_DILATIONS.add(kernelFunc);
}

function backendTakesDilations(): boolean {
  const name = tf.getBackend();
  return [tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter].every((kernel) => {
    const func = tf.getKernel(kernel, name)?.kernelFunc;
    return func !== undefined && TAKES_DILATIONS.has(func);
  });
}

/**
 * Inserts `d − 1` zeros between the taps of a `[kh, kw, in, out]` filter.
 *
 * @example
 * ```ts
 * dilateFilter(tf.ones([2, 2, 1, 1]), [2, 2]).shape; // [3, 3, 1, 1]
 * ```
 */
export function dilateFilter(filter: tf.Tensor4D, [dh, dw]: Pair): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, ci, co] = filter.shape;
    return filter.reshape([kh, 1, kw, 1, ci, co])
      .pad([[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]])
      .reshape([kh * dh, kw * dw, ci, co])
      .slice([0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, ci, co]) as tf.Tensor4D;
  });
}

/**
 * Wraps tfjs's `Conv2D` gradient so that dilation rates above 1 are differentiated too.
 *
 * @example
 * ```ts
 * const original = tf.getGradient("Conv2D");
 * tf.registerGradient(conv2DGradWithDilation(original));
 * ```
 */
export function conv2DGradWithDilation(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.Conv2D,
    inputsToSave: ["x", "filter"],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as tf.Conv2DAttrs;
      const d = a.dilations ?? 1;
      const dilations: Pair = typeof d === "number" ? [d, d] : d;
      if (dilations[0] === 1 && dilations[1] === 1) return original.gradFunc(dy, saved, attrs);
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const g = dy as tf.Tensor4D;
      const common = {
        strides: a.strides,
        pad: a.pad,
        dataFormat: a.dataFormat,
        dimRoundingMode: a.dimRoundingMode,
      };
      const run = (name: string, inputs: tf.NamedTensorMap, extra: object) =>
        tf.engine().runKernel(
          name,
          inputs,
          { ...common, ...extra } as tf.NamedAttrMap,
        ) as tf.Tensor4D;
      if (backendTakesDilations()) {
        return {
          x: () =>
            run("Conv2DBackpropInput", { dy: g, filter }, { inputShape: x.shape, dilations }),
          filter: () =>
            run("Conv2DBackpropFilter", { x, dy: g }, { filterShape: filter.shape, dilations }),
        };
      }
      return {
        x: () =>
          tf.tidy(() =>
            run("Conv2DBackpropInput", { dy: g, filter: dilateFilter(filter, dilations) }, {
              inputShape: x.shape,
            })
          ),
        filter: () =>
          tf.tidy(() => {
            const [kh, kw, ci, co] = filter.shape as Shape4;
            const [dh, dw] = dilations;
            const full = run("Conv2DBackpropFilter", { x, dy: g }, {
              filterShape: [(kh - 1) * dh + 1, (kw - 1) * dw + 1, ci, co],
            });
            return tf.stridedSlice(full, [0, 0, 0, 0], full.shape, [dh, dw, 1, 1]);
          }),
      };
    },
  };
}
