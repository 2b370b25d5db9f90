/**
 * Model summaries as markdown tables (tfjs's `model.summary()` prints through console.log, which
 * the Deno kernel may deliver late or to another cell).
 *
 * @example
 * ```ts
 * import { compareModels } from "./model_summary.ts";
 * await showMarkdown(compareModels({ conv, transposed }));
 * ```
 * @module
 */
import type { tf } from "../backend/tf.ts";
import { markdownTable } from "./markdown.ts";

function shapeText(layer: tf.layers.Layer): string {
  const s = layer.outputShape as (number | null)[];
  return `[${s.slice(1).join(", ")}]`;
}

function params(layer: tf.layers.Layer): number {
  return layer.trainableWeights.reduce((n, w) => n + w.shape.reduce((a, b) => a! * b!, 1)!, 0);
}

/**
 * Side-by-side summary of models with the same layer names (e.g. the conv and transposed
 * DenseNets): one row per layer that has weights, with each model's layer class, the output
 * shape and the trainable parameters; then the totals.
 *
 * @example
 * ```ts
 * compareModels({ conv: DenseNet({ variant: "conv" }), transposed: DenseNet({ variant: "transposed" }) });
 * ```
 */
export function compareModels(models: Record<string, tf.LayersModel>): string {
  const names = Object.keys(models);
  const first = models[names[0]];
  const rows = first.layers.filter((l) => l.weights.length > 0).map((layer) => {
    const twins = names.map((n) => models[n].getLayer(layer.name));
    return [
      layer.name,
      ...twins.map((l) => l.getClassName()),
      shapeText(layer),
      ...twins.map((l) => params(l).toLocaleString("en-US")),
    ];
  });
  const totals = names.map((n) => params(models[n])); // a model is a layer too
  rows.push([
    "**total trainable**",
    ...names.map(() => ""),
    "",
    ...totals.map((t) => `**${t.toLocaleString("en-US")}**`),
  ]);
  return markdownTable(
    [
      "layer",
      ...names.map((n) => `${n}: class`),
      "output (H, W, C)",
      ...names.map((n) => `${n}: params`),
    ],
    rows,
  );
}
