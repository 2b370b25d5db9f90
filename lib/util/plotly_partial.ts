/**
 * Partial plotly.js bundles: plotly's core (which already draws `scatter`) plus only the trace
 * types a page needs, built from the pinned `plotly.js` npm package with esbuild the way plotly's
 * own partial bundles are built (`lib/core.js`, then `Plotly.register` of `lib/<type>.js`). A
 * report drawing heatmaps, scatter, bar and table traces embeds about 1.3 MB of minified
 * JavaScript instead of the full bundle's 4.8 MB.
 *
 * Why built here: npm has plotly's ready-made partial bundles (basic, cartesian, …), but none
 * holds exactly what the project's figures use (`table` is only in the full and strict bundles),
 * and they are not published for every plotly version.
 *
 * Bundles are cached in memory and on disk (`node_modules/.cache/plotly-partial/`, keyed by the
 * plotly and esbuild versions and the trace types), so a type set is built once (a few seconds).
 * This module is not re-exported from `mod.ts`: notebook kernels, which import `mod.ts`, have no
 * use for esbuild.
 *
 * @example
 * ```ts
 * import { partialPlotlyJs } from "./plotly_partial.ts";
 * const js = partialPlotlyJs(["heatmap", "scatter"]); // defines window.Plotly
 * ```
 * @module
 */
import * as esbuild from "esbuild";
import { existsSync } from "node:fs";
import { dirname, join, sep as SEP } from "node:path";
import { plotlyPackageDir, plotlyVersion } from "./plotly_bundle.ts";

const memory = new Map<string, string>();

/**
 * The trace types among `types` that plotly.js knows (its package has `src/traces/<type>`),
 * sorted and without duplicates. `scatter` is always included: plotly's core registers it.
 *
 * @example
 * ```ts
 * import { knownTraceTypes } from "./plotly_partial.ts";
 * knownTraceTypes(["heatmap", "nope", "heatmap"]); // ["heatmap", "scatter"]
 * ```
 */
export function knownTraceTypes(types: Iterable<string>): string[] {
  const pkg = plotlyPackageDir();
  const known = new Set(["scatter"]);
  for (const type of types) {
    if (
      /^[a-z0-9]+$/.test(type) && existsSync(join(pkg, "src", "traces", type)) &&
      existsSync(join(pkg, "lib", `${type}.js`))
    ) {
      known.add(type);
    }
  }
  return [...known].sort();
}

/**
 * A minified plotly.js bundle with the core and the trace types `types` (unknown names are left
 * out: plotly would not draw them with the full bundle either). Running it defines the global
 * `Plotly`, as the full bundle does. The text may contain `</script`: escape it before inlining.
 *
 * @example
 * ```ts
 * import { partialPlotlyJs } from "./plotly_partial.ts";
 * const js = partialPlotlyJs(["bar"]);
 * js.length < 2_000_000; // true
 * ```
 */
export function partialPlotlyJs(types: Iterable<string>): string {
  const traces = knownTraceTypes(types);
  const key = `plotly-${plotlyVersion()}-esbuild-${esbuild.version}-${traces.join("-")}.js`;
  const hit = memory.get(key);
  if (hit !== undefined) return hit;
  const cacheFile = cachePath(key);
  let js: string | undefined;
  if (cacheFile !== undefined) {
    try {
      js = Deno.readTextFileSync(cacheFile);
    } catch {
      // not built yet
    }
  }
  if (js === undefined) {
    js = build(traces);
    if (cacheFile !== undefined) writeCache(cacheFile, js);
  }
  memory.set(key, js);
  return js;
}

function build(traces: string[]): string {
  const pkg = plotlyPackageDir();
  const modules = traces.map((type) => `require("./lib/${type}.js")`).join(", ");
  let result: esbuild.BuildResult<{ write: false }>;
  try {
    // Options follow plotly's own esbuild configuration (esbuild-config.js in the package).
    result = esbuild.buildSync({
      stdin: {
        contents: `var Plotly = require("./lib/core.js");\nPlotly.register([${modules}]);\n` +
          `module.exports = Plotly;\n`,
        resolveDir: pkg,
        sourcefile: `plotly-partial-${traces.join("-")}.js`,
        loader: "js",
      },
      bundle: true,
      minify: true,
      format: "iife",
      globalName: "Plotly",
      platform: "browser",
      target: "es2016",
      write: false,
      define: { global: "window", "define.amd": "false" },
      alias: { stream: "stream-browserify" },
      // Style sheets imported by map code plotly's core references; no trace here needs them.
      loader: { ".css": "empty" },
      logLevel: "silent",
    });
  } catch (error) {
    throw new Error(
      `cannot build a plotly.js bundle for ${traces.join(", ")} with esbuild ${esbuild.version}` +
        ` (run "deno install" in the project): ${error instanceof Error ? error.message : error}`,
    );
  }
  const banner = `/* plotly.js v${plotlyVersion()} (MIT, Plotly, Inc.), partial bundle: core + ${
    traces.join(", ")
  } */\n`;
  return banner + result.outputFiles[0].text;
}

/** `<node_modules>/.cache/plotly-partial/<key>` for the node_modules holding plotly. */
function cachePath(key: string): string | undefined {
  const pkg = plotlyPackageDir();
  const at = pkg.indexOf(`${SEP}node_modules${SEP}`);
  if (at < 0) return undefined;
  return join(pkg.slice(0, at), "node_modules", ".cache", "plotly-partial", key);
}

/** Best effort: a cache that cannot be written only costs a rebuild next time. */
function writeCache(path: string, js: string): void {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    Deno.mkdirSync(dirname(path), { recursive: true });
    Deno.writeTextFileSync(tmp, js);
    Deno.renameSync(tmp, path);
  } catch {
    try {
      Deno.removeSync(tmp);
    } catch {
      // never written
    }
  }
}
