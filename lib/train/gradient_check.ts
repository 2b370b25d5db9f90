/**
 * A check that two arms compute the same gradients at the first step of a run, for arms that
 * must compute the same function from the same start (the experiment's control arm against the
 * conv network). Losses cannot show it: a filter gradient off by 1 % moves the loss of step 2 by
 * about 1e-7 relative, the size of float rounding, and the gap it opens later looks like
 * rounding that training amplified. The gradients after the first backward pass show it at once.
 *
 * The measure: the largest `|g_ref − map(g_arm)|` over every entry of every parameter, divided by
 * the largest `|g_ref|` over the same (one scale for the whole network). Not per parameter: in
 * notebook 02's DenseNet the transition layers' BatchNorm parameters have gradients of about 1e-7
 * of the largest, numerically zero, so on a backend whose input gradients round differently for
 * the two arms (WebGPU) their own relative gap is of order 1 from rounding alone. Every other
 * parameter's largest gradient is at least 6 % of the network's, so a kernel 1 % off in any of
 * them still shows as a gap of 6e-4 or more. Measured on that DenseNet (32×32 images, batches of
 * 16 and 64): exactly 0 on the wasm kernels, 1.0e-6 to 2.0e-6 with oneDNN (whose filter gradients
 * sum in a different order for the two arms), 1.7e-6 on WebGPU's software adapter (llvmpipe);
 * {@linkcode GRADIENT_TOLERANCE} is 1e-5.
 *
 * @example
 * ```ts
 * import { train } from "./trainer.ts";
 * const results = await train({
 *   arms: [{ name: "conv", model: conv }, { name: "control", model: control }],
 *   data,
 *   hyper,
 *   gradientChecks: [{ reference: "conv", arm: "control", map: transposedToConv(control) }],
 * }); // throws GradientMismatchError when the gradients differ; else results.gradientChecks
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { variableToWeightName } from "./_variables.ts";

/** Largest relative gradient gap (see the module doc) that still counts as the same gradients. */
export const GRADIENT_TOLERANCE = 1e-5;

/** Two arms whose first-step gradients must agree. */
export interface GradientCheckSpec {
  /** The reference arm ("conv"). */
  reference: string;
  /** The arm checked against it ("control"). */
  arm: string;
  /**
   * Maps a gradient of `arm`'s weight `weight` (name as `"lowconv/kernel"`) to the reference's
   * parameterisation; identity when unset. A returned tensor other than `value` is disposed.
   */
  map?: (weight: string, value: tf.Tensor) => tf.Tensor;
  /** Tolerance (default {@linkcode GRADIENT_TOLERANCE}). */
  tolerance?: number;
}

/** The outcome of one check, as recorded in the run's results. */
export interface GradientCheck {
  /** The reference arm. */
  reference: string;
  /** The arm checked. */
  arm: string;
  /** The step (1-based, of epoch 1) whose gradients were compared. */
  step: number;
  /** Parameters compared. */
  parameters: number;
  /** The relative gap (see the module doc); Infinity for a NaN gradient. */
  maxRelDiff: number;
  /** The parameter with the largest absolute gap. */
  worstParameter: string;
  /** The tolerance applied. */
  tolerance: number;
  /** Whether `maxRelDiff` ≤ `tolerance`. */
  passed: boolean;
}

/** An arm's first-step gradients differed from its reference's: a kernel or weight copy is wrong. */
export class GradientMismatchError extends Error {
  /** The failed check. */
  readonly check: GradientCheck;
  constructor(check: GradientCheck) {
    super(gradientCheckMessage(check));
    this.name = "GradientMismatchError";
    this.check = check;
  }
}

/**
 * What a check found, in one sentence.
 *
 * @example
 * ```ts
 * gradientCheckMessage(check);
 * // "the control arm's gradients differ from the conv arm's by 1.0e-2 at the first step …"
 * ```
 */
export function gradientCheckMessage(c: GradientCheck): string {
  const gap = `${c.maxRelDiff.toExponential(1)} (largest gap relative to the largest gradient, ` +
    `in ${c.worstParameter}; tolerance ${
      c.tolerance.toExponential(0)
    }, ${c.parameters} parameters)`;
  return c.passed
    ? `the ${c.arm} arm's gradients equal the ${c.reference} arm's at the first step to within ${gap}`
    : `the ${c.arm} arm's gradients differ from the ${c.reference} arm's by ${gap} at the first ` +
      `step: a kernel (or the weight copy) is wrong; this is not rounding drift`;
}

/**
 * Collects the gradients of the arms named in `specs` during one step and compares them. Used by
 * the trainer at the first step of a fresh run.
 *
 * @example
 * ```ts
 * const recorder = new GradientRecorder(specs, arms);
 * recorder.record("conv", grads); // from tf.variableGrads, for each arm
 * const checks = await recorder.finish(); // disposes what it kept
 * ```
 */
export class GradientRecorder {
  readonly #specs: GradientCheckSpec[];
  readonly #names = new Map<string, Map<string, string>>();
  readonly #kept = new Map<string, Map<string, tf.Tensor>>();

  /**
   * @example
   * ```ts
   * new GradientRecorder([{ reference: "conv", arm: "control" }], arms);
   * ```
   */
  constructor(specs: GradientCheckSpec[], arms: { name: string; model: tf.LayersModel }[]) {
    for (const s of specs) {
      for (const name of [s.reference, s.arm]) {
        const arm = arms.find((a) => a.name === name);
        if (!arm) throw new RangeError(`gradient check names an unknown arm "${name}"`);
        this.#names.set(name, variableToWeightName(arm.model));
      }
    }
    this.#specs = specs;
  }

  /** Whether `arm`'s gradients are needed. */
  wants(arm: string): boolean {
    return this.#names.has(arm);
  }

  /** Keeps (shares, no copy) `arm`'s gradients, keyed by tf.Variable name as tfjs returns them. */
  record(arm: string, grads: tf.NamedTensorMap): void {
    const names = this.#names.get(arm);
    if (!names) return;
    const kept = new Map<string, tf.Tensor>();
    for (const [variable, g] of Object.entries(grads)) {
      kept.set(names.get(variable) ?? variable, tf.keep(tf.clone(g)));
    }
    this.#kept.set(arm, kept);
  }

  /** Compares every pair (see the module doc) and frees the gradients kept. */
  async finish(): Promise<GradientCheck[]> {
    try {
      const out: GradientCheck[] = [];
      for (const spec of this.#specs) out.push(await this.#compare(spec));
      return out;
    } finally {
      this.dispose();
    }
  }

  /** Frees the gradients kept. */
  dispose(): void {
    for (const kept of this.#kept.values()) tf.dispose([...kept.values()]);
    this.#kept.clear();
  }

  async #compare(spec: GradientCheckSpec): Promise<GradientCheck> {
    const ref = this.#kept.get(spec.reference), other = this.#kept.get(spec.arm);
    if (!ref || !other) {
      throw new Error(`no gradients recorded for "${ref ? spec.arm : spec.reference}"`);
    }
    const tolerance = spec.tolerance ?? GRADIENT_TOLERANCE;
    let maxDiff = 0, maxGrad = 0, worstParameter = "";
    for (const [weight, g] of ref) {
      const h = other.get(weight);
      if (!h) throw new Error(`arm "${spec.arm}" has no parameter "${weight}"`);
      const [diff, scale] = tf.tidy(() => {
        const mapped = spec.map ? spec.map(weight, h) : h;
        return [tf.sub(g, mapped).abs().max(), g.abs().max()];
      });
      const [d, m] = [(await diff.data())[0], (await scale.data())[0]];
      tf.dispose([diff, scale]);
      // A NaN gradient on either side counts as the largest possible gap.
      const gap = Number.isNaN(d) || Number.isNaN(m) ? Infinity : d;
      if (gap > maxDiff || worstParameter === "") [maxDiff, worstParameter] = [gap, weight];
      maxGrad = Math.max(maxGrad, m);
    }
    const maxRelDiff = maxDiff === 0 ? 0 : maxDiff / maxGrad;
    return {
      reference: spec.reference,
      arm: spec.arm,
      step: 1,
      parameters: ref.size,
      maxRelDiff,
      worstParameter,
      tolerance,
      passed: maxRelDiff <= tolerance,
    };
  }
}
