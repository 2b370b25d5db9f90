/**
 * Plotting for notebooks and reports: plotly figures as Jupyter MIME bundles.
 *
 * @example
 * ```ts
 * import { lineChart, show } from "./mod.ts";
 * await show(lineChart([{ name: "loss", y: [2.3, 1.7, 1.2] }]));
 * ```
 * @module
 */
export * from "./plotly.ts";
export {
  escapeScript,
  plotlyJsForInlineScript,
  plotlyJsPath,
  plotlyPackageDir,
  plotlyVersion,
} from "../util/plotly_bundle.ts";
export * from "./markdown.ts";
export * from "./shape_views.ts";
export * from "./live.ts";
export * from "./progress.ts";
export * from "./samples.ts";
export * from "./training_views.ts";
export * from "./model_summary.ts";
export * from "./backend_view.ts";
export * from "./sweep_views.ts";
export * from "./sweep_explorer.ts";
