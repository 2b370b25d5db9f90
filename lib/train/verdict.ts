/**
 * The one decision rule behind every conclusion about a difference between two arms: it
 * **differs** (the 95 % interval excludes 0), it is **equivalent** within a stated margin (the
 * 90 % interval lies inside ±margin, two one-sided tests), it is **inconclusive** (neither), or
 * its uncertainty **cannot be estimated** (fewer than two samples, a standard error of 0 — the
 * same difference on every seed, or two accuracies of 0 or 1 — or numbers that are not finite).
 * An interval of width 0 is not evidence of anything, so such a difference is never called
 * "differs" or "equivalent". Callers keep their own wording; the decision and its numbers come
 * from here.
 *
 * @example
 * ```ts
 * import { classifyDifference } from "./verdict.ts";
 * classifyDifference([0.02, 0.02, 0.02]).kind; // "cannot estimate": the same on every seed
 * classifyDifference([0.01, 0.03, 0.02], 0.01).kind; // "inconclusive"
 * ```
 * @module
 */
import {
  type DifferenceEstimate,
  type EquivalenceTest,
  equivalenceTest,
  meanEstimate,
} from "./stats.ts";

/**
 * A standard error at or below this (relative to the difference when that exceeds 1) counts as 0:
 * identical per-seed differences of accuracies, computed in float64, differ by rounding (about
 * 1e-17), far below anything a test set can resolve (one image in 10⁶ is 1e-6).
 */
export const ZERO_SE = 1e-9;

/** The four decisions {@linkcode classifyDifference} can reach. */
export type VerdictKind = "differs" | "equivalent" | "inconclusive" | "cannot estimate";

/** Why a difference's uncertainty could not be estimated. */
export type NoEstimateReason = "too few samples" | "zero standard error" | "not finite";

/** A decision about a difference, with the numbers it rests on. */
export interface Verdict {
  /** The decision. */
  kind: VerdictKind;
  /** The estimate; absent only when there were too few samples to make one. */
  estimate?: DifferenceEstimate;
  /** The equivalence test against the margin, when a margin was given and se > 0. */
  equivalence?: EquivalenceTest;
  /** For "differs": +1 when the difference is positive, −1 when negative. */
  sign?: 1 | -1;
  /**
   * For "differs": whether it is also shown smaller than the margin (the 90 % interval inside
   * ±margin), i.e. a real but practically negligible difference.
   */
  withinMargin?: boolean;
  /** For "cannot estimate": why. */
  reason?: NoEstimateReason;
  /** Number of samples, when the input was per-unit differences. */
  samples?: number;
}

/**
 * Classifies a difference (see the module doc). `d` is either an estimate (e.g. from
 * `pairedDifference` or `proportionDifference`) or the per-unit differences themselves (one per
 * seed: a one-sample t estimate, which needs at least two). `margin` (a fraction, > 0) enables
 * the "equivalent" decision; without it a non-significant difference is "inconclusive".
 *
 * @example
 * ```ts
 * const v = classifyDifference(differenceEstimate({ mean: 0.05, se: 0.01, df: 4 }));
 * v.kind; // "differs"
 * v.sign; // 1
 * classifyDifference([0.01]).reason; // "too few samples"
 * ```
 */
export function classifyDifference(
  d: DifferenceEstimate | readonly number[],
  margin?: number,
): Verdict {
  let estimate: DifferenceEstimate, samples: number | undefined;
  if (Array.isArray(d)) {
    samples = d.length;
    if (samples < 2) return { kind: "cannot estimate", reason: "too few samples", samples };
    if (!d.every(Number.isFinite)) {
      return { kind: "cannot estimate", reason: "not finite", samples };
    }
    estimate = meanEstimate([...d]);
  } else {
    estimate = d as DifferenceEstimate;
  }
  const base = samples === undefined ? { estimate } : { estimate, samples };
  if (!Number.isFinite(estimate.mean) || !Number.isFinite(estimate.se)) {
    return { kind: "cannot estimate", reason: "not finite", ...base };
  }
  // A zero standard error gives an interval of width 0 around any difference: it would
  // "exclude 0" or fit any margin without measuring anything.
  if (!(estimate.se > ZERO_SE * Math.max(1, Math.abs(estimate.mean)))) {
    return { kind: "cannot estimate", reason: "zero standard error", ...base };
  }
  const equivalence = margin === undefined ? undefined : equivalenceTest(estimate, margin);
  const withEq = equivalence ? { ...base, equivalence } : base;
  if (estimate.significant) {
    return {
      kind: "differs",
      sign: estimate.mean > 0 ? 1 : -1,
      withinMargin: equivalence?.equivalent ?? false,
      ...withEq,
    };
  }
  return { kind: equivalence?.equivalent ? "equivalent" : "inconclusive", ...withEq };
}
