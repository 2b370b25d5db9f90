/**
 * `Conv2D`, `Conv2DBackpropInput` and `Conv2DBackpropFilter` for tfjs's wasm backend, computed by
 * oneDNN's convolution primitives (forward, backward data, backward weights) on the tensors where
 * they lie in the wasm heap: activations stay NHWC (oneDNN's fast path for them), the filter is
 * reordered into the layout oneDNN picks (format `any`: its AVX-512 direct kernels; plain `hwio`
 * makes it fall back to im2col + GEMM at half the speed). Primitives are made once per shape and
 * kept (see {@linkcode ConvPlans}). At stride 1, `Conv2DBackpropInput` runs the forward primitive
 * on the flipped filter, so that a transposed convolution gives the same bits as the convolution
 * it re-parameterises.
 *
 * Cases oneDNN does not take as tfjs states them (NCHW data, other dtypes, empty tensors, padding
 * that disagrees with the output size, as `dimRoundingMode: "ceil"` can give) run the kernel that
 * was registered before (this project's wasm kernels). A failing oneDNN call throws an error
 * naming the kernel and the shapes; the output it was writing is freed.
 *
 * @example
 * ```ts
 * import { ConvPlans, nativeConvKernels } from "./_conv_kernels.ts";
 * const kernels = nativeConvKernels(new ConvPlans(openDnnl()), (name) => replacedKernel(name));
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { DNNL, type Dnnl, ExecArgs, type MemoryDesc, type Owned, PlanCache } from "./_dnnl.ts";
import { address, guarded, type WasmBackend } from "./_heap.ts";

type Info = tf.TensorInfo;
type Ptr = Deno.PointerObject;
type Pair = [number, number];
type Shape4 = [number, number, number, number];
type Kind = "forward" | "backwardData" | "backwardWeights";

/** The three kernels' names, in tfjs's registry. */
export const NATIVE_CONV_KERNELS = [
  tf.Conv2D,
  tf.Conv2DBackpropInput,
  tf.Conv2DBackpropFilter,
] as const;

interface ConvAttrs {
  strides: number | Pair;
  pad: tf.Conv2DAttrs["pad"];
  dataFormat?: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  dilations?: number | Pair;
  inputShape?: Shape4;
  filterShape?: Shape4;
}

/** A user-side memory whose buffer is set at each call, and its argument kind. */
interface Slot {
  arg: number;
  mem: Ptr;
}

/**
 * The filter layout the convolution primitives are asked for: `"any"` lets oneDNN pick (its
 * blocked layouts and direct AVX-512/AVX2 kernels; the filter is reordered at each call), `"hwio"`
 * is tfjs's own layout, with which oneDNN falls back to slower kernels (kept to measure that, with
 * `bench/native_conv.ts --hwio`).
 */
export type FilterLayout = "any" | "hwio";

/** Everything one convolution shape needs, made once. */
interface Plan {
  primitive: Ptr;
  args: ExecArgs;
  /** src/dst-like slots of the convolution whose buffers are wasm tensors, in call order. */
  slots: Slot[];
  /** The filter's slot: in hwio on the wasm heap, reordered to or from `staged` when needed. */
  filter: { user: Ptr; reorder?: { primitive: Ptr; args: ExecArgs } };
  /** Implementation oneDNN chose (`DNNL_VERBOSE`'s name). */
  implementation: string;
  /** Keeps the staged filter's buffer alive. */
  staged?: Uint8Array;
  owned: Owned[];
}

/** The geometry of one convolution, in tfjs's terms. */
interface Geometry {
  info: tf.backend_util.Conv2DInfo;
  key: string;
}

/**
 * oneDNN primitives per convolution shape (and kind), made on first use and kept; the oldest are
 * freed beyond {@linkcode ConvPlans.limit}.
 */
export class ConvPlans {
  readonly dnnl: Dnnl;
  readonly #plans: PlanCache<Plan>;
  /** Plans kept at most. */
  readonly limit: number;
  /** The filter layout oneDNN computes on (see {@linkcode FilterLayout}). */
  readonly filterLayout: FilterLayout;

  /**
   * @example
   * ```ts
   * const plans = new ConvPlans(openDnnl());
   * ```
   */
  constructor(dnnl: Dnnl, limit = 256, filterLayout: FilterLayout = "any") {
    this.dnnl = dnnl;
    this.limit = limit;
    this.filterLayout = filterLayout;
    this.#plans = new PlanCache(limit, (plan) => dnnl.destroyAll(plan.owned));
  }

  /** Number of plans held. */
  get size(): number {
    return this.#plans.size;
  }

  /** The implementations oneDNN chose, by plan key. */
  implementations(): Map<string, string> {
    return new Map([...this.#plans.entries()].map(([k, p]) => [k, p.implementation]));
  }

  /** The plan for `kind` at `geometry`, made when new. */
  get(kind: Kind, g: Geometry): Plan {
    return this.#plans.get(`${kind}|${g.key}`, () => this.#make(kind, g.info));
  }

  /** Frees every plan. */
  clear(): void {
    this.#plans.clear();
  }

  #make(kind: Kind, info: tf.backend_util.Conv2DInfo): Plan {
    const d = this.dnnl;
    return d.owning((own, owned) => {
      const { batchSize: n, inChannels: ci, outChannels: co } = info;
      const src = d.memoryDesc([n, ci, info.inHeight, info.inWidth], DNNL.tagNhwc);
      const dst = d.memoryDesc([n, co, info.outHeight, info.outWidth], DNNL.tagNhwc);
      const dims = [co, ci, info.filterHeight, info.filterWidth];
      const hwio = d.memoryDesc(dims, DNNL.tagHwio);
      const any = this.filterLayout === "hwio" ? hwio : d.memoryDesc(dims, DNNL.tagAny);
      const p = info.padInfo;
      const geometry = [
        [info.strideHeight, info.strideWidth],
        [info.dilationHeight - 1, info.dilationWidth - 1],
        [p.top, p.left],
        [p.bottom, p.right],
      ] as const;
      const desc = (k: Kind, weights: MemoryDesc) =>
        d.convolutionDesc(
          k,
          src,
          weights,
          dst,
          ...geometry.map((g) => [...g]) as [
            number[],
            number[],
            number[],
            number[],
          ],
        );
      const forward = own("pd", d.primitiveDesc(desc("forward", any)));
      const pd = kind === "forward"
        ? forward
        : own("pd", d.primitiveDesc(desc(kind, any), forward));
      const chosen = d.queryMd(
        pd,
        kind === "backwardWeights" ? DNNL.queryDiffWeightsMd : DNNL.queryWeightsMd,
      );
      const weights = d.stagedWeights(
        own,
        Deno.UnsafePointer.of(hwio)!,
        chosen,
        kind !== "backwardWeights",
      );
      const { user, reorder, staged } = weights;
      const filterMem = weights.mem;
      const srcMem = own("memory", d.memory(Deno.UnsafePointer.of(src)!));
      const dstMem = own("memory", d.memory(Deno.UnsafePointer.of(dst)!));
      const roles: Record<Kind, [Slot, Slot, number]> = {
        forward: [
          { arg: DNNL.argSrc, mem: srcMem },
          { arg: DNNL.argDst, mem: dstMem },
          DNNL.argWeights,
        ],
        backwardData: [
          { arg: DNNL.argDiffDst, mem: dstMem },
          { arg: DNNL.argDiffSrc, mem: srcMem },
          DNNL.argWeights,
        ],
        backwardWeights: [
          { arg: DNNL.argSrc, mem: srcMem },
          { arg: DNNL.argDiffDst, mem: dstMem },
          DNNL.argDiffWeights,
        ],
      };
      const [a, b, filterArg] = roles[kind];
      return {
        primitive: own("primitive", d.primitive(pd)),
        args: new ExecArgs([[a.arg, a.mem], [b.arg, b.mem], [filterArg, filterMem]]),
        slots: [a, b],
        filter: { user, reorder },
        implementation: d.implementation(pd),
        staged,
        owned,
      };
    });
  }

  /**
   * Runs `plan` on wasm-heap buffers: `a` and `b` for its two activation slots (in the order of
   * the plan's kind: x and y, dy and dx, x and dy) and `filter` for the filter.
   */
  run(plan: Plan, a: Ptr, b: Ptr, filter: Ptr, filterIsOutput: boolean): void {
    const d = this.dnnl;
    d.setHandle(plan.slots[0].mem, a);
    d.setHandle(plan.slots[1].mem, b);
    d.setHandle(plan.filter.user, filter);
    const reorder = plan.filter.reorder;
    if (reorder !== undefined && !filterIsOutput) d.execute(reorder.primitive, reorder.args);
    d.execute(plan.primitive, plan.args);
    if (reorder !== undefined && filterIsOutput) d.execute(reorder.primitive, reorder.args);
  }
}

function geometry(x: Shape4, filter: Shape4, a: ConvAttrs): Geometry | undefined {
  if (a.dataFormat === "NCHW") return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    x,
    filter,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
  const sizes = [...x, ...filter, info.outHeight, info.outWidth];
  if (sizes.some((s) => s <= 0)) return undefined;
  // oneDNN requires out = ⌊(in + pads − effective kernel) / stride⌋ + 1, tfjs's floor rule.
  const p = info.padInfo;
  const fits = (size: number, before: number, after: number, k: number, s: number, out: number) =>
    Math.floor((size + before + after - k) / s) + 1 === out && before >= 0 && after >= 0;
  if (
    !fits(
      info.inHeight,
      p.top,
      p.bottom,
      info.effectiveFilterHeight,
      info.strideHeight,
      info.outHeight,
    ) ||
    !fits(info.inWidth, p.left, p.right, info.effectiveFilterWidth, info.strideWidth, info.outWidth)
  ) {
    return undefined;
  }
  const key = [
    x,
    filter,
    [info.strideHeight, info.strideWidth],
    [info.dilationHeight, info.dilationWidth],
    [p.top, p.bottom, p.left, p.right],
  ].join("|");
  return { info, key };
}

function describe(a: ConvAttrs, shapes: Record<string, number[]>): string {
  const parts = Object.entries(shapes).map(([k, s]) => `${k} [${s.join(", ")}]`);
  const pad = typeof a.pad === "object" ? JSON.stringify(a.pad) : String(a.pad);
  return `${parts.join(", ")}, strides ${a.strides}, pad ${pad}, dilations ${a.dilations ?? 1}`;
}

/**
 * The three kernels over `plans`. `fallback(name)` is the kernel to run where oneDNN does not
 * apply (see the module doc); `options.flip` replaces the stride-1 filter flip (for tests).
 *
 * @example
 * ```ts
 * for (const [name, kernelFunc] of nativeConvKernels(plans, fallback)) { ... }
 * ```
 */
export function nativeConvKernels(
  plans: ConvPlans,
  fallback: (name: string) => tf.KernelFunc,
  options: NativeConvOptions = {},
): [string, tf.KernelFunc][] {
  const flip = options.flip ?? flipFilter;
  const kernel = (
    name: string,
    body: (backend: WasmBackend, inputs: Record<string, Info>, a: ConvAttrs) => Info | undefined,
  ): [string, tf.KernelFunc] => [name, (config) => {
    const inputs = config.inputs as Record<string, Info>;
    if (Object.values(inputs).some((t) => t.dtype !== "float32")) return fallback(name)(config);
    return body(
      config.backend as unknown as WasmBackend,
      inputs,
      config.attrs as unknown as ConvAttrs,
    ) ??
      fallback(name)(config);
  }];
  const execute = (
    name: string,
    backend: WasmBackend,
    kind: Kind,
    g: Geometry,
    a: ConvAttrs,
    outShape: number[],
    operands: { a: Info; b?: Info; filter?: Info | Float32Array },
    shapes: Record<string, number[]>,
  ): Info => {
    const out = backend.makeOutput(outShape, "float32");
    const label = () => `${name} on oneDNN failed for ${describe(a, shapes)}`;
    return guarded(backend, [out], label, () => {
      const plan = plans.get(kind, g);
      const ptr = (t: Info) => address(backend, t);
      if (kind === "backwardWeights") {
        plans.run(plan, ptr(operands.a), ptr(operands.b!), ptr(out), true);
      } else {
        const f = operands.filter!;
        const filterPtr = f instanceof Float32Array ? Deno.UnsafePointer.of(f)! : ptr(f);
        plans.run(plan, ptr(operands.a), ptr(out), filterPtr, false);
      }
      return out;
    });
  };
  return [
    kernel(tf.Conv2D, (backend, { x, filter }, a) => {
      const g = geometry(x.shape as Shape4, filter.shape as Shape4, a);
      if (g === undefined) return undefined;
      const { batchSize: n, outHeight: oh, outWidth: ow, outChannels: co } = g.info;
      return execute(tf.Conv2D, backend, "forward", g, a, [n, oh, ow, co], { a: x, filter }, {
        x: x.shape,
        filter: filter.shape,
      });
    }),
    kernel(tf.Conv2DBackpropInput, (backend, { dy, filter }, a) => {
      const g = geometry(a.inputShape!, filter.shape as Shape4, a);
      if (g === undefined) return undefined;
      const shapes = { dy: dy.shape, filter: filter.shape, inputShape: a.inputShape! };
      checkDy(tf.Conv2DBackpropInput, dy, g, a, shapes);
      const flipped = flippedGeometry(g, dy.shape as Shape4);
      if (flipped !== undefined) {
        // Stride 1: the forward primitive on the flipped filter, so that a transposed convolution
        // computes the same bits as the convolution it re-parameterises (the control arm).
        const w = flippedFilter(backend, filter, flip);
        return execute(
          tf.Conv2DBackpropInput,
          backend,
          "forward",
          flipped,
          a,
          [
            ...a.inputShape!,
          ],
          { a: dy, filter: w },
          shapes,
        );
      }
      return execute(tf.Conv2DBackpropInput, backend, "backwardData", g, a, [...a.inputShape!], {
        a: dy,
        filter,
      }, shapes);
    }),
    kernel(tf.Conv2DBackpropFilter, (backend, { x, dy }, a) => {
      const g = geometry(x.shape as Shape4, a.filterShape!, a);
      if (g === undefined) return undefined;
      const shapes = { x: x.shape, dy: dy.shape, filterShape: a.filterShape! };
      checkDy(tf.Conv2DBackpropFilter, dy, g, a, shapes);
      return execute(
        tf.Conv2DBackpropFilter,
        backend,
        "backwardWeights",
        g,
        a,
        [...a.filterShape!],
        { a: x, b: dy },
        shapes,
      );
    }),
  ];
}

/**
 * At stride 1, the input gradient is a forward convolution of `dy` with the filter flipped in
 * height and width and its channels swapped, padded by `(k − 1)·d − p` on each side; its geometry,
 * or undefined at other strides or where that padding would be negative.
 */
function flippedGeometry(g: Geometry, dy: Shape4): Geometry | undefined {
  const i = g.info;
  if (i.strideHeight !== 1 || i.strideWidth !== 1) return undefined;
  const eh = (i.filterHeight - 1) * i.dilationHeight, ew = (i.filterWidth - 1) * i.dilationWidth;
  const p = i.padInfo;
  const pads = [eh - p.top, eh - p.bottom, ew - p.left, ew - p.right];
  if (pads.some((v) => v < 0)) return undefined;
  return geometry(dy, [i.filterHeight, i.filterWidth, i.outChannels, i.inChannels], {
    strides: 1,
    pad: [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]],
    dilations: [i.dilationHeight, i.dilationWidth],
  });
}

/** Reused buffers for flipped filters, by length. */
const flipBuffers = new Map<number, Float32Array>();

/**
 * Writes filter `w` (`[kh, kw, in, out]`, tfjs's layout) into `out` as the filter of the stride-1
 * input gradient's forward convolution: flipped in height and width, channels swapped
 * (`out[a, b, o, i] = w[kh − 1 − a, kw − 1 − b, i, o]`).
 *
 * @example
 * ```ts
 * flipFilter(w, [3, 3, 16, 32], out); // out: [3, 3, 32, 16]
 * ```
 */
export function flipFilter(w: Float32Array, shape: readonly number[], out: Float32Array): void {
  const [kh, kw, ci, co] = shape;
  let at = 0;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const base = ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
      for (let o = 0; o < co; o++) {
        for (let i = 0; i < ci; i++) out[at++] = w[base + i * co + o];
      }
    }
  }
}

/** The signature of {@linkcode flipFilter}. */
export type FilterFlip = typeof flipFilter;

/** Options of {@linkcode nativeConvKernels}. */
export interface NativeConvOptions {
  /**
   * Prepares the filter of the stride-1 input gradient ({@linkcode flipFilter} by default). A
   * seam for the self-check's tests: a variant that gets it wrong must make the check fail.
   */
  flip?: FilterFlip;
}

/** `flip` of `filter` (read in place on the wasm heap) into a reused JavaScript buffer. */
function flippedFilter(backend: WasmBackend, filter: Info, flip: FilterFlip): Float32Array {
  const n = filter.shape.reduce((a, b) => a * b, 1);
  let out = flipBuffers.get(n);
  if (out === undefined) flipBuffers.set(n, out = new Float32Array(n));
  const w = new Float32Array(backend.wasm.HEAPU8.buffer, backend.getMemoryOffset(filter.dataId), n);
  flip(w, filter.shape, out);
  return out;
}

function checkDy(
  name: string,
  dy: Info,
  g: Geometry,
  a: ConvAttrs,
  shapes: Record<string, number[]>,
): void {
  const { batchSize: n, outHeight: oh, outWidth: ow, outChannels: co } = g.info;
  if (dy.shape.join() !== [n, oh, ow, co].join()) {
    throw new RangeError(
      `${name}: dy must have the convolution's output shape [${[n, oh, ow, co].join(", ")}] ` +
        `(NHWC) for ${describe(a, shapes)}`,
    );
  }
}
