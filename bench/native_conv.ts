/**
 * Speed of the three convolution kernels on the wasm backend with and without the native
 * (oneDNN) kernels, interleaved: each round runs every kernel once natively and once on the wasm
 * kernels, so that a busy machine slows both alike; the fastest round of each is reported, with
 * GFLOPS (2 flops per multiply-add of the direct convolution) and the ratio.
 *
 * ```sh
 * deno run -A bench/native_conv.ts              # DenseNet's shapes and the probe's, batch 64
 * deno run -A bench/native_conv.ts --batch 32 --rounds 5
 * deno run -A bench/native_conv.ts --hwio       # also oneDNN on tfjs's filter layout (hwio)
 * ```
 *
 * `--hwio` adds a third contender to each round: oneDNN asked for the filter in tfjs's `hwio`
 * layout rather than in a layout of its choice (what the kernels do), which is why they reorder
 * the filter at each call: with `hwio` oneDNN picks slower kernels (named at the end).
 *
 * (At stride 1 the native input gradient is oneDNN's forward primitive on the flipped filter.)
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import { nativeImplementations } from "../lib/backend/mod.ts";
import { startWasm, useNative } from "./_native.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    hwio: { type: "boolean", default: false },
  },
});
const batch = Number(values.batch), rounds = Number(values.rounds);
const modes = values.hwio ? ["native", "hwio", "wasm"] as const : ["native", "wasm"] as const;

/** `[label, h·w, k, in, out]` of convolutions the article's DenseNet runs, and the probe's. */
const SHAPES: [string, number, number, number, number][] = [
  ["probe 32×32 3×3 128→32", 32, 3, 128, 32],
  ["block1 32×32 1×1 112→128", 32, 1, 112, 128],
  ["block1 32×32 3×3 128→32", 32, 3, 128, 32],
  ["block2 16×16 1×1 240→128", 16, 1, 240, 128],
  ["block2 16×16 3×3 128→32", 16, 3, 128, 32],
  ["stem 32×32 3×3 3→64", 32, 3, 3, 64],
];

const { threads } = await startWasm("off");

/**
 * Milliseconds of one kernel call. Both kinds of kernel are synchronous, so the output is not read
 * back: reading 32 MB out of the threaded build's shared heap takes ~100 ms here, more than the
 * kernels themselves.
 */
function time(f: () => tf.Tensor): number {
  const t0 = performance.now();
  const out = f();
  const ms = performance.now() - t0;
  out.dispose();
  return ms;
}

console.log(`batch ${batch}, ${threads} threads, fastest of ${rounds} interleaved rounds`);
console.log(
  "shape                        | kernel       | native ms | wasm ms | native GF/s | ratio" +
    (values.hwio ? " | hwio ms | hwio GF/s" : ""),
);
for (const [label, hw, k, ci, co] of SHAPES) {
  const x = tf.randomNormal([batch, hw, hw, ci]) as tf.Tensor4D;
  const w = tf.randomNormal([k, k, ci, co]) as tf.Tensor4D;
  const dy = tf.randomNormal([batch, hw, hw, co]) as tf.Tensor4D;
  const kernels: [string, () => tf.Tensor][] = [
    ["forward", () => tf.conv2d(x, w, 1, "same")],
    ["backprop x", () => tf.conv2dTranspose(dy, w, x.shape, 1, "same")],
    [
      "backprop w",
      () =>
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          strides: 1,
          pad: "same",
          dataFormat: "NHWC",
          filterShape: w.shape,
        }) as tf.Tensor,
    ],
  ];
  const flops = 2 * batch * hw * hw * k * k * ci * co;
  for (const [name, f] of kernels) {
    const best = { native: Infinity, hwio: Infinity, wasm: Infinity };
    for (let r = 0; r <= rounds; r++) {
      for (const mode of modes) {
        useNative(mode !== "wasm", threads, { filterLayout: mode === "hwio" ? "hwio" : "any" });
        const ms = time(f);
        if (r > 0) best[mode] = Math.min(best[mode], ms); // round 0 warms up
      }
    }
    console.log(
      [
        label.padEnd(28),
        name.padEnd(12),
        best.native.toFixed(1).padStart(9),
        best.wasm.toFixed(1).padStart(7),
        (flops / best.native / 1e6).toFixed(0).padStart(11),
        (best.wasm / best.native).toFixed(1).padStart(5) + "×",
        ...(values.hwio
          ? [best.hwio.toFixed(1).padStart(7), (flops / best.hwio / 1e6).toFixed(0).padStart(9)]
          : []),
      ].join(" | "),
    );
  }
  tf.dispose([x, w, dy]);
}
const implementations = [...nativeImplementations()];
const chosen = (
  hwio: boolean,
) => [
  ...new Set(implementations.filter(([k]) => k.startsWith("hwio|") === hwio).map(([, v]) => v)),
];
console.log(`oneDNN implementations: ${chosen(false).join(", ")}`);
if (values.hwio) {
  console.log(`oneDNN implementations with hwio filters: ${chosen(true).join(", ")}`);
}
