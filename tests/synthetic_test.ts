import { assert, assertEquals, assertLess, assertNotEquals } from "@std/assert";
import { join } from "node:path";
import { tf, useBackend } from "../lib/backend/mod.ts";
import { batchTensors, channelStats } from "../lib/data/batches.ts";
import { IMAGE_BYTES, type ImageSet, readCifarBinary, TRAIN_FILES } from "../lib/data/cifar10.ts";
import {
  ensureSynthetic,
  SYNTHETIC_CLASSES,
  SYNTHETIC_FOLDER,
  SYNTHETIC_MARKER,
  syntheticImages,
} from "../lib/data/synthetic.ts";
import { assertSameImages, withTempDir } from "./_data_helpers.ts";

Deno.test("syntheticImages: deterministic per seed, exactly balanced classes", () => {
  const a = syntheticImages("test", 60);
  assertEquals(a, syntheticImages("test", 60));
  assertNotEquals(a.images, syntheticImages("test", 60, 1).images);
  assertNotEquals(a.images, syntheticImages("train", 60).images);
  const counts = new Array(10).fill(0);
  for (const l of a.labels) counts[l]++;
  assertEquals(counts, new Array(10).fill(6));
  // Images use the whole byte range and differ from one another (noise, colours, positions).
  const firstTwo = [0, 1].map((i) => a.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES));
  assertNotEquals(firstTwo[0], firstTwo[1]);
  const { std } = channelStats(a);
  assert(std.every((s) => s > 0.15), `channel std ${std}`);
});

Deno.test("ensureSynthetic: files written a chunk at a time hold the images rendered at once", async () => {
  await withTempDir(async (dir) => {
    // 1,100 records per file: more than one chunk (1,024 images) each.
    const folder = await ensureSynthetic(dir, { trainCount: 5500, testCount: 1100, seed: 3 });
    const data = await readCifarBinary(folder);
    assertSameImages(data.train, syntheticImages("train", 5500, 3), "train");
    assertSameImages(data.test, syntheticImages("test", 1100, 3), "test");
  });
});

Deno.test("ensureSynthetic: writes the CIFAR layout once, reuses it, regenerates when stale", async () => {
  await withTempDir(async (dir) => {
    const options = { trainCount: 23, testCount: 7 };
    const folder = await ensureSynthetic(dir, options);
    assertEquals(folder, join(dir, SYNTHETIC_FOLDER));
    if (Deno.build.os !== "windows") assertEquals((await Deno.stat(folder)).mode! & 0o777, 0o755);
    const data = await readCifarBinary(folder);
    assertEquals(data.classNames, [...SYNTHETIC_CLASSES]);
    assertEquals([data.train.length, data.test.length], [23, 7]);
    // The files hold exactly the images syntheticImages renders for splits of these sizes.
    assertEquals(data.test, syntheticImages("test", 7));
    assertEquals(data.train, syntheticImages("train", 23));
    // 23 training images over 5 files: 4, 5, 4, 5, 5 records.
    const sizes = await Promise.all(TRAIN_FILES.map((f) => Deno.stat(join(folder, f))));
    assertEquals(sizes.map((s) => s.size / 3073), [4, 5, 4, 5, 5]);
    // Reused as is: the marker is not rewritten.
    const marker = join(folder, SYNTHETIC_MARKER);
    const mtime = (await Deno.stat(marker)).mtime;
    await ensureSynthetic(dir, options);
    assertEquals((await Deno.stat(marker)).mtime, mtime);
    // A damaged file (size differs from the record) is regenerated.
    await Deno.truncate(join(folder, TRAIN_FILES[1]), 10);
    await ensureSynthetic(dir, options);
    assertEquals((await readCifarBinary(folder)).train, data.train);
    // Other parameters replace the folder; no temporary folders are left behind.
    await ensureSynthetic(dir, { trainCount: 10, testCount: 3, seed: 5 });
    assertEquals((await readCifarBinary(folder)).test, syntheticImages("test", 3, 5));
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    assertEquals(names, [SYNTHETIC_FOLDER]);
    // A complete set that an interrupted swap left aside is put back as it is, not regenerated.
    const aside = join(dir, `.${SYNTHETIC_FOLDER}.old-1234abcd`);
    await Deno.rename(folder, aside);
    await Deno.utime(aside, 0, 0);
    const kept = (await Deno.stat(join(aside, SYNTHETIC_MARKER))).mtime;
    await ensureSynthetic(dir, { trainCount: 10, testCount: 3, seed: 5 });
    assertEquals((await Deno.stat(marker)).mtime, kept);
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), [SYNTHETIC_FOLDER]);
  });
});

/** Mean gradient energy along rows (|dx|) and columns (|dy|) of an image, grey levels. */
function gradientEnergy(set: ImageSet, i: number): { dx: number; dy: number } {
  const grey = (r: number, c: number) => {
    const o = i * IMAGE_BYTES + (r * 32 + c) * 3;
    return set.images[o] + set.images[o + 1] + set.images[o + 2];
  };
  let dx = 0, dy = 0;
  for (let r = 0; r < 31; r++) {
    for (let c = 0; c < 31; c++) {
      dx += Math.abs(grey(r, c + 1) - grey(r, c));
      dy += Math.abs(grey(r + 1, c) - grey(r, c));
    }
  }
  return { dx, dy };
}

Deno.test("synthetic classes carry their structure: stripe orientation shows in the gradients", () => {
  const set = syntheticImages("train", 400);
  const h = SYNTHETIC_CLASSES.indexOf("h-stripes"), v = SYNTHETIC_CLASSES.indexOf("v-stripes");
  let hOk = 0, vOk = 0, n = 0;
  for (let i = 0; i < set.length; i++) {
    const { dx, dy } = gradientEnergy(set, i);
    if (set.labels[i] === h) hOk += dy > dx ? 1 : 0;
    if (set.labels[i] === v) vOk += dx > dy ? 1 : 0;
    if (set.labels[i] === h) n++;
  }
  assertEquals(n, 40);
  assert(hOk >= 36 && vOk >= 36, `h-stripes ${hOk}/40, v-stripes ${vOk}/40`);
});

Deno.test("synthetic set: the colour cue is learnable, but a linear model stays far from 100%", async () => {
  await useBackend("wasm"); // this module only: each test module runs in its own isolate
  const train = syntheticImages("train", 1500), test = syntheticImages("test", 500);
  const stats = channelStats(train);
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  const tr = batchTensors(train, all(train.length), { normalize: stats });
  const te = batchTensors(test, all(test.length), { normalize: stats });
  const xTrain = tr.x.reshape([train.length, -1]), xTest = te.x.reshape([test.length, -1]);
  const yTrain = tf.oneHot(tr.y, 10).toFloat();
  const w = tf.variable(tf.zeros([IMAGE_BYTES, 10])), b = tf.variable(tf.zeros([10]));
  const optimizer = tf.train.adam(3e-3);
  for (let step = 0; step < 40; step++) {
    optimizer.minimize(() => tf.losses.softmaxCrossEntropy(yTrain, xTrain.matMul(w).add(b)));
  }
  const acc = (x: tf.Tensor, y: tf.Tensor) =>
    tf.tidy(() => x.matMul(w).add(b).argMax(-1).equal(y).mean().dataSync()[0]);
  const trainAcc = acc(xTrain, tr.y), testAcc = acc(xTest, te.y);
  // It fits its own training images better than chance…
  assert(trainAcc > 0.3, `train accuracy ${trainAcc}`);
  // …picks up the colour cue on held-out images (chance is 10 %)…
  assert(testAcc > 0.2, `test accuracy ${testAcc}`);
  // …but shape is out of its reach, so it stays far below the 80 % the hue alone could give.
  assertLess(testAcc, 0.6, `test accuracy ${testAcc}`);
  tf.dispose([tr.x, tr.y, te.x, te.y, xTrain, xTest, yTrain, w, b]);
  optimizer.dispose();
});
