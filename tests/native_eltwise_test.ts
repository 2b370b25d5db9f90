// LeakyReLU and its gradient on oneDNN's eltwise primitive (lib/backend/native/_eltwise.ts)
// against the wasm kernels (native kernels off): the same bits.
import { assert, assertEquals } from "@std/assert";
import {
  disableNativeKernels,
  enableNativeKernels,
  nativeKernels,
  tf,
  useBackend,
  wasmFlavour,
} from "../lib/backend/mod.ts";
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
    const y = tf.leakyRelu(x, alpha);
    const dx = tf.grad((v: tf.Tensor) => tf.leakyRelu(v, alpha))(x, dy);
    for (const t of [y, dx]) {
      out.push(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
    }
  });
  return out;
}

Deno.test("native LeakyReLU: forward and gradient are the wasm kernels' bits", async () => {
  await useBackend("wasm");
  try {
    assert(nativeKernels().active, `native kernels: ${nativeKernels().notice}`);
    const cases: [number[], number][] = [
      [[7], 0.01],
      [[3, 5, 4, 2], 0.2],
      [[16, 32, 32, 32], 0.01], // a dense block's, in pieces over both threads
    ];
    for (const [shape, alpha] of cases) {
      const native = leaky(shape, alpha);
      disableNativeKernels();
      let wasm: Uint32Array[];
      try {
        wasm = leaky(shape, alpha);
      } finally {
        enableNativeKernels(wasmFlavour().threadsCount);
      }
      ["forward", "gradient"].forEach((what, i) => {
        const at = native[i].findIndex((v, j) => v !== wasm[i][j]);
        assert(at < 0, `[${shape}] α ${alpha} ${what}: element ${at} differs`);
      });
    }
  } finally {
    await useBackend("cpu");
  }
});

Deno.test("native LeakyReLU: a profiled step runs one kernel each way; int32 falls back", async () => {
  await useBackend("wasm");
  try {
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
  } finally {
    await useBackend("cpu");
  }
});
