import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { tf } from "../lib/backend/tf.ts";
import { batches, batchTensors, channelStats, epochOrder } from "../lib/data/batches.ts";
import { IMAGE_BYTES, type ImageSet, imageSet } from "../lib/data/cifar10.ts";

/** `n` images of random bytes (seeded LCG) with labels i % 10. */
function randomImages(n: number, seed = 1): ImageSet {
  const images = new Uint8Array(n * IMAGE_BYTES);
  let s = seed;
  for (let i = 0; i < images.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    images[i] = s >>> 24;
  }
  return imageSet(images, Uint8Array.from({ length: n }, (_, i) => i % 10));
}

function collect(set: ImageSet, options: Parameters<typeof batches>[1]) {
  const out: { x: Float32Array; y: Int32Array; indices: Int32Array; shape: number[] }[] = [];
  for (const b of batches(set, options)) {
    out.push({
      x: b.x.dataSync() as Float32Array,
      y: b.y.dataSync() as Int32Array,
      indices: b.indices,
      shape: b.x.shape,
    });
    assertEquals(b.x.dtype, "float32");
    assertEquals(b.y.dtype, "int32");
  }
  return out;
}

Deno.test("channelStats: exact per-channel mean and population std in [0, 1] units", () => {
  const set = randomImages(7);
  const { mean, std } = channelStats(set);
  for (let c = 0; c < 3; c++) {
    let s = 0, q = 0, n = 0;
    for (let i = c; i < set.images.length; i += 3) {
      s += set.images[i] / 255;
      n++;
    }
    const m = s / n;
    for (let i = c; i < set.images.length; i += 3) q += (set.images[i] / 255 - m) ** 2;
    assertAlmostEquals(mean[c], m, 1e-12);
    assertAlmostEquals(std[c], Math.sqrt(q / n), 1e-12);
  }
});

Deno.test("batches: every image once per epoch, NHWC float32, int32 labels, normalised pixels", () => {
  const set = randomImages(23);
  const stats = channelStats(set);
  const out = collect(set, { batchSize: 10, seed: 3, normalize: stats });
  assertEquals(out.map((b) => b.shape), [[10, 32, 32, 3], [10, 32, 32, 3], [3, 32, 32, 3]]);
  const all = out.flatMap((b) => [...b.indices]);
  assertEquals([...all].sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  assertNotEquals(all, Array.from({ length: 23 }, (_, i) => i)); // shuffled
  for (const b of out) {
    assertEquals([...b.y], [...b.indices].map((i) => set.labels[i]));
    // Pixel (row 5, column 9, green) of the second image in the batch.
    const i = b.indices[1], k = (5 * 32 + 9) * 3 + 1;
    const expected = (set.images[i * IMAGE_BYTES + k] / 255 - stats.mean[1]) / stats.std[1];
    assertAlmostEquals(b.x[IMAGE_BYTES + k], expected, 1e-5);
  }
  const dropped = collect(set, { batchSize: 10, dropRemainder: true });
  assertEquals(dropped.length, 2);
  const ordered = collect(set, { batchSize: 23, shuffle: false });
  assertEquals([...ordered[0].indices], Array.from({ length: 23 }, (_, i) => i));
  assertAlmostEquals(ordered[0].x[7], set.images[7] / 255, 1e-6);
});

Deno.test("batches: the same seed and epoch give identical batches; epochs differ", () => {
  const set = randomImages(40);
  const opts = { batchSize: 16, seed: 11, augment: true };
  const a = collect(set, { ...opts, epoch: 2 });
  // Unrelated work in between does not change anything.
  collect(set, { ...opts, seed: 12 });
  const b = collect(set, { ...opts, epoch: 2 });
  assertEquals(a, b);
  const c = collect(set, { ...opts, epoch: 3 });
  assertNotEquals(a.map((x) => [...x.indices]), c.map((x) => [...x.indices]));
  // Augmentation draws come from their own stream: the order stays the same without them.
  const plain = collect(set, { batchSize: 16, seed: 11, epoch: 2 });
  assertEquals(plain.map((x) => x.indices), a.map((x) => x.indices));
  assertNotEquals(plain.map((x) => x.x), a.map((x) => x.x));
  assertEquals(epochOrder(5, { seed: 1 }), epochOrder(5, { seed: 1, epoch: 0 }));
});

/** The augmented image `out` (floats in pixel/255 units) as a function of the original. */
function matchesShift(
  set: ImageSet,
  i: number,
  out: Float32Array,
  dx: number,
  dy: number,
  flip: boolean,
): boolean {
  for (let r = 0; r < 32; r++) {
    for (let c = 0; c < 32; c++) {
      const sr = r + dy, sc = (flip ? 31 - c : c) + dx;
      for (let k = 0; k < 3; k++) {
        const inside = sr >= 0 && sr < 32 && sc >= 0 && sc < 32;
        const v = inside ? set.images[i * IMAGE_BYTES + (sr * 32 + sc) * 3 + k] / 255 : 0;
        if (Math.abs(out[(r * 32 + c) * 3 + k] - v) > 1e-6) return false;
      }
    }
  }
  return true;
}

Deno.test("batches: augmentation is a ±4 pixel shift with zero padding and/or a horizontal flip", () => {
  const set = randomImages(64, 5);
  const [flipOnly] = collect(set, { batchSize: 64, seed: 2, augment: { crop: 0, flip: true } });
  let flips = 0;
  for (let j = 0; j < 64; j++) {
    const img = flipOnly.x.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES);
    const i = flipOnly.indices[j];
    const flipped = matchesShift(set, i, img, 0, 0, true);
    assert(flipped || matchesShift(set, i, img, 0, 0, false), `image ${j} is neither`);
    if (flipped) flips++;
  }
  assert(flips > 16 && flips < 48, `${flips} flips of 64`);

  const [full] = collect(set, { batchSize: 64, seed: 2, augment: true });
  const shifts = new Set<string>();
  for (let j = 0; j < 64; j++) {
    const img = full.x.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES);
    const i = full.indices[j];
    let found: string | undefined;
    for (let dy = -4; dy <= 4 && !found; dy++) {
      for (let dx = -4; dx <= 4 && !found; dx++) {
        for (const flip of [false, true]) {
          if (matchesShift(set, i, img, dx, dy, flip)) found = `${dx},${dy},${flip}`;
        }
      }
    }
    assert(found, `image ${j} is no shift/flip of its original`);
    shifts.add(found);
  }
  assert(shifts.size > 20, `only ${shifts.size} distinct draws`);
  assertThrows(
    () => batches(set, { batchSize: 4, augment: { crop: 40 } }).next(),
    RangeError,
    "crop",
  );
  assertThrows(() => batches(set, { batchSize: 0 }).next(), RangeError, "batchSize");
});

Deno.test("batches: padding is zero in pixel space, i.e. -mean/std after normalisation", () => {
  const set = imageSet(new Uint8Array(IMAGE_BYTES).fill(255), new Uint8Array([3]));
  const stats = {
    mean: [0.5, 0.4, 0.3] as [number, number, number],
    std: [0.2, 0.25, 0.5] as [number, number, number],
  };
  // Find a seed whose draw shifts the image, then check a border pixel and an interior one.
  for (let seed = 0; seed < 50; seed++) {
    const [b] = collect(set, {
      batchSize: 1,
      seed,
      augment: { crop: 4, flip: false },
      normalize: stats,
    });
    const corner = [b.x[0], b.x[1], b.x[2]];
    if (Math.abs(corner[0] - (1 - 0.5) / 0.2) < 1e-5) continue; // no shift at this corner
    assertAlmostEquals(corner[0], -0.5 / 0.2, 1e-5);
    assertAlmostEquals(corner[1], -0.4 / 0.25, 1e-5);
    assertAlmostEquals(corner[2], -0.3 / 0.5, 1e-5);
    const centre = (16 * 32 + 16) * 3;
    assertAlmostEquals(b.x[centre], (1 - 0.5) / 0.2, 1e-5);
    return;
  }
  throw new Error("no seed shifted the top-left corner");
});

Deno.test("batches: the iterator disposes each batch at the next step and at the end (no leaks)", () => {
  const set = randomImages(30);
  const before = tf.memory().numTensors;
  let steps = 0;
  for (const b of batches(set, { batchSize: 7, augment: true })) {
    assertEquals(tf.memory().numTensors, before + 2, "only the current batch is alive");
    assert(!b.x.isDisposed);
    steps++;
  }
  assertEquals(steps, 5);
  assertEquals(tf.memory().numTensors, before);
  let kept: tf.Tensor | undefined;
  for (const b of batches(set, { batchSize: 7 })) {
    kept = b.x;
    break; // leaving early disposes the current batch
  }
  assert(kept?.isDisposed);
  assertEquals(tf.memory().numTensors, before);
  try {
    for (const _ of batches(set, { batchSize: 7 })) throw new Error("boom");
  } catch {
    // expected
  }
  assertEquals(tf.memory().numTensors, before);
  const t = batchTensors(set, [3, 1], { normalize: false });
  assertEquals([...t.y.dataSync()], [3, 1]);
  assertEquals(tf.memory().numTensors, before + 2, "batchTensors: the caller owns the result");
  tf.dispose([t.x, t.y]);
  assertEquals(tf.memory().numTensors, before);
});
