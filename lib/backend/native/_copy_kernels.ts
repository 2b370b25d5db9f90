/**
 * `Concat`, `SplitV` and `Slice` for tfjs's wasm backend as oneDNN copies between views of the
 * wasm heap. A dense block's concatenations move 32-channel runs (128 bytes) per pixel: the
 * JavaScript kernels (`../wasm/_fast_kernels.ts`) copy them element by element, oneDNN copies them
 * with vector moves on its OpenMP threads, several times faster. Copies are exact: oneDNN's
 * concatenation and its reorders from float32 to float32 without scales move the bits.
 *
 * A concatenation along `axis` views the output as `[outer, block]` and each input as a dense
 * `[outer, run]` and runs oneDNN's concatenation primitive, which writes the output row by row. A
 * split is one reorder per output from a strided view of the input (`[outer, run]` with row
 * stride `block`); a slice is one reorder from the input viewed with its own strides from the
 * slice's first element. Dimensions are merged where both views are contiguous across them, so
 * that a channel split of NHWC tensors is a 2-D copy. Primitives are made once per geometry and
 * kept (see {@linkcode CopyPlans}).
 *
 * What these kernels do not take (other dtypes, fewer than {@linkcode NATIVE_COPY_MIN_ELEMENTS}
 * elements, where the FFI call costs more than the copy) runs the kernel registered before.
 *
 * @example
 * ```ts
 * import { CopyPlans, nativeCopyKernels } from "./_copy_kernels.ts";
 * const kernels = nativeCopyKernels(new CopyPlans(openDnnl()), (name) => replacedKernel(name));
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import {
  dimsOf,
  DNNL,
  type Dnnl,
  ExecArgs,
  MD_SIZE,
  type Owned,
  type Plan as DnnlPlan,
  PlanCache,
} from "./_dnnl.ts";
import { address, guarded, type WasmBackend } from "./_heap.ts";

type Info = tf.TensorInfo;
type Ptr = Deno.PointerObject;

/** The kernels' names, in tfjs's registry. */
export const NATIVE_COPY_KERNELS = [tf.Concat, tf.SplitV, tf.Slice] as const;

/**
 * Outputs smaller than this (elements) are copied by the kernel registered before: below it, the
 * FFI calls and oneDNN's dispatch take longer than a JavaScript copy.
 */
export const NATIVE_COPY_MIN_ELEMENTS = 16384;

/** `DNNL_ARG_MULTIPLE_SRC`: the first input of a concatenation (the others follow). */
const ARG_MULTIPLE_SRC = 1024;

/**
 * One copy geometry's reorder (one source) or concatenation (several), made once: its memories
 * are the sources', then the destination's.
 */
interface Plan extends DnnlPlan {
  owned: Owned[];
}

/** A copy between two views: the dimensions and each side's strides, in elements. */
export interface CopyGeometry {
  dims: number[];
  srcStrides: number[];
  dstStrides: number[];
}

/**
 * oneDNN reorders per copy geometry, made on first use and kept; the oldest are freed beyond
 * {@linkcode CopyPlans.limit}.
 */
export class CopyPlans {
  readonly dnnl: Dnnl;
  /** Plans kept at most. */
  readonly limit: number;
  readonly #plans: PlanCache<Plan>;
  readonly #byStrides;
  readonly #concatDesc;

  /**
   * Binds the C functions copies need beyond the convolutions' (`Dnnl.symbol`).
   *
   * @example
   * ```ts
   * const plans = new CopyPlans(openDnnl());
   * ```
   */
  constructor(dnnl: Dnnl, limit = 256) {
    this.dnnl = dnnl;
    this.limit = limit;
    this.#plans = new PlanCache(limit, (plan) => dnnl.destroyAll(plan.owned));
    this.#byStrides = dnnl.symbol("dnnl_memory_desc_init_by_strides");
    this.#concatDesc = dnnl.symbol("dnnl_concat_primitive_desc_create");
  }

  /** Number of plans held. */
  get size(): number {
    return this.#plans.size;
  }

  /**
   * Copies float32 elements from view `g.srcStrides` at `src` to view `g.dstStrides` at `dst`
   * (heap addresses of the views' first elements).
   */
  copy(g: CopyGeometry, src: Ptr, dst: Ptr): void {
    const plan = this.#plans.get(`${g.dims}|${g.srcStrides}|${g.dstStrides}`, () => this.#make(g));
    this.dnnl.run(plan, [src, dst]);
  }

  /**
   * Concatenates dense `[outer, runs[i]]` matrices at `srcs` along their second dimension into the
   * dense `[outer, Σ runs]` matrix at `dst`, in one call: oneDNN writes the output row by row,
   * where one reorder per input would sweep the whole output once per input.
   */
  concat(outer: number, runs: number[], srcs: Ptr[], dst: Ptr): void {
    const plan = this.#plans.get(`concat|${outer}|${runs}`, () => this.#makeConcat(outer, runs));
    this.dnnl.run(plan, [...srcs, dst]);
  }

  /** Frees every plan. */
  clear(): void {
    this.#plans.clear();
  }

  #strided(dims: number[], strides: number[]): Uint8Array<ArrayBuffer> {
    const md = new Uint8Array(MD_SIZE);
    this.dnnl.check(
      this.#byStrides(
        md,
        dims.length,
        dimsOf(dims),
        DNNL.f32,
        dimsOf(strides),
      ),
      `memory description of [${dims.join(", ")}] with strides [${strides.join(", ")}]`,
    );
    return md;
  }

  #make(g: CopyGeometry): Plan {
    const d = this.dnnl;
    return d.owning((own, owned) => {
      const srcMd = Deno.UnsafePointer.of(this.#strided(g.dims, g.srcStrides))!;
      const dstMd = Deno.UnsafePointer.of(this.#strided(g.dims, g.dstStrides))!;
      const pd = own("pd", d.reorderDesc(srcMd, dstMd));
      const src = own("memory", d.memory(srcMd));
      const dst = own("memory", d.memory(dstMd));
      return {
        primitive: own("primitive", d.primitive(pd)),
        args: new ExecArgs([[DNNL.argSrc, src], [DNNL.argDst, dst]]),
        memories: [src, dst],
        owned,
      };
    });
  }

  #makeConcat(outer: number, runs: number[]): Plan {
    const d = this.dnnl;
    return d.owning((own, owned) => {
      const block = runs.reduce((a, b) => a + b, 0);
      // The inputs' descriptions, back to back: the C function takes an array of them.
      const srcMds = new Uint8Array(MD_SIZE * runs.length);
      runs.forEach((run, i) => srcMds.set(this.#strided([outer, run], [run, 1]), i * MD_SIZE));
      const dstMd = this.#strided([outer, block], [block, 1]);
      const out = new BigUint64Array(1);
      d.check(
        this.#concatDesc(
          new Uint8Array(out.buffer),
          dstMd,
          runs.length,
          1,
          srcMds,
          null,
          d.engine,
        ),
        `concatenation description of [${outer}, ${runs.join(" + ")}]`,
      );
      const pd = own("pd", Deno.UnsafePointer.create(out[0])!);
      const srcs = runs.map((_, i) =>
        own("memory", d.memory(Deno.UnsafePointer.of(srcMds.subarray(i * MD_SIZE))!))
      );
      const dst = own("memory", d.memory(Deno.UnsafePointer.of(dstMd)!));
      return {
        primitive: own("primitive", d.primitive(pd)),
        args: new ExecArgs([
          ...srcs.map((mem, i): [number, Ptr] => [ARG_MULTIPLE_SRC + i, mem]),
          [DNNL.argDst, dst],
        ]),
        memories: [...srcs, dst],
        owned,
      };
    });
  }
}

/**
 * `dims` with its two views simplified: dimensions of size 1 dropped, and neighbours merged where
 * both views step across them as one (the outer stride is the inner stride times the inner
 * size). The copy is the same; oneDNN gets fewer, longer dimensions.
 *
 * @example
 * ```ts
 * const dstStrides = [2560, 640, 160, 1];
 * mergeDims({ dims: [2, 4, 4, 32], srcStrides: [512, 128, 32, 1], dstStrides });
 * // { dims: [32, 32], srcStrides: [32, 1], dstStrides: [160, 1] }
 * ```
 */
export function mergeDims(g: CopyGeometry): CopyGeometry {
  const dims: number[] = [], src: number[] = [], dst: number[] = [];
  g.dims.forEach((size, i) => {
    if (size === 1) return;
    const last = dims.length - 1;
    if (
      last >= 0 && src[last] === size * g.srcStrides[i] && dst[last] === size * g.dstStrides[i]
    ) {
      dims[last] *= size;
      src[last] = g.srcStrides[i];
      dst[last] = g.dstStrides[i];
      return;
    }
    dims.push(size);
    src.push(g.srcStrides[i]);
    dst.push(g.dstStrides[i]);
  });
  if (dims.length === 0) return { dims: [1], srcStrides: [1], dstStrides: [1] };
  return { dims, srcStrides: src, dstStrides: dst };
}

const { sizeFromShape } = tf.util;

/**
 * The three kernels over `plans`. `fallback(name)` is the kernel to run where these do not apply
 * (see the module doc).
 *
 * @example
 * ```ts
 * for (const [name, kernelFunc] of nativeCopyKernels(plans, fallback)) { ... }
 * ```
 */
export function nativeCopyKernels(
  plans: CopyPlans,
  fallback: (name: string) => tf.KernelFunc,
): [string, tf.KernelFunc][] {
  /** Runs `body`, freeing `outs` and naming the kernel and shapes when oneDNN fails. */
  const guard = <T>(
    backend: WasmBackend,
    name: string,
    outs: Info[],
    shapes: number[][],
    body: () => T,
  ): T =>
    guarded(backend, outs, () => {
      const list = shapes.map((s) => `[${s.join(", ")}]`).join(", ");
      return `${name} on oneDNN failed for ${list}`;
    }, body);

  const concat: tf.KernelFunc = (config) => {
    const backend = config.backend as unknown as WasmBackend;
    const list = Object.values(config.inputs) as Info[];
    const present = list.filter((t) => sizeFromShape(t.shape) > 0);
    if (present.length < 2 || present.some((t) => t.dtype !== "float32")) {
      return fallback(tf.Concat)(config);
    }
    const axis = tf.util.parseAxisParam((config.attrs as { axis: number }).axis, list[0].shape)[0];
    tf.backend_util.assertParamsConsistent(list.map((t) => t.shape), axis);
    const shape = tf.backend_util.computeOutShape(list.map((t) => t.shape), axis);
    if (sizeFromShape(shape) < NATIVE_COPY_MIN_ELEMENTS) return fallback(tf.Concat)(config);
    const outer = sizeFromShape(shape.slice(0, axis));
    const out = backend.makeOutput(shape, "float32");
    return guard(backend, tf.Concat, [out], list.map((t) => t.shape), () => {
      const runs = present.map((input) => sizeFromShape(input.shape.slice(axis)));
      plans.concat(
        outer,
        runs,
        present.map((input) => address(backend, input)),
        address(backend, out),
      );
      return out;
    });
  };

  const splitV: tf.KernelFunc = (config) => {
    const backend = config.backend as unknown as WasmBackend;
    const { x } = config.inputs as { x: Info };
    const attrs = config.attrs as { numOrSizeSplits: number | number[]; axis: number };
    if (x.dtype !== "float32" || sizeFromShape(x.shape) < NATIVE_COPY_MIN_ELEMENTS) {
      return fallback(tf.SplitV)(config);
    }
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits, axis);
    const outs = sizes.map((s) => {
      const shape = x.shape.slice();
      shape[axis] = s;
      return backend.makeOutput(shape, "float32");
    });
    const outer = sizeFromShape(x.shape.slice(0, axis)),
      inner = sizeFromShape(x.shape.slice(axis + 1));
    const block = x.shape[axis] * inner;
    return guard(backend, tf.SplitV, outs, [x.shape], () => {
      let at = 0;
      outs.forEach((out, j) => {
        const run = sizes[j] * inner;
        if (run > 0 && outer > 0) {
          const g = mergeDims({ dims: [outer, run], srcStrides: [block, 1], dstStrides: [run, 1] });
          plans.copy(g, address(backend, x, at), address(backend, out));
        }
        at += run;
      });
      return outs;
    });
  };

  const slice: tf.KernelFunc = (config) => {
    const backend = config.backend as unknown as WasmBackend;
    const { x } = config.inputs as { x: Info };
    const attrs = config.attrs as { begin: number | number[]; size: number | number[] };
    if (x.dtype !== "float32" || x.shape.length === 0 || x.shape.length > 12) {
      return fallback(tf.Slice)(config);
    }
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
    if (sizeFromShape(size) < NATIVE_COPY_MIN_ELEMENTS) return fallback(tf.Slice)(config);
    const strides = [...tf.util.computeStrides(x.shape), 1];
    const from = begin.reduce((sum, b, d) => sum + b * strides[d], 0);
    const out = backend.makeOutput(size, "float32");
    return guard(backend, tf.Slice, [out], [x.shape], () => {
      const g = mergeDims({
        dims: size,
        srcStrides: strides,
        dstStrides: [...tf.util.computeStrides(size), 1],
      });
      plans.copy(g, address(backend, x, from), address(backend, out));
      return out;
    });
  };

  return [[tf.Concat, concat], [tf.SplitV, splitV], [tf.Slice, slice]];
}

/** One case of {@linkcode copySelfCheck}: a kernel, its inputs' shapes and its attributes. */
export interface CopyCheckCase {
  kernel: typeof NATIVE_COPY_KERNELS[number];
  shapes: number[][];
  attrs: tf.NamedAttrMap;
}

/**
 * The start-up self-check's copies, above {@linkcode NATIVE_COPY_MIN_ELEMENTS} and with odd sizes:
 * a channel-axis concatenation and split of NHWC tensors (the dense blocks'), a middle axis, and
 * a slice cut on every axis.
 *
 * @example
 * ```ts
 * COPY_CHECK_CASES.map((c) => c.kernel); // ["Concat", "Concat", "SplitV", "Slice"]
 * ```
 */
export const COPY_CHECK_CASES: readonly CopyCheckCase[] = [
  { kernel: tf.Concat, shapes: [[2, 9, 33, 17], [2, 9, 33, 32]], attrs: { axis: 3 } },
  { kernel: tf.Concat, shapes: [[3, 5, 31, 40], [3, 7, 31, 40]], attrs: { axis: 1 } },
  {
    kernel: tf.SplitV,
    shapes: [[2, 9, 33, 49]],
    attrs: { numOrSizeSplits: [17, 32], axis: -1 },
  },
  {
    kernel: tf.Slice,
    shapes: [[4, 40, 31, 9]],
    attrs: { begin: [1, 3, 2, 1], size: [3, 36, 27, 7] },
  },
];

/**
 * Runs each native copy kernel on {@linkcode COPY_CHECK_CASES} (random values with NaN, ±0,
 * ±Infinity and subnormals among them) and compares its outputs' bits with the kernel it
 * replaced; throws, naming the kernel and the case, on any difference.
 *
 * @example
 * ```ts
 * copySelfCheck(backend, copySwap); // throws when a copy is not exact
 * ```
 */
export function copySelfCheck(
  backend: tf.KernelBackend,
  kernels: { replaced(name: string): tf.KernelConfig | undefined },
  cases: readonly CopyCheckCase[] = COPY_CHECK_CASES,
): void {
  const made: Info[] = [];
  const special = [NaN, 0, -0, Infinity, -Infinity, 1e-40, -3e-39];
  let seed = 7;
  const tensor = (shape: number[]): Info => {
    const values = new Float32Array(sizeFromShape(shape));
    for (let i = 0; i < values.length; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      values[i] = seed % 97 === 0 ? special[seed % special.length] : seed / 2 ** 31 - 1;
    }
    const info = { dataId: backend.write(values, shape, "float32"), shape, dtype: "float32" };
    made.push(info as Info);
    return info as Info;
  };
  try {
    for (const c of cases) {
      const tensors = c.shapes.map(tensor);
      const inputs: tf.NamedTensorInfoMap = c.kernel === tf.Concat
        ? Object.fromEntries(tensors.map((t, i) => [i, t]))
        : { x: tensors[0] };
      const run = (func: tf.KernelFunc) => {
        const out = func({ inputs, attrs: c.attrs, backend });
        const outs = Array.isArray(out) ? out : [out];
        made.push(...outs);
        return outs.map((o) => ({
          shape: o.shape.join(),
          bits: new Uint32Array((backend.readSync(o.dataId) as Float32Array).slice().buffer),
        }));
      };
      const native = run(tf.getKernel(c.kernel, "wasm")!.kernelFunc);
      const reference = run(kernels.replaced(c.kernel)!.kernelFunc);
      const label = `${c.kernel} of [${c.shapes.map((s) => `[${s}]`).join(", ")}] ` +
        JSON.stringify(c.attrs);
      if (native.length !== reference.length) {
        throw new Error(`${label} gave ${native.length} outputs, expected ${reference.length}`);
      }
      reference.forEach((r, j) => {
        const n = native[j];
        const at = r.bits.findIndex((b, i) => n.bits[i] !== b);
        if (n.shape !== r.shape || n.bits.length !== r.bits.length || at >= 0) {
          throw new Error(
            `${label}: output ${j} differs from the wasm kernel's` +
              (at >= 0 ? ` at element ${at}` : ` in shape ([${n.shape}], expected [${r.shape}])`),
          );
        }
      });
    }
  } finally {
    for (const info of made) backend.disposeData(info.dataId);
  }
}
