// swapWasmKernels (lib/backend/kernel_swap.ts): swaps stack, and one undone while a later swap of
// the same kernel is still in force leaves that later kernel registered, falling back to (and on
// its own restore putting back) what lay beneath both.
import { assert, assertEquals } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { useBackend } from "../lib/backend/mod.ts";
import { swapWasmKernels } from "../lib/backend/kernel_swap.ts";

await useBackend("wasm");

/** A `Square` that adds `offset` to x², falling back to `below` for the square. */
function squarePlus(offset: number, below: () => tf.KernelFunc): tf.KernelFunc {
  return (config) => {
    const out = below()(config) as tf.TensorInfo;
    const backend = config.backend as tf.KernelBackend;
    const values = (backend.readSync(out.dataId) as Float32Array).map((v) => v + offset);
    backend.disposeData(out.dataId);
    return {
      dataId: backend.write(values, out.shape, "float32"),
      shape: out.shape,
      dtype: "float32",
    };
  };
}

const squareOf = (x: number[]) => tf.tidy(() => Array.from(tf.square(tf.tensor1d(x)).dataSync()));
const gradOf = (x: number[]) =>
  tf.tidy(() =>
    Array.from(tf.grad((v: tf.Tensor) => tf.square(v).sum())(tf.tensor1d(x)).dataSync())
  );

Deno.test("swapWasmKernels: undone in either order, the registry ends as it began", () => {
  const original = tf.getKernel(tf.Square, "wasm")!.kernelFunc;
  const originalGrad = tf.getGradient(tf.Square)!;
  for (const order of ["lower first", "upper first"]) {
    // The lower swap: x² + 10, its gradient doubled.
    const lower = swapWasmKernels(
      [[tf.Square, squarePlus(10, () => lower.replaced(tf.Square)!.kernelFunc)]],
      [[
        tf.Square,
        (g) => ({
          ...g,
          gradFunc: (dy, saved, attrs) => ({ x: () => g.gradFunc(dy, saved, attrs).x().mul(2) }),
        }),
      ]],
    );
    // The upper swap: adds 100 to what lies beneath it, its gradient tripled over that.
    const upper = swapWasmKernels([[
      tf.Square,
      squarePlus(100, () => upper.replaced(tf.Square)!.kernelFunc),
    ]], [[
      tf.Square,
      (g) => ({
        ...g,
        gradFunc: (dy, saved, attrs) => ({ x: () => g.gradFunc(dy, saved, attrs).x().mul(3) }),
      }),
    ]]);
    assertEquals(squareOf([1, 2]), [111, 114], order);
    assertEquals(gradOf([1, 2]), [12, 24], order);
    if (order === "lower first") {
      lower.restore();
      // The upper kernel stays, now over tfjs-wasm's own Square; its gradient rebuilt over tfjs's.
      assertEquals(squareOf([1, 2]), [101, 104]);
      assertEquals(gradOf([1, 2]), [6, 12]);
      upper.restore();
    } else {
      upper.restore();
      assertEquals(squareOf([1, 2]), [11, 14]);
      assertEquals(gradOf([1, 2]), [4, 8]);
      lower.restore();
    }
    assert(
      tf.getKernel(tf.Square, "wasm")!.kernelFunc === original,
      `${order}: tfjs-wasm's Square`,
    );
    assert(tf.getGradient(tf.Square) === originalGrad, `${order}: tfjs's gradient`);
    assertEquals(squareOf([1, 2]), [1, 4]);
    lower.restore(); // a second restore changes nothing
    assertEquals(squareOf([1, 2]), [1, 4]);
  }
});
