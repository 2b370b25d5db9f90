import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { OutputLog } from "../lib/notebook/_log_output.ts";
import { OutputCollector } from "../lib/notebook/_outputs.ts";
import type { Message } from "../lib/notebook/kernel.ts";
import type { CodeCell, Notebook } from "../lib/notebook/nbformat.ts";
import { NotebookSyntaxError, runNotebook, type RunResult } from "../lib/notebook/runner.ts";
import {
  assertValidNotebook,
  childKernels,
  codeCell,
  fixture,
  FIXTURES,
  forgingKernel,
  notebookOf,
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
    // The Deno kernel sends console output asynchronously, so under load the error can arrive
    // before the line printed just ahead of it: both must be there, in either order.
    const failingOutputs = failing.outputs.map(summarize);
    assertEquals(failingOutputs.length, 2, JSON.stringify(failingOutputs));
    for (
      const expected of [["stream", "stdout", "about to fail\n"], [
        "error",
        "RangeError",
        "planned failure",
      ]]
    ) {
      assert(
        failingOutputs.some((o) => JSON.stringify(o) === JSON.stringify(expected)),
        `${JSON.stringify(expected)} in ${JSON.stringify(failingOutputs)}`,
      );
    }
    const error = failing.outputs.find((o) => o.output_type === "error")!;
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

Deno.test("runner: a busy cell past its time limit is interrupted by message; the kernel and its state stay usable", async () => {
  const cell = (source: string): CodeCell => ({
    cell_type: "code",
    metadata: {},
    source,
    outputs: [],
    execution_count: null,
  });
  const nb: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      cell(`const kept = 41;`),
      cell(`console.log("spinning");\nwhile (true) {}`),
      cell(`console.log("next:", kept + 1);`),
    ],
  };
  const result = await runNotebook(nb, { cellTimeoutMs: 1500, continueOnError: true });
  assertEquals(result.failures.map((f) => f.kind), ["timeout"]);
  assertStringIncludes(result.error!.message, "(it was interrupted)");
  const [, spin, next] = codeCells(result.notebook);
  assertEquals(spin.outputs.map(summarize).at(-1)?.slice(0, 2), ["error", "TimeoutError"]);
  // The same kernel ran the next cell, with the variable from before the interrupt.
  assertEquals(next.outputs.map(summarize), [["stream", "stdout", "next: 42\n"]]);
  assertEquals(next.execution_count, 3);
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

Deno.test("outputs: a stream grows line by line and is capped to its first and last lines", () => {
  const c = new OutputCollector({ streamLineLimit: 10 });
  c.apply(0, msg("stream", { name: "stdout", text: "par" }));
  c.apply(0, msg("stream", { name: "stdout", text: "tial\nline 1\n" }));
  assertEquals(c.outputs(0).map(summarize), [["stream", "stdout", "partial\nline 1\n"]]);
  for (let i = 2; i <= 1000; i++) {
    c.apply(0, msg("stream", { name: "stdout", text: `line ${i}\n` }));
  }
  c.apply(0, msg("stream", { name: "stdout", text: "last, unfinished" }));
  const out = c.outputs(0);
  assertEquals(out.length, 1);
  const lines = out[0].output_type === "stream" ? out[0].text as string[] : [];
  assertEquals(lines.length, 11, "5 first lines, the note, 5 last lines");
  assertEquals(lines.slice(0, 5), ["partial\n", "line 1\n", "line 2\n", "line 3\n", "line 4\n"]);
  assertStringIncludes(lines[5], "992 lines left out"); // lines 5 to 996
  assertEquals(lines.slice(6), [
    "line 997\n",
    "line 998\n",
    "line 999\n",
    "line 1000\n",
    "last, unfinished",
  ]);
  assertValidNotebook({
    ...notebookOf({ ...codeCell("x"), outputs: out }),
    cells: [{ ...codeCell("x"), id: "a", outputs: out }],
  });
  // Another stream name starts a new output; the capped one stays as it was.
  c.apply(0, msg("stream", { name: "stderr", text: "e\n" }));
  assertEquals(c.outputs(0).length, 2);
});

Deno.test("runner: skip-execution and raises-exception tags; nbclient timing metadata", async () => {
  const skipped = codeCell('console.log("must not run");', ["skip-execution"]);
  skipped.outputs = [{ output_type: "stream", name: "stdout", text: "stale\n" }];
  const nb = notebookOf(
    skipped,
    codeCell('console.log("before"); throw new TypeError("expected");', ["raises-exception"]),
    codeCell('console.log("after");'),
  );
  const result = await runNotebook(nb, { cwd: FIXTURES });
  assertEquals(result.status, "ok", result.error?.message);
  const [skip, raises, after] = codeCells(result.notebook);
  assertEquals(skip.outputs.map(summarize), [
    ["stream", "stderr", 'Not run: this cell is tagged "skip-execution".\n'],
  ]);
  assertEquals(skip.execution_count, null);
  assertEquals(skip.metadata.execution, undefined);
  assertEquals(raises.outputs.map(summarize), [
    ["stream", "stdout", "before\n"],
    ["error", "TypeError", "expected"],
  ]);
  assertEquals(after.outputs.map(summarize), [["stream", "stdout", "after\n"]]);
  for (const cell of [raises, after]) {
    const timing = cell.metadata.execution as Record<string, string>;
    assertEquals(Object.keys(timing), [
      "iopub.status.busy",
      "iopub.execute_input",
      "shell.execute_reply",
      "iopub.status.idle",
    ]);
    const times = Object.values(timing).map((t) => Date.parse(t));
    assert(times.every((t) => Number.isFinite(t)), JSON.stringify(timing));
    assert(times[1] <= times[2], `execute_input after execute_reply: ${JSON.stringify(timing)}`);
  }
  assertValidNotebook(result.notebook);
  await assertNoKernelLeft(result);
});

Deno.test("runner: a syntax error in the last cell is refused before the first cell runs", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const nb = notebookOf(
      codeCell(`await Deno.writeTextFile(${JSON.stringify(`${tmp}/ran`)}, "x");`),
      codeCell("const a = <number>(1 as unknown); // a cast: TypeScript, not JSX"),
      codeCell("for (const i of [1, 2]) {\n  console.log(i;\n}"),
    );
    let error: unknown;
    try {
      await runNotebook(nb, { cwd: tmp });
    } catch (e) {
      error = e;
    }
    assert(error instanceof NotebookSyntaxError, String(error));
    assertEquals(error.problems.map((p) => [p.cellIndex, p.position, p.line, p.column]), [
      [2, 3, 2, 16],
    ]);
    assertStringIncludes(error.message, "cell 3 (code cell 3), line 2, column 16: ')' expected.");
    assertEquals(await Array.fromAsync(Deno.readDir(tmp)), [], "the first cell ran");
    assertEquals(await childKernels(), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("runner: the kernel's bare 'Execution failed' gets the parser's diagnostic", async () => {
  const nb = notebookOf(codeCell('console.log("ok");'), codeCell("let y = [1, 2"));
  const result = await runNotebook(nb, { cwd: FIXTURES, checkSyntax: false });
  assertEquals(result.status, "error");
  const error = codeCells(result.notebook)[1].outputs.at(-1);
  assert(error?.output_type === "error");
  assertEquals(error.ename, "Error");
  assertEquals(
    error.evalue,
    "Execution failed (TypeScript parser: line 1, column 14: ']' expected.)",
  );
  assertStringIncludes(result.error!.message, "line 1, column 14: ']' expected.");
  await assertNoKernelLeft(result);
});

Deno.test("runner: a forged kernel message (bad signature) makes the run degraded, naming the cell", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const wrapper = await forgingKernel(tmp);
    const nb = notebookOf(
      codeCell('console.log("fine");'),
      codeCell('console.log("FORGE" + "_ME");'),
      codeCell('console.log("after");'),
    );
    const result = await runNotebook(nb, { cwd: FIXTURES, kernel: { denoPath: wrapper } });
    assertEquals(result.status, "degraded", result.error?.message);
    assertEquals(result.failures, []);
    assertEquals(result.lost.map((l) => [l.cellIndex, l.position]), [[1, 2]]);
    assert(result.lost[0].count >= 1);
    const [fine, forged, after] = codeCells(result.notebook);
    assertEquals(fine.outputs.map(summarize), [["stream", "stdout", "fine\n"]]);
    assertEquals(forged.outputs, [], "the forged output was accepted");
    assertEquals(after.outputs.map(summarize), [["stream", "stdout", "after\n"]]);
    const meta = result.notebook.metadata.deno_runner as Record<string, unknown>;
    assertEquals(meta.status, "degraded");
    assertStringIncludes(String(meta.lost_messages), "lost (cell 2: ");
    assertValidNotebook(result.notebook);
    assertEquals(await pgrep(result.kernel!.connectionFile), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("runner: checkpoints hand over the notebook so far, marked running", async () => {
  const saved: Notebook[] = [];
  const nb = notebookOf(codeCell('console.log("one");'), codeCell('console.log("two");'));
  const result = await runNotebook(nb, {
    cwd: FIXTURES,
    onCheckpoint: (notebook) => {
      saved.push(JSON.parse(JSON.stringify(notebook)));
    },
  });
  assertEquals(result.status, "ok");
  // before the first cell and after the first; the end result is the caller's to save
  assertEquals(saved.length, 2);
  for (const s of saved) {
    assertEquals((s.metadata.deno_runner as Record<string, unknown>).status, "running");
    assertValidNotebook(s, "checkpoint");
  }
  assertEquals(codeCells(saved[0]).map((c) => c.outputs.length), [0, 0]);
  assertEquals(codeCells(saved[1]).map((c) => c.outputs.map(summarize)), [
    [["stream", "stdout", "one\n"]],
    [],
  ]);
});

Deno.test("runner: a runaway stream keeps the notebook bounded: first and last lines, a note", async () => {
  const nb = notebookOf(codeCell('for (let i = 0; i < 5000; i++) console.log("line " + i);'));
  const result = await runNotebook(nb, { cwd: FIXTURES, streamLineLimit: 200 });
  assertEquals(result.status, "ok", result.error?.message);
  const [out] = codeCells(result.notebook)[0].outputs;
  assert(out.output_type === "stream");
  const lines = out.text as string[];
  assertEquals(lines.length, 201);
  assertEquals(lines[0], "line 0\n");
  assertEquals(lines[99], "line 99\n");
  assertStringIncludes(lines[100], "4800 lines left out");
  assertEquals(lines[101], "line 4900\n");
  assertEquals(lines[200], "line 4999\n");
  assertValidNotebook(result.notebook);
});

Deno.test("output log: lines prefixed with their cell, partial lines held, displays summarised", () => {
  const out: string[] = [];
  const err: string[] = [];
  const log = new OutputLog({ out: (l) => out.push(l), err: (l) => err.push(l) });
  log.message(4, msg("stream", { name: "stdout", text: "a\nb" }));
  log.message(4, msg("stream", { name: "stderr", text: "warn\n" }));
  assertEquals(out, ["[cell 5] a"], "an unfinished line waits");
  log.message(4, msg("stream", { name: "stdout", text: "c\n" }));
  log.message(
    4,
    msg("display_data", { data: { "text/html": "x".repeat(2048), "text/plain": "plot" } }),
  );
  log.message(4, msg("stream", { name: "stdout", text: "tail" }));
  log.message(4, msg("error", { ename: "RangeError", evalue: "bad", traceback: [] }));
  log.flush(4);
  assertEquals(out, [
    "[cell 5] a",
    "[cell 5] bc",
    "[cell 5] display_data: text/html 2.0 kB, text/plain 4 B",
    "[cell 5] tail",
  ]);
  assertEquals(err, ["[cell 5] warn", "[cell 5] error: RangeError: bad"]);
});
