import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertLessOrEqual,
  assertThrows,
} from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import {
  type Array4D,
  Conv2d,
  ConvArgumentError,
  ConvTranspose2d,
  loadTorchWeights,
  refusals,
  shapeGrid,
  shapeGridCounts,
  torchWeights,
} from "../lib/nn/mod.ts";
import { assertClose, nchw, nhwc } from "./_nn_helpers.ts";

// Hand-computed cases: x = [[1, 2], [3, 4]], PyTorch weight w = [[1, 0], [2, -1]], no bias.
const X: Array4D = [[[[1, 2], [3, 4]]]];
const W: Array4D = [[[[1, 0], [2, -1]]]];

function run(layer: Conv2d | ConvTranspose2d, x: Array4D, weight: Array4D, bias?: number[]) {
  loadTorchWeights(layer, bias ? { weight, bias } : { weight });
  const y = layer.apply(nhwc(x)) as tf.Tensor;
  const out = nchw(y);
  y.dispose();
  return out;
}

Deno.test("Conv2d: 2×2 input, 2×2 kernel, by hand", () => {
  const conv = (stride: number, padding: number) =>
    new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 2, stride, padding, bias: false });
  assertClose(run(conv(1, 0), X, W), [[[[3]]]]);
  assertClose(run(conv(1, 1), X, W), [[[[-1, 0, 4], [-3, 3, 10], [0, 3, 4]]]]);
  assertClose(run(conv(2, 1), X, W), [[[[-1, 4], [0, 4]]]]);
  const withBias = new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 2 });
  assertClose(run(withBias, X, W, [0.5]), [[[[3.5]]]]);
});

Deno.test("ConvTranspose2d: 2×2 input, 2×2 kernel, by hand", () => {
  const up = (stride: number, padding: number, outputPadding = 0) =>
    new ConvTranspose2d({
      inChannels: 1,
      outChannels: 1,
      kernelSize: 2,
      stride,
      padding,
      outputPadding,
      bias: false,
    });
  // Each input pixel stamps the kernel scaled by its value; overlapping stamps add up.
  assertClose(run(up(1, 0), X, W), [[[[1, 2, 0], [5, 7, -2], [6, 5, -4]]]]);
  const s2 = [[[[1, 0, 2, 0], [2, -1, 4, -2], [3, 0, 4, 0], [6, -3, 8, -4]]]];
  assertClose(run(up(2, 0), X, W), s2);
  assertClose(run(up(2, 1), X, W), [[[[-1, 4], [0, 4]]]]);
  assertClose(run(up(2, 1, 1), X, W), [[[[-1, 4, -2], [0, 4, 0], [-3, 8, -4]]]]);
  // output_padding beyond the canvas: a zero row and column at the bottom/right (bias only).
  const padded = s2[0][0].map((row) => [...row, 0]).concat([[0, 0, 0, 0, 0]]);
  assertClose(run(up(2, 0, 1), X, W), [[padded]]);
  const withBias = new ConvTranspose2d({
    inChannels: 1,
    outChannels: 1,
    kernelSize: 2,
    stride: 2,
    outputPadding: 1,
  });
  assertClose(run(withBias, X, W, [0.5]), [[padded.map((r) => r.map((v) => v + 0.5))]]);
});

interface TorchCase {
  layer: "Conv2d" | "ConvTranspose2d";
  args: Record<string, number | number[] | boolean>;
  input: Array4D;
  weight: Array4D;
  bias: number[] | null;
  output: Array4D;
}
const torchCases: { cases: TorchCase[] } = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/torch_conv_reference.json", import.meta.url)),
);

Deno.test("Conv2d and ConvTranspose2d equal PyTorch 1.13 outputs for the same weights", () => {
  assertEquals(torchCases.cases.length, 9);
  for (const c of torchCases.cases) {
    const a = c.args;
    const args = {
      inChannels: a.in_channels as number,
      outChannels: a.out_channels as number,
      kernelSize: a.kernel_size as number,
      stride: a.stride as number,
      padding: a.padding as number,
      dilation: a.dilation as number | undefined,
      bias: a.bias as boolean | undefined,
    };
    const layer = c.layer === "Conv2d"
      ? new Conv2d(args)
      : new ConvTranspose2d({ ...args, outputPadding: a.output_padding as number | undefined });
    assertClose(run(layer, c.input, c.weight, c.bias ?? undefined), c.output, 1e-5, 1e-4);
  }
});

Deno.test("shape grid: formula = measured = definition for every valid combination", () => {
  const rows = shapeGrid();
  assertEquals(rows.length, 360);
  const mismatches = rows.filter((r) => r.status === "mismatch");
  assertEquals(mismatches, []);
  assertEquals(rows.filter((r) => r.status === "refused").length, 84);
  for (const r of rows.filter((r) => r.status === "equal")) {
    assertLessOrEqual(r.maxAbsDiff, 1e-4);
  }
});

Deno.test("shape grid: counts and refusals grouped by argument and rule agree with PyTorch's refusals", async () => {
  const rows = shapeGrid();
  assertEquals(shapeGridCounts(rows), [
    { layer: "Conv2d", combinations: 90, equal: 81, refused: 9, mismatch: 0 },
    { layer: "ConvTranspose2d", combinations: 270, equal: 195, refused: 75, mismatch: 0 },
  ]);
  // Every refused row carries the argument its ConvArgumentError named, and the rule.
  for (const r of rows.filter((r) => r.status === "refused")) {
    assert(r.refusedArgument && r.rule && !/\d/.test(r.rule.replace("≤ 0", "")), JSON.stringify(r));
  }
  // PyTorch 1.13's own refusals of the same sweep, grouped by the argument its message blames.
  const torch: { rows: { layer: string; out: number | null; error?: string }[] } = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/torch_shape_sweep.json", import.meta.url)),
  );
  const expected = new Map<string, number>();
  for (const r of torch.rows.filter((r) => r.out === null)) {
    const arg = r.error!.startsWith("output padding") ? "outputPadding" : "kernelSize";
    expected.set(`${r.layer} ${arg}`, (expected.get(`${r.layer} ${arg}`) ?? 0) + 1);
  }
  const ours = refusals(rows);
  assertEquals(new Map(ours.map((g) => [`${g.layer} ${g.argument}`, g.count])), expected);
  assertEquals(ours.map((g) => g.rule), [
    "outputPadding must be smaller than either stride or dilation",
    "output size ≤ 0: the kernel is larger than the padded input",
  ]);
});

Deno.test("Conv2d: stride > 1 with dilation > 1 (refused by tf.conv2d) matches the definition", () => {
  const rows = shapeGrid({
    kernelSizes: [3],
    strides: [2, 3],
    paddings: [2],
    dilations: [2],
    outputPaddings: [0, 1],
  });
  assertEquals(rows.length, 6);
  assert(rows.every((r) => r.status === "equal"), JSON.stringify(rows));
});

Deno.test("default initialisation: uniform ±1/√fan_in with PyTorch's fan_in", () => {
  const check = (layer: Conv2d | ConvTranspose2d, fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn);
    const { weight, bias } = torchWeights(layer);
    for (const [name, t] of [["weight", weight], ["bias", bias!]] as const) {
      const v = Array.from(t.dataSync() as Float32Array);
      const max = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      assertLessOrEqual(max, bound, `${name} within ±${bound}`);
      if (name === "weight") {
        // Thousands of uniform draws reach close to the bound and have std bound/√3.
        assertGreater(max, 0.98 * bound, `${name} max |w| ${max} should approach ${bound}`);
        const mean = v.reduce((s, x) => s + x, 0) / v.length;
        const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
        assertAlmostEquals(std, bound / Math.sqrt(3), 0.05 * bound);
      }
    }
    tf.dispose([weight, bias!]);
  };
  // 160 → 32 channels, 3×3: Conv2d fan_in = 160·9; ConvTranspose2d fan_in = 32·9 (weight dim 1).
  const args = { inChannels: 160, outChannels: 32, kernelSize: 3, padding: 1 };
  check(new Conv2d(args), 160 * 9);
  check(new ConvTranspose2d(args), 32 * 9);
  // 1×1 transition convolution 160 → 128.
  const t = { inChannels: 160, outChannels: 128, kernelSize: 1 };
  check(new Conv2d(t), 160);
  check(new ConvTranspose2d(t), 128);
});

Deno.test("default initialisation is reproducible from a seed", () => {
  const a = torchWeights(new Conv2d({ inChannels: 2, outChannels: 2, kernelSize: 3, seed: 7 }));
  const b = torchWeights(new Conv2d({ inChannels: 2, outChannels: 2, kernelSize: 3, seed: 7 }));
  assertEquals(Array.from(a.weight.dataSync()), Array.from(b.weight.dataSync()));
  assert(a.bias!.dataSync()[0] !== a.weight.dataSync()[0]);
  tf.dispose([a.weight, a.bias!, b.weight, b.bias!]);
});

Deno.test("forward passes leak no tensors", () => {
  const layers = [
    new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1 }),
    new Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, stride: 2, dilation: 2 }),
    new ConvTranspose2d({ inChannels: 3, outChannels: 4, kernelSize: 3, stride: 2, padding: 1 }),
    new ConvTranspose2d({ inChannels: 3, outChannels: 4, kernelSize: 3, dilation: 2 }),
    new ConvTranspose2d({
      inChannels: 3,
      outChannels: 4,
      kernelSize: 3,
      stride: 1,
      dilation: 3,
      outputPadding: 2,
    }),
  ];
  const x = tf.randomNormal([2, 6, 6, 3]);
  for (const layer of layers) {
    (layer.apply(x) as tf.Tensor).dispose(); // first call builds the weights
    const baseline = tf.memory().numTensors;
    const y = layer.apply(x) as tf.Tensor;
    assertEquals(tf.memory().numTensors, baseline + 1, `${layer.name}: only the output is new`);
    y.dispose();
    assertEquals(tf.memory().numTensors, baseline);
    layer.dispose();
  }
  x.dispose();
});

Deno.test("bad arguments and inputs get errors that name them", () => {
  assertThrows(
    () => new Conv2d({ inChannels: 0, outChannels: 1, kernelSize: 3 }),
    ConvArgumentError,
    "inChannels must be positive",
  );
  assertThrows(
    () => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: [3, 0] }),
    ConvArgumentError,
    "kernelSize[1] must be positive",
  );
  assertThrows(
    () => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 3, stride: 1.5 }),
    ConvArgumentError,
    "stride must be an integer",
  );
  assertThrows(
    () => new ConvTranspose2d({ inChannels: 1, outChannels: 1, kernelSize: 3, outputPadding: 1 }),
    ConvArgumentError,
    "outputPadding must be smaller than either stride or dilation",
  );
  const conv = new Conv2d({ inChannels: 3, outChannels: 1, kernelSize: 3 });
  assertThrows(
    () => conv.apply(tf.zeros([1, 5, 5, 2])),
    RangeError,
    "expects input of shape [batch, height, width, 3] (NHWC), got [1, 5, 5, 2]",
  );
  assertThrows(() => conv.apply(tf.zeros([1, 2, 2, 3])), ConvArgumentError, "output size");
  assertThrows(
    () => loadTorchWeights(conv, { weight: tf.zeros([1, 3, 2, 2]), bias: [0] }),
    RangeError,
    "weight must have PyTorch shape [1, 3, 3, 3], got [1, 3, 2, 2]",
  );
  assertThrows(
    () => loadTorchWeights(conv, { weight: tf.zeros([1, 3, 3, 3]) }),
    RangeError,
    "weights.bias of shape [1] is required",
  );
  const up = new ConvTranspose2d({ inChannels: 3, outChannels: 2, kernelSize: 1, bias: false });
  assertThrows(
    () => loadTorchWeights(up, { weight: tf.zeros([2, 3, 1, 1]) }),
    RangeError,
    "ConvTranspose2d weight must have PyTorch shape [3, 2, 1, 1]",
  );
});

Deno.test("torchWeights round-trips loadTorchWeights in PyTorch layout", () => {
  const up = new ConvTranspose2d({ inChannels: 2, outChannels: 3, kernelSize: [2, 3] });
  const weight = tf.randomNormal([2, 3, 2, 3]);
  const bias = tf.tensor1d([1, 2, 3]);
  loadTorchWeights(up, { weight, bias });
  const back = torchWeights(up);
  assertEquals(back.weight.shape, [2, 3, 2, 3]);
  assertEquals(Array.from(back.weight.dataSync()), Array.from(weight.dataSync()));
  assertEquals(Array.from(back.bias!.dataSync()), [1, 2, 3]);
  tf.dispose([weight, bias, back.weight, back.bias!]);
});
