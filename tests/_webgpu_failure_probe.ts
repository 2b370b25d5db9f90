// Run by webgpu_test.ts in its own process (a failed shader or a lost device leaves the
// process's WebGPU backend unusable, by design): provokes one failure on the real adapter and
// prints the error the project reports, as "Name: message".
//
//   deno run -A tests/_webgpu_failure_probe.ts shader|dispatch|lost
import { tf } from "../lib/backend/mod.ts";
import { startWebGpu } from "../lib/backend/webgpu/mod.ts";
import { tagWebGpuKernels } from "../lib/backend/webgpu/_guard.ts";

const mode = Deno.args[0];
await startWebGpu({ allowSoftware: true });
const x = tf.tensor1d([1, 2, 3, 4]);

/** Registers a kernel running `program` (a tfjs-webgpu program) and runs it on `x`. */
function runProgram(kernelName: string, program: object): tf.Tensor {
  tf.registerKernel({
    kernelName,
    backendName: "webgpu",
    kernelFunc: ({ inputs, backend }) =>
      (backend as unknown as {
        runWebGPUProgram(p: unknown, i: tf.TensorInfo[], d: string): tf.TensorInfo;
      }).runWebGPUProgram(program, [inputs.x as tf.TensorInfo], "float32"),
  });
  tagWebGpuKernels();
  return tf.engine().runKernel(kernelName, { x }) as tf.Tensor;
}

const program = {
  variableNames: ["x"],
  outputShape: [4],
  dispatchLayout: { x: [0] },
  dispatch: [1, 1, 1],
  workgroupSize: [64, 1, 1],
  size: true,
};
if (mode === "shader") {
  // A program whose WGSL does not parse, run through tfjs-webgpu's own compile path.
  const y = runProgram("BrokenShaderProbe", {
    ...program,
    shaderKey: "broken-shader-probe",
    getUserCode: () => "this is not WGSL",
  });
  await report(() => y.data());
} else if (mode === "dispatch") {
  // A valid shader that ignores its input, so tfjs-webgpu binds one buffer more than the
  // pipeline's layout has: WebGPU refuses the dispatch, reported only as an uncaptured error.
  const y = runProgram("BindingMismatchProbe", {
    ...program,
    shaderKey: "binding-mismatch-probe",
    getUserCode: () =>
      "fn main(index : i32) { if (index < uniforms.size) { setOutputAtIndex(index, 1.0); } }",
  });
  await report(() => y.data());
} else if (mode === "lost") {
  (tf.backend() as unknown as { device: { destroy(): void } }).device.destroy();
  // A device is lost asynchronously (a driver reset); work submitted later fails.
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Large enough to run on the GPU (tfjs-webgpu computes tiny tensors on the CPU).
  await report(() => tf.ones([64, 64]).matMul(tf.ones([64, 64])).data());
} else {
  throw new RangeError(`mode must be shader, dispatch or lost, got ${JSON.stringify(mode)}`);
}

async function report(read: () => Promise<unknown>): Promise<void> {
  try {
    const values = await read();
    console.log(`no error; read ${values}`);
    Deno.exit(1);
  } catch (e) {
    console.log(`${(e as Error).name}: ${(e as Error).message}`);
    Deno.exit(0);
  }
}
