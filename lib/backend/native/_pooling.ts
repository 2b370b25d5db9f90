/**
 * `AvgPoolGrad` of average pools whose windows tile the input (the transition layers' 2×2, stride
 * 2, no padding) by oneDNN's pooling backward primitive, on the tensors where they lie in
 * tfjs-wasm's heap: each input pixel gets its window's `dy / (kh·kw)`, multi-threaded, where the
 * wasm kernel (`../wasm/_fast_kernels.ts`) loops in JavaScript. For windows of a power-of-two
 * area, `dy / area` is `dy · (1/area)` exactly, the wasm kernel's value. The forward pass stays
 * tfjs-wasm's (XNNPACK sums a window in another order than oneDNN). Other pools, dtypes and NCHW
 * run the kernel that was registered before.
 *
 * @example
 * ```ts
 * import { nativePoolingKernels } from "./_pooling.ts";
 * swapWasmKernels(nativePoolingKernels(dnnl, fallback), []);
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { dimsOf, DNNL, type Dnnl, ExecArgs, type Plan } from "./_dnnl.ts";
import { address, guarded, type WasmBackend } from "./_heap.ts";

type Ptr = Deno.PointerObject;
type Info = tf.TensorInfo;

/** `sizeof(dnnl_pooling_desc_t)` in oneDNN 2.x is under 3,300 bytes; with room to spare. */
const DESC_SIZE = 8192;
/** oneDNN 2.x's `dnnl_pooling_avg_include_padding` (no padding here, so either average). */
const AVG = 0x2ff;

/**
 * The `AvgPoolGrad` kernel over oneDNN `dnnl`; `fallback` gives the kernel it replaced.
 *
 * @example
 * ```ts
 * const kernels = nativePoolingKernels(dnnl, (name) => swap.replaced(name)!.kernelFunc);
 * ```
 */
export function nativePoolingKernels(
  dnnl: Dnnl,
  fallback: (name: string) => tf.KernelFunc,
): [string, tf.KernelFunc][] {
  const forwardInit = dnnl.symbol("dnnl_pooling_forward_desc_init");
  const backwardInit = dnnl.symbol("dnnl_pooling_backward_desc_init");
  const plans = new Map<string, Plan>();
  const plan = ([n, h, w, c]: number[], kh: number, kw: number): Plan => {
    const key = [n, h, w, c, kh, kw].join();
    let p = plans.get(key);
    if (p !== undefined) return p;
    const src = dnnl.memoryDesc([n, c, h, w], DNNL.tagNhwc);
    const dst = dnnl.memoryDesc([n, c, h / kh, w / kw], DNNL.tagNhwc);
    const geometry = [dimsOf([kh, kw]), dimsOf([kh, kw]), dimsOf([0, 0]), dimsOf([0, 0])] as const;
    const forwardDesc = new Uint8Array(DESC_SIZE), backwardDesc = new Uint8Array(DESC_SIZE);
    dnnl.check(
      forwardInit(
        forwardDesc,
        DNNL.forwardTraining,
        AVG,
        src,
        dst,
        ...geometry,
      ),
      "pooling forward description",
    );
    dnnl.check(
      backwardInit(backwardDesc, AVG, src, dst, ...geometry),
      "pooling backward description",
    );
    const hint = dnnl.primitiveDesc(forwardDesc);
    const pd = dnnl.primitiveDesc(backwardDesc, hint);
    const memories = [dst, src].map((md) => dnnl.memory(Deno.UnsafePointer.of(md)!));
    p = {
      primitive: dnnl.primitive(pd),
      args: new ExecArgs([[DNNL.argDiffDst, memories[0]], [DNNL.argDiffSrc, memories[1]]]),
      memories,
    };
    dnnl.destroy("pd", pd);
    dnnl.destroy("pd", hint);
    plans.set(key, p);
    return p;
  };
  plan([1, 2, 2, 1], 2, 2); // made now, so that a missing primitive throws at install
  return [[tf.AvgPoolGrad, (config) => {
    const { dy, input } = config.inputs as { dy: Info; input: Info };
    const attrs = config.attrs as unknown as tf.AvgPoolGradAttrs;
    if (dy.dtype !== "float32" || input.shape.length !== 4) {
      return fallback(tf.AvgPoolGrad)(config);
    }
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
    );
    const { filterHeight: kh, filterWidth: kw } = info;
    const p = info.padInfo;
    const area = kh * kw;
    const tiles = info.strideHeight === kh && info.strideWidth === kw &&
      p.top + p.left + p.bottom + p.right === 0 && info.inHeight === info.outHeight * kh &&
      info.inWidth === info.outWidth * kw && info.outHeight > 0 && info.outWidth > 0;
    if (!tiles || (area & (area - 1)) !== 0 || dy.shape.join() !== info.outShape.join()) {
      return fallback(tf.AvgPoolGrad)(config);
    }
    const backend = config.backend as unknown as WasmBackend;
    const out = backend.makeOutput(input.shape, "float32");
    const label = () =>
      `AvgPoolGrad on oneDNN failed for input [${input.shape.join(", ")}], ${kh}×${kw} windows`;
    return guarded(backend, [out], label, () => {
      dnnl.run(plan(input.shape, kh, kw), [address(backend, dy), address(backend, out)]);
      return out;
    });
  }]];
}
