// Every file path that README.md, docs/*.md and data/README.md mention exists: repository paths
// (`lib/…`, `bench/…`, `notebooks/…`, `tests/…`, `docs/…`, in code spans or prose), relative
// markdown links, and bare file names (`select.ts`), which must name some tracked file. Moving a
// file without updating the docs fails here.
import { assert, assertEquals } from "@std/assert";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Folders whose paths the docs name and git tracks (data/, reports/… hold generated files). */
const ROOTS = ["lib", "bench", "notebooks", "tests", "docs"];
/** Bare names that are patterns, not files. */
const PATTERNS = new Set(["_test.ts"]);

function trackedFiles(): string[] {
  const out = new Deno.Command("git", { args: ["ls-files"], cwd: ROOT, stdout: "piped" })
    .outputSync();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
}

/** Whether `path` is the `.ts` form `deno task convert` makes of a tracked notebook. */
function percentFormOfNotebook(path: string): boolean {
  return /^notebooks\/[^/]+\.ts$/.test(path) &&
    existsSync(join(ROOT, path.replace(/\.ts$/, ".ipynb")));
}

/** The paths `markdown` (the file `doc`, relative to the root) names that do not exist. */
function missingPaths(doc: string, markdown: string, tracked: string[]): string[] {
  const names = new Set(tracked.map((p) => p.split("/").pop()));
  const missing: string[] = [];
  const repoPath = new RegExp(`(?<![\\w./@<-]|\\]\\()((?:${ROOTS.join("|")})/[\\w.@/-]*)`, "g");
  for (const m of markdown.matchAll(repoPath)) {
    const path = m[1].replace(/\.+$/, ""); // a sentence's full stop
    if (!existsSync(join(ROOT, path)) && !percentFormOfNotebook(path)) missing.push(path);
  }
  for (const m of markdown.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
    if (/^[a-z]+:/i.test(m[1])) continue; // https:, mailto:
    const path = join(dirname(doc), m[1]);
    if (!existsSync(join(ROOT, path))) missing.push(`${path} (link)`);
  }
  for (const m of markdown.matchAll(/(?<![\w./@<-])([\w-]+\.(?:ts|mjs|py|md|ipynb))(?![\w/])/g)) {
    if (!names.has(m[1]) && !PATTERNS.has(m[1])) missing.push(`${m[1]} (no such file)`);
  }
  return missing;
}

Deno.test("docs: every path README.md, docs/ and data/README.md name exists", async () => {
  const tracked = trackedFiles();
  const docs = [
    "README.md",
    "data/README.md",
    ...tracked.filter((p) => /^docs\/[^/]+\.md$/.test(p)),
  ];
  assert(docs.length >= 8, docs.join(", "));
  const missing: string[] = [];
  for (const doc of docs) {
    const markdown = await Deno.readTextFile(join(ROOT, doc));
    missing.push(...missingPaths(doc, markdown, tracked).map((p) => `${doc}: ${p}`));
  }
  assertEquals(missing, []);
});

Deno.test("docs: the check finds stale paths, links and file names", () => {
  const tracked = trackedFiles();
  const text = "See `lib/notebook/_backend_prediction.ts` and lib/nn/sweep.ts.\n" +
    "`notebooks/01_shapes.ts` is made by convert; notebooks/09_gone.ts is not.\n" +
    "[reports](reports.md) and [backends](backends.md#wasm); `no_such_module.ts`, `select.ts`, " +
    "`lib/viz/` and `deno task run notebooks/01_shapes.ipynb --out reports/`.";
  assertEquals(missingPaths("docs/x.md", text, tracked), [
    "lib/notebook/_backend_prediction.ts",
    "lib/nn/sweep.ts",
    "notebooks/09_gone.ts",
    "no_such_module.ts (no such file)",
  ]);
  assertEquals(missingPaths("README.md", "[x](docs/gone.md)", tracked), ["docs/gone.md (link)"]);
});
