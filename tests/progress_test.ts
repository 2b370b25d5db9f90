import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { progressLine } from "../lib/viz/mod.ts";
import { formatDuration, progressBar, TerminalProgress } from "../lib/util/progress.ts";

Deno.test("formatDuration: the one ETA format of the download and training bars", () => {
  assertEquals(formatDuration(42.4), "0:42");
  assertEquals(formatDuration(185), "3:05");
  assertEquals(formatDuration(3720), "1:02:00");
  assertEquals(formatDuration(-3), "0:00");
  assertEquals(formatDuration(Number.NaN), "--:--");
  assertEquals(formatDuration(Infinity), "--:--");
});

Deno.test("progressBar: cells filled in proportion, clamped to the bar", () => {
  assertEquals(progressBar(0.5, 4), "[██░░]");
  assertEquals(progressBar(0.74, 10), "[███████░░░]");
  assertEquals(progressBar(2, 3), "[███]");
  assertEquals(progressBar(-1, 3), "[░░░]");
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
    "[████████░░]  75% epoch 2/2 step 5/10 | loss conv 1.235, transposed 2.000 | 123 img/s | ETA 1:05",
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

Deno.test("TerminalProgress: redrawn in place at most every 100 ms; in a log, a line per 10 % or 30 s", () => {
  let t = 0;
  const tty: string[] = [];
  const term = new TerminalProgress({ write: (s) => tty.push(s), isTerminal: true, now: () => t });
  for (let step = 1; step <= 20; step++) {
    t += 30;
    term.show(`step ${step}`, step, 20, step === 20);
  }
  term.finish();
  // Steps at 30, 150, 270, 390, 510 ms (100 ms apart at least), then the forced last one.
  assertEquals(tty, [
    ...[1, 5, 9, 13, 17].map((s) => `\rstep ${s}\x1b[K`),
    "\rstep 20\x1b[K",
    "\n",
  ]);

  t = 0;
  const log: string[] = [];
  const plain = new TerminalProgress({
    write: (s) => log.push(s),
    isTerminal: false,
    now: () => t,
  });
  for (let step = 1; step <= 40; step++) {
    t += step <= 2 ? 1 : 10_000; // slow after the second step: every 30 s counts
    plain.show(`step ${step}`, step, 1000);
  }
  plain.show("step 38 again", 38, 1000, true); // forced, but nothing new: not printed
  plain.finish();
  assert(log.every((s) => s.endsWith("\n") && !s.includes("\r")));
  assertEquals(log[0], "step 1\n");
  // 1 % per step: no 10 % step is reached; after the first line, one every 30 s (3 steps).
  assertEquals(log.map((s) => Number(s.split(" ")[1])), [
    1,
    5,
    8,
    11,
    14,
    17,
    20,
    23,
    26,
    29,
    32,
    35,
    38,
  ]);
  assertStringIncludes(log.at(-1)!, "step 38");
});
