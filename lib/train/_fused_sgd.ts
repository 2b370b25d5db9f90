/**
 * PyTorch's SGD update of one parameter as a single pass over tfjs-wasm's heap, in place of the
 * five or six tfjs kernels per parameter of `SGD.step`'s tensor path (each a pass over the
 * parameter plus an engine round trip: about 300 kernels a DenseNet step). A registered kernel,
 * so that `tf.profile` (and `deno task bench --profile`) shows it by name.
 *
 * Every operation is rounded to float32 (`Math.fround`) in the order of the tensor path, so the
 * two give the same bits: `d = g + fround(wd·p)`, `buf = fround(momentum·buf) + d` (`buf = d` at
 * the first step), `p = p − fround(lr·buf)`, with `lr`, `momentum` and `wd` rounded to float32 as
 * tfjs rounds scalar operands. (The product of two float32 values is exact in a double and a sum
 * rounded twice, to double then float32, equals the float32 sum, so the loop in doubles with
 * `fround` after each operation is float32 arithmetic.)
 *
 * @example
 * ```ts
 * import { fusedSgdActive, fusedSgdStep } from "./_fused_sgd.ts";
 * if (fusedSgdActive()) [p, buf] = fusedSgdStep(v, grad, prevBuf, { lr, momentum, weightDecay });
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { nativeKernels } from "../backend/mod.ts";
import type { WasmHeap } from "../backend/kernel_swap.ts";

/** The kernel's name in tfjs's registry (the wasm backend only). */
export const FUSED_SGD_KERNEL = "TconvSgdStep";

interface SgdAttrs {
  lr: number;
  momentum: number;
  weightDecay: number;
}

const fround = Math.fround;

/**
 * The update of one parameter: new values of `param` and (with momentum) of the momentum buffer,
 * from `grad` and the buffer `buf` (absent at the first step). Exported for the tests.
 *
 * @example
 * ```ts
 * sgdUpdate(p, g, undefined, outP, outBuf, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
 * ```
 */
export function sgdUpdate(
  param: Float32Array,
  grad: Float32Array,
  buf: Float32Array | undefined,
  outParam: Float32Array,
  outBuf: Float32Array | undefined,
  attrs: SgdAttrs,
): void {
  const lr = fround(attrs.lr), momentum = fround(attrs.momentum), wd = fround(attrs.weightDecay);
  const decay = attrs.weightDecay > 0;
  const n = param.length;
  if (outBuf === undefined) {
    for (let i = 0; i < n; i++) {
      const p = param[i];
      const d = decay ? fround(grad[i] + fround(p * wd)) : grad[i];
      outParam[i] = fround(p - fround(d * lr));
    }
  } else if (buf === undefined) {
    for (let i = 0; i < n; i++) {
      const p = param[i];
      const d = decay ? fround(grad[i] + fround(p * wd)) : grad[i];
      outBuf[i] = d;
      outParam[i] = fround(p - fround(d * lr));
    }
  } else {
    for (let i = 0; i < n; i++) {
      const p = param[i];
      const d = decay ? fround(grad[i] + fround(p * wd)) : grad[i];
      const b = fround(fround(buf[i] * momentum) + d);
      outBuf[i] = b;
      outParam[i] = fround(p - fround(b * lr));
    }
  }
}

/** The kernel: inputs `param`, `grad` and optionally `buf`; outputs the new param (and buffer). */
const sgdKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { param, grad, buf } = inputs as Record<string, tf.TensorInfo | undefined>;
  const a = attrs as unknown as SgdAttrs;
  const heap = backend as unknown as WasmHeap;
  const shape = param!.shape;
  const outParam = heap.makeOutput(shape, "float32");
  const outBuf = a.momentum > 0 ? heap.makeOutput(shape, "float32") : undefined;
  // Views after both allocations, which may grow (and so detach) the heap.
  const view = (t: tf.TensorInfo) => heap.typedArrayFromHeap(t) as Float32Array;
  sgdUpdate(
    view(param!),
    view(grad!),
    buf === undefined ? undefined : view(buf),
    view(outParam),
    outBuf === undefined ? undefined : view(outBuf),
    a,
  );
  return outBuf === undefined ? [outParam] : [outParam, outBuf];
};

tf.registerKernel({ kernelName: FUSED_SGD_KERNEL, backendName: "wasm", kernelFunc: sgdKernel });

/**
 * Whether {@linkcode fusedSgdStep} runs: on the wasm backend while the native kernels are active
 * (the switch of `TCONV_NATIVE`), so that `native = "off"` keeps the tensor path.
 *
 * @example
 * ```ts
 * fusedSgdActive(); // true on wasm + oneDNN
 * ```
 */
export function fusedSgdActive(): boolean {
  return tf.getBackend() === "wasm" && nativeKernels().active;
}

/**
 * One parameter's update in one pass: the new parameter values (a new tensor, to assign) and,
 * with momentum, the new momentum buffer (a new tensor; `buf` is left as it is).
 *
 * @example
 * ```ts
 * const [next, nextBuf] = fusedSgdStep(v, grad, buf, { lr: 0.01, momentum: 0.9, weightDecay: 0 });
 * ```
 */
export function fusedSgdStep(
  param: tf.Tensor,
  grad: tf.Tensor,
  buf: tf.Tensor | undefined,
  attrs: SgdAttrs,
): [tf.Tensor, tf.Tensor | undefined] {
  for (const [name, t] of [["param", param], ["grad", grad], ["buf", buf]] as const) {
    if (t !== undefined && t.dtype !== "float32") {
      throw new TypeError(`fused SGD needs float32 tensors, got ${name} of dtype ${t.dtype}`);
    }
  }
  if (grad.size !== param.size || (buf !== undefined && buf.size !== param.size)) {
    throw new RangeError(
      `fused SGD: grad [${grad.shape}] and buffer [${buf?.shape ?? ""}] must have the ` +
        `parameter's shape [${param.shape}]`,
    );
  }
  const inputs: tf.NamedTensorMap = buf === undefined ? { param, grad } : { param, grad, buf };
  const out = tf.engine().runKernel(
    FUSED_SGD_KERNEL,
    inputs,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  return [out[0], out[1]];
}
