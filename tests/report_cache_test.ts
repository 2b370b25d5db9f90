import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { fileURLToPath } from "node:url";
import type { Notebook } from "../lib/notebook/nbformat.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LIB = new URL("../lib/", import.meta.url).href;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `deno task report` in the repository root, with this process's environment less its TCONV_*
 * variables, plus `env`.
 */
async function report(args: string[], tmp: string, env: Record<string, string> = {}): Promise<Ran> {
  const base = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !k.startsWith("TCONV_")),
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "report", ...args],
    cwd: ROOT,
    clearEnv: true,
    env: { ...base, TMPDIR: tmp, NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * A temporary folder inside the repository's (ignored) `.tmp/`: a kernel finds the import map of
 * `deno.json` from its notebook's folder upwards.
 */
async function repoTempDir(): Promise<string> {
  await Deno.mkdir(`${ROOT}.tmp`, { recursive: true });
  return await Deno.makeTempDir({ dir: `${ROOT}.tmp`, prefix: "report-cache-" });
}

function notebook(parameters: string, code: string): Notebook {
  const cell = (source: string, tags: string[] = []) => ({
    cell_type: "code" as const,
    id: crypto.randomUUID().slice(0, 8),
    metadata: tags.length ? { tags } : {},
    source,
    outputs: [],
    execution_count: null,
  });
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    cells: [cell(parameters, ["parameters"]), cell(code)],
  };
}

Deno.test("report: TCONV_NATIVE=off after a default report re-runs a notebook that ran on oneDNN, its header says wasm", async () => {
  const tmp = await repoTempDir();
  try {
    await Deno.mkdir(`${tmp}/notebooks`);
    await Deno.writeTextFile(
      `${tmp}/notebooks/backend.ipynb`,
      JSON.stringify(notebook(
        'const native = "auto";',
        `import { selectAndShowBackend } from "${LIB}viz/backend_view.ts";\n` +
          'await selectAndShowBackend("wasm", { native });',
      )),
    );
    const args = ["--notebooks", `${tmp}/notebooks`, "--out", `${tmp}/reports`];
    const header = async () => {
      const html = await Deno.readTextFile(`${tmp}/reports/backend.html`);
      return /<dd class="report-backend">([^<]*)<\/dd>/.exec(html)?.[1];
    };
    const first = await report(args, tmp);
    assertEquals(first.code, 0, first.stdout + first.stderr);
    const withOneDnn = await header();
    assertMatch(withOneDnn ?? "", /^wasm \+ oneDNN \d+\.\d+\.\d+ \(\d+ threads?\)$/);
    const second = await report(args, tmp);
    assertStringIncludes(second.stdout, "Unchanged: ", second.stdout);

    const off = await report(args, tmp, { TCONV_NATIVE: "off" });
    assertEquals(off.code, 0, off.stdout + off.stderr);
    const library = /oneDNN \d+\.\d+\.\d+/.exec(withOneDnn!)![0];
    assertStringIncludes(
      off.stdout,
      `changed: backend (wasm + ${library} → wasm), environment TCONV_NATIVE (unset → "off")`,
    );
    assertMatch((await header()) ?? "", /^wasm \(\d+ threads?\)$/);
    const offAgain = await report(args, tmp, { TCONV_NATIVE: "off" });
    assertStringIncludes(offAgain.stdout, "Unchanged: ", offAgain.stdout);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("report: a notebook that creates its data in data/ while it runs is unchanged on the next report", async () => {
  const tmp = await repoTempDir();
  // In the repository's data/, where notebook 02 creates the built-in set on a fresh clone.
  const dataDir = `${ROOT}data/.report-cache-test-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.mkdir(`${tmp}/notebooks`);
    await Deno.writeTextFile(
      `${tmp}/notebooks/data.ipynb`,
      JSON.stringify(notebook(
        "const trainSize = 20;",
        `import { loadDataset } from "${LIB}data/dataset.ts";\n` +
          `import { showDataset } from "${LIB}viz/samples.ts";\n` +
          `const data = await loadDataset({ dataset: "synthetic", dataDir: ${
            JSON.stringify(dataDir)
          }, ` +
          "synthetic: { trainCount: 50, testCount: 10 }, trainSize, log: false });\n" +
          "await showDataset(data, { perClass: 1 });",
      )),
    );
    const args = ["--notebooks", `${tmp}/notebooks`, "--out", `${tmp}/reports`];
    const first = await report(args, tmp);
    assertEquals(first.code, 0, first.stdout + first.stderr);
    assert((await Deno.stat(dataDir)).isDirectory, "the run created its data");
    const second = await report(args, tmp);
    assertEquals(second.code, 0, second.stdout + second.stderr);
    assertStringIncludes(second.stdout, "1 ok (1 unchanged, not re-run)", second.stdout);

    // What it read changes: it re-runs, saying so.
    await Deno.writeTextFile(`${dataDir}/extra.bin`, "x");
    const third = await report(args, tmp);
    assertMatch(third.stdout, /changed: dataset \(\S*\.report-cache-test-\w+: \d+ → \d+ files\)/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
