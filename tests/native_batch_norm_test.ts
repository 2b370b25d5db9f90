// BatchNorm2d on oneDNN's batch normalization (lib/backend/native/batch_norm.ts) against its tfjs
// path (native kernels off): outputs, gradients and running statistics, training and eval.
import { assert, assertEquals } from "@std/assert";
import { nativeKernels, tf } from "../lib/backend/mod.ts";
import { onWasm, seededStep, withWasmKernels } from "./_native_helpers.ts";
import { nativeBatchNormActive, runningAverages } from "../lib/backend/native/batch_norm.ts";
import { BatchNorm2d, DenseNet } from "../lib/nn/mod.ts";

/** Deterministic values: an offset and scale per channel, so that the statistics matter. */
function input(shape: number[], seed: number): tf.Tensor4D {
  const n = shape.reduce((a, b) => a * b);
  const c = shape[3];
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const ch = i % c;
    out[i] = (s / 1073741824 - 1) * (0.5 + ch % 5) + (ch % 3) - 1;
  }
  return tf.tensor4d(out, shape as [number, number, number, number]);
}

interface Outcome {
  y: Float32Array;
  dx: Float32Array;
  dGamma: Float32Array;
  dBeta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  evalY: Float32Array;
}

/** Two training steps' forward and backward through one BatchNorm2d, then an eval pass. */
function run(shape: number[]): Outcome {
  const bn = new BatchNorm2d({ numFeatures: shape[3], name: `bn_${crypto.randomUUID()}` });
  const x = input(shape, 7), x2 = input(shape, 8), dy = input(shape, 9);
  try {
    bn.apply(x2, { training: true }); // builds, and moves the running statistics once
    // γ and β other than 1 and 0, so that their role in the gradient is checked.
    tf.tidy(() =>
      bn.setWeights([
        tf.linspace(0.5, 1.5, shape[3]),
        tf.linspace(-0.2, 0.3, shape[3]),
        ...bn.getWeights().slice(2),
      ])
    );
    const [gamma, beta] = bn.trainableWeights.map((w) => w.read() as tf.Variable);
    let y: tf.Tensor | undefined;
    const { dx, dGamma, dBeta } = tf.tidy(() => {
      const [dxT, dGammaT, dBetaT] = tf.grads((xx: tf.Tensor, _g: tf.Tensor, _b: tf.Tensor) => {
        const out = bn.apply(xx, { training: true }) as tf.Tensor;
        y = tf.keep(out.clone());
        return out;
      })([x, gamma, beta], dy);
      return { dx: dxT.dataSync(), dGamma: dGammaT.dataSync(), dBeta: dBetaT.dataSync() };
    });
    const evalY = tf.tidy(() => (bn.apply(x, { training: false }) as tf.Tensor).dataSync());
    const [, , runningMean, runningVar] = tf.tidy(() => bn.getWeights().map((w) => w.dataSync()));
    const out = {
      y: y!.dataSync() as Float32Array,
      dx: dx as Float32Array,
      dGamma: dGamma as Float32Array,
      dBeta: dBeta as Float32Array,
      runningMean: runningMean as Float32Array,
      runningVar: runningVar as Float32Array,
      evalY: evalY as Float32Array,
    };
    y!.dispose();
    return out;
  } finally {
    tf.dispose([x, x2, dy]);
    bn.dispose();
  }
}

function assertClose(a: Float32Array, b: Float32Array, tolerance: number, what: string) {
  assertEquals(a.length, b.length, what);
  let worst = 0, scale = 1e-3;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  assert(worst <= tolerance * scale, `${what}: differs by ${worst} (largest value ${scale})`);
}

const SHAPES = [[4, 6, 5, 3], [8, 8, 8, 64], [2, 3, 3, 160]];

Deno.test("native BatchNorm2d: outputs, gradients and running statistics match the tfjs path", async () => {
  await onWasm(() => {
    assert(nativeKernels().active, `native kernels: ${nativeKernels().notice}`);
    for (const shape of SHAPES) {
      assert(nativeBatchNormActive(tf.zeros(shape)));
      const native = run(shape);
      const reference = withWasmKernels(() => {
        assert(!nativeBatchNormActive(tf.zeros(shape)));
        return run(shape);
      });
      for (const key of Object.keys(native) as (keyof Outcome)[]) {
        assertClose(native[key], reference[key], 2e-5, `[${shape}] ${key}`);
      }
      // The comparison can fail: the statistics moved, the gradient is not zero.
      assert(reference.runningMean.some((v) => Math.abs(v) > 1e-3));
      assert(reference.dGamma.some((v) => Math.abs(v) > 1e-3));
    }
  });
});

Deno.test("native BatchNorm2d: bit-identical run to run, and it leaves no more tensors behind than the tfjs path", async () => {
  await onWasm(() => {
    const left = () => {
      const before = tf.memory().numTensors;
      run([8, 8, 8, 64]);
      return tf.memory().numTensors - before;
    };
    run([8, 8, 8, 64]);
    const native = left();
    const a = run([8, 8, 8, 64]), b = run([8, 8, 8, 64]);
    for (const key of Object.keys(a) as (keyof Outcome)[]) {
      assertEquals(new Uint32Array(a[key].buffer), new Uint32Array(b[key].buffer), key);
    }
    withWasmKernels(() => {
      run([8, 8, 8, 64]);
      assertEquals(native, left(), "tensors left by one run (this test's own, on both paths)");
    });
  });
});

Deno.test("native BatchNorm2d: a training step profiles as the two native kernels", async () => {
  await onWasm(async () => {
    const bn = new BatchNorm2d({ numFeatures: 4, name: `bn_${crypto.randomUUID()}` });
    const x = input([2, 3, 3, 4], 1);
    const info = await tf.profile(() =>
      tf.tidy(() => tf.grad((v: tf.Tensor) => bn.apply(v, { training: true }) as tf.Tensor)(x))
    );
    const names = info.kernels.map((k) => k.name);
    assert(names.includes("TconvBatchNormTraining"), names.join());
    assert(names.includes("TconvBatchNormGrad"), names.join());
    assert(!names.includes("Mean") && !names.includes("Sum"), names.join());
    tf.dispose(x);
    bn.dispose();
  });
});

Deno.test("a DenseNet training step on the native kernels gives the same bits run to run", async () => {
  await onWasm(() => {
    assert(nativeKernels().active, `native kernels: ${nativeKernels().notice}`);
    const step = (): Uint32Array[] => {
      const model = DenseNet({ variant: "conv", seed: 5 });
      const out: Uint32Array[] = [];
      try {
        tf.tidy(() => {
          const { value, grads } = seededStep(model, [1, 7, 3, 0]);
          // The loss, every gradient, and every weight with the running statistics.
          const all = [value, ...grads, ...model.getWeights()];
          for (const t of all) {
            out.push(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
          }
        });
        return out;
      } finally {
        model.dispose();
      }
    };
    const a = step(), b = step();
    assertEquals(a.length, b.length);
    a.forEach((t, i) => assertEquals(t, b[i], `tensor ${i} (loss, gradients, weights and stats)`));
  });
});

Deno.test("running averages in one kernel: the tensor path's bits (momentum 0.1 and 0.3, n = 1 and more)", async () => {
  await onWasm(() => {
    for (const [momentum, count] of [[0.1, 65536], [0.3, 7], [0.1, 1]]) {
      tf.tidy(() => {
        const vec = (seed: number, offset: number) =>
          tf.tensor1d(Array.from(input([1, 1, 1, 37], seed).dataSync()).map((v) => v + offset));
        const [rm, rv, mean] = [vec(1, 0), vec(2, 3), vec(3, 0)];
        const variance = tf.abs(vec(4, 0.5));
        const [a, b] = runningAverages(rm, rv, mean, variance, momentum, count);
        const unbiased = count > 1 ? variance.mul(count / (count - 1)) : variance;
        const wantMean = rm.mul(1 - momentum).add(mean.mul(momentum));
        const wantVar = rv.mul(1 - momentum).add(unbiased.mul(momentum));
        const bits = (t: tf.Tensor) =>
          new Uint32Array((t.dataSync() as Float32Array).slice().buffer);
        assertEquals(bits(a), bits(wantMean), `running mean, momentum ${momentum}, n ${count}`);
        assertEquals(bits(b), bits(wantVar), `running variance, momentum ${momentum}, n ${count}`);
        assert(bits(b).some((v, i) => v !== bits(rv)[i]), "the variance moved");
      });
    }
  });
});
