/**
 * plotly.js from the npm package pinned in deno.json (`plotly.js`), read from the project's
 * node_modules so that notebooks and reports embed it and work offline, with no CDN.
 *
 * Notebook outputs and reports embed partial bundles with only the trace types they draw (see
 * {@linkcode ./plotly_partial.ts}); the package's full minified bundle
 * ({@linkcode plotlyJsForInlineScript}) serves pages that need every trace type. All live here,
 * below lib/viz (which draws figures) and lib/notebook (whose reports embed them), so that neither
 * imports the other.
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

/** MIME type of plotly figures in Jupyter: what viz draws and the HTML report shows. */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

const PACKAGE = "plotly.js";
const FILE = "dist/plotly.min.js";
let cached: string | undefined;

/**
 * Folder of the `plotly.js` package: first where the import map resolves it, then in the
 * `node_modules` folders above this module and above the working directory.
 *
 * @example
 * ```ts
 * import { plotlyPackageDir } from "./plotly_bundle.ts";
 * plotlyPackageDir().endsWith("plotly.js"); // true
 * ```
 */
export function plotlyPackageDir(): string {
  const tried: string[] = [];
  try {
    const url = new URL(import.meta.resolve(`${PACKAGE}/package.json`));
    if (url.protocol === "file:") {
      const path = fileURLToPath(url);
      if (existsSync(path)) return dirname(path);
      tried.push(path);
    }
  } catch {
    // not resolvable to a file through the import map: search node_modules below
  }
  for (const start of [dirname(fileURLToPath(import.meta.url)), Deno.cwd()]) {
    for (let dir = start;; dir = dirname(dir)) {
      const candidate = join(dir, "node_modules", PACKAGE, "package.json");
      if (existsSync(candidate)) return dirname(candidate);
      tried.push(candidate);
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error(
    `cannot find the ${PACKAGE} package (run "deno install" in the project); tried:\n${
      tried.join("\n")
    }`,
  );
}

/**
 * Path of the full `plotly.min.js` bundle (every trace type).
 *
 * @example
 * ```ts
 * import { plotlyJsPath } from "./plotly_bundle.ts";
 * plotlyJsPath().endsWith("plotly.min.js"); // true
 * ```
 */
export function plotlyJsPath(): string {
  return join(plotlyPackageDir(), FILE);
}

/**
 * The version of the plotly.js package in use, e.g. `"4.1.1"`.
 *
 * @example
 * ```ts
 * import { plotlyVersion } from "./plotly_bundle.ts";
 * console.log(plotlyVersion());
 * ```
 */
export function plotlyVersion(): string {
  const pkg = JSON.parse(Deno.readTextFileSync(join(plotlyPackageDir(), "package.json")));
  return String(pkg.version);
}

/**
 * The full plotly.js bundle, safe to put inside an inline `<script>` element (any `</script` is
 * escaped). Read once, then cached.
 *
 * @example
 * ```ts
 * import { plotlyJsForInlineScript } from "./plotly_bundle.ts";
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
 * import { escapeScript } from "./plotly_bundle.ts";
 * escapeScript('"</script>"'); // '"<\/script>"'
 * ```
 */
export function escapeScript(source: string): string {
  return source.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}
