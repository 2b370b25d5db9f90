/**
 * Convolution and transposed convolution written straight from their definitions, with plain
 * loops on nested arrays in PyTorch's layouts (NCHW tensors, PyTorch weight shapes). Slow and
 * obviously correct: the yardstick the tfjs layers are measured against, and the clearest way to
 * read what a transposed convolution does.
 *
 * - convolution: each output pixel is the sum of the kernel times the window of the (zero-padded)
 *   input under it;
 * - transposed convolution: each input pixel stamps a copy of the kernel, scaled by its value, onto
 *   the output canvas, `stride` apart; `padding` then crops that many rows/columns from each side,
 *   and `outputPadding` adds rows/columns at the bottom/right that no stamp reaches.
 *
 * @example
 * ```ts
 * import { convTranspose2dReference } from "./reference.ts";
 * // one 1×1 input pixel of value 2 stamps the 2×2 kernel, doubled:
 * convTranspose2dReference([[[[2]]]], [[[[1, 2], [3, 4]]]]); // [[[[2, 4], [6, 8]]]]
 * ```
 * @module
 */

/** A 4-D nested array (`[n][c][h][w]` for tensors, PyTorch layout for weights). */
export type Array4D = number[][][][];

/** Geometry of a reference convolution; numbers apply to both spatial dimensions. */
export interface ReferenceConvOptions {
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding (default 0). */
  padding?: number;
  /** Dilation (default 1). */
  dilation?: number;
  /** Bias per output channel. */
  bias?: number[];
}

function zeros4(n: number, c: number, h: number, w: number): Array4D {
  return Array.from(
    { length: n },
    () => Array.from({ length: c }, () => Array.from({ length: h }, () => new Array(w).fill(0))),
  );
}

/**
 * `Conv2d` by definition. `x` is `[n][in][h][w]`, `weight` is `[out][in][kh][kw]`.
 *
 * @example
 * ```ts
 * conv2dReference([[[[1, 2], [3, 4]]]], [[[[1, 1], [1, 1]]]]); // [[[[10]]]]
 * ```
 */
export function conv2dReference(
  x: Array4D,
  weight: Array4D,
  { stride = 1, padding = 0, dilation = 1, bias }: ReferenceConvOptions = {},
): Array4D {
  const [inH, inW] = [x[0][0].length, x[0][0][0].length];
  const [kh, kw] = [weight[0][0].length, weight[0][0][0].length];
  const outH = Math.floor((inH + 2 * padding - dilation * (kh - 1) - 1) / stride) + 1;
  const outW = Math.floor((inW + 2 * padding - dilation * (kw - 1) - 1) / stride) + 1;
  const y = zeros4(x.length, weight.length, outH, outW);
  for (let n = 0; n < x.length; n++) {
    for (let co = 0; co < weight.length; co++) {
      for (let oy = 0; oy < outH; oy++) {
        for (let ox = 0; ox < outW; ox++) {
          let sum = bias ? bias[co] : 0;
          for (let ci = 0; ci < weight[co].length; ci++) {
            for (let a = 0; a < kh; a++) {
              const iy = oy * stride - padding + a * dilation;
              if (iy < 0 || iy >= inH) continue;
              for (let b = 0; b < kw; b++) {
                const ix = ox * stride - padding + b * dilation;
                if (ix >= 0 && ix < inW) sum += x[n][ci][iy][ix] * weight[co][ci][a][b];
              }
            }
          }
          y[n][co][oy][ox] = sum;
        }
      }
    }
  }
  return y;
}

/**
 * `ConvTranspose2d` by definition. `x` is `[n][in][h][w]`, `weight` is `[in][out][kh][kw]`.
 *
 * @example
 * ```ts
 * convTranspose2dReference([[[[1, 1]]]], [[[[1, 1]]]], { stride: 2 }); // [[[[1, 1, 1, 1]]]]
 * ```
 */
export function convTranspose2dReference(
  x: Array4D,
  weight: Array4D,
  { stride = 1, padding = 0, dilation = 1, bias, outputPadding = 0 }: ReferenceConvOptions & {
    outputPadding?: number;
  } = {},
): Array4D {
  const [inH, inW] = [x[0][0].length, x[0][0][0].length];
  const outChannels = weight[0].length;
  const [kh, kw] = [weight[0][0].length, weight[0][0][0].length];
  // The canvas every stamp lands on, before cropping `padding` from each side.
  const fullH = (inH - 1) * stride + dilation * (kh - 1) + 1;
  const fullW = (inW - 1) * stride + dilation * (kw - 1) + 1;
  const canvas = zeros4(x.length, outChannels, fullH, fullW);
  for (let n = 0; n < x.length; n++) {
    for (let ci = 0; ci < x[n].length; ci++) {
      for (let iy = 0; iy < inH; iy++) {
        for (let ix = 0; ix < inW; ix++) {
          const v = x[n][ci][iy][ix];
          for (let co = 0; co < outChannels; co++) {
            for (let a = 0; a < kh; a++) {
              for (let b = 0; b < kw; b++) {
                canvas[n][co][iy * stride + a * dilation][ix * stride + b * dilation] += v *
                  weight[ci][co][a][b];
              }
            }
          }
        }
      }
    }
  }
  const outH = fullH - 2 * padding + outputPadding;
  const outW = fullW - 2 * padding + outputPadding;
  const y = zeros4(x.length, outChannels, outH, outW);
  for (let n = 0; n < x.length; n++) {
    for (let co = 0; co < outChannels; co++) {
      for (let oy = 0; oy < outH; oy++) {
        for (let ox = 0; ox < outW; ox++) {
          const row = canvas[n][co][oy + padding];
          y[n][co][oy][ox] = (row?.[ox + padding] ?? 0) + (bias ? bias[co] : 0);
        }
      }
    }
  }
  return y;
}
