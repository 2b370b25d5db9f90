/**
 * Helpers of the data tests: small CIFAR-format files and archives built in the test, a
 * temporary folder, and a bounded local HTTP server on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { fakeCifarArchive } from "./_data_helpers.ts";
 * const { gz, md5 } = fakeCifarArchive(2);
 * ```
 * @module
 */
import { fail as assertionFailed } from "@std/assert";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { concatBytes } from "../lib/util/bytes.ts";
import {
  CIFAR10_CLASSES,
  CIFAR10_FOLDER,
  encodeBatch,
  IMAGE_BYTES,
  type ImageSet,
  imageSet,
  META_FILE,
  TEST_FILE,
  TRAIN_FILES,
} from "../lib/data/cifar10.ts";

/** `n` images with labels `(start + i) % 10` and pixels from a simple deterministic formula. */
export function fakeImages(n: number, start = 0): ImageSet {
  const images = new Uint8Array(n * IMAGE_BYTES);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = (start + i) % 10;
    for (let k = 0; k < IMAGE_BYTES; k++) {
      images[i * IMAGE_BYTES + k] = (k * 7 + (start + i) * 31) & 0xff;
    }
  }
  return imageSet(images, labels);
}

/** File name → bytes of a CIFAR-10 binary folder with `perFile` records per batch file. */
export function fakeCifarFiles(perFile: number): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  TRAIN_FILES.forEach((name, f) => files.set(name, encodeBatch(fakeImages(perFile, f * perFile))));
  files.set(TEST_FILE, encodeBatch(fakeImages(perFile, 1000)));
  files.set(META_FILE, new TextEncoder().encode(CIFAR10_CLASSES.join("\n") + "\n\n"));
  return files;
}

/** Like {@linkcode fakeCifarFiles} with random pixels (seeded), so that gzip cannot shrink them. */
export function noisyCifarFiles(perFile: number): Map<string, Uint8Array> {
  const files = fakeCifarFiles(perFile);
  let s = 12345;
  for (const [name, bytes] of files) {
    if (!name.endsWith(".bin")) continue;
    for (let i = 0; i < bytes.length; i++) {
      if (i % 3073 === 0) continue; // keep the label byte
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      bytes[i] = s >>> 24;
    }
  }
  return files;
}

/** Writes {@linkcode fakeCifarFiles} into `dir`. */
export async function writeFakeCifar(dir: string, perFile: number): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, bytes] of fakeCifarFiles(perFile)) {
    await Deno.writeFile(`${dir}/${name}`, bytes);
  }
}

/**
 * Throws unless two image sets hold the same labels and pixels, naming the first image that
 * differs. Cheap on large sets, where `assertEquals` would build a diff of millions of bytes.
 */
export function assertSameImages(actual: ImageSet, expected: ImageSet, what = "images"): void {
  const fail = (why: string) => assertionFailed(`${what}: ${why}`);
  if (actual.length !== expected.length) {
    fail(`${actual.length} images, expected ${expected.length}`);
  }
  if (actual.images.length !== actual.length * IMAGE_BYTES) fail("pixel array of the wrong size");
  for (let i = 0; i < expected.length; i++) {
    if (actual.labels[i] !== expected.labels[i]) {
      fail(`image ${i} has label ${actual.labels[i]}, expected ${expected.labels[i]}`);
    }
    for (let k = i * IMAGE_BYTES; k < (i + 1) * IMAGE_BYTES; k++) {
      if (actual.images[k] !== expected.images[k]) fail(`image ${i} differs at byte ${k}`);
    }
  }
}

/** MD5 in hex. */
export function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** A gzip-compressed tar laid out like `cifar-10-binary.tar.gz`, and its MD5. */
export function fakeCifarArchive(
  perFile: number,
  options: { folder?: string; files?: Map<string, Uint8Array> } = {},
): { gz: Uint8Array; md5: string } {
  const folder = options.folder ?? CIFAR10_FOLDER;
  const files = options.files ?? fakeCifarFiles(perFile);
  const tar = writeTar([
    { name: `${folder}/` },
    ...[...files].map(([name, data]) => ({ name: `${folder}/${name}`, data })),
    { name: `${folder}/readme.html`, data: new TextEncoder().encode("<p>test</p>") },
  ]);
  const gz = new Uint8Array(gzipSync(tar));
  return { gz, md5: md5(gz) };
}

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "data_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Behaviour of {@linkcode serveBytes}. */
export interface ServeOptions {
  /** Honour `Range: bytes=N-` with 206 (default true). */
  ranges?: boolean;
  /** For the first `cutRequests` requests, send only `cutAt` bytes of the body, then drop it. */
  cutAt?: number;
  /** How many requests are cut (default 1). */
  cutRequests?: number;
  /** Send the first response's body in 4 KiB pieces with this pause between them (ms). */
  slowFirstMs?: number;
}

/** A running {@linkcode serveBytes} server. */
export interface TestServer {
  /** URL of the file. */
  url: string;
  /** The `Range` header of every request ("" when absent). */
  ranges: string[];
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Serves `bytes` at http://127.0.0.1:<port>/cifar-10-binary.tar.gz with a minimal HTTP/1.1 server
 * (one request per connection), so that a cut really is the server closing the connection in the
 * middle of the body. It listens on the loopback interface only and stops by itself after 30 s.
 */
export function serveBytes(bytes: Uint8Array, options: ServeOptions = {}): TestServer {
  const ranges: string[] = [];
  let cuts = options.cutRequests ?? (options.cutAt === undefined ? 0 : 1);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const enc = new TextEncoder();
  const etag = `"${md5(bytes)}"`;

  async function handle(conn: Deno.Conn): Promise<void> {
    try {
      let head = "";
      const buf = new Uint8Array(4096);
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      const range = /^range:\s*(.*)$/im.exec(head)?.[1]?.trim() ?? "";
      ranges.push(range);
      const m = /^bytes=(\d+)-$/.exec(range);
      const start = m && (options.ranges ?? true) ? Number(m[1]) : 0;
      let status = start > 0 ? "206 Partial Content" : "200 OK";
      const headers = [`ETag: ${etag}`, "Connection: close"];
      headers.push(`Accept-Ranges: ${options.ranges ?? true ? "bytes" : "none"}`);
      let body = bytes.subarray(start);
      if (start >= bytes.length && start > 0) {
        status = "416 Range Not Satisfiable";
        headers.push(`Content-Range: bytes */${bytes.length}`);
        body = new Uint8Array(0);
      } else if (start > 0) {
        headers.push(`Content-Range: bytes ${start}-${bytes.length - 1}/${bytes.length}`);
      }
      headers.push(`Content-Length: ${body.length}`);
      await writeAll(conn, enc.encode(`HTTP/1.1 ${status}\r\n${headers.join("\r\n")}\r\n\r\n`));
      if (cuts > 0 && options.cutAt !== undefined) {
        cuts--;
        body = body.subarray(0, Math.max(0, options.cutAt - start));
      }
      if (options.slowFirstMs && ranges.length === 1) {
        for (let i = 0; i < body.length; i += 4096) {
          await writeAll(conn, body.subarray(i, i + 4096));
          await new Promise((r) => setTimeout(r, options.slowFirstMs));
        }
      } else {
        await writeAll(conn, body);
      }
    } catch {
      // the client went away
    } finally {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  const loop = (async () => {
    try {
      for await (const conn of listener) await handle(conn);
    } catch {
      // listener closed
    }
  })();
  const close = async () => {
    try {
      listener.close();
    } catch {
      // already closed
    }
    await loop;
  };
  const timer = setTimeout(close, 30_000);
  Deno.unrefTimer(timer);
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}/cifar-10-binary.tar.gz`,
    ranges,
    async close() {
      clearTimeout(timer);
      await close();
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
}

/** A file to put in a tar archive with {@linkcode writeTar}. */
export interface TarInput {
  /** Path inside the archive (at most 100 bytes, or 255 with a ustar prefix). */
  name: string;
  /** Content; omit for a directory. */
  data?: Uint8Array;
}

/**
 * Builds an uncompressed ustar archive in memory (synchronously, which tar-stream's packer does
 * not: test archives are built at module level). Long names go into the ustar prefix.
 *
 * @example
 * ```ts
 * const tar = writeTar([{ name: "dir/" }, { name: "dir/a.txt", data: new Uint8Array([65]) }]);
 * ```
 */
export function writeTar(files: TarInput[]): Uint8Array {
  const BLOCK = 512;
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const f of files) {
    const header = new Uint8Array(BLOCK);
    const isDir = f.data === undefined;
    let name = enc.encode(f.name);
    let prefix = new Uint8Array(0);
    if (name.length > 100) {
      const cut = f.name.lastIndexOf("/", f.name.length - 2);
      prefix = enc.encode(f.name.slice(0, cut));
      name = enc.encode(f.name.slice(cut + 1));
      if (cut < 0 || name.length > 100 || prefix.length > 155) {
        throw new RangeError(`tar name too long: ${f.name}`);
      }
    }
    const size = f.data?.length ?? 0;
    header.set(name, 0);
    const field = (text: string, at: number, len: number) =>
      header.set(enc.encode(text.padStart(len - 1, "0") + "\0"), at);
    field(isDir ? "755" : "644", 100, 8);
    field("0", 108, 8);
    field("0", 116, 8);
    field(size.toString(8), 124, 12);
    field("0", 136, 12);
    header[156] = isDir ? 0x35 : 0x30;
    header.set(enc.encode("ustar\0"), 257);
    header.set(enc.encode("00"), 263);
    header.set(prefix, 345);
    header.fill(32, 148, 156);
    const sum = header.reduce((a, b) => a + b, 0);
    header.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    blocks.push(header);
    if (f.data) {
      const body = new Uint8Array(Math.ceil(size / BLOCK) * BLOCK);
      body.set(f.data);
      blocks.push(body);
    }
  }
  blocks.push(new Uint8Array(2 * BLOCK));
  return concatBytes(blocks);
}
