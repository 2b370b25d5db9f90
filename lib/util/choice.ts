/**
 * A string parameter checked against its choices, so that a notebook passes its raw parameter
 * (`-p dataset=cifar` from the command line is a plain string) and the library refuses a wrong
 * one by name.
 *
 * @example
 * ```ts
 * import { parseChoice } from "./choice.ts";
 * parseChoice("schedule", "cosine", ["constant", "cosine"]); // "cosine", typed as the choices
 * parseChoice("schedule", "step", ["constant", "cosine"]);
 * // RangeError: schedule must be one of constant, cosine, got "step"
 * ```
 * @module
 */

/**
 * `value` when it is one of `choices`; otherwise a `RangeError` naming the parameter, its choices
 * and the value given.
 *
 * @example
 * ```ts
 * const init = parseChoice("init", "swapped", ["default", "swapped"]); // "default" | "swapped"
 * ```
 */
export function parseChoice<const T extends string>(
  name: string,
  value: unknown,
  choices: readonly T[],
): T {
  if (typeof value === "string" && (choices as readonly string[]).includes(value)) {
    return value as T;
  }
  throw new RangeError(
    `${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`,
  );
}
