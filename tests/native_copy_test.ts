// The native (oneDNN reorder) Concat, SplitV and Slice kernels of the wasm backend, checked bit for
// bit against the kernels they replace (this project's JavaScript copies) on random shapes and
// axes. tests/setup.ts installs libdnnl2, so they run here and in CI.
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import {
  disableNativeKernels,
  enableNativeKernels,
  installWasmFastKernels,
  nativeKernels,
  uninstallWasmFastKernels,
  useBackend,
  wasmFastKernelsInstalled,
  wasmFlavour,
} from "../lib/backend/mod.ts";
import {
  COPY_CHECK_CASES,
  copySelfCheck,
  mergeDims,
  NATIVE_COPY_KERNELS,
  NATIVE_COPY_MIN_ELEMENTS,
} from "../lib/backend/native/_copy_kernels.ts";
import { concatFast, sliceFast, splitVFast } from "../lib/backend/wasm/_fast_kernels.ts";
import { withWasmKernels } from "./_native_helpers.ts";

await useBackend("wasm");

const threads = wasmFlavour().threadsCount;

/** A seeded generator: integers in [lo, hi]. */
function generator(seed: number) {
  let s = seed;
  return (lo: number, hi: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  };
}

/** Values with NaN, ±0, ±Infinity and subnormals among them: copies must keep their bits. */
function values(n: number, seed: number): Float32Array {
  const special = [NaN, 0, -0, Infinity, -Infinity, 1e-40, -2e-39];
  const next = generator(seed);
  return Float32Array.from(
    { length: n },
    (_, i) => i % 53 === 7 ? special[next(0, 6)] : next(0, 1 << 20) / (1 << 19) - 1,
  );
}

function bits(t: tf.Tensor): number[] {
  return [...new Uint32Array((t.dataSync() as Float32Array).slice().buffer)];
}

/** Random copy cases: channel-axis NHWC concatenations and splits, other axes and ranks, slices. */
function randomCases(count: number, seed: number) {
  const next = generator(seed);
  const cases: { label: string; run: () => tf.Tensor[] }[] = [];
  for (let i = 0; i < count; i++) {
    const rank = i % 3 === 0 ? 4 : next(1, 5);
    // Big enough (most of the time) to take the native path, small sometimes to take the other.
    const shape = Array.from({ length: rank }, () => next(1, rank === 1 ? 40000 : 24));
    if (rank === 4 && i % 3 === 0) shape.splice(0, 4, next(2, 8), next(8, 20), next(8, 20), 0);
    const axis = rank === 4 && i % 3 === 0 ? 3 : next(0, rank - 1);
    const parts = next(2, 5);
    const widths = Array.from({ length: parts }, () => next(1, 40));
    if (i % 7 === 3) widths[1] = 0; // an empty piece
    const pieces = widths.map((w, j) => {
      const s = shape.slice();
      s[axis] = w;
      return { shape: s, data: values(s.reduce((a, b) => a * b, 1), 100 * i + j) };
    });
    const total = widths.reduce((a, b) => a + b, 0);
    const full = shape.slice();
    full[axis] = total;
    const begin = full.map((d) => next(0, Math.max(0, d - 1) >> 2));
    const size = full.map((d, k) => d - begin[k] - next(0, (d - begin[k] - 1) >> 2));
    const label = `case ${i}: pieces ${JSON.stringify(pieces.map((p) => p.shape))} axis ${axis}`;
    cases.push({
      label,
      run: () =>
        tf.tidy(() => {
          const ts = pieces.map((p) => tf.tensor(p.data, p.shape));
          const cat = tf.concat(ts, axis);
          const split = tf.split(cat, widths, axis);
          const sliced = tf.slice(cat, begin, size);
          const negAxis = tf.concat(ts, axis - rank); // axis counted from the end
          return [cat, ...split, sliced, negAxis];
        }),
    });
  }
  return cases;
}

Deno.test("native copies: Concat, SplitV and Slice are oneDNN's while native kernels are on", () => {
  assert(nativeKernels().active, "oneDNN must load here (tests/setup.ts installs it)");
  const native = NATIVE_COPY_KERNELS.map((name) => tf.getKernel(name, "wasm")!.kernelFunc);
  const wasm = withWasmKernels(() =>
    NATIVE_COPY_KERNELS.map((name) => tf.getKernel(name, "wasm")!.kernelFunc)
  );
  assertEquals(wasm, [concatFast, splitVFast, sliceFast], "native off: the JavaScript copies");
  native.forEach((f, i) => assert(!wasm.includes(f), `${NATIVE_COPY_KERNELS[i]} was replaced`));
  const back = NATIVE_COPY_KERNELS.map((name) => tf.getKernel(name, "wasm")!.kernelFunc);
  back.forEach((f, i) => assert(!wasm.includes(f), `${NATIVE_COPY_KERNELS[i]} is back`));
});

Deno.test("native copies: uninstalling the fast kernels under them, then native off, leaves tfjs-wasm's", () => {
  assert(nativeKernels().active && wasmFastKernelsInstalled());
  const kernel = (name: string) => tf.getKernel(name, "wasm")!.kernelFunc;
  const native = NATIVE_COPY_KERNELS.map(kernel);
  const leakyGrad = tf.getGradient(tf.LeakyRelu)!.gradFunc;
  const a = tf.randomNormal([4, 8, 8, 300], 0, 1, "float32", 5);
  const b = tf.randomNormal([4, 8, 8, 200], 0, 1, "float32", 6);
  const expected = tf.concat([a, b], 3).dataSync();
  const leakyGradOf = (x: tf.Tensor) =>
    tf.tidy(() => tf.grad((v: tf.Tensor) => tf.leakyRelu(v, 0.2).mul(v).sum())(x).dataSync());
  const expectedGrad = leakyGradOf(a);
  try {
    uninstallWasmFastKernels();
    // The native copies stay in force, and still give the same bits.
    assertEquals(NATIVE_COPY_KERNELS.map(kernel), native, "native copies kept");
    assertEquals(tf.concat([a, b], 3).dataSync(), expected);
    // The native LeakyRelu gradient, rebuilt over tfjs's, gives the same values.
    assertEquals(leakyGradOf(a), expectedGrad);
    disableNativeKernels();
    // Neither the native nor this project's JavaScript copies: tfjs-wasm's own kernels.
    const restored = NATIVE_COPY_KERNELS.map(kernel);
    for (const [i, f] of restored.entries()) {
      assert(![concatFast, splitVFast, sliceFast, native[i]].includes(f), NATIVE_COPY_KERNELS[i]);
    }
    assert(tf.getGradient(tf.LeakyRelu)!.gradFunc !== leakyGrad, "tfjs's LeakyRelu gradient");
    assertEquals(leakyGradOf(a), expectedGrad);
    assertEquals(tf.concat([a, b], 3).dataSync(), expected);
  } finally {
    tf.dispose([a, b]);
    disableNativeKernels();
    installWasmFastKernels();
    enableNativeKernels(threads);
  }
  assertEquals(NATIVE_COPY_KERNELS.map(kernel).length, 3);
  assert(nativeKernels().active && wasmFastKernelsInstalled(), "both back for the other tests");
  assert(
    NATIVE_COPY_KERNELS.map(kernel).every((f, i) => f !== [concatFast, splitVFast, sliceFast][i]),
  );
});

Deno.test("native copies: random shapes and axes give the wasm kernels' bits", () => {
  const cases = randomCases(40, 11);
  const native = cases.map((c) => {
    const outs = c.run();
    const result = outs.map((t) => ({ shape: t.shape, bits: bits(t) }));
    tf.dispose(outs);
    return result;
  });
  const wasm = withWasmKernels(() =>
    cases.map((c) => {
      const outs = c.run();
      const result = outs.map((t) => ({ shape: t.shape, bits: bits(t) }));
      tf.dispose(outs);
      return result;
    })
  );
  let large = 0;
  cases.forEach((c, i) => {
    assertEquals(native[i].length, wasm[i].length, c.label);
    native[i].forEach((out, j) => {
      assertEquals(out.shape, wasm[i][j].shape, `${c.label}, output ${j}`);
      if (out.bits.length >= NATIVE_COPY_MIN_ELEMENTS) large++;
      const at = out.bits.findIndex((b, k) => b !== wasm[i][j].bits[k]);
      assertEquals(at, -1, `${c.label}, output ${j}: first differing element`);
    });
  });
  assert(large >= 30, `enough outputs take the native path (${large})`);
});

Deno.test("native copies: a dense block's channel concatenation and its gradient (SplitV)", () => {
  const shapes = [[4, 16, 16, 64], [4, 16, 16, 32], [4, 16, 16, 32]];
  const run = () =>
    tf.tidy(() => {
      const xs = shapes.map((s, i) => tf.tensor(values(s.reduce((a, b) => a * b), i), s));
      const dy = tf.tensor(values(4 * 16 * 16 * 128, 9), [4, 16, 16, 128]);
      const grads = tf.grads((...a: tf.Tensor[]) => tf.mul(tf.concat(a, 3), dy).sum())(xs);
      return [tf.concat(xs, 3), ...grads].map(bits);
    });
  const native = run();
  assertEquals(native, withWasmKernels(run));
});

Deno.test("native copies: mergeDims joins dimensions both views step across as one", () => {
  assertEquals(
    mergeDims({
      dims: [2, 4, 4, 32],
      srcStrides: [512, 128, 32, 1],
      dstStrides: [2560, 640, 160, 1],
    }),
    { dims: [32, 32], srcStrides: [32, 1], dstStrides: [160, 1] },
  );
  // A slice cut in the middle axis stays three-dimensional; size-1 dimensions go.
  assertEquals(
    mergeDims({ dims: [3, 1, 5, 7], srcStrides: [700, 70, 10, 1], dstStrides: [35, 35, 7, 1] }),
    { dims: [3, 5, 7], srcStrides: [700, 10, 1], dstStrides: [35, 7, 1] },
  );
  assertEquals(mergeDims({ dims: [1, 1], srcStrides: [9, 1], dstStrides: [1, 1] }), {
    dims: [1],
    srcStrides: [1],
    dstStrides: [1],
  });
});

Deno.test("native copies: the self-check names the kernel and case of a copy that is not exact", () => {
  const backend = tf.findBackend("wasm")!;
  // A "replaced" kernel that flips one bit of its output: the native copies no longer match it.
  const perturbed = {
    replaced(name: string): tf.KernelConfig {
      const kernel = tf.getKernel(name, "wasm")!;
      return {
        ...kernel,
        kernelFunc: (config) => {
          const out = kernel.kernelFunc(config);
          const first = (Array.isArray(out) ? out : [out])[0];
          const heap = backend as unknown as { typedArrayFromHeap(i: tf.TensorInfo): Float32Array };
          const values = heap.typedArrayFromHeap(first);
          values[5] = values[5] === 1 ? 2 : 1;
          return out;
        },
      };
    },
  };
  for (const c of COPY_CHECK_CASES) {
    const error = assertThrows(() => copySelfCheck(backend, perturbed, [c]));
    assertMatch(
      (error as Error).message,
      new RegExp(`^${c.kernel} of .*: output 0 differs from the wasm kernel's at element 5$`),
    );
  }
  // Against the JavaScript kernels they replace, the same check passes.
  const js = new Map<string, tf.KernelFunc>([
    [tf.Concat, concatFast],
    [tf.SplitV, splitVFast],
    [tf.Slice, sliceFast],
  ]);
  copySelfCheck(backend, {
    replaced: (name) => ({ kernelName: name, backendName: "wasm", kernelFunc: js.get(name)! }),
  });
});
