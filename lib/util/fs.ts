/**
 * Folder helpers: swapping a finished folder into place by renaming, and
 * removing stale temporary folders left by interrupted runs.
 *
 * @example
 * ```ts
 * import { replaceFolder } from "./fs.ts";
 * await replaceFolder("data/.tmp-123", "data/cifar-10-batches-bin", async () => false);
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";

async function exists(path: string): Promise<boolean> {
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
 * Moves the complete folder `ready` to `target` (same file system). When `target` exists it is
 * kept if `targetIsGood()` says so (another process finished first; `ready` is left for the
 * caller to remove), otherwise it is renamed aside, replaced, and only then deleted; if the swap
 * fails the old folder is put back.
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
    await Deno.rename(aside, target).catch(() => {});
    throw error;
  }
  await Deno.remove(aside, { recursive: true }).catch(() => {});
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
