/**
 * Inference on a difference between two arms: its confidence interval, the smallest difference
 * the experiment could have detected, and an equivalence test against a stated margin (two
 * one-sided tests). Quantiles come from stdlib's Student t and normal distributions.
 *
 * @example
 * ```ts
 * import { differenceEstimate, equivalenceTest } from "./stats.ts";
 * const d = differenceEstimate({ mean: 0.02, se: 0.01, df: 4 });
 * d.ci95; // [-0.0078, 0.0478]: 0 is inside, not significant at 5 %
 * equivalenceTest(d, 0.05).equivalent; // true: the 90 % interval lies inside ±0.05
 * ```
 * @module
 */
import tQuantile from "@stdlib/stats-base-dists-t-quantile";
import normalQuantile from "@stdlib/stats-base-dists-normal-quantile";

/** Power at which {@linkcode DifferenceEstimate.detectable} is computed. */
export const DETECTION_POWER = 0.8;

/** A difference of means with its standard error and what follows from them at α = 5 %. */
export interface DifferenceEstimate {
  /** The estimated difference. */
  mean: number;
  /** Its standard error. */
  se: number;
  /** Degrees of freedom of the t distribution; `Infinity` for a normal approximation. */
  df: number;
  /** The two-sided 95 % confidence interval. */
  ci95: [number, number];
  /** Whether the 95 % interval excludes 0 (a two-sided test at 5 %). */
  significant: boolean;
  /**
   * The smallest true difference (in absolute value) this experiment detects with 80 % power in
   * a two-sided test at 5 %: (q₀.₉₇₅ + q₀.₈)·se.
   */
  detectable: number;
}

/** The quantile `p` of Student's t with `df` degrees of freedom (the normal for `Infinity`). */
function quantile(p: number, df: number): number {
  if (df === Infinity) return normalQuantile(p, 0, 1);
  if (!(df > 0)) throw new RangeError(`degrees of freedom must be > 0, got ${df}`);
  return tQuantile(p, df);
}

/**
 * The 95 % interval, significance and detectable difference of a difference `mean` with standard
 * error `se`; `df` is `n − 1` for a paired t test over `n` pairs, `Infinity` for a normal
 * approximation (e.g. two proportions on one test set).
 *
 * @example
 * ```ts
 * differenceEstimate({ mean: 0.043, se: 0.038, df: Infinity }).ci95; // [-0.0315, 0.1175]
 * ```
 */
export function differenceEstimate(
  { mean, se, df }: { mean: number; se: number; df: number },
): DifferenceEstimate {
  if (!(se >= 0)) throw new RangeError(`standard error must be ≥ 0, got ${se}`);
  const q = quantile(0.975, df);
  const ci95: [number, number] = [mean - q * se, mean + q * se];
  return {
    mean,
    se,
    df,
    ci95,
    significant: ci95[0] > 0 || ci95[1] < 0,
    detectable: (q + quantile(DETECTION_POWER, df)) * se,
  };
}

/**
 * The paired difference `b[i] − a[i]` over matched runs (e.g. the same seed, hence the same data
 * order), as a t estimate with `n − 1` degrees of freedom. Needs at least two pairs.
 *
 * @example
 * ```ts
 * pairedDifference([0.60, 0.61, 0.62], [0.63, 0.63, 0.66]).mean; // 0.03
 * ```
 */
export function pairedDifference(a: number[], b: number[]): DifferenceEstimate {
  if (a.length !== b.length) {
    throw new RangeError(`paired samples need equal lengths, got ${a.length} and ${b.length}`);
  }
  return meanEstimate(a.map((v, i) => b[i] - v));
}

/**
 * The mean of per-unit differences or contrasts `d` (one per seed), as a one-sample t estimate
 * with `n − 1` degrees of freedom. Needs at least two values.
 *
 * @example
 * ```ts
 * meanEstimate([0.03, 0.02, 0.04]).mean; // 0.03
 * ```
 */
export function meanEstimate(d: number[]): DifferenceEstimate {
  const n = d.length;
  if (n < 2) throw new RangeError(`a paired difference needs at least 2 pairs, got ${n}`);
  const mean = d.reduce((s, v) => s + v, 0) / n;
  const sd = Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
  return differenceEstimate({ mean, se: sd / Math.sqrt(n), df: n - 1 });
}

/** Per-seed values of the four cells of a 2×2 design, `a<i>b<j>` = factor A at level i, B at j. */
export interface TwoByTwo {
  a0b0: number[];
  a0b1: number[];
  a1b0: number[];
  a1b1: number[];
}

/** Main effects and interaction of a 2×2 design, each a paired estimate over seeds. */
export interface TwoByTwoEffects {
  /** Main effect of A: level 1 − level 0, averaged over B's two levels. */
  a: DifferenceEstimate;
  /** Main effect of B: level 1 − level 0, averaged over A's two levels. */
  b: DifferenceEstimate;
  /** Interaction: (A's effect at B = 1) − (A's effect at B = 0). */
  interaction: DifferenceEstimate;
}

/**
 * The two main effects and the interaction of a 2×2 design whose four cells were measured on the
 * same seeds (value `i` of every cell comes from seed `i`): each contrast is computed per seed
 * and estimated with {@linkcode meanEstimate}, so seed-to-seed variation shared by the cells
 * cancels, as in a paired test.
 *
 * @example
 * ```ts
 * const e = twoByTwoEffects({ a0b0: [0.5, 0.52], a0b1: [0.6, 0.61], a1b0: [0.51, 0.55], a1b1: [0.62, 0.6] });
 * e.b.mean; // 0.0875: B raises accuracy by about 9 pp
 * ```
 */
export function twoByTwoEffects(y: TwoByTwo): TwoByTwoEffects {
  const n = y.a0b0.length;
  for (const [cell, values] of Object.entries(y)) {
    if (values.length !== n) {
      throw new RangeError(
        `every cell needs the same seeds: a0b0 has ${n}, ${cell} ${values.length}`,
      );
    }
  }
  const per = (f: (i: number) => number) => meanEstimate(Array.from({ length: n }, (_, i) => f(i)));
  return {
    a: per((i) => (y.a1b0[i] + y.a1b1[i] - y.a0b0[i] - y.a0b1[i]) / 2),
    b: per((i) => (y.a0b1[i] + y.a1b1[i] - y.a0b0[i] - y.a1b0[i]) / 2),
    interaction: per((i) => y.a1b1[i] - y.a1b0[i] - (y.a0b1[i] - y.a0b0[i])),
  };
}

/**
 * The difference `pb − pa` of two accuracies measured on `n` test images each, with the normal
 * approximation of the binomial standard errors (treated as independent, which is conservative
 * for two classifiers scored on the same images when their errors are positively correlated).
 *
 * @example
 * ```ts
 * proportionDifference(0.293, 0.337, 300).se; // ≈ 0.0379
 * ```
 */
export function proportionDifference(pa: number, pb: number, n: number): DifferenceEstimate {
  if (!(n > 0)) throw new RangeError(`test set size must be > 0, got ${n}`);
  const se = Math.hypot(Math.sqrt(pa * (1 - pa) / n), Math.sqrt(pb * (1 - pb) / n));
  return differenceEstimate({ mean: pb - pa, se, df: Infinity });
}

/** The outcome of two one-sided tests for equivalence within ±margin at α = 5 %. */
export interface EquivalenceTest {
  /** The margin tested. */
  margin: number;
  /** The 90 % interval, the one TOST at 5 % compares with the margin. */
  ci90: [number, number];
  /** Whether the 90 % interval lies strictly inside (−margin, +margin). */
  equivalent: boolean;
}

/**
 * Two one-sided tests (TOST) at α = 5 %: the difference is declared equivalent to 0 within
 * `margin` when its 90 % interval lies inside (−margin, margin). A non-significant difference
 * alone never shows equivalence.
 *
 * @example
 * ```ts
 * const d = differenceEstimate({ mean: 0.002, se: 0.004, df: Infinity });
 * equivalenceTest(d, 0.01).equivalent; // true (90 % interval −0.0046…0.0086)
 * ```
 */
export function equivalenceTest(d: DifferenceEstimate, margin: number): EquivalenceTest {
  if (!(margin > 0)) throw new RangeError(`equivalence margin must be > 0, got ${margin}`);
  const q = quantile(0.95, d.df);
  const ci90: [number, number] = [d.mean - q * d.se, d.mean + q * d.se];
  return { margin, ci90, equivalent: ci90[0] > -margin && ci90[1] < margin };
}
