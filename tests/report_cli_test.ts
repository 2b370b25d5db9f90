// The report flags of the command line: `--no-input` and `--pdf`, on the real Deno kernel.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { fileURLToPath } from "node:url";
import { parseCliArgs } from "../lib/notebook/cli.ts";
import { FIXTURES, pgrep } from "./_notebook_helpers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("cli: --no-input and --pdf are parsed for run and report", () => {
  const run = parseCliArgs(["run", "a.ipynb", "--no-input", "--pdf"]);
  assertEquals([run.noInput, run.pdf], [true, true]);
  const report = parseCliArgs(["report", "--pdf"]);
  assertEquals([report.noInput ?? false, report.pdf], [false, true]);
  const plain = parseCliArgs(["run", "a.ipynb"]);
  assertEquals([plain.noInput ?? false, plain.pdf ?? false], [false, false]);
});

Deno.test("cli: run --no-input --pdf writes a code-free report and its PDF", async () => {
  const tmp = await Deno.makeTempDir();
  const out = `${tmp}/out`;
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["task", "run", `${FIXTURES}small.ipynb`, "--no-input", "--pdf", "--out", out],
      cwd: ROOT,
      env: { TMPDIR: tmp, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const log = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assertEquals(r.code, 0, log);
    assertStringIncludes(log, `${out}/small.pdf`);
    const html = await Deno.readTextFile(`${out}/small.html`);
    // outputs stay, code goes: not the source, not the input prompts
    assertStringIncludes(html, "epochs=1 dataset=tiny");
    assertStringIncludes(html, "<p>epochs: 1</p>");
    assert(!html.includes("console.log"), "code left in the --no-input report");
    assert(!html.includes("const epochs"), "code left in the --no-input report");
    assert(!html.includes("In ["), "input prompts left in the --no-input report");
    const pdf = await Deno.readFile(`${out}/small.pdf`);
    assertEquals(new TextDecoder().decode(pdf.subarray(0, 5)), "%PDF-");
    const names = (await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort();
    assertEquals(names, ["small.html", "small.ipynb", "small.pdf"], "temp files left in --out");
    assertEquals(await pgrep(`${tmp}/deno-kernel-`), [], "a kernel process is left");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
