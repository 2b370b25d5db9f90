/**
 * Swapping tfjs kernels of the `"wasm"` backend for this project's, and composing kernels from
 * other kernels. The wasm room (`./wasm/mod.ts`: convolution gradients, data-movement kernels)
 * and the native room (`./native/mod.ts`: oneDNN convolutions) install their kernels with
 * {@linkcode swapWasmKernels}, which keeps the kernels it replaced so that an install can fall
 * back to them and be undone ({@linkcode KernelSwap}); {@linkcode initialisedWasmBackend} finds
 * the running wasm backend without starting it.
 *
 * {@linkcode KernelScope} runs registered kernels directly on `TensorInfo`s, the way a kernel
 * implementation composes other kernels, and disposes every intermediate it made. Calling kernel
 * functions through the registry (rather than tf ops) keeps the engine out of the way: nothing is
 * recorded on the gradient tape and no `Tensor` objects are created, so a kernel built from these
 * calls leaves exactly one new data id behind, its output.
 *
 * @example
 * ```ts
 * import { tf } from "./tf.ts";
 * import { KernelScope, swapWasmKernels } from "./kernel_swap.ts";
 * const negate: tf.KernelFunc = ({ inputs, backend }) => {
 *   const scope = new KernelScope(backend, "wasm");
 *   return scope.finish(() =>
 *     scope.compute(inputs.x.shape, [inputs.x], (out, [x]) => {
 *       for (let i = 0; i < x.length; i++) out[i] = -x[i];
 *     })
 *   );
 * };
 * const swap = swapWasmKernels([["Neg", negate]], []);
 * swap.restore(); // tfjs-wasm's Neg again
 * ```
 * @module
 */
import { tf } from "./tf.ts";

type Info = tf.TensorInfo;

/**
 * The `"wasm"` backend instance when it has been initialised, without initialising it
 * (`tf.findBackend("wasm")` would initialise it).
 *
 * @example
 * ```ts
 * initialisedWasmBackend() === undefined; // true until useBackend("wasm")
 * ```
 */
export function initialisedWasmBackend(): tf.KernelBackend | undefined {
  return tf.engine().registry["wasm"];
}

/** The part of tfjs-wasm's `BackendWasm` that reads and writes tensors on its heap. */
export interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(info: Info): tf.TypedArray;
}

/** Kernels and gradients put in place by {@linkcode swapWasmKernels}, and how to undo it. */
export interface KernelSwap {
  /** The tfjs-wasm kernel that `name` replaced, if there was one. */
  replaced(name: string): tf.KernelConfig | undefined;
  /**
   * Puts every replaced kernel and gradient back; where a later swap still in force replaced the
   * same kernel, that swap keeps its kernel and will put back what this one replaced.
   */
  restore(): void;
}

/**
 * Registers `kernels` for the `"wasm"` backend in place of tfjs-wasm's, and for each of `grads`
 * the gradient it builds from the registered one. Works before and after the backend is
 * initialised: the replaced kernels' set-up (tfjs-wasm binds its C functions there) still runs,
 * so the replacements can fall back to them.
 *
 * @example
 * ```ts
 * const swap = swapWasmKernels([["Slice", sliceFast]], []);
 * swap.restore();
 * ```
 */
export function swapWasmKernels(
  kernels: readonly (readonly [string, tf.KernelFunc])[],
  grads: readonly (readonly [string, (original: tf.GradConfig) => tf.GradConfig])[],
): KernelSwap {
  const backend = initialisedWasmBackend();
  const replaced = new Map<string, tf.KernelConfig>();
  for (const [name, kernelFunc] of kernels) {
    const config = tf.getKernel(name, "wasm");
    if (config !== undefined) {
      replaced.set(name, config);
      tf.unregisterKernel(name, "wasm");
    }
    // tfjs only runs set-up functions of registered kernels when a backend is selected.
    const setupFunc = config?.setupFunc;
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc, setupFunc });
    if (backend !== undefined) setupFunc?.(backend);
  }
  const originalGrads = new Map(grads.map(([name]) => [name, tf.getGradient(name)]));
  const builders = new Map(grads);
  for (const [name, build] of grads) tf.registerGradient(build(originalGrads.get(name)!));
  const layer: _SwapLayer = {
    kernels: new Set(kernels.map(([n]) => n)),
    replaced,
    originalGrads,
    builders,
  };
  _layers.push(layer);
  return {
    replaced: (name) => replaced.get(name),
    restore() {
      const at = _layers.indexOf(layer);
      if (at < 0) return; // restored already
      _layers.splice(at, 1);
      // A swap installed later over the same name keeps its kernel in the registry; it falls
      // back to (and on its own restore puts back) what this swap had replaced.
      const above = (has: (l: _SwapLayer) => boolean) => _layers.slice(at).find(has);
      const backend = initialisedWasmBackend();
      for (const name of layer.kernels) {
        const config = replaced.get(name);
        const upper = above((l) => l.kernels.has(name));
        if (upper !== undefined) {
          if (config === undefined) upper.replaced.delete(name);
          else upper.replaced.set(name, config);
          continue;
        }
        tf.unregisterKernel(name, "wasm");
        if (config === undefined) continue;
        tf.registerKernel(config);
        if (backend !== undefined) config.setupFunc?.(backend);
      }
      for (const [name, original] of originalGrads) {
        const upper = above((l) => l.builders.has(name));
        if (upper === undefined) {
          tf.registerGradient(original);
          continue;
        }
        // The later swap's gradient was built on this one's: rebuild it on what lay beneath.
        upper.originalGrads.set(name, original);
        tf.registerGradient(upper.builders.get(name)!(original));
      }
    },
  };
}

/** What one {@linkcode swapWasmKernels} call put in place, for swaps undone out of order. */
interface _SwapLayer {
  kernels: Set<string>;
  replaced: Map<string, tf.KernelConfig>;
  originalGrads: Map<string, tf.GradConfig>;
  builders: Map<string, (original: tf.GradConfig) => tf.GradConfig>;
}
/** The swaps in force, oldest first. */
const _layers: _SwapLayer[] = [];

/** Kernel calls on one backend, with the intermediates disposed by {@linkcode finish}. */
export class KernelScope {
  readonly #backend: tf.KernelBackend;
  readonly #backendName: string;
  #made: Info[] = [];

  /**
   * @example
   * ```ts
   * const scope = new KernelScope(tf.backend(), "wasm");
   * ```
   */
  constructor(backend: tf.KernelBackend, backendName: string) {
    this.#backend = backend;
    this.#backendName = backendName;
  }

  /**
   * Runs a registered kernel; its output is disposed by {@linkcode finish} unless returned.
   *
   * @example
   * ```ts
   * const y = scope.run("Neg", { x });
   * ```
   */
  run(kernelName: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): Info {
    const kernel = tf.getKernel(kernelName, this.#backendName);
    if (kernel == null) {
      throw new Error(
        `kernel '${kernelName}' is not registered for backend '${this.#backendName}'`,
      );
    }
    const out = kernel.kernelFunc({ inputs, backend: this.#backend, attrs });
    if (Array.isArray(out)) throw new Error(`kernel '${kernelName}' returned several outputs`);
    this.#made.push(out);
    return out;
  }

  /**
   * Runs `body` and disposes every kernel output made on the way except the one returned. The
   * intermediates are disposed when `body` throws, too.
   *
   * @example
   * ```ts
   * const out = scope.finish(() => scope.reshape(scope.transpose(x, [1, 0]), [-1]));
   * ```
   */
  finish(body: () => Info): Info {
    let out: Info | undefined;
    try {
      out = body();
      return out;
    } finally {
      for (const info of this.#made) {
        if (info !== out) this.#backend.disposeData(info.dataId);
      }
      this.#made = [];
    }
  }

  /**
   * `tf.transpose`.
   *
   * @example
   * ```ts
   * scope.transpose(x, [0, 2, 3, 1]);
   * ```
   */
  transpose(x: Info, perm: number[]): Info {
    return perm.every((p, i) => p === i) ? x : this.run("Transpose", { x }, { perm });
  }

  /**
   * A new float32 tensor of `shape` filled by `body` in JavaScript, directly on the wasm heap:
   * `body` gets the output's values and those of `sources`, as `Float32Array` views. The output
   * is not zeroed; `body` must write every element.
   *
   * @example
   * ```ts
   * const negated = scope.compute(x.shape, [x], (out, [v]) => {
   *   for (let i = 0; i < v.length; i++) out[i] = -v[i];
   * });
   * ```
   */
  compute(
    shape: number[],
    sources: Info[],
    body: (out: Float32Array, sources: Float32Array[]) => void,
  ): Info {
    const heap = this.#backend as unknown as WasmHeap;
    if (typeof heap.makeOutput !== "function" || typeof heap.typedArrayFromHeap !== "function") {
      throw new Error("KernelScope.compute needs tfjs's wasm backend");
    }
    for (const source of sources) {
      if (source.dtype !== "float32") throw new TypeError(`expected float32, got ${source.dtype}`);
    }
    const out = heap.makeOutput(shape, "float32");
    this.#made.push(out);
    // Views taken after the allocation, which may grow (and so detach) the heap.
    body(
      heap.typedArrayFromHeap(out) as Float32Array,
      sources.map((source) => heap.typedArrayFromHeap(source) as Float32Array),
    );
    return out;
  }

  /**
   * Transposes `x`, viewed as `[a, b, c]`, to `[c, b, a]` (the outer and inner dimensions
   * exchanged) and gives the result `shape`. A JavaScript loop over the wasm heap: several times
   * faster than tfjs-wasm's `Transpose` for this pattern, where every element moves alone.
   *
   * @example
   * ```ts
   * scope.swapOuterInner(x, [8, 1024, 128], [128, 32, 32, 8]); // [n, h·w, c] → [c, h, w, n]
   * ```
   */
  swapOuterInner(x: Info, [a, b, c]: [number, number, number], shape: number[]): Info {
    return this.compute(shape, [x], (dst, [src]) => {
      const bc = b * c;
      for (let j = 0; j < b; j++) {
        for (let k = 0; k < c; k++) {
          const o = (k * b + j) * a;
          for (let i = 0, at = j * c + k; i < a; i++, at += bc) dst[o + i] = src[at];
        }
      }
    });
  }

  /**
   * `tf.reshape` (shares the data of `x`).
   *
   * @example
   * ```ts
   * scope.reshape(x, [2, -1]);
   * ```
   */
  reshape(x: Info, shape: number[]): Info {
    return this.run("Reshape", { x }, { shape });
  }

  /**
   * Zero padding, `[before, after]` per dimension (non-negative).
   *
   * @example
   * ```ts
   * scope.pad(x, [[0, 0], [1, 1]]);
   * ```
   */
  pad(x: Info, paddings: [number, number][]): Info {
    if (paddings.every(([a, b]) => a === 0 && b === 0)) return x;
    return this.run("PadV2", { x }, { paddings, constantValue: 0 });
  }

  /**
   * `tf.reverse` along `dims`.
   *
   * @example
   * ```ts
   * scope.reverse(filter, [0, 1]);
   * ```
   */
  reverse(x: Info, dims: number[]): Info {
    return this.run("Reverse", { x }, { dims });
  }

  /**
   * `tf.slice`; returns `x` itself when the slice is the whole tensor.
   *
   * @example
   * ```ts
   * scope.slice(x, [0, 1, 1, 0], [2, 4, 4, 3]);
   * ```
   */
  slice(x: Info, begin: number[], size: number[]): Info {
    if (begin.every((b) => b === 0) && size.every((s, i) => s === x.shape[i])) return x;
    return this.run("Slice", { x }, { begin, size });
  }

  /**
   * `Conv2D` kernel, NHWC, with explicit non-negative padding `[[top, bottom], [left, right]]`.
   * Strides and dilations may both exceed 1 (the kernel allows it; the `tf.conv2d` op does not).
   *
   * @example
   * ```ts
   * scope.conv2d(x, filter, [1, 1], [[1, 1], [1, 1]], [1, 1]);
   * ```
   */
  conv2d(
    x: Info,
    filter: Info,
    strides: [number, number],
    [[top, bottom], [left, right]]: [[number, number], [number, number]],
    dilations: [number, number],
  ): Info {
    return this.run("Conv2D", { x, filter }, {
      strides,
      pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
      dataFormat: "NHWC",
      dilations,
    });
  }
}
