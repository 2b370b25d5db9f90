/**
 * The grid of a sweep: `--grid name=v1,v2` arguments, their product as a list of runs, and the
 * check of every run's parameters against the notebook's parameters cell (the runner's own checks,
 * `parseParameterArgs`), so that a mistyped name or value is refused before anything starts.
 *
 * @example
 * ```ts
 * import { expandGrid, parseGridArg } from "./grid.ts";
 * const grid = [parseGridArg("init=default,swapped"), parseGridArg("seeds=[0],[1]")];
 * expandGrid(grid).length; // 4
 * ```
 * @module
 */
import type { Notebook } from "../notebook/nbformat.ts";
import { parseParameterArgs, splitParameterArg } from "../notebook/parameters.ts";

/** One `--grid` argument: a parameter name and the texts of its values, in order. */
export interface GridAxis {
  /** Parameter name. */
  name: string;
  /** Value texts as given (`-p` syntax: JSON when it parses, else a string). */
  values: string[];
}

/**
 * Splits `text` at the commas that are not inside brackets, braces or quotes, so that
 * `seeds=[0,1],[2]` gives two values.
 */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0, quote = "", start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") quote = ch;
    else if ("[{".includes(ch)) depth++;
    else if ("]}".includes(ch)) depth--;
    else if (ch === "," && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/**
 * Parses one `--grid name=v1,v2,…` argument. Values are separated by top-level commas (a comma
 * inside `[…]`, `{…}` or quotes belongs to the value). Throws `ParameterError` for bad syntax,
 * an empty value or a value given twice.
 *
 * @example
 * ```ts
 * parseGridArg("lr=0.1,0.03"); // { name: "lr", values: ["0.1", "0.03"] }
 * parseGridArg("seeds=[0,1],[2]"); // { name: "seeds", values: ["[0,1]", "[2]"] }
 * ```
 */
export function parseGridArg(arg: string): GridAxis {
  const { name, raw } = splitParameterArg(arg);
  const values = splitTopLevel(raw).map((v) => v.trim());
  if (values.some((v) => v === "")) {
    throw new GridError(`--grid ${arg}: empty value (expected name=v1,v2,…)`);
  }
  const twice = values.find((v, i) => values.indexOf(v) !== i);
  if (twice !== undefined) throw new GridError(`--grid ${arg}: value ${twice} is given twice`);
  return { name, values };
}

/** A grid that cannot be run as given (syntax, repeated names, clash with `-p`). */
export class GridError extends Error {
  /**
   * @example
   * ```ts
   * throw new GridError('parameter "lr" is both in --grid and -p');
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "GridError";
  }
}

/**
 * The runs of a grid: every combination of the axes' values, the first axis varying slowest.
 * Each run is a list of `name=value` texts in axis order.
 *
 * @example
 * ```ts
 * expandGrid([{ name: "a", values: ["1", "2"] }, { name: "b", values: ["x", "y"] }]);
 * // [["a=1","b=x"], ["a=1","b=y"], ["a=2","b=x"], ["a=2","b=y"]]
 * ```
 */
export function expandGrid(axes: GridAxis[]): string[][] {
  let runs: string[][] = [[]];
  for (const axis of axes) {
    runs = runs.flatMap((r) => axis.values.map((v) => [...r, `${axis.name}=${v}`]));
  }
  return runs;
}

/**
 * Checks a sweep before it starts and returns every run's typed parameters (fixed ones, then the
 * grid's): axis names distinct and not also fixed with `-p`, no reserved name, and every run's
 * values accepted by the notebook's parameters cell (`parseParameterArgs`, which throws
 * `ParameterError` naming the parameter and listing the known ones).
 *
 * @example
 * ```ts
 * const runs = checkSweep(nb, [parseGridArg("epochs=1,2")], ["lr=0.1"], []);
 * runs[1]; // { lr: 0.1, epochs: 2 }
 * ```
 */
export function checkSweep(
  nb: Notebook,
  axes: GridAxis[],
  fixed: string[],
  reserved: string[],
): Record<string, unknown>[] {
  if (axes.length === 0) throw new GridError("a sweep needs at least one --grid name=v1,v2,…");
  const names = axes.map((a) => a.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new GridError(`--grid ${twice} is given twice; list all its values in one`);
  const fixedNames = fixed.map((f) => splitParameterArg(f).name);
  const both = names.find((n) => fixedNames.includes(n));
  if (both) throw new GridError(`parameter "${both}" is both in --grid and -p`);
  const taken = [...names, ...fixedNames].find((n) => reserved.includes(n));
  if (taken) {
    throw new GridError(
      `parameter "${taken}" is set by the sweep itself (each run gets its own folder)`,
    );
  }
  return expandGrid(axes).map((run) => parseParameterArgs(nb, [...fixed, ...run]));
}
