// The native (oneDNN, through Deno's FFI) convolution kernels of the wasm backend, checked against
// tfjs's plain-JavaScript cpu backend and against this project's wasm kernels. tests/setup.ts
// installs libdnnl2, so they run here and in CI; wasm_test.ts tests the path without them.
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { BATCH_NORM_TRAINING_KERNEL } from "../lib/backend/native/batch_norm.ts";
import {
  disableNativeKernels,
  enableNativeKernels,
  nativeImplementations,
  nativeKernels,
  type NativePreference,
  nativeThreadsWanted,
  useBackend,
  wasmFlavour,
} from "../lib/backend/mod.ts";
import {
  type FilterFlip,
  flipFilter,
  SELF_CHECK_CASES,
  startNativeKernels,
} from "../lib/backend/native/mod.ts";
import {
  dnnlVersionProblem,
  LIBRARY_ENV_VAR,
  openDnnl,
  readDnnlVersion,
} from "../lib/backend/native/_dnnl.ts";
import {
  conv2DBackpropFilterViaConv2D,
  conv2DBackpropInputViaConv2D,
} from "../lib/backend/wasm/mod.ts";
import { crossEntropy } from "../lib/train/mod.ts";
import { DenseNet, type Variant } from "../lib/nn/mod.ts";
import {
  assertMatches,
  compare,
  CONV_CASES,
  gradsOf,
  on,
  type Pad,
  random,
  type Result,
  type Shape4,
} from "./_conv_helpers.ts";

await useBackend("wasm"); // native "auto": on where oneDNN loads, as in every run
await tf.setBackend("cpu");

Deno.test("useBackend('wasm') installs the oneDNN kernels where the library loads", () => {
  const status = nativeKernels();
  assertEquals(status.notice, undefined, "oneDNN must load here (tests/setup.ts installs it)");
  assert(status.active);
  assertMatch(status.library!, /^oneDNN 2\.\d+\.\d+$/);
  // oneDNN's own pool, apart from wasm's (tests/wasm_threads_test.ts varies both).
  assertEquals(status.threads, nativeThreadsWanted(), "TCONV_NATIVE_THREADS, else every core");
  const wasmKernels = [conv2DBackpropInputViaConv2D, conv2DBackpropFilterViaConv2D];
  for (const name of ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"]) {
    const func = tf.getKernel(name, "wasm")?.kernelFunc;
    assert(func !== undefined && !wasmKernels.includes(func), name);
  }
});

Deno.test("native kernels: the wasm kernels' convolution cases match cpu", async () => {
  const before = nativeImplementations().size;
  for (const [i, c] of CONV_CASES.entries()) {
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.conv2d(x, w, c.s, c.pad, "NHWC", c.d ?? 1);
    await compare(`conv2d case ${i} ${JSON.stringify(c)}`, gradsOf(f, c.x, c.w, 10 + i));
  }
  assert(nativeImplementations().size > before + CONV_CASES.length, "oneDNN ran them");
});

/** A seeded generator of convolution geometries, drawn across what tfjs accepts. */
function randomCases(count: number, seed: number) {
  let s = seed;
  const next = (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
  const cases: { x: Shape4; w: Shape4; s: [number, number]; pad: Pad; d: number }[] = [];
  while (cases.length < count) {
    const k = [1, 3, 7, 2, 5][next(5)], kw = next(3) === 0 ? [1, 3, 7][next(3)] : k;
    const d = next(3) === 0 ? 2 : 1;
    const stride: [number, number] = d > 1 ? [1, 1] : [1 + next(3), 1 + next(3)]; // tf.conv2d
    const h = (k - 1) * d + 1 + next(8), w = (kw - 1) * d + 1 + next(8);
    const pads: Pad[] = [
      "same",
      "valid",
      [[0, 0], [next(k), next(k)], [next(kw), next(kw)], [0, 0]],
    ];
    // (tfjs computes both output sizes from the filter height and stride height when the padding
    // is a number, on every backend: numbers only where both are square.)
    if (k === kw && stride[0] === stride[1]) pads.push(next(k));
    cases.push({
      x: [1 + next(3), h, w, 1 + next(6)],
      w: [k, kw, 0, 1 + next(6)],
      s: stride,
      pad: pads[next(pads.length)],
      d,
    });
    const c = cases[cases.length - 1];
    c.w[2] = c.x[3];
  }
  return cases;
}

Deno.test("native kernels: random geometries (strides 1–3, padding, dilation, 1×1 to 7×7) match cpu", async () => {
  for (const [i, c] of randomCases(24, 7).entries()) {
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.conv2d(x, w, c.s, c.pad, "NHWC", c.d);
    await compare(`random case ${i} ${JSON.stringify(c)}`, gradsOf(f, c.x, c.w, 300 + i));
  }
});

Deno.test("native kernels: conv2dTranspose (ConvTranspose2d's forward) and its gradients match cpu", async () => {
  const cases: { x: Shape4; w: Shape4; out: Shape4; s: number; pad: Pad }[] = [
    { x: [2, 4, 5, 3], w: [3, 3, 2, 3], out: [2, 8, 10, 2], s: 2, pad: "same" },
    { x: [3, 5, 4, 4], w: [7, 7, 2, 4], out: [3, 11, 10, 2], s: 1, pad: "valid" },
    { x: [2, 3, 3, 2], w: [3, 3, 3, 2], out: [2, 9, 9, 3], s: 3, pad: "same" },
  ];
  for (const [i, c] of cases.entries()) {
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.conv2dTranspose(x, w, c.out, c.s, c.pad);
    await compare(`transpose case ${i} ${JSON.stringify(c)}`, gradsOf(f, c.x, c.w, 500 + i));
  }
});

Deno.test("native kernels fall back to the wasm kernels for NCHW data", async () => {
  const f = () =>
    tf.tidy(() => {
      const x = tf.randomUniform([2, 3, 7, 6], -1, 1, "float32", 1);
      const dy = tf.randomUniform([2, 4, 4, 3], -1, 1, "float32", 2);
      const attrs = { strides: 2, pad: "same", dataFormat: "NCHW" };
      return [
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          ...attrs,
          filterShape: [3, 3, 3, 4],
        }) as tf.Tensor,
      ];
    });
  const cpu = await on("cpu", f);
  assertMatches(await on("wasm", f), cpu, "NCHW filter gradient");
});

Deno.test("a failing native call names the kernel and the shapes, and frees its output", async () => {
  await useBackend("wasm");
  try {
    const backend = tf.engine().backend;
    const dataIds = backend.numDataIds();
    tf.tidy(() => {
      const dy = tf.zeros([1, 4, 4, 2]), filter = tf.zeros([3, 3, 1, 2]);
      assertThrows(
        () =>
          tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, {
            strides: 1,
            pad: "same",
            dataFormat: "NHWC",
            inputShape: [1, 5, 5, 1],
          }),
        RangeError,
        "Conv2DBackpropInput: dy must have the convolution's output shape [1, 5, 5, 2] (NHWC) " +
          "for dy [1, 4, 4, 2], filter [3, 3, 1, 2], inputShape [1, 5, 5, 1]",
      );
    });
    assertEquals(backend.numDataIds(), dataIds);
  } finally {
    await tf.setBackend("cpu");
  }
});

/**
 * Asserts that two training steps agree to float32 tolerance: the loss to 1e-5 relative, each
 * gradient to ‖a − b‖ ≤ 1e-2·‖b‖ + 1e-5·G·√n (G the largest gradient element of the step). The
 * wasm kernels themselves are that far from tfjs-cpu (bench/native_accuracy.ts, batch 3: relative
 * errors up to 2.8e-3 per gradient, the native kernels' up to 1.6e-3); the
 * √n term covers the conv biases that precede a BatchNorm, whose exact gradient is zero. The loss
 * was held to 1e-6 while only the convolutions differed; the native path also normalises with
 * oneDNN's batch normalization, which rounds differently from the tfjs ops (and is the closer of
 * the two to PyTorch's float64 reference: 4.0e-6 against 9.6e-6 relative on densenet_test.ts's
 * conv logits), so 1e-5. A wrong kernel is off by O(1).
 */
function assertCloseSteps(actual: Result, expected: Result, label: string): void {
  assertEquals(actual.length, expected.length, label);
  const [loss, ...grads] = expected;
  const dLoss = Math.abs(actual[0].values[0] - loss.values[0]);
  assert(dLoss <= 1e-5 * Math.abs(loss.values[0]), `${label}: loss differs by ${dLoss}`);
  const g = Math.max(...grads.map((t) => t.values.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  grads.forEach((e, i) => {
    const a = actual[i + 1].values;
    let diff = 0, norm = 0;
    for (let j = 0; j < a.length; j++) {
      diff += (a[j] - e.values[j]) ** 2;
      norm += e.values[j] ** 2;
    }
    const limit = 1e-2 * Math.sqrt(norm) + 1e-5 * g * Math.sqrt(a.length);
    assert(
      Math.sqrt(diff) <= limit,
      `${label}, gradient ${i}: ‖diff‖ ${Math.sqrt(diff)} > ${limit}`,
    );
  });
}

/** Loss and every gradient of one DenseNet training step at `seed` (batch 3). */
function denseNetStep(variant: Variant): () => tf.Tensor[] {
  return () => {
    const model = DenseNet({ variant, seed: 11 });
    try {
      return tf.tidy(() => {
        const x = tf.randomNormal([3, 32, 32, 3], 0, 1, "float32", 12);
        const y = tf.tensor1d([1, 7, 3], "int32");
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads } = tf.variableGrads(
          () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
          vars,
        );
        return [value, ...vars.map((v) => grads[v.name])];
      });
    } finally {
      model.dispose();
    }
  };
}

Deno.test("a whole DenseNet training step with native kernels equals the wasm kernels' (both variants)", async () => {
  for (const variant of ["conv", "transposed"] as const) {
    const native = await on("wasm", denseNetStep(variant));
    disableNativeKernels();
    try {
      assertEquals(nativeKernels().active, false);
      const wasm = await on("wasm", denseNetStep(variant));
      assertCloseSteps(native, wasm, `${variant} DenseNet step`);
    } finally {
      enableNativeKernels(wasmFlavour().threadsCount);
    }
    assert(nativeKernels().active);
  }
});

Deno.test("the PyTorch fixtures and the control arm hold on wasm with native kernels", async () => {
  // conv_test.ts and densenet_test.ts (PyTorch 1.13 fixtures, the control arm), run with wasm and
  // its native kernels selected before they start.
  const tests = ["conv_test.ts", "densenet_test.ts"].map((f) =>
    new URL(f, import.meta.url).pathname
  );
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "-A",
      "--preload",
      new URL("./_native_preload.ts", import.meta.url).pathname,
      ...tests,
    ],
    env: { TCONV_NATIVE: "on", NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assertEquals(code, 0, out);
  assertMatch(out, /wasm \+ oneDNN 2\.\d+\.\d+ selected/);
  assertMatch(out, /DenseNet equals PyTorch 1\.13's .* ok/);
  assertMatch(out, /Conv2d and ConvTranspose2d equal PyTorch 1\.13 outputs .* ok/);
  assertMatch(out, /control arm: .* ok/);
});

Deno.test("without FFI permission, or with a library that is not oneDNN, wasm runs with a notice", async () => {
  const script = `
    import { nativeKernels, useBackend } from "${new URL(
    "../lib/backend/mod.ts",
    import.meta.url,
  )}";
    import { tf } from "${new URL("../lib/backend/tf.ts", import.meta.url)}";
    await useBackend("wasm", { native: Deno.env.get("ASKED") || undefined });
    const y = tf.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([3, 3, 1, 1]), 1, "same");
    console.log(JSON.stringify({ ...nativeKernels(), sum: y.sum().dataSync()[0] }));
  `;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  const run = async (flags: string[], env: Record<string, string>) => {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, "--config", new URL("../deno.json", import.meta.url).pathname, file],
      env,
    }).output();
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    return JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
  };
  const allButFfi = ["read", "write", "env", "sys", "run", "net"].map((p) => `--allow-${p}`);
  const noFfi = await run(allButFfi, {});
  assertEquals([noFfi.active, noFfi.library, noFfi.sum], [false, null, 100]);
  assertMatch(noFfi.notice, /needs --allow-ffi/);
  const missing = await run(["-A"], { TCONV_DNNL_LIBRARY: "/nonexistent/libdnnl.so.2" });
  assertEquals([missing.active, missing.sum], [false, 100]);
  assertMatch(missing.notice, /oneDNN not found .*apt-get install libdnnl2/);
  const wrong = await run(["-A"], { TCONV_DNNL_LIBRARY: "libgomp.so.1" });
  assertEquals([wrong.active, wrong.sum], [false, 100]);
  assertMatch(wrong.notice, /libgomp\.so\.1 \(TCONV_DNNL_LIBRARY\) is not a usable oneDNN 2\.x/);
  const off = await run(["-A"], { TCONV_NATIVE: "off" });
  assertEquals([off.active, off.notice, off.sum], [
    false,
    "native kernels off (TCONV_NATIVE=off)",
    100,
  ]);
  // A notebook's explicit "off" wins over the environment; its "auto" defers to it.
  const askedOff = await run(["-A"], { ASKED: "off" });
  assertEquals([askedOff.active, askedOff.notice], [false, 'native kernels off (native = "off")']);
  const askedAuto = await run(["-A"], { ASKED: "auto", TCONV_NATIVE: "off" });
  assertEquals([askedAuto.active, askedAuto.notice], [
    false,
    "native kernels off (TCONV_NATIVE=off)",
  ]);
  await Deno.remove(file);
});

Deno.test("native: an unknown preference is refused, naming the parameter", () => {
  assertThrows(
    () => startNativeKernels(2, "maybe" as NativePreference),
    RangeError,
    'native must be one of auto, on, off, got "maybe"',
  );
});

Deno.test("native: a stride-1 transposed convolution gives the bits of the convolution it re-parameterises", async () => {
  // What makes the control arm (notebook 02, trainer_test.ts) reproduce the conv network exactly:
  // forward pass and input gradient of both arms run the same oneDNN primitive on the same bits.
  const xs = random([3, 9, 9, 5], 1), ws = random([3, 3, 5, 4], 2), dys = random([3, 9, 9, 4], 3);
  const [y, yT, dx, dxT] = await on("wasm", () =>
    tf.tidy(() => {
      const x = tf.tensor4d(xs, [3, 9, 9, 5]), dy = tf.tensor4d(dys, [3, 9, 9, 4]);
      const w = tf.tensor4d(ws, [3, 3, 5, 4]);
      const mapped = w.reverse([0, 1]).transpose([0, 1, 3, 2]) as tf.Tensor4D; // [3, 3, 4, 5]
      return [
        tf.conv2d(x, w, 1, "same"),
        tf.conv2dTranspose(x, mapped, [3, 9, 9, 4], 1, "same"),
        tf.conv2dTranspose(dy, w, [3, 9, 9, 5], 1, "same"), // the conv's input gradient
        tf.conv2d(dy, mapped, 1, "same"), // the transposed layer's input gradient
      ];
    }));
  assert(nativeKernels().active);
  assertEquals(yT.values, y.values);
  assertEquals(dxT.values, dx.values);
});

Deno.test("the self-check fails, naming the kernel and the case, when the stride-1 flip is wrong", () => {
  // A flip that swaps the channels but not the taps: shapes still fit, only the values are wrong,
  // as a regression in the flipped-filter route (ConvTranspose2d's forward pass) would be.
  const unflipped: FilterFlip = (w, [kh, kw, ci, co], out) => {
    for (let t = 0; t < kh * kw; t++) {
      for (let o = 0; o < co; o++) {
        for (let i = 0; i < ci; i++) out[(t * co + o) * ci + i] = w[(t * ci + i) * co + o];
      }
    }
  };
  const threads = wasmFlavour().threadsCount;
  disableNativeKernels();
  try {
    const status = enableNativeKernels(threads, { flip: unflipped });
    assertEquals([status.active, status.library], [false, null]);
    assertMatch(
      status.notice!,
      /^oneDNN 2\.\d+\.\d+ failed its self-check \(Conv2DBackpropInput at stride 1 \(flipped filter\) differs from the wasm kernel by .*\); the wasm kernels run$/,
    );
    const wasmKernels = [conv2DBackpropInputViaConv2D, conv2DBackpropFilterViaConv2D];
    assert(wasmKernels.includes(tf.getKernel("Conv2DBackpropInput", "wasm")!.kernelFunc));
  } finally {
    disableNativeKernels();
    enableNativeKernels(threads);
  }
  assert(nativeKernels().active, "the correct flip passes the same self-check");
});

Deno.test("the self-check covers stride 2, the stride-1 flipped route and dilation 2", () => {
  const kinds = SELF_CHECK_CASES.map((c) => [c.strides, c.dilations]);
  assertEquals(kinds, [[2, 1], [1, 1], [1, 2]]);
  const unflipped = new Float32Array(3 * 2 * 3 * 4).map((_, i) => i);
  const out = new Float32Array(unflipped.length);
  flipFilter(unflipped, [3, 2, 3, 4], out);
  // out[a, b, o, i] = w[2 − a, 1 − b, i, o]
  assertEquals(out[0], unflipped[((2 * 2 + 1) * 3 + 0) * 4 + 0]);
  assertEquals(out[1], unflipped[((2 * 2 + 1) * 3 + 1) * 4 + 0]);
  assertEquals(out[3], unflipped[((2 * 2 + 1) * 3 + 0) * 4 + 1]);
});

Deno.test("oneDNN's version is read from dnnl_version_t; anything but 2.x is refused, naming it", () => {
  const struct = new Int32Array([3, 4, 1, 0, 0, 0]);
  const version = readDnnlVersion(Deno.UnsafePointer.of(struct));
  assertEquals(version, { major: 3, minor: 4, patch: 1 });
  assertEquals(
    dnnlVersionProblem(version, "/opt/lib/libdnnl.so.3"),
    "oneDNN 3.4.1 found at /opt/lib/libdnnl.so.3; this project needs oneDNN 2.x (its " +
      "convolution API, which 3.x replaced): apt-get install libdnnl2 on Debian/Ubuntu",
  );
  assertEquals(dnnlVersionProblem({ major: 2, minor: 6, patch: 3 }, "libdnnl.so.2"), undefined);
  assertMatch(dnnlVersionProblem({ major: 1, minor: 8, patch: 0 }, "x")!, /^oneDNN 1\.8\.0 found/);
  assertThrows(() => readDnnlVersion(null), Error, "dnnl_version() returned null");
});

/** Whether a C compiler is here, to build a library that only looks like oneDNN 3.x. */
const hasCc = (() => {
  try {
    return new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "a oneDNN 3.x library is refused with its version, not a missing-symbol error",
  ignore: !hasCc,
  fn: async () => {
    // Only dnnl_version(), as in 3.x, which lacks the 2.x descriptor functions these kernels bind.
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/fake.c`,
        "typedef struct { int major, minor, patch; const char *hash; unsigned cpu, gpu; } v_t;\n" +
          'static const v_t v = { 3, 4, 1, "fake", 0, 0 };\n' +
          "const v_t *dnnl_version(void) { return &v; }\n",
      );
      const library = `${dir}/libdnnl.so.3`;
      const cc = await new Deno.Command("cc", {
        args: ["-shared", "-fPIC", "-o", library, `${dir}/fake.c`],
      }).output();
      assertEquals(cc.code, 0, new TextDecoder().decode(cc.stderr));
      const before = Deno.env.get(LIBRARY_ENV_VAR);
      Deno.env.set(LIBRARY_ENV_VAR, library);
      try {
        assertThrows(
          () => openDnnl(),
          Error,
          `oneDNN 3.4.1 found at ${library}; this project needs oneDNN 2.x`,
        );
      } finally {
        if (before === undefined) Deno.env.delete(LIBRARY_ENV_VAR);
        else Deno.env.set(LIBRARY_ENV_VAR, before);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("filterLayout 'hwio' (bench/native_conv.ts --hwio) passes the self-check and gives the same convolutions", async () => {
  const threads = wasmFlavour().threadsCount;
  const f = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.conv2d(x, w, 1, "same");
  const grads = gradsOf(f, [2, 9, 7, 5], [3, 3, 5, 6], 700);
  const any = await on("wasm", grads);
  disableNativeKernels();
  try {
    const status = enableNativeKernels(threads, { filterLayout: "hwio" });
    assert(status.active, status.notice);
    assertMatches(await on("wasm", grads), any, "hwio against any");
    const hwio = [...nativeImplementations()].filter(([key]) => key.startsWith("hwio|"));
    assert(hwio.length > 0, "the hwio plans are listed apart");
  } finally {
    disableNativeKernels();
    enableNativeKernels(threads);
  }
});

Deno.test("native kernels beyond the convolutions are made once: an off/on cycle reinstalls the same ones", async () => {
  await useBackend("wasm");
  const threads = wasmFlavour().threadsCount;
  const names = [
    BATCH_NORM_TRAINING_KERNEL,
    tf.LeakyRelu,
    tf.Add,
    tf.AvgPoolGrad,
    tf.Sum,
    tf.BatchMatMul,
  ];
  const installed = () => names.map((n) => tf.getKernel(n, "wasm")?.kernelFunc);
  const before = installed();
  // Every family is in (none left out on this library), and each kernel is a native one.
  assertEquals(nativeKernels().leftOut, undefined);
  disableNativeKernels();
  const wasm = installed();
  names.forEach((n, i) => assert(wasm[i] !== before[i], `${n}: the wasm kernel is back`));
  enableNativeKernels(threads);
  // The same functions, so the same primitives and memories: nothing made again, nothing leaked.
  const after = installed();
  names.forEach((n, i) => assert(after[i] === before[i], `${n}: made again`));
  assertEquals(nativeKernels().active, true);
});
