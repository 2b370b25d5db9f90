import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { OutputCollector } from "../lib/notebook/_outputs.ts";
import type { Message } from "../lib/notebook/kernel.ts";
import type { CodeCell, Notebook } from "../lib/notebook/nbformat.ts";
import { runNotebook, type RunResult } from "../lib/notebook/runner.ts";
import {
  assertValidNotebook,
  childKernels,
  fixture,
  FIXTURES,
  pgrep,
  processRunning,
  summarize,
} from "./_notebook_helpers.ts";

type Summary = [string, string, string];

/** Expected outputs of tests/fixtures/stress.ipynb, per code cell (empty cells excluded). */
const STRESS: Summary[][] = [
  [["stream", "stdout", "c1 line1\nc1 line2\n"]],
  [
    ["stream", "stderr", "c2 err\n"],
    ["stream", "stdout", "c2 out\n"],
    ["stream", "stderr", "c2 err2\n"],
  ],
  [["display_data", "text/plain", "c3 display"]],
  [["stream", "stdout", "c4 after\n"], ["display_data", "text/plain", "c4 unawaited"]],
  [["display_data", "text/plain", "bar 100%"]],
  [["execute_result", "text/plain", "42"]],
  [["stream", "stdout", Array.from({ length: 50 }, (_, i) => `c7 line ${i}\n`).join("")]],
  [["stream", "stdout", "100000\n"], ["execute_result", "text/plain", "100000"]],
  [["execute_result", "text/plain", '"c9 result"'], ["stream", "stdout", "c9 late\n"]],
  [["stream", "stdout", "c10 \u00e9\u00e8 \u4e2d\u6587 \u{1F680}\n"]],
  [["stream", "stdout", "c12 after await\n"], ["display_data", "text/html", "<b>c12</b>"]],
  [["display_data", "text/plain", "status: done"]], // updated by the next cell
  [["stream", "stdout", "c14 updated\n"]],
  [["stream", "stdout", "c15 kept\n"]],
  [["stream", "stdout", "c16 kept\n"]],
  [
    ["stream", "stdout", "c17 sync\n"],
    ...[0, 1, 2, 3, 4].map((i): Summary => ["display_data", "text/plain", `burst ${i}`]),
  ],
  [],
  [
    ["stream", "stdout", "c19 out\n"],
    ["stream", "stderr", "c19 err\n"],
    ["execute_result", "text/plain", "{ answer: 42 }"],
  ],
];

function codeCells(nb: Notebook): CodeCell[] {
  return nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
}

/** Asserts no kernel process of this run (or any child kernel) is left. */
async function assertNoKernelLeft(result: RunResult): Promise<void> {
  assert(result.kernel, "the run has no kernel facts");
  assert(!processRunning(result.kernel.pid), `kernel ${result.kernel.pid} still runs`);
  assertEquals(await pgrep(result.kernel.connectionFile), []);
  assertEquals(await childKernels(), []);
}

Deno.test("runner: the stress notebook keeps every output in its own cell, in order, 10 times", async () => {
  const nb = await fixture("stress.ipynb");
  const runs = 10;
  const times: number[] = [];
  let reattributed = 0;
  for (let run = 1; run <= runs; run++) {
    const result = await runNotebook(nb, { cwd: FIXTURES, cellTimeoutMs: 30_000 });
    times.push(result.seconds);
    reattributed += result.kernel?.reattributed ?? 0;
    assertEquals(result.status, "ok", `run ${run}: ${result.error?.message}`);
    const cells = codeCells(result.notebook).filter((c) =>
      (Array.isArray(c.source) ? c.source.join("") : c.source).trim() !== ""
    );
    assertEquals(cells.length, STRESS.length);
    cells.forEach((cell, i) => {
      assertEquals(cell.outputs.map(summarize), STRESS[i], `run ${run}, code cell ${i + 1}`);
      assertEquals(cell.execution_count, i + 1, `run ${run}: execution_count of cell ${i + 1}`);
    });
    const results = cells.flatMap((c) => c.outputs).filter((o) =>
      o.output_type === "execute_result"
    );
    for (const r of results) {
      assert(r.output_type === "execute_result" && r.execution_count !== null);
    }
    assertValidNotebook(result.notebook, `stress run ${run}`);
    await assertNoKernelLeft(result);
  }
  const total = times.reduce((a, b) => a + b, 0);
  console.log(
    `stress: ${runs} runs of ${STRESS.length} cells, ${total.toFixed(1)} s total, ` +
      `${(total / runs).toFixed(2)} s per run (kernel start included); ` +
      `${reattributed} late messages handed back to their cell`,
  );
});

Deno.test("runner: a cell error stops the run; continueOnError runs the rest", async (t) => {
  const nb = await fixture("error.ipynb");
  await t.step("stops at the error", async () => {
    const result = await runNotebook(nb, { cwd: FIXTURES });
    assertEquals(result.status, "error");
    assertEquals(result.error?.kind, "error");
    assertEquals(result.error?.cellIndex, 1);
    assertStringIncludes(result.error!.message, "cell 2");
    assertStringIncludes(result.error!.message, "RangeError: planned failure");
    const [first, failing, after] = codeCells(result.notebook);
    assertEquals(first.outputs.map(summarize), [["stream", "stdout", "before the error\n"]]);
    assertEquals(failing.outputs.map(summarize), [
      ["stream", "stdout", "about to fail\n"],
      ["error", "RangeError", "planned failure"],
    ]);
    const error = failing.outputs[1];
    assert(error.output_type === "error" && error.traceback.length > 0);
    assertEquals(failing.execution_count, 2);
    assertEquals(after.outputs, []);
    assertEquals(after.execution_count, null);
    assertEquals(result.executedCells, 2);
    assertValidNotebook(result.notebook);
    await assertNoKernelLeft(result);
  });
  await t.step("continueOnError runs the later cells but the run still fails", async () => {
    const result = await runNotebook(nb, { cwd: FIXTURES, continueOnError: true });
    assertEquals(result.status, "error");
    assertEquals(result.failures.length, 1);
    const after = codeCells(result.notebook)[2];
    assertEquals(after.outputs.map(summarize), [["stream", "stdout", "after the error\n"]]);
    assertEquals(after.execution_count, 3);
    assertValidNotebook(result.notebook);
    await assertNoKernelLeft(result);
  });
});

Deno.test("runner: a cell past its time limit gets a timed-out error and stops the run", async () => {
  const nb = await fixture("timeout.ipynb");
  const started = performance.now();
  const result = await runNotebook(nb, {
    cwd: FIXTURES,
    cellTimeoutMs: 2000,
    interruptGraceMs: 1000,
  });
  assert(performance.now() - started < 20_000, "the timeout did not stop the run quickly");
  assertEquals(result.status, "error");
  assertEquals(result.error?.kind, "timeout");
  assertStringIncludes(result.error!.message, "timed out after 2 s");
  const [, slow, never] = codeCells(result.notebook);
  const summaries = slow.outputs.map(summarize);
  assertEquals(summaries[0], ["stream", "stdout", "waiting\n"]);
  const timeout = summaries.at(-1)!;
  assertEquals(timeout[0], "error");
  assertEquals(timeout[1], "TimeoutError");
  assertStringIncludes(timeout[2], "timed out after 2 s");
  assertEquals(never.outputs, []);
  assertValidNotebook(result.notebook);
  await assertNoKernelLeft(result);
});

Deno.test("runner: a kernel that exits mid-cell is reported in that cell, without hanging", async () => {
  const nb = await fixture("exit.ipynb");
  const started = performance.now();
  const result = await runNotebook(nb, { cwd: FIXTURES, cellTimeoutMs: 60_000 });
  assert(performance.now() - started < 20_000, "the run hung after the kernel died");
  assertEquals(result.status, "error");
  assertEquals(result.error?.kind, "died");
  assertEquals(result.error?.cellIndex, 1);
  assertStringIncludes(result.error!.message, "the kernel died while running cell 2");
  assertStringIncludes(result.error!.message, "exited with code 3");
  const [alive, dying, never] = codeCells(result.notebook);
  assertEquals(alive.outputs.map(summarize), [["stream", "stdout", "alive\n"]]);
  const last = dying.outputs.at(-1);
  assert(last?.output_type === "error");
  assertEquals(last.ename, "KernelDied");
  assertStringIncludes(last.evalue, "exited with code 3");
  assertEquals(never.outputs, []);
  assertValidNotebook(result.notebook);
  await assertNoKernelLeft(result);
});

Deno.test("runner: notebooks without cell ids or from nbformat 4.4 come out valid 4.5", async () => {
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 4,
    metadata: {},
    cells: [
      { cell_type: "markdown", source: "# old", metadata: {} },
      {
        cell_type: "code",
        source: ["console.log('x');\n", "1"],
        metadata: {},
        execution_count: 7,
        outputs: [{ output_type: "stream", name: "stdout", text: "stale\n" }],
      },
    ],
  };
  const result = await runNotebook(nb, { cwd: FIXTURES });
  assertEquals(result.status, "ok");
  assertEquals(result.notebook.nbformat_minor, 5);
  assert(result.notebook.cells.every((c) => typeof c.id === "string"));
  assertEquals(codeCells(result.notebook)[0].outputs.map(summarize), [
    ["stream", "stdout", "x\n"],
    ["execute_result", "text/plain", "1"],
  ]);
  assertEquals(nb.cells[1].id, undefined, "the input notebook was modified");
  assertValidNotebook(result.notebook);
  await assertNoKernelLeft(result);
});

function msg(type: string, content: Record<string, unknown>): Message {
  return {
    header: {
      msg_id: crypto.randomUUID(),
      session: "s",
      username: "u",
      date: "",
      msg_type: type,
      version: "5.3",
    },
    parent_header: {},
    metadata: {},
    content,
    buffers: [],
  };
}

Deno.test("outputs: streams merge, displays update across cells, clear_output (wait) applies", () => {
  const c = new OutputCollector();
  c.apply(0, msg("stream", { name: "stdout", text: "a\nb" }));
  c.apply(0, msg("stream", { name: "stdout", text: "c\n" }));
  c.apply(0, msg("stream", { name: "stderr", text: "e\n" }));
  c.apply(0, msg("stream", { name: "stdout", text: "d\n" }));
  c.apply(0, msg("status", { execution_state: "idle" }));
  c.apply(
    0,
    msg("display_data", {
      data: { "text/plain": "v1" },
      metadata: {},
      transient: { display_id: "x" },
    }),
  );
  c.apply(
    1,
    msg("update_display_data", {
      data: { "text/plain": "v2" },
      metadata: { m: 1 },
      transient: { display_id: "x" },
    }),
  );
  c.apply(1, msg("update_display_data", { data: { "text/plain": "nobody" }, transient: {} }));
  assertEquals(c.outputs(0), [
    { output_type: "stream", name: "stdout", text: ["a\n", "bc\n"] },
    { output_type: "stream", name: "stderr", text: ["e\n"] },
    { output_type: "stream", name: "stdout", text: ["d\n"] },
    { output_type: "display_data", data: { "text/plain": ["v2"] }, metadata: { m: 1 } },
  ]);
  assertEquals(c.outputs(1), []);

  c.apply(2, msg("stream", { name: "stdout", text: "old\n" }));
  c.apply(2, msg("clear_output", { wait: true }));
  assertEquals(c.outputs(2).length, 1, "wait=true keeps outputs until the next one");
  c.apply(
    2,
    msg("execute_result", {
      execution_count: 3,
      data: { "text/plain": "new", "application/json": { a: [1] } },
      metadata: {},
    }),
  );
  assertEquals(c.outputs(2), [{
    output_type: "execute_result",
    execution_count: 3,
    data: { "text/plain": ["new"], "application/json": { a: [1] } },
    metadata: {},
  }]);
  c.apply(2, msg("clear_output", { wait: false }));
  assertEquals(c.outputs(2), []);
  c.apply(3, msg("error", { ename: "E", evalue: "v", traceback: ["t1", "t2"] }));
  assertEquals(c.outputs(3), [{
    output_type: "error",
    ename: "E",
    evalue: "v",
    traceback: ["t1", "t2"],
  }]);
});
