/**
 * Faster replacements for tfjs-wasm kernels that dominate a DenseNet training step once the
 * convolutions are fast, and two gradients that avoid slow kernels. Every replacement computes
 * the same values as the kernel or gradient it replaces, bit for bit (see each function's doc for
 * the one documented exception, NaN activations in the LeakyReLU gradient):
 *
 * - data movement (`Slice`, `SplitV`, `Concat`) copies contiguous runs between views of the wasm
 *   heap, where tfjs-wasm copies the whole input first (`Slice`, once per output of `SplitV`) and
 *   then moves each run through a new `subarray`;
 * - `Identity` shares its input's data (reference-counted), as tfjs's cpu backend does, instead of
 *   copying it; the engine clones every tensor it saves for the backward pass with it;
 * - `LeakyRelu` is `x · Step(x, α)`: two branch-free kernels, where tfjs-wasm's own loop branches
 *   on the sign of every element (about ten times slower on data of random sign);
 * - `AvgPoolGrad` of pools whose windows tile the input (the transition layers' 2×2) writes each
 *   window's share directly, where tfjs-wasm loops over every window of every input pixel;
 * - `BatchMatMul` with a transposed first operand (a dense layer's weight gradient) transposes it
 *   first, where tfjs-wasm's loop strides through memory;
 * - `Sum` and `Mean` over leading axes (a per-channel reduction of NHWC over batch, height and
 *   width) accumulate rows in JavaScript in the order tfjs-wasm does after its full transpose,
 *   without the transpose;
 * - the `LeakyRelu` gradient is `dy · Step(x, α)` instead of `Greater`, `Multiply` and `Select`;
 * - the `FusedBatchNorm` gradient broadcasts `1/√(var + ε)` instead of tiling it to the input's
 *   full size (tfjs-wasm's `Tile` takes longer than the convolutions of a whole BatchNorm layer).
 *   The project's `BatchNorm2d` no longer reaches it (it has its own closed-form gradient); it
 *   stays for code that calls `tf.batchNorm` under a gradient.
 *
 * Kernels fall back to the replaced tfjs-wasm kernel for what they do not cover (strings, other
 * axes or dtypes).
 *
 * @example
 * ```ts
 * import { installWasmFastKernels } from "./_fast_kernels.ts";
 * installWasmFastKernels(); // before or after tf.setBackend("wasm")
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { KernelScope, type KernelSwap, swapWasmKernels, type WasmHeap } from "../kernel_swap.ts";

type Info = tf.TensorInfo;
type Typed = Float32Array | Int32Array | Uint8Array;

const BACKEND = "wasm";

/** The part of tfjs-wasm's `BackendWasm` these kernels use. */
interface WasmBackend extends tf.KernelBackend, WasmHeap {
  incRef(dataId: object): void;
}

/** The replaced kernel configurations, by kernel name, while installed. */
let swap: KernelSwap | undefined;

const { sizeFromShape } = tf.util;

/** Calls the tfjs-wasm kernel this module replaced. */
function _original(name: string, config: tf.KernelConfig | undefined): tf.KernelFunc {
  if (config === undefined) throw new Error(`tfjs-wasm has no '${name}' kernel to fall back to`);
  return config.kernelFunc;
}

/** Copies `length` elements; a loop for short runs, `set` for long ones. */
function _copy(dst: Typed, to: number, src: Typed, from: number, length: number): void {
  if (length >= 64) {
    dst.set(src.subarray(from, from + length), to);
    return;
  }
  for (let k = 0; k < length; k++) dst[to + k] = src[from + k];
}

/**
 * Copies runs between `outer` blocks: block `o` of `src` starts at `o · srcBlock + srcAt`, block
 * `o` of `dst` at `o · dstBlock + dstAt`, and `run` elements move.
 */
function _copyBlocks(
  dst: Typed,
  dstBlock: number,
  dstAt: number,
  src: Typed,
  srcBlock: number,
  srcAt: number,
  outer: number,
  run: number,
): void {
  if (run === 0) return;
  if (run >= 64) {
    for (let o = 0; o < outer; o++) {
      const from = o * srcBlock + srcAt;
      dst.set(src.subarray(from, from + run), o * dstBlock + dstAt);
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    const from = o * srcBlock + srcAt, to = o * dstBlock + dstAt;
    for (let k = 0; k < run; k++) dst[to + k] = src[from + k];
  }
}

/**
 * `Slice` reading from a view of the heap (tfjs-wasm copies the whole input first). Trailing
 * dimensions taken whole are merged into one contiguous run.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "Slice", backendName: "wasm", kernelFunc: sliceFast });
 * ```
 */
export const sliceFast: tf.KernelFunc = (args) => {
  const { inputs: { x }, attrs, backend } = args as unknown as {
    inputs: { x: Info };
    attrs: { begin: number | number[]; size: number | number[] };
    backend: WasmBackend;
  };
  if (x.dtype === "string" || x.shape.length === 0) {
    return _original("Slice", swap?.replaced("Slice"))(args);
  }
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    attrs.begin,
    attrs.size,
  );
  const out = backend.makeOutput(size, x.dtype);
  const count = sizeFromShape(size);
  if (count === 0) return out;
  const src = backend.typedArrayFromHeap(x), dst = backend.typedArrayFromHeap(out);
  const shape = x.shape, rank = shape.length;
  // Merge trailing dimensions taken whole: the run is contiguous in the input.
  let inner = rank - 1, run = size[inner];
  while (inner > 0 && size[inner] === shape[inner] && begin[inner] === 0) {
    inner--;
    run *= size[inner];
  }
  const strides = tf.util.computeStrides(shape);
  strides.push(1);
  let base = 0;
  for (let d = 0; d < rank; d++) base += begin[d] * strides[d];
  if (inner === 0) {
    _copy(dst, 0, src, base, run);
    return out;
  }
  // Odometer over the dimensions before `inner`.
  const index = new Array<number>(inner).fill(0);
  for (let to = 0; to < count; to += run) {
    let from = base;
    for (let d = 0; d < inner; d++) from += index[d] * strides[d];
    _copy(dst, to, src, from, run);
    for (let d = inner - 1; d >= 0; d--) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
  return out;
};

/**
 * `SplitV` in one pass over the input, each output's runs copied from a view of the heap.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "SplitV", backendName: "wasm", kernelFunc: splitVFast });
 * ```
 */
export const splitVFast: tf.KernelFunc = (args) => {
  const { inputs: { x }, attrs, backend } = args as unknown as {
    inputs: { x: Info };
    attrs: { numOrSizeSplits: number | number[]; axis: number | number[] };
    backend: WasmBackend;
  };
  if (x.dtype === "string") return _original("SplitV", swap?.replaced("SplitV"))(args);
  const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.Tensor,
    attrs.numOrSizeSplits,
    axis,
  );
  const outs = sizes.map((s) => {
    const shape = x.shape.slice();
    shape[axis] = s;
    return backend.makeOutput(shape, x.dtype);
  });
  const outer = sizeFromShape(x.shape.slice(0, axis)),
    inner = sizeFromShape(x.shape.slice(axis + 1));
  const block = x.shape[axis] * inner;
  // Views taken after every allocation (an allocation may grow, and so detach, the heap).
  const src = backend.typedArrayFromHeap(x);
  let at = 0;
  outs.forEach((out, j) => {
    const run = sizes[j] * inner;
    _copyBlocks(backend.typedArrayFromHeap(out), run, 0, src, block, at, outer, run);
    at += run;
  });
  return outs;
};

/**
 * `Concat` copying each input's runs from a view of the heap in one pass.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "Concat", backendName: "wasm", kernelFunc: concatFast });
 * ```
 */
export const concatFast: tf.KernelFunc = (args) => {
  const { inputs, attrs, backend } = args as unknown as {
    inputs: Info[];
    attrs: { axis: number | number[] };
    backend: WasmBackend;
  };
  const list = Object.values(inputs) as Info[];
  const present = list.filter((t) => sizeFromShape(t.shape) > 0);
  if (present.length < 2 || present[0].dtype === "string") {
    return _original("Concat", swap?.replaced("Concat"))(args);
  }
  const axis = tf.util.parseAxisParam(attrs.axis, list[0].shape)[0];
  tf.backend_util.assertParamsConsistent(list.map((t) => t.shape), axis);
  const shape = tf.backend_util.computeOutShape(list.map((t) => t.shape), axis);
  const out = backend.makeOutput(shape, list[0].dtype);
  const outer = sizeFromShape(shape.slice(0, axis)), block = sizeFromShape(shape.slice(axis));
  const dst = backend.typedArrayFromHeap(out);
  let at = 0;
  for (const input of present) {
    const run = sizeFromShape(input.shape.slice(axis));
    _copyBlocks(dst, block, at, backend.typedArrayFromHeap(input), run, 0, outer, run);
    at += run;
  }
  return out;
};

/**
 * `Identity` sharing its input's data (the reference count goes up) rather than copying it.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "Identity", backendName: "wasm", kernelFunc: identityShared });
 * ```
 */
export const identityShared: tf.KernelFunc = (args) => {
  const { inputs: { x }, backend } = args as unknown as {
    inputs: { x: Info };
    backend: WasmBackend;
  };
  if (x.dtype === "string") return _original("Identity", swap?.replaced("Identity"))(args);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
};

/**
 * `LeakyRelu` as `x · Step(x, α)`: `Step` is `1` where `x > 0` and `α` elsewhere, so the product
 * is `x` or the same `α · x` that tfjs-wasm computes, without a branch per element.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "LeakyRelu", backendName: "wasm", kernelFunc: leakyReluFast });
 * ```
 */
export const leakyReluFast: tf.KernelFunc = (args) => {
  const { inputs: { x }, attrs, backend } = args as unknown as {
    inputs: { x: Info };
    attrs: { alpha: number };
    backend: tf.KernelBackend;
  };
  if (x.dtype !== "float32" || sizeFromShape(x.shape) === 0) {
    return _original("LeakyRelu", swap?.replaced("LeakyRelu"))(args);
  }
  const scope = new KernelScope(backend, BACKEND);
  return scope.finish(() => {
    const step = scope.run("Step", { x }, { alpha: attrs.alpha });
    return scope.run("Multiply", { a: x, b: step });
  });
};

/**
 * `AvgPoolGrad` for windows that tile the input exactly (stride = window, no padding, height and
 * width multiples of the window) with a power-of-two area (2×2, 4×4…): every input pixel gets
 * `dy / area` of its one window, exactly as tfjs-wasm computes it (a power-of-two factor rounds
 * nothing). Other pools go to tfjs-wasm's kernel.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "AvgPoolGrad", backendName: "wasm", kernelFunc: avgPoolGradFast });
 * ```
 */
export const avgPoolGradFast: tf.KernelFunc = (args) => {
  const { inputs: { dy, input }, attrs, backend } = args as unknown as {
    inputs: { dy: Info; input: Info };
    attrs: tf.AvgPoolGradAttrs;
    backend: WasmBackend;
  };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
  );
  const { filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow } = info;
  const area = fh * fw;
  const { top, left, bottom, right } = info.padInfo;
  const tiles = info.strideHeight === fh && info.strideWidth === fw &&
    top + left + bottom + right === 0 && info.inHeight === oh * fh && info.inWidth === ow * fw;
  if (!tiles || (area & (area - 1)) !== 0 || dy.dtype !== "float32") {
    return _original("AvgPoolGrad", swap?.replaced("AvgPoolGrad"))(args);
  }
  const out = backend.makeOutput(input.shape, "float32");
  const src = backend.typedArrayFromHeap(dy) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const c = info.inChannels, w = info.inWidth, scale = 1 / area;
  for (let b = 0, from = 0; b < info.batchSize; b++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++, from += c) {
        for (let ky = 0; ky < fh; ky++) {
          let to = ((b * info.inHeight + y * fh + ky) * w + x * fw) * c;
          for (let kx = 0; kx < fw; kx++, to += c) {
            for (let k = 0; k < c; k++) dst[to + k] = src[from + k] * scale;
          }
        }
      }
    }
  }
  return out;
};

/**
 * `BatchMatMul` with `transposeA` (and not `transposeB`): `a` is transposed in JavaScript first
 * and tfjs-wasm's kernel multiplies without transposition, which gives the same bits several
 * times faster (its transposed-`a` loop strides through memory; this is the weight gradient of
 * every dense layer, `xᵀ · dy`). Everything else goes to tfjs-wasm's kernel unchanged.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "BatchMatMul", backendName: "wasm", kernelFunc: batchMatMulFast });
 * ```
 */
export const batchMatMulFast: tf.KernelFunc = (args) => {
  const { inputs: { a, b }, attrs, backend } = args as unknown as {
    inputs: { a: Info; b: Info };
    attrs: tf.BatchMatMulAttrs;
    backend: WasmBackend;
  };
  const original = _original("BatchMatMul", swap?.replaced("BatchMatMul"));
  if (!attrs.transposeA || attrs.transposeB || a.dtype !== "float32" || a.shape.length < 2) {
    return original(args);
  }
  const rank = a.shape.length;
  const [rows, cols] = a.shape.slice(rank - 2);
  const shape = [...a.shape.slice(0, rank - 2), cols, rows];
  const scope = new KernelScope(backend, BACKEND);
  return scope.finish(() => {
    const transposed = scope.compute(shape, [a], (out, [src]) => {
      const block = rows * cols;
      for (let at = 0; at < src.length; at += block) {
        for (let c = 0; c < cols; c++) {
          for (let r = 0, to = at + c * rows, from = at + c; r < rows; r++, from += cols) {
            out[to + r] = src[from];
          }
        }
      }
    });
    return original({
      inputs: { a: transposed, b },
      backend,
      attrs: { ...attrs, transposeA: false } as unknown as tf.NamedAttrMap,
    }) as Info;
  });
};

/**
 * The number of leading axes `axis` names, when it is `[0, 1, …, k − 1]` in this order for a
 * rank-`r` tensor with `0 < k < r` (a case tfjs-wasm transposes; another order would sum in
 * another order); otherwise `undefined`.
 */
function _leadingAxes(axis: number | number[], shape: number[]): number | undefined {
  const axes = tf.util.parseAxisParam(axis, shape);
  if (axes.length === 0 || axes.length >= shape.length) return undefined;
  return axes.every((a, i) => a === i) ? axes.length : undefined;
}

/** Column sums of `x` viewed as `[rows, cols]`, accumulated in float32 row after row. */
function _columnSums(
  backend: WasmBackend,
  x: Info,
  k: number,
  keepDims: boolean,
  scale?: number,
): Info {
  const rows = sizeFromShape(x.shape.slice(0, k)), cols = sizeFromShape(x.shape.slice(k));
  const shape = keepDims ? x.shape.map((d, i) => i < k ? 1 : d) : x.shape.slice(k);
  const out = backend.makeOutput(shape, "float32");
  const acc = new Float32Array(cols);
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  for (let r = 0, at = 0; r < rows; r++, at += cols) {
    for (let c = 0; c < cols; c++) acc[c] += src[at + c];
  }
  if (scale !== undefined) { for (let c = 0; c < cols; c++) acc[c] /= scale; }
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

/** Sum or mean over the leading axes, falling back to tfjs-wasm's kernel for anything else. */
function leadingAxesReduction(name: "Sum" | "Mean"): tf.KernelFunc {
  return (args) => {
    const { inputs: { x }, attrs, backend } = args as unknown as {
      inputs: { x: Info };
      attrs: { axis: number | number[]; keepDims: boolean };
      backend: WasmBackend;
    };
    const k = x.dtype === "float32" && sizeFromShape(x.shape) > 0
      ? _leadingAxes(attrs.axis, x.shape)
      : undefined;
    if (k === undefined) return _original(name, swap?.replaced(name))(args);
    const divisor = name === "Mean" ? sizeFromShape(x.shape.slice(0, k)) : undefined;
    return _columnSums(backend, x, k, attrs.keepDims, divisor);
  };
}

/**
 * `Sum` over the leading axes of a float32 tensor (for NHWC: per channel, over batch, height and
 * width) without tfjs-wasm's transpose; other reductions go to tfjs-wasm's kernel.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "Sum", backendName: "wasm", kernelFunc: sumFast });
 * ```
 */
export const sumFast: tf.KernelFunc = leadingAxesReduction("Sum");

/**
 * `Mean` over the leading axes of a float32 tensor, like {@linkcode sumFast} (the sum divided by
 * the count, as tfjs-wasm does).
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: "Mean", backendName: "wasm", kernelFunc: meanFast });
 * ```
 */
export const meanFast: tf.KernelFunc = leadingAxesReduction("Mean");

/**
 * The `LeakyRelu` gradient `dy · Step(x, α)`: `dy` where `x > 0`, `α · dy` elsewhere, the values
 * of tfjs's `where(x > 0, dy, α · dy)` without its `Greater` and `Select` kernels. On the wasm
 * backend only (elsewhere tfjs's gradient runs); it differs from tfjs's only where `x` is NaN
 * (NaN instead of `α · dy`).
 *
 * @example
 * ```ts
 * tf.registerGradient(leakyReluGradFast(tf.getGradient("LeakyRelu")));
 * ```
 */
export function leakyReluGradFast(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.LeakyRelu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== BACKEND) return original.gradFunc(dy, saved, attrs);
      const [x] = saved;
      const { alpha } = attrs as unknown as tf.LeakyReluAttrs;
      return { x: () => tf.mul(dy as tf.Tensor, tf.step(x, alpha)) };
    },
  };
}

/**
 * The `FusedBatchNorm` (`tf.batchNorm`) gradient with `1/√(var + ε)` broadcast against `dy`
 * rather than tiled to its full shape first; every product and sum is the one tfjs computes, in
 * the same order, so the gradients are the same values. Registered for every backend.
 *
 * @example
 * ```ts
 * tf.registerGradient(batchNormGradFast);
 * ```
 */
export const batchNormGradFast: tf.GradConfig = {
  kernelName: tf.FusedBatchNorm,
  inputsToSave: ["x", "mean", "variance", "scale"],
  gradFunc: (dy, saved, attrs) => {
    const g = dy as tf.Tensor;
    const [x, mean, variance, scale] = saved;
    const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
    const gamma = scale ?? tf.scalar(1);
    const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    const reduce = (t: tf.Tensor) => (axes.length > 0 ? tf.sum(t, axes) : t).reshape(mean.shape);
    const centred = tf.sub(x, mean);
    const scaledDy = tf.mul(g, gamma);
    const invStd = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    const minusHalfInvStdCubed = tf.mul(tf.mul(tf.mul(invStd, invStd), invStd), tf.scalar(-0.5));
    return {
      x: () => tf.mul(tf.mul(g, invStd), gamma).reshape(x.shape),
      mean: () => reduce(tf.mul(tf.mul(invStd, tf.scalar(-1)), scaledDy)),
      variance: () => reduce(tf.mul(tf.mul(minusHalfInvStdCubed, centred), scaledDy)),
      scale: () => reduce(tf.mul(g, tf.mul(centred, invStd))),
      offset: () => reduce(g),
    };
  },
};

const KERNELS: [string, tf.KernelFunc][] = [
  [tf.Slice, sliceFast],
  [tf.SplitV, splitVFast],
  [tf.Concat, concatFast],
  [tf.Identity, identityShared],
  [tf.LeakyRelu, leakyReluFast],
  [tf.Sum, sumFast],
  [tf.Mean, meanFast],
  [tf.AvgPoolGrad, avgPoolGradFast],
  [tf.BatchMatMul, batchMatMulFast],
];

/**
 * Registers this module's kernels for the `"wasm"` backend (replacing tfjs-wasm's) and its
 * `LeakyRelu` and `FusedBatchNorm` gradients. Idempotent. Works before and after the backend is
 * initialised: the replaced kernels' set-up (tfjs-wasm binds its C functions there) still runs.
 *
 * @example
 * ```ts
 * installWasmFastKernels();
 * wasmFastKernelsInstalled(); // true
 * ```
 */
export function installWasmFastKernels(): void {
  swap ??= swapWasmKernels(KERNELS, [
    [tf.LeakyRelu, leakyReluGradFast],
    [tf.FusedBatchNorm, () => batchNormGradFast],
  ]);
}

/**
 * Undoes {@linkcode installWasmFastKernels}: tfjs-wasm's kernels and tfjs's gradients are back.
 *
 * @example
 * ```ts
 * uninstallWasmFastKernels();
 * wasmFastKernelsInstalled(); // false
 * ```
 */
export function uninstallWasmFastKernels(): void {
  swap?.restore();
  swap = undefined;
}

/**
 * Whether {@linkcode installWasmFastKernels} is in force.
 *
 * @example
 * ```ts
 * if (!wasmFastKernelsInstalled()) installWasmFastKernels();
 * ```
 */
export function wasmFastKernelsInstalled(): boolean {
  return swap !== undefined;
}
