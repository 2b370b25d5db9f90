/**
 * The least time a DenseNet step can take on this machine: the multiply-adds of its convolution and
 * linear layers (forward; for training also the input gradient of every layer but the first and
 * the weight gradient of every layer) divided by the speed of a large single-precision matrix
 * product on the same threads (oneDNN's `sgemm` through the native `BatchMatMul` kernel, the
 * fastest thing fp32 arithmetic does here). A step with the same arithmetic can approach this
 * figure and should not beat it (the matrix product's best of five is close to, not exactly, the
 * machine's peak): speed targets below it need fewer operations (Winograd, lower precision),
 * not better kernels.
 *
 * ```sh
 * deno run -A bench/arithmetic_floor.ts                        # both networks
 * deno run -A bench/arithmetic_floor.ts --pytorch-ms 8.95      # also a ratio target against PyTorch
 * deno run -A bench/arithmetic_floor.ts --json
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import { DenseNet, type Variant } from "../lib/nn/mod.ts";
import { startWasm } from "./_native.ts";

/** Multiply-adds per image of one network: forward, and a training step's three passes. */
export interface ModelMacs {
  forward: number;
  training: number;
}

/**
 * Multiply-adds per image of the convolution and dense layers of `model`. A convolution costs
 * `kh·kw·in·out` per output position, a transposed convolution per input position (where each
 * computes a full kernel's products); a dense layer `in·out`. Training adds the weight gradient of
 * every layer and the input gradient of every layer that does not read the model's input.
 *
 * @example
 * ```ts
 * modelMacs(DenseNet({ variant: "conv" })).forward; // 191,566,848
 * ```
 */
export function modelMacs(model: tf.LayersModel): ModelMacs {
  let forward = 0, training = 0;
  const inputs = new Set(model.inputLayers.map((l) => l.name));
  for (const layer of model.layers) {
    const kernel = layer.weights.find((w) => w.shape.length >= 2 && /kernel/.test(w.name));
    if (!kernel) continue;
    const size = (kernel.shape as number[]).reduce((a, b) => a * b, 1);
    let positions = 1;
    if (kernel.shape.length === 4) {
      // A convolution computes at each output position, a transposed one at each input position.
      const transposed = layer.getClassName() === "ConvTranspose2d";
      const shape = transposed ? layer.inboundNodes[0].inputShapes : layer.outputShape;
      const first = (Array.isArray(shape[0]) ? shape[0] : shape) as number[];
      positions = first[1] * first[2];
    }
    const macs = size * positions;
    const readsInput = layer.inboundNodes.some((n) =>
      n.inboundLayers.some((l) => inputs.has(l.name))
    );
    forward += macs;
    training += macs * (readsInput ? 2 : 3);
  }
  return { forward, training };
}

/** GFLOPS of a `n × n` by `n × n` float32 matrix product on the running backend, best of `reps`. */
export function matmulGflops(n = 2048, reps = 5): number {
  const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
  let best = Infinity;
  for (let i = 0; i < reps + 1; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    const ms = performance.now() - t0;
    c.dispose();
    if (i > 0) best = Math.min(best, ms); // the first call makes the primitive
  }
  tf.dispose([a, b]);
  return 2 * n ** 3 / (best / 1000) / 1e9;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      "pytorch-ms": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const pytorchMs = values["pytorch-ms"] === undefined ? null : Number(values["pytorch-ms"]);
  if (pytorchMs !== null && !(pytorchMs > 0)) {
    console.error(
      `--pytorch-ms must be a positive number of ms per image, got ${values["pytorch-ms"]}`,
    );
    Deno.exit(2);
  }
  const { threads, library } = await startWasm("on");
  const gflops = matmulGflops();
  const rows = (["conv", "transposed"] as Variant[]).map((variant) => {
    const model = DenseNet({ variant, seed: 0 });
    const macs = modelMacs(model);
    model.dispose();
    const floor = (m: number) => 2 * m / (gflops * 1e9) * 1000;
    return {
      net: variant,
      threads,
      native: library,
      sgemm_gflops: gflops,
      forward_gflop_per_img: 2 * macs.forward / 1e9,
      training_gflop_per_img: 2 * macs.training / 1e9,
      training_floor_ms_per_img: floor(macs.training),
      forward_floor_ms_per_img: floor(macs.forward),
    };
  });
  if (values.json) {
    for (const r of rows) console.log(JSON.stringify(r));
  } else {
    console.log(
      `sgemm 2048³ on ${library} (${threads} threads): ${gflops.toFixed(0)} GFLOPS`,
    );
    for (const r of rows) {
      console.log(
        `${r.net.padEnd(10)} training ${r.training_gflop_per_img.toFixed(3)} GFLOP/img → ≥ ${
          r.training_floor_ms_per_img.toFixed(2)
        } ms/img; inference ${r.forward_gflop_per_img.toFixed(3)} GFLOP/img → ≥ ${
          r.forward_floor_ms_per_img.toFixed(2)
        } ms/img`,
      );
    }
    if (pytorchMs !== null) {
      const target = 0.35 * pytorchMs;
      console.log(
        `0.35 × PyTorch's ${pytorchMs} ms/img = ${target.toFixed(2)} ms/img: ${
          target < rows[0].training_floor_ms_per_img ? "below" : "above"
        } the training floor`,
      );
    }
  }
}
