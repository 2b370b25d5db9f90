import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import type { CodeCell, Notebook } from "../lib/notebook/nbformat.ts";
import {
  checkParameters,
  findParametersCell,
  INJECTED_TAG,
  injectParameters,
  notebookParameters,
  parameterDefaults,
  ParameterError,
  parseParameterArgs,
  parseParameterDeclarations,
  readParameterFile,
  splitParameterArg,
  valueFromText,
} from "../lib/notebook/parameters.ts";
import { runNotebook } from "../lib/notebook/runner.ts";
import {
  assertValidNotebook,
  childKernels,
  codeCell,
  fixture,
  FIXTURES,
  notebookOf,
  summarize,
} from "./_notebook_helpers.ts";

Deno.test("parameters: declarations with types, quotes, arrays, objects and comments are read", () => {
  const decls = parseParameterDeclarations(`// defaults
const epochs = 2;
let lr: number = 0.1; // learning rate
const dataset = 'auto';
const title = "say \\"hi\\"";
var flag: boolean = true, other = false;
const layers: number[] = [
  32, 16, // hidden
];
const opts = { a: 1, 'b': [true, null], };
const big = 1_000, neg = -3e-2;
const mode = "a" as const;
const computed = Math.PI * 2;
function f() { const inner = 5; return inner; }
if (f()) { let nested = 1; }
const tpl = \`plain\`;
`);
  const table = Object.fromEntries(decls.map((d) => [d.name, [d.keyword, d.value, d.type]]));
  assertEquals(table, {
    epochs: ["const", 2, "number"],
    lr: ["let", 0.1, "number"],
    dataset: ["const", "auto", "string"],
    title: ["const", 'say "hi"', "string"],
    flag: ["var", true, "boolean"],
    other: ["var", false, "boolean"],
    layers: ["const", [32, 16], "array"],
    opts: ["const", { a: 1, b: [true, null] }, "object"],
    big: ["const", 1000, "number"],
    neg: ["const", -0.03, "number"],
    mode: ["const", "a", "string"],
    computed: ["const", undefined, "unknown"],
    tpl: ["const", "plain", "string"],
  });
  assertEquals(decls.find((d) => d.name === "computed")?.source, "Math.PI * 2");
});

Deno.test("parameters: read as TypeScript reads them: multi-line types and values, regex literals, destructuring", () => {
  const decls = parseParameterDeclarations(`const mode:
  | "fast"
  | "exact" = "fast"; // a type over three lines
const pattern = /[{(]/; // brackets in a regex do not hide what follows
const total = epochs
  * 2;
const { a, b } = obj, c = 4;
const wrapped = ("x" satisfies string), paren = (5);
await using handle = open();
export const exported = true;
`);
  const table = Object.fromEntries(
    decls.map((d) => [d.name, d.literal ? d.value : `<${d.source}>`]),
  );
  assertEquals(table, {
    mode: "fast",
    pattern: "</[{(]/>",
    total: "<epochs\n  * 2>",
    c: 4,
    wrapped: "x",
    paren: 5,
    exported: true,
  });
  assertEquals(decls.find((d) => d.name === "mode")?.choices, ["fast", "exact"]);
  assertEquals(decls.find((d) => d.name === "wrapped")?.choices, undefined, "string is no union");
});

Deno.test("parameters: a union of literals (annotation, as, satisfies) limits the values, naming them", () => {
  const nb = notebookOf(codeCell([
    'let mode: "fast" | "exact" = "fast";\n',
    "const level = 1 as 1 | 2 | 3;\n",
    "const seed = null satisfies number | null;\n",
    'const name: string = "a";\n',
  ], ["parameters"]));
  assertEquals(parseParameterArgs(nb, ["mode=exact", "level=3", "name=anything"]), {
    mode: "exact",
    level: 3,
    name: "anything",
  });
  const bad = assertThrows(() => parseParameterArgs(nb, ["mode=slow"]), ParameterError);
  assertStringIncludes(bad.message, 'parameter "mode" expects one of "fast" | "exact", got "slow"');
  assertStringIncludes(bad.message, 'mode = "fast" (string, one of "fast" | "exact")');
  const level = assertThrows(() => checkParameters(nb, { level: 4 }), ParameterError);
  assertStringIncludes(level.message, 'parameter "level" expects one of 1 | 2 | 3, got 4');
  assertStringIncludes(
    assertThrows(() => checkParameters(nb, { level: "2" }), ParameterError).message,
    'parameter "level" expects a number',
  );
  // a type that is not all literals (number | null) leaves the value free
  assertEquals(checkParameters(nb, { seed: 7 }).length, 4);
});

Deno.test("parameters: -p values are JSON when they parse, else strings", () => {
  assertEquals(splitParameterArg("lr=0.5"), { name: "lr", raw: "0.5" });
  assertEquals(splitParameterArg("name=a=b"), { name: "name", raw: "a=b" });
  assertThrows(() => splitParameterArg("novalue"), ParameterError, "expected name=value");
  assertThrows(() => splitParameterArg("1x=2"), ParameterError);
  assertEquals(valueFromText("5"), 5);
  assertEquals(valueFromText("true"), true);
  assertEquals(valueFromText("[1,2]"), [1, 2]);
  assertEquals(valueFromText('{"a":1}'), { a: 1 });
  assertEquals(valueFromText("mnist"), "mnist");
  assertEquals(valueFromText('"quoted"'), "quoted");
  assertEquals(valueFromText("2024", "string"), "2024");
  assertEquals(valueFromText('"x"', "string"), "x");
});

Deno.test("parameters: unknown names and type mismatches are refused with the known list", async () => {
  const nb = await fixture("params.ipynb");
  assertEquals(parameterDefaults(nb), {
    epochs: 2,
    lr: 0.1,
    dataset: "auto",
    verbose: false,
    layers: [32, 16],
  });
  const unknown = assertThrows(() => checkParameters(nb, { epoch: 3 }), ParameterError);
  assertStringIncludes(unknown.message, 'unknown parameter "epoch"');
  for (const line of ["epochs = 2 (number)", "lr = 0.1 (number)", 'dataset = "auto" (string)']) {
    assertStringIncludes(unknown.message, line);
  }
  const mismatches: [string, unknown][] = [
    ["epochs", "five"],
    ["epochs", true],
    ["verbose", 1],
    ["layers", { a: 1 }],
    ["dataset", 3],
  ];
  for (const [name, value] of mismatches) {
    const e = assertThrows(() => checkParameters(nb, { [name]: value }), ParameterError);
    assertStringIncludes(e.message, `parameter "${name}" expects a`);
    assertStringIncludes(e.message, "Known parameters");
  }
  const fromArgs = assertThrows(() => parseParameterArgs(nb, ["epochs=many"]), ParameterError);
  assertStringIncludes(fromArgs.message, 'got "many" (string)');
  assertEquals(parseParameterArgs(nb, ["epochs=7", "dataset=2024", "layers=[8]"]), {
    epochs: 7,
    dataset: "2024",
    layers: [8],
  });
});

Deno.test("parameters: a notebook without a parameters cell refuses parameters", async () => {
  const nb = await fixture("error.ipynb");
  assertEquals(findParametersCell(nb), -1);
  const e = assertThrows(() => injectParameters(nb, { epochs: 1 }), ParameterError);
  assertStringIncludes(e.message, 'no code cell tagged "parameters"');
  assertStringIncludes(e.message, "-p epochs");
  assertEquals(injectParameters(nb, {}).cells.length, nb.cells.length);
});

Deno.test("parameters: refused before any cell runs", async () => {
  const nb = await fixture("params.ipynb");
  let progress = 0;
  const before = await childKernels();
  await assertThrowsAsync(() =>
    runNotebook(nb, { cwd: FIXTURES, parameters: { nope: 1 }, onProgress: () => progress++ })
  );
  assertEquals(progress, 0);
  assertEquals(await childKernels(), before);
});

async function assertThrowsAsync(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof ParameterError, `expected a ParameterError, got ${e}`);
    return;
  }
  throw new Error("expected a ParameterError");
}

Deno.test("parameters: injected values re-declare the defaults and later cells see them", async () => {
  const nb = await fixture("params.ipynb");
  const injected = injectParameters(nb, { epochs: 7, dataset: "mnist" });
  const at = findParametersCell(injected);
  const cell = injected.cells[at + 1] as CodeCell;
  assertEquals(cell.metadata.tags, [INJECTED_TAG]);
  assertStringIncludes(String(cell.source), 'const epochs = 7;\nconst dataset = "mnist";');
  // injecting again replaces the earlier injected cell
  assertEquals(injectParameters(injected, { lr: 0.5 }).cells.length, injected.cells.length);

  const result = await runNotebook(nb, {
    cwd: FIXTURES,
    parameters: { epochs: 7, lr: 0.5, dataset: "mnist", layers: [8, 4] },
  });
  assertEquals(result.status, "ok", result.error?.message);
  assertEquals(result.parameters, {
    epochs: 7,
    lr: 0.5,
    dataset: "mnist",
    verbose: false,
    layers: [8, 4],
  });
  const cells = result.notebook.cells.filter((c): c is CodeCell => c.cell_type === "code");
  assertEquals(cells[1].metadata.tags, [INJECTED_TAG]);
  assertEquals(cells[2].outputs.map(summarize), [[
    "stream",
    "stdout",
    '{"epochs":7,"lr":0.5,"dataset":"mnist","verbose":false,"layers":[8,4]}\n',
  ]]);
  assertEquals(cells[3].outputs.map(summarize), [["execute_result", "text/plain", "70"]]);
  assertValidNotebook(result.notebook);
  assertEquals(await childKernels(), []);
});

Deno.test("parameters: without overrides no cell is injected and defaults apply", async () => {
  const nb: Notebook = await fixture("params.ipynb");
  const result = await runNotebook(nb, { cwd: FIXTURES });
  assertEquals(result.status, "ok", result.error?.message);
  assertEquals(result.notebook.cells.length, nb.cells.length);
  const out = (result.notebook.cells[2] as CodeCell).outputs.map(summarize);
  assertEquals(out, [[
    "stream",
    "stdout",
    '{"epochs":2,"lr":0.1,"dataset":"auto","verbose":false,"layers":[32,16]}\n',
  ]]);
});

Deno.test("parameters: -f files (JSON, YAML) give typed values, -p wins, and bad files are named", async () => {
  const nb = await fixture("params.ipynb");
  const tmp = await Deno.makeTempDir();
  try {
    const decls = notebookParameters(nb);
    const name = decls.find((d) => d.type === "number")!.name;
    await Deno.writeTextFile(`${tmp}/p.yaml`, `${name}: 7\n`);
    await Deno.writeTextFile(`${tmp}/p.json`, JSON.stringify({ [name]: 8 }));
    const yaml = await readParameterFile(`${tmp}/p.yaml`);
    assertEquals(yaml, { [name]: 7 });
    assertEquals(parseParameterArgs(nb, [], yaml), { [name]: 7 });
    assertEquals(parseParameterArgs(nb, [`${name}=9`], yaml), { [name]: 9 }, "-p wins");
    assertEquals(await readParameterFile(`${tmp}/p.json`), { [name]: 8 });
    const refused = async (path: string, text: string | null, expected: string) => {
      if (text !== null) await Deno.writeTextFile(path, text);
      let error: unknown;
      try {
        parseParameterArgs(nb, [], await readParameterFile(path));
      } catch (e) {
        error = e;
      }
      assert(error instanceof ParameterError, `${path}: ${error}`);
      assertStringIncludes(error.message, expected);
    };
    await refused(`${tmp}/missing.json`, null, `parameter file ${tmp}/missing.json: not found`);
    await refused(`${tmp}/p.txt`, "x", "expected a .json, .yaml or .yml file");
    await refused(`${tmp}/bad.json`, "{ nope", "is not valid JSON");
    await refused(`${tmp}/bad.yml`, "a: [1,", "is not valid YAML");
    await refused(`${tmp}/list.yaml`, "- 1\n- 2\n", "must hold a mapping");
    await refused(`${tmp}/t.yaml`, `${name}: seven\n`, `parameter "${name}" expects a number`);
    await refused(`${tmp}/u.yaml`, "nosuchparameter: 1\n", 'unknown parameter "nosuchparameter"');
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
