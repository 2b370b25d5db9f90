/**
 * Just enough tar for the CIFAR-10 archive: a streaming reader of ustar/GNU/pax archives
 * (optionally gzip-compressed, detected from the first bytes) and a ustar writer for tests.
 *
 * @example
 * ```ts
 * import { readTarFile } from "./_tar.ts";
 * for await (const entry of readTarFile("cifar-10-binary.tar.gz")) console.log(entry.name);
 * ```
 * @module
 */

import { concatBytes } from "../util/bytes.ts";

/** One member of a tar archive. */
export interface TarEntry {
  /** Path inside the archive (pax/GNU long names resolved). */
  name: string;
  /** Kind of member. */
  type: "file" | "directory" | "other";
  /** Size of the member's data in bytes. */
  size: number;
  /** The member's data; only for files the caller wants (see `want`), otherwise undefined. */
  data?: Uint8Array;
}

/** Options of {@linkcode readTar}. */
export interface ReadTarOptions {
  /** Which files to read into memory (default: all). Others are skipped. */
  want?: (name: string, size: number) => boolean;
  /** Name used in error messages (default "archive"). */
  label?: string;
}

const BLOCK = 512;

/** Buffers an async byte stream so that exact byte counts can be read. */
class ByteQueue {
  #it: AsyncIterator<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #available = 0;
  #done = false;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.#it = Symbol.asyncIterator in source
      ? source[Symbol.asyncIterator]()
      : (async function* () {
        yield* source;
      })();
  }

  async #fill(n: number): Promise<void> {
    while (this.#available < n && !this.#done) {
      const r = await this.#it.next();
      if (r.done) this.#done = true;
      else if (r.value.length > 0) {
        this.#chunks.push(r.value);
        this.#available += r.value.length;
      }
    }
  }

  /** Reads exactly `n` bytes, or fewer at the end of the stream. */
  async read(n: number): Promise<Uint8Array> {
    await this.#fill(n);
    const len = Math.min(n, this.#available);
    const out = new Uint8Array(len);
    let pos = 0;
    while (pos < len) {
      const head = this.#chunks[0];
      const take = Math.min(head.length, len - pos);
      out.set(head.subarray(0, take), pos);
      pos += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#available -= len;
    this.offset += len;
    return out;
  }

  /** Skips `n` bytes; returns how many were skipped. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      await this.#fill(1);
      if (this.#available === 0) break;
      const head = this.#chunks[0];
      const take = Math.min(head.length, left);
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
      this.#available -= take;
      left -= take;
    }
    this.offset += n - left;
    return n - left;
  }

  async cancel(): Promise<void> {
    await this.#it.return?.();
  }
}

function cString(bytes: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(start, end));
}

function octal(bytes: Uint8Array, start: number, length: number): number {
  if (bytes[start] & 0x80) {
    // GNU base-256 encoding for large values.
    let v = bytes[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + bytes[i];
    return v;
  }
  const text = cString(bytes, start, length).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return NaN;
  return parseInt(text, 8);
}

function checksumOk(header: Uint8Array): boolean {
  const stored = octal(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
  return stored === sum;
}

function parsePax(data: Uint8Array): Record<string, string> {
  const text = new TextDecoder().decode(data);
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < text.length) {
    const space = text.indexOf(" ", pos);
    if (space < 0) break;
    const len = parseInt(text.slice(pos, space), 10);
    if (!(len > 0)) break;
    const record = text.slice(space + 1, pos + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/**
 * Reads a tar stream member by member. Throws when the stream is not a tar archive (bad header
 * checksum) or ends inside a member.
 *
 * @example
 * ```ts
 * const file = await Deno.open("x.tar");
 * for await (const e of readTar(file.readable)) console.log(e.name, e.size);
 * ```
 */
export async function* readTar(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: ReadTarOptions = {},
): AsyncGenerator<TarEntry> {
  const label = options.label ?? "archive";
  const queue = new ByteQueue(source);
  let longName: string | undefined;
  let paxPath: string | undefined;
  let members = 0;
  try {
    while (true) {
      const headerOffset = queue.offset;
      const header = await queue.read(BLOCK);
      if (header.length === 0 && members > 0) return; // no end-of-archive blocks: tolerated
      if (header.length < BLOCK) {
        throw new Error(
          header.length === 0
            ? `${label} is empty: not a tar archive`
            : headerOffset === 0
            ? `${label} is not a tar archive (only ${header.length} bytes)`
            : `${label} ends inside a tar header at byte ${headerOffset}: truncated`,
        );
      }
      if (header.every((b) => b === 0)) return;
      if (!checksumOk(header)) {
        throw new Error(
          `${label} is not a tar archive (bad header checksum at byte ${headerOffset})`,
        );
      }
      const size = octal(header, 124, 12);
      if (!Number.isFinite(size)) {
        throw new Error(`${label}: bad size field in the tar header at byte ${headerOffset}`);
      }
      const flag = String.fromCharCode(header[156] || 0x30);
      const magic = cString(header, 257, 6);
      const prefix = magic === "ustar" ? cString(header, 345, 155) : "";
      let name = cString(header, 0, 100);
      if (prefix) name = `${prefix}/${name}`;
      const padded = Math.ceil(size / BLOCK) * BLOCK;

      if (flag === "L" || flag === "x" || flag === "g") {
        const data = await queue.read(size);
        if (data.length < size) throw truncated(label, name);
        await queue.skip(padded - size);
        if (flag === "L") longName = cString(data, 0, data.length);
        else if (flag === "x") paxPath = parsePax(data).path ?? paxPath;
        continue;
      }
      name = paxPath ?? longName ?? name;
      paxPath = longName = undefined;
      members++;
      const type = flag === "0" || flag === "\0" || flag === "7"
        ? "file"
        : flag === "5"
        ? "directory"
        : "other";
      const entry: TarEntry = { name, type, size };
      if (type === "file" && (options.want?.(name, size) ?? true)) {
        const data = await queue.read(size);
        if (data.length < size) throw truncated(label, name);
        entry.data = data;
        if ((await queue.skip(padded - size)) < padded - size) throw truncated(label, name);
      } else if ((await queue.skip(padded)) < padded) {
        throw truncated(label, name);
      }
      yield entry;
    }
  } finally {
    await queue.cancel();
  }
}

function truncated(label: string, name: string): Error {
  return new Error(`${label} ends inside "${name}": truncated archive`);
}

/**
 * Opens a `.tar` or `.tar.gz` file (gzip detected from its magic bytes) and reads it with
 * {@linkcode readTar}.
 *
 * @example
 * ```ts
 * for await (const e of readTarFile("cifar-10-binary.tar.gz")) console.log(e.name);
 * ```
 */
export async function* readTarFile(
  path: string,
  options: ReadTarOptions = {},
): AsyncGenerator<TarEntry> {
  const label = options.label ?? path;
  const file = await Deno.open(path, { read: true });
  const head = new Uint8Array(2);
  const n = await file.read(head);
  await file.seek(0, Deno.SeekMode.Start);
  const gzip = n === 2 && head[0] === 0x1f && head[1] === 0x8b;
  const stream = gzip ? file.readable.pipeThrough(new DecompressionStream("gzip")) : file.readable;
  try {
    yield* readTar(guard(stream, label, gzip), { ...options, label });
  } finally {
    try {
      file.close();
    } catch {
      // closed by the stream already
    }
  }
}

async function* guard(
  stream: ReadableStream<Uint8Array>,
  label: string,
  gzip: boolean,
): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of stream) yield chunk;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`${label}: cannot read ${gzip ? "gzip data" : "file"} (${why})`);
  }
}

/** A file to put in a tar archive with {@linkcode writeTar}. */
export interface TarInput {
  /** Path inside the archive (at most 100 bytes, or 255 with a ustar prefix). */
  name: string;
  /** Content; omit for a directory. */
  data?: Uint8Array;
}

/**
 * Builds an uncompressed ustar archive in memory.
 *
 * @example
 * ```ts
 * const tar = writeTar([{ name: "dir/" }, { name: "dir/a.txt", data: new Uint8Array([65]) }]);
 * ```
 */
export function writeTar(files: TarInput[]): Uint8Array {
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
