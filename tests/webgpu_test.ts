// tfjs's WebGPU backend (lib/backend/webgpu/) on the WebGPU adapter this machine offers: in CI
// and here, Mesa's software rasteriser llvmpipe (tests/setup.ts installs it). The project's
// layers, forward and backward, against tfjs-cpu; the dilation fix; the custom gradients;
// failures that must be reported, not swallowed. Shapes are tiny: llvmpipe compiles each shader
// slowly, and runs them on the CPU.
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { tf, useBackend } from "../lib/backend/mod.ts";
import { startWebGpu, webgpuAdapter, WebGpuError } from "../lib/backend/webgpu/mod.ts";
import { installFrugalBackward } from "../lib/backend/_frugal_backward.ts";
import { BatchNorm2d, Conv2d, ConvTranspose2d, FlattenCHW, linear } from "../lib/nn/mod.ts";

const SETUP_HINT = "the WebGPU tests need a WebGPU adapter; on Debian, Mesa's software one comes " +
  "with libgl1-mesa-dri, libegl1 and libegl-mesa0 (deno run -A tests/setup.ts installs them)";

/** Selects WebGPU on whatever adapter there is; fails (never skips) when there is none. */
async function onWebGpu(): Promise<void> {
  try {
    await startWebGpu({ allowSoftware: true });
  } catch (e) {
    throw new Error(`${SETUP_HINT}: ${e instanceof Error ? e.message : e}`);
  }
}

/** Seeded values in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return (s / 2147483647) * 2 - 1;
  });
}

type Results = Record<string, Float32Array>;

/**
 * Builds `make()`'s layer on the current backend with seeded weights, applies it to a seeded
 * input, and returns its output, the gradients of Σ y·r (r seeded) with respect to the input and
 * every trainable weight, and every non-trainable weight afterwards (running statistics).
 */
async function layerRun(
  make: () => tf.layers.Layer,
  xShape: number[],
  training = true,
): Promise<Results> {
  const layer = make();
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const x = tf.variable(tf.tensor(values(size(xShape), 3), xShape), true, "x");
  layer.build(x.shape);
  layer.setWeights(
    layer.getWeights().map((w, i) =>
      // Trainable weights seeded; running statistics keep their initial values (0 and 1).
      i < layer.trainableWeights.length ? tf.tensor(values(w.size, 10 + i), w.shape) : w
    ),
  );
  const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const y = layer.apply(x, { training }) as tf.Tensor;
  const r = tf.tensor(values(y.size, 99), y.shape);
  const { grads } = tf.variableGrads(
    () => tf.sum(tf.mul(layer.apply(x, { training }) as tf.Tensor, r)) as tf.Scalar,
    [x, ...weights],
  );
  const out: Results = { y: await y.data() as Float32Array };
  out["d x"] = await grads[x.name].data() as Float32Array;
  for (const w of layer.trainableWeights) {
    out[`d ${w.originalName}`] = await grads[(w.read() as tf.Variable).name].data() as Float32Array;
  }
  for (const w of layer.nonTrainableWeights) {
    out[w.originalName] = await w.read().data() as Float32Array;
  }
  tf.dispose([x, y, r, ...Object.values(grads)]);
  layer.weights.forEach((w) => w.dispose());
  return out;
}

/** `layerRun` on tfjs-cpu (the reference) and on WebGPU. */
async function cpuAndWebGpu(
  make: () => tf.layers.Layer,
  xShape: number[],
  training = true,
): Promise<[Results, Results]> {
  await useBackend("cpu");
  const reference = await layerRun(make, xShape, training);
  await onWebGpu();
  return [reference, await layerRun(make, xShape, training)];
}

/**
 * Asserts every result equal to the reference within `rtol` of the largest reference value of
 * that result (float32 sums in another order: ~1e-7 here; a wrong kernel: order 1).
 */
function assertMatchesReference(label: string, got: Results, want: Results, rtol = 1e-4): void {
  assertEquals(Object.keys(got).sort(), Object.keys(want).sort(), label);
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    assertEquals(g.length, w.length, `${label}: ${name} length`);
    const scale = Math.max(...w.map(Math.abs), 1e-6);
    let worst = 0;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]));
    assert(
      worst <= rtol * scale,
      `${label}: ${name} differs from tfjs-cpu by ${worst.toExponential(2)} (largest value ` +
        `${scale.toExponential(2)}, allowed ${rtol} of it)`,
    );
  }
}

Deno.test("webgpu: asked for explicitly, it runs on the software adapter with a one-line warning", async () => {
  const warnings: unknown[][] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args);
  try {
    assertEquals(await useBackend("webgpu"), "webgpu");
  } catch (e) {
    throw new Error(`${SETUP_HINT}: ${e instanceof Error ? e.message : e}`);
  } finally {
    console.warn = warn;
  }
  assertEquals(tf.getBackend(), "webgpu");
  const adapter = webgpuAdapter()!;
  assert(adapter.description.length > 0);
  assert(adapter.limits.maxStorageBufferBindingSize > 0, JSON.stringify(adapter.limits));
  if (adapter.fallback) {
    assertEquals(warnings.length, 1);
    assertEquals(String(warnings[0][0]).split("\n").length, 1);
    assertMatch(String(warnings[0][0]), /software adapter .* far slower than "wasm"/);
  }
  // No synchronous reads under Deno: a clear error instead of tfjs's canvas failure.
  const t = tf.tensor([1, 2, 3]);
  const sync = (() => {
    try {
      t.dataSync();
      return "no error";
    } catch (e) {
      return e;
    }
  })();
  assert(sync instanceof WebGpuError, String(sync));
  assertMatch(sync.message, /synchronous reads .* use await tensor\.data\(\)/);
  assertEquals(Array.from(await t.data()), [1, 2, 3]);
  t.dispose();
  await useBackend("cpu");
});

Deno.test("webgpu: Conv2d outputs and gradients equal tfjs-cpu (strides, padding, dilation, bias)", async () => {
  const cases = [
    { kernelSize: 3 },
    { kernelSize: 3, stride: 2, padding: 1 },
    { kernelSize: 2, padding: 1, dilation: 2 },
    { kernelSize: 3, stride: 2, padding: 1, dilation: 2 },
    { kernelSize: 3, padding: 2, dilation: 2, bias: false },
    { kernelSize: [2, 3], stride: [1, 2], padding: [1, 0], dilation: [2, 1] },
  ] as const;
  for (const c of cases) {
    const make = () => new Conv2d({ inChannels: 2, outChannels: 3, ...c });
    const [want, got] = await cpuAndWebGpu(make, [2, 6, 6, 2]);
    assertMatchesReference(`Conv2d ${JSON.stringify(c)}`, got, want);
  }
  await useBackend("cpu");
});

Deno.test("webgpu: ConvTranspose2d outputs and gradients equal tfjs-cpu (strides, padding, dilation, output_padding)", async () => {
  const cases = [
    { kernelSize: 3 },
    { kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 },
    { kernelSize: 2, dilation: 2 },
    { kernelSize: 3, stride: 2, padding: 1, dilation: 2, outputPadding: 1 },
    // outputPadding ≥ stride (allowed because it is < dilation): the layer's canvas path.
    { kernelSize: 2, padding: 1, dilation: 3, outputPadding: 2, bias: false },
  ] as const;
  for (const c of cases) {
    const make = () => new ConvTranspose2d({ inChannels: 2, outChannels: 3, ...c });
    const [want, got] = await cpuAndWebGpu(make, [2, 4, 4, 2]);
    assertMatchesReference(`ConvTranspose2d ${JSON.stringify(c)}`, got, want);
  }
  await useBackend("cpu");
});

Deno.test("webgpu: rank-5 and rank-6 pads (the dilated filter's) are right, so dilation is", async () => {
  // tfjs-webgpu 4.22's own PadV2 shader does not compile for these ranks; the output was zeros
  // (lib/backend/webgpu/_pad.ts). dilateFilter pads a rank-6 view of the filter.
  const cases: [number[], [number, number][]][] = [
    [[2, 3, 2, 2, 3], [[0, 1], [1, 0], [0, 0], [2, 1], [0, 0]]],
    [[2, 1, 3, 1, 2, 2], [[0, 0], [0, 1], [0, 0], [0, 1], [0, 0], [1, 1]]],
  ];
  for (const [shape, paddings] of cases) {
    const run = async () => {
      const x = tf.tensor(values(shape.reduce((a, b) => a * b), 5), shape);
      const y = x.pad(paddings, 0.5);
      const out = await y.data();
      tf.dispose([x, y]);
      return out as Float32Array;
    };
    await useBackend("cpu");
    const want = await run();
    await onWebGpu();
    assertEquals(Array.from(await run()), Array.from(want), `pad of rank ${shape.length}`);
  }
  await useBackend("cpu");
});

Deno.test("webgpu: BatchNorm2d (training and eval), LeakyReLU, average pooling and Linear equal tfjs-cpu", async () => {
  const layers: [string, () => tf.layers.Layer, number[], boolean][] = [
    ["BatchNorm2d training", () => new BatchNorm2d({ numFeatures: 3 }), [2, 4, 4, 3], true],
    ["BatchNorm2d eval", () => new BatchNorm2d({ numFeatures: 3 }), [2, 4, 4, 3], false],
    ["LeakyReLU", () => tf.layers.leakyReLU({ alpha: 0.01 }), [2, 4, 4, 3], true],
    [
      "AvgPool2d",
      () => tf.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: "valid" }),
      [2, 4, 4, 3],
      true,
    ],
    ["FlattenCHW", () => new FlattenCHW(), [2, 2, 2, 3], true],
    ["Linear", () => linear({ inFeatures: 12, outFeatures: 5 }), [2, 12], true],
  ];
  for (const [label, make, shape, training] of layers) {
    const [want, got] = await cpuAndWebGpu(make, shape, training);
    assertMatchesReference(label, got, want);
  }
  await useBackend("cpu");
});

Deno.test("webgpu: the project's custom gradients run there; its wasm kernels are not installed there", async () => {
  await onWebGpu();
  // Kernel replacements of lib/backend/wasm/mod.ts are registered for "wasm" only.
  for (const name of [tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.Slice, tf.Sum]) {
    const wasm = tf.getKernel(name, "wasm"), webgpu = tf.getKernel(name, "webgpu");
    assert(webgpu !== undefined, `${name} has a webgpu kernel`);
    assert(
      wasm?.kernelFunc !== webgpu.kernelFunc,
      `${name}: the wasm kernel is not used on webgpu`,
    );
  }
  // The frugal backward pass (installed by lib/backend/tf.ts) frees earlier on WebGPU too, and
  // changes no value: the same gradients, bit for bit, with and without it, and no tensor left.
  const run = async () => {
    const x = tf.tensor4d(values(2 * 5 * 5 * 2, 7), [2, 5, 5, 2]);
    const conv = new Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, seed: 4 });
    const bn = new BatchNorm2d({ numFeatures: 3 });
    const net = (t: tf.Tensor) =>
      tf.leakyRelu(bn.apply(conv.apply(t), { training: true }) as tf.Tensor, 0.01);
    net(x).dispose(); // builds the weights
    const vars = [...conv.trainableWeights, ...bn.trainableWeights].map((w) =>
      w.read() as tf.Variable
    );
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => net(x).square().sum() as tf.Scalar, vars);
    const out = await Promise.all(vars.map((v) => grads[v.name].data()));
    tf.dispose([value, ...Object.values(grads)]);
    assertEquals(tf.memory().numTensors, before);
    tf.dispose([x]);
    [...conv.weights, ...bn.weights].forEach((w) => w.dispose());
    return out.map((a) => Array.from(a));
  };
  const frugal = await run();
  const restore = installFrugalBackward();
  restore();
  try {
    assertEquals(await run(), frugal);
  } finally {
    installFrugalBackward();
  }
  await useBackend("cpu");
});

/** Runs tests/_webgpu_failure_probe.ts with `mode`; returns its exit code and output. */
async function probe(mode: string): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_webgpu_failure_probe.ts", import.meta.url).pathname, mode],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

Deno.test("webgpu: a shader WebGPU refuses is an error naming the backend and the kernel", async () => {
  const { code, out } = await probe("shader");
  assertEquals(code, 0, out);
  assertMatch(
    out,
    /^WebGpuError: webgpu backend: kernel "BrokenShaderProbe" \(shader .*\) was refused by WebGPU: /m,
  );
});

Deno.test("webgpu: work WebGPU refuses at dispatch is an error, not a wrong result", async () => {
  const { code, out } = await probe("dispatch");
  assertEquals(code, 0, out);
  assertMatch(out, /^WebGpuError: webgpu backend: WebGPU refused work of a recent kernel .*bind/m);
});

Deno.test("webgpu: a lost device is an error, not a hang", async () => {
  const { code, out } = await probe("lost");
  assertEquals(code, 0, out);
  assertMatch(out, /^WebGpuError: webgpu backend: .*the GPU device was lost \(destroyed/m);
});

Deno.test("webgpu: startWebGpu refuses a software adapter unless allowed, and keeps the backend", async () => {
  await useBackend("cpu");
  await onWebGpu();
  await useBackend("cpu");
  if (!webgpuAdapter()!.fallback) return; // a hardware adapter is accepted: nothing to refuse
  await assertRejects(() => startWebGpu(), WebGpuError, "is a software adapter (refused");
  assertEquals(tf.getBackend(), "cpu");
});
