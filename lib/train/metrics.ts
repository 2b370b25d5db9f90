/**
 * Classification metrics and summary statistics: confusion matrix, per-class accuracy, mean and
 * standard deviation, and the difference of two means with its standard error.
 *
 * @example
 * ```ts
 * import { confusionMatrix, perClassAccuracy } from "./metrics.ts";
 * const m = confusionMatrix([0, 1, 1], [0, 1, 0], 2); // [[1, 0], [1, 1]]
 * perClassAccuracy(m); // [1, 0.5]
 * ```
 * @module
 */

/**
 * Confusion matrix `m[true][predicted]` of integer labels in `0 … classes − 1`.
 *
 * @example
 * ```ts
 * confusionMatrix([2], [0], 3); // [[0, 0, 0], [0, 0, 0], [1, 0, 0]]
 * ```
 */
export function confusionMatrix(
  labels: ArrayLike<number>,
  predictions: ArrayLike<number>,
  classes: number,
): number[][] {
  if (labels.length !== predictions.length) {
    throw new RangeError(`${labels.length} labels but ${predictions.length} predictions`);
  }
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i], p = predictions[i];
    if (!(t >= 0 && t < classes && p >= 0 && p < classes)) {
      throw new RangeError(
        `label ${t} or prediction ${p} at index ${i} is outside 0…${classes - 1}`,
      );
    }
    m[t][p]++;
  }
  return m;
}

/**
 * Adds confusion matrix `b` into `a` (in place) and returns `a`.
 *
 * @example
 * ```ts
 * addConfusion([[1, 0], [0, 1]], [[0, 1], [0, 0]]); // [[1, 1], [0, 1]]
 * ```
 */
export function addConfusion(a: number[][], b: number[][]): number[][] {
  a.forEach((row, i) => row.forEach((_, j) => row[j] += b[i][j]));
  return a;
}

/**
 * Accuracy per true class (row): correct / row total; `NaN` for a class with no samples.
 *
 * @example
 * ```ts
 * perClassAccuracy([[3, 1], [0, 0]]); // [0.75, NaN]
 * ```
 */
export function perClassAccuracy(confusion: number[][]): number[] {
  return confusion.map((row, i) => {
    const total = row.reduce((s, v) => s + v, 0);
    return total === 0 ? Number.NaN : row[i] / total;
  });
}

/**
 * Overall accuracy: trace / total.
 *
 * @example
 * ```ts
 * accuracy([[3, 1], [1, 5]]); // 0.8
 * ```
 */
export function accuracy(confusion: number[][]): number {
  let correct = 0, total = 0;
  confusion.forEach((row, i) =>
    row.forEach((v, j) => {
      total += v;
      if (i === j) correct += v;
    })
  );
  return total === 0 ? Number.NaN : correct / total;
}

/**
 * Mean and sample standard deviation (n − 1; 0 for a single value).
 *
 * @example
 * ```ts
 * meanStd([1, 2, 3]); // { mean: 2, std: 1, n: 3 }
 * ```
 */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/**
 * Standard error of a proportion `p` measured on `n` samples: √(p(1−p)/n).
 *
 * @example
 * ```ts
 * proportionStandardError(0.5, 100); // 0.05
 * ```
 */
export function proportionStandardError(p: number, n: number): number {
  return n > 0 ? Math.sqrt(p * (1 - p) / n) : Number.NaN;
}
