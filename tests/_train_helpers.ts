// A tiny deterministic in-memory dataset and model for training tests.
import { tf } from "../lib/backend/tf.ts";
import { BatchNorm2d, Conv2d, FlattenCHW, linear } from "../lib/nn/mod.ts";
import type { LabelledBatch, TrainingData } from "../lib/train/mod.ts";

/** `n` 8×8 RGB images whose colour depends on the label (learnable), plus noise. */
export function tinyData(
  options: { trainSize?: number; testSize?: number; seed?: number; poison?: [number, number] } = {},
): TrainingData {
  const { trainSize = 48, testSize = 24, seed = 1, poison } = options;
  const make = (n: number, s: number) =>
    tf.tidy(() => {
      const y = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 3), "int32");
      const centers = tf.tensor2d([[1, 0, 0], [0, 1, 0], [0, 0, 1]]).gather(y).reshape([
        n,
        1,
        1,
        3,
      ]);
      const x = tf.randomNormal([n, 8, 8, 3], 0, 1, "float32", s).add(centers.mul(1.5));
      return { x: tf.keep(x), y: tf.keep(y) };
    });
  const train = make(trainSize, seed), test = make(testSize, seed + 1);
  function* batches(set: { x: tf.Tensor; y: tf.Tensor }, order: number[], size: number, epoch = 0) {
    for (let i = 0, step = 1; i < order.length; i += size, step++) {
      const idx = tf.tensor1d(order.slice(i, i + size), "int32");
      let x = set.x.gather(idx) as tf.Tensor4D;
      if (poison && poison[0] === epoch && poison[1] === step) {
        const bad = tf.mul(x, Number.NaN) as tf.Tensor4D;
        x.dispose();
        x = bad;
      }
      const b: LabelledBatch = { x, y: set.y.gather(idx) as tf.Tensor1D };
      idx.dispose();
      yield b;
    }
  }
  const shuffled = (epoch: number) => {
    const order = Array.from({ length: trainSize }, (_, i) => i);
    let s = seed * 7919 + epoch;
    for (let i = order.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  };
  return {
    name: "tiny test set",
    classNames: ["red", "green", "blue"],
    trainSize,
    testSize,
    trainBatches: (epoch, size) => batches(train, shuffled(epoch), size, epoch),
    testBatches: (size) => batches(test, Array.from({ length: testSize }, (_, i) => i), size),
  };
}

/** A small convnet of the library's layers: Conv2d → BatchNorm → ReLU → flatten → Linear. */
export function tinyModel(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let h = new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, seed, name: "c" })
    .apply(input) as tf.SymbolicTensor;
  h = new BatchNorm2d({ numFeatures: 4, name: "bn" }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
  h = new FlattenCHW().apply(h) as tf.SymbolicTensor;
  const out = linear({ inFeatures: 256, outFeatures: 3, seed: seed + 100, name: "fc" }).apply(h);
  return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
}
