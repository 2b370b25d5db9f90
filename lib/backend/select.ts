/**
 * Which tfjs backend to run on: an explicit choice, the `TCONV_BACKEND` environment variable, or
 * the fastest one this machine offers.
 *
 * {@linkcode chooseBackend} decides, in this order:
 *
 * 1. an explicit preference (`"cpu"`, `"wasm"` or `"webgpu"`, e.g. a notebook's `backend`
 *    parameter) wins;
 * 2. otherwise (no preference, or `"auto"`) the environment variable **`TCONV_BACKEND`**, when it
 *    is set and not empty (`TCONV_BACKEND=cpu deno task report` runs every notebook whose
 *    `backend` parameter is `"auto"` on the cpu backend);
 * 3. otherwise automatic detection: `"webgpu"` when Deno offers a hardware GPU adapter
 *    (`navigator.gpu.requestAdapter()` answers with an adapter whose `info.isFallbackAdapter` is
 *    false and that is not a known software rasteriser such as llvmpipe) and tfjs's WebGPU
 *    backend starts on it and passes a start-up check (see `./webgpu/mod.ts`); else `"wasm"`
 *    (XNNPACK with SIMD, this project's convolution kernels); else `"cpu"` (plain JavaScript).
 *
 * tfjs's WebGPU backend (`@tensorflow/tfjs-backend-webgpu`) is imported only when a hardware
 * adapter is found or `"webgpu"` is asked for, so runs on wasm do not load it. A software adapter
 * is never chosen automatically (tfjs-wasm is faster on the CPU than WebGPU emulated on the CPU),
 * but `"webgpu"` asked for explicitly runs on one (the tests use that). When the WebGPU backend
 * fails to start on a hardware adapter, `auto` falls back and the reason says why.
 *
 * @example
 * ```ts
 * import { chooseBackend } from "./select.ts";
 * const { backend, reason, threads } = await chooseBackend("auto");
 * // "wasm", 1, and on a machine whose only WebGPU adapter is Mesa's software rasteriser:
 * // "auto: webgpu not chosen: only a software WebGPU adapter (llvmpipe (LLVM 15.0.6, 256 bits),
 * // isFallbackAdapter); wasm (WebAssembly, XNNPACK with SIMD) is available"
 * ```
 * @module
 */
import { tf } from "./tf.ts";
import { envValue } from "../util/env.ts";
import { getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { wasmThreadsWanted } from "./wasm/mod.ts";
import { initialisedWasmBackend } from "./kernel_swap.ts";
// Imports no tfjs-webgpu code: the package itself is loaded by startWebGpu.
import { SOFTWARE_ADAPTER, startWebGpu } from "./webgpu/mod.ts";
import {
  BACKEND_ENV_VAR,
  backendWanted,
  type ConcreteBackend,
  type PreferenceSource,
} from "../util/backend_rules.ts";

export {
  BACKEND_ENV_VAR,
  BACKEND_PREFERENCES,
  type BackendPreference,
  type ConcreteBackend,
} from "../util/backend_rules.ts";

/** What {@linkcode chooseBackend} decided. */
export interface BackendChoice {
  /** The backend to select. */
  backend: ConcreteBackend;
  /** Why: where the choice came from and, for automatic choices, why faster ones were skipped. */
  reason: string;
  /**
   * CPU threads the backend computes on: for `"wasm"`, every core by default (`TCONV_THREADS`
   * overrides, see `./wasm/mod.ts`); 1 for `"cpu"` (JavaScript) and for `"webgpu"` (the thread that
   * drives the GPU).
   */
  threads: number;
  /** Where the choice came from. */
  source: PreferenceSource;
}

/** What {@linkcode probeWebGpu} found. */
export interface WebGpuProbe {
  /** Whether a hardware adapter is present. */
  hardware: boolean;
  /** The adapter's description (or vendor/architecture), when there is one. */
  adapter?: string;
  /** A sentence saying what was found: adapter, vendor, architecture and key limits. */
  detail: string;
}

/** The subset of `navigator.gpu` that {@linkcode probeWebGpu} uses (tests pass their own). */
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<AdapterLike | null>;
}

/** The subset of a `GPUAdapter` that {@linkcode probeWebGpu} reads. */
export interface AdapterLike {
  info?: {
    description?: string;
    vendor?: string;
    architecture?: string;
    device?: string;
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
  /** Limits; the ones bounding tensor sizes are reported. */
  limits?: { maxBufferSize?: number; maxStorageBufferBindingSize?: number };
}

/** Options of {@linkcode chooseBackend}, for tests and embedding. */
export interface ChooseOptions {
  /** The environment variable's value; read from the environment when not given. */
  env?: string;
  /** Stand-in for `navigator.gpu` (`null`: no WebGPU); the real one when not given. */
  gpu?: GpuLike | null;
  /** Whether tfjs's WebGPU backend may be used (default true: it is loaded on demand). */
  webgpuBackend?: boolean;
  /**
   * Starts tfjs's WebGPU backend and checks it, rejecting when it cannot run (default:
   * `startWebGpu` of `./webgpu/mod.ts`, then the previous backend is selected again).
   */
  startWebGpu?: () => Promise<unknown>;
  /** Milliseconds to wait for an adapter before giving up (default 5000). */
  timeoutMs?: number;
  /**
   * The caller reads tensors synchronously (`dataSync`, `arraySync`), which tfjs-webgpu cannot do
   * under Deno: detection then skips WebGPU, with that reason (default false). An explicit
   * `"webgpu"` is still honoured.
   */
  synchronousReads?: boolean;
}

function _message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function _mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}

async function _startWebGpuChecked(): Promise<void> {
  const previous = tf.getBackend();
  await startWebGpu();
  if (previous && previous !== "webgpu") await tf.setBackend(previous);
}

function _navigatorGpu(): GpuLike | null {
  return (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu ?? null;
}

/**
 * Whether tfjs has a backend registered under `name` (without initialising it).
 *
 * @example
 * ```ts
 * backendRegistered("wasm"); // true once ./wasm/mod.ts is imported
 * ```
 */
export function backendRegistered(name: string): boolean {
  return tf.findBackendFactory(name) != null;
}

/**
 * Asks WebGPU for an adapter and tells whether it is a hardware GPU. Never throws: a missing
 * `navigator.gpu`, a failed request or a timeout count as "no hardware adapter".
 *
 * @example
 * ```ts
 * const { hardware, detail } = await probeWebGpu();
 * // false, "only a software WebGPU adapter (llvmpipe (LLVM 15.0.6, 256 bits), isFallbackAdapter)"
 * ```
 */
export function probeWebGpu(
  gpu: GpuLike | null = _navigatorGpu(),
  timeoutMs = 5000,
): Promise<WebGpuProbe> {
  // The runtime's own adapter does not change during a process: ask once.
  if (gpu !== null && gpu === _navigatorGpu()) {
    return _probed ??= _probe(gpu, timeoutMs);
  }
  return _probe(gpu, timeoutMs);
}

let _probed: Promise<WebGpuProbe> | undefined;

async function _probe(gpu: GpuLike | null, timeoutMs: number): Promise<WebGpuProbe> {
  if (gpu === null) return { hardware: false, detail: "this runtime offers no navigator.gpu" };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const adapter = await Promise.race([
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      timeout,
    ]);
    if (adapter === "timeout") {
      return { hardware: false, detail: `no WebGPU adapter answered within ${timeoutMs} ms` };
    }
    if (adapter === null) return { hardware: false, detail: "WebGPU offers no adapter" };
    const info = adapter.info ?? {};
    const name = info.description || [info.vendor, info.architecture].filter(Boolean).join(" ") ||
      "unnamed adapter";
    const fallback = info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
    if (fallback || SOFTWARE_ADAPTER.test(name)) {
      const why = fallback ? "isFallbackAdapter" : "a software rasteriser";
      return {
        hardware: false,
        adapter: name,
        detail: `only a software WebGPU adapter (${name}, ${why})`,
      };
    }
    const about = [
      info.vendor && `vendor ${info.vendor}`,
      info.architecture && `architecture ${info.architecture}`,
      adapter.limits?.maxBufferSize && `maxBufferSize ${_mib(adapter.limits.maxBufferSize)}`,
      adapter.limits?.maxStorageBufferBindingSize &&
      `maxStorageBufferBindingSize ${_mib(adapter.limits.maxStorageBufferBindingSize)}`,
    ].filter(Boolean).join(", ");
    return {
      hardware: true,
      adapter: name,
      detail: `hardware WebGPU adapter ${name}${about ? ` (${about})` : ""}`,
    };
  } catch (e) {
    return { hardware: false, detail: `requesting a WebGPU adapter failed: ${_message(e)}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * CPU threads `backend` computes on: for wasm, the threads it runs on, or will run on when
 * `useBackend` initialises it (the wasm backend is initialised once per process, so a later
 * `TCONV_THREADS` does not change it); 1 for cpu (JavaScript on the main thread) and webgpu (the
 * thread that drives the GPU).
 *
 * @example
 * ```ts
 * backendThreads("cpu"); // 1
 * ```
 */
export function backendThreads(backend: ConcreteBackend): number {
  if (backend !== "wasm") return 1;
  return initialisedWasmBackend() !== undefined ? getThreadsCount() : wasmThreadsWanted();
}

/**
 * Decides which backend to run on (see the module doc for the order). `preference` is a notebook
 * parameter or a command-line value; `undefined`, `""` and `"auto"` defer to `TCONV_BACKEND` and
 * then to detection. Unknown names, in the argument or in the variable, are refused with the list
 * of valid ones; so is `"webgpu"` when WebGPU offers no adapter at all (a software adapter is
 * accepted when asked for, and the reason names it).
 *
 * @example
 * ```ts
 * await chooseBackend("cpu"); // { backend: "cpu", reason: "requested", threads: 1, source: "argument" }
 * await chooseBackend(); // TCONV_BACKEND, else the fastest available
 * ```
 */
export async function chooseBackend(
  preference?: string,
  options: ChooseOptions = {},
): Promise<BackendChoice> {
  const webgpuBackend = options.webgpuBackend ?? true;
  const gpu = options.gpu === undefined ? _navigatorGpu() : options.gpu;
  const explicit = async (
    name: ConcreteBackend,
    source: Exclude<PreferenceSource, "auto">,
  ): Promise<BackendChoice> => {
    let reason = source === "argument" ? "requested" : `${BACKEND_ENV_VAR}=${name}`;
    if (name === "webgpu") {
      if (!webgpuBackend) {
        throw new Error(
          'backend "webgpu": tfjs\'s WebGPU backend is disabled here; choose "wasm" or "cpu"',
        );
      }
      const probe = await probeWebGpu(gpu, options.timeoutMs);
      if (probe.adapter === undefined) {
        throw new Error(`backend "webgpu" needs a WebGPU adapter: ${probe.detail}`);
      }
      reason += `; ${probe.detail}`;
    }
    return { backend: name, reason, threads: backendThreads(name), source };
  };
  const wanted = backendWanted(preference, () => options.env ?? envValue(BACKEND_ENV_VAR));
  if (wanted.source !== "auto") {
    return explicit(wanted.preference as ConcreteBackend, wanted.source);
  }
  const probe = await probeWebGpu(gpu, options.timeoutMs);
  let skipped: string;
  if (probe.hardware && options.synchronousReads) {
    skipped = `webgpu not chosen: ${probe.detail} is present, but this program reads tensors ` +
      "synchronously (dataSync/arraySync), which tfjs's WebGPU backend cannot do under Deno";
  } else if (probe.hardware && webgpuBackend) {
    try {
      await (options.startWebGpu ?? _startWebGpuChecked)();
      return {
        backend: "webgpu",
        reason: `auto: ${probe.detail}`,
        threads: backendThreads("webgpu"),
        source: "auto",
      };
    } catch (e) {
      skipped = `webgpu not chosen: ${probe.detail} is present, but tfjs's WebGPU backend ` +
        `failed on it: ${_message(e)}`;
    }
  } else if (probe.hardware) {
    skipped = `webgpu not chosen: ${probe.detail} is present, but tfjs's WebGPU backend is ` +
      "disabled here";
  } else {
    skipped = `webgpu not chosen: ${probe.detail}`;
  }
  if (typeof WebAssembly === "object" && backendRegistered("wasm")) {
    return {
      backend: "wasm",
      reason: `auto: ${skipped}; wasm (WebAssembly, XNNPACK with SIMD) is available`,
      threads: backendThreads("wasm"),
      source: "auto",
    };
  }
  return {
    backend: "cpu",
    reason: `auto: ${skipped}; the wasm backend is not available`,
    threads: backendThreads("cpu"),
    source: "auto",
  };
}
