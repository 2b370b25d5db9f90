/**
 * `Sum` over the leading axes of a float32 tensor (for NHWC: per channel, over batch, height and
 * width; a convolution's or dense layer's bias gradient) as oneDNN's `sgemm`, a row of ones times
 * the tensor viewed as a `[rows, channels]` matrix: blocked, vectorised and multi-threaded, where
 * the wasm kernel (`../wasm/_fast_kernels.ts`) adds the rows one after another in JavaScript. The
 * sums are the same up to float32 rounding (GEMM adds in blocks, a different order; for a fixed
 * thread count the same order every run). Other axes, dtypes and empty tensors run the kernel that
 * was registered before.
 *
 * @example
 * ```ts
 * import { nativeReduceKernels } from "./_reduce.ts";
 * swapWasmKernels(nativeReduceKernels(dnnl, fallback), []);
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import type { Dnnl } from "./_dnnl.ts";

type Info = tf.TensorInfo;

const SYMBOLS = {
  // (transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), row-major
  dnnl_sgemm: {
    parameters: [
      "u8",
      "u8",
      "i64",
      "i64",
      "i64",
      "f32",
      "pointer",
      "i64",
      "pointer",
      "i64",
      "f32",
      "pointer",
      "i64",
    ],
    result: "i32",
  },
} as const;

/** The part of tfjs-wasm's `BackendWasm` this kernel uses. */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  getMemoryOffset(dataId: object): number;
  disposeData(dataId: object): boolean;
}

/** How many leading axes `axis` names (0, 1, …, k − 1 with k < rank), or undefined. */
function leadingAxes(axis: number | number[], shape: number[]): number | undefined {
  const axes = tf.util.parseAxisParam(axis, shape).sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= shape.length) return undefined;
  return axes.every((a, i) => a === i) ? axes.length : undefined;
}

/**
 * The `Sum` kernel over oneDNN `dnnl`; `fallback` gives the kernel it replaced.
 *
 * @example
 * ```ts
 * const kernels = nativeReduceKernels(dnnl, (name) => swap.replaced(name)!.kernelFunc);
 * ```
 */
export function nativeReduceKernels(
  dnnl: Dnnl,
  fallback: (name: string) => tf.KernelFunc,
): [string, tf.KernelFunc][] {
  const lib = Deno.dlopen(dnnl.path, SYMBOLS).symbols;
  // A row of ones, grown to the largest row count seen (kept: its address is passed to C).
  let ones = new Float32Array(0);
  return [[tf.Sum, (config) => {
    const { x } = config.inputs as { x: Info };
    const { axis, keepDims } = config.attrs as unknown as tf.SumAttrs;
    const size = x.shape.reduce((a, b) => a * b, 1);
    const k = x.dtype === "float32" && size > 0 ? leadingAxes(axis, x.shape) : undefined;
    if (k === undefined) return fallback(tf.Sum)(config);
    const rows = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
    const cols = size / rows;
    const shape = keepDims ? [...x.shape.slice(0, k).map(() => 1), ...x.shape.slice(k)] : [
      ...x.shape.slice(k),
    ];
    const backend = config.backend as unknown as WasmBackend;
    const out = backend.makeOutput(shape, "float32");
    if (ones.length < rows) ones = new Float32Array(rows).fill(1);
    const base = Deno.UnsafePointer.of(backend.wasm.HEAPU8)!;
    const at = (t: Info) => Deno.UnsafePointer.offset(base, backend.getMemoryOffset(t.dataId))!;
    const [r, c] = [BigInt(rows), BigInt(cols)];
    const status = lib.dnnl_sgemm(
      78, // 'N'
      78,
      1n,
      c,
      r,
      1,
      Deno.UnsafePointer.of(ones),
      r,
      at(x),
      c,
      0,
      at(out),
      c,
    );
    if (status !== 0) {
      backend.disposeData(out.dataId);
      throw new Error(
        `Sum on oneDNN (sgemm) failed for x [${x.shape.join(", ")}], axes 0–${k - 1}: ` +
          `status ${status}`,
      );
    }
    return out;
  }]];
}
