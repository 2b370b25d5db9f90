/**
 * Atomic file writes: the data goes to a temporary file next to the target, which is then renamed
 * over the target. Readers see either the old file or the complete new one, never a partial
 * write; when anything fails the temporary file is removed and the old file stays untouched.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * await writeFileAtomic("reports/run.html", "<!doctype html><title>ok</title>");
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";

/** What {@linkcode writeFileAtomic} can write: text, bytes, or chunks produced one by one. */
export type AtomicData = string | Uint8Array | AsyncIterable<string | Uint8Array>;

/** Options for {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * File mode of the new file (POSIX only). Defaults to the mode of the file being replaced, or
   * the process default (after umask) for a new file.
   */
  mode?: number;
}

/**
 * Writes `data` to `path` atomically: into a temporary file in the same directory (created with
 * its parents if missing), flushed to disk, then renamed over `path`. If writing, flushing or the
 * rename fails — or an async iterable passed as `data` throws — the temporary file is removed, the
 * previous content of `path` is left as it was, and the error is rethrown.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * await writeFileAtomic("/tmp/example/out.txt", "hello\n");
 * await writeFileAtomic("/tmp/example/out.bin", new Uint8Array([1, 2, 3]));
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: AtomicData,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const mode = options.mode ?? await existingMode(path);
  const tmp = join(dir, `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode });
    await writeAll(file, data);
    await file.sync();
    file.close();
    file = undefined;
    if (mode !== undefined && Deno.build.os !== "windows") await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (error) {
    try {
      file?.close();
    } catch {
      // already closed
    }
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

async function existingMode(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && info.mode !== null ? info.mode & 0o7777 : undefined;
  } catch {
    return undefined;
  }
}

async function writeAll(file: Deno.FsFile, data: AtomicData): Promise<void> {
  const encoder = new TextEncoder();
  const chunks = typeof data === "string" || data instanceof Uint8Array ? [data] : data;
  for await (const chunk of chunks) {
    let bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    while (bytes.length > 0) bytes = bytes.subarray(await file.write(bytes));
  }
}
