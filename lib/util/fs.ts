/**
 * File and folder helpers: sizes and checksums of files, swapping a finished folder into place by
 * renaming, putting back the folder an interrupted swap set aside, and removing stale temporary
 * folders left by interrupted runs.
 *
 * @example
 * ```ts
 * import { replaceFolder } from "./fs.ts";
 * await replaceFolder("data/.tmp-123", "data/cifar-10-batches-bin", async () => false);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";

/**
 * Whether something (a file, folder or link, followed or not) is at `path`; other errors than
 * "not found" (e.g. permission denied) are thrown.
 *
 * @example
 * ```ts
 * import { exists } from "./fs.ts";
 * await exists("/tmp"); // true
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Name prefix of the folder {@linkcode replaceFolder} renames `target` to while swapping: what an
 * interrupted swap leaves behind, for recovery and for {@linkcode removeStale}.
 *
 * @example
 * ```ts
 * asidePrefix("runs/a/checkpoint"); // ".checkpoint.old-"
 * ```
 */
export function asidePrefix(target: string): string {
  return `.${basename(target)}.old-`;
}

/**
 * Size of the file at `path` in bytes, or -1 when there is none.
 *
 * @example
 * ```ts
 * await fileSize("missing.bin"); // -1
 * ```
 */
export async function fileSize(path: string): Promise<number> {
  return await Deno.stat(path).then((i) => i.size, () => -1);
}

/**
 * MD5 of a file in hex, read in 1 MiB pieces.
 *
 * @example
 * ```ts
 * await md5File("data/cifar-10-binary.tar.gz"); // "c32a1d4ab5d03f1284b67883e8d87530"
 * ```
 */
export async function md5File(path: string): Promise<string> {
  const hash = createHash("md5");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/**
 * Moves the complete folder `ready` to `target` (same file system). When `target` exists it is
 * kept if `targetIsGood()` says so (another process finished first; `ready` is left for the
 * caller to remove), otherwise it is renamed aside, replaced, and only then deleted; if the swap
 * fails the old folder is put back ({@linkcode putBack}: if even that fails, the error says where
 * the old folder is). A crash between the renames leaves the old folder aside, for
 * {@linkcode restoreSetAside}.
 *
 * @example
 * ```ts
 * await replaceFolder("data/.tmp-123", "data/cifar-10-batches-bin", async () => false);
 * ```
 */
export async function replaceFolder(
  ready: string,
  target: string,
  targetIsGood: () => Promise<boolean>,
): Promise<void> {
  if (!(await exists(target))) {
    try {
      await Deno.rename(ready, target);
      return;
    } catch (error) {
      // Lost a race with another process creating the target: fall through.
      if (!(await exists(target))) throw error;
    }
  }
  if (await targetIsGood()) return;
  const aside = join(dirname(target), asidePrefix(target) + crypto.randomUUID().slice(0, 8));
  await Deno.rename(target, aside);
  try {
    await Deno.rename(ready, target);
  } catch (error) {
    await putBack(aside, target, error);
    throw error;
  }
  await Deno.remove(aside, { recursive: true }).catch(() => {});
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Renames the folder `aside` (set aside by {@linkcode replaceFolder}) back to `target`. When that
 * fails the error names both paths and says what to do by hand; `after` is the failure that made
 * the put-back necessary, if any (kept in the message and as `cause`).
 *
 * @example
 * ```ts
 * await putBack("data/.cifar-10-batches-bin.old-1a2b3c4d", "data/cifar-10-batches-bin");
 * ```
 */
export async function putBack(aside: string, target: string, after?: unknown): Promise<void> {
  try {
    await Deno.rename(aside, target);
  } catch (error) {
    const why = after === undefined ? "" : ` after a failed swap (${message(after)})`;
    throw new Error(
      `cannot put the previous copy ${aside} back as ${target}${why}: ${message(error)}. ` +
        `The previous copy is intact in ${aside}: if ${target} is missing or incomplete, ` +
        `delete ${target} and rename ${aside} to ${target}; otherwise delete ${aside}.`,
      { cause: after ?? error },
    );
  }
}

/**
 * Folders set aside by interrupted swaps of `target` (named {@linkcode asidePrefix}…), newest
 * first (by modification time).
 *
 * @example
 * ```ts
 * setAsideFolders("runs/a/checkpoint"); // ["runs/a/.checkpoint.old-1a2b3c4d"] after a crash
 * ```
 */
export function setAsideFolders(target: string): string[] {
  const dir = dirname(target);
  const prefix = asidePrefix(target);
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
  return entries.filter((e) => e.isDirectory && e.name.startsWith(prefix))
    .flatMap((e) => {
      const path = join(dir, e.name);
      try {
        return [{ path, time: Deno.statSync(path).mtime?.getTime() ?? 0 }];
      } catch {
        return []; // removed meanwhile (by another run's sweep)
      }
    })
    .sort((a, b) => b.time - a.time)
    .map((e) => e.path);
}

/**
 * Finishes the recovery of a {@linkcode replaceFolder} interrupted between its two renames: when
 * `target` is missing, the newest set-aside folder that `isGood` accepts is renamed back to
 * `target`. Returns the folder put back, or undefined when there was nothing to do. Call it
 * before {@linkcode removeStale} sweeps set-aside folders, so that a good copy is restored
 * rather than deleted.
 *
 * @example
 * ```ts
 * await restoreSetAside("runs/a/checkpoint", (d) => Promise.resolve(existsSync(`${d}/meta.json`)));
 * ```
 */
export async function restoreSetAside(
  target: string,
  isGood: (folder: string) => Promise<boolean>,
): Promise<string | undefined> {
  if (await exists(target)) return undefined;
  for (const aside of setAsideFolders(target)) {
    if (!(await isGood(aside))) continue;
    await putBack(aside, target);
    return aside;
  }
  return undefined;
}

/**
 * Removes leftovers of interrupted runs in `dir`: entries whose names start with one of
 * `prefixes` and that were last modified more than `minAgeMs` ago (so that a run going on in
 * parallel keeps its own).
 */
export async function removeStale(
  dir: string,
  prefixes: string[],
  minAgeMs = 60 * 60 * 1000,
): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return;
  }
  const now = Date.now();
  for (const e of entries) {
    if (!prefixes.some((p) => e.name.startsWith(p))) continue;
    const path = join(dir, e.name);
    const info = await Deno.lstat(path).catch(() => undefined);
    const age = now - (info?.mtime?.getTime() ?? now);
    if (age >= minAgeMs) await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}
