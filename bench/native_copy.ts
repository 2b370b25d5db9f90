/**
 * Speed of the copies a DenseNet training step had before its transition convolutions took the
 * blocks' pieces (now it has none) — the dense blocks' channel concatenations (`Concat`) and their
 * gradients (`SplitV`), still what `tf.concat` of such pieces costs — with the native (oneDNN) copy
 * kernels and with the JavaScript ones, interleaved: each round runs every copy once each way, so
 * that a busy machine slows both alike. Prints the fastest round of each (milliseconds for the whole step's copies,
 * and the process's CPU milliseconds, which a busy machine inflates less) and the ratio.
 *
 * ```sh
 * deno run -A bench/native_copy.ts                 # batch 64, 5 rounds
 * deno run -A bench/native_copy.ts --batch 32 --rounds 9
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { tf } from "../lib/backend/tf.ts";
import { startWasm, useNative } from "./_native.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "64" },
    rounds: { type: "string", default: "5" },
  },
});
const batch = Number(values.batch), rounds = Number(values.rounds);

const { threads } = await startWasm();

/**
 * The concatenations: one per block (side 32, 16, 8), of its 5 pieces of 32 channels (what
 * `denseBlock` makes; `DenseNet` passes the pieces as lists instead, see lib/nn/densenet.ts).
 */
const CONCATS = [32, 16, 8].map((side) => ({ side, pieces: 5 }));

/** Wall and CPU milliseconds of every concatenation and of splitting each back. */
function step(): { concat: number[]; split: number[] } {
  const result = { concat: [0, 0], split: [0, 0] };
  for (const { side, pieces } of CONCATS) {
    const parts = Array.from(
      { length: pieces },
      (_, i) => tf.randomNormal([batch, side, side, 32], 0, 1, "float32", i),
    );
    const cpu0 = process.cpuUsage(), t0 = performance.now();
    const cat = tf.concat(parts, 3);
    const cpu1 = process.cpuUsage(), t1 = performance.now();
    const split = tf.split(cat, pieces, 3);
    const cpu2 = process.cpuUsage(), t2 = performance.now();
    const ms = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) =>
      (b.user + b.system - a.user - a.system) / 1000;
    result.concat[0] += t1 - t0;
    result.concat[1] += ms(cpu0, cpu1);
    result.split[0] += t2 - t1;
    result.split[1] += ms(cpu1, cpu2);
    tf.dispose([...parts, cat, ...split]);
  }
  return result;
}

const best: Record<string, { concat: number[]; split: number[] }> = {};
for (let r = 0; r <= rounds; r++) {
  for (const mode of ["native", "js"] as const) {
    useNative(mode === "native", threads);
    const s = step();
    if (r === 0) continue; // warm-up: primitives made, heap grown
    const b = best[mode] ??= { concat: [Infinity, Infinity], split: [Infinity, Infinity] };
    for (const k of ["concat", "split"] as const) {
      b[k] = b[k].map((v, i) => Math.min(v, s[k][i]));
    }
  }
}
useNative(true, threads);

const load = Deno.loadavg()[0].toFixed(1);
console.log(`batch ${batch}, ${threads} threads, best of ${rounds} rounds, load ${load}`);
console.log("kernel    native wall (cpu) ms   js wall (cpu) ms   js / native (wall)");
for (const k of ["concat", "split"] as const) {
  const [n, j] = [best.native[k], best.js[k]];
  console.log(
    `${k.padEnd(9)} ${n[0].toFixed(1).padStart(8)} (${n[1].toFixed(0)})`.padEnd(33) +
      `${j[0].toFixed(1).padStart(8)} (${j[1].toFixed(0)})`.padEnd(19) +
      `${(j[0] / n[0]).toFixed(2)}×`,
  );
}
