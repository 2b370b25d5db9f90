import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import {
  putBack,
  removeStale,
  replaceFolder,
  restoreSetAside,
  setAsideFolders,
} from "../lib/util/fs.ts";
import { withTempDir } from "./_data_helpers.ts";

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** A folder holding `file.txt` with `text`, last modified at `time` (seconds since 1970). */
async function folderWith(path: string, text: string, time?: number): Promise<void> {
  await Deno.mkdir(path, { recursive: true });
  await Deno.writeTextFile(join(path, "file.txt"), text);
  if (time !== undefined) await Deno.utime(path, time, time);
}

const good = (folder: string) =>
  Deno.readTextFile(join(folder, "file.txt")).then((t) => t.startsWith("good"), () => false);

Deno.test("replaceFolder: a failed swap puts the old folder back and rethrows the swap's error", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "target");
    await folderWith(target, "old");
    // The ready folder is missing, so the rename into place fails after the old one was set aside.
    await assertRejects(
      () => replaceFolder(join(dir, "missing"), target, () => Promise.resolve(false)),
      Deno.errors.NotFound,
    );
    assertEquals(await Deno.readTextFile(join(target, "file.txt")), "old");
    assertEquals(await names(dir), ["target"], "nothing left aside");
  });
});

Deno.test("putBack: when the old folder cannot be put back, the error names both paths and what to do", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "target");
    const aside = join(dir, ".target.old-1234abcd");
    await folderWith(aside, "old");
    await folderWith(target, "in the way"); // a non-empty folder: the rename back fails
    const cause = new Error("the swap failed");
    const error = await assertRejects(() => putBack(aside, target, cause), Error);
    assertStringIncludes(error.message, `cannot put the previous copy ${aside} back as ${target}`);
    assertStringIncludes(error.message, "the swap failed");
    assertStringIncludes(error.message, `rename ${aside} to ${target}`);
    assertEquals(error.cause, cause);
    assertEquals(await Deno.readTextFile(join(aside, "file.txt")), "old", "the old copy is intact");
  });
});

Deno.test("restoreSetAside: puts back the newest good copy an interrupted swap left, before the sweep", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "target");
    // As a crash between the two renames leaves them: target missing, copies set aside (old
    // modification times, so the sweep would take them), the new folder never renamed in.
    await folderWith(join(dir, ".target.old-aaaaaaaa"), "good, older", 1_000);
    await folderWith(join(dir, ".target.old-bbbbbbbb"), "good, newer", 2_000);
    await folderWith(join(dir, ".target.old-cccccccc"), "bad", 3_000);
    await folderWith(join(dir, ".tmp-new"), "half written", 3_000);
    assertEquals(setAsideFolders(target).map((p) => p.slice(dir.length + 1)), [
      ".target.old-cccccccc",
      ".target.old-bbbbbbbb",
      ".target.old-aaaaaaaa",
    ]);
    assertEquals(await restoreSetAside(target, good), join(dir, ".target.old-bbbbbbbb"));
    assertEquals(await Deno.readTextFile(join(target, "file.txt")), "good, newer");
    // With the target in place, nothing more is restored, and the sweep removes the rest.
    assertEquals(await restoreSetAside(target, good), undefined);
    await removeStale(dir, [".target.old-", ".tmp-"], 60_000);
    assertEquals(await names(dir), ["target"]);
    // Nothing good aside: nothing restored.
    await Deno.remove(target, { recursive: true });
    await folderWith(join(dir, ".target.old-dddddddd"), "bad");
    assertEquals(await restoreSetAside(target, good), undefined);
    assertEquals(await names(dir), [".target.old-dddddddd"]);
    assert(setAsideFolders(join(dir, "no-such-dir", "target")).length === 0);
  });
});
