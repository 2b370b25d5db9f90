import {
  assert,
  assertAlmostEquals,
  assertArrayIncludes,
  AssertionError,
  assertRejects,
  assertThrows,
} from "@std/assert";

Deno.test("assert stand-in: failing assertions throw AssertionError", async () => {
  assertThrows(() => assert(false), AssertionError);
  assertThrows(() => assertAlmostEquals(1, 1.1, 0.01), AssertionError, "close to");
  assertThrows(() => assertArrayIncludes([1, 2], [3]), AssertionError);
  assertThrows(() => assertThrows(() => {}), AssertionError, "Expected function to throw");
  assertThrows(
    () =>
      assertThrows(() => {
        throw new TypeError("x");
      }, RangeError),
    AssertionError,
    "RangeError",
  );
  await assertRejects(() => assertRejects(() => Promise.resolve()), AssertionError);
});
