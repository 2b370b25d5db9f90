/**
 * `deno task convert`: a notebook from `.ipynb` to percent-format `.ts` and back (`convert.ts`).
 *
 * ```sh
 * deno task convert <notebook.ipynb|notebook.ts> --to ts|ipynb [--out DIR] [--force]
 * ```
 *
 * Exit codes: 0 written, 2 usage or file error (nothing written).
 *
 * @example
 * ```ts
 * import { main } from "./convert_cli.ts";
 * const code = await main(["notebooks/01_shapes.ipynb", "--to", "ts", "--out", "/tmp/nb"]);
 * ```
 * @module
 */
import { parseCommandLine } from "../util/cli_args.ts";
import { ConvertError, convertNotebook, type NotebookForm } from "./convert.ts";

/**
 * Usage text.
 *
 * @example
 * ```ts
 * import { USAGE } from "./convert_cli.ts";
 * console.log(USAGE);
 * ```
 */
export const USAGE = `Usage:
  deno task convert <notebook.ipynb|notebook.ts> --to ts|ipynb [--out DIR] [--force]

Writes the notebook in the other form, next to it or into DIR: <name>.ts is a TypeScript file in
jupytext's percent format ("// %%" code cells, "// %% [markdown]" comment cells, a commented
YAML header), which deno check type-checks; <name>.ipynb is a Jupyter notebook. Outputs are not
kept in the .ts; converting back onto an existing .ipynb (with --force) keeps the outputs of the
code cells that did not change.

Options:
  --to ts|ipynb   The form to write (required; the other one than the input's).
  -o, --out DIR   Folder to write into (default: the input's folder; created if missing).
  -f, --force     Replace the output file if it exists.
  -h, --help      Show this help.

Exit codes: 0 written, 2 usage or file error (nothing written).`;

/** Parsed command line. */
export interface ConvertArgs {
  help: boolean;
  input?: string;
  to?: NotebookForm;
  out?: string;
  force: boolean;
}

/**
 * Parses the arguments (without `deno run … convert_cli.ts`); throws {@linkcode ConvertError}.
 *
 * @example
 * ```ts
 * import { parseConvertArgs } from "./convert_cli.ts";
 * parseConvertArgs(["a.ipynb", "--to", "ts"]); // { help: false, input: "a.ipynb", to: "ts", force: false }
 * ```
 */
export function parseConvertArgs(args: string[]): ConvertArgs {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      to: { type: "string" },
      out: { type: "string", short: "o" },
      force: { type: "boolean", short: "f" },
      help: { type: "boolean", short: "h" },
    },
  }, (message) => new ConvertError(message));
  const v = parsed.values;
  if (v.help) return { help: true, force: false };
  const [input, ...extra] = parsed.positionals;
  if (input === undefined) throw new ConvertError("missing the notebook to convert");
  if (extra.length) {
    throw new ConvertError(`expected one notebook, got ${parsed.positionals.join(" ")}`);
  }
  if (v.to === undefined) throw new ConvertError("missing --to ts or --to ipynb");
  if (v.to !== "ts" && v.to !== "ipynb") {
    throw new ConvertError(`unknown --to "${v.to}" (expected ts or ipynb)`);
  }
  if (v.out === "") throw new ConvertError("--out needs a folder");
  return {
    help: false,
    input,
    to: v.to,
    ...(v.out === undefined ? {} : { out: v.out }),
    force: v.force ?? false,
  };
}

/**
 * Runs the command line and returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./convert_cli.ts";
 * Deno.exit(await main(["notebooks/01_shapes.ipynb", "--to", "ts", "--out", "/tmp/nb"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let a: ConvertArgs;
  try {
    a = parseConvertArgs(args);
  } catch (e) {
    if (!(e instanceof ConvertError)) throw e;
    console.error(`error: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const r = await convertNotebook(a.input!, { to: a.to!, out: a.out, force: a.force });
    const kept = r.keptOutputs ? ` (outputs of ${r.keptOutputs} unchanged code cells kept)` : "";
    console.log(`${a.input} → ${r.output}: ${r.cells} cells${kept}`);
    return 0;
  } catch (e) {
    if (e instanceof ConvertError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
