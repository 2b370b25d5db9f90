// Helpers of the convolution kernel tests (wasm_test.ts: this project's wasm kernels, native_test.ts:
// the oneDNN ones): the same inputs run on two backends, moved between them as arrays, compared.
import { assert, assertEquals } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { useBackend } from "../lib/backend/mod.ts";

export type Shape4 = [number, number, number, number];
export type Pad = "same" | "valid" | number | [[0, 0], [number, number], [number, number], [0, 0]];
/** Flat values of several tensors, as computed on one backend. */
export type Result = { shape: number[]; values: Float32Array }[];

/** Seeded uniform values in [-1, 1) (tfjs draws them in JavaScript: the same on every backend). */
export function random(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => tf.randomUniform(shape, -1, 1, "float32", seed).dataSync() as Float32Array);
}

/** The selected backend, initialising tfjs's default one (cpu) when none is yet. */
export async function currentBackend(): Promise<string> {
  await tf.ready();
  return tf.getBackend();
}

/** Runs `f` on `backend` and returns its tensors as arrays; the previous backend is restored. */
export async function on(backend: "cpu" | "wasm", f: () => tf.Tensor[]): Promise<Result> {
  const previous = await currentBackend();
  await useBackend(backend);
  try {
    const out = f();
    const result = out.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    tf.dispose(out);
    return result;
  } finally {
    await tf.setBackend(previous);
  }
}

/** Asserts equal shapes and max |a − b| ≤ 1e-4 · max(1, max |b|) per tensor. */
export function assertMatches(actual: Result, expected: Result, label: string): void {
  assertEquals(actual.length, expected.length, label);
  actual.forEach((a, k) => {
    const e = expected[k];
    assertEquals(a.shape, e.shape, `${label}, output ${k}: shape`);
    let diff = 0, scale = 1;
    for (let i = 0; i < e.values.length; i++) {
      diff = Math.max(diff, Math.abs(a.values[i] - e.values[i]));
      scale = Math.max(scale, Math.abs(e.values[i]));
    }
    assert(diff <= 1e-4 * scale, `${label}, output ${k}: max |diff| ${diff} (scale ${scale})`);
  });
}

/** Both backends, one computation, compared. */
export async function compare(label: string, f: () => tf.Tensor[]): Promise<void> {
  const wasm = await on("wasm", f);
  const cpu = await on("cpu", f);
  assertMatches(wasm, cpu, label);
}

/** `sum(f(x, w) · r)` differentiated w.r.t. `x` and `w`, plus the value of `f` itself. */
export function gradsOf(
  f: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D,
  xShape: Shape4,
  wShape: Shape4,
  seed: number,
): () => tf.Tensor[] {
  const xs = random(xShape, seed), ws = random(wShape, seed + 1);
  return () =>
    tf.tidy(() => {
      const x = tf.tensor4d(xs, xShape), w = tf.tensor4d(ws, wShape);
      const y = f(x, w);
      const r = tf.tensor(random(y.shape, seed + 2), y.shape);
      const [gx, gw] = tf.grads((a, b) => f(a as tf.Tensor4D, b as tf.Tensor4D).mul(r).sum())([
        x,
        w,
      ]);
      return [y, gx, gw];
    });
}

/** Convolution geometries every kernel must get right. */
export const CONV_CASES: {
  x: Shape4;
  w: Shape4;
  s: number | [number, number];
  pad: Pad;
  d?: number;
}[] = [
  { x: [2, 7, 6, 3], w: [3, 3, 3, 4], s: 1, pad: "same" },
  { x: [2, 7, 6, 3], w: [3, 3, 3, 4], s: 1, pad: 0 },
  { x: [3, 8, 8, 2], w: [3, 3, 2, 5], s: 1, pad: 1 },
  { x: [2, 7, 6, 3], w: [3, 3, 3, 4], s: 2, pad: "same" },
  { x: [2, 8, 8, 3], w: [3, 3, 3, 4], s: 2, pad: 1 },
  { x: [2, 9, 7, 3], w: [3, 3, 3, 2], s: 2, pad: 0 },
  { x: [2, 9, 7, 3], w: [3, 2, 3, 4], s: [2, 1], pad: "valid" },
  { x: [1, 10, 9, 2], w: [4, 4, 2, 3], s: 3, pad: 1 },
  { x: [2, 9, 7, 3], w: [3, 3, 3, 2], s: 1, pad: [[0, 0], [2, 1], [0, 3], [0, 0]] },
  { x: [2, 5, 6, 2], w: [1, 1, 2, 3], s: 2, pad: 0 },
  { x: [2, 5, 6, 2], w: [1, 1, 2, 3], s: 1, pad: 0 },
  { x: [3, 4, 7, 5], w: [1, 1, 5, 2], s: 1, pad: "same" },
  // Padding beyond the kernel: some outputs see only padding.
  { x: [2, 6, 5, 2], w: [3, 3, 2, 4], s: 1, pad: 3 },
  { x: [2, 6, 5, 4], w: [2, 2, 4, 2], s: 2, pad: [[0, 0], [3, 2], [0, 2], [0, 0]] },
  { x: [2, 9, 8, 3], w: [3, 3, 3, 2], s: 1, pad: "same", d: 2 },
  // (A number as `pad` with a non-square kernel makes tfjs miscompute the output width, on every
  // backend, so non-square kernels get explicit padding.)
  { x: [2, 11, 9, 2], w: [3, 2, 2, 3], s: 1, pad: [[0, 0], [2, 2], [2, 2], [0, 0]], d: 3 },
  { x: [2, 10, 9, 2], w: [3, 3, 2, 3], s: 1, pad: 2, d: 3 },
  { x: [1, 9, 9, 2], w: [2, 3, 2, 2], s: 1, pad: "valid", d: 2 },
];
