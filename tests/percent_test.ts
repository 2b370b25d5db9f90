import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import { fileURLToPath } from "node:url";
import { ConvertError, ipynbText, listNotebooks, sameInputs } from "../lib/notebook/convert.ts";
import { parseConvertArgs } from "../lib/notebook/convert_cli.ts";
import {
  type Cell,
  type CodeCell,
  joinSource,
  type Notebook,
  NotebookFileError,
  readNotebook,
} from "../lib/notebook/nbformat.ts";
import {
  isPercentText,
  notebookToPercent,
  PercentFormatError,
  percentToNotebook,
} from "../lib/notebook/percent.ts";
import { assertValidNotebook, pgrep, summarize } from "./_notebook_helpers.ts";
import { manifest, sweep } from "./_sweep_helpers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const NOTEBOOKS = ["01_shapes", "02_train", "03_sweep"];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno <args>` in the repository root with its own TMPDIR (kernel files land there). */
async function deno(args: string[], tmp?: string): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...(tmp ? { TMPDIR: tmp } : {}) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function convert(args: string[]): Promise<Ran> {
  return deno(["run", "-A", "lib/notebook/convert_cli.ts", ...args]);
}

/** What a round trip must keep: the notebook's metadata and minor version, each cell's inputs. */
function inputs(nb: Notebook) {
  return {
    nbformat: nb.nbformat,
    nbformat_minor: nb.nbformat_minor,
    metadata: nb.metadata,
    cells: nb.cells.map((c) => ({
      cell_type: c.cell_type,
      id: c.id,
      metadata: c.metadata,
      tags: c.metadata.tags,
      source: joinSource(c.source),
    })),
  };
}

function code(source: string, metadata: Cell["metadata"] = {}, id?: string): CodeCell {
  return {
    cell_type: "code",
    ...(id ? { id } : {}),
    source,
    metadata,
    execution_count: null,
    outputs: [],
  };
}

function notebook(cells: Cell[], metadata: Notebook["metadata"] = {}, minor = 5): Notebook {
  return { nbformat: 4, nbformat_minor: minor, metadata, cells };
}

Deno.test("percent: the three notebooks go ipynb → ts → ipynb → ts exactly, through the CLI", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "percent-" });
  try {
    for (const name of NOTEBOOKS) {
      const original = `notebooks/${name}.ipynb`;
      let r = await convert([original, "--to", "ts", "--out", `${tmp}/ts`]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, `${tmp}/ts/${name}.ts`);
      r = await convert([`${tmp}/ts/${name}.ts`, "--to", "ipynb", "--out", `${tmp}/nb`]);
      assertEquals(r.code, 0, r.stderr);
      const before: Notebook = JSON.parse(await Deno.readTextFile(`${ROOT}${original}`));
      const after: Notebook = JSON.parse(await Deno.readTextFile(`${tmp}/nb/${name}.ipynb`));
      assertValidNotebook(after, `${name}.ipynb from its .ts`);
      assertEquals(inputs(after), inputs(before), name);
      assert(before.cells.some((c) => c.metadata.tags?.includes("parameters")), name);
      r = await convert([`${tmp}/nb/${name}.ipynb`, "--to", "ts", "--out", `${tmp}/ts2`]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(
        await Deno.readTextFile(`${tmp}/ts2/${name}.ts`),
        await Deno.readTextFile(`${tmp}/ts/${name}.ts`),
        `${name}: ts → ipynb → ts`,
      );
      // The way jupytext writes TypeScript: the parameters cell's tag on its marker line,
      // markdown as `// ` comment lines, the metadata in a commented YAML header.
      const ts = await Deno.readTextFile(`${tmp}/ts/${name}.ts`);
      assertMatch(ts, /^\/\/ ---\n\/\/ jupyter:\n\/\/ {3}kernelspec:\n/);
      assertMatch(ts, /^\/\/ %% tags=\["parameters"\] id="[\w-]+"$/m);
      assertMatch(ts, /^\/\/ %% \[markdown\] id="[\w-]+"\n\/\/ # 0\d · /m);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("percent: edge cases keep their cells exactly both ways", () => {
  const nb = notebook([
    {
      cell_type: "markdown",
      id: "md-1",
      source: "# Title\n\n// %% not a cell\n%% nor this",
      metadata: {},
    },
    code("// a comment first\nconst a = 1; // and one after\n// %% looks like a marker\n// // %%"),
    code("", {}, "empty-code"),
    { cell_type: "markdown", source: "", metadata: {} },
    code("const b = 2;\n", { tags: ["parameters"] }, "trailing-newline"),
    code("const c = 3;\n\n\n"),
    { cell_type: "markdown", source: "ends with a newline\n", metadata: {} },
    {
      cell_type: "raw",
      id: "raw",
      source: "raw text\n",
      metadata: { format: "text/plain", jupyter: { source_hidden: true } },
    },
    code("\n\nconst d = 4; // after blank lines", { collapsed: true, tags: ["a b", 'q"uote'] }),
    code("/* block */\nconst e = `\n// %%\n`;"),
  ], {
    kernelspec: { name: "deno", display_name: "Deno", language: "typescript" },
    custom: [1, "2"],
  });
  const text = notebookToPercent(nb);
  const back = percentToNotebook(text);
  assertEquals(inputs(back), inputs(nb));
  assertEquals(notebookToPercent(back), text);
  // Only the ten real markers read as markers.
  assertEquals(text.split("\n").filter((l) => /^\/\/ %%( |$)/.test(l)).length, 10);
  assertStringIncludes(text, "// // %% looks like a marker\n// // // %%\n");
  assertStringIncludes(text, "// // %% not a cell\n// // %% nor this\n");
  assertStringIncludes(text, '// %% collapsed=true tags=["a b","q\\"uote"]\n');
  assertStringIncludes(
    text,
    '// %% [raw] format="text/plain" jupyter={"source_hidden":true} id="raw"',
  );
  // Code stays code: a .ts line for a line of the cell.
  assertStringIncludes(text, "// %%\n// a comment first\nconst a = 1; // and one after\n");
});

Deno.test("percent: a notebook with no metadata has no header; older notebooks have no ids", () => {
  const plain = notebook([code("1 + 1")]);
  assertEquals(notebookToPercent(plain), "// %%\n1 + 1\n");
  assertEquals(percentToNotebook("// %%\n1 + 1\n"), plain);
  const old = notebook([code("x", { tags: ["parameters"] })], {}, 4);
  const text = notebookToPercent(old);
  assertStringIncludes(text, "//   nbformat_minor: 4\n");
  assertEquals(percentToNotebook(text), old);
  assertEquals(notebookToPercent(notebook([])), "");
  assertEquals(percentToNotebook("").cells, []);
  // A notebook with metadata and no cells is a header alone, still told to be a notebook.
  const empty = notebook([], { kernelspec: { name: "deno", display_name: "Deno" } });
  assert(isPercentText(notebookToPercent(empty)));
  assertEquals(percentToNotebook(notebookToPercent(empty)), empty);
});

Deno.test("percent: hand-written forms read as jupytext reads them", () => {
  // Text before the first marker is a code cell; `[md]` is markdown; `//` alone is a blank line.
  const nb = percentToNotebook(
    "import { x } from './x.ts';\n\n// %% [md]\n// # Hi\n//\n// there\n\n// %%\nx;\n",
  );
  assertEquals(nb.cells.map((c) => [c.cell_type, joinSource(c.source)]), [
    ["code", "import { x } from './x.ts';"],
    ["markdown", "# Hi\n\nthere"],
    ["code", "x;"],
  ]);
  assert(isPercentText("// %%\n"));
  assert(!isPercentText("// %%timeit\nexport const a = 1;\n"));
  // CRLF files read like LF ones.
  assertEquals(percentToNotebook("// %%\r\na;\r\n\r\n// %%\r\nb;\r\n").cells.length, 2);
});

Deno.test("percent: bad markers, headers and cells are refused naming the line", () => {
  const cases: [string, RegExp][] = [
    ["// %% [python]\nx\n", /line 1: unknown cell type \[python\]/],
    ["// %%\na\n\n// %% tags=parameters\n", /line 4: the value of tags .* is not JSON/],
    ["// %% my title\n", /line 1: cannot read "my title" in the cell marker \(expected key=JSON/],
    ['// %% id="has space"\n', /line 1: cell id "has space"/],
    ["// ---\n// jupyter:\n//   a: 1\n", /line 1: the header has no closing "\/\/ ---"/],
    [
      "// ---\n// title: x\n// ---\n// %%\n",
      /unknown header key "title" \(expected only "jupyter"\)/,
    ],
    ["// ---\n// jupyter: [1\n// ---\n", /line 2: the header is not YAML/],
    ["// ---\n// jupyter:\n//   nbformat: 3\n// ---\n", /nbformat 3 in the header \(expected 4\)/],
  ];
  for (const [text, message] of cases) {
    const e = assertThrows(() => percentToNotebook(text), PercentFormatError);
    assertMatch(e.message, message);
  }
  const attached: Notebook = notebook([{
    cell_type: "markdown",
    source: "![x](attachment:x.png)",
    metadata: {},
    attachments: { "x.png": { "image/png": "AAAA" } },
  }]);
  assertThrows(
    () => notebookToPercent(attached),
    PercentFormatError,
    "cell 1 (markdown) has attachments",
  );
  assertThrows(
    () => notebookToPercent(notebook([code("x", { "two words": 1 })])),
    PercentFormatError,
    'metadata key "two words" cannot be written in a cell marker',
  );
});

Deno.test("percent: readNotebook reads .ts notebooks and names the file in its errors", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "percent-" });
  try {
    await Deno.writeTextFile(`${tmp}/nb.ts`, '// %% tags=["parameters"]\nconst n = 2;\n');
    const nb = await readNotebook(`${tmp}/nb.ts`);
    assertEquals(nb.cells[0].metadata.tags, ["parameters"]);
    await Deno.writeTextFile(`${tmp}/module.ts`, "export const a = 1;\n");
    await Deno.writeTextFile(`${tmp}/bad.ts`, "// %% [python]\n");
    const e1 = await readNotebook(`${tmp}/module.ts`).catch((e) => e);
    assert(e1 instanceof NotebookFileError);
    assertStringIncludes(e1.message, `${tmp}/module.ts is not a percent-format notebook`);
    const e2 = await readNotebook(`${tmp}/bad.ts`).catch((e) => e);
    assert(e2 instanceof NotebookFileError);
    assertStringIncludes(e2.message, `${tmp}/bad.ts: line 1: unknown cell type`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: usage and file errors exit 2 and write nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "percent-" });
  try {
    await Deno.writeTextFile(`${tmp}/notes.txt`, "hello");
    const small = `${tmp}/small.ts`;
    await Deno.writeTextFile(small, "// %%\n1;\n");
    const cases: [string[], string][] = [
      [[], "missing the notebook to convert"],
      [[small], "missing --to ts or --to ipynb"],
      [[small, "--to", "py"], 'unknown --to "py" (expected ts or ipynb)'],
      [[small, "--to", "ts"], "is already .ts; --to ipynb converts it"],
      [[`${tmp}/missing.ipynb`, "--to", "ts"], `notebook not found: ${tmp}/missing.ipynb`],
      [[`${tmp}/notes.txt`, "--to", "ts"], "notes.txt: expected a .ipynb or .ts notebook file"],
      [[small, small, "--to", "ipynb"], "expected one notebook"],
      [[small, "--to", "ipynb", "--bogus"], "--bogus"],
    ];
    for (const [args, expected] of cases) {
      const r = await convert(args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assertStringIncludes(r.stderr, expected, args.join(" "));
    }
    assertEquals((await Array.fromAsync(Deno.readDir(tmp))).map((e) => e.name).sort(), [
      "notes.txt",
      "small.ts",
    ]);
    const help = await convert(["--help"]);
    assertEquals(help.code, 0);
    assertStringIncludes(help.stdout, "--to ts|ipynb");
    assertEquals(parseConvertArgs(["a.ipynb", "--to=ts", "-o", "d", "-f"]), {
      help: false,
      input: "a.ipynb",
      to: "ts",
      out: "d",
      force: true,
    });
    assertThrows(() => parseConvertArgs(["a.ipynb", "--to", "ts", "--out="]), ConvertError);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: an existing output is replaced only with --force, keeping unchanged outputs", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "percent-" });
  try {
    const executed = notebook([
      code("1 + 1", {}, "same"),
      code("2 + 2", {}, "edited"),
    ]);
    for (const [i, cell] of executed.cells.entries()) {
      const c = cell as CodeCell;
      c.execution_count = i + 1;
      c.outputs = [{ output_type: "stream", name: "stdout", text: `out ${i}\n` }];
    }
    const ipynb = `${tmp}/nb.ipynb`;
    await Deno.writeTextFile(ipynb, ipynbText(executed));
    let r = await convert([ipynb, "--to", "ts"]);
    assertEquals(r.code, 0, r.stderr);
    const ts = await Deno.readTextFile(`${tmp}/nb.ts`);
    assert(!ts.includes("out 0"), "outputs do not go into the .ts");
    await Deno.writeTextFile(`${tmp}/nb.ts`, ts.replace("2 + 2", "2 + 3"));
    const before = await Deno.readTextFile(ipynb);
    r = await convert([`${tmp}/nb.ts`, "--to", "ipynb"]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, `${ipynb} exists (--force replaces it)`);
    assertEquals(await Deno.readTextFile(ipynb), before);
    r = await convert([`${tmp}/nb.ts`, "--to", "ipynb", "--force"]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "outputs of 1 unchanged code cells kept");
    const after: Notebook = JSON.parse(await Deno.readTextFile(ipynb));
    assertValidNotebook(after, "converted back with --force");
    const cells = after.cells as CodeCell[];
    assertEquals(cells.map((c) => joinSource(c.source)), ["1 + 1", "2 + 3"]);
    assertEquals(cells.map((c) => c.outputs.map(summarize)), [
      [["stream", "stdout", "out 0\n"]],
      [],
    ]);
    assertEquals(cells.map((c) => c.execution_count), [1, null]);
    // Atomic writes leave no temporary files behind.
    assertEquals((await Array.fromAsync(Deno.readDir(tmp))).map((e) => e.name).sort(), [
      "nb.ipynb",
      "nb.ts",
    ]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("percent: deno check type-checks the converted notebooks, across cells", async () => {
  // Inside the repository at the depth of notebooks/, so that `../lib/mod.ts` resolves.
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: ".percent-check-" });
  try {
    for (const name of NOTEBOOKS) {
      const r = await convert([`notebooks/${name}.ipynb`, "--to", "ts", "--out", dir]);
      assertEquals(r.code, 0, r.stderr);
    }
    const files = NOTEBOOKS.map((n) => `${dir}/${n}.ts`);
    const ok = await deno(["check", ...files]);
    assertEquals(ok.code, 0, ok.stdout + ok.stderr);
    // A cell using the parameters cell's `seed` (a number) as a string fails the check.
    await Deno.writeTextFile(
      files[0],
      (await Deno.readTextFile(files[0])) + "\n// %%\nconst label: string = seed;\n",
    );
    const bad = await deno(["check", files[0]]);
    assertEquals(bad.code, 1, bad.stdout + bad.stderr);
    assertMatch(bad.stderr, /TS2322.*Type 'number' is not assignable to type 'string'/s);
    assertStringIncludes(bad.stderr, "01_shapes.ts");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const SMALL_TS = `// ---
// jupyter:
//   kernelspec:
//     display_name: Deno
//     language: typescript
//     name: deno
//   nbformat: 4
//   nbformat_minor: 5
// ---

// %% [markdown] id="title"
// # A percent notebook
//
// Run from its .ts form.

// %% tags=["parameters"] id="params"
// The defaults; -p overrides them.
const epochs = 1;
const seed = 0;
const runDir = "";

// %% id="work"
// A comment first, then code.
console.log(\`epochs=\${epochs * 10} seed=\${seed}\`);
if (runDir) await Deno.writeTextFile(\`\${runDir}.txt\`, String(seed));
`;

Deno.test("percent: deno task run and report run a .ts notebook on the real kernel", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "percent-run-" });
  try {
    await Deno.mkdir(`${tmp}/nbs`);
    await Deno.writeTextFile(`${tmp}/nbs/small.ts`, SMALL_TS);
    await Deno.writeTextFile(`${tmp}/nbs/helper.ts`, "export const notANotebook = 1;\n");
    const r = await deno(
      ["task", "run", `${tmp}/nbs/small.ts`, "-p", "epochs=3", "--out", `${tmp}/out`],
      tmp,
    );
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const nb: Notebook = JSON.parse(await Deno.readTextFile(`${tmp}/out/small.ipynb`));
    assertValidNotebook(nb, "executed .ts notebook");
    const work = nb.cells.find((c) => c.id === "work") as CodeCell;
    assertEquals(work.outputs.map(summarize), [["stream", "stdout", "epochs=30 seed=0\n"]]);
    assertEquals(nb.cells[0].cell_type, "markdown");
    assertStringIncludes(await Deno.readTextFile(`${tmp}/out/small.html`), "epochs=30 seed=0");
    assertEquals((await Array.fromAsync(Deno.readDir(`${tmp}/out`))).map((e) => e.name).sort(), [
      "small.html",
      "small.ipynb",
    ]);

    // report: runs the .ts notebook of the folder, not the module next to it.
    const rep = await deno(
      ["task", "report", "--notebooks", `${tmp}/nbs`, "--out", `${tmp}/rep`],
      tmp,
    );
    assertEquals(rep.code, 0, rep.stdout + rep.stderr);
    assertEquals((await Array.fromAsync(Deno.readDir(`${tmp}/rep`))).map((e) => e.name).sort(), [
      "small.html",
      "small.ipynb",
    ]);
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), [], "a kernel process is left");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("percent: deno task sweep runs a .ts notebook over a grid", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "percent-sweep-" });
  try {
    await Deno.writeTextFile(`${tmp}/small.ts`, SMALL_TS);
    const r = await sweep([
      `${tmp}/small.ts`,
      "--grid",
      "seed=4,5",
      "--out",
      `${tmp}/s`,
      "--jobs",
      "2",
      "--no-report",
    ]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const m = await manifest(`${tmp}/s`);
    assertEquals(m.runs.map((run) => run.state), ["done", "done"]);
    for (const [i, run] of m.runs.entries()) {
      assertEquals(run.notebook, `runs/${run.id}/small.ipynb`);
      const nb: Notebook = JSON.parse(await Deno.readTextFile(`${tmp}/s/${run.notebook}`));
      const work = nb.cells.find((c) => c.id === "work") as CodeCell;
      assertEquals(work.outputs.map(summarize), [[
        "stream",
        "stdout",
        `epochs=10 seed=${4 + i}\n`,
      ]]);
      // The sweep set runDir to the run's results folder.
      assertEquals(await Deno.readTextFile(`${tmp}/s/runs/${run.id}/results.txt`), String(4 + i));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("percent: listNotebooks runs x.ipynb of a pair and warns when x.ts differs", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "percent-" });
  try {
    const nb = notebook([code("1", {}, "one")]);
    await Deno.writeTextFile(`${tmp}/a.ipynb`, ipynbText(nb));
    await Deno.writeTextFile(`${tmp}/a.ts`, notebookToPercent(nb));
    await Deno.writeTextFile(`${tmp}/b.ts`, notebookToPercent(nb));
    await Deno.writeTextFile(`${tmp}/mod.ts`, "export {};\n");
    assertEquals(await listNotebooks(tmp), { names: ["a.ipynb", "b.ts"], warnings: [] });
    assert(sameInputs(await readNotebook(`${tmp}/a.ipynb`), await readNotebook(`${tmp}/a.ts`)));
    await Deno.writeTextFile(`${tmp}/a.ts`, notebookToPercent(notebook([code("2", {}, "one")])));
    const { names, warnings } = await listNotebooks(tmp);
    assertEquals(names, ["a.ipynb", "b.ts"]);
    assertEquals(warnings.length, 1);
    assertStringIncludes(warnings[0], `${tmp}/a.ts differs from ${tmp}/a.ipynb`);
    assertStringIncludes(warnings[0], `deno task convert ${tmp}/a.ts --to ipynb --force`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
