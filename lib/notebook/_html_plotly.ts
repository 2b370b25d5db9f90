// Locates and loads the plotly.js bundle that reports embed (private to lib/notebook/html.ts).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { scriptForInline } from "./_html_escape.ts";

const PACKAGE = "plotly.js-dist-min";
const BUNDLE_FILE = "plotly.min.js";

let cachedSource: string | undefined;

/** Path of `plotly.min.js` from the `plotly.js-dist-min` npm package pinned in deno.json. */
export function plotlyBundlePath(): string {
  const tried: string[] = [];
  try {
    const url = new URL(import.meta.resolve(PACKAGE));
    if (url.protocol === "file:") {
      const path = fileURLToPath(url);
      if (existsSync(path)) return path;
      tried.push(path);
    }
  } catch {
    // not resolvable from the import map; fall back to searching node_modules
  }
  const starts = [dirname(fileURLToPath(import.meta.url)), Deno.cwd()];
  for (const start of starts) {
    for (let dir = start;; dir = dirname(dir)) {
      const candidate = join(dir, "node_modules", PACKAGE, BUNDLE_FILE);
      if (existsSync(candidate)) return candidate;
      tried.push(candidate);
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error(
    `cannot find ${PACKAGE}/${BUNDLE_FILE} (run "deno install" in the project); tried:\n` +
      tried.join("\n"),
  );
}

/** The plotly.js bundle's source, made safe to inline in a `<script>` (read once, then cached). */
export function plotlyBundleSource(): string {
  cachedSource ??= scriptForInline(Deno.readTextFileSync(plotlyBundlePath()));
  return cachedSource;
}
