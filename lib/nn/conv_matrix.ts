/**
 * The convolution matrix: a single-channel 2-D convolution written as a matrix C acting on the
 * row-major flattened input, so that `conv(x) = C·vec(x)` and the transposed convolution with the
 * same kernel is `Cᵀ·vec(y)`. This is where the name "transposed convolution" comes from.
 *
 * @example
 * ```ts
 * import { convMatrix, matVec } from "./conv_matrix.ts";
 * const { matrix, outH, outW } = convMatrix([[1, 0], [0, 1]], 3, 3);
 * // matrix is 4 × 9 (2×2 outputs, 3×3 inputs); outH = outW = 2
 * matVec(matrix, [1, 2, 3, 4, 5, 6, 7, 8, 9]); // [6, 8, 12, 14]
 * ```
 * @module
 */
import { convOutputSize } from "./shapes.ts";

/** Stride, padding and dilation of the convolution (each default as in PyTorch). */
export interface ConvMatrixOptions {
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** Dilation (default 1). */
  dilation?: number;
}

/** A convolution matrix and the output size it produces. */
export interface ConvMatrix {
  /** `outH·outW` rows by `inH·inW` columns. */
  matrix: number[][];
  /** Output height. */
  outH: number;
  /** Output width. */
  outW: number;
}

/**
 * Builds the convolution matrix of a `kh × kw` kernel (PyTorch's cross-correlation, as `Conv2d`
 * computes) applied to an `inH × inW` single-channel input.
 *
 * @example
 * ```ts
 * convMatrix([[1, 2, 3], [4, 5, 6], [7, 8, 9]], 5, 5, { padding: 1 }).matrix.length; // 25
 * ```
 */
export function convMatrix(
  kernel: readonly (readonly number[])[],
  inH: number,
  inW: number,
  options: ConvMatrixOptions = {},
): ConvMatrix {
  const kh = kernel.length;
  const kw = kernel[0]?.length ?? 0;
  if (kh === 0 || kw === 0 || kernel.some((row) => row.length !== kw)) {
    throw new RangeError("kernel must be a non-empty rectangular array of rows");
  }
  const { stride = 1, padding = 0, dilation = 1 } = options;
  const outH = convOutputSize(inH, { kernelSize: kh, stride, padding, dilation });
  const outW = convOutputSize(inW, { kernelSize: kw, stride, padding, dilation });
  const matrix = Array.from({ length: outH * outW }, () => new Array<number>(inH * inW).fill(0));
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const row = matrix[oy * outW + ox];
      for (let a = 0; a < kh; a++) {
        const iy = oy * stride - padding + a * dilation;
        if (iy < 0 || iy >= inH) continue;
        for (let b = 0; b < kw; b++) {
          const ix = ox * stride - padding + b * dilation;
          if (ix >= 0 && ix < inW) row[iy * inW + ix] += kernel[a][b];
        }
      }
    }
  }
  return { matrix, outH, outW };
}

/**
 * Transpose of a matrix given as rows.
 *
 * @example
 * ```ts
 * transpose([[1, 2, 3]]); // [[1], [2], [3]]
 * ```
 */
export function transpose(matrix: readonly (readonly number[])[]): number[][] {
  const cols = matrix[0]?.length ?? 0;
  return Array.from({ length: cols }, (_, j) => matrix.map((row) => row[j]));
}

/**
 * Matrix–vector product `M·v`.
 *
 * @example
 * ```ts
 * matVec([[1, 2], [3, 4]], [1, 1]); // [3, 7]
 * ```
 */
export function matVec(matrix: readonly (readonly number[])[], v: readonly number[]): number[] {
  return matrix.map((row) => {
    if (row.length !== v.length) {
      throw new RangeError(
        `matrix has ${row.length} columns but the vector has ${v.length} entries`,
      );
    }
    return row.reduce((sum, m, j) => sum + m * v[j], 0);
  });
}
