/**
 * Reading the CIFAR-10 archive: `.tar` or `.tar.gz` files (gzip detected from the first bytes),
 * read as a stream by npm's tar-stream, which parses ustar/GNU/pax headers (long names included),
 * checks every header's checksum and notices an archive that ends early. This layer keeps in
 * memory only the members the caller wants and words tar-stream's errors so that they name the
 * archive and say what is wrong with it.
 *
 * @example
 * ```ts
 * import { readTarFile } from "./_tar.ts";
 * for await (const entry of readTarFile("cifar-10-binary.tar.gz")) console.log(entry.name);
 * ```
 * @module
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract } from "tar-stream";
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
  let bytes = 0;
  let member: string | undefined;
  const counted = async function* () {
    for await (const chunk of source) {
      bytes += chunk.length;
      yield chunk;
    }
  };
  const members = extract();
  // Errors of the source (a gzip error) reach the loop below through `members`.
  const piped = pipeline(Readable.from(counted()), members).catch(() => {});
  try {
    for await (const stream of members) {
      const { name, size, type: kind } = stream.header;
      member = name;
      const type = kind === "file" || kind === "contiguous-file"
        ? "file"
        : kind === "directory"
        ? "directory"
        : "other";
      const entry: TarEntry = { name, type, size };
      if (type === "file" && (options.want?.(name, size) ?? true)) {
        entry.data = concatBytes(await Array.fromAsync(stream as AsyncIterable<Uint8Array>));
      } else {
        stream.resume();
      }
      yield entry;
      member = undefined;
    }
  } catch (error) {
    throw tarError(label, error, bytes, member);
  } finally {
    members.destroy();
    await piped;
  }
  if (bytes === 0) throw new Error(`${label} is empty: not a tar archive`);
}

/** tar-stream's errors (and the source's), worded to name the archive and what is wrong. */
function tarError(label: string, error: unknown, bytes: number, member?: string): Error {
  const why = error instanceof Error ? error.message : String(error);
  if (/^Invalid tar header/.test(why)) {
    return new Error(`${label} is not a tar archive (bad header checksum: ${why})`);
  }
  if (/^Unexpected end of data/.test(why)) {
    return new Error(
      bytes < BLOCK
        ? `${label} is not a tar archive (only ${bytes} bytes)`
        : `${label} ends ${
          member ? `inside "${member}"` : "inside a tar header"
        }: truncated archive`,
    );
  }
  return error instanceof Error ? error : new Error(why);
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
