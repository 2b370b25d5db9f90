/**
 * Markdown output for notebook cells: tables and text, displayed through the awaited
 * `Deno.jupyter.display` channel (console output can arrive late or in another cell).
 *
 * @example
 * ```ts
 * import { markdownTable, showMarkdown } from "./markdown.ts";
 * await showMarkdown(markdownTable(["layer", "out"], [["Conv2d", 5]]));
 * ```
 * @module
 */
import { inJupyter } from "./plotly.ts";

/** A table cell. */
export type TableCell = string | number | boolean | null | undefined;

function cellText(c: TableCell): string {
  if (c === null || c === undefined) return "—";
  return String(c).replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/**
 * A GitHub-flavoured markdown table.
 *
 * @example
 * ```ts
 * markdownTable(["a", "b"], [[1, 2]]); // "| a | b |\n| --- | --- |\n| 1 | 2 |"
 * ```
 */
export function markdownTable(columns: string[], rows: TableCell[][]): string {
  for (const [i, r] of rows.entries()) {
    if (r.length !== columns.length) {
      throw new RangeError(`row ${i} has ${r.length} cells for ${columns.length} columns`);
    }
  }
  const line = (cells: TableCell[]) => `| ${cells.map(cellText).join(" | ")} |`;
  return [line(columns), `| ${columns.map(() => "---").join(" | ")} |`, ...rows.map(line)].join(
    "\n",
  );
}

/**
 * Displays markdown in the current cell (text/markdown with the same text as text/plain), with
 * optional extra MIME entries (e.g. report facts, lib/util/report_facts.ts). Outside Jupyter it
 * prints the text.
 *
 * @example
 * ```ts
 * await showMarkdown("**5 × 5** input");
 * ```
 */
export async function showMarkdown(
  markdown: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  if (inJupyter()) {
    await Deno.jupyter.display(
      { ...extra, "text/markdown": markdown, "text/plain": markdown },
      { raw: true },
    );
  } else {
    console.log(markdown);
  }
}
