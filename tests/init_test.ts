import { assert, assertEquals, assertGreater, assertLessOrEqual, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { Conv2d, ConvTranspose2d, torchWeights } from "../lib/nn/conv.ts";
import { DenseNet } from "../lib/nn/densenet.ts";
import { initShape, torchFanIn, torchUniformBound } from "../lib/nn/init.ts";

/** Largest |value| of a tensor. */
function maxAbs(t: tf.Tensor): number {
  return Array.from(t.dataSync()).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

/** Checks that the weights are uniform up to `bound`: within it, and (thousands of draws) near it. */
function assertBound(weight: tf.Tensor, bound: number, what: string): void {
  const max = maxAbs(weight);
  assertLessOrEqual(max, bound, `${what}: max |w| ${max} within ±${bound}`);
  assertGreater(max, 0.97 * bound, `${what}: max |w| ${max} should approach ${bound}`);
}

Deno.test("init: the swapped scheme takes fan_in from the counterpart layer's weight shape", () => {
  assertEquals(initShape([32, 160, 3, 3]), [32, 160, 3, 3]);
  assertEquals(initShape([32, 160, 3, 3], "swapped"), [160, 32, 3, 3]);
  // Conv2d(160→32, 3×3) weight [32, 160, 3, 3]: fan_in 1440; its counterpart ConvTranspose2d(160→32)
  // has weight [160, 32, 3, 3], fan_in 288.
  assertEquals(torchFanIn(initShape([32, 160, 3, 3], "swapped")), 32 * 9);
  assertThrows(
    () => initShape([1, 1], "xavier" as "default"),
    RangeError,
    'init must be one of default, swapped, got "xavier"',
  );
  assertThrows(
    () => new Conv2d({ inChannels: 1, outChannels: 1, kernelSize: 1, init: "other" as "default" }),
    RangeError,
    "init must be",
  );
});

Deno.test("init: PyTorch's bounds for both layer types, and swapped = the other type's default", () => {
  // 16 → 64 channels, 3×3. PyTorch: Conv2d fan_in = in·k² = 144 (bound 1/12); ConvTranspose2d
  // fan_in = size(1)·k² = out·k² = 576 (bound 1/24). Weight and bias share the bound.
  const args = { inChannels: 16, outChannels: 64, kernelSize: 3, padding: 1 };
  const [convBound, transBound] = [1 / 12, 1 / 24];
  assertEquals(torchUniformBound(16 * 9), convBound);
  const cases = [
    [new Conv2d(args), convBound, "Conv2d default"],
    [new Conv2d({ ...args, init: "swapped" }), transBound, "Conv2d swapped"],
    [new ConvTranspose2d(args), transBound, "ConvTranspose2d default"],
    [new ConvTranspose2d({ ...args, init: "swapped" }), convBound, "ConvTranspose2d swapped"],
  ] as const;
  for (const [layer, bound, what] of cases) {
    const { weight, bias } = torchWeights(layer);
    assertBound(weight, bound, what);
    assertLessOrEqual(maxAbs(bias!), bound, `${what} bias`);
    tf.dispose([weight, bias!]);
  }
});

Deno.test("init: a DenseNet's swapped init changes only the layers the two variants swap", () => {
  // getWeights() hands out the variables themselves: read them, never dispose them.
  const layer = (net: tf.LayersModel, name: string) => maxAbs(net.getLayer(name).getWeights()[0]);
  const conv = DenseNet({ variant: "conv", seed: 3, init: "swapped" });
  const trans = DenseNet({ variant: "transposed", seed: 3, init: "swapped" });
  const convDefault = DenseNet({ variant: "conv", seed: 3 });
  try {
    // denseblock1_conv1 is 64 → 32, 3×3: conv default 1/√576, transposed default 1/√288.
    const [c, t] = [1 / Math.sqrt(64 * 9), 1 / Math.sqrt(32 * 9)];
    assertBound(conv.getLayer("denseblock1_conv1").getWeights()[0], t, "conv, swapped");
    assertBound(trans.getLayer("denseblock1_conv1").getWeights()[0], c, "transposed, swapped");
    assertBound(convDefault.getLayer("denseblock1_conv1").getWeights()[0], c, "conv, default");
    // transition1_conv is 160 → 128, 1×1: conv default 1/√160, swapped 1/√128.
    assertBound(conv.getLayer("transition1_conv").getWeights()[0], 1 / Math.sqrt(128), "t1");
    // The first convolution (a Conv2d in both variants) keeps its default, bit for bit.
    assertEquals(layer(conv, "lowconv"), layer(convDefault, "lowconv"));
    assert((conv.getLayer("denseblock1_conv1") as Conv2d).init === "swapped");
    assert((conv.getLayer("lowconv") as Conv2d).init === "default");
  } finally {
    [conv, trans, convDefault].forEach((m) => m.dispose());
  }
});
