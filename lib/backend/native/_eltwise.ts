/**
 * LeakyReLU and its gradient by oneDNN's eltwise primitive (`relu` with a negative slope), and
 * `Add` of equal shapes or of a bias over the last axis by its binary primitive, on the tensors
 * where they lie in tfjs-wasm's heap: `y = x > 0 ? x : α·x` and `dx = x > 0 ? dy : α·dy`, one
 * vectorised, multi-threaded pass each, where the wasm kernels (`../wasm/_fast_kernels.ts`) take
 * two (`x · Step(x, α)`, `dy · Step(x, α)`). Each product and sum is the float32 operation the
 * wasm kernels compute, so the values are the same bits.
 *
 * The tensor is viewed as one long vector (`[1, size, 1, 1]`), so any shape runs; primitives are
 * kept per size. Other dtypes (and other broadcasts, for `Add`) run the kernel that was
 * registered before.
 *
 * @example
 * ```ts
 * import { leakyReluGradNative, nativeEltwiseKernels } from "./_eltwise.ts";
 * swapWasmKernels(nativeEltwiseKernels(dnnl, fallback), [[tf.LeakyRelu, leakyReluGradNative]]);
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { DNNL, type Dnnl, ExecArgs, type Plan } from "./_dnnl.ts";
import { address, guarded, type WasmBackend } from "./_heap.ts";

type Ptr = Deno.PointerObject;
type Info = tf.TensorInfo;

/**
 * The gradient kernel's name: inputs `dy` and `x`, attributes `alpha` and `times` (1 or 2,
 * default 1: the gradient of LeakyReLU applied that many times, each step's mask taken from `x`,
 * which is exact where `x` has the sign of LeakyReLU's input, as a LeakyReLU output with α ≥ 0
 * has), output `dx`.
 */
export const LEAKY_RELU_GRAD_KERNEL = "TconvLeakyReluGrad";

/** `sizeof(dnnl_eltwise_desc_t)` in oneDNN 2.x is 1,408 bytes; with room to spare. */
const DESC_SIZE = 4096;
/** oneDNN 2.x values (dnnl_types.h) that only these kernels use. */
const ELT = { relu: 0x1f, binaryAdd: 0x1fff0, argSrc1: 2 } as const;

/** Eltwise primitives by direction, size and slope, made on first use and kept. */
class EltwisePlans {
  readonly #dnnl: Dnnl;
  readonly #forwardInit;
  readonly #backwardInit;
  readonly #binaryInit;
  readonly #plans = new Map<string, Plan>();
  readonly #hints = new Map<string, Ptr>();

  constructor(dnnl: Dnnl) {
    this.#dnnl = dnnl;
    this.#forwardInit = dnnl.symbol("dnnl_eltwise_forward_desc_init");
    this.#backwardInit = dnnl.symbol("dnnl_eltwise_backward_desc_init");
    this.#binaryInit = dnnl.symbol("dnnl_binary_desc_init");
  }

  #forwardPd(size: number, alpha: number): Ptr {
    const key = `${size}|${alpha}`;
    let pd = this.#hints.get(key);
    if (pd === undefined) {
      const desc = new Uint8Array(DESC_SIZE);
      const data = this.#data(size);
      this.#dnnl.check(
        this.#forwardInit(
          desc,
          DNNL.forwardTraining,
          ELT.relu,
          data,
          alpha,
          0,
        ),
        "eltwise forward description",
      );
      this.#hints.set(key, pd = this.#dnnl.primitiveDesc(desc));
    }
    return pd;
  }

  #data(size: number): Uint8Array<ArrayBuffer> {
    return this.#dnnl.memoryDesc([1, size, 1, 1], DNNL.tagNhwc);
  }

  /** The plan of `direction` for `size` elements and slope `alpha`. */
  get(direction: "forward" | "backward", size: number, alpha: number): Plan {
    const key = `${direction}|${size}|${alpha}`;
    const plan = this.#plans.get(key);
    if (plan !== undefined) return plan;
    const d = this.#dnnl;
    const forward = this.#forwardPd(size, alpha);
    let pd = forward;
    let args: number[] = [DNNL.argSrc, DNNL.argDst];
    if (direction === "backward") {
      const desc = new Uint8Array(DESC_SIZE);
      const data = this.#data(size);
      d.check(
        this.#backwardInit(desc, ELT.relu, data, data, alpha, 0),
        "eltwise backward description",
      );
      pd = d.primitiveDesc(desc, forward);
      args = [DNNL.argSrc, DNNL.argDiffDst, DNNL.argDiffSrc];
    }
    const data = this.#data(size);
    return this.#keep(key, pd, args, args.map(() => data));
  }

  /**
   * The plan of `a + b` where `a` has `rows · channels` elements and `b` either as many
   * (`broadcast` false) or `channels`, added to every row.
   */
  add(rows: number, channels: number, broadcast: boolean): Plan {
    const key = `add|${rows}|${channels}|${broadcast}`;
    const plan = this.#plans.get(key);
    if (plan !== undefined) return plan;
    const d = this.#dnnl;
    const a = d.memoryDesc([rows, channels, 1, 1], DNNL.tagNhwc);
    const b = broadcast ? d.memoryDesc([1, channels, 1, 1], DNNL.tagNhwc) : a;
    const desc = new Uint8Array(DESC_SIZE);
    d.check(this.#binaryInit(desc, ELT.binaryAdd, a, b, a), "binary description");
    const pd = d.primitiveDesc(desc);
    return this.#keep(key, pd, [DNNL.argSrc, ELT.argSrc1, DNNL.argDst], [a, b, a]);
  }

  /** The plan of primitive description `pd` with a memory of `mds[i]` for `args[i]`, kept. */
  #keep(key: string, pd: Ptr, args: number[], mds: Uint8Array<ArrayBuffer>[]): Plan {
    const d = this.#dnnl;
    const memories = mds.map((md) => d.memory(Deno.UnsafePointer.of(md)!));
    const plan = {
      primitive: d.primitive(pd),
      args: new ExecArgs(args.map((arg, i) => [arg, memories[i]])),
      memories,
    };
    this.#plans.set(key, plan);
    return plan;
  }
}

/**
 * The `LeakyRelu` kernel and {@linkcode LEAKY_RELU_GRAD_KERNEL} over oneDNN `dnnl`; `fallback`
 * gives the kernel that `LeakyRelu` replaced, for what oneDNN does not take.
 *
 * @example
 * ```ts
 * const kernels = nativeEltwiseKernels(dnnl, (name) => swap.replaced(name)!.kernelFunc);
 * ```
 */
export function nativeEltwiseKernels(
  dnnl: Dnnl,
  fallback: (name: string) => tf.KernelFunc,
): [string, tf.KernelFunc][] {
  const plans = new EltwisePlans(dnnl);
  // Made now, so that a library without these primitives throws at install, not in a step.
  plans.get("forward", 8, 0.01);
  plans.get("backward", 8, 0.01);
  plans.add(2, 4, true);
  const run = (
    name: string,
    backend: WasmBackend,
    direction: "forward" | "backward",
    inputs: Info[],
    alpha: number,
  ): Info => {
    const x = inputs[0];
    const size = x.shape.reduce((a, b) => a * b, 1);
    const out = backend.makeOutput(x.shape, "float32");
    return guarded(
      backend,
      [out],
      () => `${name} on oneDNN failed for x [${x.shape.join(", ")}]`,
      () => {
        const plan = plans.get(direction, size, alpha);
        dnnl.run(plan, [...inputs, out].map((t) => address(backend, t)));
        return out;
      },
    );
  };
  return [
    [tf.LeakyRelu, (config) => {
      const { x } = config.inputs as { x: Info };
      const size = x.shape.reduce((a, b) => a * b, 1);
      if (x.dtype !== "float32" || size === 0) return fallback(tf.LeakyRelu)(config);
      const { alpha } = config.attrs as unknown as tf.LeakyReluAttrs;
      return run(tf.LeakyRelu, config.backend as unknown as WasmBackend, "forward", [x], alpha);
    }],
    [tf.Add, (config) => {
      const { a, b } = config.inputs as { a: Info; b: Info };
      const backend = config.backend as unknown as WasmBackend;
      const size = a.shape.reduce((p, q) => p * q, 1);
      const channels = b.shape.reduce((p, q) => p * q, 1);
      const same = a.shape.join() === b.shape.join();
      // A bias: b is [C] (or [1, …, 1, C]) against a's last dimension.
      const bias = !same && a.shape.length > 1 && b.shape.length <= a.shape.length &&
        channels === a.shape[a.shape.length - 1] && b.shape[b.shape.length - 1] === channels;
      if (a.dtype !== "float32" || b.dtype !== "float32" || size === 0 || !(same || bias)) {
        return fallback(tf.Add)(config);
      }
      const out = backend.makeOutput(a.shape, "float32");
      const label = () =>
        `Add on oneDNN failed for a [${a.shape.join(", ")}], b [${b.shape.join(", ")}]`;
      return guarded(backend, [out], label, () => {
        const plan = same ? plans.add(1, size, false) : plans.add(size / channels, channels, true);
        dnnl.run(plan, [a, b, out].map((t) => address(backend, t)));
        return out;
      });
    }],
    [tf.Relu, (config) => {
      // oneDNN's relu with slope 0 is max(x, 0), as tfjs-wasm's (+0 for negative x).
      const { x } = config.inputs as { x: Info };
      const size = x.shape.reduce((a, b) => a * b, 1);
      if (x.dtype !== "float32" || size === 0) return fallback(tf.Relu)(config);
      return run(tf.Relu, config.backend as unknown as WasmBackend, "forward", [x], 0);
    }],
    [tf.Cast, (config) => {
      // A cast to the dtype a tensor has (tf.avgPool casts its result so) shares its data, as
      // Identity does here, instead of copying it.
      const { x } = config.inputs as { x: Info };
      const { dtype } = config.attrs as unknown as tf.CastAttrs;
      if (dtype !== x.dtype || x.dtype !== "float32") return fallback(tf.Cast)(config);
      (config.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
    }],
    [LEAKY_RELU_GRAD_KERNEL, (config) => {
      const { dy, x } = config.inputs as { dy: Info; x: Info };
      if (dy.shape.join() !== x.shape.join() || dy.dtype !== "float32") {
        throw new TypeError(
          `${LEAKY_RELU_GRAD_KERNEL}: dy must be float32 of x's shape [${x.shape.join(", ")}], ` +
            `got ${dy.dtype} [${dy.shape.join(", ")}]`,
        );
      }
      const { alpha, times = 1 } = config.attrs as unknown as { alpha: number; times?: number };
      if (times !== 1 && times !== 2) {
        throw new RangeError(`${LEAKY_RELU_GRAD_KERNEL}: times must be 1 or 2, got ${times}`);
      }
      const backend = config.backend as unknown as WasmBackend;
      const dx = run(LEAKY_RELU_GRAD_KERNEL, backend, "backward", [x, dy], alpha);
      if (times === 2) {
        // The gradient of the second application, in place (oneDNN's eltwise backward takes
        // diff_dst as diff_src): the mask is x's again, as it is for LeakyReLU(LeakyReLU(z)).
        const size = x.shape.reduce((a, b) => a * b, 1);
        guarded(
          backend,
          [dx],
          () => `${LEAKY_RELU_GRAD_KERNEL} (times 2) on oneDNN failed`,
          () =>
            dnnl.run(
              plans.get("backward", size, alpha),
              [x, dx, dx].map((t) => address(backend, t)),
            ),
        );
      }
      return dx;
    }],
  ];
}

/**
 * The `Relu` gradient, `dy` where `x > 0` and `0 · dy` elsewhere (tfjs's `dy · Step(x)`), by
 * {@linkcode LEAKY_RELU_GRAD_KERNEL} with slope 0 on the wasm backend for float32 non-empty
 * tensors; elsewhere the gradient it replaces. Where `x` is NaN it gives `0 · dy`, not NaN.
 *
 * @example
 * ```ts
 * tf.registerGradient(reluGradNative(tf.getGradient(tf.Relu)!));
 * ```
 */
export function reluGradNative(original: tf.GradConfig): tf.GradConfig {
  const leaky = leakyReluGradNative(original);
  return {
    kernelName: tf.Relu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => leaky.gradFunc(dy, saved, { ...attrs, alpha: 0 }),
  };
}

/**
 * The `LeakyRelu` gradient by {@linkcode LEAKY_RELU_GRAD_KERNEL} on the wasm backend for float32
 * non-empty tensors; elsewhere the gradient it replaces.
 *
 * @example
 * ```ts
 * tf.registerGradient(leakyReluGradNative(tf.getGradient(tf.LeakyRelu)!));
 * ```
 */
export function leakyReluGradNative(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.LeakyRelu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const d = dy as tf.Tensor;
      if (
        tf.getBackend() !== "wasm" || x.dtype !== "float32" || x.size === 0 ||
        tf.getKernel(LEAKY_RELU_GRAD_KERNEL, "wasm") === undefined
      ) {
        return original.gradFunc(dy, saved, attrs);
      }
      const { alpha } = attrs as unknown as tf.LeakyReluAttrs;
      return {
        x: () =>
          tf.engine().runKernel(LEAKY_RELU_GRAD_KERNEL, { dy: d, x }, { alpha }) as tf.Tensor,
      };
    },
  };
}
