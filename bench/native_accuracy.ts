/**
 * How close a DenseNet training step's gradients come to tfjs-cpu's (plain JavaScript, float32,
 * the reference) with the wasm backend's two convolution paths: the native (oneDNN) kernels and
 * the project's wasm kernels. Backs the exactness figures in docs/backends.md.
 *
 * ```sh
 * deno run -A bench/native_accuracy.ts                      # both variants, batch 3
 * deno run -A bench/native_accuracy.ts --net conv --batch 2
 * deno run -A bench/native_accuracy.ts --size 8            # 8×8 images: seconds, not minutes
 * ```
 *
 * One step (loss and every parameter's gradient) of `DenseNet({ variant, seed: 11 })` on seeded
 * random images `[batch, size, size, 3]` (`--size`, default 32); per gradient the relative error
 * `‖a − cpu‖ / ‖cpu‖`, and the largest over all gradients is printed. Gradients that are zero but
 * for rounding (the conv biases in front of a BatchNorm: `‖cpu‖ ≤ 1e-5·G·√n`, G the step's largest
 * gradient element) have no meaningful relative error and are left out, and counted. At 32×32,
 * tfjs-cpu takes minutes per step.
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import { startWasm, useNative } from "./_native.ts";
import { DenseNet, type Variant } from "../lib/nn/mod.ts";
import { crossEntropy } from "../lib/train/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    net: { type: "string", default: "both" },
    batch: { type: "string", default: "3" },
    size: { type: "string", default: "32" },
  },
});
const batch = Number(values.batch), size = Number(values.size);
if (!Number.isInteger(size) || size < 8 || size % 8 !== 0) {
  throw new RangeError(`--size must be a positive multiple of 8, got ${values.size}`);
}
if (!Number.isInteger(batch) || batch < 1) {
  throw new RangeError(`--batch must be a positive integer, got ${values.batch}`);
}
if (!["conv", "transposed", "both"].includes(values.net)) {
  throw new RangeError(`--net must be conv, transposed or both, got ${values.net}`);
}
const variants: Variant[] = values.net === "both"
  ? ["conv", "transposed"]
  : [values.net as Variant];

/** Loss and every gradient of one training step, read back. */
async function step(backend: string, variant: Variant): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const model = DenseNet({ variant, seed: 11, imageSize: size });
  try {
    const out = tf.tidy(() => {
      const x = tf.randomNormal([batch, size, size, 3], 0, 1, "float32", 12);
      const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => (7 * i + 1) % 10), "int32");
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, y),
        vars,
      );
      return [value, ...vars.map((v) => grads[v.name])];
    });
    const data = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(out);
    return data;
  } finally {
    model.dispose();
  }
}

/** Largest relative gradient error against `reference`, and how many gradients were left out. */
function compare(actual: Float32Array[], reference: Float32Array[]) {
  const [, ...grads] = reference;
  const g = Math.max(...grads.map((t) => t.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  let worst = 0, skipped = 0;
  grads.forEach((e, i) => {
    const a = actual[i + 1];
    let diff = 0, norm = 0;
    for (let j = 0; j < e.length; j++) {
      diff += (a[j] - e[j]) ** 2;
      norm += e[j] ** 2;
    }
    if (Math.sqrt(norm) <= 1e-5 * g * Math.sqrt(e.length)) skipped++;
    else worst = Math.max(worst, Math.sqrt(diff / norm));
  });
  const loss = Math.abs(actual[0][0] - reference[0][0]) / Math.abs(reference[0][0]);
  return { worst, skipped, loss, count: grads.length };
}

const { threads, library } = await startWasm();
console.log(
  `DenseNet step, batch ${batch}, ${size}×${size}, wasm on ${threads} threads, against tfjs-cpu`,
);
for (const variant of variants) {
  useNative(true, threads);
  const native = await step("wasm", variant);
  useNative(false, threads);
  const wasm = await step("wasm", variant);
  const cpu = await step("cpu", variant);
  for (const [label, result] of [[library, native], ["wasm kernels", wasm]] as const) {
    const c = compare(result, cpu);
    console.log(
      `${variant.padEnd(10)} ${label.padEnd(13)} largest relative gradient error ` +
        `${c.worst.toExponential(1)} (${c.count - c.skipped} gradients; ${c.skipped} zero but ` +
        `for rounding left out), loss ${c.loss.toExponential(1)}`,
    );
  }
}
