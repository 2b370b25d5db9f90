// Helpers shared by the native-kernel tests: a body run on the wasm backend, a body run with the
// wasm kernels (native kernels off) before the native ones are put back, and one seeded training
// step's loss and gradients.
import { assertEquals } from "@std/assert";
import {
  disableNativeKernels,
  enableNativeKernels,
  nativeKernels,
  tf,
  useBackend,
  wasmFlavour,
} from "../lib/backend/mod.ts";
import { crossEntropy } from "../lib/train/mod.ts";

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

/**
 * One training step of `model` on seeded random images (`[4, 32, 32, 3]`, seed 6) with `labels`:
 * the loss and each trainable variable's gradient, in the order of `model.trainableWeights`.
 *
 * @example
 * ```ts
 * const { value, grads } = seededStep(DenseNet({ variant: "conv", seed: 5 }), [1, 7, 3, 0]);
 * ```
 */
export function seededStep(
  model: tf.LayersModel,
  labels: number[],
): { value: tf.Scalar; grads: tf.Tensor[] } {
  const x = tf.randomNormal([4, 32, 32, 3], 0, 1, "float32", 6);
  const y = tf.tensor1d(labels, "int32");
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
    vars,
  );
  return { value, grads: vars.map((v) => grads[v.name]) };
}
