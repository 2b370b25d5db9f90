/**
 * Backend set-up for tfjs: the plain-JavaScript `"cpu"` backend, or the WebAssembly `"wasm"`
 * backend (XNNPACK with SIMD, on every core; `TCONV_THREADS` sets the count) with this project's
 * fast convolution gradients and data-movement kernels, see `./wasm.ts`, and its convolutions run
 * by oneDNN where the library is installed (`./native/mod.ts`; `TCONV_NATIVE=off` turns that
 * off); or tfjs's `"webgpu"` backend, loaded on demand and guarded, see `./webgpu/mod.ts`;
 * `"auto"` picks one (see `./select.ts`: an explicit name wins, then the `TCONV_BACKEND`
 * environment variable, then detection).
 *
 * @example
 * ```ts
 * import { nativeKernels, tf, useBackend, wasmFlavour } from "./mod.ts";
 * await useBackend("wasm");
 * tf.getBackend(); // "wasm"
 * wasmFlavour().simd; // true where WebAssembly SIMD is available
 * nativeKernels().library; // "oneDNN 2.6.3" where libdnnl2 is installed, else null
 * await useBackend("auto"); // TCONV_BACKEND, else webgpu on a hardware GPU, else wasm
 * ```
 * @module
 */
import { tf } from "./tf.ts";
import { startWasm } from "./wasm.ts";
import { getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import {
  BACKEND_PREFERENCES,
  type BackendPreference,
  chooseBackend,
  type ConcreteBackend,
} from "./select.ts";
import { type NativePreference, startNativeKernels } from "./native/mod.ts";
import { startWebGpu } from "./webgpu/mod.ts";
export {
  loadWebGpu,
  SOFTWARE_ADAPTER,
  startWebGpu,
  type StartWebGpuOptions,
  type WebGpuAdapter,
  webgpuAdapter,
  WebGpuError,
} from "./webgpu/mod.ts";

export { tf };
export {
  type EngineRepair,
  interruptSafe,
  type InterruptSafeOptions,
  lastEngineRepair,
  recoverEngine,
} from "./engine_repair.ts";
export { acceptDilations, conv2DGradWithDilation, dilateFilter } from "./conv_grad.ts";
export {
  disableNativeKernels,
  enableNativeKernels,
  NATIVE_ENV_VAR,
  NATIVE_PREFERENCES,
  nativeImplementations,
  type NativeKernelOptions,
  nativeKernels,
  type NativePreference,
  nativePreference,
  type NativeStatus,
} from "./native/mod.ts";
export {
  installWasmConvKernels,
  installWasmFastKernels,
  MAX_WASM_THREADS,
  startWasm,
  THREADS_ENV_VAR,
  uninstallWasmConvKernels,
  uninstallWasmFastKernels,
  wasmConvKernelsInstalled,
  wasmFastKernelsInstalled,
  type WasmFlavour,
  wasmFlavour,
  wasmThreadsWanted,
} from "./wasm.ts";
export {
  BACKEND_ENV_VAR,
  BACKEND_PREFERENCES,
  type BackendChoice,
  type BackendPreference,
  backendRegistered,
  backendThreads,
  chooseBackend,
  type ConcreteBackend,
  probeWebGpu,
  type WebGpuProbe,
} from "./select.ts";

/**
 * Backends this project always has (`"webgpu"` also needs a WebGPU adapter, see `./select.ts`
 * and `./webgpu/mod.ts`).
 */
export const BACKENDS = ["cpu", "wasm"] as const;

/** A backend name from {@linkcode BACKENDS}. */
export type BackendName = typeof BACKENDS[number];

/** Options of {@linkcode useBackend}. */
export interface UseBackendOptions {
  /**
   * Whether the wasm backend's convolutions run natively (oneDNN): `"auto"` (where the library
   * loads and passes its self-check), `"on"` (required) or `"off"`. Default: `TCONV_NATIVE`, else
   * `"auto"`. Decided the first time wasm starts in a process.
   */
  native?: NativePreference;
}

/**
 * Selects a tfjs backend and waits until it is ready; returns the backend selected. `name` is
 * one of {@linkcode BACKEND_PREFERENCES}: `"auto"` lets {@linkcode chooseBackend} decide
 * (`TCONV_BACKEND`, then detection); `"webgpu"` loads tfjs's WebGPU backend (`./webgpu/mod.ts`)
 * and, on a software adapter, warns in one line that it is slow. Unknown names
 * are refused with the list of valid ones. `"wasm"` runs tfjs-wasm's SIMD binary from the npm
 * package, on every core, with this project's kernels (see `./wasm.ts`) and, the first time, the
 * native convolutions where they load (see `options.native` and {@linkcode nativeKernels});
 * {@linkcode wasmFlavour} then tells which binary runs.
 *
 * @example
 * ```ts
 * await useBackend("cpu");
 * const chosen = await useBackend("auto"); // "wasm" on a machine without a hardware GPU
 * ```
 */
export async function useBackend(
  name: BackendPreference = "cpu",
  options: UseBackendOptions = {},
): Promise<BackendName | "webgpu"> {
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(name)) {
    throw new RangeError(
      `backend must be one of ${BACKEND_PREFERENCES.join(", ")}, got ${JSON.stringify(name)}`,
    );
  }
  const { backend } = await chooseBackend(name);
  await startBackend(backend, options);
  return backend;
}

/**
 * Initialises and selects `backend` as {@linkcode chooseBackend} named it, without choosing
 * again (for callers that show the choice, such as the notebooks' backend line).
 *
 * @example
 * ```ts
 * const choice = await chooseBackend("auto");
 * await startBackend(choice.backend);
 * ```
 */
export async function startBackend(
  backend: ConcreteBackend,
  options: UseBackendOptions = {},
): Promise<void> {
  if (backend === "wasm") {
    await startWasm();
    startNativeKernels(getThreadsCount(), options.native);
    return;
  }
  if (backend === "webgpu") {
    // tfjs-webgpu is imported here (by startWebGpu) only: wasm and cpu runs never load it.
    const adapter = await startWebGpu({ allowSoftware: true });
    if (adapter.fallback) {
      console.warn(
        `webgpu: ${adapter.description} is a software adapter (WebGPU emulated on the CPU): ` +
          'expect it to be far slower than "wasm"',
      );
    }
    return;
  }
  if (!(await tf.setBackend(backend))) {
    throw new Error(`tfjs backend "${backend}" failed to initialise`);
  }
  await tf.ready();
}
