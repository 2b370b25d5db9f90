import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { executeCell } from "../lib/notebook/cell.ts";
import { Kernel } from "../lib/notebook/kernel.ts";
import { childKernels, codeCell, FIXTURES, summarize } from "./_notebook_helpers.ts";

Deno.test("cell: single cells run on a kept-alive kernel, updated in place, re-run, failing, skipped, timed out", async () => {
  const kernel = await Kernel.start({ cwd: FIXTURES });
  try {
    const set = codeCell('let n = 41;\nconsole.log("set");');
    const ok = await executeCell(kernel, set);
    assertEquals([ok.status, ok.failure], ["ok", undefined]);
    assertEquals(set.outputs.map(summarize), [["stream", "stdout", "set\n"]]);
    assertEquals(ok.outputs, set.outputs);
    assertEquals(set.execution_count, 1);
    assertEquals(Object.keys(set.metadata.execution as object), [
      "iopub.status.busy",
      "iopub.execute_input",
      "shell.execute_reply",
      "iopub.status.idle",
    ]);

    // Re-running a cell replaces its outputs; the kernel keeps its state between calls.
    const bump = codeCell("n += 1; n");
    await executeCell(kernel, bump);
    await executeCell(kernel, bump);
    assertEquals(bump.outputs.map(summarize), [["execute_result", "text/plain", "43"]]);
    assertEquals(bump.execution_count, 3);

    const fails = codeCell('console.log("before");\nthrow new RangeError("bad " + n);');
    const failed = await executeCell(kernel, fails, { label: "cell 9" });
    assertEquals([failed.status, failed.failure], ["error", "cell 9 raised RangeError: bad 43"]);
    assertEquals(fails.outputs.map(summarize).map((s) => s.slice(0, 2)), [
      ["stream", "stdout"],
      ["error", "RangeError"],
    ]);
    const raised = await executeCell(
      kernel,
      codeCell("throw new Error('x')", ["raises-exception"]),
    );
    assertEquals([raised.status, raised.failure], ["raised", undefined]);

    const skip = codeCell('console.log("must not run")', ["skip-execution"]);
    skip.outputs = [{ output_type: "stream", name: "stdout", text: "stale\n" }];
    skip.execution_count = 7;
    assertEquals((await executeCell(kernel, skip)).status, "skipped");
    assertEquals(skip.outputs.map(summarize), [
      ["stream", "stderr", 'Not run: this cell is tagged "skip-execution".\n'],
    ]);
    assertEquals(skip.execution_count, null);

    const spin = codeCell("while (true) {}");
    const slow = await executeCell(kernel, spin, { timeoutMs: 1000, interruptGraceMs: 3000 });
    assertEquals(slow.status, "timeout");
    assertStringIncludes(slow.failure!, "the cell timed out after 1 s (it was interrupted)");
    assertEquals(spin.outputs.map(summarize).at(-1)?.slice(0, 2), ["error", "TimeoutError"]);
    assert(kernel.alive, "the kernel was killed, not interrupted");
    const after = codeCell("n");
    assertEquals((await executeCell(kernel, after)).status, "ok");
    assertEquals(after.outputs.map(summarize), [["execute_result", "text/plain", "43"]]);
  } finally {
    await kernel.shutdown();
  }
  assertEquals(await childKernels(), []);
});

Deno.test("cell: output published after the call returns still lands in the cell", async () => {
  const kernel = await Kernel.start({ cwd: FIXTURES });
  try {
    const cell = codeCell('setTimeout(() => console.log("late"), 500);\n"now"');
    const seen: string[] = [];
    const run = await executeCell(kernel, cell, {
      onMessage: (m) => seen.push(m.header.msg_type),
    });
    assertEquals(run.status, "ok");
    assertEquals(cell.outputs.map(summarize), [["execute_result", "text/plain", '"now"']]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assertEquals(cell.outputs.map(summarize), [
      ["execute_result", "text/plain", '"now"'],
      ["stream", "stdout", "late\n"],
    ]);
    assertEquals(seen, ["execute_input", "execute_result", "stream"]);
  } finally {
    await kernel.shutdown();
  }
});

Deno.test("cell: a long-lived kernel releases the routes of finished cells, so their outputs can go", async () => {
  const kernel = await Kernel.start({ cwd: FIXTURES });
  try {
    const routed: number[] = [];
    for (let i = 0; i < 30; i++) {
      const cell = codeCell(
        `await Deno.jupyter.display({ "text/plain": "${i}".repeat(100_000) }, { raw: true });\n` +
          `setTimeout(() => console.log("late ${i}"), 20);`,
      );
      const run = await executeCell(kernel, cell);
      assertEquals(run.status, "ok");
      // Late output of the cell still lands in it (before the next cell runs).
      assertEquals(cell.outputs.map(summarize).at(-1), ["stream", "stdout", `late ${i}\n`]);
      routed.push(kernel.routedRequests);
    }
    // The last execution and its flush probe: not one route per execution ever made.
    assert(Math.max(...routed) <= 3, `routes kept: ${routed.join(" ")}`);
  } finally {
    await kernel.shutdown();
  }
});
