/**
 * Views for the shape experiments of notebook 01: one layer applied to a tensor, its output
 * size by formula (with the numbers filled in) next to the measured one, and heatmaps of input
 * and output.
 *
 * @example
 * ```ts
 * import { tf } from "../backend/tf.ts";
 * import { showShapeExperiment } from "./shape_views.ts";
 * const x = tf.randomNormal([1, 5, 5, 1]) as tf.Tensor4D;
 * await showShapeExperiment(x, { layer: "ConvTranspose2d", kernelSize: 3, stride: 2, padding: 1 });
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { Conv2d, ConvTranspose2d } from "../nn/conv.ts";
import { convOutputSize, convTransposeOutputSize } from "../nn/shapes.ts";
import { heatmaps, show } from "./plotly.ts";
import { markdownTable, showMarkdown } from "./markdown.ts";
import { torchFanIn, torchUniformBound } from "../nn/init.ts";
import type { LayerMatrixGap } from "../nn/equivalence.ts";

/** A single-channel layer of a shape experiment. */
export interface LayerSpec {
  /** Which layer. */
  layer: "Conv2d" | "ConvTranspose2d";
  /** Kernel size. */
  kernelSize: number;
  /** Stride (default 1). */
  stride?: number;
  /** Padding (default 0). */
  padding?: number;
  /** Output padding, transposed only (default 0). */
  outputPadding?: number;
  /** Dilation (default 1). */
  dilation?: number;
  /** Initialisation seed (default 0). */
  seed?: number;
}

/** Result of {@linkcode shapeExperiment}. */
export interface ShapeExperiment {
  /** The layer as PyTorch would print it. */
  label: string;
  /** The size formula with this experiment's numbers, e.g. `(5 − 1)·2 − 2·1 + 1·(3 − 1) + 0 + 1 = 9`. */
  formulaText: string;
  /** Output size by formula. */
  formula: number;
  /** Output `[height, width]` of the layer's result. */
  measured: [number, number];
  /** Input (channel 0 of batch 0). */
  input: number[][];
  /** Output (channel 0 of batch 0). */
  output: number[][];
}

/**
 * PyTorch's printed form of the layer, e.g. `ConvTranspose2d(1, 1, kernel_size=3, stride=2, padding=1)`.
 *
 * @example
 * ```ts
 * describeLayer({ layer: "Conv2d", kernelSize: 3, padding: 1 }); // "Conv2d(1, 1, kernel_size=3, stride=1, padding=1)"
 * ```
 */
export function describeLayer(spec: LayerSpec): string {
  const extra = [
    spec.outputPadding ? `, output_padding=${spec.outputPadding}` : "",
    spec.dilation && spec.dilation !== 1 ? `, dilation=${spec.dilation}` : "",
  ].join("");
  return `${spec.layer}(1, 1, kernel_size=${spec.kernelSize}, stride=${spec.stride ?? 1}, ` +
    `padding=${spec.padding ?? 0}${extra})`;
}

/**
 * Applies a single-channel layer to `x` (`[1, n, n, 1]`) and records formula vs measured size.
 *
 * @example
 * ```ts
 * const e = shapeExperiment(tf.zeros([1, 5, 5, 1]) as tf.Tensor4D, { layer: "ConvTranspose2d", kernelSize: 3 });
 * e.measured; // [7, 7]
 * ```
 */
export function shapeExperiment(x: tf.Tensor4D, spec: LayerSpec): ShapeExperiment {
  const n = x.shape[1];
  const { kernelSize: k, stride: s = 1, padding: p = 0, dilation: d = 1, outputPadding: op = 0 } =
    spec;
  const formula = spec.layer === "Conv2d"
    ? convOutputSize(n, { kernelSize: k, stride: s, padding: p, dilation: d })
    : convTransposeOutputSize(n, {
      kernelSize: k,
      stride: s,
      padding: p,
      dilation: d,
      outputPadding: op,
    });
  const formulaText = spec.layer === "Conv2d"
    ? `⌊(${n} + 2·${p} − ${d}·(${k} − 1) − 1) / ${s}⌋ + 1 = ${formula}`
    : `(${n} − 1)·${s} − 2·${p} + ${d}·(${k} − 1) + ${op} + 1 = ${formula}`;
  const args = {
    inChannels: 1,
    outChannels: 1,
    kernelSize: k,
    stride: s,
    padding: p,
    dilation: d,
    seed: spec.seed ?? 0,
  };
  const layer = spec.layer === "Conv2d"
    ? new Conv2d(args)
    : new ConvTranspose2d({ ...args, outputPadding: op });
  const y = layer.apply(x) as tf.Tensor4D;
  const [input, output] = tf.tidy(() =>
    [x, y].map((t) => t.squeeze([0, 3]).arraySync() as number[][])
  );
  const measured: [number, number] = [y.shape[1], y.shape[2]];
  y.dispose();
  layer.dispose();
  return { label: describeLayer(spec), formulaText, formula, measured, input, output };
}

/**
 * Runs {@linkcode shapeExperiment} and displays it: the layer, formula vs measured, and
 * heatmaps of input and output. Returns nothing, so that a cell ending with it shows only the
 * display (use {@linkcode shapeExperiment} for the numbers).
 *
 * @example
 * ```ts
 * await showShapeExperiment(x, { layer: "Conv2d", kernelSize: 3, padding: 1 });
 * ```
 */
export async function showShapeExperiment(
  x: tf.Tensor4D,
  spec: LayerSpec,
): Promise<void> {
  const e = shapeExperiment(x, spec);
  const [h, w] = e.measured;
  const ok = h === e.formula && w === e.formula;
  await showMarkdown(
    `**${e.label}** on a ${x.shape[1]}×${x.shape[2]} input\n\n` +
      `- formula: ${e.formulaText}\n- measured: ${h}×${w} ${ok ? "✓ equal" : "✗ DIFFERENT"}`,
  );
  await show(heatmaps([
    { title: `input ${x.shape[1]}×${x.shape[2]}`, z: e.input },
    { title: `output ${h}×${w}`, z: e.output },
  ], { height: 320 }));
}

/** A convolution's channels and kernel size, for {@linkcode initBoundsTable}. */
export interface InitSpec {
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Kernel size. */
  kernelSize: number;
}

/**
 * Markdown table of PyTorch's default initialisation bound ±1/√fan_in for each layer as
 * `Conv2d` and as `ConvTranspose2d`, with the ratio of the two.
 *
 * @example
 * ```ts
 * initBoundsTable([{ inChannels: 160, outChannels: 32, kernelSize: 3 }]);
 * ```
 */
export function initBoundsTable(specs: InitSpec[]): string {
  return markdownTable(
    [
      "layer (in → out, k×k)",
      "Conv2d fan_in",
      "Conv2d bound",
      "ConvTranspose2d fan_in",
      "ConvTranspose2d bound",
      "ratio",
    ],
    specs.map(({ inChannels: i, outChannels: o, kernelSize: k }) => {
      const conv = torchFanIn([o, i, k, k]), trans = torchFanIn([i, o, k, k]);
      const [bc, bt] = [torchUniformBound(conv), torchUniformBound(trans)];
      return [
        `${i} → ${o}, ${k}×${k}`,
        conv,
        bc.toFixed(4),
        trans,
        bt.toFixed(4),
        `${(bt / bc).toFixed(2)}×`,
      ];
    }),
  );
}

/**
 * The gaps between layers and their convolution matrix as a markdown table (see `lib/nn`'s
 * `layerMatrixGaps`).
 *
 * @example
 * ```ts
 * await showMarkdown(layerMatrixTable(layerMatrixGaps(conv, x)));
 * ```
 */
export function layerMatrixTable(gaps: LayerMatrixGap[]): string {
  return markdownTable(
    ["operation", "shape", "max |layer − matrix|"],
    gaps.map((g) => [
      g.operation,
      `${g.from.join("×")} → ${g.to.join("×")}`,
      g.maxAbsDiff.toExponential(2),
    ]),
  );
}
