/**
 * Two kernels on oneDNN's `sgemm` (blocked, vectorised, multi-threaded), on the tensors where they
 * lie in tfjs-wasm's heap:
 *
 * - `Sum` over the leading axes of a float32 tensor (for NHWC: per channel, over batch, height
 *   and width; a convolution's or dense layer's bias gradient) as a row of ones times the tensor
 *   viewed as a `[rows, channels]` matrix, where the wasm kernel (`../wasm/_fast_kernels.ts`) adds
 *   the rows one after another in JavaScript;
 * - `BatchMatMul` (the dense layers' gradients), where tfjs-wasm runs XNNPACK's 128-bit kernels.
 *
 * Both equal the wasm kernels' results up to float32 rounding (GEMM adds in blocks, another
 * order), and for a fixed thread count give the same bits every run. Other axes, dtypes, batch
 * broadcasts and empty tensors run the kernel that was registered before.
 *
 * @example
 * ```ts
 * import { nativeGemmKernels } from "./_gemm.ts";
 * swapWasmKernels(nativeGemmKernels(dnnl, fallback), []);
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import type { Dnnl } from "./_dnnl.ts";
import { address, guarded, type WasmBackend } from "./_heap.ts";

type Info = tf.TensorInfo;

/** Throws `status N` unless sgemm's `status` is success. */
function checkGemm(status: number): void {
  if (status !== 0) throw new Error(`status ${status}`);
}

/** How many leading axes `axis` names (0, 1, …, k − 1 with k < rank), or undefined. */
function leadingAxes(axis: number | number[], shape: number[]): number | undefined {
  const axes = tf.util.parseAxisParam(axis, shape).sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= shape.length) return undefined;
  return axes.every((a, i) => a === i) ? axes.length : undefined;
}

/**
 * The `Sum` and `BatchMatMul` kernels over oneDNN `dnnl`; `fallback` gives the kernel each
 * replaced.
 *
 * @example
 * ```ts
 * const kernels = nativeGemmKernels(dnnl, (name) => swap.replaced(name)!.kernelFunc);
 * ```
 */
export function nativeGemmKernels(
  dnnl: Dnnl,
  fallback: (name: string) => tf.KernelFunc,
): [string, tf.KernelFunc][] {
  const sgemm = dnnl.symbol("dnnl_sgemm");
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
    const label = () =>
      `Sum on oneDNN (sgemm) failed for x [${x.shape.join(", ")}], axes 0–${k - 1}`;
    return guarded(backend, [out], label, () => {
      const [r, c] = [BigInt(rows), BigInt(cols)];
      const ptr = Deno.UnsafePointer.of(ones);
      // 'N', 'N': row-major [1, rows] ones times [rows, cols] x
      checkGemm(
        sgemm(78, 78, 1n, c, r, 1, ptr, r, address(backend, x), c, 0, address(backend, out), c),
      );
      return out;
    });
  }], [tf.BatchMatMul, (config) => {
    const { a, b } = config.inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = config.attrs as unknown as tf.BatchMatMulAttrs;
    const ra = a.shape.length, rb = b.shape.length;
    if (
      a.dtype !== "float32" || b.dtype !== "float32" || ra < 2 || rb < 2 ||
      a.shape.slice(0, -2).join() !== b.shape.slice(0, -2).join()
    ) {
      return fallback(tf.BatchMatMul)(config);
    }
    const [a0, a1] = a.shape.slice(-2), [b0, b1] = b.shape.slice(-2);
    const [m, k] = transposeA ? [a1, a0] : [a0, a1];
    const [k2, n] = transposeB ? [b1, b0] : [b0, b1];
    if (k !== k2) {
      throw new RangeError(
        `BatchMatMul: inner dimensions differ, a [${a.shape.join(", ")}]` +
          `${transposeA ? "ᵀ" : ""} · b [${b.shape.join(", ")}]${transposeB ? "ᵀ" : ""}`,
      );
    }
    const batch = a.shape.slice(0, -2).reduce((p, q) => p * q, 1);
    if (m * n * k * batch === 0) return fallback(tf.BatchMatMul)(config);
    const backend = config.backend as unknown as WasmBackend;
    const out = backend.makeOutput([...a.shape.slice(0, -2), m, n], "float32");
    const label = () =>
      `BatchMatMul on oneDNN (sgemm) failed for a [${a.shape.join(", ")}], ` +
      `b [${b.shape.join(", ")}]`;
    return guarded(backend, [out], label, () => {
      for (let i = 0; i < batch; i++) {
        checkGemm(sgemm(
          transposeA ? 84 : 78, // 'T' or 'N'
          transposeB ? 84 : 78,
          BigInt(m),
          BigInt(n),
          BigInt(k),
          1,
          address(backend, a, i * a0 * a1),
          BigInt(a1),
          address(backend, b, i * b0 * b1),
          BigInt(b1),
          0,
          address(backend, out, i * m * n),
          BigInt(n),
        ));
      }
      return out;
    });
  }]];
}
