/**
 * Where one DenseNet training step's time goes inside the native kernels: runs
 * `bench/densenet.ts --profile` with `DNNL_VERBOSE=1` (oneDNN 2.6 prints every primitive it
 * executes, with its time) and sums oneDNN's execute time of the profiled step by primitive kind —
 * convolutions, filter reorders (oneDNN's blocked layout ↔ tfjs's `hwio`), copy reorders
 * (`SplitV`, `Slice`), concatenations, batch normalization, elementwise, binary (`Add`), pooling
 * — beside the kernels' own times from `tf.profile` (which include the JavaScript around each
 * call: output allocation, heap addresses, the stride-1 filter flip). The difference is what the
 * FFI calls and the code around them cost.
 *
 * ```sh
 * deno run -A bench/native_breakdown.ts                      # conv network, batch 64
 * deno run -A bench/native_breakdown.ts --net transposed --batch 32
 * ```
 * @module
 */
import { parseArgs } from "node:util";

/** oneDNN's executions of one step, by primitive kind: calls and milliseconds. */
export type Breakdown = Map<string, { calls: number; ms: number }>;

/**
 * The oneDNN execute lines (`onednn_verbose,exec,…` or `dnnl_verbose,exec,…`) of `log` after its
 * last inference pass (a `forward_inference` primitive), summed by kind. Reorders are split into
 * filter reorders (a blocked layout on either side) and copies (plain layouts on both).
 *
 * @example
 * ```ts
 * lastStepBreakdown("onednn_verbose,exec,cpu,binary,…,1x8:1x8,0.5\n").get("binary"); // { calls: 1, ms: 0.5 }
 * ```
 */
export function lastStepBreakdown(log: string): Breakdown {
  const lines = log.split("\n").filter((l) => /^(onednn|dnnl)_verbose,exec,/.test(l));
  const last = lines.findLastIndex((l) => l.includes(",forward_inference,"));
  const out: Breakdown = new Map();
  for (const line of lines.slice(last + 1)) {
    const f = line.split(",");
    const ms = Number(f[f.length - 1]);
    if (!Number.isFinite(ms)) throw new Error(`no execute time at the end of: ${line}`);
    let kind = f[3];
    if (kind === "convolution") kind += ` ${f[5]}`;
    if (kind === "reorder") {
      // Plain layouts are letters in order (a, ab, abcd, acdb…); blocked ones carry digits.
      const layouts = [...f[6].matchAll(/blocked:([A-Za-z0-9]+):/g)].map((m) => m[1]);
      kind += layouts.some((l) => /\d/.test(l)) ? " (filter)" : " (copy)";
    }
    const entry = out.get(kind) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += ms;
    out.set(kind, entry);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      net: { type: "string", default: "conv" },
      batch: { type: "string", default: "64" },
    },
  });
  const bench = new URL("./densenet.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", bench, "--net", values.net!, "--batch", values.batch!],
      ...["--steps", "1", "--warmup", "1", "--profile", "--json", "--native", "on"],
    ],
    env: { DNNL_VERBOSE: "1" },
  }).output();
  const text = new TextDecoder();
  if (code !== 0) throw new Error(`bench/densenet.ts failed: ${text.decode(stderr)}`);
  const log = text.decode(stdout);
  const result = JSON.parse(log.trim().split("\n").at(-1)!);
  const breakdown = lastStepBreakdown(log);
  const total = [...breakdown.values()].reduce((s, e) => s + e.ms, 0);
  console.log(
    `${values.net} network, batch ${values.batch}, ${result.threads} threads, ` +
      `${result.native}: oneDNN's execute time in one profiled training step`,
  );
  for (const [kind, { calls, ms }] of [...breakdown].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(
      `  ${kind.padEnd(32)} ${ms.toFixed(1).padStart(8)} ms ${String(calls).padStart(4)}`,
    );
  }
  console.log(`  ${"all oneDNN primitives".padEnd(32)} ${total.toFixed(1).padStart(8)} ms`);
  console.log("the step's kernels by tf.profile (ms, calls; the top 12):");
  for (const k of result.top_kernels) {
    console.log(
      `  ${k.name.padEnd(32)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.calls).padStart(4)}`,
    );
  }
}

if (import.meta.main) await main();
