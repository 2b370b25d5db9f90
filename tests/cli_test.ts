import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { fileURLToPath } from "node:url";
import { parseCliArgs } from "../lib/notebook/cli.ts";
import { runAndWrite, UsageError } from "../lib/notebook/execute.ts";
import type { CodeCell, Notebook } from "../lib/notebook/nbformat.ts";
import {
  assertValidNotebook,
  FIXTURES,
  forgingKernel,
  pgrep,
  summarize,
} from "./_notebook_helpers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno <args>` in the repository root with its own TMPDIR (kernel files land there). */
async function deno(args: string[], tmp: string): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { TMPDIR: tmp, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function readJson(path: string): Promise<Notebook> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("cli: run writes the executed notebook and its HTML report, with -p applied", async () => {
  const tmp = await Deno.makeTempDir();
  const out = `${tmp}/out`;
  try {
    const r = await deno(
      ["task", "run", `${FIXTURES}small.ipynb`, "-p", "epochs=3", "--out", out, "--timeout", "60"],
      tmp,
    );
    assertEquals(r.code, 0, r.stdout + r.stderr);
    assertMatch(r.stdout, /\[2\/4\] cell 3 … \d+\.\ds ok/);
    const nb = await readJson(`${out}/small.ipynb`);
    assertValidNotebook(nb, "small.ipynb from the CLI");
    const cells = nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
    assertEquals(cells[2].outputs.map(summarize), [[
      "stream",
      "stdout",
      "epochs=3 dataset=tiny\n",
    ]]);
    const html = await Deno.readTextFile(`${out}/small.html`);
    assertStringIncludes(html, "epochs=3 dataset=tiny");
    assertStringIncludes(html, "tiny");
    assertEquals((await Array.fromAsync(Deno.readDir(out))).length, 2, "temp files left in --out");
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), [], "a kernel process is left");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli: a failing notebook still writes both files and exits non-zero naming the cell", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const r = await deno(["task", "run", `${FIXTURES}error.ipynb`, "--out", tmp], tmp);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "error.ipynb failed: cell 2");
    assertStringIncludes(r.stderr, "RangeError: planned failure");
    const nb = await readJson(`${tmp}/error.ipynb`);
    assertValidNotebook(nb);
    const html = await Deno.readTextFile(`${tmp}/error.html`);
    assertStringIncludes(html, "planned failure");
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli: bad arguments give clear usage errors (exit 2) without starting a kernel", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${tmp}/broken.ipynb`, "{ not json");
    await Deno.writeTextFile(`${tmp}/notes.txt`, "hello");
    const cases: [string[], string][] = [
      [["run"], "missing the notebook"],
      [["run", `${tmp}/missing.ipynb`], "notebook not found"],
      [["run", `${tmp}/notes.txt`], "is not a notebook (.ipynb)"],
      [["run", `${tmp}/broken.ipynb`], "is not valid JSON"],
      [["run", `${FIXTURES}small.ipynb`, "-p", "epochs"], "expected name=value"],
      [["run", `${FIXTURES}small.ipynb`, "-p", "batch=3"], 'unknown parameter "batch"'],
      [["run", `${FIXTURES}small.ipynb`, "-p", "epochs=lots"], "expects a number like its default"],
      [["run", `${FIXTURES}error.ipynb`, "-p", "epochs=1"], 'no code cell tagged "parameters"'],
      [["run", `${FIXTURES}small.ipynb`, "--timeout", "soon"], "--timeout expects a positive"],
      [["run", `${FIXTURES}small.ipynb`, "--frobnicate"], 'unknown option "--frobnicate"'],
      [["run", `${FIXTURES}small.ipynb`, "--out"], "--out needs a value"],
      [["explode"], 'unknown command "explode"'],
    ];
    for (const [args, expected] of cases) {
      const r = await deno(["run", "-A", "lib/notebook/cli.ts", ...args], tmp);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assertStringIncludes(r.stderr, expected, args.join(" "));
    }
    const list = await deno([
      "run",
      "-A",
      "lib/notebook/cli.ts",
      "run",
      `${FIXTURES}small.ipynb`,
      "-p",
      "x=1",
    ], tmp);
    assertStringIncludes(list.stderr, "epochs = 1 (number)");
    assertStringIncludes(list.stderr, 'dataset = "tiny" (string)');
    assertStringIncludes(list.stderr, "small.ipynb");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli: parseCliArgs reads flags in any order", () => {
  assertEquals(parseCliArgs(["run", "--continue-on-error", "a.ipynb", "-p", "x=1", "--out=o"]), {
    command: "run",
    notebook: "a.ipynb",
    params: ["x=1"],
    paramFiles: [],
    out: "o",
    notebooksDir: "notebooks",
    autosaveSeconds: 30,
    continueOnError: true,
    logOutput: false,
    allowDegraded: false,
    force: false,
    noInput: false,
    pdf: false,
  });
  assertEquals(parseCliArgs(["report", "--timeout", "2.5"]).timeoutSeconds, 2.5);
  const run = parseCliArgs([
    "run",
    "a.ipynb",
    "-f",
    "a.yaml",
    "--parameters-file=b.json",
    "--parameter",
    "y=2",
    "--log-output",
    "--autosave",
    "5",
    "--allow-degraded",
  ]);
  assertEquals(
    [run.paramFiles, run.params, run.logOutput, run.autosaveSeconds, run.allowDegraded],
    [["a.yaml", "b.json"], ["y=2"], true, 5, true],
  );
  assertEquals(parseCliArgs(["report", "--force"]).force, true);
  const refused: [string[], string][] = [
    [["run", "a.ipynb", "--frobnicate=1"], 'unknown option "--frobnicate"'],
    [["run", "a.ipynb", "--out", "-p", "x=1"], "--out needs a value"],
    [["run", "a.ipynb", "-f"], "-f needs a value"],
    [["run", "a.ipynb", "--autosave", "0"], "--autosave expects a positive number"],
    [["run", "a.ipynb", "--log-output=yes"], "--log-output takes no value"],
    [["run", "a.ipynb", "--force"], "--force is for report"],
    [["report", "-p", "x=1"], "report runs with default parameters; -p is for run"],
    [["report", "-f", "p.yaml"], "report runs with default parameters; -f is for run"],
    [["report", "a.ipynb"], "report takes no notebook arguments"],
  ];
  for (const [args, expected] of refused) {
    let message = "";
    try {
      parseCliArgs(args);
    } catch (e) {
      assert(e instanceof UsageError, `${args.join(" ")}: ${e}`);
      message = e.message;
    }
    assertStringIncludes(message, expected, args.join(" "));
  }
  assertEquals(parseCliArgs(["run", "a.ipynb", "-h"]).command, "help");
  let error: unknown;
  try {
    parseCliArgs(["run", "a.ipynb", "b.ipynb"]);
  } catch (e) {
    error = e;
  }
  assert(error instanceof UsageError);
});

Deno.test("cli: report runs every notebook in sorted order, goes on after a failure", async () => {
  const tmp = await Deno.makeTempDir();
  const dir = `${tmp}/notebooks`;
  try {
    await Deno.mkdir(dir);
    await Deno.copyFile(`${FIXTURES}small.ipynb`, `${dir}/2_small.ipynb`);
    await Deno.copyFile(`${FIXTURES}error.ipynb`, `${dir}/1_error.ipynb`);
    const r = await deno(["task", "report", "--notebooks", dir, "--out", `${tmp}/reports`], tmp);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    assert(r.stdout.indexOf("1_error.ipynb") < r.stdout.indexOf("2_small.ipynb"), r.stdout);
    assertStringIncludes(r.stdout, "Summary: 2 of 2 notebooks run, 1 ok, 1 failed");
    assertMatch(r.stdout, /FAIL 1_error\.ipynb .* cell 2/);
    assertMatch(r.stdout, /ok {3}2_small\.ipynb/);
    const names = (await Array.fromAsync(Deno.readDir(`${tmp}/reports`))).map((e) => e.name).sort();
    assertEquals(names, ["1_error.html", "1_error.ipynb", "2_small.html", "2_small.ipynb"]);
    const html = await Deno.readTextFile(`${tmp}/reports/2_small.html`);
    assertStringIncludes(html, "tiny"); // the dataset parameter's default
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Runs `fn` with a new temporary folder, removed afterwards. */
async function inTempDir(fn: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir();
  try {
    await fn(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Writes tests/fixtures/small.ipynb with one more code cell, `source`, to `path`. */
async function writeSmallWith(path: string, source: string): Promise<void> {
  const nb = await readJson(`${FIXTURES}small.ipynb`);
  nb.cells.push({ cell_type: "code", metadata: {}, source, outputs: [], execution_count: null });
  await Deno.writeTextFile(path, JSON.stringify(nb));
}

/** Starts `deno run -A lib/notebook/cli.ts <args>` and reads its stdout as it comes. */
function spawnCli(args: string[], tmp: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/notebook/cli.ts", ...args],
    cwd: ROOT,
    env: { TMPDIR: tmp, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  return {
    child,
    get stdout() {
      return stdout;
    },
    /** Reads stdout until it includes `text`; false when the output ended first. */
    async until(text: string): Promise<boolean> {
      while (!stdout.includes(text)) {
        const { value, done } = await reader.read();
        if (done) return false;
        stdout += value;
      }
      return true;
    },
    async finish(): Promise<{ code: number; stderr: string }> {
      const [status, stderr] = await Promise.all([
        child.status,
        new Response(child.stderr).text(),
        this.until("\u0000never"),
      ]);
      return { code: status.code, stderr };
    },
  };
}

Deno.test("cli: SIGINT during an await it cannot interrupt kills the kernel and still writes the partial results", () =>
  inTempDir(async (tmp) => {
    const cli = spawnCli(["run", `${FIXTURES}timeout.ipynb`, "--out", tmp], tmp);
    await cli.until("[1/3]");
    await new Promise((r) => setTimeout(r, 500)); // cell 2 is now waiting
    assertEquals(
      (await pgrep(`${tmp}/deno-kernel-`)).length,
      1,
      "expected one kernel while the cell runs",
    );
    const sent = performance.now();
    cli.child.kill("SIGINT");
    const { code, stderr } = await cli.finish();
    assert(performance.now() - sent < 10_000, "the CLI took too long to stop");
    assertEquals(code, 130, stderr);
    assertStringIncludes(stderr, "SIGINT");
    const nb = await readJson(`${tmp}/timeout.ipynb`);
    assertValidNotebook(nb);
    const cells = nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
    const outputs = cells[1].outputs.map(summarize);
    assertEquals(outputs[0], ["stream", "stdout", "waiting\n"]);
    // The Deno kernel cannot stop a cell waiting in an await: it is killed after the grace time.
    assertEquals(outputs.at(-1)?.slice(0, 1).concat(outputs.at(-1)![1]), ["error", "Interrupted"]);
    assertStringIncludes(outputs.at(-1)![2], "so the kernel was killed");
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), [], "a kernel survived the SIGINT");
  }));

Deno.test("cli: Ctrl-C of `deno task run` interrupts the cell by message, saves it marked, exits 130", () =>
  inTempDir(async (tmp) => {
    const nbPath = `${tmp}/spin.ipynb`;
    await writeSmallWith(nbPath, `console.log("spinning");\nwhile (true) {}`);
    const nb0 = await readJson(nbPath);
    nb0.cells.push({
      cell_type: "code",
      metadata: {},
      source: `console.log("after");`,
      outputs: [],
      execution_count: null,
    });
    await Deno.writeTextFile(nbPath, JSON.stringify(nb0));
    const out = `${tmp}/out`;
    // Its own session, so that the signal can go to the whole process group, as a terminal's
    // Ctrl-C does: deno task, the runner and (unless it ignores it) the kernel all receive it.
    const child = new Deno.Command("setsid", {
      args: [Deno.execPath(), "task", "run", nbPath, "--out", out],
      cwd: ROOT,
      env: { TMPDIR: tmp, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let stdout = "";
    while (!stdout.includes("[3/5]")) { // the cell before the spinning one has ended
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    await new Promise((r) => setTimeout(r, 1000));
    const kernels = await pgrep(`${tmp}/deno-kernel-`);
    assertEquals(kernels.length, 1, "expected one kernel while the cell spins");
    Deno.kill(-child.pid, "SIGINT");
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
      (async () => {
        while (true) {
          const { value, done } = await reader.read();
          if (done) return;
          stdout += value;
        }
      })(),
    ]);
    assertEquals(status.code, 130, stdout + stderr);
    assertStringIncludes(stdout, "INTERRUPTED");
    assertStringIncludes(stderr, "was interrupted (SIGINT)");
    assertEquals(stderr.includes("killed"), false, `the kernel was killed: ${stderr}`);
    const nb = await readJson(`${out}/spin.ipynb`);
    assertValidNotebook(nb);
    assertEquals((nb.metadata.deno_runner as { status?: string })?.status, "error");
    const cells = nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
    const spin = cells.at(-2)!.outputs.map(summarize);
    assertEquals(spin, [
      ["stream", "stdout", "spinning\n"],
      ["error", "Interrupted", "Interrupted by SIGINT (Ctrl-C); the run stopped here."],
    ]);
    assertEquals(cells.at(-1)!.outputs, [], "the cell after the interrupted one ran");
    for (let i = 0; i < 50 && (await pgrep(`${tmp}/deno-kernel-`)).length; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), [], "a kernel survived the SIGINT");
  }));

Deno.test("cli: --log-output prints a cell's output before the cell ends", () =>
  inTempDir(async (tmp) => {
    const release = `${tmp}/release`;
    const cli = spawnCli([
      "run",
      `${FIXTURES}long_cell.ipynb`,
      "--log-output",
      "-p",
      `releaseFile=${release}`,
      "-p",
      "maxSeconds=60",
      "--out",
      tmp,
    ], tmp);
    // Cells: markdown, parameters, injected parameters, "first", the waiting one, "after".
    // Cell 5 cannot end before the release file exists: seeing its line first proves streaming.
    assert(await cli.until("[cell 5] waiting\n"), cli.stdout);
    assert(!cli.stdout.includes("[4/5] cell 5"), "cell 5 ended before it was released");
    await Deno.writeTextFile(release, "");
    const { code, stderr } = await cli.finish();
    assertEquals(code, 0, cli.stdout + stderr);
    const first = cli.stdout.indexOf("[cell 4] first done\n");
    assert(first >= 0 && first < cli.stdout.indexOf("[3/5] cell 4"), cli.stdout);
    assertMatch(cli.stdout, /\[cell 5\] released\n\[4\/5\] cell 5 … [\d.]+s ok/);
    assertStringIncludes(cli.stdout, "[cell 6] after\n");
  }));

Deno.test("cli: SIGKILL during a long cell leaves the autosaved notebook, valid, with earlier outputs", () =>
  inTempDir(async (tmp) => {
    const cli = spawnCli([
      "run",
      `${FIXTURES}long_cell.ipynb`,
      "-p",
      `releaseFile=${tmp}/never`,
      "-p",
      "maxSeconds=60",
      "--autosave",
      "0.5",
      "--out",
      tmp,
    ], tmp);
    assert(await cli.until("[3/5] cell 4"), cli.stdout);
    // Wait for an autosave that holds what the running cell printed so far.
    let saved: Notebook | undefined;
    for (let i = 0; i < 200 && !saved; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        const nb = await readJson(`${tmp}/long_cell.ipynb`);
        const cells = nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
        if (cells[3].outputs.length > 0) saved = nb;
      } catch {
        // not written yet (the rename makes a half-written file impossible)
      }
    }
    assert(saved, "no autosave with the running cell's output");
    cli.child.kill("SIGKILL");
    await cli.finish();
    // The kernel outlives its killed client only briefly: it watches its parent process.
    let kernels = await pgrep(`${tmp}/deno-kernel-`);
    for (let i = 0; i < 100 && kernels.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      kernels = await pgrep(`${tmp}/deno-kernel-`);
    }
    for (const pid of kernels) Deno.kill(pid, "SIGKILL"); // clean up before failing
    assertEquals(kernels, [], "the kernel outlived the killed runner");
    const nb = await readJson(`${tmp}/long_cell.ipynb`);
    assertValidNotebook(nb, "the notebook left by a SIGKILL");
    const runner = nb.metadata.deno_runner as Record<string, unknown>;
    assertEquals(runner.status, "running");
    assertEquals(runner.running_cell, 5);
    const cells = nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
    assertEquals(cells[2].outputs.map(summarize), [["stream", "stdout", "first done\n"]]);
    assertEquals(cells[3].outputs.map(summarize), [["stream", "stdout", "waiting\n"]]);
    assertEquals(cells[4].outputs, []);
    assert(cells[2].metadata.execution, "the finished cell has no timing");
    const html = await Deno.readTextFile(`${tmp}/long_cell.html`);
    assertStringIncludes(html, "first done");
    assertStringIncludes(html, `<span class="status">running</span>`);
    const left = (await Array.fromAsync(Deno.readDir(tmp))).map((e) => e.name).sort();
    assertEquals(left.filter((n) => n.startsWith("long_cell")), [
      "long_cell.html",
      "long_cell.ipynb",
    ]);
  }));

Deno.test("cli: -f reads parameters from YAML or JSON; -p wins; same checks", () =>
  inTempDir(async (tmp) => {
    await Deno.writeTextFile(`${tmp}/p.yaml`, "epochs: 2\ndataset: from-yaml\n");
    await Deno.writeTextFile(`${tmp}/p.json`, '{"epochs": "two"}');
    const r = await deno([
      "task",
      "run",
      `${FIXTURES}small.ipynb`,
      "-f",
      `${tmp}/p.yaml`,
      "-p",
      "epochs=3",
      "--out",
      tmp,
    ], tmp);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const nb = await readJson(`${tmp}/small.ipynb`);
    const streams = nb.cells.flatMap((c) => c.cell_type === "code" ? c.outputs : [])
      .map(summarize).filter(([type]) => type === "stream");
    assertEquals(streams, [["stream", "stdout", "epochs=3 dataset=from-yaml\n"]]);
    const cli = ["run", "-A", "lib/notebook/cli.ts"];
    const bad = await deno([...cli, "run", `${FIXTURES}small.ipynb`, "-f", `${tmp}/p.json`], tmp);
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, 'parameter "epochs" expects a number like its default 1');
  }));

Deno.test("cli: a notebook with a syntax error is refused naming cell, line and column", () =>
  inTempDir(async (tmp) => {
    await writeSmallWith(`${tmp}/typo.ipynb`, "const ok = 1;\nconst broken = ;");
    const r = await deno(["task", "run", `${tmp}/typo.ipynb`, "--out", `${tmp}/out`], tmp);
    assertEquals(r.code, 2, r.stdout + r.stderr);
    assertMatch(
      r.stderr,
      /typo\.ipynb refused, syntax error before anything ran: cell 5 \(code cell 4\), line 2, column 16: Expression expected\./,
    );
    assert(!r.stdout.includes("[1/"), "a cell ran");
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), []);
    await Deno.stat(`${tmp}/out`).then(() => assert(false, "files were written"), () => {});
  }));

Deno.test("cli: report skips an unchanged notebook and re-runs after a change or with --force", async () => {
  const tmp = await Deno.makeTempDir();
  const dir = `${tmp}/notebooks`;
  const out = `${tmp}/reports`;
  try {
    await Deno.mkdir(dir);
    await Deno.copyFile(`${FIXTURES}small.ipynb`, `${dir}/small.ipynb`);
    const report = (...extra: string[]) =>
      deno(["task", "report", "--notebooks", dir, "--out", out, ...extra], tmp);
    const first = await report();
    assertEquals(first.code, 0, first.stdout + first.stderr);
    assertStringIncludes(first.stdout, "no earlier report");
    const html = await Deno.readTextFile(`${out}/small.html`);
    assertMatch(
      html,
      /Computed from<\/dt><dd class="report-computed">source [0-9a-f]{12}, parameters [0-9a-f]{12}, dataset none, lib\/ [0-9a-f]{12} \(sha256\); Deno \d+\.\d+\.\d+/,
    );
    const mtime = (await Deno.stat(`${out}/small.ipynb`)).mtime?.getTime();

    const second = await report();
    assertEquals(second.code, 0, second.stdout + second.stderr);
    assertStringIncludes(second.stdout, "Unchanged: ");
    assertStringIncludes(second.stdout, "1 ok (1 unchanged, not re-run)");
    assert(!second.stdout.includes("[1/"), "a cell ran");
    assertEquals((await Deno.stat(`${out}/small.ipynb`)).mtime?.getTime(), mtime);

    const nb = await readJson(`${dir}/small.ipynb`);
    const last = nb.cells.at(-1) as CodeCell;
    last.source = [...(Array.isArray(last.source) ? last.source : [last.source]), "\n// changed"];
    await Deno.writeTextFile(`${dir}/small.ipynb`, JSON.stringify(nb));
    const third = await report();
    assertEquals(third.code, 0, third.stdout + third.stderr);
    assertStringIncludes(third.stdout, "changed: source");
    assertStringIncludes(third.stdout, "[1/");

    const forced = await report("--force");
    assertEquals(forced.code, 0);
    assert(!forced.stdout.includes("Unchanged"), forced.stdout);
    assertStringIncludes(forced.stdout, "[1/");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli: a run that lost a kernel message writes a report that says degraded", () =>
  inTempDir(async (tmp) => {
    await writeSmallWith(`${tmp}/forged.ipynb`, 'console.log("FORGE" + "_ME");');
    const { result } = await runAndWrite(`${tmp}/forged.ipynb`, {
      out: `${tmp}/out`,
      log: () => {},
      kernel: { denoPath: await forgingKernel(tmp) },
    });
    assertEquals(result?.status, "degraded");
    const saved = await readJson(`${tmp}/out/forged.ipynb`);
    assertValidNotebook(saved);
    const runner = saved.metadata.deno_runner as Record<string, unknown>;
    assertEquals(runner.status, "degraded");
    const html = await Deno.readTextFile(`${tmp}/out/forged.html`);
    assertStringIncludes(html, `<span class="status status-error">degraded</span>`);
    assertMatch(
      html,
      /degraded: \d+ kernel messages? lost \(cell \d+: \d+\); outputs may be missing/,
    );
  }));
