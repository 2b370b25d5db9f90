/**
 * Starts tfjs-backend-wasm's multi-threaded SIMD build under Deno. Out of the box it does not
 * start: Deno defines `process.versions.node`, so Emscripten's glue takes its Node.js path,
 * replaces `globalThis.Worker` with `node:worker_threads`' `Worker` and starts its thread pool
 * from the `blob:` URL tfjs gives it, which `node:worker_threads` refuses (`ERR_WORKER_PATH`).
 * {@linkcode startThreadedWasm} initialises the backend with, for the duration of the
 * initialisation only:
 *
 * - a `globalThis.Worker` that ignores Emscripten's assignment and starts this project's
 *   `_pthread_worker.mjs` (a real file, which loads the package's glue from disk) in place of
 *   the blob;
 * - `os.cpus()` reporting twice the wanted threads: tfjs caps its pool at half the logical cores
 *   (it assumes two hyper-threads per core), which would leave one thread on a 2-core machine.
 *
 * The pool threads are then unref'd so that a program exits when its work is done. XNNPACK
 * splits each operation's output between the threads, so results are the same bits as on one
 * thread (tested).
 *
 * @example
 * ```ts
 * import { startThreadedWasm } from "./_threads.ts";
 * await startThreadedWasm(2); // instead of tf.setBackend("wasm")
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { Worker as NodeWorker } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { THREADS_ENV_VAR, wasmThreadCount } from "../../util/backend_rules.ts";

export { MAX_WASM_THREADS, THREADS_ENV_VAR } from "../../util/backend_rules.ts";

/**
 * Threads the wasm backend will use: `TCONV_THREADS` when set (an integer from 1 to 8), else the
 * number of logical cores, at most 8 (see `wasmThreadCount` in lib/util/backend_rules.ts).
 *
 * @example
 * ```ts
 * wasmThreadsWanted(); // 2 on a 2-core machine
 * ```
 */
export function wasmThreadsWanted(): number {
  return wasmThreadCount(Deno.env.get(THREADS_ENV_VAR), navigator.hardwareConcurrency);
}

/**
 * Initialises tfjs's `"wasm"` backend on the threaded SIMD binary with `threads` threads (see the
 * module doc) and makes it the current backend. Call it before the wasm backend is first
 * initialised; the binaries' folder must already be set (`configureWasm`). `packageFolder` is that
 * folder, the `file:` URL of the package's `dist/`.
 *
 * @example
 * ```ts
 * await startThreadedWasm(2, wasmFolder);
 * ```
 */
export async function startThreadedWasm(threads: number, packageFolder: string): Promise<void> {
  const gluePath = fileURLToPath(
    new URL("../wasm-out/tfjs-backend-wasm-threaded-simd.js", packageFolder),
  );
  const script = new URL("./_pthread_worker.mjs", import.meta.url);
  const started: NodeWorker[] = [];
  class PoolThread extends NodeWorker {
    constructor(_blobUrl: string) {
      super(script, { workerData: { gluePath } });
      started.push(this);
    }
  }
  tf.env().set("WASM_HAS_SIMD_SUPPORT", true);
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  setThreadsCount(threads);
  const worker = Object.getOwnPropertyDescriptor(globalThis, "Worker");
  Object.defineProperty(globalThis, "Worker", {
    configurable: true,
    get: () => PoolThread,
    set: () => {}, // Emscripten's `Worker = require("worker_threads").Worker`
  });
  const cpus = os.cpus;
  const real = cpus.call(os);
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]);
  try {
    if (!(await tf.setBackend("wasm"))) {
      throw new Error(
        `tfjs-wasm's threaded build failed to initialise; set ${THREADS_ENV_VAR}=1 to use ` +
          "the single-threaded one",
      );
    }
    await tf.ready();
    // After initialisation: Deno re-refs a worker when Emscripten adds its message listener.
    for (const t of started) t.unref();
  } finally {
    os.cpus = cpus;
    if (worker) Object.defineProperty(globalThis, "Worker", worker);
    else delete (globalThis as { Worker?: unknown }).Worker;
  }
}
