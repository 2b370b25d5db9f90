/**
 * The shared library of the notebooks: tfjs set-up (`backend`), layers, models and shape formulas
 * (`nn`), datasets (`data`), training (`train`) and plotting (`viz`). Notebooks import from here.
 * Of `backend`, only what a program uses to pick and inspect its backend is here; the kernel
 * installs, switches and probes stay in `./backend/mod.ts` for tests and benchmarks.
 *
 * @example
 * ```ts
 * import { convTransposeOutputSize, ConvTranspose2d, heatmap, show, tf } from "../lib/mod.ts";
 * ```
 * @module
 */
export {
  BACKEND_PREFERENCES,
  type BackendChoice,
  type BackendName,
  type BackendPreference,
  BACKENDS,
  chooseBackend,
  type EngineRepair,
  interruptSafe,
  type InterruptSafeOptions,
  lastEngineRepair,
  nativeKernels,
  type NativePreference,
  type NativeStatus,
  recoverEngine,
  selectBackend,
  type SelectBackendOptions,
  type SelectedBackend,
  tf,
  useBackend,
  type UseBackendOptions,
  type WasmFlavour,
  wasmFlavour,
} from "./backend/mod.ts";
export * from "./nn/mod.ts";
export * from "./data/mod.ts";
export * from "./train/mod.ts";
export * from "./viz/mod.ts";
