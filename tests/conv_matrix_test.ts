import { assertEquals, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import {
  Conv2d,
  convMatrix,
  ConvTranspose2d,
  convTransposeAsConv2d,
  layerMatrixGaps,
  loadTorchWeights,
  matVec,
  transpose,
} from "../lib/nn/mod.ts";
import { assertClose, nchw, nhwc, randomArray } from "./_nn_helpers.ts";

Deno.test("convMatrix: a 2×2 kernel on a 3×3 input, by hand", () => {
  const { matrix, outH, outW } = convMatrix([[1, 2], [3, 4]], 3, 3);
  assertEquals([outH, outW], [2, 2]);
  assertEquals(matrix, [
    [1, 2, 0, 3, 4, 0, 0, 0, 0],
    [0, 1, 2, 0, 3, 4, 0, 0, 0],
    [0, 0, 0, 1, 2, 0, 3, 4, 0],
    [0, 0, 0, 0, 1, 2, 0, 3, 4],
  ]);
  assertEquals(matVec(matrix, [1, 2, 3, 4, 5, 6, 7, 8, 9]), [37, 47, 67, 77]);
});

for (const [stride, padding] of [[1, 0], [1, 1], [2, 1]]) {
  Deno.test(`conv(x) = C·vec(x) and convTranspose(y) = Cᵀ·vec(y) (3×3 kernel on 5×5, s=${stride} p=${padding})`, () => {
    const kernel = randomArray([1, 1, 3, 3], 11 + stride + padding);
    const x = randomArray([1, 1, 5, 5], 3);
    const { matrix, outH, outW } = convMatrix(kernel[0][0], 5, 5, { stride, padding });
    const geometry = { inChannels: 1, outChannels: 1, kernelSize: 3, stride, padding, bias: false };

    const conv = new Conv2d(geometry);
    loadTorchWeights(conv, { weight: kernel });
    const y = conv.apply(nhwc(x)) as tf.Tensor;
    const viaMatrix = matVec(matrix, x.flat(3));
    assertClose(nchw(y), [[chunk(viaMatrix, outW)]]);
    assertEquals(y.shape, [1, outH, outW, 1]);

    // The transposed convolution with the SAME kernel maps the 3×3 (or 5×5) output back to 5×5.
    const up = new ConvTranspose2d(geometry);
    loadTorchWeights(up, { weight: kernel });
    const v = randomArray([1, 1, outH, outW], 5);
    const back = up.apply(nhwc(v)) as tf.Tensor;
    assertClose(nchw(back), [[chunk(matVec(transpose(matrix), v.flat(3)), 5)]]);
    tf.dispose([y, back]);
  });
}

function chunk(values: number[], width: number): number[][] {
  return Array.from(
    { length: values.length / width },
    (_, i) => values.slice(i * width, (i + 1) * width),
  );
}

Deno.test("stride 1: ConvTranspose2d = Conv2d with flipped, channel-swapped kernel, padding d(k−1)−p", () => {
  const cases = [
    { kernelSize: 3, padding: 1 },
    { kernelSize: 3, padding: 0 },
    { kernelSize: 5, padding: 1, dilation: 2 },
    { kernelSize: [3, 2] as [number, number], padding: [2, 0] as [number, number] },
    // The fused LeakyReLU goes with the layer.
    { kernelSize: 3, padding: 1, leakyRelu: { alpha: 0.01, times: 2 as const } },
  ];
  const x = tf.randomNormal([2, 6, 6, 4]);
  for (const c of cases) {
    const t = new ConvTranspose2d({ inChannels: 4, outChannels: 3, ...c });
    const conv = convTransposeAsConv2d(t);
    const a = t.apply(x) as tf.Tensor, b = conv.apply(x) as tf.Tensor;
    assertEquals(a.shape, b.shape);
    const diff = tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
    assertEquals(diff < 1e-5, true, `max |difference| ${diff} for ${JSON.stringify(c)}`);
    tf.dispose([a, b]);
  }
  x.dispose();
});

Deno.test("convTransposeAsConv2d refuses what has no equivalent", () => {
  const mk = (args: Record<string, number>) =>
    new ConvTranspose2d({ inChannels: 1, outChannels: 1, kernelSize: 3, ...args });
  assertThrows(() => convTransposeAsConv2d(mk({ stride: 2 })), RangeError, "only stride 1");
  assertThrows(
    () => convTransposeAsConv2d(mk({ padding: 3 })),
    RangeError,
    "no Conv2d is equivalent",
  );
  assertThrows(
    () => convTransposeAsConv2d(mk({ dilation: 2, outputPadding: 1 })),
    RangeError,
    "outputPadding must be 0",
  );
});

Deno.test("layerMatrixGaps: Conv2d is C·vec(x) and ConvTranspose2d is Cᵀ·vec(y), leaving no tensors", () => {
  const x = tf.randomNormal([1, 5, 5, 1], 0, 1, "float32", 3) as tf.Tensor4D;
  const conv = new Conv2d({
    inChannels: 1,
    outChannels: 1,
    kernelSize: 3,
    padding: 1,
    bias: false,
    seed: 1,
  });
  conv.apply(x); // builds the weights, so that the count below sees only layerMatrixGaps' tensors
  const before = tf.memory().numTensors;
  const gaps = layerMatrixGaps(conv, x);
  assertEquals(tf.memory().numTensors, before);
  assertEquals(gaps.map((g) => [g.operation, g.from, g.to]), [
    ["Conv2d(x) vs C·vec(x)", [5, 5], [5, 5]],
    ["ConvTranspose2d(y) vs Cᵀ·vec(y)", [5, 5], [5, 5]],
  ]);
  for (const g of gaps) assertEquals(g.maxAbsDiff < 1e-5, true, `${g.operation}: ${g.maxAbsDiff}`);
  assertThrows(
    () =>
      layerMatrixGaps(
        new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 3, stride: 2, bias: false }),
        x,
      ),
    RangeError,
    "stride-1",
  );
  tf.dispose(x);
});
