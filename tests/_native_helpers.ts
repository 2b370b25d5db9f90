// Helpers shared by the native-kernel tests: a body run on the wasm backend, and a body run with
// the wasm kernels (native kernels off) before the native ones are put back.
import { assertEquals } from "@std/assert";
import {
  disableNativeKernels,
  enableNativeKernels,
  nativeKernels,
  useBackend,
  wasmFlavour,
} from "../lib/backend/mod.ts";

/**
 * Runs `f` on the wasm backend, then goes back to the cpu backend, also when `f` throws.
 *
 * @example
 * ```ts
 * await onWasm(() => assert(nativeKernels().active));
 * ```
 */
export async function onWasm<T>(f: () => T | Promise<T>): Promise<T> {
  await useBackend("wasm");
  try {
    return await f();
  } finally {
    await useBackend("cpu");
  }
}

/**
 * Runs `f` with the wasm kernels (native off, asserted), then puts the native kernels back on
 * wasm's thread count, also when `f` throws; a promise `f` returns is awaited first.
 *
 * @example
 * ```ts
 * const reference = withWasmKernels(() => run(options));
 * ```
 */
export function withWasmKernels<T>(f: () => T): T {
  const restore = () => void enableNativeKernels(wasmFlavour().threadsCount);
  disableNativeKernels();
  let later = false;
  try {
    assertEquals(nativeKernels().active, false);
    const out = f();
    if (out instanceof Promise) {
      later = true;
      return out.finally(restore) as T;
    }
    return out;
  } finally {
    if (!later) restore();
  }
}
