/**
 * How the views write accuracies and their differences: `61.3%`, `+1.2` (percentage points),
 * `−0.4 to +2.8 pp`.
 *
 * @module
 */

/** A fraction as a percentage: `pct(0.613)` is `61.3%`. */
export const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;

/** A difference of fractions in signed percentage points: `pp(-0.004)` is `−0.4`. */
export const pp = (v: number): string => `${v >= 0 ? "+" : "−"}${Math.abs(100 * v).toFixed(1)}`;

/** An interval of differences: `ppInterval([-0.004, 0.028])` is `−0.4 to +2.8 pp`. */
export const ppInterval = ([lo, hi]: [number, number]): string => `${pp(lo)} to ${pp(hi)} pp`;
