// bench/densenet.ts runs with tiny settings and prints one valid JSON line per network; bad flags
// exit non-zero with a message. A smoke test of the benchmark, not a timing.
import { assert, assertAlmostEquals, assertEquals, assertMatch, assertThrows } from "@std/assert";
import { ARTICLE_RUN, articleRunHours, articleRunTotalHours } from "../bench/densenet.ts";
import { lastStepBreakdown } from "../bench/native_breakdown.ts";
import { tf } from "../lib/backend/tf.ts";

const BENCH = new URL("../bench/densenet.ts", import.meta.url).pathname;

async function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...Deno.env.toObject() };
  delete env.TCONV_BACKEND; // the benchmark's own default, whatever the caller's shell says
  delete env.TCONV_THREADS;
  delete env.TCONV_NATIVE;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BENCH, ...args],
    env,
    clearEnv: true,
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("bench --json: one line per network with every documented field", async () => {
  const { code, stdout, stderr } = await bench(
    "--batch",
    "2",
    "--steps",
    "1",
    "--warmup",
    "0",
    "--json",
  );
  assertEquals(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  assertEquals(lines.length, 2, stdout);
  const results = lines.map((l) => JSON.parse(l));
  assertEquals(results.map((r) => r.net), ["conv", "transposed"]);
  for (const r of results) {
    // The bench reports the threads tfjs-wasm's running pool has (its C side's count), so this
    // checks that the pool really spans every core by default.
    const threads = Math.min(8, navigator.hardwareConcurrency);
    assertEquals([r.backend, r.threads, r.batch, r.steps, r.warmup], ["wasm", threads, 2, 1, 0]);
    assertMatch(r.native, /^oneDNN 2\.\d+\.\d+$/, "native kernels by default where oneDNN loads");
    for (const key of ["ms_per_img", "img_per_s", "forward_ms_per_img", "peak_rss_mb"]) {
      assert(typeof r[key] === "number" && r[key] > 0, `${key}: ${r[key]}`);
    }
    assert(Math.abs(r.ms_per_img * r.img_per_s - 1000) < 1e-6, "ms/img and img/s agree");
    assertMatch(r.reason, /webgpu/);
    assertEquals(r.adapter, null); // a WebGPU adapter's name only when running on webgpu
    // The article's full run from this network's own speeds, and the total over both.
    assertAlmostEquals(r.article_run_h, articleRunHours(r.ms_per_img, r.forward_ms_per_img), 1e-9);
  }
  assertEquals(results[0].article_run_total_h, results[1].article_run_total_h);
  assertAlmostEquals(
    results[0].article_run_total_h,
    results[0].article_run_h + results[1].article_run_h,
    1e-9,
  );
});

Deno.test("articleRunHours: 60 epochs of 50,000 training and 10,000 test images, in hours", () => {
  assertEquals(ARTICLE_RUN, { epochs: 60, train: 50_000, test: 10_000, networks: 2 });
  // 60 × 50,000 images at 7.2 ms = 6 h of training; 60 × 10,000 at 3 ms = 0.5 h of evaluation.
  assertAlmostEquals(articleRunHours(7.2, 0), 6, 1e-12);
  assertAlmostEquals(articleRunHours(0, 3), 0.5, 1e-12);
  assertAlmostEquals(articleRunHours(7.2, 3), 6.5, 1e-12);
  assertAlmostEquals(articleRunHours(7.2, 3, { epochs: 1, train: 500, test: 0 }), 0.001, 1e-12);
  assertThrows(() => articleRunHours(Number.NaN, 1), RangeError, "trainMsPerImg");
  assertThrows(() => articleRunHours(1, -2), RangeError, "evalMsPerImg must be");
});

Deno.test("articleRunTotalHours: both networks' parts added, null when one is missing or twice", () => {
  const conv = { net: "conv", article_run_h: 6.5 }, tconv = { net: "transposed", article_run_h: 7 };
  assertEquals(articleRunTotalHours([conv, tconv]), 13.5);
  assertEquals(articleRunTotalHours([conv]), null);
  assertEquals(articleRunTotalHours([conv, conv]), null);
  assertEquals(articleRunTotalHours([conv, tconv, conv]), null);
});

Deno.test("bench --native off: the wasm kernels, native null; TCONV_THREADS=1: one thread", async () => {
  const { code, stdout, stderr } = await bench(
    ..."--net conv --batch 1 --steps 1 --warmup 0 --backend wasm --json --native off".split(" "),
  );
  assertEquals(code, 0, stderr);
  const r = JSON.parse(stdout.trim());
  assertEquals([r.native, r.threads], [null, Math.min(8, navigator.hardwareConcurrency)]);
  const one = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BENCH, ..."--net conv --batch 1 --steps 1 --warmup 0 --json".split(" ")],
    env: { TCONV_THREADS: "1" },
  }).output();
  assertEquals(one.code, 0, new TextDecoder().decode(one.stderr));
  const r1 = JSON.parse(new TextDecoder().decode(one.stdout).trim());
  assertEquals(r1.threads, 1);
  // oneDNN's pool keeps every core (TCONV_NATIVE_THREADS unset), where oneDNN runs.
  const cores = Math.min(8, navigator.hardwareConcurrency);
  assertEquals(r1.native_threads, r1.native === null ? null : cores);
});

Deno.test("bench: explicit backend, one network, table output", async () => {
  const { code, stdout, stderr } = await bench(
    "--net",
    "transposed",
    "--batch",
    "1",
    "--steps",
    "1",
    "--warmup",
    "0",
    "--backend",
    "wasm",
  );
  assertEquals(code, 0, stderr);
  assertMatch(stdout, /on wasm \+ oneDNN 2\.\d+\.\d+ \(\d threads?; requested\), batch 1/);
  assertMatch(stdout, /^transposed +\| +[\d.]+ \|/m);
  // One network: its part of the article's full run, and no total.
  assertMatch(
    stdout,
    /the article's full run at these speeds \(60 epochs × 50,000 training and 10,000 test images, 2 networks\): transposed \d+\.\d h \(measure both/,
  );
});

Deno.test("bench --data synthetic: trains on batches of the whole built-in training split", async () => {
  const run = async (data: string) => {
    const { code, stdout, stderr } = await bench(
      ..."--net conv --batch 2 --steps 2 --warmup 0 --backend wasm --json --data".split(" "),
      data,
    );
    assertEquals(code, 0, stderr);
    return JSON.parse(stdout.trim());
  };
  const random = await run("random"), synthetic = await run("synthetic");
  assertEquals(random.data, "random");
  assertEquals([synthetic.net, synthetic.batch, synthetic.data], [
    "conv",
    2,
    "synthetic shapes (built-in)",
  ]);
  // The 60,000 uint8 images (184 MB) are resident besides the network.
  assert(
    synthetic.peak_rss_mb > random.peak_rss_mb + 150,
    `peak RSS ${synthetic.peak_rss_mb} MB with the data, ${random.peak_rss_mb} MB without`,
  );
});

Deno.test("bench: bad flags exit non-zero with a message and the usage", async () => {
  const cases: [string[], RegExp][] = [
    [["--frobnicate"], /Unknown option '--frobnicate'/],
    [["--batch", "0"], /--batch must be a positive integer, got "0"/],
    [["--batch", "-4"], /--batch must be a positive integer, got "-4"/],
    [["--steps", "two"], /--steps must be a positive integer/],
    [["--warmup", "-1"], /--warmup must be a non-negative integer/],
    [["--net", "resnet"], /--net must be one of conv, transposed, both/],
    [["--backend", "tpu"], /--backend must be one of auto, cpu, wasm, webgpu/],
    [["--data", "mnist"], /--data must be one of random, auto, cifar10, synthetic/],
    [["--native", "maybe"], /--native must be one of auto, on, off, got "maybe"/],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await bench(...args);
    assertEquals(code, 2, `${args.join(" ")}: ${stderr}`);
    assertEquals(stdout, "");
    assertMatch(stderr, message);
    assertMatch(stderr, /usage: deno task bench/);
  }
});

/** Runs another script of bench/ with `args`. */
async function script(name: string, ...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`../bench/${name}`, import.meta.url).pathname, ...args],
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("bench/native_conv.ts --hwio: oneDNN on the hwio layout as a third contender, its kernels named", async () => {
  const { code, stdout, stderr } = await script(
    "native_conv.ts",
    "--batch",
    "1",
    "--rounds",
    "1",
    "--hwio",
  );
  assertEquals(code, 0, stderr);
  assertMatch(stdout, /\| hwio ms \| hwio GF\/s/);
  const rows = stdout.split("\n").filter((l) => / \| (forward|backprop [xw]) /.test(l));
  assertEquals(rows.length, 18, stdout);
  for (const row of rows) assertEquals(row.split("|").length, 8, row);
  assertMatch(stdout, /oneDNN implementations with hwio filters: \S+/);
});

Deno.test("bench/native_accuracy.ts: both paths' gradients against tfjs-cpu, one line per path and network", async () => {
  const { code, stdout, stderr } = await script(
    "native_accuracy.ts",
    "--size",
    "8",
    "--batch",
    "2",
  );
  assertEquals(code, 0, stderr);
  const lines = stdout.split("\n").filter((l) => l.includes("largest relative gradient error"));
  const library = stdout.match(/oneDNN \d+\.\d+\.\d+/)?.[0];
  assertEquals(
    lines.map((l) => l.match(/^(\S+)\s+(.+?)\s+largest/)!.slice(1).join(" ")),
    [`conv ${library}`, "conv wasm kernels", `transposed ${library}`, "transposed wasm kernels"],
  );
  for (const line of lines) {
    const error = Number(line.match(/error (\S+) /)![1]);
    assert(error < 1e-2, `float32 rounding, not a wrong kernel: ${line}`);
  }
});

Deno.test("bench/native_copy.ts: the step's concatenations and splits, native and JavaScript, with the ratio", async () => {
  const { code, stdout, stderr } = await script("native_copy.ts", "--batch", "2", "--rounds", "1");
  assertEquals(code, 0, stderr);
  assertMatch(stdout, /^batch 2, \d+ threads, best of 1 rounds, load \d+\.\d/);
  for (const kernel of ["concat", "split"]) {
    const row = stdout.split("\n").find((l) => l.startsWith(kernel));
    assert(row !== undefined, stdout);
    const numbers = row.match(/[\d.]+/g)!.map(Number);
    assertEquals(numbers.length, 5, row); // wall (cpu) native, wall (cpu) js, ratio
    assert(numbers.every((n) => n >= 0 && Number.isFinite(n)), row);
  }
});

Deno.test("lastStepBreakdown: oneDNN's executions after the last inference pass, by kind", () => {
  const exec = (kind: string, prop: string, mds: string, ms: number) =>
    `onednn_verbose,exec,cpu,${kind},jit:any,${prop},${mds},,,2x3,${ms}`;
  const log = [
    "onednn_verbose,info,oneDNN v2.6.3 (commit N/A)",
    exec("convolution", "forward_training", "src_f32::blocked:acdb:f0", 100),
    exec("batch_normalization", "forward_inference", "data_f32::blocked:acdb:f0", 5),
    exec("convolution", "forward_training", "src_f32::blocked:acdb:f0", 2.5),
    exec("convolution", "forward_training", "src_f32::blocked:acdb:f0", 1.5),
    exec("convolution", "backward_weights", "src_f32::blocked:acdb:f0", 3),
    exec("reorder", "undef", "src_f32::blocked:cdba:f0 dst_f32::blocked:Acdb32a:f0", 0.25),
    exec("reorder", "undef", "src_f32::blocked:ab:f0 dst_f32::blocked:ab:f0", 0.5),
    '{"net":"conv"}',
  ].join("\n");
  const b = lastStepBreakdown(log);
  assertEquals(Object.fromEntries(b), {
    "convolution forward_training": { calls: 2, ms: 4 },
    "convolution backward_weights": { calls: 1, ms: 3 },
    "reorder (filter)": { calls: 1, ms: 0.25 },
    "reorder (copy)": { calls: 1, ms: 0.5 },
  });
  assertThrows(() => lastStepBreakdown(exec("binary", "undef", "x", Number.NaN)), Error, "binary");
});

Deno.test("bench/native_breakdown.ts: oneDNN's time by primitive kind beside the kernels' profile", async () => {
  const { code, stdout, stderr } = await script("native_breakdown.ts", "--batch", "2");
  assertEquals(code, 0, stderr);
  assertMatch(stdout, /^conv network, batch 2, \d+ threads, oneDNN 2\.\d+\.\d+/);
  for (const kind of ["convolution forward_training", "convolution backward_weights"]) {
    assertMatch(stdout, new RegExp(`^ {2}${kind} +[\\d.]+ ms +\\d+$`, "m"));
  }
  // The transitions take their blocks' pieces: nothing is concatenated.
  assert(!/^ {2}concat /m.test(stdout), stdout);
  // A backward-weights primitive per piece: 1 + 1 + 2 + 3 + 4 for a block's convolutions and 5
  // for its transition, three blocks, and the first convolution's.
  assertMatch(stdout, /^ {2}convolution backward_weights +[\d.]+ ms +49$/m);
  // Convolutions 3–5 and the transitions write their pieces' slices in place, in one kernel each.
  assertMatch(stdout, /^ {2}Conv2DBackpropFilter +[\d.]+ ms +7$/m);
  assertMatch(stdout, /^ {2}TconvConvPiecesFilterGrad +[\d.]+ ms +12$/m);
});

Deno.test("bench/arithmetic_floor.ts: the DenseNet's multiply-adds as counted by hand", async () => {
  const { modelMacs } = await import("../bench/arithmetic_floor.ts");
  const { DenseNet } = await import("../lib/nn/mod.ts");
  const { ConvTranspose2d } = await import("../lib/nn/conv.ts");
  // Per image: lowconv 32²·49·3·64; block 1 32²·9·32·(64+32+64+96+128); transition 1 32²·160·128;
  // block 2 16²·9·32·(128+32+64+96+128); transition 2 16²·160·128; block 3 8²·9·32·448;
  // transition 3 8²·160·64; the two linear layers 1024·512 and 512·10.
  const forward = 9_633_792 + 113_246_208 + 20_971_520 + 33_030_144 + 5_242_880 + 8_257_536 +
    655_360 + 524_288 + 5_120;
  for (const variant of ["conv", "transposed"] as const) {
    const model = DenseNet({ variant, seed: 0 });
    // Training: weight gradients of all, input gradients of all but lowconv (it reads the image).
    assertEquals(modelMacs(model), { forward, training: 3 * forward - 9_633_792 }, variant);
    model.dispose();
  }
  // A stride-2 transposed convolution works at each of its 4×4 input positions, not 7×7 outputs.
  const input = tf.input({ shape: [4, 4, 3] });
  const up = new ConvTranspose2d({
    inChannels: 3,
    outChannels: 5,
    kernelSize: 3,
    stride: 2,
    padding: 1,
    bias: false,
  });
  const model = tf.model({ inputs: input, outputs: up.apply(input) as tf.SymbolicTensor });
  assertEquals(modelMacs(model), { forward: 16 * 9 * 3 * 5, training: 2 * 16 * 9 * 3 * 5 });
  model.dispose();
});
