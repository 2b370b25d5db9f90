/**
 * A resumable HTTP download with a checksum: the bytes go to `<file>.part` (with
 * `<file>.part.json` recording the address and the server's validator); a later call resumes it
 * with an HTTP `Range` request guarded by `If-Range`, or starts over when the server does not
 * support ranges; a dropped connection or a server error is retried a few times; the file is
 * renamed to its final name only after its MD5 matched, and a mismatch deletes it.
 *
 * @example
 * ```ts
 * import { downloadResumable } from "./http_download.ts";
 * await downloadResumable("https://example.org/a.tar.gz", "data/a.tar.gz", {
 *   md5: "c32a1d4ab5d03f1284b67883e8d87530",
 * });
 * ```
 * @module
 */
import { delay } from "./async.ts";
import { fileSize, md5File } from "./fs.ts";
import { formatBytes, type ProgressSink } from "./progress.ts";

/**
 * A download that failed (HTTP error, dropped connection, wrong checksum).
 *
 * @example
 * ```ts
 * try {
 *   await downloadResumable(url, "data/a.tar.gz", { md5 });
 * } catch (error) {
 *   if (error instanceof DownloadError) console.error(error.message);
 * }
 * ```
 */
export class DownloadError extends Error {
  /** A download error with a message. */
  constructor(message: string) {
    super(message);
    this.name = "DownloadError";
  }
}

/** Options of {@linkcode downloadResumable}. */
export interface ResumableDownloadOptions {
  /** Expected MD5 of the file (32 lowercase hexadecimal digits). */
  md5: string;
  /** How often a dropped connection or a server error is retried within one call (default 3). */
  retries?: number;
  /** Pause before a retry in milliseconds (default 2000). */
  retryDelayMs?: number;
  /** Receives status lines (default none). */
  log?: (line: string) => void;
  /** Transfer progress (default none). */
  progress?: ProgressSink | false;
  /** The command that runs this download, for "run … again to resume" (default "it"). */
  command?: string;
  /** Added to the error when the server cannot be reached (e.g. how to do without network). */
  offlineHint?: string;
}

/** What {@linkcode downloadResumable} did. */
export interface ResumableDownloadResult {
  /** Bytes transferred in this call. */
  bytes: number;
  /** True when the download resumed from a partial file. */
  resumed: boolean;
}

interface PartInfo {
  url: string;
  etag?: string;
  lastModified?: string;
}

/**
 * Downloads `url` to `file` as described in the module doc; returns what was transferred. Throws
 * {@linkcode DownloadError} when the server cannot be reached, answers an error, the connection
 * drops more often than `retries` allows (the `.part` file is kept for the next call) or the MD5
 * does not match (nothing is kept).
 *
 * @example
 * ```ts
 * const { bytes, resumed } = await downloadResumable(url, "data/a.tar.gz", { md5, retries: 5 });
 * ```
 */
export async function downloadResumable(
  url: string,
  file: string,
  options: ResumableDownloadOptions,
): Promise<ResumableDownloadResult> {
  const { md5, retries = 3, retryDelayMs = 2000, progress = false } = options;
  const log = options.log ?? (() => {});
  const part = `${file}.part`;
  const infoPath = `${part}.json`;
  let transferred = 0;
  let resumed = false;
  let restartedAfterMismatch = false;
  for (let attempt = 0;; attempt++) {
    let info: PartInfo | undefined;
    try {
      info = JSON.parse(await Deno.readTextFile(infoPath));
    } catch {
      info = undefined;
    }
    let offset = Math.max(0, await fileSize(part));
    if (offset > 0 && info?.url !== url) {
      log(`discarding ${part}: it belongs to another address`);
      offset = 0;
    }
    const headers: Record<string, string> = {};
    if (offset > 0) {
      headers["Range"] = `bytes=${offset}-`;
      const validator = info?.etag ?? info?.lastModified;
      if (validator) headers["If-Range"] = validator;
    }
    let response: Response;
    try {
      response = await fetch(url, { headers });
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error
        ? `: ${error.cause.message}`
        : "";
      const why = (error instanceof Error ? error.message : String(error)) + cause;
      if (attempt < retries) {
        log(`cannot reach ${url} (${why}); retrying (${attempt + 1}/${retries})`);
        await delay(retryDelayMs);
        continue;
      }
      const hint = options.offlineHint ? `. ${options.offlineHint}` : "";
      throw new DownloadError(`cannot download ${url}: ${why}${hint}`);
    }
    let total: number | undefined;
    let append = false;
    if (response.status === 206 && offset > 0) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
      if (m && Number(m[1]) === offset) {
        append = true;
        total = m[3] === "*" ? undefined : Number(m[3]);
        resumed = true;
      } else {
        await response.body?.cancel();
        log("the server answered the resume request with another range; starting over");
        await Deno.remove(part).catch(() => {});
        continue;
      }
    } else if (response.status === 416 && offset > 0) {
      // Nothing left to fetch: the partial file may be complete already; the checksum decides.
      await response.body?.cancel();
      total = offset;
      append = true;
      resumed = true;
    } else if (response.ok && response.status !== 206) {
      if (offset > 0) log("the server does not resume downloads; starting over");
      offset = 0;
      const length = response.headers.get("content-length");
      total = length === null ? undefined : Number(length);
    } else {
      await response.body?.cancel();
      const message = `${url} answered HTTP ${response.status} ${response.statusText}`.trim();
      if (response.status >= 500 && attempt < retries) {
        log(`${message}; retrying (${attempt + 1}/${retries})`);
        await delay(retryDelayMs);
        continue;
      }
      throw new DownloadError(message);
    }
    if (!append) {
      const next: PartInfo = {
        url,
        etag: response.headers.get("etag") ?? undefined,
        lastModified: response.headers.get("last-modified") ?? undefined,
      };
      await Deno.writeTextFile(infoPath, JSON.stringify(next));
    }
    let received = offset;
    let failure: string | undefined;
    if (response.status !== 416) {
      if (progress) progress.start(total, offset);
      const out = await Deno.open(
        part,
        append ? { append: true, create: true } : { write: true, create: true, truncate: true },
      );
      try {
        if (!response.body) throw new Error("empty response");
        for await (const chunk of response.body) {
          let bytes = chunk;
          while (bytes.length > 0) bytes = bytes.subarray(await out.write(bytes));
          received += chunk.length;
          transferred += chunk.length;
          if (progress) progress.update(received);
        }
      } catch (error) {
        failure = error instanceof Error ? error.message : String(error);
      } finally {
        out.close();
        if (progress) progress.end();
      }
      if (!failure && total !== undefined && received < total) {
        failure = `the connection closed after ${received} of ${total} bytes`;
      }
    }
    if (failure) {
      const where = total
        ? `${formatBytes(received)} of ${formatBytes(total)}`
        : formatBytes(received);
      if (attempt < retries) {
        log(`download interrupted at ${where} (${failure}); resuming (${attempt + 1}/${retries})`);
        await delay(retryDelayMs);
        continue;
      }
      throw new DownloadError(
        `download interrupted at ${where} (${failure}); ${part} is kept: run ` +
          `${options.command ?? "it"} again to resume`,
      );
    }
    log(`checking the MD5 of ${formatBytes(received)} …`);
    const actual = await md5File(part);
    if (actual !== md5) {
      await Deno.remove(part).catch(() => {});
      await Deno.remove(infoPath).catch(() => {});
      if (resumed && !restartedAfterMismatch) {
        // The resumed part may have come from another version of the file: start over once.
        log(`MD5 mismatch after resuming (${actual}); downloading again from the start`);
        restartedAfterMismatch = true;
        resumed = false;
        continue;
      }
      throw new DownloadError(
        `MD5 mismatch for ${url}: expected ${md5}, got ${actual}. The download was deleted and ` +
          `nothing was installed.`,
      );
    }
    await Deno.rename(part, file);
    await Deno.remove(infoPath).catch(() => {});
    return { bytes: transferred, resumed };
  }
}
