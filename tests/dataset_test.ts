import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import {
  balancedIndices,
  type ChannelStats,
  channelStats,
  CIFAR10_CLASSES,
  CIFAR10_FOLDER,
  CIFAR10_MARKER,
  DataError,
  decodeBatch,
  downloadCifar10,
  type ImageSet,
  imageSet,
  loadDataset,
  META_FILE,
  readCifarBinary,
  RECORD_BYTES,
  selectImages,
  SYNTHETIC_CLASSES,
  SYNTHETIC_NAME,
  TEST_FILE,
  TRAIN_FILES,
  type VerifiedRecord,
} from "../lib/data/mod.ts";
import { concatBytes } from "../lib/util/bytes.ts";
import {
  assertSameImages,
  fakeCifarArchive,
  md5,
  noisyCifarFiles,
  withTempDir,
  writeFakeCifar,
  writeTar,
} from "./_data_helpers.ts";

const SMALL = { trainCount: 200, testCount: 50 };

Deno.test("loadDataset: unknown names are refused naming the parameter and the valid ones", async () => {
  await assertRejects(
    () => loadDataset({ dataset: "mnist" }),
    RangeError,
    'dataset must be one of auto, cifar10, synthetic, got "mnist"',
  );
});

Deno.test("loadDataset: cifar10 when absent is an error naming deno task data:cifar10", async () => {
  await withTempDir(async (dir) => {
    await assertRejects(
      () => loadDataset({ dataset: "cifar10", dataDir: dir }),
      DataError,
      "Get it with `deno task data:cifar10`",
    );
    // Files that were not installed and verified by the downloader do not count either.
    await writeFakeCifar(join(dir, CIFAR10_FOLDER), 2);
    const e = await assertRejects(
      () => loadDataset({ dataset: "cifar10", dataDir: dir }),
      DataError,
    );
    assertStringIncludes(e.message, "has no VERIFIED.json");
  });
});

Deno.test("loadDataset: auto falls back to the built-in set with a one-line notice", async () => {
  await withTempDir(async (dir) => {
    const lines: string[] = [];
    const data = await loadDataset({
      dataset: "auto",
      dataDir: dir,
      synthetic: SMALL,
      log: (l) => lines.push(l),
    });
    assertEquals(data.id, "synthetic");
    assertEquals(data.name, SYNTHETIC_NAME);
    assertEquals(data.classNames, [...SYNTHETIC_CLASSES]);
    assertEquals([data.train.length, data.test.length], [200, 50]);
    assertEquals(lines, [data.notice]);
    assert(data.notice && !data.notice.includes("\n"));
    assertStringIncludes(data.notice, "deno task data:cifar10");
    // Asking for it by name gives the same data without a notice.
    const named = await loadDataset({
      dataset: "synthetic",
      dataDir: dir,
      synthetic: SMALL,
      log: false,
    });
    assertEquals(named.notice, undefined);
    assertEquals(named.train, data.train);
  });
});

Deno.test("loadDataset: auto and cifar10 pick CIFAR-10 once it is installed and verified", async () => {
  await withTempDir(async (dir) => {
    const { gz, md5 } = fakeCifarArchive(3);
    const archive = join(dir, "cifar.tar.gz");
    await Deno.writeFile(archive, gz);
    await downloadCifar10({ archive, md5, dataDir: dir, log: () => {}, progress: false });
    for (const dataset of ["auto", "cifar10"] as const) {
      const lines: string[] = [];
      const data = await loadDataset({ dataset, dataDir: dir, log: (l) => lines.push(l) });
      assertEquals(data.id, "cifar10");
      assertEquals(data.name, "CIFAR-10");
      assertEquals(data.classNames, [...CIFAR10_CLASSES]);
      assertEquals([data.train.length, data.test.length], [15, 3]);
      assertEquals([data.notice, lines], [undefined, []]);
    }
    // After a crash that left the verified copy set aside, it is put back, not replaced by the
    // synthetic set.
    await Deno.rename(join(dir, CIFAR10_FOLDER), join(dir, `.${CIFAR10_FOLDER}.old-1234abcd`));
    const data = await loadDataset({ dataset: "auto", dataDir: dir, log: false });
    assertEquals([data.id, data.source], ["cifar10", join(dir, CIFAR10_FOLDER)]);
  });
});

Deno.test("loadDataset: class-balanced, seeded subsets; statistics from the full training split", async () => {
  await withTempDir(async (dir) => {
    const load = (trainSize: number, testSize: number, seed: number) =>
      loadDataset({
        dataset: "synthetic",
        dataDir: dir,
        synthetic: SMALL,
        trainSize,
        testSize,
        seed,
        log: false,
      });
    const full = await readCifarBinary(join(dir, "synthetic-10-batches-bin")).catch(() =>
      undefined
    );
    assertEquals(full, undefined); // not generated yet
    const a = await load(53, 20, 1);
    assertEquals([a.train.length, a.test.length], [53, 20]);
    const counts = new Array(10).fill(0);
    for (const l of a.train.labels) counts[l]++;
    assertEquals(counts, [6, 6, 6, 5, 5, 5, 5, 5, 5, 5]);
    assertEquals(a.fullSizes, { train: 200, test: 50 });
    const raw = await readCifarBinary(a.source);
    assertEquals(a.stats, channelStats(raw.train));
    assertEquals(await load(53, 20, 1), a);
    const b = await load(53, 20, 2);
    assertNotEquals(b.train.images, a.train.images);
    assertEquals(b.stats, a.stats);
    await assertRejects(() => load(201, 10, 0), RangeError, "the train split has 200 images");
  });
});

Deno.test("balancedIndices: takes turns over classes and fills in for classes that run out", () => {
  const labels = new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2, 2, 2]);
  const idx = balancedIndices(labels, 7, 0);
  const picked = [...idx].map((i) => labels[i]);
  assertEquals(picked.filter((l) => l === 1).length, 1);
  assertEquals(picked.filter((l) => l === 2).length, 3);
  assertEquals(picked.filter((l) => l === 0).length, 3);
  assertEquals([...idx], [...idx].sort((x, y) => x - y));
  assertEquals(new Set(idx).size, 7);
  assertThrows(() => balancedIndices(labels, 11, 0), RangeError, "1…10");
});

/**
 * What `loadDataset` returned before it read only the chosen images, rebuilt from pieces that
 * did not change: every batch file of `folder` decoded whole, the training files concatenated,
 * balanced subsets picked from the whole splits, statistics from all training images.
 */
async function referenceSubsets(
  folder: string,
  options: { trainSize?: number; testSize?: number; seed?: number },
): Promise<{ train: ImageSet; test: ImageSet; stats: ChannelStats }> {
  const read = async (file: string) => decodeBatch(await Deno.readFile(join(folder, file)), file);
  const parts = await Promise.all(TRAIN_FILES.map(read));
  const train = imageSet(
    concatBytes(parts.map((p) => p.images)),
    concatBytes(parts.map((p) => p.labels)),
  );
  const test = await read(TEST_FILE);
  const subset = (set: ImageSet, size: number | undefined, split: string) =>
    size === undefined || size === set.length
      ? set
      : selectImages(set, balancedIndices(set.labels, size, options.seed ?? 0, `subset-${split}`));
  return {
    train: subset(train, options.trainSize, "train"),
    test: subset(test, options.testSize, "test"),
    stats: channelStats(train),
  };
}

/** Loads with each of `cases` and checks the result against {@linkcode referenceSubsets}. */
async function assertSameAsReference(
  load: (o: { trainSize?: number; testSize?: number; seed: number }) => ReturnType<
    typeof loadDataset
  >,
  cases: { trainSize?: number; testSize?: number; seed: number }[],
): Promise<void> {
  for (const c of cases) {
    const data = await load(c);
    const want = await referenceSubsets(data.source, c);
    const label = JSON.stringify(c);
    assertSameImages(data.train, want.train, `train ${label}`);
    assertSameImages(data.test, want.test, `test ${label}`);
    assertEquals(data.stats, want.stats, label);
  }
}

Deno.test("loadDataset: reading only the chosen images gives today's bits (built-in set)", async () => {
  await withTempDir(async (dir) => {
    await assertSameAsReference(
      (o) =>
        loadDataset({ dataset: "synthetic", dataDir: dir, synthetic: SMALL, log: false, ...o }),
      [
        { trainSize: 53, testSize: 20, seed: 1 },
        { trainSize: 1, testSize: 1, seed: 3 },
        { trainSize: 200, testSize: 50, seed: 0 }, // the whole splits, given as sizes
        { seed: 0 }, // no sizes
        { trainSize: 199, seed: 5 },
      ],
    );
  });
});

Deno.test("loadDataset: reading only the chosen images gives today's bits (CIFAR-10 layout)", async () => {
  await withTempDir(async (dir) => {
    // More records per file than one read (1,024) takes, random pixels so that every image
    // differs, installed the way `deno task data:cifar10 --archive` does.
    const perFile = 1100;
    const tar = writeTar(
      [...noisyCifarFiles(perFile)].map(([n, data]) => ({ name: `${CIFAR10_FOLDER}/${n}`, data })),
    );
    const archive = join(dir, "cifar.tar");
    await Deno.writeFile(archive, tar);
    await downloadCifar10({ archive, md5: md5(tar), dataDir: dir, log: () => {}, progress: false });
    await Deno.remove(archive);
    const load = (o: { trainSize?: number; testSize?: number; seed: number }) =>
      loadDataset({ dataset: "cifar10", dataDir: dir, log: false, ...o });
    await assertSameAsReference(load, [
      { trainSize: 2000, testSize: 300, seed: 0 },
      // Nearly everything: long runs of consecutive records, cut at file ends and per read.
      { trainSize: 5400, testSize: 1099, seed: 2 },
      { trainSize: 10, testSize: 10, seed: 7 },
      { seed: 0 },
    ]);
    const data = await load({ trainSize: 2000, seed: 0 });
    assertEquals(data.fullSizes, { train: 5 * perFile, test: perFile });
    await assertRejects(
      () => load({ trainSize: 5501, seed: 0 }),
      RangeError,
      "trainSize must be an integer in 1…5500 (the train split has 5500 images), got 5501",
    );
  });
});

Deno.test({
  name: "loadDataset: a subset raises the peak memory by far less than the whole set",
  // VmHWM and its reset (clear_refs) are Linux's.
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withTempDir(async (dir) => {
      const perFile = 4000;
      const folder = join(dir, CIFAR10_FOLDER);
      await writeFakeCifar(folder, perFile);
      // The record `deno task data:cifar10` writes after verifying (the files are made here).
      const files: Record<string, number> = {};
      for (const f of [...TRAIN_FILES, TEST_FILE, META_FILE]) {
        files[f] = (await Deno.stat(join(folder, f))).size;
      }
      const record: VerifiedRecord = {
        dataset: "CIFAR-10",
        md5: "0".repeat(32),
        source: "dataset_test.ts",
        files,
        images: { train: 5 * perFile, test: perFile },
        verifiedAt: new Date().toISOString(),
      };
      await Deno.writeTextFile(join(folder, CIFAR10_MARKER), JSON.stringify(record));
      const module = new URL("../lib/data/dataset.ts", import.meta.url).href;
      // A fresh process: the peak since the reset, taken right after the load.
      const script = `
        const { loadDataset } = await import(${JSON.stringify(module)});
        const hwm = () => Number(Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\\s+(\\d+)/)[1]) * 1024;
        await new Promise((r) => setTimeout(r, 50));
        Deno.writeTextFileSync("/proc/self/clear_refs", "5");
        const before = hwm();
        const data = await loadDataset({ dataset: "cifar10", dataDir: ${
        JSON.stringify(dir)
      }, trainSize: 400, testSize: 100, log: false });
        console.log(JSON.stringify({ grew: hwm() - before, n: data.fullSizes.train + data.fullSizes.test, kept: data.train.length + data.test.length }));
      `;
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
      }).output();
      assertEquals(code, 0, new TextDecoder().decode(stderr));
      const { grew, n, kept } = JSON.parse(new TextDecoder().decode(stdout));
      assertEquals([n, kept], [6 * perFile, 500]);
      // Decoding all 24,000 images (74 MB) would add at least as much; the 500 kept take 1.5 MB,
      // the read buffer 3 MB, the rest is the heap's own growth (about 15 MB, measured).
      const all = n * RECORD_BYTES;
      assert(grew < all / 2, `peak grew by ${grew} bytes; the whole set has ${all} bytes`);
    });
  },
});
