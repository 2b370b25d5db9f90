// The wasm backend's replacement kernels and gradients (lib/backend/wasm/_fast_kernels.ts) give
// the same values, bit for bit, as tfjs-wasm's kernels and tfjs's gradients they replace: each
// case runs with the replacements uninstalled and installed, in the same process.
import { assert, assertEquals } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { disableNativeKernels, useBackend } from "../lib/backend/mod.ts";
import {
  installWasmFastKernels,
  uninstallWasmFastKernels,
  wasmFastKernelsInstalled,
} from "../lib/backend/wasm/mod.ts";

await useBackend("wasm"); // this module only: each test module runs in its own isolate
// tfjs-wasm's kernels against this project's JavaScript ones: oneDNN's, installed over both,
// would stay in force while the JavaScript ones are uninstalled.
disableNativeKernels();

type Values = { shape: number[]; dtype: string; values: number[] }[];

function run(f: () => tf.Tensor[]): Values {
  const out = tf.tidy(f);
  const values = out.map((t) => ({
    shape: t.shape,
    dtype: t.dtype,
    values: Array.from(t.dataSync() as ArrayLike<number>),
  }));
  tf.dispose(out);
  return values;
}

/** Runs `f` with tfjs's kernels and with ours and asserts identical bits (NaN, −0 included). */
function assertSameBits(label: string, f: () => tf.Tensor[]): void {
  uninstallWasmFastKernels();
  let expected: Values;
  try {
    expected = run(f);
  } finally {
    installWasmFastKernels();
  }
  const actual = run(f);
  assertEquals(actual.length, expected.length, label);
  actual.forEach((a, k) => {
    const e = expected[k];
    assertEquals([a.shape, a.dtype], [e.shape, e.dtype], `${label}, output ${k}`);
    const differ = a.values.findIndex((v, i) => !Object.is(v, e.values[i]));
    assert(
      differ < 0,
      `${label}, output ${k}: element ${differ} is ${a.values[differ]}, not ${e.values[differ]}`,
    );
  });
}

const normal = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed);
/** Random values with exact zeros and negative zeros mixed in. */
const signed = (shape: number[], seed: number) =>
  tf.tidy(() => {
    const x = normal(shape, seed);
    const zeros = tf.randomUniform(shape, 0, 1, "float32", seed + 1).less(0.2);
    return tf.where(zeros, tf.fill(shape, -0).mul(x.sign()), x);
  });

Deno.test("replacement kernels are installed on import and can be swapped", () => {
  assert(wasmFastKernelsInstalled());
  uninstallWasmFastKernels();
  assert(!wasmFastKernelsInstalled());
  uninstallWasmFastKernels(); // idempotent
  installWasmFastKernels();
  installWasmFastKernels();
  assert(wasmFastKernelsInstalled());
});

Deno.test("LeakyRelu and its gradient: same bits as tfjs", () => {
  const x = signed([4, 6, 5, 7], 1);
  const dy = normal([4, 6, 5, 7], 2);
  assertSameBits("leakyRelu", () => [0.01, 0.2, 0.3].map((a) => tf.leakyRelu(x, a)));
  assertSameBits("leakyRelu int32", () => [tf.leakyRelu(tf.tensor1d([-3, 0, 4], "int32"), 0.5)]);
  assertSameBits("leakyRelu gradient", () => {
    const g = tf.grad((t: tf.Tensor) => tf.leakyRelu(t, 0.01).mul(dy).sum());
    return [g(x)];
  });
  tf.dispose([x, dy]);
});

Deno.test("Sum and Mean over leading axes and others: same bits as tfjs", () => {
  const x = normal([4, 6, 5, 7], 3);
  const big = normal([8, 16, 16, 64], 4);
  const axes: (number | number[] | undefined)[] = [[0, 1, 2], 0, [0, 1], [1, 0], 3, [1, 2], [
    0,
    2,
  ], undefined];
  assertSameBits("sum", () => axes.map((a) => tf.sum(x, a)));
  assertSameBits("sum keepDims", () => axes.map((a) => tf.sum(x, a, true)));
  assertSameBits("mean", () => axes.map((a) => tf.mean(x, a)));
  assertSameBits("mean keepDims", () => axes.map((a) => tf.mean(x, a, true)));
  assertSameBits("large per-channel sum, mean, moments", () => {
    const { mean, variance } = tf.moments(big, [0, 1, 2]);
    return [tf.sum(big, [0, 1, 2]), tf.mean(big, [0, 1, 2]), mean, variance];
  });
  assertSameBits("int32 sum", () => [tf.sum(tf.tensor2d([[1, 2], [3, 4]], undefined, "int32"), 0)]);
  tf.dispose([x, big]);
});

Deno.test("Slice, SplitV, Concat, Identity: same values as tfjs", () => {
  const x = normal([4, 6, 5, 7], 5);
  const big = normal([8, 16, 16, 96], 6);
  const ints = tf.range(0, 24, 1, "int32").reshape([2, 3, 4]);
  assertSameBits("slice", () => [
    tf.slice(x, [1, 2, 1, 3], [2, 3, 3, 2]),
    tf.slice(x, [0, 1, 0, 0], [4, 2, -1, -1]),
    tf.slice(x, [2], [1]),
    tf.slice(x, [0, 0, 0, 0], [4, 6, 5, 7]),
    tf.slice(x, [1, 0, 0, 0], [0, 6, 5, 7]),
    tf.slice(big, [0, 0, 0, 32], [8, 16, 16, 64]),
    tf.slice(ints, [1, 1, 1], [1, 2, 3]),
    tf.slice(tf.tensor1d([true, false, true], "bool"), 1, 2),
  ]);
  assertSameBits("split", () => [
    ...tf.split(x, [2, 3, 2], 3),
    ...tf.split(x, 2, 0),
    ...tf.split(x, [1, 4], 2),
    ...tf.split(big, [32, 64], 3),
    ...tf.split(big, 4, 1),
    ...tf.split(ints, [1, 3], 2),
  ]);
  assertSameBits("concat", () => [
    tf.concat([x, x.slice([0, 0, 0, 0], [4, 6, 5, 3])], 3),
    tf.concat([x, x], 0),
    tf.concat([x, tf.zeros([4, 6, 0, 7]), x], 2),
    tf.concat([big, big, big], 3),
    tf.concat([ints, ints], 1),
    tf.concat([x]),
  ]);
  assertSameBits("concat gradient (SplitV)", () => {
    const parts = [normal([2, 4, 4, 32], 7), normal([2, 4, 4, 64], 8)];
    const w = normal([2, 4, 4, 96], 9);
    return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.concat([a, b], 3).mul(w).sum())(parts);
  });
  assertSameBits("clone", () => [tf.clone(x), tf.clone(ints)]);
  tf.dispose([x, big, ints]);
});

Deno.test("batchNorm gradient: same bits as tfjs's tiled one", () => {
  const x = normal([4, 6, 5, 7], 10);
  const dy = normal([4, 6, 5, 7], 11);
  const gamma = normal([7], 12), beta = normal([7], 13);
  assertSameBits("batch statistics", () =>
    tf.grads((t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(t, [0, 1, 2]);
      return tf.batchNorm(t, mean, variance, b, g, 1e-5).mul(dy).sum();
    })([x, gamma, beta]));
  const m = normal([7], 14), v = tf.tidy(() => normal([7], 15).abs());
  assertSameBits(
    "given statistics",
    () =>
      tf.grads((t: tf.Tensor, mm: tf.Tensor, vv: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.batchNorm(t, mm, vv, b, g, 1e-3).mul(dy).sum()
      )([x, m, v, gamma, beta]),
  );
  tf.dispose([x, dy, gamma, beta, m, v]);
});

Deno.test("AvgPoolGrad: same bits as tfjs-wasm's, tiling windows or not", () => {
  const x = normal([3, 8, 8, 5], 17);
  const pools: [[number, number], [number, number], "valid" | "same" | number][] = [
    [[2, 2], [2, 2], "valid"],
    [[4, 4], [4, 4], "valid"],
    [[2, 2], [2, 2], 0],
    [[3, 3], [3, 3], "valid"],
    [[2, 3], [2, 3], "valid"],
    [[2, 2], [1, 1], "valid"],
    [[3, 3], [2, 2], "same"],
  ];
  assertSameBits("avgPool gradients", () =>
    pools.map(([k, s, pad]) =>
      tf.grad((t: tf.Tensor) => {
        const y = tf.avgPool(t as tf.Tensor4D, k, s, pad);
        return y.mul(normal(y.shape, 18)).sum();
      })(x)
    ));
  x.dispose();
});

Deno.test("BatchMatMul with transposed operands: same bits as tfjs-wasm's", () => {
  const a = normal([32, 100], 19), b = normal([32, 70], 20), w = normal([100, 70], 21);
  const c = normal([3, 5, 7], 22), d = normal([3, 5, 4], 23), e = normal([1, 5, 4], 24);
  assertSameBits("matMul", () => [
    tf.matMul(a, b, true, false),
    tf.matMul(b, w, false, true),
    tf.matMul(a, w),
    tf.matMul(a.transpose(), w.transpose(), true, true),
    tf.matMul(c, d, true, false),
    tf.matMul(c, e, true, false),
  ]);
  assertSameBits(
    "dense layer gradients",
    () =>
      tf.grads((x: tf.Tensor, k: tf.Tensor) => tf.matMul(x, k).mul(normal([32, 70], 25)).sum())([
        a,
        w,
      ]),
  );
  tf.dispose([a, b, w, c, d, e]);
});

Deno.test("replacement kernels leak no tensors or heap blocks", () => {
  const x = normal([4, 6, 5, 8], 16);
  const before = tf.memory().numTensors;
  const blocks = tf.backend().numDataIds();
  const out = tf.tidy(() => {
    const parts = tf.split(x, [3, 5], 3);
    const y = tf.concat([tf.leakyRelu(parts[1], 0.1), parts[0]], 3).slice([1, 0, 0, 0], [
      2,
      6,
      5,
      8,
    ]);
    const g = tf.grad((t: tf.Tensor) => {
      const { mean, variance } = tf.moments(t, [0, 1, 2]);
      return tf.batchNorm(tf.leakyRelu(t, 0.01), mean, variance, tf.zeros([8]), tf.ones([8])).sum();
    })(x);
    return [tf.sum(y, [0, 1, 2]), tf.mean(g, [0, 1]), tf.clone(y)];
  });
  tf.dispose(out);
  assertEquals(tf.memory().numTensors, before);
  assertEquals(tf.backend().numDataIds(), blocks);
  x.dispose();
});
