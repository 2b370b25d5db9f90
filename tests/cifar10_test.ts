import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { channelStats, histogramStats } from "../lib/data/batches.ts";
import {
  CIFAR10_CLASSES,
  CIFAR10_FOLDER,
  DataError,
  decodeBatch,
  encodeBatch,
  IMAGE_BYTES,
  META_FILE,
  parseClassNames,
  readCifarBinary,
  RECORD_BYTES,
  selectImages,
  TEST_FILE,
  TRAIN_FILES,
} from "../lib/data/cifar10.ts";
import { readTar } from "../lib/data/_tar.ts";
import {
  assertSameImages,
  fakeCifarArchive,
  fakeCifarFiles,
  fakeImages,
  noisyCifarFiles,
  withTempDir,
  writeFakeCifar,
  writeTar,
} from "./_data_helpers.ts";

Deno.test("decodeBatch: label byte then planar R, G, B rows become NHWC uint8", () => {
  const bytes = new Uint8Array(2 * RECORD_BYTES);
  bytes[0] = 7;
  bytes[1 + 0 * 1024 + (0 * 32 + 1)] = 200; // red, row 0, column 1
  bytes[1 + 1 * 1024 + (31 * 32 + 0)] = 100; // green, row 31, column 0
  bytes[1 + 2 * 1024 + (2 * 32 + 3)] = 50; // blue, row 2, column 3
  bytes[RECORD_BYTES] = 9;
  bytes[RECORD_BYTES + 1 + 2 * 1024 + 1023] = 77; // second image: blue, row 31, column 31
  const set = decodeBatch(bytes, "x.bin");
  assertEquals(set.length, 2);
  assertEquals([...set.labels], [7, 9]);
  const px = (i: number, r: number, c: number, k: number) =>
    set.images[i * IMAGE_BYTES + (r * 32 + c) * 3 + k];
  assertEquals(px(0, 0, 1, 0), 200);
  assertEquals(px(0, 31, 0, 1), 100);
  assertEquals(px(0, 2, 3, 2), 50);
  assertEquals(px(1, 31, 31, 2), 77);
  const nonZero = set.images.reduce((n, v) => n + (v ? 1 : 0), 0);
  assertEquals(nonZero, 4);
  assertEquals(encodeBatch(set), bytes);
});

Deno.test("readCifarBinary: folder, parent folder and .tar.gz give the same data", async () => {
  await withTempDir(async (dir) => {
    const folder = join(dir, CIFAR10_FOLDER);
    await writeFakeCifar(folder, 3);
    const fromFolder = await readCifarBinary(folder);
    assertEquals(fromFolder.classNames, [...CIFAR10_CLASSES]);
    assertEquals(fromFolder.train.length, 15);
    assertEquals(fromFolder.test.length, 3);
    // Training files are concatenated in order 1…5.
    assertEquals(fromFolder.train, fakeImages(15, 0));
    assertEquals(fromFolder.test, fakeImages(3, 1000));
    assertEquals(await readCifarBinary(dir), fromFolder);
    const archive = join(dir, "cifar-10-binary.tar.gz");
    await Deno.writeFile(archive, fakeCifarArchive(3).gz);
    assertEquals(await readCifarBinary(archive), fromFolder);
    // An uncompressed tar reads the same way.
    const tar = join(dir, "plain.tar");
    await Deno.writeFile(
      tar,
      writeTar(
        [...fakeCifarFiles(3)].map(([n, data]) => ({ name: `${CIFAR10_FOLDER}/${n}`, data })),
      ),
    );
    assertEquals(await readCifarBinary(tar), fromFolder);
  });
});

Deno.test({
  name: "readCifarBinary: reading a folder adds little beyond the images to the peak memory",
  // VmHWM and its reset (clear_refs) are Linux's.
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withTempDir(async (dir) => {
      const perFile = 4000;
      await writeFakeCifar(dir, perFile);
      const module = new URL("../lib/data/cifar10.ts", import.meta.url).href;
      // A fresh process: the peak since the reset, taken right after the read.
      const script = `
        const { readCifarBinary } = await import(${JSON.stringify(module)});
        const hwm = () => Number(Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\\s+(\\d+)/)[1]) * 1024;
        await new Promise((r) => setTimeout(r, 50));
        Deno.writeTextFileSync("/proc/self/clear_refs", "5");
        const before = hwm();
        const data = await readCifarBinary(${JSON.stringify(dir)});
        console.log(JSON.stringify({ grew: hwm() - before, n: data.train.length + data.test.length }));
      `;
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
      }).output();
      assertEquals(code, 0, new TextDecoder().decode(stderr));
      const { grew, n } = JSON.parse(new TextDecoder().decode(stdout));
      assertEquals(n, 6 * perFile);
      const images = n * RECORD_BYTES; // 74 MB
      // The images themselves and one file's buffer, not every file's bytes besides.
      assert(grew < 1.5 * images, `peak grew by ${grew} bytes for ${images} bytes of images`);
    });
  },
});

Deno.test("readCifarBinary: a truncated or wrong-sized batch names the file, size and 3,073", async () => {
  await withTempDir(async (dir) => {
    await writeFakeCifar(dir, 2);
    const path = join(dir, TRAIN_FILES[2]);
    const good = await Deno.readFile(path);
    await Deno.writeFile(path, good.subarray(0, good.length - 1));
    const err = await assertRejects(() => readCifarBinary(dir), DataError, path);
    assert(err.message.includes("6,145 bytes"), err.message);
    assert(err.message.includes("multiple of 3,073"), err.message);
    assert(err.message.includes("1 whole records and 3072 bytes left over"), err.message);
    await Deno.writeFile(path, new Uint8Array(0));
    await assertRejects(() => readCifarBinary(dir), DataError, "has 0 bytes");
    // Reading wrote nothing: the other files are untouched.
    assertEquals(await Deno.readFile(join(dir, TEST_FILE)), fakeCifarFiles(2).get(TEST_FILE));
  });
});

Deno.test("readCifarBinary: a label outside 0–9 names the file and the record index", async () => {
  await withTempDir(async (dir) => {
    await writeFakeCifar(dir, 4);
    const path = join(dir, TEST_FILE);
    const bytes = await Deno.readFile(path);
    bytes[2 * RECORD_BYTES] = 10;
    await Deno.writeFile(path, bytes);
    await assertRejects(
      () => readCifarBinary(dir),
      DataError,
      `${path}: record 2 (byte offset ${2 * RECORD_BYTES}) has label 10; CIFAR-10 labels are 0–9`,
    );
    assertEquals(await Deno.readFile(path), bytes);
  });
});

Deno.test("readCifarBinary: missing files and folders are named", async () => {
  await withTempDir(async (dir) => {
    await writeFakeCifar(dir, 1);
    await Deno.remove(join(dir, TEST_FILE));
    await assertRejects(
      () => readCifarBinary(dir),
      DataError,
      `missing file ${join(dir, TEST_FILE)}`,
    );
    await assertRejects(() => readCifarBinary(join(dir, "nope")), DataError, "missing");
    await Deno.writeFile(join(dir, TEST_FILE), fakeCifarFiles(1).get(TEST_FILE)!);
    await Deno.writeTextFile(join(dir, META_FILE), "a\nb\n");
    await assertRejects(() => readCifarBinary(dir), DataError, "lists 2 class names; expected 10");
  });
});

Deno.test("readCifarBinary: archives that are not CIFAR-10 are refused", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "x.tar.gz");
    // A tar.gz without the batch files.
    await Deno.writeFile(
      path,
      gzipSync(writeTar([{ name: "other/readme.txt", data: new Uint8Array([65]) }])),
    );
    const e = await assertRejects(() => readCifarBinary(path), DataError, "not the CIFAR-10");
    assert(e.message.includes("data_batch_1.bin"), e.message);
    // gzip of bytes that are not a tar.
    await Deno.writeFile(path, gzipSync(new Uint8Array(2048).fill(7)));
    await assertRejects(() => readCifarBinary(path), Error, "not a tar archive");
    // Neither gzip nor tar.
    await Deno.writeFile(path, new TextEncoder().encode("hello, this is not an archive at all"));
    await assertRejects(() => readCifarBinary(path), Error, "is not a tar archive (only 36 bytes)");
    await Deno.writeFile(path, new Uint8Array(1024).fill(120));
    await assertRejects(() => readCifarBinary(path), Error, "not a tar archive");
    // A truncated gzip stream.
    const gz = fakeCifarArchive(2).gz;
    await Deno.writeFile(path, gz.subarray(0, gz.length - 200));
    await assertRejects(() => readCifarBinary(path), Error, `${path}: cannot read gzip data`);
    // Batch with a wrong size inside the archive: named with the member.
    const files = fakeCifarFiles(2);
    files.set(TRAIN_FILES[0], files.get(TRAIN_FILES[0])!.subarray(0, 100));
    await Deno.writeFile(path, fakeCifarArchive(2, { files }).gz);
    await assertRejects(
      () => readCifarBinary(path),
      DataError,
      `${CIFAR10_FOLDER}/data_batch_1.bin has 100 bytes`,
    );
  });
});

Deno.test("readTar: long names via the ustar prefix, directories, skipped members", async () => {
  const long = `${"d".repeat(120)}/file.bin`;
  const tar = writeTar([
    { name: "dir/" },
    { name: long, data: new Uint8Array(700).fill(3) },
    { name: "dir/b", data: new Uint8Array([1, 2]) },
  ]);
  const entries = [];
  for await (
    const e of readTar([tar.subarray(0, 100), tar.subarray(100)], { want: (n) => n === "dir/b" })
  ) {
    entries.push(e);
  }
  assertEquals(entries.map((e) => [e.name, e.type, e.size, e.data?.length]), [
    ["dir/", "directory", 0, undefined],
    [long, "file", 700, undefined],
    ["dir/b", "file", 2, 2],
  ]);
  assertEquals([...entries[2].data!], [1, 2]);
});

Deno.test("readTar: an archive cut short names the member or header; no end blocks is fine; empty is not", async () => {
  const tar = writeTar([
    { name: "dir/a", data: new Uint8Array(700).fill(1) },
    { name: "dir/b", data: new Uint8Array([1, 2]) },
  ]);
  const read = (bytes: Uint8Array) => Array.fromAsync(readTar([bytes], { label: "x.tar" }));
  // Header (512) + 700 bytes padded to 1024, then b's header at 1536 and its data at 2048.
  await assertRejects(() => read(tar.subarray(0, 1000)), Error, `x.tar ends inside "dir/a"`);
  await assertRejects(() => read(tar.subarray(0, 1600)), Error, "x.tar ends inside a tar header");
  await assertRejects(() => read(tar.subarray(0, 300)), Error, "x.tar is not a tar archive");
  const bad = tar.slice();
  bad[1536] ^= 1; // b's header no longer matches its checksum
  await assertRejects(() => read(bad), Error, "x.tar is not a tar archive (bad header checksum");
  await assertRejects(() => read(new Uint8Array(0)), Error, "x.tar is empty");
  const whole = await read(tar.subarray(0, 2560)); // without the two end-of-archive blocks
  assertEquals(whole.map((e) => [e.name, e.data?.length]), [["dir/a", 700], ["dir/b", 2]]);
});

Deno.test("selectImages and parseClassNames", () => {
  const set = fakeImages(5);
  const sub = selectImages(set, [4, 1]);
  assertEquals([...sub.labels], [4, 1]);
  assertEquals(
    sub.images.subarray(0, IMAGE_BYTES),
    set.images.subarray(4 * IMAGE_BYTES, 5 * IMAGE_BYTES),
  );
  assertThrows(() => selectImages(set, [5]), RangeError, "index 5");
  assertEquals(parseClassNames(" a\r\nb\n\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"), [..."abcdefghij"]);
});

Deno.test("readCifarBinary: choose keeps the chosen images in the order given; histogram counts the whole split", async () => {
  await withTempDir(async (dir) => {
    const folder = join(dir, CIFAR10_FOLDER);
    await Deno.mkdir(folder);
    const files = noisyCifarFiles(7);
    for (const [name, bytes] of files) await Deno.writeFile(join(folder, name), bytes);
    const full = await readCifarBinary(folder);
    const seen: number[] = [];
    // Any order, repeats, runs across file ends (7 records per file).
    const trainPick = [34, 0, 6, 7, 8, 6, 13, 14, 20, 21, 22, 23];
    const options = {
      choose: {
        train: (labels: Uint8Array) => {
          seen.push(labels.length);
          assertEquals(labels, full.train.labels);
          return trainPick;
        },
        test: () => new Int32Array([6, 5]),
      },
      histogram: true,
    };
    const some = await readCifarBinary(folder, options);
    assertEquals(seen, [35]);
    assertSameImages(some.train, selectImages(full.train, trainPick), "train");
    assertSameImages(some.test, selectImages(full.test, [6, 5]), "test");
    assertEquals(some.fullSizes, { train: 35, test: 7 });
    assertEquals(histogramStats(some.histogram!), channelStats(full.train));
    assertEquals(some.histogram![0].reduce((a, b) => a + b), 35 * 1024);
    assertEquals(full.histogram, undefined);
    // From an archive: the same result.
    const tar = join(dir, "plain.tar");
    await Deno.writeFile(
      tar,
      writeTar([...files].map(([n, data]) => ({ name: `${CIFAR10_FOLDER}/${n}`, data }))),
    );
    const fromTar = await readCifarBinary(tar, options);
    assertSameImages(fromTar.train, some.train, "train from the archive");
    assertSameImages(fromTar.test, some.test, "test from the archive");
    assertEquals([fromTar.fullSizes, fromTar.histogram], [some.fullSizes, some.histogram]);
    // Only the training split chosen: the test split is whole.
    const onlyTrain = await readCifarBinary(folder, { choose: { train: () => [1] } });
    assertSameImages(onlyTrain.test, full.test, "whole test split");
    // A bad index from `choose` is named with its split, from a folder and from an archive alike
    // (a fractional one would otherwise blend two records).
    for (const source of [folder, tar]) {
      for (const bad of [35, -1, 1.5, NaN]) {
        await assertRejects(
          () => readCifarBinary(source, { choose: { test: () => [0], train: () => [0, bad] } }),
          RangeError,
          `choose.train returned ${bad} at position 1; expected integer indices in 0…34`,
        );
      }
    }
  });
});

Deno.test("readCifarBinary: a batch cut or rewritten between reading the labels and the chosen images is named", async () => {
  await withTempDir(async (dir) => {
    await writeFakeCifar(dir, 4);
    const path = join(dir, TRAIN_FILES[1]);
    const good = await Deno.readFile(path);
    // The chooser runs between the two reads: it changes the file on disk as another process might.
    const cut = () => {
      Deno.writeFileSync(path, good.subarray(0, 2 * RECORD_BYTES + 10));
      return [6, 7];
    };
    await assertRejects(
      () => readCifarBinary(dir, { choose: { train: cut } }),
      DataError,
      `${path} ended after ${2 * RECORD_BYTES + 10} bytes; expected ${4 * RECORD_BYTES}`,
    );
    await Deno.writeFile(path, good);
    const relabel = () => {
      const bytes = good.slice();
      bytes[3 * RECORD_BYTES] = (bytes[3 * RECORD_BYTES] + 1) % 10;
      Deno.writeFileSync(path, bytes);
      return [6, 7];
    };
    await assertRejects(
      () => readCifarBinary(dir, { choose: { train: relabel } }),
      DataError,
      `${path} changed while it was read (record 3)`,
    );
    // Labels are checked while only labels are read, too.
    const bytes = good.slice();
    bytes[RECORD_BYTES] = 12;
    await Deno.writeFile(path, bytes);
    await assertRejects(
      () => readCifarBinary(dir, { choose: { train: () => [0] } }),
      DataError,
      `${path}: record 1 (byte offset ${RECORD_BYTES}) has label 12; CIFAR-10 labels are 0–9`,
    );
  });
});
