// Preloaded by native_test.ts into other test files' run: selects wasm with its native (oneDNN)
// kernels before they start, so their PyTorch fixtures are checked on those kernels.
import { tf } from "../lib/backend/tf.ts";
import { nativeKernels, useBackend } from "../lib/backend/mod.ts";

await useBackend("wasm");
const status = nativeKernels();
if (!status.active) throw new Error(`native kernels did not start: ${status.notice}`);
console.log(`${tf.getBackend()} + ${status.library} selected`);
