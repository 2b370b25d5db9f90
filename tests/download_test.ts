import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CIFAR10_ARCHIVE,
  CIFAR10_FOLDER,
  CIFAR10_MARKER,
  cifar10Status,
  DataError,
  downloadCifar10,
  DownloadError,
  type DownloadOptions,
  readCifarBinary,
  TRAIN_FILES,
} from "../lib/data/mod.ts";
import { ProgressBar } from "../lib/util/progress.ts";
import { downloadResumable } from "../lib/util/http_download.ts";
import { createHash } from "node:crypto";
import {
  fakeCifarArchive,
  fakeCifarFiles,
  fakeImages,
  noisyCifarFiles,
  serveBytes,
  withTempDir,
} from "./_data_helpers.ts";

const { gz: ARCHIVE, md5: MD5 } = fakeCifarArchive(2);

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** Runs downloadCifar10 quietly, collecting its log lines. */
async function download(
  options: DownloadOptions,
): Promise<{ lines: string[]; result: Awaited<ReturnType<typeof downloadCifar10>> }> {
  const lines: string[] = [];
  const result = await downloadCifar10({
    progress: false,
    retryDelayMs: 10,
    log: (l) => lines.push(l),
    ...options,
  });
  return { lines, result };
}

Deno.test("downloadCifar10: downloads, verifies, extracts; a second run says already present", async () => {
  const server = serveBytes(ARCHIVE);
  try {
    await withTempDir(async (dir) => {
      const first = await download({ url: server.url, md5: MD5, dataDir: dir });
      assertEquals(first.result.status, "installed");
      assertEquals(first.result.downloadedBytes, ARCHIVE.length);
      assertEquals(await names(dir), [CIFAR10_FOLDER]); // archive and .part removed
      const folder = join(dir, CIFAR10_FOLDER);
      assert((await names(folder)).includes(CIFAR10_MARKER));
      const data = await readCifarBinary(folder);
      assertEquals(data.train, fakeImages(10, 0));
      const status = await cifar10Status(dir, MD5);
      assert(status.ready, status.reason);
      assertEquals(status.record?.images, { train: 10, test: 2 });

      const second = await download({ url: server.url, md5: MD5, dataDir: dir });
      assertEquals(second.result.status, "present");
      assertMatch(second.lines.join("\n"), /already present and verified/);
      assertEquals(server.ranges.length, 1, "the second run made no request");
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadCifar10: a wrong MD5 is refused and nothing claims to be complete", async () => {
  const server = serveBytes(ARCHIVE);
  try {
    await withTempDir(async (dir) => {
      const wrong = "0".repeat(32);
      await assertRejects(
        () => download({ url: server.url, md5: wrong, dataDir: dir }),
        DownloadError,
        `MD5 mismatch for ${server.url}: expected ${wrong}, got ${MD5}`,
      );
      assertEquals(await names(dir), []);
      assertEquals((await cifar10Status(dir)).ready, false);
      await assertRejects(
        () => download({ url: server.url, md5: "xyz", dataDir: dir }),
        RangeError,
        "32 hexadecimal digits",
      );
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadCifar10: a complete .part (416 on resume) is checked; a corrupt one is fetched again", async () => {
  const server = serveBytes(ARCHIVE);
  try {
    await withTempDir(async (dir) => {
      const part = join(dir, `${CIFAR10_ARCHIVE}.part`);
      await Deno.writeFile(part, ARCHIVE);
      await Deno.writeTextFile(`${part}.json`, JSON.stringify({ url: server.url }));
      const first = await download({ url: server.url, md5: MD5, dataDir: dir });
      assertEquals(first.result.downloadedBytes, 0);
      assertEquals(server.ranges, [`bytes=${ARCHIVE.length}-`]);
      await Deno.remove(join(dir, CIFAR10_FOLDER), { recursive: true });
      // Same size, wrong bytes: the checksum fails, the download starts over once and succeeds.
      await Deno.writeFile(part, new Uint8Array(ARCHIVE.length));
      await Deno.writeTextFile(`${part}.json`, JSON.stringify({ url: server.url }));
      const second = await download({ url: server.url, md5: MD5, dataDir: dir });
      assertEquals(second.result.status, "installed");
      assertEquals(second.result.downloadedBytes, ARCHIVE.length);
      assertStringIncludes(second.lines.join("\n"), "downloading again from the start");
      assertEquals(server.ranges.slice(1), [`bytes=${ARCHIVE.length}-`, ""]);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadCifar10: an unreachable server is a clear error that suggests --file", async () => {
  const server = serveBytes(ARCHIVE);
  const url = server.url;
  await server.close(); // nothing listens there any more
  await withTempDir(async (dir) => {
    const e = await assertRejects(
      () => download({ url, md5: MD5, dataDir: dir, retries: 1 }),
      DownloadError,
      `cannot download ${url}`,
    );
    assertStringIncludes(e.message, "deno task data:cifar10 --file <path>");
    assertEquals((await cifar10Status(dir)).ready, false);
  });
});

Deno.test("downloadCifar10: a dropped connection keeps the .part; the next run resumes with Range", async () => {
  const cutAt = 700;
  const server = serveBytes(ARCHIVE, { cutAt });
  try {
    await withTempDir(async (dir) => {
      const err = await assertRejects(
        () => download({ url: server.url, md5: MD5, dataDir: dir, retries: 0 }),
        DownloadError,
        "download interrupted at 700 B",
      );
      assertStringIncludes(err.message, "run deno task data:cifar10 again to resume");
      const part = join(dir, `${CIFAR10_ARCHIVE}.part`);
      assertEquals((await Deno.stat(part)).size, cutAt);
      assertEquals((await cifar10Status(dir)).ready, false);
      assert(!(await names(dir)).includes(CIFAR10_FOLDER));

      const rerun = await download({ url: server.url, md5: MD5, dataDir: dir, retries: 0 });
      assertEquals(rerun.result.status, "installed");
      assert(rerun.result.resumed);
      assertEquals(rerun.result.downloadedBytes, ARCHIVE.length - cutAt);
      assertEquals(server.ranges, ["", `bytes=${cutAt}-`]);
      assert((await cifar10Status(dir, MD5)).ready);
      assertEquals(await names(dir), [CIFAR10_FOLDER]);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadCifar10: without Range support the rerun starts over and succeeds", async () => {
  const server = serveBytes(ARCHIVE, { cutAt: 500, ranges: false });
  try {
    await withTempDir(async (dir) => {
      await assertRejects(
        () => download({ url: server.url, md5: MD5, dataDir: dir, retries: 0 }),
        DownloadError,
        "interrupted",
      );
      const { lines, result } = await download({
        url: server.url,
        md5: MD5,
        dataDir: dir,
        retries: 0,
      });
      assertEquals(result.status, "installed");
      assertEquals(result.resumed, false);
      assertEquals(result.downloadedBytes, ARCHIVE.length);
      assertStringIncludes(lines.join("\n"), "does not resume downloads; starting over");
      assertEquals(server.ranges, ["", "bytes=500-"]);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadCifar10: a dropped connection is resumed within the same run", async () => {
  const server = serveBytes(ARCHIVE, { cutAt: 300, cutRequests: 2 });
  try {
    await withTempDir(async (dir) => {
      const { lines, result } = await download({
        url: server.url,
        md5: MD5,
        dataDir: dir,
        retries: 2,
      });
      assertEquals(result.status, "installed");
      assertEquals(server.ranges, ["", "bytes=300-", "bytes=300-"]);
      assertEquals(lines.filter((l) => l.startsWith("download interrupted")).length, 2);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadCifar10: an archive that is not CIFAR-10 never replaces good data", async () => {
  const files = new Map([["other.bin", new Uint8Array(3073)]]);
  const bad = fakeCifarArchive(1, { files });
  const good = serveBytes(ARCHIVE);
  const wrong = serveBytes(bad.gz);
  try {
    await withTempDir(async (dir) => {
      await download({ url: good.url, md5: MD5, dataDir: dir });
      const folder = join(dir, CIFAR10_FOLDER);
      const before = await Deno.readFile(join(folder, TRAIN_FILES[0]));
      await assertRejects(
        () => download({ url: wrong.url, md5: bad.md5, dataDir: dir }),
        DataError,
        "is not the CIFAR-10 binary archive: it has no cifar-10-batches-bin/data_batch_1.bin",
      );
      assertEquals(await Deno.readFile(join(folder, TRAIN_FILES[0])), before);
      assert((await cifar10Status(dir, MD5)).ready);
      // No temporary folders, partial files or useless archives left behind.
      assertEquals(await names(dir), [CIFAR10_FOLDER]);
      // A corrupt batch inside an archive with the right checksum is refused the same way.
      const corrupt = fakeCifarArchive(2, {
        files: new Map([...fakeCifarFiles(2), [TRAIN_FILES[3], new Uint8Array(3074)]]),
      });
      const server = serveBytes(corrupt.gz);
      try {
        await assertRejects(
          () => download({ url: server.url, md5: corrupt.md5, dataDir: dir }),
          DataError,
          "data_batch_4.bin has 3,074 bytes",
        );
      } finally {
        await server.close();
      }
      assert((await cifar10Status(dir, MD5)).ready);
    });
  } finally {
    await good.close();
    await wrong.close();
  }
});

Deno.test("downloadCifar10: installs from a local archive (--file) after checking its MD5", async () => {
  await withTempDir(async (dir) => {
    const archive = join(dir, "copy.tar.gz");
    await Deno.writeFile(archive, ARCHIVE);
    await assertRejects(
      () => download({ archive, md5: "f".repeat(32), dataDir: join(dir, "data") }),
      DownloadError,
      `MD5 mismatch for ${archive}`,
    );
    const { result } = await download({ archive, md5: MD5, dataDir: join(dir, "data") });
    assertEquals(result.status, "installed");
    assertEquals(await Deno.readFile(archive), ARCHIVE, "the local archive is left alone");
    assert((await cifar10Status(join(dir, "data"), MD5)).ready);
  });
});

Deno.test("downloadCifar10: a verified archive left by an interrupted extraction is reused", async () => {
  const server = serveBytes(ARCHIVE);
  try {
    await withTempDir(async (dir) => {
      await Deno.writeFile(join(dir, CIFAR10_ARCHIVE), ARCHIVE);
      // A stale extraction folder from a run killed long ago is cleaned up.
      const stale = join(dir, ".cifar10-extract-old");
      await Deno.mkdir(stale);
      await Deno.utime(stale, 0, 0);
      const { result } = await download({ url: server.url, md5: MD5, dataDir: dir });
      assertEquals(result.status, "installed");
      assertEquals(result.downloadedBytes, 0);
      assertEquals(server.ranges, [], "no request was made");
      assertEquals(await names(dir), [CIFAR10_FOLDER]);
      // A corrupt one is discarded and downloaded again.
      await Deno.remove(join(dir, CIFAR10_FOLDER), { recursive: true });
      await Deno.writeFile(join(dir, CIFAR10_ARCHIVE), ARCHIVE.subarray(0, 100));
      const again = await download({ url: server.url, md5: MD5, dataDir: dir });
      assertEquals(again.result.downloadedBytes, ARCHIVE.length);
      assertStringIncludes(again.lines.join("\n"), "does not match MD5");
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadCifar10: the verified copy an interrupted swap set aside is put back, not swept", async () => {
  await withTempDir(async (dir) => {
    const archive = join(dir, "copy.tar.gz");
    await Deno.writeFile(archive, ARCHIVE);
    const dataDir = join(dir, "data");
    await download({ archive, md5: MD5, dataDir });
    const folder = join(dataDir, CIFAR10_FOLDER);
    const before = await Deno.readFile(join(folder, TRAIN_FILES[0]));
    // What a crash between replaceFolder's two renames leaves: the installed copy renamed aside
    // (installed long ago: old enough for the stale sweep) and the new extraction not moved in.
    const aside = join(dataDir, `.${CIFAR10_FOLDER}.old-1234abcd`);
    await Deno.rename(folder, aside);
    await Deno.utime(aside, 0, 0);
    const extract = join(dataDir, ".cifar10-extract-old");
    await Deno.mkdir(extract);
    await Deno.utime(extract, 0, 0);
    // Nothing listens at this address: the run succeeds only if it downloads nothing.
    const offline = { url: "http://127.0.0.1:9/cifar.tar.gz", md5: MD5, dataDir, retries: 0 };
    const again = await download(offline);
    assertEquals(again.result.status, "present");
    assertStringIncludes(again.lines.join("\n"), `put back the verified copy`);
    assertEquals(await Deno.readFile(join(folder, TRAIN_FILES[0])), before);
    // A set-aside folder that was never verified is not taken for CIFAR-10: it is swept.
    await Deno.remove(join(folder, CIFAR10_MARKER));
    await Deno.rename(folder, aside);
    await Deno.utime(aside, 0, 0);
    const third = await download({ archive, md5: MD5, dataDir });
    assertEquals(third.result.status, "installed");
    assertEquals(await names(dataDir), [CIFAR10_FOLDER]);
  });
});

Deno.test("cifar10Status: a folder without the record, or with a changed file, is not ready", async () => {
  const server = serveBytes(ARCHIVE);
  try {
    await withTempDir(async (dir) => {
      await download({ url: server.url, md5: MD5, dataDir: dir });
      const folder = join(dir, CIFAR10_FOLDER);
      await Deno.truncate(join(folder, TRAIN_FILES[4]), 3073);
      assertMatch(
        (await cifar10Status(dir)).reason,
        /data_batch_5\.bin has 3073 bytes, the verified copy had 6146/,
      );
      await Deno.remove(join(folder, CIFAR10_MARKER));
      assertMatch((await cifar10Status(dir)).reason, /has no VERIFIED\.json/);
      // The downloader replaces such a folder with a verified one.
      const { result } = await download({ url: server.url, md5: MD5, dataDir: dir });
      assertEquals(result.status, "installed");
      assert((await cifar10Status(dir, MD5)).ready);
    });
  } finally {
    await server.close();
  }
});

Deno.test("deno task data:cifar10 (cli.ts): installs, then reports already present; bad usage exits 2", async () => {
  const cli = fileURLToPath(new URL("../lib/data/cli.ts", import.meta.url));
  const server = serveBytes(ARCHIVE);
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", cli, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, text };
  };
  try {
    await withTempDir(async (dir) => {
      const first = await run("--url", server.url, "--md5", MD5, "--dir", dir);
      assertEquals(first.code, 0, first.text);
      assertStringIncludes(first.text, "installed and verified");
      // Not a terminal: the progress bar prints whole lines with bytes, rate and ETA.
      assertMatch(first.text, /100\.0 %\s+1\.\d KiB \/ 1\.\d KiB\s+\S+ \S*B\/s\s+ETA 0:00/);
      assert(!first.text.includes("\r"));
      const second = await run("--url", server.url, "--md5", MD5, "--dir", dir);
      assertEquals(second.code, 0, second.text);
      assertStringIncludes(second.text, "already present and verified");
      const bad = await run("--md5", "123", "--dir", dir);
      assertEquals(bad.code, 2);
      assertStringIncludes(bad.text, "--md5 must be 32 hexadecimal digits");
      const unknown = await run("--nope");
      assertEquals(unknown.code, 2);
      assertStringIncludes(unknown.text, "usage: deno task data:cifar10");
    });
  } finally {
    await server.close();
  }
});

Deno.test("deno task data:cifar10: Ctrl-C mid-download keeps the .part, installs nothing; the rerun resumes", async () => {
  const cli = fileURLToPath(new URL("../lib/data/cli.ts", import.meta.url));
  const { gz, md5 } = fakeCifarArchive(100, { files: noisyCifarFiles(100) });
  const server = serveBytes(gz, { slowFirstMs: 20 });
  try {
    await withTempDir(async (dir) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, "--url", server.url, "--md5", md5, "--dir", dir],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const part = join(dir, `${CIFAR10_ARCHIVE}.part`);
      const deadline = Date.now() + 20_000;
      while ((await Deno.stat(part).then((i) => i.size, () => 0)) < 20_000) {
        if (Date.now() > deadline) throw new Error("the download did not start");
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGINT");
      const out = await child.output();
      assertEquals(out.code, 130);
      assertStringIncludes(new TextDecoder().decode(out.stderr), "run the command again to resume");
      const kept = (await Deno.stat(part)).size;
      assert(kept >= 20_000 && kept < gz.length, `${kept} of ${gz.length} bytes kept`);
      assertEquals((await cifar10Status(dir)).ready, false);
      assert(!(await names(dir)).includes(CIFAR10_FOLDER));
      const { result } = await download({ url: server.url, md5, dataDir: dir });
      assertEquals(result.status, "installed");
      assertEquals(server.ranges.at(-1), `bytes=${kept}-`);
      assertEquals(result.downloadedBytes, gz.length - kept);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadResumable: any file, resumed after a drop, renamed only once its MD5 matched", async () => {
  const bytes = new TextEncoder().encode("not an archive, just bytes ".repeat(100));
  const md5 = createHash("md5").update(bytes).digest("hex");
  const server = serveBytes(bytes, { cutAt: 1000 });
  try {
    await withTempDir(async (dir) => {
      const file = join(dir, "file.txt");
      const error = await assertRejects(
        () => downloadResumable(server.url, file, { md5, retries: 0 }),
        DownloadError,
        "download interrupted at 1000 B",
      );
      assertStringIncludes(error.message, `${file}.part is kept: run it again to resume`);
      assertEquals(await names(dir), ["file.txt.part", "file.txt.part.json"]);
      const result = await downloadResumable(server.url, file, { md5, retries: 0 });
      assertEquals(result, { bytes: bytes.length - 1000, resumed: true });
      assertEquals(await Deno.readFile(file), bytes);
      assertEquals(await names(dir), ["file.txt"]);
    });
  } finally {
    await server.close();
  }
});

Deno.test("ProgressBar: in place on a terminal, occasional lines elsewhere, with rate and ETA", () => {
  let t = 0;
  const tty: string[] = [];
  const bar = new ProgressBar({
    label: "f",
    write: (s) => tty.push(s),
    isTerminal: true,
    now: () => t,
  });
  bar.start(10 * 1024 * 1024, 0);
  t = 1000;
  bar.update(2 * 1024 * 1024);
  t = 1050;
  bar.update(3 * 1024 * 1024); // within 100 ms of the last draw: skipped
  t = 2000;
  bar.update(4 * 1024 * 1024);
  bar.end();
  assertEquals(tty.length, 5); // start, 1 s, 2 s, end, newline
  assert(tty.slice(0, 4).every((s) => s.startsWith("\r") && s.endsWith("\x1b[K")));
  assertStringIncludes(tty[1], "20.0 %  2.0 MiB / 10.0 MiB  2.0 MiB/s  ETA 0:04");
  assertStringIncludes(tty[2], "40.0 %  4.0 MiB / 10.0 MiB  2.0 MiB/s  ETA 0:03");
  assertEquals(tty[4], "\n");

  t = 0;
  const log: string[] = [];
  const plain = new ProgressBar({
    label: "f",
    write: (s) => log.push(s),
    isTerminal: false,
    now: () => t,
  });
  plain.start(1000, 0);
  for (let i = 1; i <= 100; i++) {
    t += 10;
    plain.update(i * 10);
  }
  plain.end();
  // One line at the start and one per 10 % step; the end adds nothing new.
  assertEquals(log.length, 11);
  assert(log.every((s) => s.endsWith("\n") && !s.includes("\r")));
  assertStringIncludes(log[10], "100.0 %  1000 B / 1000 B");
});
