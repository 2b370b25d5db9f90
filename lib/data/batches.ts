/**
 * Mini-batches as tensors: deterministic shuffling, per-channel normalisation and the standard
 * CIFAR augmentation (random crop with 4-pixel zero padding, horizontal flip), all drawn from a
 * seed so that two networks trained with the same seed see exactly the same batches.
 *
 * Images stay uint8 in memory; each batch is converted on its own to float32 NHWC
 * `[batch, 32, 32, 3]`, so the whole set never exists as float32 at once.
 *
 * **Ownership:** the iterator owns the tensors it yields. A batch's `x` and `y` stay valid until
 * the next batch is requested; they are disposed then, and when the loop ends (also through
 * `break` or an exception). Clone (`tf.clone`) whatever must outlive its step.
 *
 * @example
 * ```ts
 * import { batches } from "./batches.ts";
 * import { loadDataset } from "./dataset.ts";
 * const data = await loadDataset({ dataset: "synthetic", trainSize: 1000 });
 * for (const { x, y } of batches(data.train, { batchSize: 64, seed: 1, augment: true, normalize: data.stats })) {
 *   // x: [64, 32, 32, 3] float32, y: [64] int32 labels
 * }
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { Rng } from "./_rng.ts";
import { type ChannelHistogram, IMAGE_BYTES, IMAGE_SIZE, type ImageSet } from "./cifar10.ts";

/** Per-channel (R, G, B) mean and standard deviation of pixel values scaled to [0, 1]. */
export interface ChannelStats {
  /** Mean of each channel. */
  mean: [number, number, number];
  /** Standard deviation of each channel (population, over all pixels of all images). */
  std: [number, number, number];
}

/**
 * Mean and standard deviation per channel over all pixels of `set`, in [0, 1] units, computed
 * exactly from byte histograms. On the CIFAR-10 training split this gives the well-known
 * mean (0.4914, 0.4822, 0.4465) and std (0.2470, 0.2435, 0.2616).
 *
 * @example
 * ```ts
 * const { mean, std } = channelStats(data.train);
 * ```
 */
export function channelStats(set: ImageSet): ChannelStats {
  if (set.length === 0) throw new RangeError("channelStats needs at least one image");
  const hist: ChannelHistogram = [
    new Float64Array(256),
    new Float64Array(256),
    new Float64Array(256),
  ];
  const [h0, h1, h2] = hist;
  const px = set.images;
  for (let i = 0; i < px.length; i += 3) {
    h0[px[i]]++;
    h1[px[i + 1]]++;
    h2[px[i + 2]]++;
  }
  return histogramStats(hist);
}

/**
 * {@linkcode channelStats} from pixel counts, such as `readCifarBinary`'s `histogram` of a whole
 * split that was not kept in memory: the same numbers, bit for bit, as from the images.
 *
 * @example
 * ```ts
 * const raw = await readCifarBinary("data/cifar-10-batches-bin", {
 *   choose: { train: () => [0, 1, 2] },
 *   histogram: true,
 * });
 * const { mean, std } = histogramStats(raw.histogram!); // of all 50,000 training images
 * ```
 */
export function histogramStats(hist: ChannelHistogram): ChannelStats {
  // Counts are integers, so their float64 sum is exact and n does not depend on the order.
  const n = hist[0].reduce((a, b) => a + b, 0);
  if (n === 0) throw new RangeError("channel statistics need at least one pixel");
  const mean = [0, 0, 0] as [number, number, number];
  const std = [0, 0, 0] as [number, number, number];
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let v = 0; v < 256; v++) s += hist[c][v] * v;
    const m = s / n;
    let q = 0;
    for (let v = 0; v < 256; v++) q += hist[c][v] * (v - m) * (v - m);
    mean[c] = m / 255;
    std[c] = Math.sqrt(q / n) / 255;
  }
  return { mean, std };
}

/** Augmentation switches of {@linkcode BatchOptions}. */
export interface AugmentOptions {
  /** Zero padding of the random crop in pixels (default 4; 0 turns cropping off). */
  crop?: number;
  /** Random horizontal flip with probability 1/2 (default true). */
  flip?: boolean;
}

/** Options of {@linkcode batches} and {@linkcode batchTensors}. */
export interface BatchOptions {
  /** Images per batch. */
  batchSize: number;
  /** Shuffle the order (default true). The order depends only on `seed` and `epoch`. */
  shuffle?: boolean;
  /** Seed of the shuffle and augmentation draws (default 0). */
  seed?: number;
  /** Epoch number, mixed into the seed so that each epoch has its own order (default 0). */
  epoch?: number;
  /**
   * Augmentation: `true` for the standard crop (4-pixel zero padding) and flip, or switches.
   * Padding is zero in pixel space (black), as torchvision's `RandomCrop(32, padding=4)`, so after
   * normalisation padded pixels hold `-mean/std`. Default: none.
   */
  augment?: boolean | AugmentOptions;
  /** Normalise with these statistics (`x = (pixel/255 - mean) / std`); default: pixel/255 only. */
  normalize?: ChannelStats | false;
  /** Skip the last batch when it is smaller than `batchSize` (default false). */
  dropRemainder?: boolean;
}

/** One mini-batch. Owned by the iterator: valid until the next one is requested. */
export interface Batch {
  /** Images, float32 NHWC `[size, 32, 32, 3]`. */
  x: tf.Tensor4D;
  /** Labels, int32 `[size]` (tfjs-layers' sparse cross-entropy wants `y.toFloat()`). */
  y: tf.Tensor1D;
  /** Indices of these images in the image set. */
  indices: Int32Array;
  /** Position of this batch in the epoch (0, 1, …). */
  step: number;
  /** Number of images (the last batch may be smaller). */
  size: number;
}

/**
 * The order of images for one epoch: a seeded permutation, or 0 … n-1 when `shuffle` is false.
 *
 * @example
 * ```ts
 * epochOrder(5, { seed: 1, epoch: 0 }); // e.g. Int32Array [3, 0, 4, 1, 2]
 * ```
 */
export function epochOrder(
  n: number,
  options: { shuffle?: boolean; seed?: number; epoch?: number } = {},
): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (options.shuffle ?? true) {
    new Rng(options.seed ?? 0, "shuffle", options.epoch ?? 0).shuffle(order);
  }
  return order;
}

/** Per-image augmentation draws: crop offsets in [-pad, pad] and the flip flag. */
interface Draw {
  dx: number;
  dy: number;
  flip: boolean;
}

function augmentSettings(a: BatchOptions["augment"]): { pad: number; flip: boolean } | undefined {
  if (!a) return undefined;
  const o = a === true ? {} : a;
  const pad = o.crop ?? 4;
  if (!(Number.isInteger(pad) && pad >= 0 && pad < IMAGE_SIZE)) {
    throw new RangeError(`augment.crop must be an integer in 0…${IMAGE_SIZE - 1}, got ${pad}`);
  }
  return { pad, flip: o.flip ?? true };
}

/** Lookup table byte → normalised float per channel. */
function lookup(normalize: ChannelStats | false | undefined): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const t = new Float32Array(256);
    const mean = normalize ? normalize.mean[c] : 0;
    const std = normalize ? normalize.std[c] : 1;
    if (!(std > 0)) throw new RangeError(`normalize.std[${c}] must be positive, got ${std}`);
    for (let v = 0; v < 256; v++) t[v] = (v / 255 - mean) / std;
    return t;
  });
}

/** Writes image `src` of `px` into `out` at `dst`, shifted/flipped per `draw`. */
function writeImage(
  px: Uint8Array,
  src: number,
  out: Float32Array,
  dst: number,
  lut: Float32Array[],
  draw: Draw | undefined,
): void {
  const [l0, l1, l2] = lut;
  const S = IMAGE_SIZE;
  if (!draw) {
    for (let k = 0; k < IMAGE_BYTES; k += 3) {
      out[dst + k] = l0[px[src + k]];
      out[dst + k + 1] = l1[px[src + k + 1]];
      out[dst + k + 2] = l2[px[src + k + 2]];
    }
    return;
  }
  const z0 = l0[0], z1 = l1[0], z2 = l2[0];
  for (let r = 0; r < S; r++) {
    const sr = r + draw.dy;
    for (let c = 0; c < S; c++) {
      const o = dst + (r * S + c) * 3;
      const cc = draw.flip ? S - 1 - c : c;
      const sc = cc + draw.dx;
      if (sr < 0 || sr >= S || sc < 0 || sc >= S) {
        out[o] = z0;
        out[o + 1] = z1;
        out[o + 2] = z2;
      } else {
        const s = src + (sr * S + sc) * 3;
        out[o] = l0[px[s]];
        out[o + 1] = l1[px[s + 1]];
        out[o + 2] = l2[px[s + 2]];
      }
    }
  }
}

/**
 * Builds one batch's tensors for the images at `indices` (no ownership tracking: the caller
 * disposes `x` and `y`). `draws`, when given, holds one augmentation per image.
 */
function makeTensors(
  set: ImageSet,
  indices: Int32Array,
  lut: Float32Array[],
  draws: (Draw | undefined)[] | undefined,
): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const n = indices.length;
  const xs = new Float32Array(n * IMAGE_BYTES);
  const ys = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    const i = indices[j];
    if (!(Number.isInteger(i) && i >= 0 && i < set.length)) {
      throw new RangeError(`index ${i} is not an integer in 0…${set.length - 1}`);
    }
    ys[j] = set.labels[i];
    writeImage(set.images, i * IMAGE_BYTES, xs, j * IMAGE_BYTES, lut, draws?.[j]);
  }
  return {
    x: tf.tensor4d(xs, [n, IMAGE_SIZE, IMAGE_SIZE, 3], "float32"),
    y: tf.tensor1d(ys, "int32"),
  };
}

/**
 * Tensors for the images at `indices` (in that order), normalised like {@linkcode batches} but
 * never augmented. The caller owns and disposes the result.
 *
 * @example
 * ```ts
 * const { x, y } = batchTensors(data.test, [0, 1, 2], { normalize: data.stats });
 * x.dispose();
 * y.dispose();
 * ```
 */
export function batchTensors(
  set: ImageSet,
  indices: ArrayLike<number>,
  options: { normalize?: ChannelStats | false } = {},
): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return makeTensors(set, Int32Array.from(indices), lookup(options.normalize), undefined);
}

/**
 * Iterates over one epoch of `set` in mini-batches (see the module doc for ownership). With the
 * same `seed` and `epoch`, the order and every augmentation draw are identical, whatever else
 * runs in between; the shuffle and the augmentation use independent streams, so switching
 * augmentation on or off does not change the order.
 *
 * @example
 * ```ts
 * for (let epoch = 0; epoch < 2; epoch++) {
 *   for (const { x, y } of batches(data.train, { batchSize: 128, seed: 7, epoch, augment: true, normalize: data.stats })) {
 *     // train on x, y
 *   }
 * }
 * ```
 */
export function* batches(set: ImageSet, options: BatchOptions): Generator<Batch, void, undefined> {
  const { batchSize } = options;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const seed = options.seed ?? 0;
  const epoch = options.epoch ?? 0;
  const aug = augmentSettings(options.augment);
  const lut = lookup(options.normalize);
  const order = epochOrder(set.length, { shuffle: options.shuffle, seed, epoch });
  const rng = new Rng(seed, "augment", epoch);
  let current: { x: tf.Tensor; y: tf.Tensor } | undefined;
  try {
    for (let start = 0, step = 0; start < set.length; start += batchSize, step++) {
      const end = Math.min(start + batchSize, set.length);
      if (end - start < batchSize && options.dropRemainder) break;
      const indices = order.slice(start, end);
      const draws = aug
        ? Array.from(indices, () => ({
          dx: aug.pad ? rng.int(2 * aug.pad + 1) - aug.pad : 0,
          dy: aug.pad ? rng.int(2 * aug.pad + 1) - aug.pad : 0,
          flip: aug.flip ? rng.chance(0.5) : false,
        }))
        : undefined;
      const tensors = makeTensors(set, indices, lut, draws);
      current?.x.dispose();
      current?.y.dispose();
      current = tensors;
      yield { ...tensors, indices, step, size: end - start };
    }
  } finally {
    current?.x.dispose();
    current?.y.dispose();
  }
}
