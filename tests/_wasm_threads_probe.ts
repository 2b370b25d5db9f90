// Run by wasm_threads_test.ts in a child process (tfjs initialises a backend once per process):
// one DenseNet training step's loss and gradients on the wasm backend, on the threads that
// TCONV_THREADS asks for (and oneDNN's pool on what TCONV_NATIVE_THREADS asks for, with
// TCONV_NATIVE=on). Prints one JSON line, then returns without Deno.exit, so the test also
// sees that the pool threads do not keep the process alive.
import { nativeKernels, useBackend, wasmFlavour } from "../lib/backend/mod.ts";
import { openMpMaxThreads } from "../lib/backend/native/_openmp.ts";
import { DenseNet } from "../lib/nn/mod.ts";
import { seededStep } from "./_native_helpers.ts";

await useBackend("wasm");
const model = DenseNet({ variant: "transposed", seed: 5 });
const { value, grads } = seededStep(model, [0, 3, 6, 9]);
// FNV-1a over the bytes of every gradient: equal only when every bit is equal.
let hash = 0x811c9dc5;
for (const grad of grads) {
  for (const byte of new Uint8Array(grad.dataSync().buffer)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
}
const { binary, threadsCount } = wasmFlavour();
// oneDNN's pool as the status reports it and as OpenMP itself does after the step.
const nativeThreads = nativeKernels().threads, openMp = openMpMaxThreads();
console.log(
  JSON.stringify({ binary, threadsCount, nativeThreads, openMp, loss: value.dataSync()[0], hash }),
);
