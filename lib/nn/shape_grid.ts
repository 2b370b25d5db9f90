/**
 * Shape grid: for every combination of kernel size, stride, padding, output padding and
 * dilation, the output size by formula, as measured on the tfjs layer, and by the loop-level
 * definition (`reference.ts`), plus the largest difference between the layer's values and the
 * definition's. Combinations PyTorch refuses are listed with the reason.
 *
 * @example
 * ```ts
 * import { shapeGrid } from "./shape_grid.ts";
 * const rows = shapeGrid({ kernelSizes: [3], strides: [1, 2], paddings: [1] });
 * rows.every((r) => r.status !== "mismatch"); // true
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { interruptSafe } from "../backend/engine_repair.ts";
import { Conv2d, ConvTranspose2d, torchWeights } from "./conv.ts";
import { type Array4D, conv2dReference, convTranspose2dReference } from "./reference.ts";
import { ConvArgumentError, convOutputSize, convTransposeOutputSize } from "./shapes.ts";

/** Which values to try; every list has PyTorch-valid defaults matching notebook 01's grid. */
export interface ShapeGridOptions {
  /** Input height and width (default 5, the article's tensor). */
  n?: number;
  /** Default `[1, 2, 3, 4, 5]`. */
  kernelSizes?: number[];
  /** Default `[1, 2, 3]`. */
  strides?: number[];
  /** Default `[0, 1, 2]`. */
  paddings?: number[];
  /** Transposed layer only; default `[0, 1, 2]`. */
  outputPaddings?: number[];
  /** Default `[1, 2]`. */
  dilations?: number[];
  /** Seed of the random input (default 0). */
  seed?: number;
}

/** One combination's result. */
export interface ShapeGridRow {
  /** The layer swept. */
  layer: "Conv2d" | "ConvTranspose2d";
  /** Kernel size. */
  kernelSize: number;
  /** Stride. */
  stride: number;
  /** Padding. */
  padding: number;
  /** Output padding (0 for `Conv2d`). */
  outputPadding: number;
  /** Dilation. */
  dilation: number;
  /** Output size by formula, or null when refused. */
  formula: number | null;
  /** Output size of the tfjs layer's result, or null when the layer refused. */
  measured: number | null;
  /** Output size by the loop-level definition, or null when refused. */
  definition: number | null;
  /** Largest |layer − definition| over all output values (0 when refused). */
  maxAbsDiff: number;
  /** "equal": all three sizes agree and values match to 1e-4; "refused": formula and layer refuse. */
  status: "equal" | "refused" | "mismatch";
  /** Why the combination is refused (the layer's error message). */
  reason?: string;
  /** The argument the layer refused (its {@linkcode ConvArgumentError}'s `argument`). */
  refusedArgument?: string;
  /** The rule that argument broke, without this combination's values. */
  rule?: string;
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/**
 * Runs the grid for both layers on a `1×1×n×n` random input. Each combination builds a fresh
 * single-channel layer with random weights and disposes everything it creates.
 *
 * @example
 * ```ts
 * const rows = shapeGrid();
 * rows.length; // 90 Conv2d + 270 ConvTranspose2d rows
 * ```
 */
export function shapeGrid(options: ShapeGridOptions = {}): ShapeGridRow[] {
  // A Stop during the grid leaves a working engine and no tensors (see engine_repair.ts).
  return interruptSafe("shapeGrid", () => gridRows(options));
}

function gridRows(options: ShapeGridOptions): ShapeGridRow[] {
  const {
    n = 5,
    kernelSizes = range(1, 5),
    strides = range(1, 3),
    paddings = range(0, 2),
    outputPaddings = range(0, 2),
    dilations = range(1, 2),
    seed = 0,
  } = options;
  const x = tf.randomNormal([1, n, n, 1], 0, 1, "float32", seed) as tf.Tensor4D;
  const xNchw = tf.tidy(() => x.transpose([0, 3, 1, 2]).arraySync()) as Array4D;
  const rows: ShapeGridRow[] = [];
  try {
    for (const kernelSize of kernelSizes) {
      for (const stride of strides) {
        for (const padding of paddings) {
          for (const dilation of dilations) {
            const geometry = { kernelSize, stride, padding, dilation };
            rows.push(measure("Conv2d", { ...geometry, outputPadding: 0 }, x, xNchw));
            for (const outputPadding of outputPaddings) {
              rows.push(measure("ConvTranspose2d", { ...geometry, outputPadding }, x, xNchw));
            }
          }
        }
      }
    }
  } finally {
    x.dispose();
  }
  return rows;
}

function measure(
  layer: ShapeGridRow["layer"],
  g: Pick<ShapeGridRow, "kernelSize" | "stride" | "padding" | "outputPadding" | "dilation">,
  x: tf.Tensor4D,
  xNchw: Array4D,
): ShapeGridRow {
  const n = x.shape[1];
  let formula: number | null = null;
  try {
    formula = layer === "Conv2d" ? convOutputSize(n, g) : convTransposeOutputSize(n, g);
  } catch {
    // recorded below: the layer must refuse too
  }
  let measured: number | null = null, definition: number | null = null, maxAbsDiff = 0;
  let reason: string | undefined, refusedArgument: string | undefined, rule: string | undefined;
  let l: Conv2d | ConvTranspose2d | undefined;
  try {
    const args = { inChannels: 1, outChannels: 1, ...g };
    l = layer === "Conv2d" ? new Conv2d(args) : new ConvTranspose2d(args);
    const y = l.apply(x) as tf.Tensor;
    measured = y.shape[1]!;
    const { weight, bias } = torchWeights(l);
    const w = weight.arraySync() as Array4D, b = bias!.arraySync() as number[];
    tf.dispose([weight, bias!]);
    const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation, bias: b };
    const ref = layer === "Conv2d"
      ? conv2dReference(xNchw, w, opts)
      : convTranspose2dReference(xNchw, w, { ...opts, outputPadding: g.outputPadding });
    definition = ref[0][0].length;
    const got = (y.arraySync() as number[][][][])[0].map((row) => row.map((px) => px[0]));
    if (definition === measured) {
      got.forEach((row, i) =>
        row.forEach((v, j) => maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - ref[0][0][i][j])))
      );
    }
    y.dispose();
  } catch (e) {
    reason = (e as Error).message;
    if (e instanceof ConvArgumentError) ({ argument: refusedArgument, rule } = e);
  } finally {
    if (l?.built) l.dispose();
  }
  const status = formula === null && measured === null
    ? "refused"
    : formula !== null && formula === measured && measured === definition && maxAbsDiff <= 1e-4
    ? "equal"
    : "mismatch";
  return {
    layer,
    ...g,
    formula,
    measured,
    definition,
    maxAbsDiff,
    status,
    reason,
    refusedArgument,
    rule,
  };
}

/** Counts of a grid's outcomes for one layer. */
export interface ShapeGridCounts {
  /** The layer. */
  layer: ShapeGridRow["layer"];
  /** Combinations tried. */
  combinations: number;
  /** Formula, layer and definition agree. */
  equal: number;
  /** Refused by formula and layer alike. */
  refused: number;
  /** Anything else: a disagreement. */
  mismatch: number;
}

/**
 * Per-layer counts of a grid's outcomes, in the order the layers first appear.
 *
 * @example
 * ```ts
 * shapeGridCounts(shapeGrid()); // [{ layer: "Conv2d", combinations: 90, equal: 81, refused: 9, mismatch: 0 }, …]
 * ```
 */
export function shapeGridCounts(rows: ShapeGridRow[]): ShapeGridCounts[] {
  const byLayer = new Map<ShapeGridRow["layer"], ShapeGridCounts>();
  for (const r of rows) {
    const c = byLayer.get(r.layer) ??
      { layer: r.layer, combinations: 0, equal: 0, refused: 0, mismatch: 0 };
    c.combinations++;
    c[r.status]++;
    byLayer.set(r.layer, c);
  }
  return [...byLayer.values()];
}

/** How many combinations of one layer were refused for one argument and rule. */
export interface Refusal {
  /** The layer. */
  layer: ShapeGridRow["layer"];
  /** The argument refused. */
  argument: string;
  /** The rule broken. */
  rule: string;
  /** Combinations refused this way. */
  count: number;
}

/**
 * The refused combinations grouped by layer, refused argument and rule (largest groups first).
 *
 * @example
 * ```ts
 * refusals(shapeGrid())[0];
 * // { layer: "ConvTranspose2d", argument: "outputPadding", rule: "outputPadding must be smaller than either stride or dilation", count: 75 }
 * ```
 */
export function refusals(rows: ShapeGridRow[]): Refusal[] {
  const groups = new Map<string, Refusal>();
  for (const r of rows) {
    if (r.status !== "refused") continue;
    const argument = r.refusedArgument ?? "?", rule = r.rule ?? r.reason ?? "unknown";
    const key = `${r.layer}\u0000${argument}\u0000${rule}`;
    const g = groups.get(key) ?? { layer: r.layer, argument, rule, count: 0 };
    g.count++;
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}
