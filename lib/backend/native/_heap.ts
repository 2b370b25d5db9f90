/**
 * The wasm backend as every native kernel sees it: the part of tfjs-wasm's `BackendWasm` they
 * use, the heap address of a tensor, and a kernel body run so that a failing oneDNN call frees
 * the outputs it was writing and throws naming the kernel and its shapes.
 *
 * @example
 * ```ts
 * import { address, guarded, type WasmBackend } from "./_heap.ts";
 * const backend = config.backend as unknown as WasmBackend;
 * const out = backend.makeOutput(x.shape, "float32");
 * return guarded(backend, [out], () => `Relu on oneDNN failed for x [${x.shape}]`, () => {
 *   run(address(backend, x), address(backend, out));
 *   return out;
 * });
 * ```
 * @module
 */
import type { tf } from "../tf.ts";

type Info = tf.TensorInfo;

/** The part of tfjs-wasm's `BackendWasm` the native kernels use. */
export interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  getMemoryOffset(dataId: object): number;
  disposeData(dataId: object): boolean;
}

/**
 * Heap address of float32 element `at` of a wasm tensor. Take it after any allocation: a
 * `makeOutput` may grow, and so move, the heap.
 *
 * @example
 * ```ts
 * const out = backend.makeOutput(x.shape, "float32");
 * const [src, dst] = [address(backend, x), address(backend, out)];
 * ```
 */
export function address(backend: WasmBackend, info: Info, at = 0): Deno.PointerObject {
  const base = Deno.UnsafePointer.of(backend.wasm.HEAPU8);
  return Deno.UnsafePointer.offset(base!, backend.getMemoryOffset(info.dataId) + 4 * at)!;
}

/**
 * `body()`, or, when it throws, `outs` freed and an error `${label()}: ${why}` with the first
 * error as cause (the label names the kernel and shapes; made only on failure).
 *
 * @example
 * ```ts
 * guarded(backend, [out], () => `Add on oneDNN failed for a [${a.shape}]`, () => run(out));
 * ```
 */
export function guarded<T>(
  backend: WasmBackend,
  outs: Info[],
  label: () => string,
  body: () => T,
): T {
  try {
    return body();
  } catch (e) {
    for (const out of outs) backend.disposeData(out.dataId);
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`${label()}: ${why}`, { cause: e });
  }
}
