/**
 * The "CIFAR-10 binary version" format and its reader.
 *
 * The official archive `cifar-10-binary.tar.gz` holds a folder `cifar-10-batches-bin/` with
 * `data_batch_1.bin` … `data_batch_5.bin` (training, 10,000 records each), `test_batch.bin`
 * (10,000 records) and `batches.meta.txt` (the class names, one per line). A record is 3,073
 * bytes: the label (0–9), then 1,024 red, 1,024 green and 1,024 blue bytes, each plane a 32×32
 * image stored row by row from the top.
 *
 * In memory this module keeps images as uint8 NHWC (`[n, 32, 32, 3]`, the layout of the models),
 * 3,072 bytes per image; the full CIFAR-10 set is about 184 MB. Float conversion happens per
 * batch (see `batches.ts`).
 *
 * @example
 * ```ts
 * import { readCifarBinary } from "./cifar10.ts";
 * const { classNames, train, test } = await readCifarBinary("data/cifar-10-batches-bin");
 * console.log(classNames[train.labels[0]], train.length, test.length); // … 50000 10000
 * ```
 * @module
 */
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readTarFile } from "./_tar.ts";
import { concatBytes } from "../util/bytes.ts";

/** The project's `data/` folder (git-ignored), where datasets are stored by default. */
export const DEFAULT_DATA_DIR: string = fileURLToPath(new URL("../../data", import.meta.url));

/** Height and width of an image. */
export const IMAGE_SIZE: number = 32;
/** Colour channels (RGB). */
export const CHANNELS: number = 3;
/** Pixel bytes of one image (32 × 32 × 3). */
export const IMAGE_BYTES: number = IMAGE_SIZE * IMAGE_SIZE * CHANNELS;
/** Bytes of one record: the label byte and the pixel bytes. */
export const RECORD_BYTES: number = IMAGE_BYTES + 1;
/** Number of classes; labels are 0 … 9. */
export const NUM_CLASSES: number = 10;
/** Files of the training split, in order. */
export const TRAIN_FILES: readonly string[] = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
/** File of the test split. */
export const TEST_FILE: string = "test_batch.bin";
/** File with the class names, one per line. */
export const META_FILE: string = "batches.meta.txt";
/** Every file of the binary version: the training files, the test file, the class names. */
export const CIFAR10_FILES: readonly string[] = [...TRAIN_FILES, TEST_FILE, META_FILE];
/** Folder of the binary version inside the archive and under `data/`. */
export const CIFAR10_FOLDER: string = "cifar-10-batches-bin";
/** Class names of CIFAR-10, as in its `batches.meta.txt`. */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/**
 * A bad or missing dataset file; the message names the file and what is wrong.
 *
 * @example
 * ```ts
 * try {
 *   await readCifarBinary("data/cifar-10-batches-bin");
 * } catch (error) {
 *   if (error instanceof DataError) console.error(error.message);
 * }
 * ```
 */
export class DataError extends Error {
  /** A data error with a message. */
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

/** Images and labels of one split, uint8 NHWC. */
export interface ImageSet {
  /** Pixels: image `i`, row `r`, column `c`, channel `k` at `i*3072 + (r*32 + c)*3 + k`. */
  images: Uint8Array;
  /** One label (0–9) per image. */
  labels: Uint8Array;
  /** Number of images. */
  length: number;
}

/**
 * Per-channel pixel counts (red, green, blue; index = pixel value 0–255): everything that
 * per-channel means and standard deviations need, gathered without keeping the images.
 */
export type ChannelHistogram = [Float64Array, Float64Array, Float64Array];

/** What {@linkcode readCifarBinary} returns. */
export interface BinaryDataset {
  /** Class names from `batches.meta.txt`. */
  classNames: string[];
  /** The five training files, concatenated in order (or the images `choose.train` picked). */
  train: ImageSet;
  /** The test file (or the images `choose.test` picked). */
  test: ImageSet;
  /** Number of images in each whole split on disk. */
  fullSizes: { train: number; test: number };
  /** Pixel counts of the whole training split, when `histogram` was asked for. */
  histogram?: ChannelHistogram;
}

/**
 * Picks the images to keep from all labels of a split: their indices in the split, in the order
 * wanted (runs of consecutive indices are read together).
 */
export type ChooseImages = (labels: Uint8Array) => ArrayLike<number>;

/** Options of {@linkcode readCifarBinary}. */
export interface ReadCifarOptions {
  /**
   * Per split, which images to keep (default: all). From a folder, only the chosen records are
   * decoded and kept: the split is read once for its labels through a small buffer, then the
   * chosen records are read by their offsets.
   */
  choose?: { train?: ChooseImages; test?: ChooseImages };
  /** Also count the pixel values of the whole training split (`histogram` in the result). */
  histogram?: boolean;
}

/**
 * Wraps images and labels as an {@linkcode ImageSet}, checking that their sizes agree.
 *
 * @example
 * ```ts
 * const set = imageSet(new Uint8Array(2 * 3072), new Uint8Array([3, 7]));
 * set.length; // 2
 * ```
 */
export function imageSet(images: Uint8Array, labels: Uint8Array): ImageSet {
  if (images.length !== labels.length * IMAGE_BYTES) {
    throw new RangeError(
      `${labels.length} labels need ${
        labels.length * IMAGE_BYTES
      } pixel bytes, got ${images.length}`,
    );
  }
  return { images, labels, length: labels.length };
}

/**
 * Copies the images at `indices` (in that order) into a new {@linkcode ImageSet}.
 *
 * @example
 * ```ts
 * const set = imageSet(new Uint8Array(3 * 3072), new Uint8Array([0, 1, 2]));
 * selectImages(set, [2, 0]).labels; // Uint8Array [2, 0]
 * ```
 */
export function selectImages(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const images = new Uint8Array(indices.length * IMAGE_BYTES);
  const labels = new Uint8Array(indices.length);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    if (!(Number.isInteger(i) && i >= 0 && i < set.length)) {
      throw new RangeError(`index ${i} is not an integer in 0…${set.length - 1}`);
    }
    labels[j] = set.labels[i];
    images.set(set.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), j * IMAGE_BYTES);
  }
  return { images, labels, length: indices.length };
}

function checkSize(size: number, file: string): number {
  if (size === 0 || size % RECORD_BYTES !== 0) {
    const records = Math.floor(size / RECORD_BYTES);
    throw new DataError(
      `${file} has ${size.toLocaleString("en")} bytes, which is not a positive multiple of ` +
        `3,073 (1 label byte + 3,072 pixel bytes per record)` +
        (size > 0 ? `: ${records} whole records and ${size % RECORD_BYTES} bytes left over` : "") +
        `; the file is truncated or not a CIFAR-10 batch`,
    );
  }
  return size / RECORD_BYTES;
}

function checkLabel(label: number, file: string, record: number): number {
  if (label >= NUM_CLASSES) {
    throw new DataError(
      `${file}: record ${record} (byte offset ${
        record * RECORD_BYTES
      }) has label ${label}; CIFAR-10 labels are 0–9`,
    );
  }
  return label;
}

/**
 * Decodes the whole records in `bytes`, records `first…` of `file`, into `target` starting at
 * image `offset`; returns their number.
 */
function decodeInto(
  bytes: Uint8Array,
  file: string,
  target: ImageSet,
  offset: number,
  first = 0,
): number {
  const n = bytes.length / RECORD_BYTES;
  const { images, labels } = target;
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  for (let r = 0; r < n; r++) {
    const src = r * RECORD_BYTES;
    labels[offset + r] = checkLabel(bytes[src], file, first + r);
    const red = src + 1;
    const dst = (offset + r) * IMAGE_BYTES;
    for (let p = 0, d = dst; p < plane; p++, d += 3) {
      images[d] = bytes[red + p];
      images[d + 1] = bytes[red + plane + p];
      images[d + 2] = bytes[red + 2 * plane + p];
    }
  }
  return n;
}

/** Counts the pixel values of the whole records in `bytes` (planar R, G, B) into `histogram`. */
function countPixels(bytes: Uint8Array, histogram: ChannelHistogram): void {
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  for (let src = 0; src < bytes.length; src += RECORD_BYTES) {
    for (let c = 0; c < CHANNELS; c++) {
      const h = histogram[c];
      const start = src + 1 + c * plane;
      for (let p = start; p < start + plane; p++) h[bytes[p]]++;
    }
  }
}

/** An empty {@linkcode ChannelHistogram}. */
function emptyHistogram(): ChannelHistogram {
  return [new Float64Array(256), new Float64Array(256), new Float64Array(256)];
}

/**
 * Decodes one batch file's bytes (records of label + planar RGB) into NHWC images. Throws a
 * {@linkcode DataError} naming `file` when the size is not a multiple of 3,073 or a label is
 * outside 0–9.
 *
 * @example
 * ```ts
 * const bytes = await Deno.readFile("data/cifar-10-batches-bin/test_batch.bin");
 * const test = decodeBatch(bytes, "test_batch.bin"); // test.length === 10000
 * ```
 */
export function decodeBatch(bytes: Uint8Array, file = "batch"): ImageSet {
  const n = checkSize(bytes.length, file);
  const set = imageSet(new Uint8Array(n * IMAGE_BYTES), new Uint8Array(n));
  decodeInto(bytes, file, set, 0);
  return set;
}

/**
 * Encodes images as a batch file in the CIFAR-10 binary layout (the inverse of
 * {@linkcode decodeBatch}).
 *
 * @example
 * ```ts
 * const bytes = encodeBatch(imageSet(new Uint8Array(3072), new Uint8Array([4])));
 * bytes.length; // 3073
 * ```
 */
export function encodeBatch(set: ImageSet): Uint8Array {
  const out = new Uint8Array(set.length * RECORD_BYTES);
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  for (let r = 0; r < set.length; r++) {
    const dst = r * RECORD_BYTES;
    out[dst] = set.labels[r];
    const src = r * IMAGE_BYTES;
    for (let p = 0, s = src; p < plane; p++, s += 3) {
      out[dst + 1 + p] = set.images[s];
      out[dst + 1 + plane + p] = set.images[s + 1];
      out[dst + 1 + 2 * plane + p] = set.images[s + 2];
    }
  }
  return out;
}

/**
 * Parses `batches.meta.txt`: the first ten non-empty lines are the class names.
 *
 * @example
 * ```ts
 * parseClassNames("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
 * ```
 */
export function parseClassNames(text: string, file = META_FILE): string[] {
  const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  if (names.length < NUM_CLASSES) {
    throw new DataError(
      `${file} lists ${names.length} class names; expected ${NUM_CLASSES}, one per line`,
    );
  }
  return names.slice(0, NUM_CLASSES);
}

function concat(parts: ImageSet[]): ImageSet {
  return imageSet(concatBytes(parts.map((p) => p.images)), concatBytes(parts.map((p) => p.labels)));
}

async function statFile(path: string): Promise<number> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new DataError(`${path} is not a file`);
    return info.size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DataError(
        `missing file ${path} (a CIFAR-10 binary folder holds ${TRAIN_FILES.join(", ")}, ` +
          `${TEST_FILE} and ${META_FILE})`,
      );
    }
    throw error;
  }
}

/** Records per read: a 3 MB buffer, small beside the images it feeds. */
const CHUNK_RECORDS = 1024;

/** A batch file of a split and its number of records. */
interface BatchFile {
  path: string;
  records: number;
}

async function readFolder(dir: string, options: ReadCifarOptions): Promise<BinaryDataset> {
  const trainPaths = TRAIN_FILES.map((f) => join(dir, f));
  const testPath = join(dir, TEST_FILE);
  const metaPath = join(dir, META_FILE);
  const sizes = await Promise.all([...trainPaths, testPath, metaPath].map(statFile));
  const files = [...trainPaths, testPath].map((path, i) => ({
    path,
    records: checkSize(sizes[i], path),
  }));
  const classNames = parseClassNames(await Deno.readTextFile(metaPath), metaPath);
  const histogram = options.histogram ? emptyHistogram() : undefined;
  // One small buffer for every read: whole files read into fresh buffers and left for the
  // garbage collector would raise the process's peak memory by the dataset's size again.
  const buffer = new Uint8Array(CHUNK_RECORDS * RECORD_BYTES);
  const trainFiles = files.slice(0, TRAIN_FILES.length);
  const train = await readSplit("train", trainFiles, options.choose?.train, buffer, histogram);
  const test = await readSplit(
    "test",
    files.slice(TRAIN_FILES.length),
    options.choose?.test,
    buffer,
  );
  const count = (list: BatchFile[]) => list.reduce((sum, f) => sum + f.records, 0);
  return {
    classNames,
    train,
    test,
    fullSizes: { train: count(trainFiles), test: files.at(-1)!.records },
    ...(histogram ? { histogram } : {}),
  };
}

/**
 * Reads a split chunk by chunk: decoding every record when nothing is chosen, otherwise taking
 * only the labels (and pixel counts) and then reading the chosen records by offset.
 */
async function readSplit(
  split: Split,
  files: BatchFile[],
  choose: ChooseImages | undefined,
  buffer: Uint8Array,
  histogram?: ChannelHistogram,
): Promise<ImageSet> {
  const n = files.reduce((sum, f) => sum + f.records, 0);
  const labels = new Uint8Array(n);
  const all = choose ? undefined : imageSet(new Uint8Array(n * IMAGE_BYTES), labels);
  let at = 0;
  for (const { path, records } of files) {
    using file = await Deno.open(path);
    for (let r = 0; r < records; r += CHUNK_RECORDS) {
      const k = Math.min(CHUNK_RECORDS, records - r);
      const bytes = await readFull(file, path, r, buffer.subarray(0, k * RECORD_BYTES), records);
      if (all) decodeInto(bytes, path, all, at + r, r);
      else {
        for (let j = 0; j < k; j++) {
          labels[at + r + j] = checkLabel(bytes[j * RECORD_BYTES], path, r + j);
        }
      }
      if (histogram) countPixels(bytes, histogram);
    }
    at += records;
  }
  return all ?? await readChosen(files, labels, chosen(choose!, labels, split), buffer);
}

type Split = "train" | "test";

/** `choose(labels)`, checked: integer indices of records of the split, or an error naming it. */
function chosen(choose: ChooseImages, labels: Uint8Array, split: Split): ArrayLike<number> {
  const indices = choose(labels);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    if (!(Number.isInteger(i) && i >= 0 && i < labels.length)) {
      throw new RangeError(
        `choose.${split} returned ${i} at position ${j}; expected integer indices in ` +
          `0…${labels.length - 1} (the ${split} split's records)`,
      );
    }
  }
  return indices;
}

/**
 * Reads and decodes the records at `indices` of a split (runs of consecutive ones at once);
 * `indices` as {@linkcode chosen} checked them.
 */
async function readChosen(
  files: BatchFile[],
  labels: Uint8Array,
  indices: ArrayLike<number>,
  buffer: Uint8Array,
): Promise<ImageSet> {
  const out = imageSet(
    new Uint8Array(indices.length * IMAGE_BYTES),
    new Uint8Array(indices.length),
  );
  const starts = files.map((_, f) => files.slice(0, f).reduce((sum, g) => sum + g.records, 0));
  const opened = new Map<number, Deno.FsFile>();
  try {
    for (let j = 0; j < indices.length;) {
      const i = indices[j];
      const f = starts.findLastIndex((start) => start <= i);
      const { path, records } = files[f];
      const first = i - starts[f];
      let run = 1;
      while (
        run < CHUNK_RECORDS && j + run < indices.length && indices[j + run] === i + run &&
        first + run < records
      ) run++;
      let file = opened.get(f);
      if (!file) opened.set(f, file = await Deno.open(path));
      await file.seek(first * RECORD_BYTES, Deno.SeekMode.Start);
      const bytes = await readFull(
        file,
        path,
        first,
        buffer.subarray(0, run * RECORD_BYTES),
        records,
      );
      decodeInto(bytes, path, out, j, first);
      for (let r = 0; r < run; r++) {
        // The choice was made from the labels read before; a file rewritten since would break it.
        if (out.labels[j + r] !== labels[i + r]) {
          throw new DataError(`${path} changed while it was read (record ${first + r})`);
        }
      }
      j += run;
    }
  } finally {
    for (const file of opened.values()) file.close();
  }
  return out;
}

/**
 * Fills `into` from `file` (at its current position, record `first`); throws naming the file and
 * its expected size (`records` records) if it ends early.
 */
async function readFull(
  file: Deno.FsFile,
  path: string,
  first: number,
  into: Uint8Array,
  records: number,
): Promise<Uint8Array> {
  for (let at = 0; at < into.length;) {
    const n = await file.read(into.subarray(at));
    if (n === null) {
      throw new DataError(
        `${path} ended after ${first * RECORD_BYTES + at} bytes; expected ${
          records * RECORD_BYTES
        }`,
      );
    }
    at += n;
  }
  return into;
}

/** An archive is a stream: every batch is decoded, and the chosen images picked afterwards. */
async function readArchive(path: string, options: ReadCifarOptions): Promise<BinaryDataset> {
  const wanted = new Set(CIFAR10_FILES);
  const found = new Map<string, Uint8Array>();
  const member = (name: string) => {
    const parts = name.replace(/^\.\//, "").split("/").filter((p) => p !== "");
    return parts.length <= 2 && wanted.has(parts[parts.length - 1])
      ? parts[parts.length - 1]
      : undefined;
  };
  const parts = new Map<string, ImageSet>();
  const histogram = options.histogram ? emptyHistogram() : undefined;
  for await (
    const entry of readTarFile(path, { want: (name) => member(name) !== undefined })
  ) {
    const file = entry.data && member(entry.name);
    if (!file || !entry.data) continue;
    if (found.has(file) || parts.has(file)) {
      throw new DataError(`${path} holds ${file} twice: not the CIFAR-10 binary archive`);
    }
    // Decode batches as they arrive so the raw bytes do not pile up.
    if (file === META_FILE) found.set(file, entry.data);
    else parts.set(file, decodeBatch(entry.data, `${path}:${entry.name}`));
    if (histogram && TRAIN_FILES.includes(file)) countPixels(entry.data, histogram);
  }
  const missing = [...wanted].filter((f) => !found.has(f) && !parts.has(f));
  if (missing.length > 0) {
    throw new DataError(
      `${path} is not the CIFAR-10 binary archive: it has no ${missing.join(", ")} ` +
        `(expected in ${CIFAR10_FOLDER}/)`,
    );
  }
  const classNames = parseClassNames(
    new TextDecoder().decode(found.get(META_FILE)),
    `${path}:${META_FILE}`,
  );
  const train = concat(TRAIN_FILES.map((f) => parts.get(f)!));
  const test = parts.get(TEST_FILE)!;
  const pick = (set: ImageSet, split: Split, choose?: ChooseImages) =>
    choose ? selectImages(set, chosen(choose, set.labels, split)) : set;
  return {
    classNames,
    train: pick(train, "train", options.choose?.train),
    test: pick(test, "test", options.choose?.test),
    fullSizes: { train: train.length, test: test.length },
    ...(histogram ? { histogram } : {}),
  };
}

/**
 * Reads the CIFAR-10 binary version from a folder (the extracted `cifar-10-batches-bin/`, or a
 * folder that contains it) or straight from `cifar-10-binary.tar.gz` (or an uncompressed `.tar`).
 * Any dataset in the same layout (e.g. the built-in synthetic one) reads the same way.
 *
 * With `options.choose`, only the chosen images of a split are kept; from a folder only they are
 * decoded, so keeping 2,000 training images costs their 6 MB, not the split's 154 MB (see
 * {@linkcode ReadCifarOptions}).
 *
 * Errors are {@linkcode DataError}s naming the file: missing files, sizes that are not a multiple
 * of 3,073 (with the size), labels outside 0–9 (with the record index), archives that are not
 * CIFAR-10. Nothing is written.
 *
 * @example
 * ```ts
 * const fromFolder = await readCifarBinary("data/cifar-10-batches-bin");
 * const fromArchive = await readCifarBinary("cifar-10-binary.tar.gz");
 * // Only images 0, 5 and 9 of each split, and the whole training split's pixel counts:
 * const some = await readCifarBinary("data/cifar-10-batches-bin", {
 *   choose: { train: () => [0, 5, 9], test: () => [0, 5, 9] },
 *   histogram: true,
 * });
 * ```
 */
export async function readCifarBinary(
  path: string,
  options: ReadCifarOptions = {},
): Promise<BinaryDataset> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new DataError(`missing ${path}: no CIFAR-10 folder or archive there`);
    }
    throw error;
  }
  if (info.isFile) return await readArchive(path, options);
  const nested = join(path, CIFAR10_FOLDER);
  const hasOwn = await Deno.stat(join(path, TRAIN_FILES[0])).then(() => true, () => false);
  if (!hasOwn && basename(path) !== CIFAR10_FOLDER) {
    const hasNested = await Deno.stat(nested).then((i) => i.isDirectory, () => false);
    if (hasNested) return await readFolder(nested, options);
  }
  return await readFolder(path, options);
}
