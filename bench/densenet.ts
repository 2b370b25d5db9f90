/**
 * Training and inference speed of the article's DenseNet (both variants) on a tfjs backend.
 *
 * ```sh
 * deno task bench                                   # both networks, batch 64, auto backend
 * deno task bench --net transposed --batch 32 --steps 10 --warmup 2 --backend wasm
 * deno task bench --json                            # one JSON object per network per line
 * deno task bench --net conv --batch 32 --profile   # also the top kernels of one step
 * deno task bench --batch 64 --data synthetic       # real batches from the whole training split
 * deno task bench --native off                      # convolutions on the wasm kernels, not oneDNN
 * ```
 *
 * Each network (`DenseNet` from `lib/nn`, seed 0) is trained on random images `[batch, 32, 32,
 * 3]` with random labels: `--warmup` untimed steps, then `--steps` timed ones. With `--data
 * synthetic|cifar10|auto` the whole training split (50,000 images) is loaded as notebook 02 loads
 * it and every step takes the next shuffled, augmented, normalised batch from it, so the peak
 * memory is that of full-dataset training at this batch size, data pipeline included. A step is the
 * trainer's: `tf.variableGrads` of `crossEntropy`, the loss read back, `SGD.step` (lr 0.01,
 * momentum 0.9, PyTorch's update). The median step gives ms per image and images per second; the
 * same number of inference passes (`training: false`, logits read back) gives the forward
 * figure. With two networks each runs in its own process, so that its peak resident memory
 * (`VmHWM` of `/proc/self/status`, or the largest sampled `Deno.memoryUsage().rss` where that
 * file is missing) is its own: tfjs-wasm's heap grows but never shrinks.
 *
 * `--json` prints, per network, `{"net", "backend", "native", "threads", "native_threads",
 * "batch", "steps",
 * "warmup", "ms_per_img", "img_per_s", "step_ms", "forward_ms_per_img", "forward_img_per_s",
 * "peak_rss_mb", "data", "reason", "adapter", "article_run_h", "article_run_total_h"}`:
 * `"native"` is the library running the wasm backend's convolutions (`"oneDNN 2.6.3"`) or null,
 * `"threads"` what the running backend reports, `"native_threads"` oneDNN's OpenMP pool
 * (`TCONV_NATIVE_THREADS`) or null, `"adapter"` the WebGPU adapter's description on webgpu, else
 * null, `"article_run_h"` the hours this network's part of the article's full run would take at
 * these speeds (60 epochs, each training on 50,000 images and evaluating the 10,000 test images;
 * {@linkcode articleRunHours}) and `"article_run_total_h"` both networks' (null unless both were
 * measured); `--profile` adds `"top_kernels"` (name, ms, calls of one profiled
 * training step, slowest first). The backend is chosen as `useBackend` does (`--backend auto`,
 * the default, honours `TCONV_BACKEND`; `--native auto`, the default, honours `TCONV_NATIVE`).
 * @module
 */
import { parseCommandLine, UsageError } from "../lib/util/cli_args.ts";
import { tf } from "../lib/backend/tf.ts";
import {
  BACKEND_PREFERENCES,
  backendThreads,
  chooseBackend,
  NATIVE_PREFERENCES,
  nativeKernels,
  type NativePreference,
  nativePreference,
  startBackend,
  webgpuAdapter,
} from "../lib/backend/mod.ts";
import { DenseNet, type Variant } from "../lib/nn/mod.ts";
import { crossEntropy, SGD } from "../lib/train/mod.ts";
import {
  batches,
  type Dataset,
  DATASET_NAMES,
  type DatasetName,
  loadDataset,
} from "../lib/data/mod.ts";

const NETS = ["conv", "transposed", "both"] as const;
const DATA = ["random", ...DATASET_NAMES] as const;
const USAGE = `usage: deno task bench [--net ${NETS.join("|")}] [--batch N] [--steps N] ` +
  `[--warmup N] [--backend ${BACKEND_PREFERENCES.join("|")}] [--data ${DATA.join("|")}] ` +
  `[--native ${NATIVE_PREFERENCES.join("|")}] [--json] [--profile]`;

/** Parsed command line. */
interface Options {
  nets: Variant[];
  batch: number;
  steps: number;
  warmup: number;
  backend: string;
  native: NativePreference;
  data: typeof DATA[number];
  json: boolean;
  profile: boolean;
}

/** One network's figures (the `--json` line). */
interface Result {
  net: Variant;
  backend: string;
  /** The library running the wasm backend's convolutions, e.g. "oneDNN 2.6.3", or null. */
  native: string | null;
  threads: number;
  /** oneDNN's OpenMP pool (`TCONV_NATIVE_THREADS`), or null when it does not run. */
  native_threads: number | null;
  batch: number;
  steps: number;
  warmup: number;
  ms_per_img: number;
  img_per_s: number;
  step_ms: number;
  forward_ms_per_img: number;
  forward_img_per_s: number;
  peak_rss_mb: number;
  /** "random", or the dataset the batches came from ("CIFAR-10", "synthetic shapes (built-in)"). */
  data: string;
  reason: string;
  /** The WebGPU adapter's description on webgpu ("NVIDIA …", "llvmpipe …"), else null. */
  adapter: string | null;
  /** Hours of this network's part of the article's full run, from these speeds. */
  article_run_h: number;
  /** Hours of the article's full run, both networks; null unless both were measured. */
  article_run_total_h: number | null;
  top_kernels?: { name: string; ms: number; calls: number }[];
}

/** The article's full run: epochs, training images per epoch, test images per epoch, networks. */
export const ARTICLE_RUN = { epochs: 60, train: 50_000, test: 10_000, networks: 2 } as const;

/**
 * Hours that one network's part of the article's full run takes at these speeds: every epoch
 * trains on `train` images and evaluates `test` (the test split, once per epoch).
 *
 * @example
 * ```ts
 * articleRunHours(7.5, 2.3); // 60 × (50,000 × 7.5 + 10,000 × 2.3) ms = 6.63 h
 * ```
 */
export function articleRunHours(
  trainMsPerImg: number,
  evalMsPerImg: number,
  run: { epochs: number; train: number; test: number } = ARTICLE_RUN,
): number {
  for (const [name, v] of Object.entries({ trainMsPerImg, evalMsPerImg, ...run })) {
    if (!(Number.isFinite(v) && v >= 0)) {
      throw new RangeError(`${name} must be a finite non-negative number, got ${v}`);
    }
  }
  return run.epochs * (run.train * trainMsPerImg + run.test * evalMsPerImg) / 3_600_000;
}

/**
 * The full run of both networks: the sum of each one's part, or null unless the results hold
 * every one of {@linkcode ARTICLE_RUN}'s networks (conv and transposed), once each.
 *
 * @example
 * ```ts
 * const conv = { net: "conv", article_run_h: 6.6 };
 * articleRunTotalHours([conv, { net: "transposed", article_run_h: 6.4 }]); // 13
 * ```
 */
export function articleRunTotalHours(
  results: readonly { net: string; article_run_h: number }[],
): number | null {
  const nets = new Set(results.map((r) => r.net));
  if (results.length !== ARTICLE_RUN.networks || nets.size !== ARTICLE_RUN.networks) return null;
  return results.reduce((sum, r) => sum + r.article_run_h, 0);
}

function _integer(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    const what = min > 0 ? "a positive integer" : "a non-negative integer";
    throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** `--batch -3` as `--batch=-3`, so that a negative number gets the range message. */
function _joinNegatives(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const next = args[i + 1];
    if (/^--(batch|steps|warmup)$/.test(args[i]) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

/** `value` when it is one of `valid`, else a usage error naming the flag and the valid values. */
function _oneOf<T extends string>(name: string, value: string, valid: readonly T[]): T {
  if (!(valid as readonly string[]).includes(value)) {
    throw new UsageError(
      `--${name} must be one of ${valid.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

function _parse(args: string[]): Options {
  const { values } = parseCommandLine({
    args: _joinNegatives(args),
    options: {
      net: { type: "string", default: "both" },
      batch: { type: "string", default: "64" },
      steps: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      backend: { type: "string", default: "auto" },
      data: { type: "string", default: "random" },
      native: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  _oneOf("net", values.net, NETS);
  const backend = _oneOf("backend", values.backend.trim().toLowerCase(), BACKEND_PREFERENCES);
  _oneOf("data", values.data, DATA);
  const native = _oneOf("native", values.native.trim().toLowerCase(), NATIVE_PREFERENCES);
  return {
    native: native === "auto" ? nativePreference() : native,
    data: values.data as Options["data"],
    nets: values.net === "both" ? ["conv", "transposed"] : [values.net as Variant],
    batch: _integer("batch", values.batch, 1),
    steps: _integer("steps", values.steps, 1),
    warmup: _integer("warmup", values.warmup, 0),
    backend,
    json: values.json,
    profile: values.profile,
  };
}

function _median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Peak resident memory in MB: `VmHWM` where Linux offers it, else the largest sample. */
class PeakRss {
  #sampled = 0;

  constructor() {
    // Linux: writing 5 to clear_refs resets VmHWM, so the peak is this measurement's.
    try {
      Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    } catch {
      // not Linux, or not allowed: VmHWM then covers the whole process, which is this network
    }
    this.sample();
  }

  sample(): void {
    this.#sampled = Math.max(this.#sampled, Deno.memoryUsage().rss);
  }

  mb(): number {
    this.sample();
    try {
      const status = Deno.readTextFileSync("/proc/self/status");
      const kb = status.match(/^VmHWM:\s+(\d+)\s+kB/m);
      if (kb) return Math.round(Number(kb[1]) / 1024);
    } catch {
      // fall through to the samples
    }
    return Math.round(this.#sampled / 2 ** 20);
  }
}

/** Seeded labels in [0, classes). */
function _labels(n: number, classes: number, seed: number): tf.Tensor1D {
  let s = seed >>> 0;
  const values = Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % classes;
  });
  return tf.tensor1d(values, "int32");
}

async function _measure(net: Variant, o: Options): Promise<Result> {
  const { backend, reason } = await chooseBackend(o.backend);
  await startBackend(backend, { native: o.native });
  // What the running backend reports (tfjs-wasm's thread pool), not what was asked for.
  const threads = backendThreads(backend);
  const native = backend === "wasm" ? nativeKernels().library : null;
  const nativeThreads = native === null ? null : nativeKernels().threads;
  const peak = new PeakRss();
  const model = DenseNet({ variant: net, seed: 0 });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = new SGD(vars, { lr: 0.01, momentum: 0.9 });
  const x = tf.randomNormal([o.batch, 32, 32, 3], 0, 1, "float32", 1);
  const y = _labels(o.batch, 10, 2);
  const data = o.data === "random" ? undefined : await _dataset(o.data);
  const source = data && _endless(data, o.batch);
  // The next batch: the same random one, or the dataset's next (disposed after its step).
  const nextBatch = (): { x: tf.Tensor; y: tf.Tensor; owned: boolean } =>
    source ? { ...source.next().value, owned: true } : { x, y, owned: false };
  // Reading a weight back waits for asynchronous backends (webgpu) to finish the update.
  const settle = async () => void await vars[0].data();
  const step = async () => {
    const b = nextBatch();
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(model.apply(b.x, { training: true }) as tf.Tensor, b.y as tf.Tensor1D),
      vars,
    );
    await value.data();
    opt.step(grads);
    tf.dispose([value, ...Object.values(grads)]);
    if (b.owned) tf.dispose([b.x, b.y]);
    await settle();
    peak.sample();
  };
  const forward = async () => {
    const logits = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor);
    await logits.data();
    logits.dispose();
    peak.sample();
  };
  const timed = async (f: () => Promise<void>) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  try {
    for (let i = 0; i < o.warmup; i++) await step();
    const steps: number[] = [];
    for (let i = 0; i < o.steps; i++) steps.push(await timed(step));
    for (let i = 0; i < Math.min(o.warmup, 1); i++) await forward();
    const forwards: number[] = [];
    for (let i = 0; i < o.steps; i++) forwards.push(await timed(forward));
    const stepMs = _median(steps), forwardMs = _median(forwards);
    const result: Result = {
      net,
      backend,
      native,
      threads,
      native_threads: nativeThreads,
      batch: o.batch,
      steps: o.steps,
      warmup: o.warmup,
      ms_per_img: stepMs / o.batch,
      img_per_s: 1000 * o.batch / stepMs,
      step_ms: stepMs,
      forward_ms_per_img: forwardMs / o.batch,
      forward_img_per_s: 1000 * o.batch / forwardMs,
      peak_rss_mb: peak.mb(),
      data: data?.name ?? "random",
      reason,
      adapter: backend === "webgpu" ? webgpuAdapter()?.description ?? null : null,
      article_run_h: articleRunHours(stepMs / o.batch, forwardMs / o.batch),
      article_run_total_h: null,
    };
    if (o.profile) result.top_kernels = await _profile(step);
    return result;
  } finally {
    opt.dispose();
    tf.dispose([x, y]);
    model.dispose();
  }
}

/** The whole training split of a dataset, loaded as notebook 02 loads it. */
function _dataset(name: DatasetName): Promise<Dataset> {
  return loadDataset({ dataset: name, seed: 0, log: (line) => console.error(line) });
}

/** Shuffled, augmented, normalised batches of `data`, epoch after epoch. */
function* _endless(data: Dataset, batchSize: number): Generator<{ x: tf.Tensor; y: tf.Tensor }> {
  for (let epoch = 1;; epoch++) {
    // `batches` disposes a batch when the next is requested; the step disposes it first, which
    // is harmless (disposing twice is a no-op), so every batch is released right after its step.
    yield* batches(data.train, {
      batchSize,
      seed: 0,
      epoch,
      augment: true,
      normalize: data.stats,
      dropRemainder: true, // every timed step has the full batch
    });
  }
}

/** Kernel time of one training step, by kernel name, slowest first (top 12). */
async function _profile(step: () => Promise<void>): Promise<Result["top_kernels"]> {
  const info = await tf.profile(async () => {
    await step();
    return [];
  });
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const entry = byName.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += await k.kernelTimeMs as number;
    entry.calls++;
    byName.set(k.name, entry);
  }
  return [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)
    .map(([name, { ms, calls }]) => ({ name, ms: Math.round(ms * 10) / 10, calls }));
}

/** Runs one network per child process and collects their JSON lines. */
async function _children(o: Options, args: string[]): Promise<Result[]> {
  const results: Result[] = [];
  for (const net of o.nets) {
    const rest = args.filter((a, i) => a !== "--net" && args[i - 1] !== "--net")
      .filter((a) => !a.startsWith("--net=") && a !== "--json");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", import.meta.filename!, ...rest, "--net", net, "--json"],
      stdout: "piped",
      stderr: "inherit",
    });
    const { code, stdout } = await child.output();
    if (code !== 0) throw new Error(`the ${net} benchmark failed (exit code ${code})`);
    const lines = new TextDecoder().decode(stdout).trim().split("\n");
    results.push(JSON.parse(lines[lines.length - 1]) as Result);
  }
  return results;
}

function _print(results: Result[], o: Options): void {
  const r0 = results[0];
  console.log(
    `DenseNet training step on ${r0.backend}${
      r0.native ? ` + ${r0.native}` : ""
    } (${r0.threads} thread${r0.threads === 1 ? "" : "s"}${
      r0.native_threads !== null && r0.native_threads !== r0.threads
        ? `, oneDNN ${r0.native_threads}`
        : ""
    }; ${r0.reason}), batch ${o.batch}, median of ${o.steps} step(s) after ${o.warmup} warm-up, ` +
      (r0.data === "random"
        ? "random data"
        : `batches from the whole training split of ${r0.data}`),
  );
  console.log(
    "net        | train ms/img | train img/s | forward ms/img | forward img/s | peak RSS MB",
  );
  for (const r of results) {
    console.log(
      [
        r.net.padEnd(10),
        r.ms_per_img.toFixed(2).padStart(12),
        r.img_per_s.toFixed(1).padStart(11),
        r.forward_ms_per_img.toFixed(2).padStart(14),
        r.forward_img_per_s.toFixed(1).padStart(13),
        String(r.peak_rss_mb).padStart(11),
      ].join(" | "),
    );
  }
  const { epochs, train, test, networks } = ARTICLE_RUN;
  const count = (n: number) => n.toLocaleString("en-US");
  const parts = results.map((r) => `${r.net} ${r.article_run_h.toFixed(1)} h`).join(", ");
  const total = r0.article_run_total_h;
  console.log(
    `\nthe article's full run at these speeds (${epochs} epochs × ${count(train)} training and ` +
      `${count(test)} test images, ${networks} networks): ` +
      (total === null
        ? `${parts} (measure both networks for the total)`
        : `${total.toFixed(1)} h (${parts})`),
  );

  for (const r of results) {
    if (!r.top_kernels) continue;
    console.log(`\ntop kernels of one ${r.net} training step (ms, calls):`);
    for (const k of r.top_kernels) {
      console.log(`  ${k.name.padEnd(24)} ${k.ms.toFixed(1).padStart(8)} ${k.calls}`);
    }
  }
}

async function main(args: string[]): Promise<number> {
  let o: Options;
  try {
    o = _parse(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`bench: ${e.message}\n${USAGE}`);
    return 2;
  }
  try {
    // Check the backend before anything long starts (unknown TCONV_BACKEND, missing webgpu).
    await chooseBackend(o.backend);
    const results = o.nets.length > 1 ? await _children(o, args) : [await _measure(o.nets[0], o)];
    const total = articleRunTotalHours(results);
    for (const r of results) r.article_run_total_h = total;
    if (o.json) { for (const r of results) console.log(JSON.stringify(r)); }
    else _print(results, o);
    return 0;
  } catch (e) {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
