/**
 * Syntax check of code cells before a run, with the TypeScript compiler's own parser (the
 * `typescript` npm package): a typo in the last cell of a many-hour run is found before the
 * first cell runs, and named by cell, line and column. The Deno kernel itself reports a syntax
 * error only as a bare "Execution failed", without message or position.
 *
 * A cell passes when it parses as TypeScript or, failing that, as TSX: the Deno kernel accepts
 * both `<T>value` casts and JSX. Only syntax is checked (no types, no imports resolved), so
 * what passes here may still fail when it runs.
 *
 * @example
 * ```ts
 * import { syntaxErrors } from "./syntax.ts";
 * syntaxErrors("const x = ;"); // [{ line: 1, column: 11, message: "Expression expected." }]
 * ```
 * @module
 */
import ts from "typescript";
import type { Notebook } from "./nbformat.ts";
import { joinSource } from "./nbformat.ts";

/** One syntax error in a cell's source; line and column are 1-based. */
export interface SyntaxProblem {
  line: number;
  column: number;
  message: string;
}

/** A syntax error in a notebook's code cell. */
export interface CellSyntaxProblem extends SyntaxProblem {
  /** Index of the cell in the notebook's `cells`. */
  cellIndex: number;
  /** 1-based position among the notebook's non-empty code cells (the runner's numbering). */
  position: number;
}

function parse(source: string, fileName: string): SyntaxProblem[] {
  const out = ts.transpileModule(source, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ESNext, module: ts.ModuleKind.ESNext },
  });
  return (out.diagnostics ?? []).filter((d) => d.file && d.start !== undefined).map((d) => {
    const { line, character } = d.file!.getLineAndCharacterOfPosition(d.start!);
    return {
      line: line + 1,
      column: character + 1,
      message: ts.flattenDiagnosticMessageText(d.messageText, " "),
    };
  });
}

/**
 * Syntax errors in one cell's source (empty when it parses as TypeScript or as TSX). The
 * TypeScript reading's errors are returned, as they fit what the cell was meant to be.
 *
 * @example
 * ```ts
 * import { syntaxErrors } from "./syntax.ts";
 * syntaxErrors("let y = [1, 2"); // [{ line: 1, column: 14, message: "']' expected." }]
 * syntaxErrors("const a = <number>(1 as unknown);"); // []
 * ```
 */
export function syntaxErrors(source: string): SyntaxProblem[] {
  const asTs = parse(source, "cell.ts");
  if (asTs.length === 0) return [];
  return parse(source, "cell.tsx").length === 0 ? [] : asTs;
}

/**
 * The first syntax error of every code cell that has one, in cell order (`cells` says which
 * cells to check; default all code cells).
 *
 * @example
 * ```ts
 * import { notebookSyntaxErrors } from "./syntax.ts";
 * import type { Notebook } from "./nbformat.ts";
 * const nb: Notebook = JSON.parse(await Deno.readTextFile("notebooks/01_shapes.ipynb"));
 * for (const p of notebookSyntaxErrors(nb)) console.log(p.cellIndex + 1, p.line, p.message);
 * ```
 */
export function notebookSyntaxErrors(
  nb: Notebook,
  cells?: (cellIndex: number) => boolean,
): CellSyntaxProblem[] {
  const found: CellSyntaxProblem[] = [];
  let position = 0;
  nb.cells.forEach((cell, cellIndex) => {
    if (cell.cell_type !== "code") return;
    const source = joinSource(cell.source);
    if (source.trim() === "") return; // never runs, and does not count (as in the runner)
    position++;
    if (cells && !cells(cellIndex)) return;
    const first = syntaxErrors(source)[0];
    if (first) found.push({ ...first, cellIndex, position });
  });
  return found;
}

/**
 * One line naming the cell, line, column and message, e.g.
 * `cell 7 (code cell 5), line 3, column 9: ';' expected.`
 *
 * @example
 * ```ts
 * import { describeSyntaxProblem } from "./syntax.ts";
 * describeSyntaxProblem({ cellIndex: 6, position: 5, line: 3, column: 9, message: "';' expected." });
 * ```
 */
export function describeSyntaxProblem(p: CellSyntaxProblem): string {
  return `cell ${
    p.cellIndex + 1
  } (code cell ${p.position}), line ${p.line}, column ${p.column}: ${p.message}`;
}

/** A notebook refused before running because a code cell does not parse. */
export class NotebookSyntaxError extends Error {
  /** Every code cell's first syntax error. */
  readonly problems: CellSyntaxProblem[];
  /**
   * @example
   * ```ts
   * import { NotebookSyntaxError } from "./syntax.ts";
   * const e = new NotebookSyntaxError([
   *   { cellIndex: 2, position: 2, line: 1, column: 11, message: "Expression expected." },
   * ]);
   * console.log(e.message);
   * ```
   */
  constructor(problems: CellSyntaxProblem[]) {
    const list = problems.map(describeSyntaxProblem);
    super(
      `syntax error${problems.length > 1 ? "s" : ""} before anything ran: ${list.join("; ")}`,
    );
    this.name = "NotebookSyntaxError";
    this.problems = problems;
  }
}
