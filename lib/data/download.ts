/**
 * Downloading and installing CIFAR-10 (`deno task data:cifar10`).
 *
 * {@linkcode downloadCifar10} fetches `cifar-10-binary.tar.gz`, checks its MD5 and extracts it into
 * `data/cifar-10-batches-bin/`. It is safe to interrupt at any point:
 *
 * - the download (`downloadResumable` of lib/util/http_download.ts) goes to
 *   `cifar-10-binary.tar.gz.part`; a later run resumes it with an HTTP `Range` request (guarded
 *   by `If-Range`), or starts over when the server does not support ranges; a dropped connection
 *   is resumed automatically a few times;
 * - the file is renamed to `cifar-10-binary.tar.gz` only after its MD5 matched; a mismatch
 *   deletes it;
 * - extraction goes to a temporary folder; every batch is decoded and checked, then the record
 *   `VERIFIED.json` is written into that folder, and only then is it renamed to
 *   `cifar-10-batches-bin/`. A folder without that record is never taken for CIFAR-10, and an
 *   existing folder is replaced only by a complete, verified one; a verified copy that a crash
 *   during that swap left set aside is put back by the next run.
 *
 * @example
 * ```ts
 * import { downloadCifar10 } from "./download.ts";
 * const result = await downloadCifar10({ dataDir: "data" });
 * result.status; // "installed", or "present" when it was already there
 * ```
 * @module
 */
import { join } from "node:path";
import { readTarFile } from "./_tar.ts";
import {
  asidePrefix,
  fileSize,
  md5File,
  removeStale,
  replaceFolder,
  restoreSetAside,
} from "../util/fs.ts";
import { DownloadError, downloadResumable } from "../util/http_download.ts";
import { ProgressBar, type ProgressSink } from "../util/progress.ts";
import {
  CIFAR10_FILES,
  CIFAR10_FOLDER,
  DataError,
  DEFAULT_DATA_DIR,
  readCifarBinary,
} from "./cifar10.ts";

export type { ProgressSink };
export { DownloadError, md5File };

/** Official download address of the CIFAR-10 binary version. */
export const CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/** Published MD5 of `cifar-10-binary.tar.gz`. */
export const CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530";
/** File name of the archive. */
export const CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz";
/** Record written into `cifar-10-batches-bin/` after verification and extraction. */
export const CIFAR10_MARKER = "VERIFIED.json";
/** The command that installs CIFAR-10, for messages. */
export const CIFAR10_COMMAND = "deno task data:cifar10";

/** Temporary folders older than this are leftovers of interrupted runs (extraction takes seconds). */
const STALE_MS = 10 * 60 * 1000;

/** Contents of `VERIFIED.json`. */
export interface VerifiedRecord {
  /** Always "CIFAR-10". */
  dataset: string;
  /** MD5 of the archive the folder was extracted from. */
  md5: string;
  /** Where the archive came from (URL or local path). */
  source: string;
  /** Size in bytes of every extracted file. */
  files: Record<string, number>;
  /** Number of training and test images. */
  images: { train: number; test: number };
  /** When it was verified (ISO 8601). */
  verifiedAt: string;
}

/** What {@linkcode cifar10Status} finds. */
export interface Cifar10Status {
  /** True when the folder holds a verified, complete copy. */
  ready: boolean;
  /** The folder `dataDir/cifar-10-batches-bin`. */
  folder: string;
  /** Why it is not ready (or "verified"). */
  reason: string;
  /** The verification record, when ready. */
  record?: VerifiedRecord;
}

/**
 * Checks whether `dataDir/cifar-10-batches-bin/` holds CIFAR-10 installed by
 * {@linkcode downloadCifar10}: the verification record exists (optionally for the archive with
 * checksum `md5`) and every file still has its recorded size. Cheap: it reads no pixel data.
 *
 * @example
 * ```ts
 * const status = await cifar10Status("data");
 * if (!status.ready) console.log(status.reason);
 * ```
 */
export async function cifar10Status(
  dataDir: string = DEFAULT_DATA_DIR,
  md5?: string,
): Promise<Cifar10Status> {
  return await folderStatus(join(dataDir, CIFAR10_FOLDER), md5);
}

/** {@linkcode cifar10Status} of the folder itself (also of a copy set aside under another name). */
async function folderStatus(folder: string, md5?: string): Promise<Cifar10Status> {
  const isDir = await Deno.stat(folder).then((i) => i.isDirectory, () => false);
  if (!isDir) return { ready: false, folder, reason: `${folder} does not exist` };
  let record: VerifiedRecord;
  try {
    record = JSON.parse(await Deno.readTextFile(join(folder, CIFAR10_MARKER)));
  } catch {
    return {
      ready: false,
      folder,
      reason: `${folder} has no ${CIFAR10_MARKER}: it was not installed and verified by ` +
        CIFAR10_COMMAND,
    };
  }
  if (md5 !== undefined && record.md5?.toLowerCase() !== md5.toLowerCase()) {
    return {
      ready: false,
      folder,
      reason: `${folder} was verified against MD5 ${record.md5}, not ${md5.toLowerCase()}`,
    };
  }
  for (const name of CIFAR10_FILES) {
    const expected = record.files?.[name];
    const actual = await fileSize(join(folder, name));
    if (expected === undefined || actual !== expected) {
      return {
        ready: false,
        folder,
        reason: actual < 0
          ? `${join(folder, name)} is missing`
          : `${join(folder, name)} has ${actual} bytes, the verified copy had ${expected}`,
      };
    }
  }
  return { ready: true, folder, reason: "verified", record };
}

/**
 * Puts back the verified copy that an install interrupted while swapping folders left set aside
 * (`dataDir/.cifar-10-batches-bin.old-…`) when `cifar-10-batches-bin/` itself is missing. Returns
 * the folder put back, or undefined. {@linkcode downloadCifar10} and `loadDataset` call it first.
 *
 * @example
 * ```ts
 * const restored = await restoreCifar10("data");
 * if (restored) console.log(`put back ${restored}`);
 * ```
 */
export async function restoreCifar10(
  dataDir: string = DEFAULT_DATA_DIR,
): Promise<string | undefined> {
  const target = join(dataDir, CIFAR10_FOLDER);
  return await restoreSetAside(target, async (folder) => (await folderStatus(folder)).ready);
}

/** Options of {@linkcode downloadCifar10}. */
export interface DownloadOptions {
  /** Where to download from (default {@linkcode CIFAR10_URL}). */
  url?: string;
  /** Expected MD5 of the archive (default {@linkcode CIFAR10_MD5}). */
  md5?: string;
  /** Data folder (default the project's `data/`). */
  dataDir?: string;
  /** Install from this local archive instead of downloading (it is verified all the same). */
  archive?: string;
  /** Keep the verified archive next to the folder after extraction (default false). */
  keepArchive?: boolean;
  /** How often a dropped connection is resumed within one run (default 3). */
  retries?: number;
  /** Pause before a retry in milliseconds (default 2000). */
  retryDelayMs?: number;
  /** Receives status lines (default `console.log`). */
  log?: (line: string) => void;
  /** Download progress (default a bar on stderr, in place on a terminal); false for none. */
  progress?: ProgressSink | false;
}

/** What {@linkcode downloadCifar10} did. */
export interface DownloadResult {
  /** "present": already installed and verified, nothing done; "installed": now installed. */
  status: "present" | "installed";
  /** The dataset folder. */
  folder: string;
  /** MD5 of the installed archive. */
  md5: string;
  /** Bytes transferred in this run. */
  downloadedBytes: number;
  /** True when a download resumed from a partial file. */
  resumed: boolean;
}

function defaultProgress(): ProgressSink {
  const enc = new TextEncoder();
  return new ProgressBar({
    label: CIFAR10_ARCHIVE,
    write: (s) => {
      Deno.stderr.writeSync(enc.encode(s));
    },
    isTerminal: Deno.stderr.isTerminal(),
  });
}

/**
 * Extracts `cifar-10-batches-bin/*` of `archive` into a folder under `tmpRoot`; returns it with
 * the size of every file written.
 */
async function extract(
  archive: string,
  tmpRoot: string,
): Promise<{ folder: string; files: Record<string, number> }> {
  const out = join(tmpRoot, CIFAR10_FOLDER);
  await Deno.mkdir(out, { recursive: true });
  const pattern = new RegExp(`^(?:\\./)?${CIFAR10_FOLDER}/([^/]+)$`);
  const files: Record<string, number> = {};
  for await (
    const entry of readTarFile(archive, { want: (name) => pattern.test(name) })
  ) {
    const base = pattern.exec(entry.name)?.[1];
    if (!entry.data || !base || base === "." || base === ".." || base === CIFAR10_MARKER) continue;
    await Deno.writeFile(join(out, base), entry.data);
    files[base] = entry.data.length;
  }
  const missing = CIFAR10_FILES.filter((f) => !(f in files));
  if (missing.length > 0) {
    throw new DataError(
      `${archive} is not the CIFAR-10 binary archive: it has no ` +
        missing.map((f) => `${CIFAR10_FOLDER}/${f}`).join(", "),
    );
  }
  return { folder: out, files };
}

/**
 * Installs CIFAR-10 into `dataDir/cifar-10-batches-bin/` (see the module doc for what makes it
 * safe to interrupt). Already installed and verified for this MD5: says so and does nothing.
 *
 * @example
 * ```ts
 * await downloadCifar10(); // official URL and MD5, into the project's data/
 * await downloadCifar10({ archive: "/mnt/usb/cifar-10-binary.tar.gz" }); // offline install
 * ```
 */
export async function downloadCifar10(options: DownloadOptions = {}): Promise<DownloadResult> {
  const url = options.url ?? CIFAR10_URL;
  const md5 = (options.md5 ?? CIFAR10_MD5).toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(md5)) {
    throw new RangeError(`md5 must be 32 hexadecimal digits, got ${JSON.stringify(options.md5)}`);
  }
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  const log = options.log ?? ((line: string) => console.log(line));
  // Before the sweep below, which would delete it.
  const restored = await restoreCifar10(dataDir);
  if (restored) log(`put back the verified copy that an interrupted install left in ${restored}`);
  const status = await cifar10Status(dataDir, md5);
  if (status.ready) {
    log(
      `CIFAR-10 is already present and verified in ${status.folder} (MD5 ${md5}); nothing to do.`,
    );
    return {
      status: "present",
      folder: status.folder,
      md5,
      downloadedBytes: 0,
      resumed: false,
    };
  }
  await Deno.mkdir(dataDir, { recursive: true });
  await removeStale(dataDir, [".cifar10-extract-", asidePrefix(CIFAR10_FOLDER)], STALE_MS);

  let archive: string;
  let fetched = { bytes: 0, resumed: false };
  let source: string;
  if (options.archive) {
    archive = source = options.archive;
    log(`checking the MD5 of ${archive} …`);
    const actual = await md5File(archive).catch((error) => {
      throw new DataError(
        `cannot read ${archive}: ${error instanceof Error ? error.message : error}`,
      );
    });
    if (actual !== md5) {
      throw new DownloadError(
        `MD5 mismatch for ${archive}: expected ${md5}, got ${actual}; nothing was installed`,
      );
    }
  } else {
    source = url;
    archive = join(dataDir, CIFAR10_ARCHIVE);
    const part = `${archive}.part`;
    let verified = false;
    if ((await fileSize(archive)) > 0) {
      // A verified archive from an earlier run whose extraction did not finish.
      verified = (await md5File(archive)) === md5;
      if (!verified) {
        log(`${archive} does not match MD5 ${md5}; downloading again`);
        await Deno.remove(archive);
      }
    }
    if (!verified) {
      log(`downloading ${url}\n  to ${part}`);
      fetched = await downloadResumable(url, archive, {
        md5,
        retries: options.retries ?? 3,
        retryDelayMs: options.retryDelayMs ?? 2000,
        log,
        progress: options.progress ?? defaultProgress(),
        command: CIFAR10_COMMAND,
        offlineHint: `Without network access, copy ${CIFAR10_ARCHIVE} from elsewhere and run ` +
          `${CIFAR10_COMMAND} --file <path>`,
      });
    }
    log(`MD5 ok (${md5})`);
  }

  const target = join(dataDir, CIFAR10_FOLDER);
  log(`extracting into ${target} …`);
  const tmp = await Deno.makeTempDir({ dir: dataDir, prefix: ".cifar10-extract-" });
  let record: VerifiedRecord;
  try {
    const { folder, files } = await extract(archive, tmp);
    const data = await readCifarBinary(folder); // decodes and checks every record
    record = {
      dataset: "CIFAR-10",
      md5,
      source,
      files,
      images: { train: data.train.length, test: data.test.length },
      verifiedAt: new Date().toISOString(),
    };
    await Deno.writeTextFile(join(folder, CIFAR10_MARKER), JSON.stringify(record, null, 2) + "\n");
    await replaceFolder(folder, target, async () => (await cifar10Status(dataDir, md5)).ready);
  } catch (error) {
    // A downloaded archive whose content is bad is useless: do not extract it again next time.
    if (error instanceof DataError && !options.archive) await Deno.remove(archive).catch(() => {});
    throw error;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  if (!options.archive && !options.keepArchive) await Deno.remove(archive).catch(() => {});
  log(
    `CIFAR-10 installed and verified in ${target}: ` +
      `${record.images.train.toLocaleString("en")} training and ` +
      `${record.images.test.toLocaleString("en")} test images.`,
  );
  return {
    status: "installed",
    folder: target,
    md5,
    downloadedBytes: fetched.bytes,
    resumed: fetched.resumed,
  };
}
