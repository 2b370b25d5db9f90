/**
 * A small stand-in for `jsr:@std/assert`, built on `node:assert`.
 *
 * JSR is unreachable on the machines this project is developed on, so `deno.json` maps the
 * specifier `@std/assert` to this module. It offers the same function names and argument order
 * as `@std/assert` for the subset the tests use. Where JSR is reachable, point the import map at
 * `jsr:@std/assert@1` instead and nothing else changes.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals([1, 2], [1, 2]);
 * ```
 * @module
 */
import nodeAssert from "node:assert";

/** Error thrown when an assertion fails (the same class `node:assert` throws). */
export const AssertionError = nodeAssert.AssertionError;

/**
 * Asserts that `expr` is truthy.
 *
 * @example
 * ```ts
 * assert(1 + 1 === 2, "arithmetic works");
 * ```
 */
export function assert(expr: unknown, msg?: string): asserts expr {
  nodeAssert.ok(expr, msg);
}

/**
 * Asserts deep equality of `actual` and `expected` (structural, strict on primitives).
 *
 * @example
 * ```ts
 * assertEquals({ a: [1] }, { a: [1] });
 * ```
 */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/**
 * Asserts that `actual` and `expected` are not deeply equal.
 *
 * @example
 * ```ts
 * assertNotEquals([1], [2]);
 * ```
 */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/**
 * Asserts `Object.is` equality.
 *
 * @example
 * ```ts
 * assertStrictEquals("a", "a");
 * ```
 */
export function assertStrictEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): asserts actual is T {
  nodeAssert.strictEqual(actual, expected, msg);
}

/**
 * Asserts that `actual` is within `tolerance` of `expected` (default 1e-7, as in `@std/assert`).
 *
 * @example
 * ```ts
 * assertAlmostEquals(0.1 + 0.2, 0.3);
 * ```
 */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  msg?: string,
): void {
  if (Object.is(actual, expected)) return;
  const delta = Math.abs(expected - actual);
  if (!(delta <= tolerance)) {
    throw new AssertionError({
      message: msg ??
        `Expected actual: "${actual}" to be close to "${expected}": delta "${delta}" is greater than "${tolerance}"`,
      actual,
      expected,
    });
  }
}

/**
 * Asserts that `actual` is neither `null` nor `undefined`.
 *
 * @example
 * ```ts
 * assertExists(0);
 * ```
 */
export function assertExists<T>(actual: T, msg?: string): asserts actual is NonNullable<T> {
  if (actual === null || actual === undefined) {
    throw new AssertionError({
      message: msg ?? `Expected actual: "${actual}" to not be null or undefined`,
    });
  }
}

/**
 * Asserts that `actual` matches the regular expression `expected`.
 *
 * @example
 * ```ts
 * assertMatch("abc", /b/);
 * ```
 */
export function assertMatch(actual: string, expected: RegExp, msg?: string): void {
  nodeAssert.match(actual, expected, msg);
}

/**
 * Asserts that `actual` does not match the regular expression `expected`.
 *
 * @example
 * ```ts
 * assertNotMatch("abc", /z/);
 * ```
 */
export function assertNotMatch(actual: string, expected: RegExp, msg?: string): void {
  nodeAssert.doesNotMatch(actual, expected, msg);
}

/**
 * Asserts that the string `actual` contains `expected`.
 *
 * @example
 * ```ts
 * assertStringIncludes("hello world", "world");
 * ```
 */
export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  if (!actual.includes(expected)) {
    throw new AssertionError({
      message: msg ?? `Expected actual: "${actual}" to contain: "${expected}".`,
      actual,
      expected,
    });
  }
}

/**
 * Asserts that `actual > expected`.
 *
 * @example
 * ```ts
 * assertGreater(2, 1);
 * ```
 */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual > expected)) {
    throw new AssertionError({
      message: msg ?? `Expect ${actual} > ${expected}`,
      actual,
      expected,
    });
  }
}

/**
 * Asserts that `actual >= expected`.
 *
 * @example
 * ```ts
 * assertGreaterOrEqual(2, 2);
 * ```
 */
export function assertGreaterOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual >= expected)) {
    throw new AssertionError({
      message: msg ?? `Expect ${actual} >= ${expected}`,
      actual,
      expected,
    });
  }
}

/**
 * Asserts that `actual < expected`.
 *
 * @example
 * ```ts
 * assertLess(1, 2);
 * ```
 */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual < expected)) {
    throw new AssertionError({
      message: msg ?? `Expect ${actual} < ${expected}`,
      actual,
      expected,
    });
  }
}

/**
 * Asserts that `actual <= expected`.
 *
 * @example
 * ```ts
 * assertLessOrEqual(2, 2);
 * ```
 */
export function assertLessOrEqual<T>(actual: T, expected: T, msg?: string): void {
  if (!(actual <= expected)) {
    throw new AssertionError({
      message: msg ?? `Expect ${actual} <= ${expected}`,
      actual,
      expected,
    });
  }
}

/**
 * Asserts that `actual` is an instance of `expectedType`.
 *
 * @example
 * ```ts
 * assertInstanceOf(new Error("x"), Error);
 * ```
 */
// deno-lint-ignore no-explicit-any
export function assertInstanceOf<T extends abstract new (...args: any[]) => any>(
  actual: unknown,
  expectedType: T,
  msg?: string,
): asserts actual is InstanceType<T> {
  if (!(actual instanceof expectedType)) {
    throw new AssertionError({
      message: msg ?? `Expected object to be an instance of "${expectedType.name}"`,
    });
  }
}

/**
 * Asserts that every element of `expected` is in the array `actual` (deep equality).
 *
 * @example
 * ```ts
 * assertArrayIncludes([1, 2, 3], [2, 3]);
 * ```
 */
export function assertArrayIncludes<T>(
  actual: ArrayLike<T>,
  expected: ArrayLike<T>,
  msg?: string,
): void {
  const items = Array.from(actual);
  const missing = Array.from(expected).filter((e) =>
    !items.some((a) => {
      try {
        nodeAssert.deepStrictEqual(a, e);
        return true;
      } catch {
        return false;
      }
    })
  );
  if (missing.length > 0) {
    throw new AssertionError({
      message: msg ?? `Expected actual to include ${JSON.stringify(missing)}`,
    });
  }
}

/** Throws an `AssertionError` with the given message. */
export function fail(msg?: string): never {
  throw new AssertionError({ message: msg ?? "Failed assertion" });
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

function checkError<E extends Error>(
  err: unknown,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
): E {
  if (ErrorClass && !(err instanceof ErrorClass)) {
    throw new AssertionError({
      message: `Expected error to be instance of "${ErrorClass.name}", but was "${
        (err as Error)?.constructor?.name
      }": ${(err as Error)?.message}`,
    });
  }
  if (msgIncludes !== undefined && !String((err as Error)?.message).includes(msgIncludes)) {
    throw new AssertionError({
      message: `Expected error message to include "${msgIncludes}", but got "${
        (err as Error)?.message
      }".`,
    });
  }
  return err as E;
}

/**
 * Asserts that `fn` throws; optionally that the error is an `ErrorClass` whose message includes
 * `msgIncludes`. Returns the error.
 *
 * @example
 * ```ts
 * assertThrows(() => { throw new RangeError("stride must be positive"); }, RangeError, "stride");
 * ```
 */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): E {
  try {
    fn();
  } catch (err) {
    return checkError(err, ErrorClass, msgIncludes);
  }
  throw new AssertionError({ message: msg ?? "Expected function to throw." });
}

/**
 * Asserts that the promise returned by `fn` rejects; like {@linkcode assertThrows}.
 *
 * @example
 * ```ts
 * await assertRejects(() => Promise.reject(new Error("no")), Error, "no");
 * ```
 */
export async function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    return checkError(err, ErrorClass, msgIncludes);
  }
  throw new AssertionError({ message: msg ?? "Expected function to reject." });
}
