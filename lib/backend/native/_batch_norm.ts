/**
 * Batch normalisation of NHWC tensors on tfjs-wasm's heap by oneDNN's batch normalization
 * primitive: training forward (batch mean and biased variance out), inference forward (with given
 * statistics) and backward (input, scale and shift gradients), with separate scale and shift
 * (`γ`, `β`). Three kernels for tfjs's registry, installed with the convolutions (`./mod.ts`) and
 * called by {@linkcode ./batch_norm.ts}; primitives are made once per shape and kept.
 *
 * The C functions that describe a batch normalization are bound here, from the library the
 * convolutions opened (`Dnnl.path`: the same handle), so that `_dnnl.ts` stays the convolutions'.
 *
 * @example
 * ```ts
 * import { nativeBatchNormKernels } from "./_batch_norm.ts";
 * swapWasmKernels(nativeBatchNormKernels(openDnnl()), []);
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { DNNL, type Dnnl, ExecArgs } from "./_dnnl.ts";
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

const SYMBOLS = {
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
} as const;

/** The part of tfjs-wasm's `BackendWasm` these kernels use. */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  getMemoryOffset(dataId: object): number;
  disposeData(dataId: object): boolean;
}

type Kind = "training" | "inference" | "backward";

/** One primitive and its memory objects, in the order of {@linkcode ARGS}. */
interface Plan {
  primitive: Ptr;
  args: ExecArgs;
  memories: Ptr[];
  owned: { kind: "primitive" | "pd" | "memory"; handle: Ptr }[];
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
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
  readonly #plans = new Map<string, Plan>();
  /** Forward training primitive descriptions, the hints of the backward ones. */
  readonly #forward = new Map<string, Ptr>();

  constructor(dnnl: Dnnl) {
    this.#dnnl = dnnl;
    this.#lib = Deno.dlopen(dnnl.path, SYMBOLS).symbols;
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
    const lib = this.#lib;
    const status = kind === "backward"
      ? lib.dnnl_batch_normalization_backward_desc_init(desc, BN.backward, data, data, eps, flags)
      : lib.dnnl_batch_normalization_forward_desc_init(
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
    const owned: Plan["owned"] = [];
    const own = <T extends Ptr>(k: "primitive" | "pd" | "memory", handle: T): T => {
      owned.push({ kind: k, handle });
      return handle;
    };
    try {
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
      const memories = ARGS[kind].map((arg) => own("memory", d.memory(this.#argMd(pd, arg))));
      return {
        primitive: own("primitive", d.primitive(pd)),
        args: new ExecArgs(ARGS[kind].map((arg, i) => [arg, memories[i]])),
        memories,
        owned,
      };
    } catch (e) {
      for (const { kind, handle } of owned.reverse()) d.destroy(kind, handle);
      throw e;
    }
  }

  /** The memory description the primitive takes for execution argument `arg`. */
  #argMd(pd: Ptr, arg: number): Ptr {
    const md = this.#lib.dnnl_primitive_desc_query_md(pd, BN.queryExecArgMd, arg);
    if (md === null) throw new Error(`oneDNN has no memory description for argument ${arg}`);
    return md;
  }

  /** Runs `plan` on the wasm-heap buffers `buffers`, in the order of {@linkcode ARGS}. */
  run(plan: Plan, buffers: Ptr[]): void {
    plan.memories.forEach((mem, i) => this.#dnnl.setHandle(mem, buffers[i]));
    this.#dnnl.execute(plan.primitive, plan.args);
  }
}

/** Heap address of a wasm tensor (taken after any allocation, which may move the heap). */
function address(backend: WasmBackend, info: Info): Ptr {
  const base = Deno.UnsafePointer.of(backend.wasm.HEAPU8);
  return Deno.UnsafePointer.offset(base!, backend.getMemoryOffset(info.dataId))!;
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
    try {
      const plan = plans.get(kind, x.shape, eps);
      const at = (t: Info) => address(backend, t);
      plans.run(plan, [...inputNames.map((k) => at(inputs[k])), ...made.map(at)]);
      return made;
    } catch (e) {
      for (const out of made) backend.disposeData(out.dataId);
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`${name} on oneDNN failed for x [${x.shape.join(", ")}]: ${why}`, {
        cause: e,
      });
    }
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
