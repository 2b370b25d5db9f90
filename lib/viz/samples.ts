/**
 * Sample images of a dataset, one row per class, as a plotly figure: the grid is composited into
 * one RGB image, encoded as PNG (npm fast-png) and shown by plotly's `image` trace, with the
 * class names on the rows and the dataset's name in the title. The PNG (one pixel per image pixel,
 * magnified on screen without smoothing) travels as a data URI and renders offline; 8 images per
 * class take about 250 kB (less for photos than for the noisy synthetic images).
 *
 * @example
 * ```ts
 * import { loadDataset } from "../data/mod.ts";
 * import { showSamples } from "./samples.ts";
 * const data = await loadDataset({ dataset: "auto" });
 * await showSamples(data, { perClass: 10 }); // inside a notebook cell
 * ```
 * @module
 */
import { encode } from "fast-png";
import type { Figure } from "./plotly.ts";
import { show } from "./plotly.ts";
import { showMarkdown } from "./markdown.ts";
import { REPORT_FACTS_MIME } from "../util/report_facts.ts";
import type { ImageSet } from "../data/cifar10.ts";
import { bytesToBase64 } from "../util/bytes.ts";

/** What the helpers need of a dataset (a `Dataset` from `lib/data` fits). */
export interface SampleSource {
  /** Display name, put in the title ("CIFAR-10", "synthetic shapes (built-in)"). */
  name: string;
  /** Class names, one row each. */
  classNames: readonly string[];
  /** Training images. */
  train: ImageSet;
  /** Test images. */
  test: ImageSet;
}

/** Options of {@linkcode sampleGrid} and {@linkcode sampleGridImage}. */
export interface SampleGridOptions {
  /** Which split to draw from (default "train"). */
  split?: "train" | "test";
  /** Images per class (default 8). */
  perClass?: number;
  /** Which images: the first `perClass` of each class in a permutation drawn from this seed (default 0). */
  seed?: number;
  /**
   * Magnification, nearest neighbour: of the pixels in {@linkcode sampleGridImage} (default 1),
   * of the display in {@linkcode sampleGrid} (default 3; the PNG itself stays at 1 so the figure
   * stays small, and plotly draws it without smoothing).
   */
  scale?: number;
  /** Gap between images in pixels of the unmagnified grid (default 1, white). */
  gap?: number;
}

/** A composited RGB image and what its rows show. */
export interface SampleGridImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Pixels, RGB, row by row from the top. */
  rgb: Uint8Array;
  /** Index of each shown image in the split, per class row (-1 for an empty cell). */
  indices: number[][];
  /** Pixel row of each class row's centre. */
  rowCentres: number[];
}

const SIZE = 32;

/** A small deterministic permutation (xorshift32), independent of the rest of the library. */
function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  let s = (seed ^ 0x6d2b79f5) >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % (i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Composites `perClass` images of every class into one RGB image: one row per class, nearest-
 * neighbour magnified by `scale`, separated by white gaps of `gap × scale` pixels.
 *
 * @example
 * ```ts
 * const grid = sampleGridImage(data, { perClass: 4 });
 * grid.width; // 4 * 32 + 5 * 1
 * ```
 */
export function sampleGridImage(
  dataset: SampleSource,
  options: SampleGridOptions = {},
): SampleGridImage {
  const split = options.split ?? "train";
  const set = split === "train" ? dataset.train : split === "test" ? dataset.test : undefined;
  if (!set) throw new RangeError(`split must be "train" or "test", got ${JSON.stringify(split)}`);
  const perClass = options.perClass ?? 8;
  const scale = options.scale ?? 1;
  const gap = (options.gap ?? 1) * scale;
  for (const [name, v] of [["perClass", perClass], ["scale", scale]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) {
      throw new RangeError(`${name} must be a positive integer`);
    }
  }
  if (!(Number.isInteger(gap) && gap >= 0)) throw new RangeError("gap must be an integer ≥ 0");
  const classes = dataset.classNames.length;
  const indices = Array.from({ length: classes }, () => [] as number[]);
  for (const i of permutation(set.length, options.seed ?? 0)) {
    const row = indices[set.labels[i]];
    if (row && row.length < perClass) row.push(i);
  }
  for (const row of indices) while (row.length < perClass) row.push(-1);
  const cell = SIZE * scale;
  const width = perClass * cell + (perClass + 1) * gap;
  const height = classes * cell + (classes + 1) * gap;
  const rgb = new Uint8Array(width * height * 3).fill(255);
  indices.forEach((row, r) =>
    row.forEach((i, c) => {
      if (i < 0) return;
      const top = gap + r * (cell + gap), left = gap + c * (cell + gap);
      for (let y = 0; y < cell; y++) {
        const sy = Math.floor(y / scale);
        for (let x = 0; x < cell; x++) {
          const s = i * SIZE * SIZE * 3 + (sy * SIZE + Math.floor(x / scale)) * 3;
          const d = ((top + y) * width + left + x) * 3;
          rgb[d] = set.images[s];
          rgb[d + 1] = set.images[s + 1];
          rgb[d + 2] = set.images[s + 2];
        }
      }
    })
  );
  const rowCentres = indices.map((_, r) => gap + r * (cell + gap) + cell / 2);
  return { width, height, rgb, indices, rowCentres };
}

/**
 * Encodes 8-bit RGB pixels (row by row from the top) as a PNG file (npm fast-png, deflate level
 * 9).
 *
 * @example
 * ```ts
 * const png = encodePng(new Uint8Array([255, 0, 0]), 1, 1); // one red pixel
 * ```
 */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (rgb.length !== width * height * 3) {
    throw new RangeError(
      `${width}×${height} RGB needs ${width * height * 3} bytes, got ${rgb.length}`,
    );
  }
  return encode({ width, height, data: rgb, channels: 3, depth: 8 }, { zlib: { level: 9 } });
}

/**
 * A plotly figure of sample images per class (see the module doc); the title names the dataset.
 *
 * @example
 * ```ts
 * const fig = sampleGrid(data, { perClass: 6, split: "test" });
 * fig.data[0].type; // "image"
 * ```
 */
export function sampleGrid(dataset: SampleSource, options: SampleGridOptions = {}): Figure {
  const zoom = options.scale ?? 3;
  if (!(zoom > 0)) throw new RangeError("scale must be positive");
  const grid = sampleGridImage(dataset, { ...options, scale: 1 });
  const split = options.split ?? "train";
  const png = encodePng(grid.rgb, grid.width, grid.height);
  const title = `${dataset.name}: ${grid.indices[0]?.length ?? 0} ${split} images per class`;
  const left = 110;
  return {
    data: [{
      type: "image",
      source: `data:image/png;base64,${bytesToBase64(png)}`,
      x0: 0,
      y0: 0,
      dx: 1,
      dy: 1,
      zsmooth: false,
      hoverinfo: "skip",
      name: dataset.name,
    }],
    layout: {
      title: { text: title },
      width: Math.round(grid.width * zoom) + left + 30,
      height: Math.round(grid.height * zoom) + 90,
      margin: { l: left, r: 30, t: 60, b: 30 },
      xaxis: {
        visible: false,
        range: [0, grid.width],
        constrain: "domain",
      },
      yaxis: {
        range: [grid.height, 0],
        tickvals: grid.rowCentres,
        ticktext: [...dataset.classNames],
        showgrid: false,
        zeroline: false,
        ticks: "",
        scaleanchor: "x",
        constrain: "domain",
      },
    },
  };
}

/**
 * Displays {@linkcode sampleGrid} in the current notebook cell (outside Jupyter it prints the
 * figure's one-line description).
 *
 * @example
 * ```ts
 * await showSamples(data, { perClass: 10 });
 * ```
 */
export async function showSamples(
  dataset: SampleSource,
  options: SampleGridOptions = {},
): Promise<void> {
  await show(sampleGrid(dataset, options));
}

/**
 * Displays one paragraph about a loaded dataset (name, sizes, classes, and the fallback notice
 * when "auto" chose the built-in set) carrying the dataset's name for the report header, then the
 * sample grid.
 *
 * @example
 * ```ts
 * await showDataset(await loadDataset({ dataset: "auto", trainSize: 400 }));
 * ```
 */
export async function showDataset(
  dataset: SampleSource & {
    fullSizes?: { train: number; test: number };
    notice?: string;
    source?: string;
    dataDir?: string;
  },
  options: SampleGridOptions = {},
): Promise<void> {
  const of = dataset.fullSizes
    ? ` (of ${dataset.fullSizes.train} / ${dataset.fullSizes.test})`
    : "";
  await showMarkdown(
    `**${dataset.name}**: ${dataset.train.length} training and ${dataset.test.length} test ` +
      `images${of}, classes: ${dataset.classNames.join(", ")}` +
      (dataset.notice ? `\n\n> ${dataset.notice}` : ""),
    // Where it was read from: the report cache lists that folder after the run.
    {
      [REPORT_FACTS_MIME]: {
        dataset: { name: dataset.name, source: dataset.source, dataDir: dataset.dataDir },
      },
    },
  );
  await showSamples(dataset, options);
}
