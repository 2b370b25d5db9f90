/**
 * The plotly.js browser bundle from the npm package pinned in deno.json
 * (`plotly.js-dist-min`), read from the project's node_modules so that notebooks and reports
 * embed it and work offline, with no CDN.
 *
 * @example
 * ```ts
 * import { plotlyJsForInlineScript } from "./plotly_bundle.ts";
 * const html = `<script>${plotlyJsForInlineScript()}</script>`;
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE = "plotly.js-dist-min";
const FILE = "plotly.min.js";
let cached: string | undefined;

/**
 * Path of `plotly.min.js`: first where the import map resolves the package, then in the
 * `node_modules` folders above this module and above the working directory.
 *
 * @example
 * ```ts
 * plotlyJsPath().endsWith("plotly.min.js"); // true
 * ```
 */
export function plotlyJsPath(): string {
  const tried: string[] = [];
  try {
    const url = new URL(import.meta.resolve(PACKAGE));
    if (url.protocol === "file:") {
      const path = fileURLToPath(url);
      if (existsSync(path)) return path;
      tried.push(path);
    }
  } catch {
    // not resolvable to a file through the import map: search node_modules below
  }
  for (const start of [dirname(fileURLToPath(import.meta.url)), Deno.cwd()]) {
    for (let dir = start;; dir = dirname(dir)) {
      const candidate = join(dir, "node_modules", PACKAGE, FILE);
      if (existsSync(candidate)) return candidate;
      tried.push(candidate);
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error(
    `cannot find ${PACKAGE}/${FILE} (run "deno install" in the project); tried:\n${
      tried.join("\n")
    }`,
  );
}

/**
 * The plotly.js source, safe to put inside an inline `<script>` element (any `</script` is
 * escaped). Read once, then cached.
 *
 * @example
 * ```ts
 * plotlyJsForInlineScript().includes("window.Plotly"); // true
 * ```
 */
export function plotlyJsForInlineScript(): string {
  cached ??= escapeScript(Deno.readTextFileSync(plotlyJsPath()));
  return cached;
}

/**
 * Escapes text for an inline `<script>`: `</script` and `<!--` cannot end or confuse the element.
 *
 * @example
 * ```ts
 * escapeScript('"</script>"'); // '"<\/script>"'
 * ```
 */
export function escapeScript(source: string): string {
  return source.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}
