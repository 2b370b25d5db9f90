// Helpers shared by the nn tests: NCHW ↔ NHWC conversion and element-wise closeness.
import { tf } from "../lib/backend/tf.ts";
import { assert } from "@std/assert";
import type { Array4D } from "../lib/nn/reference.ts";

/** NCHW nested array → NHWC tensor. */
export function nhwc(x: Array4D): tf.Tensor4D {
  return tf.tidy(() => tf.tensor4d(x).transpose([0, 2, 3, 1]));
}

/** NHWC tensor → NCHW nested array. */
export function nchw(y: tf.Tensor): Array4D {
  return tf.tidy(() => y.transpose([0, 3, 1, 2]).arraySync()) as Array4D;
}

/** Asserts equal shapes and |a − b| ≤ atol + rtol·|b| element-wise. */
export function assertClose(actual: Array4D, expected: Array4D, atol = 1e-5, rtol = 1e-5): void {
  const a = actual.flat(3), e = expected.flat(3);
  const shape = (t: Array4D) => [t.length, t[0].length, t[0][0].length, t[0][0][0].length];
  assert(
    shape(actual).join() === shape(expected).join(),
    `shape ${shape(actual)} differs from expected ${shape(expected)}`,
  );
  for (let i = 0; i < a.length; i++) {
    assert(
      Math.abs(a[i] - e[i]) <= atol + rtol * Math.abs(e[i]),
      `element ${i}: ${a[i]} differs from expected ${e[i]}`,
    );
  }
}

/** A deterministic pseudo-random NCHW array (values in [-1, 1)). */
export function randomArray(shape: [number, number, number, number], seed: number): Array4D {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 2 - 1;
  };
  return Array.from(
    { length: shape[0] },
    () =>
      Array.from(
        { length: shape[1] },
        () => Array.from({ length: shape[2] }, () => Array.from({ length: shape[3] }, next)),
      ),
  );
}
