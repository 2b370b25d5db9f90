/**
 * The kernels of `conv_pieces.ts`: {@linkcode FLIP_FILTER_KERNEL} (a transposed layer's filter
 * as its convolution's, in JavaScript), the forward convolution ({@linkcode CONV_PIECES_KERNEL})
 * and its filter gradient on oneDNN. The forward convolution is one forward
 * convolution primitive per piece, all writing the same NHWC output on tfjs-wasm's heap. Piece
 * `j`'s filter is the `[kh, kw, c_j, out]` slice of the hwio filter at input channel `offset_j`, a
 * strided view of the heap reordered into the layout oneDNN picks (as `_conv_kernels.ts` does
 * for whole filters); the first primitive adds the bias, each later one a `sum` post-op, the last
 * carries the LeakyReLU (`eltwise_relu` with the slope, once per application: two post-ops for
 * two, not one with α², which would round differently). The filter gradient
 * ({@linkcode CONV_PIECES_FILTER_GRAD_KERNEL}) runs per piece the backward-weights convolution
 * `Conv2DBackpropFilter` would, and reorders its result into the piece's strided slice of one hwio
 * output. Primitives are made once per shape and kept.
 *
 * @example
 * ```ts
 * import { nativeConvPiecesKernels } from "./_conv_pieces.ts";
 * swapWasmKernels(nativeConvPiecesKernels(openDnnl()), []);
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
  type MemoryDesc,
  type Owned,
  PlanCache,
} from "./_dnnl.ts";
import { address, guarded, type WasmBackend } from "./_heap.ts";
import {
  CONV_PIECES_FILTER_GRAD_KERNEL,
  CONV_PIECES_KERNEL,
  FLIP_FILTER_KERNEL,
} from "./conv_pieces.ts";
import { flipFilter } from "./_conv_kernels.ts";

type Ptr = Deno.PointerObject;
type Info = tf.TensorInfo;

/** oneDNN 2.x's `dnnl_eltwise_relu` (a slope makes it LeakyReLU). */
const ELTWISE_RELU = 0x1f;

/** One piece's primitive and the memories whose buffers are set at each call. */
interface PieceStep {
  primitive: Ptr;
  args: ExecArgs;
  src: Ptr;
  dst: Ptr;
  bias?: Ptr;
  /** The filter slice on the heap (strided hwio), reordered into `staged` when that is set. */
  user: Ptr;
  reorder?: { primitive: Ptr; args: ExecArgs };
  staged?: Uint8Array;
  /** Bytes from the filter's start to this piece's slice. */
  offset: number;
}

interface Plan {
  steps: PieceStep[];
  implementations: string[];
  owned: Owned[];
}

/** What one call computes. */
interface Shape {
  n: number;
  h: number;
  w: number;
  channels: number[];
  out: number;
  kh: number;
  kw: number;
  ph: number;
  pw: number;
  bias: boolean;
  alpha: number;
  times: number;
}

/** One piece's memory descriptions in a plan, and where its filter slice starts. */
interface PieceLayout {
  /** Its NHWC source. */
  src: MemoryDesc;
  /** Its filter slice on the heap (strided hwio) and the same dims in the layout oneDNN picks. */
  user: MemoryDesc;
  any: MemoryDesc;
  /** Bytes from the filter's start to its slice. */
  offset: number;
}

/** Per piece of `s`: its source, its filter slice's descriptions and the slice's offset. */
function pieceLayouts(d: Dnnl, s: Shape): PieceLayout[] {
  const ci = s.channels.reduce((a, b) => a + b, 0);
  let at = 0;
  return s.channels.map((c) => {
    const dims = [s.out, c, s.kh, s.kw];
    const layout = {
      src: d.memoryDesc([s.n, c, s.h, s.w], DNNL.tagNhwc),
      user: filterSliceMd(d, dims, ci),
      any: d.memoryDesc(dims, DNNL.tagAny),
      offset: 4 * at * s.out,
    };
    at += c;
    return layout;
  });
}

function makePlan(d: Dnnl, s: Shape): Plan {
  return d.owning((own, owned) => {
    const dst = d.memoryDesc([s.n, s.out, s.h, s.w], DNNL.tagNhwc);
    const biasMd = s.bias ? d.memoryDesc([s.out], DNNL.tagA) : null;
    const steps: PieceStep[] = [];
    const implementations: string[] = [];
    pieceLayouts(d, s).forEach(({ src, user, any, offset }, j) => {
      const last = j === s.channels.length - 1;
      const desc = d.convolutionDesc(
        "forward",
        src,
        any,
        dst,
        [1, 1],
        [0, 0],
        [s.ph, s.pw],
        [s.ph, s.pw],
        j === 0 ? biasMd : null,
      );
      const postOps: ({ sum: number } | { eltwise: number; alpha: number })[] = [];
      if (j > 0) postOps.push({ sum: 1 });
      if (last) {
        for (let t = 0; t < s.times; t++) postOps.push({ eltwise: ELTWISE_RELU, alpha: s.alpha });
      }
      const pd = own("pd", d.postOpsAttr(postOps, (attr) => d.primitiveDesc(desc, null, attr)));
      implementations.push(d.implementation(pd));
      const chosen = d.queryMd(pd, DNNL.queryWeightsMd);
      const weights = d.stagedWeights(own, Deno.UnsafePointer.of(user)!, chosen, true);
      const { reorder, staged } = weights;
      const userMem = weights.user, filterMem = weights.mem;
      const srcMem = own("memory", d.memory(Deno.UnsafePointer.of(src)!));
      const dstMem = own("memory", d.memory(Deno.UnsafePointer.of(dst)!));
      const args: [number, Ptr][] = [
        [DNNL.argSrc, srcMem],
        [DNNL.argWeights, filterMem],
        [DNNL.argDst, dstMem],
      ];
      let biasMem: Ptr | undefined;
      if (j === 0 && biasMd !== null) {
        biasMem = own("memory", d.memory(Deno.UnsafePointer.of(biasMd)!));
        args.push([DNNL.argBias, biasMem]);
      }
      steps.push({
        primitive: own("primitive", d.primitive(pd)),
        args: new ExecArgs(args),
        src: srcMem,
        dst: dstMem,
        bias: biasMem,
        user: userMem,
        reorder,
        staged,
        offset,
      });
    });
    return { steps, implementations, owned };
  });
}

/**
 * The memory description of one piece's slice `dims` (`[out, c, kh, kw]`) of an hwio filter
 * `[kh, kw, ci, out]` on the heap: its oihw dims with hwio's strides (o 1, i out, h, w), to be
 * placed at the slice's first input channel.
 */
function filterSliceMd(d: Dnnl, dims: number[], ci: number): MemoryDesc {
  const [out, , , kw] = dims;
  const md = new Uint8Array(MD_SIZE);
  d.check(
    d.symbol("dnnl_memory_desc_init_by_strides")(
      md,
      4,
      dimsOf(dims),
      DNNL.f32,
      dimsOf([1, out, kw * ci * out, ci * out]),
    ),
    `memory description of a [${dims.join(", ")}] filter slice`,
  );
  return md;
}

/** One piece's backward-weights primitive, and the reorder of its result into its slice. */
interface FilterGradStep {
  primitive: Ptr;
  args: ExecArgs;
  src: Ptr;
  diffDst: Ptr;
  /** The slice of the filter gradient on the heap (strided hwio). */
  user: Ptr;
  reorder?: { primitive: Ptr; args: ExecArgs };
  staged?: Uint8Array;
  /** Bytes from the filter gradient's start to this piece's slice. */
  offset: number;
}

interface FilterGradPlan {
  steps: FilterGradStep[];
  owned: Owned[];
}

/**
 * Per piece, the backward-weights convolution that `Conv2DBackpropFilter` runs for it
 * (`_conv_kernels.ts`: the same descriptions and forward hint, so the same implementation and
 * bits), its result reordered into the piece's input-channel slice of one hwio filter gradient
 * instead of into a tensor of its own.
 */
function makeFilterGradPlan(d: Dnnl, s: Shape): FilterGradPlan {
  return d.owning((own, owned) => {
    const dst = d.memoryDesc([s.n, s.out, s.h, s.w], DNNL.tagNhwc);
    const steps: FilterGradStep[] = [];
    for (const { src, user, any, offset } of pieceLayouts(d, s)) {
      const desc = (kind: "forward" | "backwardWeights") =>
        d.convolutionDesc(kind, src, any, dst, [1, 1], [0, 0], [s.ph, s.pw], [s.ph, s.pw]);
      const hint = own("pd", d.primitiveDesc(desc("forward")));
      const pd = own("pd", d.primitiveDesc(desc("backwardWeights"), hint));
      const chosen = d.queryMd(pd, DNNL.queryDiffWeightsMd);
      const weights = d.stagedWeights(own, Deno.UnsafePointer.of(user)!, chosen, false);
      const { reorder, staged } = weights;
      const userMem = weights.user, filterMem = weights.mem;
      const srcMem = own("memory", d.memory(Deno.UnsafePointer.of(src)!));
      const dstMem = own("memory", d.memory(Deno.UnsafePointer.of(dst)!));
      steps.push({
        primitive: own("primitive", d.primitive(pd)),
        args: new ExecArgs([
          [DNNL.argSrc, srcMem],
          [DNNL.argDiffDst, dstMem],
          [DNNL.argDiffWeights, filterMem],
        ]),
        src: srcMem,
        diffDst: dstMem,
        user: userMem,
        reorder,
        staged,
        offset,
      });
    }
    return { steps, owned };
  });
}

/**
 * {@linkcode FLIP_FILTER_KERNEL}, {@linkcode CONV_PIECES_KERNEL} and
 * {@linkcode CONV_PIECES_FILTER_GRAD_KERNEL} over oneDNN `dnnl`, the convolutions with their
 * primitives kept per shape (at most `limit` of each kind). Makes one small plan of each at once,
 * so that a library without post-ops fails here (and the family is left out) rather than in a
 * training step.
 *
 * @example
 * ```ts
 * const [[name, kernelFunc]] = nativeConvPiecesKernels(dnnl);
 * ```
 */
export function nativeConvPiecesKernels(dnnl: Dnnl, limit = 256): [string, tf.KernelFunc][] {
  const plans = new PlanCache<Plan>(limit, (plan) => dnnl.destroyAll(plan.owned));
  const planOf = (s: Shape) => plans.get(JSON.stringify(s), () => makePlan(dnnl, s));
  const gradPlans = new PlanCache<FilterGradPlan>(limit, (plan) => dnnl.destroyAll(plan.owned));
  const gradPlanOf = (s: Shape) =>
    gradPlans.get(JSON.stringify(s), () => makeFilterGradPlan(dnnl, s));
  const small = { n: 1, h: 3, w: 3, channels: [2, 3], out: 4, kh: 3, kw: 3, ph: 1, pw: 1 };
  planOf({ ...small, bias: true, alpha: 0.01, times: 2 });
  gradPlanOf({ ...small, bias: false, alpha: 0, times: 0 });
  return [[FLIP_FILTER_KERNEL, flipKernel], [
    CONV_PIECES_FILTER_GRAD_KERNEL,
    filterGradKernel(dnnl, gradPlanOf),
  ], [CONV_PIECES_KERNEL, (config) => {
    const inputs = config.inputs as Record<string, Info>;
    const { padding, alpha, times } = config.attrs as unknown as {
      padding: [number, number];
      alpha: number;
      times: number;
    };
    const pieces = piecesOf(inputs);
    const { filter, bias } = inputs;
    const [kh, kw, ci, out] = filter.shape;
    const [n, h, w] = pieces[0]?.shape ?? [];
    const channels = pieces.map((p) => p.shape[3]);
    const text = () =>
      `pieces ${pieces.map((p) => `[${p.shape.join(", ")}]`).join(", ")}, filter [${
        filter.shape.join(", ")
      }]${bias ? `, bias [${bias.shape.join(", ")}]` : ""}`;
    if (
      pieces.length === 0 || [...pieces, filter, ...(bias ? [bias] : [])].some((t) =>
        t.dtype !== "float32"
      ) ||
      pieces.some((p) => p.shape.length !== 4 || p.shape.slice(0, 3).join() !== [n, h, w].join()) ||
      channels.reduce((a, b) => a + b, 0) !== ci || (bias && bias.shape.join() !== String(out))
    ) {
      throw new RangeError(
        `${CONV_PIECES_KERNEL} expects float32 NHWC pieces of one batch, height and width whose ` +
          `channels add up to the filter's input channels, and a bias of the output channels; got ${text()}`,
      );
    }
    const backend = config.backend as unknown as WasmBackend;
    const y = backend.makeOutput([n, h, w, out], "float32");
    return guarded(backend, [y], () =>
      `${CONV_PIECES_KERNEL} on oneDNN failed for ${text()}`, () => {
      const plan = planOf({
        n,
        h,
        w,
        channels,
        out,
        kh,
        kw,
        ph: padding[0],
        pw: padding[1],
        bias: bias !== undefined,
        alpha,
        times,
      });
      const w0 = address(backend, filter);
      const dst = address(backend, y);
      plan.steps.forEach((step, j) => {
        dnnl.setHandle(step.src, address(backend, pieces[j]));
        dnnl.setHandle(step.dst, dst);
        if (step.bias) {
          dnnl.setHandle(step.bias, address(backend, bias));
        }
        dnnl.setHandle(step.user, Deno.UnsafePointer.offset(w0, step.offset)!);
        if (step.reorder) {
          dnnl.execute(step.reorder.primitive, step.reorder.args);
        }
        dnnl.execute(step.primitive, step.args);
      });
      return y;
    });
  }]];
}

/**
 * {@linkcode CONV_PIECES_FILTER_GRAD_KERNEL}: per piece a backward-weights convolution, its result
 * reordered into the piece's slice of the one output (see {@linkcode makeFilterGradPlan}).
 */
function filterGradKernel(dnnl: Dnnl, planOf: (s: Shape) => FilterGradPlan): tf.KernelFunc {
  return (config) => {
    const inputs = config.inputs as Record<string, Info>;
    const { padding, kernelSize } = config.attrs as unknown as {
      padding: [number, number];
      kernelSize: [number, number];
    };
    const pieces = piecesOf(inputs);
    const { dy } = inputs;
    const [n, h, w] = pieces[0]?.shape ?? [];
    const channels = pieces.map((p) => p.shape[3]);
    const [kh, kw] = kernelSize ?? [];
    const [ph, pw] = padding ?? [];
    const out = dy?.shape[3];
    const text = () =>
      `pieces ${pieces.map((p) => `[${p.shape.join(", ")}]`).join(", ")}, dy [${
        dy?.shape.join(", ")
      }], kernelSize [${kernelSize}], padding [${padding}]`;
    if (
      pieces.length === 0 || dy === undefined ||
      [...pieces, dy].some((t) => t.dtype !== "float32" || t.shape.length !== 4) ||
      [...pieces, dy].some((t) => t.shape.slice(0, 3).join() !== [n, h, w].join()) ||
      2 * ph !== kh - 1 || 2 * pw !== kw - 1
    ) {
      throw new RangeError(
        `${CONV_PIECES_FILTER_GRAD_KERNEL} expects float32 NHWC pieces and dy of one batch, ` +
          `height and width, and "same" padding for the kernel size; got ${text()}`,
      );
    }
    const backend = config.backend as unknown as WasmBackend;
    const ci = channels.reduce((a, b) => a + b, 0);
    const dw = backend.makeOutput([kh, kw, ci, out], "float32");
    return guarded(
      backend,
      [dw],
      () => `${CONV_PIECES_FILTER_GRAD_KERNEL} on oneDNN failed for ${text()}`,
      () => {
        const plan = planOf({
          n,
          h,
          w,
          channels,
          out,
          kh,
          kw,
          ph,
          pw,
          bias: false,
          alpha: 0,
          times: 0,
        });
        const w0 = address(backend, dw);
        const diffDst = address(backend, dy);
        plan.steps.forEach((step, j) => {
          dnnl.setHandle(step.src, address(backend, pieces[j]));
          dnnl.setHandle(step.diffDst, diffDst);
          dnnl.setHandle(step.user, Deno.UnsafePointer.offset(w0, step.offset)!);
          dnnl.execute(step.primitive, step.args);
          if (step.reorder) dnnl.execute(step.reorder.primitive, step.reorder.args);
        });
        return dw;
      },
    );
  };
}

/** The kernel inputs `x0`, `x1`, … in order. */
function piecesOf(inputs: Record<string, Info>): Info[] {
  const pieces: Info[] = [];
  for (let j = 0; inputs[`x${j}`] !== undefined; j++) pieces.push(inputs[`x${j}`]);
  return pieces;
}

/** {@linkcode FLIP_FILTER_KERNEL}: one JavaScript pass over the wasm heap. */
const flipKernel: tf.KernelFunc = (config) => {
  const { x } = config.inputs as { x: Info };
  if (x.shape.length !== 4 || x.dtype !== "float32") {
    throw new RangeError(
      `${FLIP_FILTER_KERNEL} expects a float32 filter [kh, kw, a, b], got ${x.dtype} ` +
        `[${x.shape.join(", ")}]`,
    );
  }
  const backend = config.backend as unknown as WasmBackend;
  const [kh, kw, a, b] = x.shape;
  const out = backend.makeOutput([kh, kw, b, a], "float32");
  const size = kh * kw * a * b;
  // Views after the allocation, which may grow (and so move) the heap.
  const heap = backend.wasm.HEAPU8.buffer;
  const view = (t: Info) => new Float32Array(heap, backend.getMemoryOffset(t.dataId), size);
  flipFilter(view(x), x.shape, view(out));
  return out;
};
