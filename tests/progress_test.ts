import { assertEquals, assertMatch } from "@std/assert";
import { formatEta, progressLine } from "../lib/train/mod.ts";

Deno.test("formatEta: seconds, minutes, hours", () => {
  assertEquals(formatEta(42.4), "42s");
  assertEquals(formatEta(185), "3m05s");
  assertEquals(formatEta(3720), "1h02m");
  assertEquals(formatEta(Number.NaN), "?");
});

Deno.test("progressLine: bar, percentage over the whole run, losses of every arm", () => {
  const line = progressLine({
    epoch: 2,
    epochs: 2,
    step: 5,
    stepsPerEpoch: 10,
    losses: { conv: 1.23456, transposed: 2 },
    imagesPerSecond: 123.4,
    etaSeconds: 65,
  }, 10);
  assertEquals(
    line,
    "[████████░░]  75% epoch 2/2 step 5/10 | loss conv 1.235, transposed 2.000 | 123 img/s | ETA 1m05s",
  );
  assertMatch(
    progressLine({
      epoch: 1,
      epochs: 1,
      step: 1,
      stepsPerEpoch: 1,
      losses: {},
      imagesPerSecond: 1,
      etaSeconds: 0,
    }),
    /100%/,
  );
});
