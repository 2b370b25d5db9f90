/**
 * TensorFlow.js's WebAssembly backend under Deno, made able to train convolutions fast.
 *
 * tfjs-wasm runs `Conv2D` through XNNPACK (SIMD), but its `Conv2DBackpropInput` is a plain loop
 * and it has no `Conv2DBackpropFilter` at all, so a convolution cannot be trained on it.
 * {@linkcode installWasmConvKernels} registers both backprop kernels for the `"wasm"` backend,
 * built from XNNPACK `Conv2D` calls on rearranged operands (exact rewrites of the gradient sums,
 * see `_conv_kernels.ts`), and a `Conv2D` gradient that also handles dilation.
 * `tf.conv2dTranspose` (so the `ConvTranspose2d` layer's forward pass) is `Conv2DBackpropInput`
 * and gets the speed-up as well. {@linkcode installWasmFastKernels} (`_fast_kernels.ts`)
 * replaces the tfjs-wasm kernels that dominated a DenseNet step after that (`Tile` from the
 * `tf.batchNorm` gradient, `SplitV`/`Slice`/`Concat`, `LeakyRelu` and its gradient, per-channel `Sum`
 * and `Mean`, `AvgPoolGrad`, `Identity`, transposed `BatchMatMul`) with ones computing the same
 * bits faster.
 *
 * {@linkcode configureWasm} points tfjs-wasm at the `.wasm` binaries of its npm package, selects
 * the single-threaded build for plain `tf.setBackend("wasm")` and installs the kernels; importing
 * this module runs it. tfjs's default backend stays `"cpu"`: select wasm with `useBackend("wasm")`
 * from `../mod.ts`, which calls {@linkcode startWasm}: the multi-threaded SIMD build on every core
 * (`TCONV_THREADS` overrides; see `_threads.ts` for how it starts under Deno), or the
 * single-threaded one for 1 thread. {@linkcode wasmFlavour} then reports which binary runs.
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { wasmFlavour } from "./mod.ts";
 * await tf.setBackend("wasm");
 * wasmFlavour().binary; // "tfjs-backend-wasm-simd.wasm"
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { getThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { conv2DBackpropFilterViaConv2D, conv2DBackpropInputViaConv2D } from "./_conv_kernels.ts";
import { acceptDilations, conv2DGradWithDilation } from "../conv_grad.ts";
import { installWasmFastKernels } from "./_fast_kernels.ts";
import { startThreadedWasm, wasmThreadsWanted } from "./_threads.ts";
import { initialisedWasmBackend, type KernelSwap, swapWasmKernels } from "../kernel_swap.ts";

export { MAX_WASM_THREADS, THREADS_ENV_VAR, wasmThreadsWanted } from "./_threads.ts";

export { conv2DBackpropFilterViaConv2D, conv2DBackpropInputViaConv2D };
export {
  installWasmFastKernels,
  uninstallWasmFastKernels,
  wasmFastKernelsInstalled,
} from "./_fast_kernels.ts";

/** The tfjs-wasm binary the backend runs, and the features it uses. */
export interface WasmFlavour {
  /** File name of the instantiated binary. */
  binary:
    | "tfjs-backend-wasm.wasm"
    | "tfjs-backend-wasm-simd.wasm"
    | "tfjs-backend-wasm-threaded-simd.wasm";
  /** Whether the binary uses WebAssembly SIMD. */
  simd: boolean;
  /** Whether the binary is the multi-threaded build. */
  threads: boolean;
  /** Threads XNNPACK runs on. */
  threadsCount: number;
}

const BACKEND = "wasm";

// Importing tfjs-wasm registers "wasm" with a higher priority than "cpu", which would make it
// tfjs's default backend for every program importing this library. Keep "cpu" the default: wasm
// is used when selected (`useBackend("wasm")`).
const factory = tf.engine().registryFactory[BACKEND];
if (factory !== undefined) factory.priority = 0;

let configured = false;
let swap: KernelSwap | undefined;

/** The folder holding the package's `.wasm` files, as a `file:` URL, when it is on disk. */
function wasmFolder(): string | undefined {
  try {
    const entry = new URL(import.meta.resolve("@tensorflow/tfjs-backend-wasm"));
    return entry.protocol === "file:" ? new URL(".", entry).href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Prepares tfjs-wasm before its first use: loads the binaries from the npm package's folder,
 * selects the single-threaded build for a plain `tf.setBackend("wasm")` ({@linkcode startWasm}
 * switches to the threaded one), and calls {@linkcode installWasmConvKernels} and
 * {@linkcode installWasmFastKernels}. Idempotent; importing this module already calls it, so
 * `tf.setBackend("wasm")` and `useBackend("wasm")` both get it.
 *
 * @example
 * ```ts
 * configureWasm();
 * await tf.setBackend("wasm");
 * ```
 */
export function configureWasm(): void {
  if (configured) return;
  const folder = wasmFolder();
  // Without a folder, Emscripten's default (next to the package's script) is used.
  if (folder !== undefined) setWasmPaths(folder);
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  installWasmConvKernels();
  installWasmFastKernels();
  configured = true;
}

/**
 * Makes `"wasm"` the current backend. The first time, it is initialised on
 * {@linkcode wasmThreadsWanted} threads: the multi-threaded SIMD build for 2 or more, the
 * single-threaded SIMD build for 1. Later calls reuse it (tfjs initialises a backend once per
 * process). Calls {@linkcode configureWasm} first.
 *
 * @example
 * ```ts
 * await startWasm();
 * wasmFlavour().threadsCount; // 2 on a 2-core machine
 * ```
 */
export async function startWasm(): Promise<void> {
  configureWasm();
  if (initialisedWasmBackend() === undefined) {
    const threads = wasmThreadsWanted();
    if (threads > 1) {
      const folder = wasmFolder();
      if (folder === undefined) {
        throw new Error("the threaded wasm backend needs tfjs-backend-wasm's npm package on disk");
      }
      return await startThreadedWasm(threads, folder);
    }
  }
  if (!(await tf.setBackend(BACKEND))) throw new Error('tfjs backend "wasm" failed to initialise');
  await tf.ready();
}

/**
 * Reports the binary the initialised `"wasm"` backend runs. Throws when the backend has not been
 * initialised yet (select it with `useBackend("wasm")` first).
 *
 * @example
 * ```ts
 * await useBackend("wasm");
 * const { simd, threads } = wasmFlavour(); // true, true on a machine with 2 cores or more
 * ```
 */
export function wasmFlavour(): WasmFlavour {
  if (initialisedWasmBackend() === undefined) {
    throw new Error('the "wasm" backend is not initialised; call useBackend("wasm") first');
  }
  const module = (initialisedWasmBackend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm;
  // Only tfjs's threaded binary (always the SIMD one) runs on a shared heap.
  const threads = module.HEAPU8.buffer instanceof SharedArrayBuffer;
  const simd = threads || tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  return {
    binary: threads
      ? "tfjs-backend-wasm-threaded-simd.wasm"
      : simd
      ? "tfjs-backend-wasm-simd.wasm"
      : "tfjs-backend-wasm.wasm",
    simd,
    threads,
    threadsCount: getThreadsCount(),
  };
}

/**
 * Registers this project's `Conv2DBackpropInput` (replacing tfjs-wasm's) and
 * `Conv2DBackpropFilter` (which tfjs-wasm lacks) for the `"wasm"` backend, and a `Conv2D`
 * gradient that handles dilation (for every backend; unchanged for dilation 1). Idempotent.
 *
 * @example
 * ```ts
 * installWasmConvKernels();
 * wasmConvKernelsInstalled(); // true
 * ```
 */
export function installWasmConvKernels(): void {
  acceptDilations(conv2DBackpropInputViaConv2D);
  acceptDilations(conv2DBackpropFilterViaConv2D);
  swap ??= swapWasmKernels([
    [tf.Conv2DBackpropInput, conv2DBackpropInputViaConv2D],
    [tf.Conv2DBackpropFilter, conv2DBackpropFilterViaConv2D],
  ], [[tf.Conv2D, conv2DGradWithDilation]]);
}

/**
 * Undoes {@linkcode installWasmConvKernels}: tfjs-wasm's own `Conv2DBackpropInput`, no
 * `Conv2DBackpropFilter`, and tfjs's `Conv2D` gradient are back. Useful to compare with the
 * stock kernels.
 *
 * @example
 * ```ts
 * uninstallWasmConvKernels();
 * wasmConvKernelsInstalled(); // false
 * ```
 */
export function uninstallWasmConvKernels(): void {
  swap?.restore();
  swap = undefined;
}

/**
 * Whether {@linkcode installWasmConvKernels} is in force.
 *
 * @example
 * ```ts
 * if (!wasmConvKernelsInstalled()) installWasmConvKernels();
 * ```
 */
export function wasmConvKernelsInstalled(): boolean {
  return swap !== undefined;
}

// Configured on import, so that `tf.setBackend("wasm")` gets the same set-up as `useBackend`.
configureWasm();
