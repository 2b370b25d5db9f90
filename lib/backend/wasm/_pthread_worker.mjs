// One thread of tfjs-backend-wasm's threaded build, as a real file that Deno's
// node:worker_threads can start. Emscripten's own worker script is handed over as a blob: URL,
// which node:worker_threads refuses (ERR_WORKER_PATH), and it would load the backend's glue code
// from a Blob, which node:fs cannot read. This file speaks the same messages with the main
// thread ("load", "run", "cancel", "processProxyingQueue") and loads the glue from the package's
// file whose path comes in `workerData.gluePath`. Started by `_threads.ts`.
import { parentPort, workerData } from "node:worker_threads";
import { createRequire } from "node:module";
import fs from "node:fs";

let Module = {};
let runtimeReady = false;
let queuedBeforeReady = [];

// What the glue expects to find in a Node.js thread.
globalThis.require = createRequire(import.meta.url);
globalThis.postMessage = (message, transfer) => parentPort.postMessage(message, transfer);
globalThis.importScripts = (file) => {
  // The glue is a classic script that defines its factory as a global: evaluate it at global
  // scope, as Emscripten's own worker does.
  // deno-lint-ignore no-eval
  (0, eval)(`${fs.readFileSync(file, "utf8")}\n//# sourceURL=${file}`);
};
// Called by the glue once the wasm instance of this thread exists.
globalThis.startWorker = (instance) => {
  Module = instance;
  globalThis.postMessage({ cmd: "loaded" });
};

function load(data) {
  Module.wasmModule = data.wasmModule;
  for (const handler of data.handlers) {
    Module[handler] = (...args) => globalThis.postMessage({ cmd: "callHandler", handler, args });
  }
  Module.instantiateWasm = (imports, receive) => {
    const instance = new WebAssembly.Instance(Module.wasmModule, imports);
    receive(instance);
    Module.wasmModule = null;
    return instance.exports;
  };
  Module.wasmMemory = data.wasmMemory; // shared with the main thread
  Module.buffer = Module.wasmMemory.buffer;
  Module.ENVIRONMENT_IS_PTHREAD = true;
  globalThis.importScripts(workerData.gluePath);
  globalThis.WasmBackendModuleThreadedSimd(Module);
}

function run(data) {
  Module.__emscripten_thread_init(data.pthread_ptr, 0, 0, 1);
  Module.establishStackSpace();
  Module.PThread.receiveObjectTransfer(data);
  Module.PThread.threadInitTLS();
  if (!runtimeReady) {
    for (const queue of queuedBeforeReady) Module.executeNotifiedProxyingQueue(queue);
    queuedBeforeReady = [];
    runtimeReady = true;
  }
  try {
    Module.invokeEntryPoint(data.start_routine, data.arg);
  } catch (e) {
    if (e === "unwind") return; // the thread's normal way out
    if (!(e instanceof Module.ExitStatus)) throw e;
    if (!Module.keepRuntimeAlive()) Module.__emscripten_thread_exit(e.status);
  }
}

parentPort.on("message", (data) => {
  try {
    if (data.cmd === "load") load(data);
    else if (data.cmd === "run") run(data);
    else if (data.cmd === "cancel") {
      if (Module._pthread_self()) Module.__emscripten_thread_exit(-1);
    } else if (data.cmd === "processProxyingQueue") {
      if (runtimeReady) Module.executeNotifiedProxyingQueue(data.queue);
      else queuedBeforeReady.push(data.queue);
    } else if (data.cmd) {
      fs.writeSync(2, `tfjs-wasm thread: unknown command ${data.cmd}\n`);
    }
  } catch (e) {
    Module.__emscripten_thread_crashed?.();
    throw e;
  }
});
