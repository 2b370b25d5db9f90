// The wasm backend and its convolution gradient kernels (lib/backend/wasm/mod.ts), checked against
// tfjs's plain-JavaScript cpu backend in the same process: the same inputs are run on both
// backends, moved between them as arrays. The native (oneDNN) kernels are off in this file: it
// tests the wasm path, which runs where oneDNN is missing (native_test.ts tests them).
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { BACKENDS, nativeKernels, useBackend, wasmThreadsWanted } from "../lib/backend/mod.ts";
import {
  conv2DBackpropFilterViaConv2D,
  conv2DBackpropInputViaConv2D,
  installWasmConvKernels,
  uninstallWasmConvKernels,
  wasmConvKernelsInstalled,
  wasmFlavour,
} from "../lib/backend/wasm/mod.ts";
import { dilateFilter } from "../lib/backend/mod.ts";
import { Conv2d, ConvTranspose2d, loadTorchWeights } from "../lib/nn/conv.ts";
import {
  assertMatches,
  compare,
  CONV_CASES,
  currentBackend,
  gradsOf,
  on,
  type Pad,
  random,
  type Shape4,
} from "./_conv_helpers.ts";
import { copyConvWeightsToTransposed, DenseNet } from "../lib/nn/mod.ts";
import { train, trainingData } from "../lib/train/mod.ts";
import { loadDataset } from "../lib/data/mod.ts";

// Decided once per process, when wasm first starts: off for this file.
await useBackend("wasm", { native: "off" });
await tf.setBackend("cpu");

Deno.test("useBackend('wasm') runs the SIMD binary on every core and keeps cpu the default", async () => {
  assertEquals([...BACKENDS], ["cpu", "wasm"]);
  const factories = tf.engine().registryFactory;
  assert(factories.wasm.priority < factories.cpu.priority, "wasm must not become the default");
  const previous = await currentBackend();
  try {
    assertEquals(await useBackend("wasm"), "wasm");
    assertEquals(tf.getBackend(), "wasm");
    const threads = wasmThreadsWanted();
    // What the running Emscripten module shows, not the flags this project set: only the
    // threaded binary has a shared heap, and its pool runs one pthread per thread beyond the main.
    const module = (tf.backend() as unknown as {
      wasm: { HEAPU8: Uint8Array; PThread?: { runningWorkers: unknown[] } };
    }).wasm;
    assertEquals(module.HEAPU8.buffer instanceof SharedArrayBuffer, threads > 1);
    assertEquals((module.PThread?.runningWorkers.length ?? 0) + 1, threads);
    assertEquals(nativeKernels().library, null, "native kernels are off in this file");
    assertEquals(wasmFlavour(), {
      binary: threads > 1 ? "tfjs-backend-wasm-threaded-simd.wasm" : "tfjs-backend-wasm-simd.wasm",
      simd: true,
      threads: threads > 1,
      threadsCount: threads,
    });
    assert(wasmConvKernelsInstalled());
    assertEquals(
      tf.getKernel("Conv2DBackpropFilter", "wasm")?.kernelFunc,
      conv2DBackpropFilterViaConv2D,
    );
    assertEquals(
      tf.getKernel("Conv2DBackpropInput", "wasm")?.kernelFunc,
      conv2DBackpropInputViaConv2D,
    );
  } finally {
    await tf.setBackend(previous);
  }
});

Deno.test("tf.conv2d: gradients w.r.t. input and filter match cpu", async () => {
  for (const [i, c] of CONV_CASES.entries()) {
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.conv2d(x, w, c.s, c.pad, "NHWC", c.d ?? 1);
    await compare(`conv2d case ${i} ${JSON.stringify(c)}`, gradsOf(f, c.x, c.w, 10 + i));
  }
});

Deno.test("tf.conv2d with dilation: gradients match an explicitly dilated filter", async () => {
  // tfjs refuses to differentiate dilated convolutions; the reference dilates the filter with
  // pad/reshape/slice, whose own gradients pick out the taps.
  for (const [i, c] of CONV_CASES.filter((c) => c.d).entries()) {
    const d = c.d!;
    const dilated = (x: tf.Tensor4D, w: tf.Tensor4D) =>
      tf.conv2d(x, dilateFilter(w, [d, d]), c.s, c.pad);
    const native = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.conv2d(x, w, c.s, c.pad, "NHWC", d);
    const reference = await on("cpu", gradsOf(dilated, c.x, c.w, 50 + i));
    assertMatches(await on("wasm", gradsOf(native, c.x, c.w, 50 + i)), reference, `wasm ${i}`);
    assertMatches(await on("cpu", gradsOf(native, c.x, c.w, 50 + i)), reference, `cpu ${i}`);
  }
});

Deno.test("tf.conv2dTranspose: forward and gradients match cpu, including a larger output shape", async () => {
  // [input, kernel [kh, kw, out, in], output height/width, stride, pad]
  const cases: { x: Shape4; w: Shape4; out: [number, number]; s: number; pad: Pad }[] = [
    { x: [2, 5, 4, 3], w: [3, 3, 2, 3], out: [5, 4], s: 1, pad: "same" },
    { x: [2, 5, 4, 3], w: [3, 3, 2, 3], out: [7, 6], s: 1, pad: "valid" },
    { x: [2, 4, 5, 3], w: [3, 3, 4, 3], out: [8, 10], s: 2, pad: "same" },
    { x: [2, 4, 5, 3], w: [3, 3, 4, 3], out: [7, 9], s: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
    // output_padding 1: one row/column more than the natural 7 × 9.
    { x: [2, 4, 5, 3], w: [3, 3, 4, 3], out: [8, 10], s: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
    {
      x: [1, 3, 3, 2],
      w: [4, 4, 3, 2],
      out: [10, 10],
      s: 3,
      pad: [[0, 0], [1, 1], [1, 1], [0, 0]],
    },
    { x: [3, 3, 4, 2], w: [2, 2, 3, 2], out: [6, 8], s: 2, pad: 0 },
  ];
  for (const [i, c] of cases.entries()) {
    const shape: Shape4 = [c.x[0], ...c.out, c.w[2]];
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) =>
      tf.conv2dTranspose(x, w, shape, c.s, c.pad as unknown as number);
    await compare(`conv2dTranspose case ${i} ${JSON.stringify(c)}`, gradsOf(f, c.x, c.w, 100 + i));
  }
});

Deno.test("Conv2DBackprop kernels with NCHW data match cpu", async () => {
  const x = random([2, 3, 7, 6], 200),
    dy = random([2, 4, 4, 3], 201),
    w = random([3, 3, 3, 4], 202);
  const attrs = { strides: 2, pad: "same", dataFormat: "NCHW" };
  await compare("NCHW backprop kernels", () =>
    tf.tidy(() => [
      tf.engine().runKernel("Conv2DBackpropInput", {
        dy: tf.tensor4d(dy, [2, 4, 4, 3]),
        filter: tf.tensor4d(w, [3, 3, 3, 4]),
      }, { ...attrs, inputShape: [2, 3, 7, 6] }) as tf.Tensor,
      tf.engine().runKernel("Conv2DBackpropFilter", {
        x: tf.tensor4d(x, [2, 3, 7, 6]),
        dy: tf.tensor4d(dy, [2, 4, 4, 3]),
      }, { ...attrs, filterShape: [3, 3, 3, 4] }) as tf.Tensor,
    ]));
});

Deno.test("Conv2DBackprop kernels with stride and dilation both > 1 match a dilated filter", async () => {
  // tf.conv2d refuses this combination; the kernels take it (attribute `dilations`). Reference:
  // cpu kernels with the filter dilated explicitly, its gradient's every d-th tap kept.
  const xShape: Shape4 = [2, 11, 10, 3],
    wShape: Shape4 = [3, 2, 3, 4],
    d: [number, number] = [2, 3];
  const pad = [[0, 0], [1, 2], [2, 1], [0, 0]];
  const dyShape: Shape4 = [2, 5, 5, 4]; // ⌊(11 + 3 − 5) / 2⌋ + 1, ⌊(10 + 3 − 4) / 2⌋ + 1
  const xs = random(xShape, 400), ws = random(wShape, 401), dys = random(dyShape, 402);
  const run = (name: string, inputs: tf.NamedTensorMap, attrs: object) =>
    tf.engine().runKernel(name, inputs, {
      strides: 2,
      pad,
      dataFormat: "NHWC",
      ...attrs,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
  const wasm = await on("wasm", () =>
    tf.tidy(() => {
      const [x, w, dy] = [
        tf.tensor4d(xs, xShape),
        tf.tensor4d(ws, wShape),
        tf.tensor4d(dys, dyShape),
      ];
      return [
        run("Conv2DBackpropInput", { dy, filter: w }, { inputShape: xShape, dilations: d }),
        run("Conv2DBackpropFilter", { x, dy }, { filterShape: wShape, dilations: d }),
      ];
    }));
  const cpu = await on("cpu", () =>
    tf.tidy(() => {
      const [x, w, dy] = [
        tf.tensor4d(xs, xShape),
        tf.tensor4d(ws, wShape),
        tf.tensor4d(dys, dyShape),
      ];
      const wd = dilateFilter(w, d);
      const full = run("Conv2DBackpropFilter", { x, dy }, { filterShape: wd.shape });
      return [
        run("Conv2DBackpropInput", { dy, filter: wd }, { inputShape: xShape }),
        tf.stridedSlice(full, [0, 0, 0, 0], full.shape, [...d, 1, 1]),
      ];
    }));
  assertMatches(wasm, cpu, "stride 2, dilation [2, 3]");
});

/** The layer's output and the gradients of `sum(y · r)` w.r.t. its input and weights. */
function layerGrads(
  make: () => Conv2d | ConvTranspose2d,
  xShape: Shape4,
  seed: number,
): () => tf.Tensor[] {
  const xs = random(xShape, seed);
  return () => {
    const layer = make();
    layer.build(xShape);
    const shape = layer.torchWeightShape();
    loadTorchWeights(layer, {
      weight: tf.tensor(random(shape, seed + 1), shape),
      ...(layer.geometry.bias ? { bias: random([layer.geometry.outChannels], seed + 2) } : {}),
    });
    const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const out = tf.tidy(() => {
      const x = tf.variable(tf.tensor4d(xs, xShape));
      const y = layer.apply(x) as tf.Tensor;
      const r = tf.tensor(random(y.shape, seed + 3), y.shape);
      const { grads } = tf.variableGrads(
        () => (layer.apply(x) as tf.Tensor).mul(r).sum() as tf.Scalar,
        [x, ...vars],
      );
      const result = [y, grads[x.name], ...vars.map((v) => grads[v.name])];
      x.dispose();
      return result;
    });
    for (const w of layer.weights) w.dispose();
    return out;
  };
}

Deno.test("Conv2d and ConvTranspose2d layers: output and gradients match cpu", async () => {
  const conv: [ConstructorParameters<typeof Conv2d>[0], Shape4][] = [
    [{ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1 }, [2, 6, 7, 3]],
    [{ inChannels: 3, outChannels: 2, kernelSize: 3, stride: 2, padding: 1 }, [2, 9, 8, 3]],
    [{ inChannels: 2, outChannels: 3, kernelSize: [3, 2], stride: [1, 2], bias: false }, [
      3,
      7,
      9,
      2,
    ]],
    [{ inChannels: 2, outChannels: 2, kernelSize: 3, dilation: 2, padding: 2 }, [2, 8, 7, 2]],
    [{ inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, dilation: 2, padding: 1 }, [
      2,
      9,
      9,
      2,
    ]],
    [{ inChannels: 4, outChannels: 2, kernelSize: 1 }, [2, 5, 5, 4]],
  ];
  for (const [i, [args, shape]] of conv.entries()) {
    await compare(
      `Conv2d ${JSON.stringify(args)}`,
      layerGrads(() => new Conv2d(args), shape, 300 + 10 * i),
    );
  }
  const up: [ConstructorParameters<typeof ConvTranspose2d>[0], Shape4][] = [
    [{ inChannels: 3, outChannels: 2, kernelSize: 3, padding: 1 }, [2, 5, 6, 3]],
    [{ inChannels: 3, outChannels: 2, kernelSize: 3, stride: 2, padding: 1 }, [2, 4, 5, 3]],
    [{ inChannels: 3, outChannels: 2, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 }, [
      2,
      4,
      5,
      3,
    ]],
    [{ inChannels: 2, outChannels: 3, kernelSize: 4, stride: 2, padding: 1, bias: false }, [
      1,
      3,
      4,
      2,
    ]],
    [{ inChannels: 2, outChannels: 2, kernelSize: 3, dilation: 2, padding: 1 }, [2, 4, 5, 2]],
    [{ inChannels: 2, outChannels: 2, kernelSize: 2, stride: 2, dilation: 3, outputPadding: 2 }, [
      2,
      3,
      3,
      2,
    ]],
  ];
  for (const [i, [args, shape]] of up.entries()) {
    await compare(
      `ConvTranspose2d ${JSON.stringify(args)}`,
      layerGrads(() => new ConvTranspose2d(args), shape, 600 + 10 * i),
    );
  }
});

Deno.test("wasm convolution gradients leak no tensors and no backend memory", async () => {
  const previous = await currentBackend();
  await useBackend("wasm");
  try {
    const x = tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D;
    const w = tf.variable(tf.randomNormal([3, 3, 3, 4]) as tf.Tensor4D);
    const ones = tf.ones([2, 8, 8, 4]);
    const step = () => {
      const { value, grads } = tf.variableGrads(
        () => tf.conv2d(x, w, 2, 1).square().sum() as tf.Scalar,
        [w],
      );
      tf.dispose([value, ...Object.values(grads)]);
      const g = tf.grads((a, b) =>
        tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [2, 16, 16, 3], 2, "same").sum()
      )([ones, w]);
      tf.dispose(g);
    };
    const backend = tf.engine().backend;
    step();
    const tensors = tf.memory().numTensors, dataIds = backend.numDataIds();
    // tfjs's own per-kernel leak check runs while IS_TEST is set.
    const isTest = tf.env().getBool("IS_TEST");
    tf.env().set("IS_TEST", true);
    try {
      for (let i = 0; i < 3; i++) step();
    } finally {
      tf.env().set("IS_TEST", isTest);
    }
    assertEquals(tf.memory().numTensors, tensors);
    assertEquals(backend.numDataIds(), dataIds);
    tf.dispose([x, w, ones]);
  } finally {
    await tf.setBackend(previous);
  }
});

Deno.test("uninstallWasmConvKernels restores tfjs-wasm's kernels; both agree at stride 1", async () => {
  const xs = random([2, 5, 4, 3], 900), ws = random([3, 3, 2, 3], 901);
  const transpose = () =>
    tf.tidy(() => [
      tf.conv2dTranspose(
        tf.tensor4d(xs, [2, 5, 4, 3]),
        tf.tensor4d(ws, [3, 3, 2, 3]),
        [
          2,
          7,
          6,
          2,
        ],
        1,
        "valid",
      ),
    ]);
  const ours = await on("wasm", transpose);
  uninstallWasmConvKernels();
  try {
    assert(!wasmConvKernelsInstalled());
    assertEquals(tf.getKernel("Conv2DBackpropFilter", "wasm"), undefined);
    assert(
      tf.getKernel("Conv2DBackpropInput", "wasm")?.kernelFunc !== conv2DBackpropInputViaConv2D,
    );
    const native = await on("wasm", transpose);
    assertEquals(native[0].values, ours[0].values, "bit-identical to the native kernel");
    const grads = gradsOf((x, w) => tf.conv2d(x, w, 1, "same"), [1, 4, 4, 2], [3, 3, 2, 2], 902);
    await assertRejects(() => on("wasm", grads), Error, "Conv2DBackpropFilter");
  } finally {
    installWasmConvKernels();
  }
  assert(wasmConvKernelsInstalled());
});

Deno.test("Conv2DBackpropInput on wasm refuses a dy of the wrong size", async () => {
  const previous = await currentBackend();
  await useBackend("wasm");
  try {
    assertThrows(
      () =>
        tf.tidy(() =>
          tf.engine().runKernel("Conv2DBackpropInput", {
            dy: tf.zeros([1, 4, 4, 2]),
            filter: tf.zeros([3, 3, 1, 2]),
          }, { strides: 1, pad: "same", dataFormat: "NHWC", inputShape: [1, 5, 5, 1] })
        ),
      RangeError,
      "dy has shape [1, 4, 4, 2]",
    );
  } finally {
    await tf.setBackend(previous);
  }
});

Deno.test("control arm on the wasm kernels: its loss equals the conv network's bit for bit at every step", async () => {
  // Backs docs/results.md: without oneDNN the control arm's gap is exactly 0 over a whole run, not
  // just within CONTROL_TOLERANCE (with oneDNN the filter gradients sum in another order).
  assertEquals(nativeKernels().active, false);
  await useBackend("wasm");
  try {
    // The article's DenseNet on 32×32 images, as notebook 02 trains it (its quick defaults'
    // hyperparameters): at this size oneDNN's arms already differ by the second step.
    const conv = DenseNet({ variant: "conv", seed: 5 });
    const control = DenseNet({ variant: "transposed", seed: 6 });
    copyConvWeightsToTransposed(conv, control);
    const dataset = await loadDataset({
      dataset: "synthetic",
      trainSize: 48,
      testSize: 16,
      seed: 0,
      log: false,
    });
    const r = await train({
      arms: [{ name: "conv", model: conv }, { name: "control", model: control }],
      data: trainingData(dataset, { seed: 0, augment: false }),
      hyper: { epochs: 2, batchSize: 16, lr: 0.003, momentum: 0.9, weightDecay: 5e-4 },
    });
    const [a, b] = r.arms.map((arm) => arm.steps.map((s) => s[2]));
    assertEquals(a.length, 6);
    assert(a[0] !== a.at(-1), "the networks trained");
    assertEquals(b, a);
    conv.dispose();
    control.dispose();
  } finally {
    await tf.setBackend("cpu");
  }
});
