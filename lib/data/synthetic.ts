/**
 * The built-in dataset, "synthetic shapes (built-in)": 10 classes of 32×32 RGB images generated
 * deterministically from a seed, stored in the CIFAR-10 binary layout under
 * `data/synthetic-10-batches-bin/` and read through the same reader as CIFAR-10, so everything
 * runs offline and the real loading code is exercised.
 *
 * Each image has a gradient background between two random colours, one main object whose class is
 * the label, 0–2 small distractors (thin lines and dots in random colours) and Gaussian pixel
 * noise. Position, size, rotation, colours, contrast and noise level vary within every class.
 * Colour is a strong but imperfect cue, as in real photos: in 80 % of the images the object has
 * its class's hue (label × 36°, ±15°, random saturation and brightness), in the rest a random
 * colour, so shape and texture decide the remainder. Measured difficulty (softmax regression on
 * pixels, a tiny convnet, the seed DenseNet after a quick run): see data/README.md.
 *
 * | label | class     | main object                                                       |
 * | ----- | --------- | ----------------------------------------------------------------- |
 * | 0     | circle    | filled disk                                                       |
 * | 1     | square    | filled square, any rotation                                       |
 * | 2     | triangle  | filled equilateral triangle, any rotation                         |
 * | 3     | cross     | plus sign, tilted up to ±20°                                      |
 * | 4     | h-stripes | disk or square patch of horizontal stripes (±11°)                 |
 * | 5     | v-stripes | patch of vertical stripes                                         |
 * | 6     | checker   | patch of checkerboard                                             |
 * | 7     | ring      | annulus                                                           |
 * | 8     | diagonal  | patch of diagonal stripes (either diagonal)                       |
 * | 9     | blob      | irregular smooth blob (3–5 merged bumps)                          |
 *
 * Default sizes match CIFAR-10: 50,000 training images (5 files of 10,000) and 10,000 test
 * images, classes exactly balanced; about 184 MB on disk.
 *
 * @example
 * ```ts
 * import { ensureSynthetic } from "./synthetic.ts";
 * const folder = await ensureSynthetic("data"); // generates on first use, then reuses
 * ```
 * @module
 */
import { join } from "node:path";
import { Rng } from "./_rng.ts";
import {
  CIFAR10_FILES,
  decodeBatch,
  IMAGE_SIZE,
  type ImageSet,
  META_FILE,
  NUM_CLASSES,
  RECORD_BYTES,
  TEST_FILE,
  TRAIN_FILES,
} from "./cifar10.ts";
import { asidePrefix, fileSize, removeStale, replaceFolder, restoreSetAside } from "../util/fs.ts";

/** Display name of the built-in dataset, used by plots and reports. */
export const SYNTHETIC_NAME = "synthetic shapes (built-in)";
/** Folder of the built-in dataset under the data directory. */
export const SYNTHETIC_FOLDER = "synthetic-10-batches-bin";
/** Class names of the built-in dataset (its `batches.meta.txt`). */
export const SYNTHETIC_CLASSES: readonly string[] = [
  "circle",
  "square",
  "triangle",
  "cross",
  "h-stripes",
  "v-stripes",
  "checker",
  "ring",
  "diagonal",
  "blob",
];
/** Version of the generator; a folder written by another version is regenerated. */
export const SYNTHETIC_VERSION = 2;
/** File recording how the folder was generated; written last. */
export const SYNTHETIC_MARKER = "SYNTHETIC.json";

/** Generation parameters of the built-in dataset. */
export interface SyntheticOptions {
  /** Generation seed (default 0: the project's built-in set). */
  seed?: number;
  /** Training images, spread over the 5 training files (default 50,000; at least 5). */
  trainCount?: number;
  /** Test images (default 10,000; at least 1). */
  testCount?: number;
}

/** The split an image belongs to. */
export type SplitName = "train" | "test";

const S = IMAGE_SIZE;
const PLANE = S * S;

let noiseTable: Float32Array | undefined;
const NOISE_MASK = 0xffff;

function gaussianTable(): Float32Array {
  if (!noiseTable) {
    const rng = new Rng(0x5eed, "noise-table");
    noiseTable = new Float32Array(NOISE_MASK + 1);
    for (let i = 0; i < noiseTable.length; i++) noiseTable[i] = rng.normal();
  }
  return noiseTable;
}

type Rgb = [number, number, number];

function randomColour(rng: Rng): Rgb {
  return [rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)];
}

/**
 * How hard the set is. Version 1 (random colours, objects of radius 5–10, up to 3 distractors,
 * noise σ up to 16) left the seed DenseNet at chance after a quick run and at 15 % after 5,000
 * images × 2 epochs; PyTorch 1.13 trained the same network just as slowly on it. Version 2 adds a
 * colour cue, as real photos have (sky, grass), and eases the nuisances.
 */
const STYLE = {
  /** Probability that the object has its class's hue; otherwise its colour is random. */
  colourCue: 0.8,
  /** Smallest colour distance (0–441) between the object and the background, plus 0–70. */
  minContrast: 60,
  /** Object size range (radius-like, pixels). */
  minSize: 6,
  maxSize: 11,
  /** Thin lines and dots: 0 to this many. */
  maxDistractors: 2,
  /** Gaussian pixel noise: σ uniform in 2 to this. */
  maxNoise: 12,
} as const;

/** A colour near class `label`'s hue (label × 36°), saturated and not too dark. */
function classColour(label: number, rng: Rng): Rgb {
  const h = ((label * 36 + rng.uniform(-15, 15)) / 60 + 6) % 6;
  const sat = rng.uniform(0.55, 1), v = rng.uniform(110, 255);
  const f = h - Math.floor(h);
  const p = v * (1 - sat), q = v * (1 - sat * f), t = v * (1 - sat * (1 - f));
  switch (Math.floor(h)) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

function distance(a: Rgb, b: Rgb): number {
  const r = a[0] - b[0], g = a[1] - b[1], bl = a[2] - b[2];
  return Math.sqrt(r * r + g * g + bl * bl);
}

function len(x: number, y: number): number {
  return Math.sqrt(x * x + y * y);
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Blends `colour` with coverage `alpha(x, y)` into `img` over the box [x0, x1) × [y0, y1). */
function paint(
  img: Float32Array,
  colour: Rgb,
  box: [number, number, number, number],
  alpha: (x: number, y: number) => number,
): void {
  const x0 = Math.max(0, Math.floor(box[0])), x1 = Math.min(S, Math.ceil(box[1]));
  const y0 = Math.max(0, Math.floor(box[2])), y1 = Math.min(S, Math.ceil(box[3]));
  const [r, g, b] = colour;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const a = alpha(x + 0.5, y + 0.5);
      if (a <= 0) continue;
      const o = (y * S + x) * 3;
      img[o] += (r - img[o]) * a;
      img[o + 1] += (g - img[o + 1]) * a;
      img[o + 2] += (b - img[o + 2]) * a;
    }
  }
}

/** Coverage of a signed distance (negative inside) with a one-pixel soft edge. */
function cover(sd: number): number {
  return clamp01(0.5 - sd);
}

/** Coverage of the main object of class `label` centred at (cx, cy) with size `s`. */
function objectAlpha(
  label: number,
  rng: Rng,
  cx: number,
  cy: number,
  s: number,
): (x: number, y: number) => number {
  const rot = (phi: number) => [Math.cos(phi), Math.sin(phi)];
  switch (label) {
    case 0: // circle
      return (x, y) => cover(len(x - cx, y - cy) - s);
    case 1: { // square
      const [c, si] = rot(rng.uniform(0, Math.PI / 2));
      const h = s * 0.88;
      return (x, y) => {
        const dx = x - cx, dy = y - cy;
        return cover(Math.max(Math.abs(dx * c + dy * si), Math.abs(-dx * si + dy * c)) - h);
      };
    }
    case 2: { // triangle: intersection of three half-planes, inradius = circumradius / 2
      const phi = rng.uniform(0, 2 * Math.PI / 3);
      const normals = [0, 1, 2].map((k) => rot(phi + k * 2 * Math.PI / 3));
      const inr = s * 0.62;
      return (x, y) => {
        const dx = x - cx, dy = y - cy;
        let m = -Infinity;
        for (const [c, si] of normals) m = Math.max(m, dx * c + dy * si);
        return cover(m - inr);
      };
    }
    case 3: { // cross
      const [c, si] = rot(rng.uniform(-0.35, 0.35));
      const arm = s * 1.05, w = s * rng.uniform(0.25, 0.38);
      return (x, y) => {
        const dx = x - cx, dy = y - cy;
        const u = Math.abs(dx * c + dy * si), v = Math.abs(-dx * si + dy * c);
        return cover(Math.min(Math.max(u - arm, v - w), Math.max(u - w, v - arm)));
      };
    }
    case 7: { // ring
      const w = rng.uniform(0.9, 1.9);
      const r = Math.max(s, w + 2.5);
      return (x, y) => cover(Math.abs(len(x - cx, y - cy) - r) - w);
    }
    case 9: { // blob
      const k = 3 + rng.int(3);
      const bumps = Array.from({ length: k }, () => {
        const a = rng.uniform(0, 2 * Math.PI), d = rng.uniform(0.3, 0.85) * s;
        const sigma = rng.uniform(0.25, 0.45) * s;
        return [cx + d * Math.cos(a), cy + d * Math.sin(a), 1 / (2 * sigma * sigma)];
      });
      return (x, y) => {
        let f = 0;
        for (const [bx, by, q] of bumps) f += Math.exp(-((x - bx) ** 2 + (y - by) ** 2) * q);
        return clamp01((f - 0.5) * 5 + 0.5);
      };
    }
    default: { // textured patches: 4 h-stripes, 5 v-stripes, 6 checker, 8 diagonal
      const h = s * rng.uniform(1.0, 1.25);
      const disk = rng.chance(0.5);
      const region = disk
        ? (dx: number, dy: number) => cover(len(dx, dy) - h)
        : (dx: number, dy: number) => cover(Math.max(Math.abs(dx), Math.abs(dy)) - h);
      const period = rng.uniform(3.6, 6.4);
      const w = 2 * Math.PI / period;
      const ph = rng.uniform(0, 2 * Math.PI), ph2 = rng.uniform(0, 2 * Math.PI);
      const jitter = rng.uniform(-0.2, 0.2);
      const angle = label === 4
        ? Math.PI / 2 + jitter
        : label === 5
        ? jitter
        : label === 8
        ? (rng.chance(0.5) ? 1 : -1) * Math.PI / 4 + jitter * 0.5
        : jitter;
      const [c, si] = rot(angle);
      if (label === 6) {
        const wc = w * 1.3; // checker squares a bit smaller than stripes
        return (x, y) => {
          const dx = x - cx, dy = y - cy;
          const a = region(dx, dy);
          if (a <= 0) return 0;
          const u = dx * c + dy * si, v = -dx * si + dy * c;
          return a * clamp01(0.5 + 1.6 * Math.cos(wc * u + ph) * Math.cos(wc * v + ph2));
        };
      }
      return (x, y) => {
        const dx = x - cx, dy = y - cy;
        const a = region(dx, dy);
        if (a <= 0) return 0;
        return a * clamp01(0.5 + 1.4 * Math.cos(w * (dx * c + dy * si) + ph));
      };
    }
  }
}

/**
 * Renders one image of class `label` as float RGB (HWC, 0–255 before rounding) from `rng`.
 */
function render(label: number, rng: Rng, img: Float32Array): void {
  // Main object colour: near the class's hue with probability STYLE.colourCue, else any colour.
  const fg = rng.chance(STYLE.colourCue) ? classColour(label, rng) : randomColour(rng);
  // Background: linear gradient between two random colours, both far enough from the object's.
  const minDist = rng.uniform(STYLE.minContrast, STYLE.minContrast + 70);
  const backgroundColour = () => {
    let c = randomColour(rng);
    for (let tries = 0; tries < 30 && distance(c, fg) < minDist; tries++) c = randomColour(rng);
    return c;
  };
  const c0 = backgroundColour(), c1 = backgroundColour();
  const theta = rng.uniform(0, 2 * Math.PI);
  const gx = Math.cos(theta) / S, gy = Math.sin(theta) / S;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const t = clamp01(0.5 + (x - 15.5) * gx + (y - 15.5) * gy);
      const o = (y * S + x) * 3;
      img[o] = c0[0] + (c1[0] - c0[0]) * t;
      img[o + 1] = c0[1] + (c1[1] - c0[1]) * t;
      img[o + 2] = c0[2] + (c1[2] - c0[2]) * t;
    }
  }
  // Main object: random position and size.
  const s = rng.uniform(STYLE.minSize, STYLE.maxSize);
  const margin = Math.min(s + 1, 12);
  const cx = rng.uniform(margin, S - margin), cy = rng.uniform(margin, S - margin);
  const reach = s * 1.6 + 2;
  paint(
    img,
    fg,
    [cx - reach, cx + reach, cy - reach, cy + reach],
    objectAlpha(label, rng, cx, cy, s),
  );
  // Distractors: thin line segments and small dots.
  const count = rng.int(STYLE.maxDistractors + 1);
  for (let d = 0; d < count; d++) {
    const colour = randomColour(rng);
    if (rng.chance(0.5)) {
      const ax = rng.uniform(0, S), ay = rng.uniform(0, S);
      const segment = rng.uniform(5, 13), a = rng.uniform(0, 2 * Math.PI);
      const bx = ax + segment * Math.cos(a), by = ay + segment * Math.sin(a);
      const w = rng.uniform(0.4, 0.9);
      const ex = bx - ax, ey = by - ay, ee = ex * ex + ey * ey;
      paint(
        img,
        colour,
        [Math.min(ax, bx) - 2, Math.max(ax, bx) + 2, Math.min(ay, by) - 2, Math.max(ay, by) + 2],
        (x, y) => {
          const t = clamp01(((x - ax) * ex + (y - ay) * ey) / ee);
          return cover(len(x - ax - t * ex, y - ay - t * ey) - w);
        },
      );
    } else {
      const px = rng.uniform(0, S), py = rng.uniform(0, S), r = rng.uniform(0.8, 2.2);
      paint(
        img,
        colour,
        [px - r - 1, px + r + 1, py - r - 1, py + r + 1],
        (x, y) => cover(len(x - px, y - py) - r),
      );
    }
  }
  // Pixel noise.
  const table = gaussianTable();
  const sigma = rng.uniform(2, STYLE.maxNoise);
  let k = rng.uint32() & NOISE_MASK;
  for (let i = 0; i < img.length; i++, k = (k + 1) & NOISE_MASK) img[i] += sigma * table[k];
}

/** Balanced labels for `count` images of `split`, in a seeded random order. */
function splitLabels(count: number, split: SplitName, seed: number): Uint8Array {
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % NUM_CLASSES;
  return new Rng(seed, "synthetic-labels", split).shuffle(labels);
}

/**
 * Renders images `start … start+count-1` of a split as CIFAR-10 binary records into `out` (a new
 * array by default). Image `i` depends only on the seed, the split, `i` and its label.
 */
function renderRecords(
  labels: Uint8Array,
  split: SplitName,
  start: number,
  count: number,
  seed: number,
  out: Uint8Array = new Uint8Array(count * RECORD_BYTES),
): Uint8Array {
  out = out.subarray(0, count * RECORD_BYTES);
  const clamped = new Uint8ClampedArray(out.buffer, out.byteOffset, out.length);
  const img = new Float32Array(PLANE * 3);
  for (let j = 0; j < count; j++) {
    const i = start + j;
    const label = labels[i];
    render(label, new Rng(seed, "synthetic", split, i), img);
    const base = j * RECORD_BYTES;
    out[base] = label;
    // Uint8ClampedArray rounds to the nearest integer and clamps to 0…255 on assignment.
    const red = base + 1, green = red + PLANE, blue = green + PLANE;
    for (let p = 0, q = 0; p < PLANE; p++, q += 3) {
      clamped[red + p] = img[q];
      clamped[green + p] = img[q + 1];
      clamped[blue + p] = img[q + 2];
    }
  }
  return out;
}

function resolve(options: SyntheticOptions): Required<SyntheticOptions> {
  const seed = options.seed ?? 0;
  const trainCount = options.trainCount ?? 50_000;
  const testCount = options.testCount ?? 10_000;
  if (!(Number.isInteger(trainCount) && trainCount >= TRAIN_FILES.length)) {
    throw new RangeError(
      `trainCount must be an integer ≥ ${TRAIN_FILES.length}, got ${trainCount}`,
    );
  }
  if (!(Number.isInteger(testCount) && testCount >= 1)) {
    throw new RangeError(`testCount must be a positive integer, got ${testCount}`);
  }
  return { seed, trainCount, testCount };
}

/**
 * Generates `count` images of a split in memory (NHWC uint8), exactly as they are written to
 * disk for a split of that size.
 *
 * @example
 * ```ts
 * const set = syntheticImages("test", 100); // 10 images per class
 * ```
 */
export function syntheticImages(split: SplitName, count: number, seed = 0): ImageSet {
  const labels = splitLabels(count, split, seed);
  return decodeBatch(renderRecords(labels, split, 0, count, seed), `synthetic ${split}`);
}

/** One batch file of the set: its name and which images of which split it holds. */
interface SyntheticFile {
  name: string;
  split: SplitName;
  labels: Uint8Array;
  start: number;
  count: number;
}

/** The set's batch files: the training split cut into five nearly equal files, then the test. */
function syntheticFiles(o: Required<SyntheticOptions>): SyntheticFile[] {
  const trainLabels = splitLabels(o.trainCount, "train", o.seed);
  const files = TRAIN_FILES.length;
  const list: SyntheticFile[] = TRAIN_FILES.map((name, f) => {
    const start = Math.floor((f * o.trainCount) / files);
    const end = Math.floor(((f + 1) * o.trainCount) / files);
    return { name, split: "train", labels: trainLabels, start, count: end - start };
  });
  const testLabels = splitLabels(o.testCount, "test", o.seed);
  list.push({ name: TEST_FILE, split: "test", labels: testLabels, start: 0, count: o.testCount });
  return list;
}

/** Images rendered per write: a 3 MB buffer instead of a whole 30 MB file in memory. */
const CHUNK_IMAGES = 1024;

/** Renders `file` into `path` a chunk at a time through `buffer`; returns its size in bytes. */
async function writeSyntheticFile(
  path: string,
  file: SyntheticFile,
  seed: number,
  buffer: Uint8Array,
): Promise<number> {
  using out = await Deno.open(path, { write: true, createNew: true });
  for (let j = 0; j < file.count; j += CHUNK_IMAGES) {
    const k = Math.min(CHUNK_IMAGES, file.count - j);
    const bytes = renderRecords(file.labels, file.split, file.start + j, k, seed, buffer);
    for (let at = 0; at < bytes.length;) at += await out.write(bytes.subarray(at));
  }
  return file.count * RECORD_BYTES;
}

interface Marker {
  generator: number;
  seed: number;
  trainCount: number;
  testCount: number;
  files: Record<string, number>;
}

/** True when `folder` holds a complete set generated with these options. */
async function isComplete(folder: string, o: Required<SyntheticOptions>): Promise<boolean> {
  let marker: Marker;
  try {
    marker = JSON.parse(await Deno.readTextFile(join(folder, SYNTHETIC_MARKER)));
  } catch {
    return false;
  }
  if (
    marker.generator !== SYNTHETIC_VERSION || marker.seed !== o.seed ||
    marker.trainCount !== o.trainCount || marker.testCount !== o.testCount
  ) return false;
  for (const [name, size] of Object.entries(marker.files ?? {})) {
    const actual = await fileSize(join(folder, name));
    if (actual !== size) return false;
  }
  return Object.keys(marker.files ?? {}).length === CIFAR10_FILES.length;
}

/**
 * Makes sure `dataDir/synthetic-10-batches-bin/` holds the built-in dataset for these options and
 * returns that folder. A complete folder (its `SYNTHETIC.json` matches) is reused as is;
 * otherwise the set is generated into a temporary folder next to it, the marker written last,
 * and the folder swapped in by renaming, so an interrupted generation never leaves a folder that
 * looks complete.
 *
 * @example
 * ```ts
 * const folder = await ensureSynthetic("data", { trainCount: 5000, testCount: 1000 });
 * ```
 */
export async function ensureSynthetic(
  dataDir: string,
  options: SyntheticOptions = {},
): Promise<string> {
  const o = resolve(options);
  const folder = join(dataDir, SYNTHETIC_FOLDER);
  await restoreSetAside(folder, (aside) => isComplete(aside, o)); // before the sweep below
  if (await isComplete(folder, o)) return folder;
  await Deno.mkdir(dataDir, { recursive: true });
  // Leftovers of interrupted generations (a generation takes seconds).
  await removeStale(dataDir, [".synthetic-tmp-", asidePrefix(SYNTHETIC_FOLDER)], 10 * 60 * 1000);
  const tmp = await Deno.makeTempDir({ dir: dataDir, prefix: ".synthetic-tmp-" });
  try {
    const files: Record<string, number> = {};
    const buffer = new Uint8Array(CHUNK_IMAGES * RECORD_BYTES);
    for (const file of syntheticFiles(o)) {
      files[file.name] = await writeSyntheticFile(join(tmp, file.name), file, o.seed, buffer);
    }
    const meta = SYNTHETIC_CLASSES.join("\n") + "\n";
    await Deno.writeTextFile(join(tmp, META_FILE), meta);
    files[META_FILE] = new TextEncoder().encode(meta).length;
    const marker: Marker = { generator: SYNTHETIC_VERSION, ...o, files };
    await Deno.writeTextFile(join(tmp, SYNTHETIC_MARKER), JSON.stringify(marker, null, 2) + "\n");
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, 0o755); // makeTempDir made it 0700
    await replaceFolder(tmp, folder, () => isComplete(folder, o));
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return folder;
}
