/**
 * Backend set-up for tfjs: the plain-JavaScript `"cpu"` backend, or the WebAssembly `"wasm"`
 * backend (XNNPACK with SIMD, single-threaded) with this project's fast convolution gradients,
 * see `./wasm.ts`.
 *
 * @example
 * ```ts
 * import { tf, useBackend, wasmFlavour } from "./mod.ts";
 * await useBackend("wasm");
 * tf.getBackend(); // "wasm"
 * wasmFlavour().simd; // true where WebAssembly SIMD is available
 * ```
 * @module
 */
import { tf } from "./tf.ts";
import { configureWasm } from "./wasm.ts";

export { tf };
export {
  installWasmConvKernels,
  uninstallWasmConvKernels,
  wasmConvKernelsInstalled,
  type WasmFlavour,
  wasmFlavour,
} from "./wasm.ts";

/** Backends this project can select. */
export const BACKENDS = ["cpu", "wasm"] as const;

/** A backend name from {@linkcode BACKENDS}. */
export type BackendName = typeof BACKENDS[number];

/**
 * Selects a tfjs backend and waits until it is ready. Unknown names are refused with the list of
 * valid ones. `"wasm"` runs tfjs-wasm's SIMD binary from the npm package, single-threaded, with
 * this project's convolution gradient kernels (see `./wasm.ts`); {@linkcode wasmFlavour} then
 * tells which binary runs.
 *
 * @example
 * ```ts
 * await useBackend("cpu");
 * ```
 */
export async function useBackend(name: BackendName = "cpu"): Promise<BackendName> {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new RangeError(
      `backend must be one of ${BACKENDS.join(", ")}, got ${JSON.stringify(name)}`,
    );
  }
  if (name === "wasm") configureWasm();
  if (!(await tf.setBackend(name))) throw new Error(`tfjs backend "${name}" failed to initialise`);
  await tf.ready();
  return name;
}
