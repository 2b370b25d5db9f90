/**
 * Notebook parameters, papermill's convention for TypeScript notebooks: the code cell tagged
 * `parameters` declares the defaults (`const epochs = 2;`, `let lr: number = 0.1;`,
 * `const dataset = 'auto';`, booleans, arrays, objects), and the values a run overrides go into
 * a new code cell tagged `injected-parameters` right after it, which declares them again.
 *
 * Re-declaring works because the Deno kernel evaluates each cell like a REPL line, where a later
 * `const`/`let` of the same top-level name replaces the earlier binding (checked on Deno 2.9:
 * `const x = 1` in one cell, `const x = 2; x` in a later one gives 2). So the parameters cell
 * stays untouched, `const` stays `const`, and cells after the injected one see the new values.
 *
 * The cell is read with the TypeScript compiler's parser (`typescript`, as in `syntax.ts`); only
 * its top-level declarations count. Values are checked before anything runs: a name the
 * parameters cell does not declare, a value of another type than the default (number, string,
 * boolean, array, object), or one outside a union of literals the declaration names
 * (`let mode: "fast" | "exact" = "fast"`) is refused with a {@linkcode ParameterError} that lists
 * the known parameters and their defaults.
 *
 * @example
 * ```ts
 * import { injectParameters, parseParameterArgs } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * const values = parseParameterArgs(nb, ["epochs=5", "dataset=shapes"]);
 * const withParams = injectParameters(nb, values);
 * ```
 * @module
 */
import { parse as parseYaml } from "yaml";
import ts from "typescript";
import { assertedTypes, literalChoices, literalValue, NOT_LITERAL, unwrap } from "./_literal.ts";
import { type CodeCell, hasTag, joinSource, newCellId, type Notebook } from "./nbformat.ts";

/**
 * Tag of the cell holding the defaults.
 *
 * @example
 * ```ts
 * import { PARAMETERS_TAG } from "./parameters.ts";
 * const cell = { cell_type: "code", metadata: { tags: [PARAMETERS_TAG] }, source: "const n = 1;" };
 * ```
 */
export const PARAMETERS_TAG = "parameters";
/**
 * Tag of the cell the runner inserts with the overriding values.
 *
 * @example
 * ```ts
 * import { INJECTED_TAG } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const isInjected = (nb: Notebook, i: number) => nb.cells[i].metadata.tags?.includes(INJECTED_TAG);
 * ```
 */
export const INJECTED_TAG = "injected-parameters";

/** The kinds of values a parameter can hold. */
export type ParameterType =
  | "number"
  | "string"
  | "boolean"
  | "array"
  | "object"
  | "null"
  | "unknown";

/** One declaration found in the parameters cell. */
export interface ParameterDeclaration {
  /** Variable name. */
  name: string;
  /** Declaration keyword. */
  keyword: "const" | "let" | "var";
  /** Default value (when {@linkcode ParameterDeclaration.literal} is true). */
  value: unknown;
  /** Whether the initializer is a literal this module could read. */
  literal: boolean;
  /** Source text of the initializer. */
  source: string;
  /** Type of the default; "unknown" when the initializer is not a literal. */
  type: ParameterType;
  /**
   * The only values allowed, when the declaration's type is a union of literals: its annotation
   * (`let mode: "fast" | "exact" = "fast"`) or, without one, an `as` or `satisfies` type.
   */
  choices?: unknown[];
}

/** A parameter problem found before the run (unknown name, wrong type, bad syntax, ...). */
export class ParameterError extends Error {
  /**
   * @example
   * ```ts
   * import { ParameterError } from "./parameters.ts";
   * throw new ParameterError('unknown parameter "x"');
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "ParameterError";
  }
}

/**
 * Index of the first code cell tagged `parameters`, or -1.
 *
 * @example
 * ```ts
 * import { findParametersCell } from "./parameters.ts";
 * findParametersCell({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }); // -1
 * ```
 */
export function findParametersCell(nb: Notebook): number {
  return nb.cells.findIndex((c) => c.cell_type === "code" && hasTag(c, PARAMETERS_TAG));
}

/**
 * The type of a value as parameters see it.
 *
 * @example
 * ```ts
 * import { typeOfValue } from "./parameters.ts";
 * typeOfValue([1, 2]); // "array"
 * typeOfValue(0.1); // "number"
 * ```
 */
export function typeOfValue(value: unknown): ParameterType {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "array";
  const t = typeof value;
  if (t === "number" || t === "string" || t === "boolean") return t;
  if (t === "object") return "object";
  return "unknown";
}

const IDENT = /^[A-Za-z_$][\w$]*/;

/** The keyword of a declaration list; undefined for `using` and `await using`. */
function keywordOf(list: ts.VariableDeclarationList): ParameterDeclaration["keyword"] | undefined {
  const scoped = list.flags & ts.NodeFlags.BlockScoped;
  if (scoped === 0) return "var";
  if (scoped === ts.NodeFlags.Let) return "let";
  return scoped === ts.NodeFlags.Const ? "const" : undefined;
}

/** The values a declaration's annotation (or, without one, its `as`/`satisfies`) allows. */
function choicesOf(decl: ts.VariableDeclaration, init: ts.Expression): unknown[] | undefined {
  for (const type of [...(decl.type ? [decl.type] : []), ...assertedTypes(init)]) {
    const choices = literalChoices(type);
    if (choices) return choices;
  }
  return undefined;
}

function declarationOf(
  decl: ts.VariableDeclaration,
  keyword: ParameterDeclaration["keyword"],
): ParameterDeclaration | undefined {
  // Destructuring, or no initializer (`let x: number;`): not a parameter.
  if (!ts.isIdentifier(decl.name) || !decl.initializer) return undefined;
  const init = decl.initializer;
  const value = literalValue(init);
  const literal = value !== NOT_LITERAL;
  const choices = choicesOf(decl, init);
  return {
    name: decl.name.text,
    keyword,
    value: literal ? value : undefined,
    literal,
    source: (literal ? unwrap(init) : init).getText(),
    type: literal ? typeOfValue(value) : "unknown",
    ...(choices ? { choices } : {}),
  };
}

/**
 * Reads the top-level `const|let|var name[: Type] = <literal>` declarations of a cell, with the
 * TypeScript compiler's parser (so comments, multi-line types and values, and strings holding
 * brackets are read as TypeScript reads them). A declaration whose initializer is not a literal
 * is returned with `literal: false`; declarations inside blocks and functions are not
 * parameters.
 *
 * @example
 * ```ts
 * import { parseParameterDeclarations } from "./parameters.ts";
 * const decls = parseParameterDeclarations(`const epochs = 2;\nlet lr: number = 0.1; // rate`);
 * decls.map((d) => [d.name, d.value]); // [["epochs", 2], ["lr", 0.1]]
 * ```
 */
export function parseParameterDeclarations(source: string): ParameterDeclaration[] {
  const file = ts.createSourceFile("parameters.ts", source, ts.ScriptTarget.ESNext, true);
  const out: ParameterDeclaration[] = [];
  for (const statement of file.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    const keyword = keywordOf(statement.declarationList);
    if (!keyword) continue;
    for (const decl of statement.declarationList.declarations) {
      const found = declarationOf(decl, keyword);
      if (found) out.push(found);
    }
  }
  return out;
}

/**
 * The declarations of the notebook's parameters cell (empty when there is none).
 *
 * @example
 * ```ts
 * import { notebookParameters } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * for (const p of notebookParameters(nb)) console.log(p.name, p.value);
 * ```
 */
export function notebookParameters(nb: Notebook): ParameterDeclaration[] {
  const at = findParametersCell(nb);
  return at < 0 ? [] : parseParameterDeclarations(joinSource(nb.cells[at].source));
}

/**
 * The parameters in effect for a run: the notebook's defaults with `overrides` applied, the one
 * place where the two are combined (the runner's result, the report header and the report cache
 * all use this).
 *
 * @example
 * ```ts
 * import { parametersInEffect } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * parametersInEffect(nb, { seed: 3 }); // e.g. { seed: 3, backend: "auto", native: "auto" }
 * ```
 */
export function parametersInEffect(
  nb: Notebook,
  overrides: Record<string, unknown>,
): Record<string, unknown> {
  return { ...parameterDefaults(nb), ...overrides };
}

/**
 * Default values of the notebook's parameters (literal ones), by name.
 *
 * @example
 * ```ts
 * import { parameterDefaults } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * console.log(parameterDefaults(nb)); // e.g. { epochs: 2, dataset: "auto" }
 * ```
 */
export function parameterDefaults(nb: Notebook): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of notebookParameters(nb)) if (d.literal) out[d.name] = d.value;
  return out;
}

/** TypeScript source for a value (JSON, plus non-finite numbers and undefined). */
function literalSource(value: unknown): string {
  if (value === undefined) return "undefined";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value);
}

/**
 * Lists parameters with their defaults, one per line (for error messages and `--help`).
 *
 * @example
 * ```ts
 * import { describeParameters, parseParameterDeclarations } from "./parameters.ts";
 * console.log(describeParameters(parseParameterDeclarations("const epochs = 2;")));
 * // "  epochs = 2 (number)"
 * ```
 */
export function describeParameters(decls: ParameterDeclaration[]): string {
  if (decls.length === 0) return "  (the parameters cell declares none)";
  return decls
    .map((d) => {
      const value = d.literal ? literalSource(d.value) : d.source;
      const choices = d.choices ? `, one of ${choicesText(d.choices)}` : "";
      return `  ${d.name} = ${value} (${d.type}${choices})`;
    })
    .join("\n");
}

function choicesText(choices: unknown[]): string {
  return choices.map(literalSource).join(" | ");
}

function knownList(decls: ParameterDeclaration[]): string {
  return `Known parameters (cell tagged "${PARAMETERS_TAG}"), with their defaults:\n${
    describeParameters(decls)
  }`;
}

/**
 * Parses one `-p` argument, `name=value`, into its name and raw text.
 *
 * @example
 * ```ts
 * import { splitParameterArg } from "./parameters.ts";
 * splitParameterArg("lr=0.5"); // { name: "lr", raw: "0.5" }
 * ```
 */
export function splitParameterArg(arg: string): { name: string; raw: string } {
  const eq = arg.indexOf("=");
  const name = eq < 0 ? "" : arg.slice(0, eq).trim();
  if (eq < 0 || !IDENT.test(name) || IDENT.exec(name)![0] !== name) {
    throw new ParameterError(
      `bad parameter "${arg}": expected name=value, e.g. -p epochs=5 or -p dataset=mnist`,
    );
  }
  return { name, raw: arg.slice(eq + 1) };
}

/**
 * The value of a `-p` text: JSON when it parses as JSON, otherwise the text as a string. When
 * the default is a string, the text is taken as the string itself (so `-p run=2024` keeps
 * `"2024"`), unless it is a JSON string literal (`-p name='"quoted"'`).
 *
 * @example
 * ```ts
 * import { valueFromText } from "./parameters.ts";
 * valueFromText("5"); // 5
 * valueFromText("[1,2]"); // [1, 2]
 * valueFromText("mnist"); // "mnist"
 * valueFromText("2024", "string"); // "2024"
 * ```
 */
export function valueFromText(raw: string, defaultType?: ParameterType): unknown {
  let parsed: unknown;
  let isJson = true;
  try {
    parsed = JSON.parse(raw);
  } catch {
    isJson = false;
  }
  if (defaultType === "string") return isJson && typeof parsed === "string" ? parsed : raw;
  return isJson ? parsed : raw;
}

/**
 * Reads parameter values from a file (papermill's `-f`): a JSON object (`.json`) or a YAML
 * mapping (`.yaml`, `.yml`, read with the `yaml` package). Values keep their JSON/YAML types;
 * {@linkcode parseParameterArgs} checks them against the notebook like `-p` values. Throws
 * {@linkcode ParameterError} naming the file when it is missing, unreadable, of another kind, or
 * not a mapping of names to values.
 *
 * @example
 * ```ts
 * import { readParameterFile } from "./parameters.ts";
 * await Deno.writeTextFile("/tmp/params.yaml", "epochs: 3\ndataset: synthetic\n");
 * await readParameterFile("/tmp/params.yaml"); // { epochs: 3, dataset: "synthetic" }
 * ```
 */
export async function readParameterFile(path: string): Promise<Record<string, unknown>> {
  const yaml = /\.ya?ml$/i.test(path);
  if (!yaml && !/\.json$/i.test(path)) {
    throw new ParameterError(`parameter file ${path}: expected a .json, .yaml or .yml file`);
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "not found" : String(e);
    throw new ParameterError(`parameter file ${path}: ${why}`);
  }
  let values: unknown;
  try {
    values = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ParameterError(
      `parameter file ${path} is not valid ${yaml ? "YAML" : "JSON"}: ${why}`,
    );
  }
  if (!values || typeof values !== "object" || Array.isArray(values)) {
    throw new ParameterError(
      `parameter file ${path} must hold a mapping of names to values, e.g. {"epochs": 3}`,
    );
  }
  for (const name of Object.keys(values)) {
    if (!IDENT.test(name) || IDENT.exec(name)![0] !== name) {
      throw new ParameterError(`parameter file ${path}: "${name}" is not a parameter name`);
    }
  }
  return values as Record<string, unknown>;
}

/**
 * Turns `-p name=value` arguments into typed values for {@linkcode injectParameters}, checking
 * them against the notebook's parameters cell. Values from parameter files (`fromFiles`, see
 * {@linkcode readParameterFile}) come first; a `-p` of the same name wins.
 *
 * @example
 * ```ts
 * import { parseParameterArgs } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * parseParameterArgs(nb, ["epochs=3"]); // { epochs: 3 }
 * ```
 */
export function parseParameterArgs(
  nb: Notebook,
  args: string[],
  fromFiles: Record<string, unknown> = {},
): Record<string, unknown> {
  const decls = notebookParameters(nb);
  const byName = new Map(decls.map((d) => [d.name, d]));
  const values: Record<string, unknown> = { ...fromFiles };
  for (const arg of args) {
    const { name, raw } = splitParameterArg(arg);
    values[name] = valueFromText(raw, byName.get(name)?.type);
  }
  checkParameters(nb, values);
  return values;
}

/**
 * Checks override values against the parameters cell; throws {@linkcode ParameterError} for a
 * notebook without a parameters cell, an unknown name, a value of another type than the
 * default's, or one its declared union of literals does not allow. Returns the declarations.
 *
 * @example
 * ```ts
 * import { checkParameters } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * checkParameters(nb, { epochs: "five" }); // throws: expects a number
 * ```
 */
export function checkParameters(
  nb: Notebook,
  values: Record<string, unknown>,
): ParameterDeclaration[] {
  const names = Object.keys(values);
  if (names.length === 0) return notebookParameters(nb);
  if (findParametersCell(nb) < 0) {
    throw new ParameterError(
      `the notebook has no code cell tagged "${PARAMETERS_TAG}", so it takes no parameters ` +
        `(got ${names.map((n) => `-p ${n}`).join(", ")})`,
    );
  }
  const decls = notebookParameters(nb);
  const byName = new Map(decls.map((d) => [d.name, d]));
  for (const name of names) {
    const decl = byName.get(name);
    if (!decl) {
      throw new ParameterError(`unknown parameter "${name}". ${knownList(decls)}`);
    }
    const want = decl.type;
    const got = typeOfValue(values[name]);
    if (want !== "unknown" && want !== "null" && want !== got) {
      throw new ParameterError(
        `parameter "${name}" expects a ${want} like its default ${literalSource(decl.value)}, got ${
          literalSource(values[name])
        } (${got}). ${knownList(decls)}`,
      );
    }
    if (decl.choices && !decl.choices.includes(values[name])) {
      throw new ParameterError(
        `parameter "${name}" expects one of ${choicesText(decl.choices)}, got ${
          literalSource(values[name])
        }. ${knownList(decls)}`,
      );
    }
  }
  return decls;
}

/**
 * Source of the injected cell: one declaration per overridden parameter, with the keyword of
 * the original declaration.
 *
 * @example
 * ```ts
 * import { injectedSource, parseParameterDeclarations } from "./parameters.ts";
 * injectedSource(parseParameterDeclarations("const epochs = 2;"), { epochs: 5 });
 * // "// Injected parameters\nconst epochs = 5;"
 * ```
 */
export function injectedSource(
  decls: ParameterDeclaration[],
  values: Record<string, unknown>,
): string {
  const byName = new Map(decls.map((d) => [d.name, d]));
  const lines = Object.entries(values).map(([name, value]) =>
    `${byName.get(name)?.keyword ?? "const"} ${name} = ${literalSource(value)};`
  );
  return ["// Injected parameters", ...lines].join("\n");
}

/**
 * Returns a copy of the notebook with a code cell tagged `injected-parameters` right after the
 * parameters cell (replacing an injected cell left from an earlier run). Throws
 * {@linkcode ParameterError} when the values do not fit (see {@linkcode checkParameters}).
 * With no values the notebook is returned unchanged (a copy).
 *
 * @example
 * ```ts
 * import { injectParameters } from "./parameters.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * const out = injectParameters(nb, { epochs: 5 });
 * ```
 */
export function injectParameters(nb: Notebook, values: Record<string, unknown>): Notebook {
  const copy: Notebook = structuredClone(nb);
  const decls = checkParameters(copy, values);
  if (Object.keys(values).length === 0) return copy;
  copy.cells = copy.cells.filter((c) => !hasTag(c, INJECTED_TAG));
  const at = findParametersCell(copy);
  const cell: CodeCell = {
    cell_type: "code",
    id: newCellId(),
    metadata: { tags: [INJECTED_TAG] },
    execution_count: null,
    outputs: [],
    source: injectedSource(decls, values),
  };
  copy.cells.splice(at + 1, 0, cell);
  return copy;
}
