import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { fileURLToPath } from "node:url";
import { parseCliArgs, UsageError } from "../lib/notebook/cli.ts";
import type { CodeCell, Notebook } from "../lib/notebook/nbformat.ts";
import { assertValidNotebook, FIXTURES, pgrep, summarize } from "./_notebook_helpers.ts";

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
  });
  assertEquals(parseCliArgs(["report", "--timeout", "2.5"]).timeoutSeconds, 2.5);
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

Deno.test("cli: SIGINT during a run kills the kernel and still writes the partial results", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "lib/notebook/cli.ts", "run", `${FIXTURES}timeout.ipynb`, "--out", tmp],
      cwd: ROOT,
      env: { TMPDIR: tmp, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let stdout = "";
    while (!stdout.includes("[1/3]")) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    await new Promise((r) => setTimeout(r, 500)); // cell 2 is now waiting
    assertEquals(
      (await pgrep(`${tmp}/deno-kernel-`)).length,
      1,
      "expected one kernel while the cell runs",
    );
    const sent = performance.now();
    child.kill("SIGINT");
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })(),
    ]);
    assert(performance.now() - sent < 10_000, "the CLI took too long to stop");
    assertEquals(status.code, 130, stderr);
    assertStringIncludes(stderr, "SIGINT");
    const nb = await readJson(`${tmp}/timeout.ipynb`);
    assertValidNotebook(nb);
    const cells = nb.cells.filter((c): c is CodeCell => c.cell_type === "code");
    assertEquals(cells[1].outputs.map(summarize)[0], ["stream", "stdout", "waiting\n"]);
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), [], "a kernel survived the SIGINT");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
