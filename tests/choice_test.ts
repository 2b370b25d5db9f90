import { assertEquals, assertThrows } from "@std/assert";
import { parseChoice } from "../lib/util/choice.ts";

Deno.test("parseChoice: a choice passes typed; anything else is refused naming the parameter", () => {
  assertEquals(parseChoice("schedule", "cosine", ["constant", "cosine"]), "cosine");
  assertThrows(
    () => parseChoice("schedule", "step", ["constant", "cosine"]),
    RangeError,
    'schedule must be one of constant, cosine, got "step"',
  );
  assertThrows(() => parseChoice("init", 3, ["default", "swapped"]), RangeError, "got 3");
});
