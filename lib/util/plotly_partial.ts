/**
 * Partial plotly.js bundles: plotly's core (which already draws `scatter`) plus only the trace
 * types a page needs, built from the pinned `plotly.js` npm package with esbuild the way plotly's
 * own partial bundles are built (`lib/core.js`, then `Plotly.register` of `lib/<type>.js`). The
 * trace types this project draws (heatmap, scatter, bar, table, image) take about 1.3 MB of
 * minified JavaScript instead of the full bundle's 4.8 MB. The HTML reports embed them, and so do
 * notebook outputs (lib/viz/plotly.ts), so that an executed notebook stays small.
 *
 * Why built here: npm has plotly's ready-made partial bundles (basic, cartesian, …), but none
 * holds exactly what the project's figures use (`table` is only in the full and strict bundles),
 * and they are not published for every plotly version.
 *
 * Bundles are cached in memory and on disk (`node_modules/.cache/plotly-partial/`, keyed by the
 * plotly version and the trace types), so a type set is built once (a few seconds). The build
 * runs esbuild in a separate Deno process (`./_plotly_build.ts`): a notebook kernel, which
 * imports this module through `lib/mod.ts`, never loads esbuild, and with the cache filled never
 * starts that process either.
 *
 * @example
 * ```ts
 * import { partialPlotlyJs } from "./plotly_partial.ts";
 * const js = partialPlotlyJs(["heatmap", "scatter"]); // defines window.Plotly
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join, sep as SEP } from "node:path";
import { fileURLToPath } from "node:url";
import { plotlyPackageDir, plotlyVersion } from "./plotly_bundle.ts";

const memory = new Map<string, string>();
const BUILDER = fileURLToPath(new URL("./_plotly_build.ts", import.meta.url));

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
 * Synchronous; a type set not built before takes a few seconds (and `--allow-run`).
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
  const key = `plotly-${plotlyVersion()}-${traces.join("-")}.js`;
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

/** Runs ./_plotly_build.ts in its own Deno process, with this project's configuration. */
function build(traces: string[]): string {
  const config = findConfig(dirname(BUILDER));
  const what = `a plotly.js bundle for ${traces.join(", ")}`;
  let result: Deno.CommandOutput;
  try {
    result = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "-q", ...(config ? ["--config", config] : []), BUILDER, ...traces],
      cwd: config ? dirname(config) : undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
  } catch (error) {
    throw new Error(
      `cannot build ${what}: starting "${Deno.execPath()} run ${BUILDER}" failed (it needs ` +
        `--allow-run): ${error instanceof Error ? error.message : error}`,
    );
  }
  if (!result.success) {
    throw new Error(
      `cannot build ${what} (run "deno install" in the project): ${
        new TextDecoder().decode(result.stderr).trim() || `exit code ${result.code}`
      }`,
    );
  }
  return new TextDecoder().decode(result.stdout);
}

/** The deno.json (or deno.jsonc) in `dir` or the nearest folder above it. */
function findConfig(dir: string): string | undefined {
  for (;; dir = dirname(dir)) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      if (existsSync(join(dir, name))) return join(dir, name);
    }
    if (dirname(dir) === dir) return undefined;
  }
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
