/**
 * PyTorch's default initialisation of convolution and linear layers.
 *
 * PyTorch initialises `Conv2d`, `ConvTranspose2d` and `Linear` weights with
 * `kaiming_uniform_(a=√5)`, which is uniform in ±gain·√(3/fan_in) with gain = √(2/(1+a²)) = √(1/3),
 * i.e. uniform in ±1/√fan_in; the bias is uniform in ±1/√fan_in with the same fan_in. fan_in is
 * computed from the weight tensor in PyTorch's layout: `size(1) · kh · kw`. For `Conv2d` (weight
 * `[out, in, kh, kw]`) that is `in·kh·kw`; for `ConvTranspose2d` (weight `[in, out, kh, kw]`) it is
 * `out·kh·kw`. That asymmetry is the only real difference between the two networks of the
 * article's experiment.
 *
 * @example
 * ```ts
 * import { torchFanIn, torchUniformBound } from "./init.ts";
 * torchFanIn([32, 160, 3, 3]); // 1440 (Conv2d 160→32 or ConvTranspose2d 32→160)
 * torchUniformBound(torchFanIn([32, 160, 3, 3])); // 1/√1440 ≈ 0.02635
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { parseChoice } from "../util/choice.ts";

/**
 * fan_in of a weight tensor in PyTorch's layout, as `torch.nn.init._calculate_fan_in_and_fan_out`
 * computes it: `shape[1]` times the product of the remaining (receptive field) dimensions.
 *
 * @example
 * ```ts
 * torchFanIn([512, 1024]); // 1024 (Linear 1024→512)
 * torchFanIn([1, 1, 3, 3]); // 9
 * ```
 */
export function torchFanIn(torchWeightShape: readonly number[]): number {
  if (torchWeightShape.length < 2) {
    throw new RangeError(
      `fan_in needs a weight with at least 2 dimensions, got shape [${
        torchWeightShape.join(", ")
      }]`,
    );
  }
  return torchWeightShape.slice(1).reduce((a, b) => a * b, 1);
}

/**
 * Bound `b` of PyTorch's default uniform(−b, b) initialisation for a given fan_in: `1/√fan_in`
 * (for the weight via kaiming_uniform with a=√5, and for the bias).
 *
 * @example
 * ```ts
 * torchUniformBound(9); // 1/3
 * ```
 */
export function torchUniformBound(fanIn: number): number {
  if (!(fanIn > 0)) throw new RangeError(`fan_in must be positive, got ${fanIn}`);
  return 1 / Math.sqrt(fanIn);
}

/**
 * Which default initialisation a convolution gets: `"default"`, PyTorch's for its own layer type,
 * or `"swapped"`, PyTorch's default for its counterpart (a `Conv2d` initialised as the
 * `ConvTranspose2d` with the same channels would be, and vice versa). The swapped scheme makes
 * initialisation a factor of its own in the article's experiment.
 */
export type InitScheme = "default" | "swapped";

/** The schemes, for checks and messages. */
export const INIT_SCHEMES: readonly InitScheme[] = ["default", "swapped"];

/**
 * The PyTorch-layout weight shape whose fan_in sets a convolution's initialisation bound under
 * `scheme`: its own for `"default"`; for `"swapped"`, its counterpart's, which has the first two
 * dimensions exchanged (`Conv2d(in→out)` weight `[out, in, kh, kw]`, `ConvTranspose2d(in→out)`
 * weight `[in, out, kh, kw]`).
 *
 * @example
 * ```ts
 * initShape([32, 160, 3, 3], "swapped"); // [160, 32, 3, 3]
 * torchUniformBound(torchFanIn(initShape([32, 160, 3, 3], "swapped"))); // 1/√288
 * ```
 */
export function initShape(
  torchWeightShape: readonly number[],
  scheme: InitScheme = "default",
): number[] {
  parseChoice("init", scheme, INIT_SCHEMES);
  const [a, b, ...rest] = torchWeightShape;
  return scheme === "default" ? [...torchWeightShape] : [b, a, ...rest];
}

/**
 * A tfjs initializer that draws uniform(−bound, bound), as PyTorch's defaults do.
 *
 * @example
 * ```ts
 * const init = torchUniform(torchUniformBound(9), 42);
 * const w = init.apply([3, 3, 1, 1]);
 * ```
 */
export function torchUniform(
  bound: number,
  seed?: number,
): ReturnType<typeof tf.initializers.randomUniform> {
  return tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed });
}
