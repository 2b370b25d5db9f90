import { assert, assertEquals } from "@std/assert";
import { tf, useBackend } from "../lib/backend/mod.ts";
import { installFrugalBackward } from "../lib/backend/_frugal_backward.ts";
import { DenseNet } from "../lib/nn/mod.ts";
import { crossEntropy } from "../lib/train/mod.ts";

await useBackend("wasm");

/** Gradients of the DenseNet's loss, and the peak tensor bytes while computing them. */
function denseNetGrads(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor1D) {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let peak = 0;
  const { value, grads } = tf.variableGrads(() => {
    const loss = crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y);
    return loss;
  }, vars);
  peak = Math.max(peak, tf.memory().numBytes);
  const out = vars.map((v) => grads[v.name].dataSync().slice());
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

// First in this file: it checks that importing the library installed the frugal backward pass.
Deno.test("frugal backward: intermediate gradients are freed during the backward pass", () => {
  // A chain of 40 elementwise ops on a 1 MB tensor. The first op is an identity whose gradient,
  // the last one computed, records the live tensor bytes: tfjs alone still holds the 40
  // intermediate gradients and 40 saved inputs there (80 MB); freed as it goes, a few remain.
  const x = tf.variable(tf.randomNormal([256, 1024], 0, 1, "float32", 1));
  const liveAtEnd = () => {
    let live = 0;
    const probe = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.clone(args[0] as tf.Tensor),
      gradFunc: (dy: tf.Tensor) => {
        live = tf.memory().numBytes;
        return tf.clone(dy);
      },
    }));
    const { value, grads } = tf.variableGrads(() => {
      let h = probe(x) as tf.Tensor;
      for (let i = 0; i < 40; i++) h = tf.sin(h);
      return tf.sum(h) as tf.Scalar;
    }, [x]);
    tf.dispose([value, grads[x.name]]);
    return live;
  };
  const frugal = liveAtEnd();
  const uninstall = installFrugalBackward();
  uninstall();
  let plain: number;
  try {
    plain = liveAtEnd();
  } finally {
    installFrugalBackward();
  }
  const mb = 2 ** 20;
  assert(plain > 80 * mb, `tfjs alone: ${plain / mb} MB live`);
  assert(frugal < 10 * mb, `frugal: ${frugal / mb} MB live`);
  x.dispose();
});

Deno.test("frugal backward: same DenseNet gradients, bit for bit, and no leaked tensors", () => {
  const model = DenseNet({ variant: "transposed", seed: 2 });
  const x = tf.randomNormal([3, 32, 32, 3], 0, 1, "float32", 4);
  const y = tf.tensor1d([1, 4, 9], "int32");
  const before = tf.memory().numTensors;
  const frugal = denseNetGrads(model, x, y);
  assertEquals(tf.memory().numTensors, before, "tensors after the frugal backward pass");
  const uninstall = installFrugalBackward(); // already installed by lib/backend/tf.ts
  uninstall();
  try {
    const plain = denseNetGrads(model, x, y);
    assertEquals(frugal.length, plain.length);
    frugal.forEach((g, i) => assertEquals(g, plain[i], `gradient ${i}`));
  } finally {
    installFrugalBackward();
  }
  tf.dispose([x, y]);
  model.dispose();
});

Deno.test("frugal backward: a gradient returned as is for two inputs survives; second order works", () => {
  const a = tf.variable(tf.tensor1d([1, 2, 3])), b = tf.variable(tf.tensor1d([4, 5, 6]));
  // Both inputs get the very same dy object back: it must not be freed after the first use.
  const both = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.add(args[0] as tf.Tensor, args[1] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => [dy, dy],
  }));
  const { value, grads } = tf.variableGrads(
    () => tf.sum(tf.mul(both(tf.sin(a), tf.cos(b)) as tf.Tensor, 3)) as tf.Scalar,
    [a, b],
  );
  const close = (t: tf.Tensor, want: number[]) =>
    Array.from(t.dataSync()).forEach((v, i) =>
      assert(Math.abs(v - want[i]) < 1e-5, `${v} ≠ ${want[i]}`)
    );
  close(grads[a.name], [1, 2, 3].map((v) => 3 * Math.cos(v)));
  close(grads[b.name], [4, 5, 6].map((v) => -3 * Math.sin(v)));
  tf.dispose([value, ...Object.values(grads)]);
  // Second order: d²/dx² sin(x) = −sin(x); the inner backward runs while a tape records.
  const d2 = tf.grad(tf.grad((x: tf.Tensor) => tf.sin(x)))(tf.tensor1d([0.5, 1]));
  close(d2, [-Math.sin(0.5), -Math.sin(1)]);
  tf.dispose([d2, a, b]);
});
