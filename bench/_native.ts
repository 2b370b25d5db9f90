/**
 * The start and the switches the native-kernel benchmarks share: the wasm backend with its thread
 * count (and the native kernels required, or off), and the native kernels put in or out between
 * the rounds of an interleaved comparison.
 *
 * @example
 * ```ts
 * import { startWasm, useNative } from "./_native.ts";
 * const { threads } = await startWasm();
 * useNative(false, threads); // the wasm kernels' round
 * useNative(true, threads); // the native kernels' round
 * ```
 * @module
 */
import {
  disableNativeKernels,
  enableNativeKernels,
  type NativeKernelOptions,
  nativeKernels,
  useBackend,
  wasmFlavour,
} from "../lib/backend/mod.ts";

/**
 * Starts the wasm backend; `native` "on" requires the native kernels (throws with their notice
 * when they do not run), "off" starts without them. Returns wasm's thread count and oneDNN's name.
 *
 * @example
 * ```ts
 * const { threads, library } = await startWasm(); // { threads: 2, library: "oneDNN 2.6.3" }
 * ```
 */
export async function startWasm(native?: "on"): Promise<{ threads: number; library: string }>;
export async function startWasm(native: "off"): Promise<{ threads: number; library: null }>;
export async function startWasm(
  native: "on" | "off" = "on",
): Promise<{ threads: number; library: string | null }> {
  await useBackend("wasm", native === "off" ? { native: "off" } : {});
  const threads = wasmFlavour().threadsCount;
  const library = nativeKernels().library;
  if (native === "off") return { threads, library: null };
  if (library === null) throw new Error(`native kernels not active: ${nativeKernels().notice}`);
  return { threads, library };
}

/**
 * Puts the native kernels in on `threads` (`on`; throws with their notice when they do not
 * start) or takes them out. With `options` they are taken out first, so that another filter
 * layout takes effect; without, kernels already in stay as they are.
 *
 * @example
 * ```ts
 * useNative(true, threads, { filterLayout: "hwio" });
 * ```
 */
export function useNative(on: boolean, threads: number, options?: NativeKernelOptions): void {
  if (!on || options !== undefined) disableNativeKernels();
  if (!on) return;
  const status = enableNativeKernels(threads, options);
  if (!status.active) throw new Error(`native kernels: ${status.notice}`);
}
