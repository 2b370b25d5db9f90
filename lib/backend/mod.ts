/**
 * Backend set-up for tfjs: the plain-JavaScript `"cpu"` backend, or the WebAssembly `"wasm"`
 * backend (XNNPACK with SIMD, on every core; `TCONV_THREADS` sets the count) with this project's
 * fast convolution gradients and data-movement kernels (`./wasm/mod.ts`) and its convolutions,
 * batch normalization and activations run by oneDNN where the library is installed
 * (`./native/mod.ts`; `TCONV_NATIVE=off` turns that off); or tfjs's `"webgpu"` backend, loaded on demand and guarded (`./webgpu/mod.ts`). The
 * three rooms swap tfjs kernels through `./kernel_swap.ts`. `"auto"` picks a backend (see
 * `./select.ts`: an explicit name wins, then the `TCONV_BACKEND` environment variable, then
 * detection), and `./start.ts` starts it.
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
  type BackendName,
  BACKENDS,
  selectBackend,
  type SelectBackendOptions,
  type SelectedBackend,
  startBackend,
  useBackend,
  type UseBackendOptions,
} from "./start.ts";
export {
  initialisedWasmBackend,
  KernelScope,
  type KernelSwap,
  swapWasmKernels,
  type WasmHeap,
} from "./kernel_swap.ts";
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
  nativeThreadsWanted,
  parseNativePreference,
} from "./native/mod.ts";
export { NATIVE_THREADS_ENV_VAR } from "../util/backend_rules.ts";
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
} from "./wasm/mod.ts";
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
