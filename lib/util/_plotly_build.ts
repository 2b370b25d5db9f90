// Builds one partial plotly.js bundle with esbuild and writes it to stdout (private to
// ./plotly_partial.ts, which runs this file as its own Deno process so that no process importing
// lib, a notebook kernel least of all, loads esbuild).
//
//   deno run -A lib/util/_plotly_build.ts bar heatmap scatter > plotly-partial.js
//
// The arguments are trace types plotly.js knows (./plotly_partial.ts checks them first).
import * as esbuild from "esbuild";
import { plotlyPackageDir, plotlyVersion } from "./plotly_bundle.ts";

function build(traces: string[]): string {
  const pkg = plotlyPackageDir();
  const modules = traces.map((type) => `require("./lib/${type}.js")`).join(", ");
  // Options follow plotly's own esbuild configuration (esbuild-config.js in the package).
  const result = esbuild.buildSync({
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
  const banner = `/* plotly.js v${plotlyVersion()} (MIT, Plotly, Inc.), partial bundle: core + ${
    traces.join(", ")
  } */\n`;
  return banner + result.outputFiles[0].text;
}

if (import.meta.main) {
  try {
    const js = new TextEncoder().encode(build(Deno.args));
    for (let at = 0; at < js.length;) at += Deno.stdout.writeSync(js.subarray(at));
  } catch (error) {
    console.error(
      `esbuild ${esbuild.version}: ${error instanceof Error ? error.message : String(error)}`,
    );
    Deno.exit(1);
  }
}
