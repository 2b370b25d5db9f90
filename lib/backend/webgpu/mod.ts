/**
 * tfjs's WebGPU backend (`@tensorflow/tfjs-backend-webgpu`), loaded on demand and made safe to
 * use under Deno.
 *
 * The package is imported only by {@linkcode loadWebGpu} (called by {@linkcode startWebGpu}), so
 * a program that runs on wasm or cpu never loads it. Loading it:
 *
 * - keeps `"cpu"` tfjs's default backend (the package registers itself with a higher priority);
 * - registers the `"webgpu"` backend with this module's factory: adapter and device requested
 *   with a timeout (tfjs's own factory waits forever), and the device guarded (`_guard.ts`:
 *   refused shaders and a lost device become a {@linkcode WebGpuError} naming the kernel at the
 *   next read, reads time out, synchronous reads say to read asynchronously);
 * - replaces the `PadV2` kernel, which tfjs-webgpu 4.22 gets wrong for rank 5 and 6, the cause
 *   of every wrong dilated convolution on WebGPU (`_pad.ts`).
 *
 * The project's other kernel replacements are wasm-only by design (registered for `"wasm"`, or
 * gradients that defer to tfjs's off wasm); its backend-independent pieces (the closed-form
 * BatchNorm gradient, the frugal backward pass, the dilated `Conv2D` gradient) run on WebGPU
 * unchanged, and tests/webgpu_test.ts checks each against tfjs-cpu.
 *
 * @example
 * ```ts
 * import { startWebGpu } from "./mod.ts";
 * const adapter = await startWebGpu({ allowSoftware: true });
 * adapter.description; // "llvmpipe (LLVM 15.0.6, 256 bits)"
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { padAnyRank } from "./_pad.ts";
import {
  type GuardableBackend,
  guardWebGpuBackend,
  tagWebGpuKernels,
  WebGpuError,
} from "./_guard.ts";

export { runningKernel, WebGpuError } from "./_guard.ts";

/** The adapter tfjs's WebGPU backend runs on. */
export interface WebGpuAdapter {
  /** The driver's description, e.g. "NVIDIA GeForce RTX 4090" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** Vendor as the driver reports it (a name, or a PCI id). */
  vendor: string;
  /** Architecture as the driver reports it (may be empty). */
  architecture: string;
  /** Whether it is a software adapter (`isFallbackAdapter`, or a known software rasteriser). */
  fallback: boolean;
  /** Limits that bound tensor sizes and kernel shapes. */
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
  };
}

/** Options of {@linkcode startWebGpu}. */
export interface StartWebGpuOptions {
  /** Accept a software (fallback) adapter such as llvmpipe (default false: refused). */
  allowSoftware?: boolean;
  /** Milliseconds to wait for the adapter, the device and the start-up check (default 30000). */
  timeoutMs?: number;
  /** Milliseconds a single tensor read may take (default 600000). */
  readTimeoutMs?: number;
}

/**
 * Adapter names of software rasterisers, which do not all set `isFallbackAdapter`.
 *
 * @example
 * ```ts
 * SOFTWARE_ADAPTER.test("llvmpipe (LLVM 15.0.6, 256 bits)"); // true
 * ```
 */
export const SOFTWARE_ADAPTER =
  /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|warp/i;

let adapterReport: WebGpuAdapter | undefined;
let loaded: Promise<void> | undefined;
let readTimeoutMs = 600_000;
let startTimeoutMs = 30_000;
/** Why the last backend factory call failed (tfjs only logs it). */
let factoryError: unknown;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WebGpuError(`webgpu backend: ${what} did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The `GPUAdapter` fields read here. */
interface AdapterFields {
  info?: {
    description?: string;
    vendor?: string;
    architecture?: string;
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
  features: Set<string>;
  requestDevice(descriptor: object): Promise<unknown>;
}

function describe(adapter: AdapterFields): WebGpuAdapter {
  const info = adapter.info ?? {};
  const l = adapter.limits;
  const description = info.description ||
    [info.vendor, info.architecture].filter(Boolean).join(" ") || "unnamed adapter";
  return {
    description,
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    fallback: (info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false) ||
      SOFTWARE_ADAPTER.test(description),
    limits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  };
}

/**
 * Imports `@tensorflow/tfjs-backend-webgpu`, registers the guarded `"webgpu"` backend and the
 * corrected `PadV2`. Idempotent; does not select the backend or touch the GPU.
 *
 * @example
 * ```ts
 * await loadWebGpu();
 * tf.findBackendFactory("webgpu") !== null; // true
 * ```
 */
export function loadWebGpu(): Promise<void> {
  return loaded ??= (async () => {
    const { WebGPUBackend } = await import("@tensorflow/tfjs-backend-webgpu");
    // The package registered "webgpu" with priority 3, which would make it tfjs's default.
    tf.removeBackend("webgpu");
    tf.registerBackend("webgpu", () =>
      createBackend().catch((e) => {
        factoryError = e;
        throw e;
      }), 0);
    const stock = tf.getKernel(tf.PadV2, "webgpu")!;
    tf.unregisterKernel(tf.PadV2, "webgpu");
    tf.registerKernel({ ...stock, kernelFunc: padAnyRank(stock.kernelFunc) });
    tagWebGpuKernels();
    async function createBackend() {
      const gpu = (navigator as { gpu?: { requestAdapter(o: object): Promise<unknown> } }).gpu;
      if (!gpu) throw new WebGpuError("webgpu backend: this runtime offers no navigator.gpu");
      const adapter = await withTimeout(
        gpu.requestAdapter({ powerPreference: "high-performance" }),
        startTimeoutMs,
        "navigator.gpu.requestAdapter()",
      ) as AdapterFields | null;
      if (!adapter) throw new WebGpuError("webgpu backend: WebGPU offers no adapter");
      const l = adapter.limits;
      // What tfjs's own factory asks for: the adapter's full limits, timestamps when offered.
      const device = await withTimeout(
        adapter.requestDevice({
          requiredFeatures: adapter.features.has("timestamp-query") ? ["timestamp-query"] : [],
          requiredLimits: {
            maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
            maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
            maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
            maxBufferSize: l.maxBufferSize,
            maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
            maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
          },
        }),
        startTimeoutMs,
        "adapter.requestDevice()",
      );
      adapterReport = describe(adapter);
      const backend = new WebGPUBackend(device as never, adapter.info as never);
      guardWebGpuBackend(backend as unknown as GuardableBackend, { readTimeoutMs });
      return backend;
    }
  })();
}

/**
 * The adapter of the initialised `"webgpu"` backend, or `undefined` before {@linkcode startWebGpu}.
 *
 * @example
 * ```ts
 * webgpuAdapter()?.description; // "llvmpipe (LLVM 15.0.6, 256 bits)"
 * ```
 */
export function webgpuAdapter(): WebGpuAdapter | undefined {
  return adapterReport;
}

/**
 * Loads tfjs's WebGPU backend, selects it, and checks it with a small convolution whose result is
 * known; returns the adapter. Rejects with a {@linkcode WebGpuError} (no adapter, a refused
 * software adapter, a timeout, a wrong start-up result), in which case the previous backend stays
 * selected.
 *
 * @example
 * ```ts
 * const { description, fallback } = await startWebGpu({ allowSoftware: true });
 * ```
 */
export async function startWebGpu(options: StartWebGpuOptions = {}): Promise<WebGpuAdapter> {
  startTimeoutMs = options.timeoutMs ?? 30_000;
  readTimeoutMs = options.readTimeoutMs ?? 600_000;
  await loadWebGpu();
  const previous = tf.getBackend();
  try {
    factoryError = undefined;
    if (!(await withTimeout(tf.setBackend("webgpu"), startTimeoutMs + 1000, "starting"))) {
      // tfjs catches the factory's error (and logs it); report it here.
      throw factoryError instanceof WebGpuError ? factoryError : new WebGpuError(
        `webgpu backend: failed to initialise: ${
          factoryError instanceof Error ? factoryError.message : String(factoryError)
        }`,
      );
    }
    const adapter = adapterReport!;
    if (adapter.fallback && !options.allowSoftware) {
      throw new WebGpuError(
        `webgpu backend: ${adapter.description} is a software adapter (refused; pass ` +
          'allowSoftware, or ask for backend "webgpu" explicitly)',
      );
    }
    // 3×3 conv of ones over ones with 2 input channels: 18 in each of 2·2·2 outputs.
    const check = tf.tidy(() =>
      tf.conv2d(
        tf.ones([1, 4, 4, 2]) as tf.Tensor4D,
        tf.ones([3, 3, 2, 2]) as tf.Tensor4D,
        1,
        "valid",
      ).sum()
    );
    const [value] = await withTimeout(check.data(), startTimeoutMs, "the start-up check");
    check.dispose();
    if (value !== 144) {
      throw new WebGpuError(
        `webgpu backend: the start-up check (a 3×3 convolution) computed ${value} instead of 144`,
        "Conv2D",
      );
    }
    return adapter;
  } catch (e) {
    if (previous && previous !== "webgpu") await tf.setBackend(previous);
    throw e;
  }
}
