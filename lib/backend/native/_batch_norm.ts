/**
 * Batch normalisation of NHWC tensors on tfjs-wasm's heap by oneDNN's batch normalization
 * primitive: training forward (batch mean and biased variance out), inference forward (with given
 * statistics) and backward (input, scale and shift gradients), with separate scale and shift
 * (`γ`, `β`). Three kernels for tfjs's registry, installed with the convolutions (`./mod.ts`) and
 * called by {@linkcode ./batch_norm.ts}; primitives are made once per shape and kept.
 *
 * The C functions that describe a batch normalization are `Dnnl.symbol`'s, bound on first use, so
 * that a library without them leaves out only these kernels.
 *
 * @example
 * ```ts
 * import { nativeBatchNormKernels } from "./_batch_norm.ts";
 * swapWasmKernels(nativeBatchNormKernels(openDnnl()), []);
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { DNNL, type Dnnl, ExecArgs, type Owned, type Plan as DnnlPlan } from "./_dnnl.ts";
import { address, guarded, type WasmBackend } from "./_heap.ts";
import {
  BATCH_NORM_GRAD_KERNEL,
  BATCH_NORM_INFERENCE_KERNEL,
  BATCH_NORM_TRAINING_KERNEL,
} from "./batch_norm.ts";

type Ptr = Deno.PointerObject;
type Info = tf.TensorInfo;

/** `sizeof(dnnl_batch_normalization_desc_t)` in oneDNN 2.x is 3,496 bytes; with room to spare. */
const DESC_SIZE = 4096;

/** oneDNN 2.x values (dnnl_types.h) that only batch normalization uses. */
const BN = {
  forwardInference: 96,
  backward: 128,
  useGlobalStats: 0x1,
  useScale: 0x8,
  useShift: 0x10,
  argMean: 49,
  argVariance: 50,
  argScale: 51,
  argShift: 52,
  argDiffScale: 255,
  argDiffShift: 256,
  queryExecArgMd: 255,
} as const;

type Kind = "training" | "inference" | "backward";

/** One primitive and its memory objects, in the order of {@linkcode ARGS}. */
interface Plan extends DnnlPlan {
  owned: Owned[];
}

/** The execution arguments of each kind, in the order the kernels pass buffers. */
const ARGS: Record<Kind, number[]> = {
  // x, γ, β → y, mean, variance
  training: [DNNL.argSrc, BN.argScale, BN.argShift, DNNL.argDst, BN.argMean, BN.argVariance],
  // x, γ, β, mean, variance → y
  inference: [DNNL.argSrc, BN.argScale, BN.argShift, BN.argMean, BN.argVariance, DNNL.argDst],
  // x, mean, variance, γ, dy → dx, dγ, dβ
  backward: [
    DNNL.argSrc,
    BN.argMean,
    BN.argVariance,
    BN.argScale,
    BN.argShift,
    DNNL.argDiffDst,
    DNNL.argDiffSrc,
    BN.argDiffScale,
    BN.argDiffShift,
  ],
};

/** Batch normalization primitives by kind, shape and epsilon, made on first use and kept. */
class BatchNormPlans {
  readonly #dnnl: Dnnl;
  readonly #forwardInit;
  readonly #backwardInit;
  readonly #plans = new Map<string, Plan>();
  /** Forward training primitive descriptions, the hints of the backward ones. */
  readonly #forward = new Map<string, Ptr>();

  constructor(dnnl: Dnnl) {
    this.#dnnl = dnnl;
    this.#forwardInit = dnnl.symbol("dnnl_batch_normalization_forward_desc_init");
    this.#backwardInit = dnnl.symbol("dnnl_batch_normalization_backward_desc_init");
  }

  get(kind: Kind, shape: number[], eps: number): Plan {
    const key = `${kind}|${shape.join(",")}|${eps}`;
    let plan = this.#plans.get(key);
    if (plan === undefined) this.#plans.set(key, plan = this.#make(kind, shape, eps));
    return plan;
  }

  #desc(kind: Kind, data: Uint8Array<ArrayBuffer>, eps: number): Uint8Array<ArrayBuffer> {
    const desc = new Uint8Array(DESC_SIZE);
    const flags = BN.useScale | BN.useShift | (kind === "inference" ? BN.useGlobalStats : 0);
    const status = kind === "backward"
      ? this.#backwardInit(desc, BN.backward, data, data, eps, flags)
      : this.#forwardInit(
        desc,
        kind === "training" ? DNNL.forwardTraining : BN.forwardInference,
        data,
        eps,
        flags,
      );
    this.#dnnl.check(status, `batch normalization ${kind} description`);
    return desc;
  }

  #make(kind: Kind, [n, h, w, c]: number[], eps: number): Plan {
    const d = this.#dnnl;
    return d.owning((own, owned) => {
      const data = d.memoryDesc([n, c, h, w], DNNL.tagNhwc);
      let hint: Ptr | null = null;
      if (kind === "backward") {
        const fkey = `${n},${h},${w},${c}|${eps}`;
        hint = this.#forward.get(fkey) ?? null;
        if (hint === null) {
          // Kept for later backward plans of this shape (never freed: one per shape).
          hint = d.primitiveDesc(this.#desc("training", data, eps));
          this.#forward.set(fkey, hint);
        }
      }
      const pd = own("pd", d.primitiveDesc(this.#desc(kind, data, eps), hint));
      // The memory description the primitive takes for each execution argument.
      const memories = ARGS[kind].map((arg) =>
        own("memory", d.memory(d.queryMd(pd, BN.queryExecArgMd, arg, `argument ${arg}`)))
      );
      return {
        primitive: own("primitive", d.primitive(pd)),
        args: new ExecArgs(ARGS[kind].map((arg, i) => [arg, memories[i]])),
        memories,
        owned,
      };
    });
  }
}

/**
 * The three batch normalization kernels over oneDNN `dnnl` (see ./batch_norm.ts for their
 * inputs, outputs and attributes).
 *
 * @example
 * ```ts
 * for (const [name, kernelFunc] of nativeBatchNormKernels(dnnl)) { ... }
 * ```
 */
export function nativeBatchNormKernels(dnnl: Dnnl): [string, tf.KernelFunc][] {
  const plans = new BatchNormPlans(dnnl);
  // Made now on a small shape, so that a library without these primitives (or flags) throws here,
  // where the install leaves the kernels out, rather than in the middle of a training step.
  for (const kind of ["training", "inference", "backward"] as const) {
    plans.get(kind, [1, 2, 2, 3], 1e-5);
  }
  const kernel = (
    name: string,
    kind: Kind,
    inputNames: string[],
    outputs: (x: Info) => number[][],
  ): [string, tf.KernelFunc] => [name, (config) => {
    const backend = config.backend as unknown as WasmBackend;
    const inputs = config.inputs as Record<string, Info>;
    const x = inputs.x;
    if (x?.shape.length !== 4) {
      throw new TypeError(`${name}: x must be NHWC (rank 4), got [${x?.shape.join(", ")}]`);
    }
    const eps = (config.attrs as { eps: number }).eps;
    const c = x.shape[3];
    for (const key of inputNames) {
      const t = inputs[key];
      const want = key === "x" || key === "dy" ? x.shape : [c];
      if (t === undefined || t.dtype !== "float32" || t.shape.join() !== want.join()) {
        throw new TypeError(
          `${name}: ${key} must be float32 of shape [${want.join(", ")}] (x NHWC), got ` +
            (t === undefined ? "nothing" : `${t.dtype} [${t.shape.join(", ")}]`),
        );
      }
    }
    const made = outputs(x).map((shape) => backend.makeOutput(shape, "float32"));
    return guarded(
      backend,
      made,
      () => `${name} on oneDNN failed for x [${x.shape.join(", ")}]`,
      () => {
        const plan = plans.get(kind, x.shape, eps);
        const at = (t: Info) => address(backend, t);
        dnnl.run(plan, [...inputNames.map((k) => at(inputs[k])), ...made.map(at)]);
        return made;
      },
    );
  }];
  return [
    kernel(
      BATCH_NORM_TRAINING_KERNEL,
      "training",
      ["x", "scale", "offset"],
      (x) => [x.shape, [x.shape[3]], [x.shape[3]]],
    ),
    kernel(
      BATCH_NORM_INFERENCE_KERNEL,
      "inference",
      ["x", "scale", "offset", "mean", "variance"],
      (x) => [x.shape],
    ),
    kernel(
      BATCH_NORM_GRAD_KERNEL,
      "backward",
      ["x", "mean", "variance", "scale", "offset", "dy"],
      (x) => [x.shape, [x.shape[3]], [x.shape[3]]],
    ),
  ];
}
