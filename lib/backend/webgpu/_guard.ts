/**
 * Turns WebGPU's silent failures into errors that name the backend and the kernel.
 *
 * WebGPU reports an invalid shader or pipeline only asynchronously (an error scope or the
 * device's `uncapturederror` event), and tfjs-backend-webgpu 4.22 listens to neither: a kernel
 * whose shader does not compile leaves its output at zero and invalidates the whole submission it
 * was batched into, and nothing is thrown. A lost device (driver reset, `device.destroy()`) is
 * not watched either. {@linkcode guardWebGpuBackend} wraps one backend instance so that:
 *
 * - each shader module and compute pipeline is created inside a validation error scope, tagged
 *   with the tfjs kernel running at that moment (see {@linkcode runningKernel}); a failure is kept;
 * - `device.lost` and the device's uncaptured errors (work refused at dispatch) are watched;
 * - every read of tensor values (`await tensor.data()`) first waits for those scopes and rejects
 *   with a {@linkcode WebGpuError} once anything failed or the device is lost (and from then on:
 *   values computed in the same submission may be wrong), and gives up after a timeout instead of
 *   waiting forever;
 * - synchronous reads (`dataSync`, `arraySync`), which tfjs-webgpu implements by drawing to a
 *   canvas that Deno does not have, fail with a message saying to read asynchronously.
 *
 * Pipelines are cached by tfjs, so the scopes cost once per distinct shader, not per kernel call.
 *
 * @example
 * ```ts
 * import { guardWebGpuBackend } from "./_guard.ts";
 * const guard = guardWebGpuBackend(tf.backend() as never, { readTimeoutMs: 60_000 });
 * await guard.check(); // throws a WebGpuError naming the kernel if a shader failed
 * ```
 * @module
 */
import { tf } from "../tf.ts";

/**
 * A failure of tfjs's WebGPU backend: a shader or pipeline that WebGPU refused, a lost device, a
 * read that timed out, or a synchronous read.
 *
 * @example
 * ```ts
 * try { await t.data(); } catch (e) { if (e instanceof WebGpuError) console.error(e.kernel); }
 * ```
 */
export class WebGpuError extends Error {
  /** The tfjs kernel that was running when the failure was caught, when known. */
  readonly kernel?: string;
  /**
   * @example
   * ```ts
   * new WebGpuError('webgpu backend: kernel "PadV2" failed', "PadV2");
   * ```
   */
  constructor(message: string, kernel?: string) {
    super(message);
    this.name = "WebGpuError";
    this.kernel = kernel;
  }
}

let running: string | undefined;

/**
 * The tfjs kernel the WebGPU backend is running now (set by {@linkcode tagWebGpuKernels}).
 *
 * @example
 * ```ts
 * runningKernel(); // undefined outside a kernel
 * ```
 */
export function runningKernel(): string | undefined {
  return running;
}

const taggedFuncs = new WeakSet<tf.KernelFunc>();
/** How the last guarded device was lost, once it was. */
let lostDevice: string | undefined;

/**
 * Re-registers every kernel of the `"webgpu"` backend with a wrapper that records its name while
 * it runs (the name goes into error messages). Kernels already wrapped are left alone, so it can
 * be called again after kernels are added or replaced.
 *
 * @example
 * ```ts
 * tagWebGpuKernels();
 * ```
 */
export function tagWebGpuKernels(): void {
  for (const config of tf.getKernelsForBackend("webgpu")) {
    const { kernelName, kernelFunc } = config;
    if (taggedFuncs.has(kernelFunc)) continue;
    const tagged: tf.KernelFunc = (args) => {
      const outer = running;
      running = kernelName;
      try {
        return kernelFunc(args);
      } catch (e) {
        if (e instanceof WebGpuError) throw e;
        // WebGPU calls on a lost device throw "Buffer … is invalid"; say which kernel, and why.
        throw new WebGpuError(
          `webgpu backend: kernel "${kernelName}" failed: ` +
            (lostDevice ?? (e instanceof Error ? e.message : String(e))),
          kernelName,
        );
      } finally {
        running = outer;
      }
    };
    taggedFuncs.add(tagged);
    tf.unregisterKernel(kernelName, "webgpu");
    tf.registerKernel({ ...config, kernelFunc: tagged });
  }
}

/** The parts of `GPUDevice` the guard wraps. */
interface DeviceLike {
  pushErrorScope(filter: "validation"): void;
  popErrorScope(): Promise<{ message: string } | null>;
  createShaderModule(descriptor: { label?: string }): unknown;
  createComputePipeline(descriptor: { label?: string }): unknown;
  createComputePipelineAsync?(descriptor: { label?: string }): Promise<unknown>;
  lost: Promise<{ reason?: string; message: string }>;
  addEventListener?(
    type: "uncapturederror",
    listener: (event: { error?: { message?: string } }) => void,
  ): void;
}

/** The parts of tfjs-webgpu's `WebGPUBackend` the guard wraps. */
export interface GuardableBackend {
  device: DeviceLike;
  read(dataId: object): Promise<tf.backend_util.BackendValues>;
  readSync(dataId: object): tf.backend_util.BackendValues;
}

/** Options of {@linkcode guardWebGpuBackend}. */
export interface GuardOptions {
  /** Milliseconds a single read may take before it is abandoned with an error. */
  readTimeoutMs: number;
}

/** What {@linkcode guardWebGpuBackend} returns. */
export interface Guard {
  /** Waits for pending error scopes; throws the first failure, if any. */
  check(): Promise<void>;
}

/**
 * Installs the checks described in the module doc on `backend` (once per backend instance).
 *
 * @example
 * ```ts
 * const guard = guardWebGpuBackend(backend, { readTimeoutMs: 600_000 });
 * ```
 */
export function guardWebGpuBackend(backend: GuardableBackend, options: GuardOptions): Guard {
  const device = backend.device;
  const pending = new Set<Promise<void>>();
  let failure: WebGpuError | undefined;
  const fail = (e: WebGpuError) => failure ??= e;

  const scoped = <T>(what: string, create: () => T, label?: string): T => {
    const kernel = running;
    device.pushErrorScope("validation");
    try {
      return create();
    } finally {
      const popped = device.popErrorScope().then((error) => {
        if (error === null) return;
        const first = error.message.trim().split("\n").slice(0, 3).join(" ").replace(/\s+/g, " ");
        fail(
          new WebGpuError(
            `webgpu backend: kernel "${kernel ?? "unknown"}" (${what} ${label ?? "unlabelled"}) ` +
              `was refused by WebGPU: ${first}`,
            kernel,
          ),
        );
      }, () => {}).finally(() => pending.delete(popped));
      pending.add(popped);
    }
  };
  const createShaderModule = device.createShaderModule.bind(device);
  device.createShaderModule = (d) => scoped("shader", () => createShaderModule(d), d.label);
  const createComputePipeline = device.createComputePipeline.bind(device);
  device.createComputePipeline = (d) => scoped("pipeline", () => createComputePipeline(d), d.label);
  const createAsync = device.createComputePipelineAsync?.bind(device);
  if (createAsync) {
    device.createComputePipelineAsync = (d) => {
      const kernel = running;
      return createAsync(d).catch((e) => {
        throw fail(
          new WebGpuError(
            `webgpu backend: kernel "${kernel ?? "unknown"}" (pipeline ${d.label}) was refused ` +
              `by WebGPU: ${e instanceof Error ? e.message : e}`,
            kernel,
          ),
        );
      });
    };
  }

  // Anything else WebGPU refuses (a dispatch or a binding over the device's limits) arrives as
  // an uncaptured error, after the kernel that caused it has returned.
  device.addEventListener?.("uncapturederror", (event) => {
    const message = (event.error?.message ?? "unknown error").trim().split("\n")[0];
    fail(
      new WebGpuError(
        `webgpu backend: WebGPU refused work of a recent kernel (reported asynchronously, ` +
          `last kernel "${running ?? "none"}"): ${message}`,
        running,
      ),
    );
  });

  let lost: WebGpuError | undefined;
  const lostError = device.lost.then((info) => {
    lostDevice = `the GPU device was lost (${info.reason ?? "unknown"}: ${info.message})`;
    lost = new WebGpuError(
      `webgpu backend: ${lostDevice} while running kernel "${running ?? "none"}"`,
      running,
    );
    fail(lost);
    return lost;
  });

  const check = async () => {
    if (pending.size > 0) await Promise.all([...pending]);
    if (failure) throw failure;
  };

  const read = backend.read.bind(backend);
  backend.read = async (dataId) => {
    await check();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new WebGpuError(
              `webgpu backend: reading a tensor took longer than ${options.readTimeoutMs} ms; ` +
                "the GPU is stuck or far too slow for this work",
            ),
          ),
        options.readTimeoutMs,
      );
    });
    try {
      const values = await Promise.race([
        read(dataId),
        timeout,
        lostError.then((e) => Promise.reject(e)),
      ]);
      await check();
      return values;
    } catch (e) {
      if (e instanceof WebGpuError) throw e;
      // A read on a lost device rejects with WebGPU's own words ("Buffer … is invalid"), and
      // device.lost may settle a moment later: give it that moment, then say what happened.
      const cause = await Promise.race([
        lostError,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000)),
      ]);
      throw cause ?? new WebGpuError(
        `webgpu backend: reading a tensor failed: ${e instanceof Error ? e.message : e}`,
      );
    } finally {
      clearTimeout(timer);
    }
  };
  backend.readSync = () => {
    throw new WebGpuError(
      "webgpu backend: synchronous reads (dataSync, arraySync, print) are not possible under " +
        "Deno (tfjs-webgpu reads synchronously through a canvas); use await tensor.data() or " +
        "await tensor.array()",
    );
  };
  return { check };
}
