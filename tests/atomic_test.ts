import { assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { writeFileAtomic } from "../lib/util/atomic.ts";

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "atomic_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeFileAtomic: creates parent dirs, writes and replaces text and bytes", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "a", "b", "report.html");
    await writeFileAtomic(path, "first");
    assertEquals(await Deno.readTextFile(path), "first");
    await writeFileAtomic(path, "second, longer content");
    assertEquals(await Deno.readTextFile(path), "second, longer content");
    await writeFileAtomic(path, new Uint8Array([0x68, 0x69]));
    assertEquals(await Deno.readTextFile(path), "hi");
    assertEquals(await listDir(join(dir, "a", "b")), ["report.html"]);
  });
});

Deno.test("writeFileAtomic: writes chunks from an async iterable", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "out.txt");
    async function* chunks() {
      yield "abc";
      yield new TextEncoder().encode("def");
    }
    await writeFileAtomic(path, chunks());
    assertEquals(await Deno.readTextFile(path), "abcdef");
  });
});

Deno.test("writeFileAtomic: a failing producer leaves the old file intact and no temp files", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "report.html");
    await Deno.writeTextFile(path, "old content");
    async function* failing() {
      yield "partial new content that must never be seen";
      throw new Error("producer broke");
    }
    await assertRejects(() => writeFileAtomic(path, failing()), Error, "producer broke");
    assertEquals(await Deno.readTextFile(path), "old content");
    assertEquals(await listDir(dir), ["report.html"]);
  });
});

Deno.test("writeFileAtomic: a directory as target fails cleanly", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "taken");
    await Deno.mkdir(target);
    await Deno.writeTextFile(join(target, "inside.txt"), "keep me");
    await assertRejects(() => writeFileAtomic(target, "new"));
    assertEquals(await listDir(dir), ["taken"]);
    assertEquals(await Deno.readTextFile(join(target, "inside.txt")), "keep me");
  });
});

Deno.test("writeFileAtomic: keeps the mode of the replaced file", {
  ignore: Deno.build.os === "windows",
}, async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "script.sh");
    await Deno.writeTextFile(path, "#!/bin/sh\n");
    await Deno.chmod(path, 0o750);
    await writeFileAtomic(path, "#!/bin/sh\necho hi\n");
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o750);
    await writeFileAtomic(join(dir, "explicit.txt"), "x", { mode: 0o600 });
    assertEquals((await Deno.stat(join(dir, "explicit.txt"))).mode! & 0o777, 0o600);
  });
});

Deno.test("writeFileAtomic: concurrent writers never produce a mixed file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "race.txt");
    const contents = Array.from({ length: 8 }, (_, i) => String(i).repeat(100_000));
    await Promise.all(contents.map((text) => writeFileAtomic(path, text)));
    const final = await Deno.readTextFile(path);
    assertEquals(contents.includes(final), true);
    assertEquals(await listDir(dir), ["race.txt"]);
  });
});
