import { checkInt } from "./shapes.ts";

/** A size given as one number for both spatial dimensions, or as `[height, width]`. */
export type Size2 = number | readonly [number, number];

/** Normalises a {@linkcode Size2} to `[height, width]`, checking each is an integer ≥ `min`. */
export function pair(name: string, value: Size2, min: number): [number, number] {
  if (Array.isArray(value)) {
    if (value.length !== 2) {
      throw new RangeError(
        `${name} must be a number or [height, width], got [${value.join(", ")}]`,
      );
    }
    return [checkInt(`${name}[0]`, value[0], min), checkInt(`${name}[1]`, value[1], min)];
  }
  const v = checkInt(name, value, min);
  return [v, v];
}
