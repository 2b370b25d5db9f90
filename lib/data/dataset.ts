/**
 * Choosing and loading a dataset: CIFAR-10 when it has been installed (`deno task data:cifar10`),
 * otherwise the built-in synthetic shapes, with deterministic class-balanced subsets.
 *
 * @example
 * ```ts
 * import { loadDataset } from "./dataset.ts";
 * const data = await loadDataset({ dataset: "auto", trainSize: 5000, testSize: 1000, seed: 1 });
 * console.log(data.name, data.train.length, data.notice ?? "");
 * ```
 * @module
 */
import { interruptSafe } from "../backend/engine_repair.ts";
import { parseChoice } from "../util/choice.ts";
import { Rng } from "./_rng.ts";
import { type ChannelStats, histogramStats } from "./batches.ts";
import {
  type ChooseImages,
  DataError,
  DEFAULT_DATA_DIR,
  type ImageSet,
  NUM_CLASSES,
  readCifarBinary,
} from "./cifar10.ts";
import { CIFAR10_COMMAND, cifar10Status, restoreCifar10 } from "./download.ts";
import { ensureSynthetic, SYNTHETIC_NAME, type SyntheticOptions } from "./synthetic.ts";

/** Names accepted by {@linkcode loadDataset}'s `dataset` option. */
export const DATASET_NAMES = ["auto", "cifar10", "synthetic"] as const;

/** A name from {@linkcode DATASET_NAMES}. */
export type DatasetName = typeof DATASET_NAMES[number];

/** Display name of CIFAR-10. */
export const CIFAR10_NAME = "CIFAR-10";

/** A loaded dataset. */
export interface Dataset {
  /** Which dataset this is. */
  id: "cifar10" | "synthetic";
  /** Display name for plots and reports: "CIFAR-10" or "synthetic shapes (built-in)". */
  name: string;
  /** Class names, index = label. */
  classNames: string[];
  /** Training images (the subset when `trainSize` was given). */
  train: ImageSet;
  /** Test images (the subset when `testSize` was given). */
  test: ImageSet;
  /**
   * Per-channel mean and std for normalisation, computed on the full training split (before
   * subsetting), in [0, 1] units. Pass it as `normalize` to `batches`.
   */
  stats: ChannelStats;
  /** Sizes of the full splits on disk. */
  fullSizes: { train: number; test: number };
  /** The folder the data was read from. */
  source: string;
  /** The data folder searched ("auto" looks for CIFAR-10 here before the built-in set). */
  dataDir: string;
  /** Set when "auto" fell back to the built-in set: one line saying how to get CIFAR-10. */
  notice?: string;
}

/** Options of {@linkcode loadDataset}. */
export interface LoadDatasetOptions {
  /**
   * One of {@linkcode DATASET_NAMES}, as a notebook's raw parameter: "auto" (default) is CIFAR-10
   * if installed and verified, else the built-in set. Any other string is refused by name.
   */
  dataset?: DatasetName | string;
  /** Data folder (default the project's `data/`). */
  dataDir?: string;
  /**
   * Class-balanced training subset of this size (default: all). Only these images are read into
   * memory; the rest of the split is read for its labels and pixel statistics only.
   */
  trainSize?: number;
  /** Class-balanced test subset of this size (default: all); read like `trainSize`. */
  testSize?: number;
  /** Seed of the subset selection (default 0). */
  seed?: number;
  /** Generation parameters of the built-in set (default: the project's 50,000 + 10,000). */
  synthetic?: SyntheticOptions;
  /** Where the fallback notice goes (default `console.log`); false for nowhere. */
  log?: ((line: string) => void) | false;
}

/**
 * Indices of a class-balanced subset of `size` images: classes take turns, each contributing its
 * images in a seeded random order, so every class gets `size / 10` images (± 1) when it has
 * enough; classes that run out leave their turns to the others. Returned in ascending order.
 *
 * @example
 * ```ts
 * const idx = balancedIndices(data.train.labels, 1000, 0); // 100 per class
 * ```
 */
export function balancedIndices(
  labels: Uint8Array,
  size: number,
  seed: number,
  stream = "subset",
): Int32Array {
  if (!(Number.isInteger(size) && size >= 1 && size <= labels.length)) {
    throw new RangeError(`subset size must be an integer in 1…${labels.length}, got ${size}`);
  }
  const byClass: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const rng = new Rng(seed, stream);
  for (const list of byClass) rng.shuffle(list);
  const out = new Int32Array(size);
  const next = new Array(NUM_CLASSES).fill(0);
  let n = 0;
  while (n < size) {
    for (let c = 0; c < NUM_CLASSES && n < size; c++) {
      if (next[c] < byClass[c].length) out[n++] = byClass[c][next[c]++];
    }
  }
  return out.sort();
}

/** Picks the balanced subset of `size` images from a split's labels (all when no size). */
function chooser(size: number | undefined, seed: number, split: string): ChooseImages | undefined {
  if (size === undefined) return undefined;
  return (labels) => {
    if (!(Number.isInteger(size) && size >= 1 && size <= labels.length)) {
      throw new RangeError(
        `${split}Size must be an integer in 1…${labels.length} (the ${split} split has ` +
          `${labels.length} images), got ${size}`,
      );
    }
    return balancedIndices(labels, size, seed, `subset-${split}`);
  };
}

/**
 * Loads a dataset (see {@linkcode LoadDatasetOptions}). "cifar10" when CIFAR-10 is not installed
 * is an error naming `deno task data:cifar10`; "auto" then falls back to the built-in synthetic
 * set (generated into `data/synthetic-10-batches-bin/` on first use, a few seconds) and returns a
 * one-line `notice`, which it also logs. Unknown names are refused with the valid ones.
 *
 * @example
 * ```ts
 * const data = await loadDataset({ dataset: "synthetic", trainSize: 2000, testSize: 500 });
 * data.name; // "synthetic shapes (built-in)"
 * ```
 */
export function loadDataset(options: LoadDatasetOptions = {}): Promise<Dataset> {
  // A Stop while loading ends the cell at once and leaves no tensors (see engine_repair.ts).
  return interruptSafe("loadDataset", () => load(options));
}

async function load(options: LoadDatasetOptions): Promise<Dataset> {
  const which = parseChoice("dataset", options.dataset ?? "auto", DATASET_NAMES);
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  const seed = options.seed ?? 0;
  let id: Dataset["id"];
  let folder: string;
  let notice: string | undefined;
  if (which === "synthetic") {
    id = "synthetic";
    folder = await ensureSynthetic(dataDir, options.synthetic);
  } else {
    await restoreCifar10(dataDir);
    const status = await cifar10Status(dataDir);
    if (status.ready) {
      id = "cifar10";
      folder = status.folder;
    } else if (which === "cifar10") {
      throw new DataError(
        `CIFAR-10 is not available: ${status.reason}. Get it with \`${CIFAR10_COMMAND}\` ` +
          `(or \`npx -y deno@2.9.6 task data:cifar10\`).`,
      );
    } else {
      id = "synthetic";
      notice = `CIFAR-10 not found in ${dataDir}; using the built-in "${SYNTHETIC_NAME}" ` +
        `dataset instead. Get CIFAR-10 with \`${CIFAR10_COMMAND}\`.`;
      folder = await ensureSynthetic(dataDir, options.synthetic);
    }
  }
  if (notice && options.log !== false) (options.log ?? console.log)(notice);
  // Only the chosen images are decoded and kept; the statistics still cover the whole training
  // split, through its pixel counts.
  const raw = await readCifarBinary(folder, {
    choose: {
      train: chooser(options.trainSize, seed, "train"),
      test: chooser(options.testSize, seed, "test"),
    },
    histogram: true,
  });
  return {
    id,
    name: id === "cifar10" ? CIFAR10_NAME : SYNTHETIC_NAME,
    classNames: raw.classNames,
    train: raw.train,
    test: raw.test,
    stats: histogramStats(raw.histogram!),
    fullSizes: raw.fullSizes,
    source: folder,
    dataDir,
    ...(notice ? { notice } : {}),
  };
}
