// LeakyReLU and its gradient on oneDNN's eltwise primitive (lib/backend/native/_eltwise.ts)
// against the wasm kernels (native kernels off): the same bits.
import { assert, assertEquals } from "@std/assert";
import { nativeKernels, tf } from "../lib/backend/mod.ts";
import { onWasm, withWasmKernels } from "./_native_helpers.ts";
import { LEAKY_RELU_GRAD_KERNEL } from "../lib/backend/native/_eltwise.ts";

/** Values of both signs, exact zeros of both signs and tiny and huge magnitudes. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const u = s / 1073741824 - 1;
    out[i] = i % 53 === 0 ? 0 : i % 59 === 0 ? -0 : u * 10 ** ((i % 11) - 5);
  }
  return out;
}

/** LeakyReLU of `x` and its gradient against `dy`, as raw bits. */
function leaky(shape: number[], alpha: number): Uint32Array[] {
  const out: Uint32Array[] = [];
  tf.tidy(() => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(values(n, 3), shape), dy = tf.tensor(values(n, 4), shape);
    const f = (v: tf.Tensor) => alpha === 0 ? tf.relu(v) : tf.leakyRelu(v, alpha);
    const y = f(x);
    const dx = tf.grad(f)(x, dy);
    for (const t of [y, dx]) {
      out.push(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
    }
  });
  return out;
}

Deno.test("native LeakyReLU and Relu: forward and gradient are the wasm kernels' bits", async () => {
  await onWasm(() => {
    assert(nativeKernels().active, `native kernels: ${nativeKernels().notice}`);
    const cases: [number[], number][] = [
      [[7], 0.01],
      [[3, 5, 4, 2], 0.2],
      [[16, 32, 32, 32], 0.01], // a dense block's, in pieces over both threads
      [[3, 5, 4, 2], 0], // Relu
      [[16, 32, 32, 64], 0], // the first convolution's Relu
    ];
    for (const [shape, alpha] of cases) {
      const native = leaky(shape, alpha);
      const wasm = withWasmKernels(() => leaky(shape, alpha));
      ["forward", "gradient"].forEach((what, i) => {
        const at = native[i].findIndex((v, j) => v !== wasm[i][j]);
        assert(at < 0, `[${shape}] α ${alpha} ${what}: element ${at} differs`);
      });
    }
  });
});

Deno.test("native LeakyReLU: a profiled step runs one kernel each way; int32 falls back", async () => {
  await onWasm(async () => {
    const x = tf.tensor([-2, -1, 0, 1, 2]);
    const info = await tf.profile(() =>
      tf.tidy(() => tf.grad((v: tf.Tensor) => tf.leakyRelu(v, 0.5))(x))
    );
    const names = info.kernels.map((k) => k.name);
    assert(names.includes("LeakyRelu") && names.includes(LEAKY_RELU_GRAD_KERNEL), names.join());
    assert(!names.includes("Step") && !names.includes("Multiply"), names.join());
    const g = tf.tidy(() => [...tf.grad((v: tf.Tensor) => tf.leakyRelu(v, 0.5))(x).dataSync()]);
    assertEquals(g, [0.5, 0.5, 0.5, 1, 1]);
    const ints = tf.leakyRelu(tf.tensor([-4, 3], undefined, "int32"), 0.5);
    assertEquals([...ints.dataSync()], [-2, 3]);
    tf.dispose([x, ints]);
  });
});

/** a + b for each case, as raw bits. */
function adds(cases: [number[], number[]][]): Uint32Array[] {
  const out: Uint32Array[] = [];
  tf.tidy(() => {
    cases.forEach(([sa, sb], i) => {
      const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
      const a = tf.tensor(values(size(sa), 10 + i), sa),
        b = tf.tensor(values(size(sb), 20 + i), sb);
      out.push(new Uint32Array((tf.add(a, b).dataSync() as Float32Array).slice().buffer));
    });
  });
  return out;
}

Deno.test("native Add: same shapes and a bias over the last axis are the wasm kernels' bits; other broadcasts fall back", async () => {
  await onWasm(() => {
    const cases: [number[], number[]][] = [
      [[64, 16, 16, 32], [64, 16, 16, 32]], // gradient accumulation
      [[64, 16, 16, 32], [32]], // a convolution's bias
      [[5, 7], [1, 7]], // a dense layer's
      [[3, 1], [1, 4]], // falls back: a broadcast oneDNN is not asked for
      [[2, 3], []], // and a scalar
    ];
    const native = adds(cases);
    const wasm = withWasmKernels(() => adds(cases));
    cases.forEach(([sa, sb], i) => {
      assertEquals(native[i].length, wasm[i].length, `[${sa}] + [${sb}]`);
      const at = native[i].findIndex((v, j) => v !== wasm[i][j]);
      assert(at < 0, `[${sa}] + [${sb}]: element ${at} differs`);
    });
    const ints = tf.add(
      tf.tensor([1, 2], undefined, "int32"),
      tf.tensor([3, 4], undefined, "int32"),
    );
    assertEquals([...ints.dataSync()], [4, 6]);
    ints.dispose();
  });
});

/** The average-pooling gradient of `dy` for `input`'s shape, as values. */
function poolGrad(shape: number[], k: number, stride: number): Float32Array {
  return tf.tidy(() => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor4d(values(n, 5), shape as [number, number, number, number]);
    const f = (v: tf.Tensor) => tf.avgPool(v as tf.Tensor4D, k, stride, "valid");
    const y = f(x);
    const dy = tf.tensor(values(y.size, 6), y.shape);
    return tf.grad(f)(x, dy).dataSync() as Float32Array;
  });
}

Deno.test("native AvgPoolGrad: 2×2 tiling windows give the wasm kernel's values; overlapping ones fall back", async () => {
  await onWasm(() => {
    const cases: [number[], number, number][] = [
      [[64, 16, 16, 128], 2, 2], // transition 2's
      [[3, 6, 4, 5], 2, 2],
      [[2, 5, 5, 3], 3, 1], // falls back
    ];
    const native = cases.map(([s, k, st]) => poolGrad(s, k, st));
    const wasm = withWasmKernels(() => cases.map(([s, k, st]) => poolGrad(s, k, st)));
    cases.forEach(([shape], i) => {
      assertEquals(native[i].length, wasm[i].length);
      // Equal as numbers (±0 may differ in sign: oneDNN accumulates onto +0).
      const at = native[i].findIndex((v, j) => v !== wasm[i][j]);
      assert(at < 0, `[${shape}]: element ${at}: ${native[i][at]} vs ${wasm[i][at]}`);
    });
  });
});

/** Sums over the leading axes for each case. */
function sums(cases: [number[], number[], boolean][]): Float32Array[] {
  const out: Float32Array[] = [];
  tf.tidy(() => {
    cases.forEach(([shape, axes, keep], i) => {
      const x = tf.tensor(values(shape.reduce((a, b) => a * b, 1), 30 + i), shape);
      out.push(tf.sum(x, axes, keep).dataSync() as Float32Array);
    });
  });
  return out;
}

Deno.test("native Sum over leading axes: the wasm kernel's sums to float32 rounding, the same bits run to run", async () => {
  await onWasm(() => {
    const cases: [number[], number[], boolean][] = [
      [[64, 32, 32, 32], [0, 1, 2], false], // a bias gradient
      [[64, 8, 8, 32], [0, 1, 2], true],
      [[5, 7], [0], false],
      [[4, 6], [1], false], // falls back: not a leading axis
    ];
    const native = sums(cases), again = sums(cases);
    const wasm = withWasmKernels(() => sums(cases));
    cases.forEach(([shape, axes], i) => {
      assertEquals(new Uint32Array(native[i].buffer), new Uint32Array(again[i].buffer));
      assertEquals(native[i].length, wasm[i].length);
      // Against the exact sums (float64 of the same float32 values): float32 summation of n terms
      // in any order is within (n − 1)·2⁻²⁴·Σ|x| of them, for either kernel.
      const x = Float32Array.from(values(shape.reduce((a, b) => a * b, 1), 30 + i));
      const leading = axes.length === 1 && axes[0] === 1 ? 0 : axes.length; // [4, 6] over 1
      const rows = leading === 0 ? shape[1] : shape.slice(0, leading).reduce((a, b) => a * b, 1);
      const cols = x.length / rows;
      for (let c = 0; c < cols; c++) {
        let exact = 0, abs = 0;
        for (let r = 0; r < rows; r++) {
          const v = leading === 0 ? x[c * rows + r] : x[r * cols + c];
          exact += v;
          abs += Math.abs(v);
        }
        const bound = (rows - 1) * 2 ** -24 * abs;
        for (const [name, got] of [["native", native[i][c]], ["wasm", wasm[i][c]]] as const) {
          assert(
            Math.abs(got - exact) <= bound,
            `[${shape}] over ${axes}, ${name} column ${c}: ${got}, exact ${exact} ± ${bound}`,
          );
        }
      }
    });
    // Both are close, yet the comparison is not vacuous: the sums are far from zero.
    assert(
      native[0].some((v, j) => Math.abs(v) > 1 && Math.abs(v - wasm[0][j]) < Math.abs(v) * 1e-3),
    );
  });
});

Deno.test("native Cast to a tensor's own dtype shares its data; each can be disposed alone", async () => {
  await onWasm(() => {
    const before = tf.memory().numTensors;
    const x = tf.tensor([1.5, -2]);
    const y = tf.cast(x, "float32");
    x.dispose();
    assertEquals([...y.dataSync()], [1.5, -2]);
    const z = tf.cast(y, "int32");
    assertEquals([...z.dataSync()], [1, -2]);
    tf.dispose([y, z]);
    assertEquals(tf.memory().numTensors, before);
  });
});

Deno.test("native BatchMatMul: products with either operand transposed, batched, match the wasm kernel's", async () => {
  await onWasm(() => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[64, 1024], [1024, 512], false, false], // a dense layer
      [[64, 1024], [64, 512], true, false], // its weight gradient, xᵀ · dy
      [[64, 512], [1024, 512], false, true], // its input gradient, dy · wᵀ
      [[3, 4, 5], [3, 5, 2], false, false], // batched
      [[2, 3, 4], [1, 4, 2], false, false], // a batch broadcast: falls back
    ];
    const run = () => {
      const out: Float32Array[] = [];
      tf.tidy(() => {
        cases.forEach(([sa, sb, ta, tb], i) => {
          const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
          const a = tf.tensor(values(size(sa), 40 + i).map((v) => Math.tanh(v)), sa);
          const b = tf.tensor(values(size(sb), 50 + i).map((v) => Math.tanh(v)), sb);
          out.push(tf.matMul(a, b, ta, tb).dataSync() as Float32Array);
        });
      });
      return out;
    };
    const native = run(), again = run();
    const wasm = withWasmKernels(() => run());
    cases.forEach(([sa, sb, ta, tb], i) => {
      const what = `[${sa}]${ta ? "ᵀ" : ""} · [${sb}]${tb ? "ᵀ" : ""}`;
      assertEquals(new Uint32Array(native[i].buffer), new Uint32Array(again[i].buffer), what);
      assertEquals(native[i].length, wasm[i].length, what);
      // |a|, |b| ≤ 1: each output is a sum of k products of at most 1.
      const k = ta ? sa[sa.length - 2] : sa[sa.length - 1];
      native[i].forEach((v, j) =>
        assert(Math.abs(v - wasm[i][j]) <= 1e-6 * k, `${what}: element ${j}: ${v} vs ${wasm[i][j]}`)
      );
    });
  });
});
