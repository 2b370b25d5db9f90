/**
 * `Conv2DBackpropInput` and `Conv2DBackpropFilter` kernels for tfjs's wasm backend, built from its
 * `Conv2D` kernel (XNNPACK) on rearranged operands, so that they run at convolution speed. Both
 * are exact rewrites of the gradient sums, not approximations; see
 * {@linkcode conv2DBackpropInputViaConv2D} and {@linkcode conv2DBackpropFilterViaConv2D} for the
 * rearrangements. Data movements that tfjs-wasm does slowly (transposes where every element moves
 * alone, interleaving) run as JavaScript loops over the wasm heap.
 *
 * Both kernels take tfjs's attributes (`strides`, `pad` as `'same'`/`'valid'`/number/explicit,
 * `dataFormat`, `dimRoundingMode`, and `inputShape` or `filterShape`) plus an optional
 * `dilations` attribute that tfjs's own kernels do not have: the gradient of a dilated
 * convolution. Strides and dilations may both exceed 1.
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { conv2DBackpropFilterViaConv2D } from "./_conv_kernels.ts";
 * tf.registerKernel({
 *   kernelName: "Conv2DBackpropFilter",
 *   backendName: "wasm",
 *   kernelFunc: conv2DBackpropFilterViaConv2D,
 * });
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { KernelScope } from "../kernel_swap.ts";

type Info = tf.TensorInfo;
type Pad = tf.Conv2DAttrs["pad"];
type Pair = [number, number];
type Shape4 = [number, number, number, number];

/** Attributes both kernels read; `dilations` is this project's extension. */
interface ConvGradAttrs {
  strides: number | Pair;
  pad: Pad;
  dataFormat?: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  dilations?: number | Pair;
}

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

function convInfo(
  inShape: Shape4,
  filterShape: Shape4,
  attrs: ConvGradAttrs,
): tf.backend_util.Conv2DInfo {
  const format = attrs.dataFormat === "NCHW" ? "channelsFirst" : "channelsLast";
  return tf.backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    format,
  );
}

function checkFloat(name: string, ...infos: Info[]): void {
  for (const info of infos) {
    if (info.dtype !== "float32") {
      throw new TypeError(`${name} on wasm expects float32 tensors, got ${info.dtype}`);
    }
  }
}

function checkDy(name: string, dy: Shape4, info: tf.backend_util.Conv2DInfo): void {
  const expected = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dy.join() !== expected.join()) {
    throw new RangeError(
      `${name}: dy has shape [${dy.join(", ")}] (NHWC), but the convolution's output is ` +
        `[${expected.join(", ")}]`,
    );
  }
}

/**
 * Padding and crop along one spatial axis for the input gradient. `dy` is dilated to `out · s`
 * samples (each sample followed by `s − 1` zeros), then convolved (stride 1, dilation `d`) with
 * the flipped kernel; `before`/`after` pad it so the result has `size` samples, and a negative
 * side becomes a crop of the result instead.
 */
function inputGradAxis(size: number, out: number, k: number, s: number, d: number, p: number) {
  const before = (k - 1) * d - p;
  const after = size - out * s + p;
  return { before: Math.max(before, 0), after: Math.max(after, 0), crop: Math.max(-before, 0) };
}

/**
 * Padding along one spatial axis for the filter gradient: the input, padded by `p` before, must
 * span `(out − 1)·s + (k − 1)·d + 1` samples; a surplus makes the result longer than `k`, and
 * the result is cut to `k`.
 */
function filterGradAxis(size: number, out: number, k: number, s: number, d: number, p: number) {
  const after = (out - 1) * s + (k - 1) * d + 1 - p - size;
  return { before: p, after: Math.max(after, 0) };
}

/**
 * The strided input gradient without multiplications by inserted zeros (dilation 1): input row
 * `y` receives only the kernel taps `a ≡ y + p (mod s)`, from `dy` rows `(y + p − a) / s`. So each
 * of the `sh · sw` output phases is a stride-1 `Conv2D` of `dy` with the sub-kernel
 * `W[r::s, r'::s]` (flipped, channels swapped), and the phases are interleaved into the input's
 * grid, cropped by the padding, in one JavaScript pass over the wasm heap.
 */
function polyphaseInputGrad(
  scope: KernelScope,
  dy: Info,
  filter: Info,
  info: tf.backend_util.Conv2DInfo,
): Info {
  const [n, oh, ow, co] = dy.shape as Shape4;
  const { inHeight: h, inWidth: w, inChannels: ci, filterHeight: kh, filterWidth: kw } = info;
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const { top, left } = info.padInfo;
  // Each phase yields rows q = 0 … ⌈(h + top) / s⌉ − 1 of the padded input's grid (and at least
  // dy's rows, the conv's natural size).
  const rows = Math.max(oh, Math.ceil((h + top) / sh));
  const cols = Math.max(ow, Math.ceil((w + left) / sw));
  const phases: (Info | undefined)[] = [];
  for (let ry = 0; ry < sh; ry++) {
    for (let rx = 0; rx < sw; rx++) {
      const th = Math.ceil((kh - ry) / sh), tw = Math.ceil((kw - rx) / sw);
      if (th <= 0 || tw <= 0) {
        phases.push(undefined); // no tap falls on this phase: its rows stay zero
        continue;
      }
      // sub[m, l, o, i] = W[ry + (th − 1 − m)·sh, rx + (tw − 1 − l)·sw, i, o]
      const sub = scope.compute([th, tw, co, ci], [filter], (out, [wv]) => {
        let at = 0;
        for (let m = 0; m < th; m++) {
          for (let l = 0; l < tw; l++) {
            const base = ((ry + (th - 1 - m) * sh) * kw + rx + (tw - 1 - l) * sw) * ci * co;
            for (let o = 0; o < co; o++) {
              for (let i = 0; i < ci; i++) out[at++] = wv[base + i * co + o];
            }
          }
        }
      });
      phases.push(
        scope.conv2d(dy, sub, [1, 1], [[th - 1, rows - oh], [tw - 1, cols - ow]], [1, 1]),
      );
    }
  }
  const present = phases.filter((p): p is Info => p !== undefined);
  return scope.compute([n, h, w, ci], present, (out, values) => {
    let next = 0;
    const sources = phases.map((p) => p === undefined ? undefined : values[next++]);
    let at = 0;
    for (let b = 0; b < n; b++) {
      for (let y = 0; y < h; y++) {
        const ry = (y + top) % sh, qy = (y + top - ry) / sh;
        for (let x = 0; x < w; x++, at += ci) {
          const rx = (x + left) % sw, qx = (x + left - rx) / sw;
          const src = sources[ry * sw + rx];
          if (src === undefined) {
            out.fill(0, at, at + ci);
            continue;
          }
          const from = ((b * rows + qy) * cols + qx) * ci;
          for (let c = 0; c < ci; c++) out[at + c] = src[from + c];
        }
      }
    }
  });
}

/**
 * `Conv2DBackpropInput` from `Conv2D`. The input gradient of a convolution with stride `s`,
 * dilation `d` and padding `p` is a convolution of `dy` with the kernel flipped in height and
 * width and its in/out channels swapped:
 *
 * - stride 1: one `Conv2D` of `dy` padded by `(k − 1)·d − p` before and up to the input's size
 *   after, at dilation `d`;
 * - stride > 1, dilation 1: `sh · sw` stride-1 `Conv2D`s, one per output phase, each with the
 *   sub-kernel of the taps that reach that phase, interleaved (see `polyphaseInputGrad`);
 * - stride and dilation > 1 (not reachable through `tf.conv2d`): one `Conv2D` of `dy` dilated by
 *   `s` (zeros inserted between samples), padded as for stride 1.
 *
 * A side whose padding would be negative is cropped from the result instead.
 *
 * @example
 * ```ts
 * tf.registerKernel({
 *   kernelName: "Conv2DBackpropInput",
 *   backendName: "wasm",
 *   kernelFunc: conv2DBackpropInputViaConv2D,
 * });
 * ```
 */
export const conv2DBackpropInputViaConv2D: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as unknown as ConvGradAttrs & { inputShape: Shape4 };
  checkFloat("Conv2DBackpropInput", dy, filter);
  const nchw = a.dataFormat === "NCHW";
  const info = convInfo(a.inputShape, filter.shape as Shape4, a);
  const scope = new KernelScope(backend as tf.KernelBackend, "wasm");
  return scope.finish(() => {
    const dyNHWC = nchw ? scope.transpose(dy, TO_NHWC) : dy;
    checkDy("Conv2DBackpropInput", dyNHWC.shape as Shape4, info);
    const [n, oh, ow, co] = dyNHWC.shape as Shape4;
    const [sh, sw] = [info.strideHeight, info.strideWidth];
    const [dh, dw] = [info.dilationHeight, info.dilationWidth];
    const { inHeight: h, inWidth: w, inChannels: ci, filterHeight: kh, filterWidth: kw } = info;
    if ((sh > 1 || sw > 1) && dh === 1 && dw === 1) {
      const dx = polyphaseInputGrad(scope, dyNHWC, filter, info);
      return nchw ? scope.transpose(dx, TO_NCHW) : dx;
    }
    // Flip the kernel spatially and swap its channels: [kh, kw, ci, co] → [kh, kw, co, ci].
    const flipped = scope.transpose(scope.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    // Dilate dy: [n, oh, 1, ow, 1, co] padded to [n, oh, sh, ow, sw, co].
    let dyd = dyNHWC;
    if (sh > 1 || sw > 1) {
      const spread = scope.pad(scope.reshape(dyNHWC, [n, oh, 1, ow, 1, co]), [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ]);
      dyd = scope.reshape(spread, [n, oh * sh, ow * sw, co]);
    }
    const y = inputGradAxis(h, oh, kh, sh, dh, info.padInfo.top);
    const x = inputGradAxis(w, ow, kw, sw, dw, info.padInfo.left);
    const dx = scope.slice(
      scope.conv2d(dyd, flipped, [1, 1], [[y.before, y.after], [x.before, x.after]], [dh, dw]),
      [0, y.crop, x.crop, 0],
      [n, h, w, ci],
    );
    return nchw ? scope.transpose(dx, TO_NCHW) : dx;
  });
};

/**
 * Transposes `x` viewed as the 3-D `dims` (adjacent dimensions merged: tfjs-wasm transposes
 * 3-D tensors faster than 4-D ones) and gives the result `shape`.
 */
function permute3(
  scope: KernelScope,
  x: Info,
  dims: [number, number, number],
  perm: [number, number, number],
  shape: number[],
): Info {
  return scope.reshape(scope.transpose(scope.reshape(x, dims), perm), shape);
}

/**
 * Padding along one spatial axis for the filter gradient with `dy` as the convolution's input
 * (stride 1 only): `before = (k − 1)·d − p`, `after = size − out + p`; `undefined` when either
 * is negative.
 */
function flippedFilterGradAxis(size: number, out: number, k: number, d: number, p: number) {
  const before = (k - 1) * d - p, after = size - out + p;
  return before >= 0 && after >= 0 ? { before, after } : undefined;
}

/**
 * `Conv2DBackpropFilter` as one `Conv2D` with batch and channels exchanged. The filter gradient
 * `dW[a, b, i, o] = Σ x[n, y·s + a·d − p, …, i] · dy[n, y, …, o]` is a correlation of `x` and
 * `dy` over batch and space; one of the two becomes the convolution's input, with the other's
 * channels as its batch, and the other its kernel, with the batch as the summed channels:
 *
 * - `x` as input: `x` transposed to `[in, h, w, batch]`, `dy` to the kernel `[oh, ow, batch,
 *   out]`, at stride `d` and dilation `s` (the forward's dilation and stride exchanged), padded by
 *   the forward's padding; the `[in, kh, kw, out]` result is transposed to `[kh, kw, in, out]`.
 * - `dy` as input (stride 1, used when `out > in`: XNNPACK is faster with the larger channel
 *   count as batch): `dy` transposed to `[out, oh, ow, batch]`, `x` to the kernel `[h, w, batch,
 *   in]`, at stride `d`, padded by `(k − 1)·d − p` before and `h − oh + p` after; the result
 *   `[out, kh, kw, in]` comes flipped in height and width and is reversed and transposed.
 *
 * @example
 * ```ts
 * tf.registerKernel({
 *   kernelName: "Conv2DBackpropFilter",
 *   backendName: "wasm",
 *   kernelFunc: conv2DBackpropFilterViaConv2D,
 * });
 * ```
 */
export const conv2DBackpropFilterViaConv2D: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as unknown as ConvGradAttrs & { filterShape: Shape4 };
  checkFloat("Conv2DBackpropFilter", x, dy);
  const nchw = a.dataFormat === "NCHW";
  const info = convInfo(x.shape as Shape4, a.filterShape, a);
  const scope = new KernelScope(backend as tf.KernelBackend, "wasm");
  return scope.finish(() => {
    const xNHWC = nchw ? scope.transpose(x, TO_NHWC) : x;
    const dyNHWC = nchw ? scope.transpose(dy, TO_NHWC) : dy;
    checkDy("Conv2DBackpropFilter", dyNHWC.shape as Shape4, info);
    const { batchSize: n, outHeight: oh, outWidth: ow, outChannels: co } = info;
    const [sh, sw] = [info.strideHeight, info.strideWidth];
    const [dh, dw] = [info.dilationHeight, info.dilationWidth];
    const { inHeight: h, inWidth: w, inChannels: ci, filterHeight: kh, filterWidth: kw } = info;
    const { top, left, bottom, right } = info.padInfo;
    if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && top + left + bottom + right === 0) {
      // 1×1: a single matrix product over all n·h·w positions, run as a 1×1 Conv2D whose input
      // channels are those positions (XNNPACK then sees one long reduction).
      const m = n * h * w;
      // The operand with fewer channels is the one transposed into the batch (less data moved);
      // when that is dy, the [co, ci] product is transposed at the end.
      const swapped = ci > co;
      const [a, ca, b, cb] = swapped ? [dyNHWC, co, xNHWC, ci] : [xNHWC, ci, dyNHWC, co];
      const input = scope.swapOuterInner(a, [m, 1, ca], [ca, 1, 1, m]);
      const none: [[number, number], [number, number]] = [[0, 0], [0, 0]];
      const g = scope.reshape(
        scope.conv2d(input, scope.reshape(b, [1, 1, m, cb]), [1, 1], none, [1, 1]),
        [ca, cb],
      );
      return scope.reshape(swapped ? scope.transpose(g, [1, 0]) : g, [1, 1, ci, co]);
    }
    if (co > ci && sh === 1 && sw === 1) {
      const y = flippedFilterGradAxis(h, oh, kh, dh, top);
      const z = flippedFilterGradAxis(w, ow, kw, dw, left);
      if (y && z) {
        const input = scope.swapOuterInner(dyNHWC, [n, oh * ow, co], [co, oh, ow, n]);
        const kernel = permute3(scope, xNHWC, [n, h * w, ci], [1, 0, 2], [h, w, n, ci]);
        const g = scope.conv2d(input, kernel, [dh, dw], [[y.before, y.after], [
          z.before,
          z.after,
        ]], [1, 1]);
        return scope.transpose(scope.reverse(g, [1, 2]), [1, 2, 3, 0]);
      }
    }
    const input = scope.swapOuterInner(xNHWC, [n, h * w, ci], [ci, h, w, n]);
    const kernel = permute3(scope, dyNHWC, [n, oh * ow, co], [1, 0, 2], [oh, ow, n, co]);
    const y = filterGradAxis(h, oh, kh, sh, dh, top);
    const z = filterGradAxis(w, ow, kw, sw, dw, left);
    const g = scope.conv2d(input, kernel, [dh, dw], [[y.before, y.after], [z.before, z.after]], [
      sh,
      sw,
    ]);
    const cut = scope.slice(g, [0, 0, 0, 0], [ci, kh, kw, co]);
    return scope.transpose(cut, [1, 2, 0, 3]);
  });
};
