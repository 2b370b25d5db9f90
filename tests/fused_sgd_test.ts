// SGD's one-pass update on wasm with the native kernels (lib/train/_fused_sgd.ts) against its
// tensor path (native kernels off): the same parameters and momentum buffers, bit for bit.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { nativeKernels, tf } from "../lib/backend/mod.ts";
import { onWasm, withWasmKernels } from "./_native_helpers.ts";
import { SGD } from "../lib/train/mod.ts";
import { FUSED_SGD_KERNEL, fusedSgdActive, fusedSgdStep } from "../lib/train/_fused_sgd.ts";

const SHAPES = [[3, 3, 16, 32], [32], [1024, 10], [7]];

/** Deterministic values of varied magnitude and sign (some exactly zero). */
function values(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = i % 97 === 0 ? 0 : (s / 1073741824 - 1) * scale * (1 + (i % 7));
  }
  return out;
}

/** Runs `steps` SGD steps on fresh variables; returns the parameters and buffers after each. */
function run(
  options: { lr: number; momentum?: number; weightDecay?: number },
  steps: number,
): Float32Array[][] {
  const vars = SHAPES.map((shape, i) =>
    tf.tidy(() =>
      tf.variable(
        tf.tensor(values(shape.reduce((a, b) => a * b), 11 + i, 0.5), shape),
        true,
        `fused_sgd_${i}_${crypto.randomUUID()}`,
      )
    )
  );
  const opt = new SGD(vars, options);
  const seen: Float32Array[][] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const grads = Object.fromEntries(
        vars.map((v, i) => [v.name, tf.tensor(values(v.size, 100 * step + i, 0.05), v.shape)]),
      );
      opt.lr = options.lr * (1 - 0.1 * step); // a schedule between steps
      opt.step(grads);
      tf.dispose(Object.values(grads));
      const { buffers } = opt.state();
      seen.push([
        ...vars.map((v) => v.dataSync() as Float32Array),
        ...vars.flatMap((v) =>
          buffers.has(v.name) ? [buffers.get(v.name)!.dataSync()] : []
        ) as Float32Array[],
      ]);
    }
    return seen;
  } finally {
    opt.dispose();
    tf.dispose(vars);
  }
}

function assertSameBits(a: Float32Array[][], b: Float32Array[][], what: string) {
  assertEquals(a.length, b.length);
  a.forEach((step, s) => {
    assertEquals(step.length, b[s].length, `${what}: tensors at step ${s + 1}`);
    step.forEach((t, i) => {
      const u = b[s][i];
      const x = new Uint32Array(t.buffer, t.byteOffset, t.length);
      const y = new Uint32Array(u.buffer, u.byteOffset, u.length);
      const at = x.findIndex((v, j) => v !== y[j]);
      assert(at < 0, `${what}: step ${s + 1}, tensor ${i}, element ${at}: ${t[at]} vs ${u[at]}`);
    });
  });
}

Deno.test("fused SGD: bit-identical to the tensor path (momentum, weight decay, lr schedule)", async () => {
  await onWasm(() => {
    assert(nativeKernels().active, `native kernels: ${nativeKernels().notice}`);
    const cases = [
      { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
      { lr: 0.1, momentum: 0.9 },
      { lr: 0.003, weightDecay: 1e-3 },
      { lr: 0.7 },
    ];
    for (const options of cases) {
      assert(fusedSgdActive());
      const before = tf.memory().numTensors;
      const fused = run(options, 3);
      assertEquals(tf.memory().numTensors, before, "the fused path leaks no tensors");
      withWasmKernels(() => {
        assert(!fusedSgdActive());
        const tensors = run(options, 3);
        assertSameBits(fused, tensors, JSON.stringify(options));
      });
    }
  });
});

Deno.test("fused SGD: a profiled step shows the one kernel per parameter, not Multiply/Add/Sub", async () => {
  await onWasm(async () => {
    const v = tf.variable(tf.ones([5]), true, `fused_sgd_profile_${crypto.randomUUID()}`);
    const g = tf.fill([5], 0.5);
    const opt = new SGD([v], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    const info = await tf.profile(() => opt.step({ [v.name]: g }));
    const names = info.kernels.map((k) => k.name);
    assertEquals(names.filter((n) => n === FUSED_SGD_KERNEL).length, 1, names.join());
    assert(!names.includes("Multiply"), names.join());
    // g = 0.5 + 0.1·1 = 0.6; buf = 0.6; w = 1 − 0.1·0.6 = 0.94 (float32 throughout)
    assertEquals([...v.dataSync()], new Array(5).fill(Math.fround(0.94)));
    // A checkpoint's buffers survive loadState into a fresh optimizer and continue the run.
    const copy = new SGD([v], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    copy.loadState(opt.state());
    assertEquals(
      [...copy.state().buffers.get(v.name)!.dataSync()],
      new Array(5).fill(0.6).map(Math.fround),
    );
    copy.step({ [v.name]: g });
    opt.dispose();
    copy.dispose();
    tf.dispose([v, g]);
  });
});

Deno.test("fused SGD: a gradient of the wrong size or dtype is refused, naming it", async () => {
  await onWasm(() => {
    const p = tf.zeros([4]), g = tf.zeros([3]), gi = tf.zeros([4], "int32");
    assertThrows(
      () => fusedSgdStep(p, g, undefined, { lr: 1, momentum: 0, weightDecay: 0 }),
      RangeError,
      "[4]",
    );
    assertThrows(
      () => fusedSgdStep(p, gi, undefined, { lr: 1, momentum: 0, weightDecay: 0 }),
      TypeError,
      "grad of dtype int32",
    );
    tf.dispose([p, g, gi]);
  });
});
