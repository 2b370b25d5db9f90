/**
 * Output-size formulas of PyTorch's `Conv2d` and `ConvTranspose2d`, with the same argument checks
 * PyTorch makes. Sizes are per spatial dimension; the layers apply them to height and width.
 *
 * - convolution: `floor((n + 2p − d(k−1) − 1) / s) + 1`
 * - transposed convolution: `(n − 1)s − 2p + d(k−1) + output_padding + 1`
 *
 * @example
 * ```ts
 * import { convOutputSize, convTransposeOutputSize } from "./shapes.ts";
 * convOutputSize(5, { kernelSize: 3, padding: 1 }); // 5
 * convTransposeOutputSize(5, { kernelSize: 3, stride: 2, padding: 1 }); // 9
 * ```
 * @module
 */

/** Arguments of a convolution along one spatial dimension (PyTorch's names, camel-cased). */
export interface ConvDimArgs {
  /** Kernel size `k` (positive integer). */
  kernelSize: number;
  /** Stride `s` (positive integer, default 1). */
  stride?: number;
  /** Zero padding `p` added on both sides (non-negative integer, default 0). */
  padding?: number;
  /** Dilation `d` (positive integer, default 1). */
  dilation?: number;
}

/** Arguments of a transposed convolution along one spatial dimension. */
export interface ConvTransposeDimArgs extends ConvDimArgs {
  /** Extra size added to one side of the output (default 0); smaller than stride or dilation. */
  outputPadding?: number;
}

/**
 * Error for an argument PyTorch would refuse; `argument` names it and `rule` states the rule
 * broken without this call's values (so refusals can be grouped by rule).
 */
export class ConvArgumentError extends RangeError {
  /** The offending argument, e.g. `"stride"` or `"outputPadding"`. */
  readonly argument: string;
  /** The rule broken, e.g. `"outputPadding must be smaller than either stride or dilation"`. */
  readonly rule: string;
  /** Creates the error; the message already names the argument; `rule` defaults to it. */
  constructor(argument: string, message: string, rule: string = message) {
    super(message);
    this.name = "ConvArgumentError";
    this.argument = argument;
    this.rule = rule;
  }
}

/**
 * Checks that `value` is an integer of at least `min` and returns it; otherwise throws a
 * {@linkcode ConvArgumentError} naming `name`.
 *
 * @example
 * ```ts
 * checkInt("stride", 2, 1); // 2
 * ```
 */
export function checkInt(name: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new ConvArgumentError(
      name,
      `${name} must be an integer, got ${describe(value)}`,
      `${name} must be an integer`,
    );
  }
  if (value < min) {
    const expected = min === 0 ? "non-negative" : min === 1 ? "positive" : `at least ${min}`;
    throw new ConvArgumentError(
      name,
      `${name} must be ${expected}, got ${value}`,
      `${name} must be ${expected}`,
    );
  }
  return value;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function normalise(n: number, args: ConvDimArgs) {
  return {
    n: checkInt("input size", n, 1),
    k: checkInt("kernelSize", args.kernelSize, 1),
    s: checkInt("stride", args.stride ?? 1, 1),
    p: checkInt("padding", args.padding ?? 0, 0),
    d: checkInt("dilation", args.dilation ?? 1, 1),
  };
}

/**
 * Output size of `Conv2d` along one dimension: `floor((n + 2p − d(k−1) − 1) / s) + 1`.
 * Throws a {@linkcode ConvArgumentError} for invalid arguments or a non-positive result, as
 * PyTorch refuses them.
 *
 * @example
 * ```ts
 * convOutputSize(5, { kernelSize: 3, stride: 1, padding: 1 }); // 5
 * convOutputSize(32, { kernelSize: 7, padding: 3 }); // 32
 * ```
 */
export function convOutputSize(n: number, args: ConvDimArgs): number {
  const { k, s, p, d } = normalise(n, args);
  const out = Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
  if (out < 1) {
    throw new ConvArgumentError(
      "kernelSize",
      `output size would be ${out} (input size ${n}, padding ${p}, effective kernel size ` +
        `${d * (k - 1) + 1}): the kernel is larger than the padded input`,
      "output size ≤ 0: the kernel is larger than the padded input",
    );
  }
  return out;
}

/**
 * Checks `outputPadding` as PyTorch does: a non-negative integer smaller than either the stride or
 * the dilation. Returns it; throws a {@linkcode ConvArgumentError} otherwise.
 *
 * @example
 * ```ts
 * checkOutputPadding(1, 2, 1); // 1
 * ```
 */
export function checkOutputPadding(
  outputPadding: unknown,
  stride: number,
  dilation: number,
): number {
  const op = checkInt("outputPadding", outputPadding, 0);
  if (op >= stride && op >= dilation) {
    throw new ConvArgumentError(
      "outputPadding",
      `outputPadding must be smaller than either stride or dilation, got outputPadding ${op}, ` +
        `stride ${stride}, dilation ${dilation}`,
      "outputPadding must be smaller than either stride or dilation",
    );
  }
  return op;
}

/**
 * Output size of `ConvTranspose2d` along one dimension:
 * `(n − 1)s − 2p + d(k−1) + output_padding + 1`. Throws a {@linkcode ConvArgumentError} for
 * invalid arguments, an `outputPadding` not smaller than stride or dilation, or a non-positive
 * result.
 *
 * @example
 * ```ts
 * convTransposeOutputSize(5, { kernelSize: 3 }); // 7
 * convTransposeOutputSize(5, { kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 }); // 10
 * ```
 */
export function convTransposeOutputSize(n: number, args: ConvTransposeDimArgs): number {
  const { k, s, p, d } = normalise(n, args);
  const op = checkOutputPadding(args.outputPadding ?? 0, s, d);
  const out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1;
  if (out < 1) {
    throw new ConvArgumentError(
      "padding",
      `output size would be ${out} (input size ${n}, stride ${s}, padding ${p}): ` +
        `padding removes more than the transposed convolution produces`,
      "output size ≤ 0: padding removes more than the transposed convolution produces",
    );
  }
  return out;
}
