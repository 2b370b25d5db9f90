/**
 * Starting the backend a program runs on: {@linkcode useBackend} chooses (see `./select.ts`) and
 * starts one; {@linkcode selectBackend} does the same for the notebooks and describes the result
 * (name with the native library, threads, why), which `lib/viz/backend_view.ts` shows. The
 * preferences for both choices, the backend and the wasm backend's native convolutions, are
 * parsed here and below (`./select.ts`, `./native/mod.ts`), with their environment variables
 * `TCONV_BACKEND` and `TCONV_NATIVE`; the wasm backend's threads (`TCONV_THREADS`) and oneDNN's
 * (`TCONV_NATIVE_THREADS`) are counted apart.
 *
 * @example
 * ```ts
 * import { selectBackend, useBackend } from "./start.ts";
 * await useBackend("wasm");
 * const { name, threads, reason } = await selectBackend("auto", { native: "auto" });
 * // "wasm + oneDNN 2.6.3", 2, "auto: webgpu not chosen: …"
 * ```
 * @module
 */
import { tf } from "./tf.ts";
import { startWasm } from "./wasm/mod.ts";
import {
  BACKEND_PREFERENCES,
  type BackendChoice,
  type BackendPreference,
  backendThreads,
  chooseBackend,
  type ConcreteBackend,
  probeWebGpu,
} from "./select.ts";
import {
  nativeKernels,
  nativeThreadsWanted,
  parseNativePreference,
  startNativeKernels,
} from "./native/mod.ts";
import { startWebGpu } from "./webgpu/mod.ts";
import { parsePreference } from "../util/backend_rules.ts";

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
   * `"auto"`. Decided the first time wasm starts in a process. Any case; anything else is
   * refused, naming `native`.
   */
  native?: string;
}

/**
 * Selects a tfjs backend and waits until it is ready; returns the backend selected. `name` is
 * one of {@linkcode BACKEND_PREFERENCES}: `"auto"` lets {@linkcode chooseBackend} decide
 * (`TCONV_BACKEND`, then detection); `"webgpu"` loads tfjs's WebGPU backend (`./webgpu/mod.ts`)
 * and, on a software adapter, warns in one line that it is slow. Unknown names
 * are refused with the list of valid ones. `"wasm"` runs tfjs-wasm's SIMD binary from the npm
 * package, on every core, with this project's kernels (see `./wasm/mod.ts`) and, the first time, the
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
  parsePreference(name, BACKEND_PREFERENCES, "backend");
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
  // Checked before anything starts, whichever the backend: a typo fails on every machine.
  const native = options.native === undefined ? undefined : parseNativePreference(options.native);
  if (backend === "wasm") {
    // oneDNN's pool has its own count (TCONV_NATIVE_THREADS), checked before anything starts.
    const nativeThreads = nativeThreadsWanted();
    await startWasm();
    startNativeKernels(nativeThreads, native);
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

/** Options of {@linkcode selectBackend}. */
export interface SelectBackendOptions {
  /**
   * Whether the wasm backend's convolutions run on oneDNN: one of `"auto"`, `"on"`, `"off"`
   * (any case; anything else is refused, naming `native`). Default: `TCONV_NATIVE`, else where
   * it loads.
   */
  native?: string;
  /**
   * The program reads tensors synchronously (`dataSync`, `arraySync`): detection then skips
   * WebGPU, which cannot do that under Deno (see {@linkcode chooseBackend}).
   */
  synchronousReads?: boolean;
}

/** What {@linkcode selectBackend} selected. */
export interface SelectedBackend extends BackendChoice {
  /** The backend's name as shown, e.g. `"wasm + oneDNN 2.6.3"`. */
  name: string;
  /** The native library running the convolutions, e.g. `"oneDNN 2.6.3"`, or null. */
  native: string | null;
  /** Threads of the native library's pool (OpenMP's), when it runs. */
  nativeThreads?: number;
  /** The WebGPU adapter's description, for `"webgpu"` (its numbers depend on it). */
  adapter?: string;
}

/**
 * Chooses a backend from a preference (`"auto"`, `"wasm"`, `"cpu"`, `"webgpu"`; see
 * {@linkcode chooseBackend}), starts it (a side effect on tfjs, for the whole process) and
 * describes it: the threads it actually runs on, its name with the native library running its
 * convolutions, and the reason, which for wasm without native kernels says why and how to get
 * them. A `native` preference the running process contradicts is an error (see
 * `startNativeKernels`).
 *
 * @example
 * ```ts
 * const { backend, name } = await selectBackend("wasm"); // "wasm", "wasm + oneDNN 2.6.3"
 * await selectBackend("auto", { synchronousReads: true }); // never WebGPU by detection
 * ```
 */
export async function selectBackend(
  preference?: string,
  options: SelectBackendOptions = {},
): Promise<SelectedBackend> {
  const { native, synchronousReads } = options;
  const nativeWanted = native === undefined ? undefined : parseNativePreference(native);
  const wanted = await chooseBackend(preference, { synchronousReads });
  await startBackend(wanted.backend, { native: nativeWanted });
  // Counted again now that it runs: an already running wasm backend keeps its threads.
  const threads = backendThreads(wanted.backend);
  const status = wanted.backend === "wasm" ? nativeKernels() : undefined;
  const library = status?.library ?? null;
  const name = library === null ? tf.getBackend() : `${tf.getBackend()} + ${library}`;
  const notice = (status?.notice === undefined ? "" : `; convolutions on wasm: ${status.notice}`) +
    (status?.leftOut ? `; on wasm, not ${library}: ${status.leftOut.join("; ")}` : "");
  // The adapter decides WebGPU's numbers; the report cache records it (asked once per process).
  const adapter = wanted.backend === "webgpu" ? (await probeWebGpu()).adapter : undefined;
  const nativeThreads = library === null ? undefined : status?.threads;
  return {
    ...wanted,
    threads,
    reason: wanted.reason + notice,
    name,
    native: library,
    ...(nativeThreads === undefined ? {} : { nativeThreads }),
    adapter,
  };
}
