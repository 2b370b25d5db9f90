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
  channelStats,
  CIFAR10_CLASSES,
  CIFAR10_FOLDER,
  DataError,
  downloadCifar10,
  loadDataset,
  readCifarBinary,
  SYNTHETIC_CLASSES,
  SYNTHETIC_NAME,
} from "../lib/data/mod.ts";
import { fakeCifarArchive, withTempDir, writeFakeCifar } from "./_data_helpers.ts";

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
