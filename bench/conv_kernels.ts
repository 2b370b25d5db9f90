/**
 * Speed of the convolution kernels on tfjs's cpu and wasm backends, and of a training step.
 *
 * ```sh
 * deno run -A bench/conv_kernels.ts            # kernels, a layer stack, DenseNet step on wasm
 * deno run -A bench/conv_kernels.ts --cpu      # also the cpu backend (slow: many minutes)
 * ```
 *
 * Kernels run at the probe shape (batch 32, 32×32, 3×3, 128→32 channels) and a few variations;
 * each is run once to warm up and then timed over several runs (the fastest: the machine may be busy). GFLOPS count 2 flops
 * per multiply-add of the direct convolution, the same for the forward pass and both gradients.
 * @module
 */
import { tf } from "../lib/backend/tf.ts";
import { useBackend } from "../lib/backend/mod.ts";
import {
  installWasmConvKernels,
  uninstallWasmConvKernels,
  wasmFlavour,
} from "../lib/backend/wasm/mod.ts";
import { Conv2d, ConvTranspose2d } from "../lib/nn/conv.ts";
import { DenseNet } from "../lib/nn/densenet.ts";
import { convOutputSize } from "../lib/nn/shapes.ts";

const withCpu = Deno.args.includes("--cpu");

type Shape4 = [number, number, number, number];
interface ConvShape {
  label: string;
  x: Shape4;
  k: number;
  out: number;
  stride: number;
}

const SHAPES: ConvShape[] = [
  { label: "probe: n32 32×32 3×3 128→32", x: [32, 32, 32, 128], k: 3, out: 32, stride: 1 },
  { label: "n8 32×32 3×3 128→32", x: [8, 32, 32, 128], k: 3, out: 32, stride: 1 },
  { label: "n32 32×32 3×3 128→32 stride 2", x: [32, 32, 32, 128], k: 3, out: 32, stride: 2 },
  { label: "n8 32×32 1×1 160→128", x: [8, 32, 32, 160], k: 1, out: 128, stride: 1 },
];

/**
 * Fastest of `runs` timings of `f` (result read back, then disposed), after one warm-up; with
 * `runs` 0, a single cold run (for the cpu backend, whose kernels take seconds to minutes).
 */
function time(f: () => tf.Tensor | tf.Tensor[], runs: number): number {
  const once = () => {
    const t0 = performance.now();
    const out = f();
    for (const t of [out].flat()) t.dataSync();
    const ms = performance.now() - t0;
    tf.dispose(out);
    return ms;
  };
  if (runs === 0) return once();
  once();
  return Math.min(...Array.from({ length: runs }, once));
}

const rows: string[][] = [];
function report(...cells: (string | number)[]): void {
  const row = cells.map((c) => typeof c === "number" ? c.toFixed(c < 10 ? 2 : 0) : c);
  rows.push(row);
  console.log(row.join(" | "));
}

function kernels(backend: "cpu" | "wasm", runs: number): void {
  for (const s of SHAPES) {
    const [n, h, w, ci] = s.x;
    const pad = (s.k - 1) / 2;
    const size = { kernelSize: s.k, stride: s.stride, padding: pad };
    const [oh, ow] = [convOutputSize(h, size), convOutputSize(w, size)];
    const flops = 2 * n * oh * ow * s.k * s.k * ci * s.out;
    const x = tf.randomNormal(s.x);
    const f = tf.randomNormal([s.k, s.k, ci, s.out]);
    const dy = tf.randomNormal([n, oh, ow, s.out]);
    const common = { strides: s.stride, pad: [[0, 0], [pad, pad], [pad, pad], [0, 0]] };
    const run = (name: string, inputs: tf.NamedTensorMap, attrs: object) => () =>
      tf.engine().runKernel(name, inputs, { dataFormat: "NHWC", ...common, ...attrs }) as tf.Tensor;
    const conv = run("Conv2D", { x, filter: f }, { dilations: 1 });
    const input = run("Conv2DBackpropInput", { dy, filter: f }, { inputShape: s.x });
    const filter = run("Conv2DBackpropFilter", { x, dy }, { filterShape: f.shape });
    const gflops = (ms: number) => flops / ms / 1e6;
    const line = (kernel: string, ms: number) => report(backend, s.label, kernel, ms, gflops(ms));
    line("Conv2D", time(conv, runs));
    if (backend === "wasm") {
      uninstallWasmConvKernels();
      line("Conv2DBackpropInput (tfjs-wasm's)", time(input, runs));
      installWasmConvKernels();
      line("Conv2DBackpropInput (via Conv2D)", time(input, runs));
      line("Conv2DBackpropFilter (via Conv2D)", time(filter, runs));
    } else {
      line("Conv2DBackpropInput", time(input, runs));
      line("Conv2DBackpropFilter", time(filter, runs));
    }
    tf.dispose([x, f, dy]);
  }
}

/** Forward and backward (input and weight gradients) of a small stack of the project's layers. */
function layerStack(backend: string, runs: number): void {
  const layers = [
    new Conv2d({ inChannels: 16, outChannels: 32, kernelSize: 3, padding: 1, seed: 1 }),
    new Conv2d({ inChannels: 32, outChannels: 32, kernelSize: 3, stride: 2, padding: 1, seed: 2 }),
    new ConvTranspose2d({
      inChannels: 32,
      outChannels: 32,
      kernelSize: 3,
      stride: 2,
      padding: 1,
      outputPadding: 1,
      seed: 3,
    }),
    new ConvTranspose2d({ inChannels: 32, outChannels: 16, kernelSize: 3, padding: 1, seed: 4 }),
  ];
  const x = tf.randomNormal([8, 32, 32, 16]);
  const forward = () => layers.reduce((h, l) => tf.relu(l.apply(h) as tf.Tensor), x);
  tf.dispose(forward());
  const vars = layers.flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
  const ms = time(() => {
    const { value, grads } = tf.variableGrads(() => forward().square().mean() as tf.Scalar, vars);
    return [value, ...Object.values(grads)];
  }, runs);
  report(backend, "n8 32×32 Conv2d 16→32, Conv2d s2, ConvT s2, ConvT →16", "fwd+bwd", ms, "");
  tf.dispose(x);
  for (const l of layers) for (const w of l.weights) w.dispose();
}

/** One training step's gradients (forward, loss, backward) of the article's DenseNet. */
function denseNetStep(backend: string, variant: "conv" | "transposed", runs: number): void {
  const model = DenseNet({ variant, seed: 1 });
  const x = tf.randomNormal([8, 32, 32, 3]);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], "int32"), 10);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const ms = time(() => {
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor),
      vars,
    );
    return [value, ...Object.values(grads)];
  }, runs);
  report(backend, `DenseNet (${variant}) n8`, "training step fwd+bwd", ms, "");
  tf.dispose([x, labels]);
  model.dispose();
}

await useBackend("wasm");
console.log("wasm flavour:", JSON.stringify(wasmFlavour()));
console.log("backend | shape | kernel | ms | GFLOPS");
kernels("wasm", 5);
layerStack("wasm", 5);
denseNetStep("wasm", "conv", 3);
denseNetStep("wasm", "transposed", 3);
if (withCpu) {
  await useBackend("cpu");
  layerStack("cpu", 0);
  kernels("cpu", 0);
}
