// The live preview (lib/notebook/preview.ts, preview_cli.ts): a real kernel, a real server, a real
// Chromium page that must reload by itself after each edit of the notebook file.
import { assert, assertEquals, assertGreater, assertMatch, assertRejects } from "@std/assert";
import { join } from "node:path";
import { openPage } from "../lib/browser/mod.ts";
import type { Cell, Notebook } from "../lib/notebook/nbformat.ts";
import { notebookToPercent } from "../lib/notebook/percent.ts";
import { Preview } from "../lib/notebook/preview.ts";
import { CellSession } from "../lib/notebook/_preview_session.ts";
import { main } from "../lib/notebook/preview_cli.ts";
import { withTempDir } from "./_data_helpers.ts";
import { childKernels, processRunning } from "./_notebook_helpers.ts";

const code = (source: string, tags?: string[]): Cell => ({
  cell_type: "code",
  source,
  metadata: tags ? { tags } : {},
  outputs: [],
  execution_count: null,
});
const markdown = (source: string): Cell => ({ cell_type: "markdown", source, metadata: {} });

/** Cells 0–4: prose, parameters, a value, prose, a cell that uses the value. */
function notebook(first: string, last: string): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      markdown(`# Preview test\n\n${first}`),
      code("const factor = 2;", ["parameters"]),
      code("const base = 21 * factor;\n`base is ${base}`"),
      markdown("Some prose between the cells."),
      code(last),
    ],
  };
}

/**
 * Writes the notebook the way editors save: a temp file renamed over the old one; a `.ts` path
 * gets the percent form.
 */
async function save(path: string, nb: Notebook): Promise<void> {
  const text = path.endsWith(".ts") ? notebookToPercent(nb) : JSON.stringify(nb, null, 1);
  await Deno.writeTextFile(path + ".tmp", text);
  await Deno.rename(path + ".tmp", path);
}

/** The page's prompts ("In [3]:"), in order. */
const PROMPTS = `[...document.querySelectorAll(".prompt-in")].map((p) => p.textContent.trim())`;

Deno.test({
  name:
    "preview: edits reload the open page; markdown without the kernel, code from the changed cell",
  fn: () =>
    withTempDir(async (dir) => {
      const path = join(dir, "live.ipynb");
      const lib = join(dir, "lib");
      await Deno.mkdir(lib);
      await save(path, notebook("First version alpha.", "`value is ${base + 1}`"));
      const lines: string[] = [];
      const preview = await Preview.start(path, {
        params: ["factor=3"],
        libDir: lib,
        debounceMs: 100,
        log: (l) => lines.push(l),
      });
      let kernelPid: number | undefined;
      try {
        assertMatch(preview.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
        await preview.idle();
        assertEquals(preview.stats.kernelStarts, 1);
        assertEquals(preview.stats.cellsExecuted, 4); // parameters, injected, base, last
        kernelPid = preview.stats.kernelPid;
        assert(kernelPid !== undefined && processRunning(kernelPid), "no kernel running");
        await using page = await openPage(preview.url, { timeoutMs: 20_000 });
        const text = () => page.evaluate<string>("document.body.innerText");
        assert((await text()).includes("value is 64"), await text()); // factor=3 injected
        const prompts = await page.evaluate<string[]>(PROMPTS);
        await page.waitFor("window.previewState && window.previewState.phase === 'idle'");

        await t("(a) markdown edit: the page reloads, the kernel does not run", async () => {
          await page.evaluate("window.notReloaded = true");
          await save(path, notebook("Second version beta.", "`value is ${base + 1}`"));
          await page.waitFor(
            `!window.notReloaded && document.body.innerText.includes("Second version beta.")`,
            20_000,
          );
          assert(!(await text()).includes("alpha"));
          assertEquals(preview.stats.cellsExecuted, 4, "the kernel ran cells for a markdown edit");
          assertEquals(preview.stats.last?.executed, 0);
          assertEquals(await page.evaluate<string[]>(PROMPTS), prompts); // same execution counts
        });

        await t("(b) code edit: only the changed cell runs, in the same kernel", async () => {
          await page.evaluate("window.notReloaded = true");
          // The cell takes a second: long enough to see the banner say what runs.
          const slow = "await new Promise((r) => setTimeout(r, 1000));\n`value is ${base * 100}`";
          await save(path, notebook("Second version beta.", slow));
          await page.waitFor(
            `document.getElementById("preview-banner").textContent.includes("Running cell 6 ` +
              `(code cell 4 of 4)")`,
            20_000,
          );
          assert(await page.evaluate<boolean>("window.notReloaded === true"));
          await page.waitFor(
            `!window.notReloaded && document.body.innerText.includes("value is 6300")`,
            20_000,
          );
          // `base` came from a cell that did not run again: the kernel kept its state.
          assertEquals(preview.stats.last, { ...preview.stats.last!, executed: 1, reused: 3 });
          assertEquals(preview.stats.kernelStarts, 1);
          assertEquals(preview.stats.kernelPid, kernelPid);
          const now = await page.evaluate<string[]>(PROMPTS);
          assertEquals(now.slice(0, 3), prompts.slice(0, 3));
          assert(now[3] !== prompts[3], `the edited cell kept its execution count: ${now}`);
        });

        await t("(c) a failing cell shows its error; the server keeps serving", async () => {
          await page.evaluate("window.notReloaded = true");
          await save(path, notebook("Second version beta.", `throw new Error("boom " + base);`));
          // The banner says the run is on; the page then shows the error.
          await page.waitFor(
            `!window.notReloaded && document.querySelector(".outputs .output-error")`,
            20_000,
          );
          const body = await text();
          assert(body.includes("Error: boom 63"), body);
          assert(!body.includes("value is 6300"), "the old output is still shown");
          const served = await fetch(preview.url);
          assertEquals(served.status, 200);
          assert((await served.text()).includes("boom 63"));
          // The preview goes on after the error: a fix is rendered again.
          await page.evaluate("window.notReloaded = true");
          await save(path, notebook("Second version beta.", "`fixed: ${base - 1}`"));
          await page.waitFor(
            `!window.notReloaded && document.body.innerText.includes("fixed: 62")`,
            20_000,
          );
        });

        await t("an edit during a long run stops it and renders the new version", async () => {
          await page.evaluate("window.notReloaded = true");
          const busy = "const end = Date.now() + 60_000;\nwhile (Date.now() < end) {}\n'never'";
          await save(path, notebook("Second version beta.", busy));
          await page.waitFor(
            `document.getElementById("preview-banner").textContent.includes("Running cell 6 ")`,
            20_000,
          );
          const started = performance.now();
          await save(path, notebook("Second version beta.", "`quick ${base}`"));
          await page.waitFor(
            `!window.notReloaded && document.body.innerText.includes("quick 63")`,
            30_000,
          );
          // Interrupted, not waited for (60 s), and the kernel kept: the busy cell was stoppable.
          assertGreater(30_000, performance.now() - started);
          assertEquals(preview.stats.kernelStarts, 1);
          assertEquals(preview.stats.last?.executed, 1);
          assert(lines.some((l) => l.startsWith("stopping the run")), lines.join("\n"));
        });

        await t("a syntax error keeps the page and shows the problem in the banner", async () => {
          const rendersBefore = preview.stats.renders;
          await page.evaluate("window.notReloaded = true");
          await save(path, notebook("Second version beta.", "const = ;"));
          await page.waitFor(
            `!document.getElementById("preview-banner").hidden && ` +
              `document.getElementById("preview-banner").textContent.includes("syntax error")`,
            20_000,
          );
          assert(await page.evaluate<boolean>("window.notReloaded === true"), "the page reloaded");
          assertEquals(preview.stats.renders, rendersBefore);
        });

        await t("a change in lib/ restarts the kernel and runs every cell", async () => {
          await page.evaluate("window.notReloaded = true");
          await save(path, notebook("Second version beta.", "`fixed: ${base - 1}`"));
          await page.waitFor(
            `!window.notReloaded && window.previewState?.phase === "idle" && ` +
              `document.body.innerText.includes("fixed: 62")`,
            20_000,
          );
          await preview.idle();
          assertEquals(preview.stats.kernelStarts, 1);
          await page.evaluate("window.notReloaded = true");
          await Deno.writeTextFile(join(lib, "helper.ts"), "export const x = 1;\n");
          await page.waitFor(
            `!window.notReloaded && document.body.innerText.includes("fixed: 62")`,
            30_000,
          );
          await preview.idle();
          assertEquals(preview.stats.kernelStarts, 2);
          assertEquals(preview.stats.last?.executed, 4);
          assert(!processRunning(kernelPid!), "the old kernel is still running");
          kernelPid = preview.stats.kernelPid;
        });
        assertEquals(page.pageErrors, []);
        const elsewhere = page.requests.filter((r) => !r.url.startsWith(preview.url));
        assertEquals(elsewhere, [], "the page asked for something besides the preview");
        assertGreater(lines.length, 3);
      } finally {
        await preview.stop();
      }
      // (d) nothing left behind.
      assert(kernelPid !== undefined && !processRunning(kernelPid), "kernel still running");
      assertEquals(await childKernels(), []);
      await assertRejects(() => fetch(preview.url).then((r) => r.body?.cancel()));
    }),
});

/** Runs one step and names it when it fails (Deno's t.step cannot nest inside withTempDir). */
async function t(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    throw new Error(`${name}: ${e instanceof Error ? e.message : e}`, { cause: e });
  }
}

Deno.test({
  name: "preview command: prints the address, serves the report, Ctrl-C leaves no kernel behind",
  fn: () =>
    withTempDir(async (dir) => {
      const path = join(dir, "cli.ipynb");
      await save(path, notebook("From the command line.", "`value is ${base + 1}`"));
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "lib/notebook/preview_cli.ts", path, "-p", "factor=5"],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      const lines: string[] = [];
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      /** Reads stdout until a line matches. */
      const until = async (pattern: RegExp): Promise<RegExpMatchArray> => {
        for (;;) {
          for (const line of lines) {
            const m = line.match(pattern);
            if (m) return m;
          }
          const { value, done } = await reader.read();
          if (done) throw new Error(`no line ${pattern} in ${lines.join("\n")}\n${await stderr}`);
          buffered += value;
          const parts = buffered.split("\n");
          buffered = parts.pop()!;
          lines.push(...parts);
        }
      };
      try {
        const [, url] = await until(/at (http:\/\/127\.0\.0\.1:\d+\/) \(Ctrl-C stops\)/);
        await until(/rendered .* 4 code cells run/);
        const page = await (await fetch(url)).text();
        assert(page.includes("value is 106"), "the report lacks the cell's output");
        assert(page.includes(`new EventSource("/events")`), "no reload script in the page");
        const kernels = await new Deno.Command("pgrep", {
          args: ["-P", String(child.pid), "-f", "jupyter --kernel"],
          stdout: "piped",
        }).output();
        const pids = new TextDecoder().decode(kernels.stdout).split("\n").filter(Boolean)
          .map(Number);
        assertEquals(pids.length, 1, `kernels of the preview: ${pids}`);
        child.kill("SIGINT");
        const status = await child.status;
        assertEquals(status.code, 0, await stderr);
        await until(/SIGINT: stopping/);
        assert(!processRunning(pids[0]), `kernel ${pids[0]} is still running`);
        await assertRejects(() => fetch(url).then((r) => r.body?.cancel()));
      } finally {
        try {
          child.kill("SIGKILL");
        } catch {
          // exited
        }
        await child.status;
        await reader.cancel().catch(() => {});
        await stderr;
      }
    }),
});

Deno.test("preview command: usage, notebook and parameter errors exit 2 before anything starts", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "p.ipynb");
    await save(path, notebook("x", "1"));
    const errors: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args.join(" "));
    try {
      assertEquals(await main([]), 2);
      assertMatch(errors.at(-1)!, /missing the notebook/);
      assertEquals(await main([path, "--port", "http"]), 2);
      assertMatch(errors.at(-1)!, /--port expects a port number .* got "http"/);
      assertEquals(await main([join(dir, "missing.ipynb")]), 2);
      assertMatch(errors.at(-1)!, /notebook not found: .*missing\.ipynb/);
      assertEquals(await main([path, "-p", "nope=1"]), 2);
      assertMatch(errors.at(-1)!, /bad parameters: .*nope/);
      assertEquals(await main([path, "-p", "factor=text"]), 2);
      assertMatch(errors.at(-1)!, /factor/);
    } finally {
      console.error = original;
    }
    assertEquals(await childKernels(), []);
  });
});

/** Waits until the preview has published `renders` renders and is idle. */
async function renders(preview: Preview, renders: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (preview.stats.renders < renders) {
    if (Date.now() > deadline) {
      throw new Error(`render ${renders} did not come: ${JSON.stringify(preview.stats)}`);
    }
    await new Promise((done) => setTimeout(done, 25));
  }
  await preview.idle();
}

/** Waits for render `n`, then checks how many code cells it executed and took from the cache. */
async function rendered(preview: Preview, n: number, executed: number, reused: number) {
  await renders(preview, n);
  assertEquals([preview.stats.last?.executed, preview.stats.last?.reused], [executed, reused]);
}

Deno.test("preview: an edit undone comes from the cache; the kernel then runs what it lacks", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "undo.ipynb");
    /** The parameters cell, then two code cells. */
    const version = (base: string, last: string): Notebook => {
      const nb = notebook("Undo.", last);
      nb.cells = [nb.cells[1], code(base), nb.cells[4]];
      return nb;
    };
    const v1 = version("const base = 21 * factor;", "`value is ${base + 1}`");
    await save(path, v1);
    const preview = await Preview.start(path, { libDir: null, debounceMs: 50 });
    try {
      const page = async () => await (await fetch(preview.url)).text();
      await rendered(preview, 1, 3, 0);
      await save(path, version("const base = 1000;", "`value is ${base + 1}`"));
      await rendered(preview, 2, 2, 1);
      assert((await page()).includes("value is 1001"));
      await save(path, v1); // undone: every cell is in the cache, nothing runs
      await rendered(preview, 3, 0, 3);
      assert((await page()).includes("value is 43"));
      // The kernel still holds base = 1000: an edit of the last cell must run base again first.
      await save(path, version("const base = 21 * factor;", "`value is ${base + 2}`"));
      await rendered(preview, 4, 2, 1);
      assert((await page()).includes("value is 44"), "the kernel's stale base was used");
      assertEquals(preview.stats.kernelStarts, 1);
    } finally {
      await preview.stop();
    }
  }));

Deno.test("preview: a percent-format .ts notebook is previewed, and its edits are served", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "live.ts");
    await save(path, notebook("Percent alpha.", "`value is ${base + 1}`"));
    assert((await Deno.readTextFile(path)).includes("// %% [markdown]"), "not the percent form");
    const preview = await Preview.start(path, { libDir: null, debounceMs: 50 });
    try {
      const page = async () => await (await fetch(preview.url)).text();
      await rendered(preview, 1, 3, 0); // parameters, base, last
      let body = await page();
      assert(body.includes("Percent alpha.") && body.includes("value is 43"), body.slice(-2000));

      // A markdown edit of the .ts file: rendered again without the kernel.
      await save(path, notebook("Percent beta.", "`value is ${base + 1}`"));
      await rendered(preview, 2, 0, 3);
      body = await page();
      assert(body.includes("Percent beta.") && !body.includes("Percent alpha."), "markdown edit");
      assert(body.includes("value is 43"));

      // A code edit of the .ts file: only the edited cell runs, in the same kernel.
      await save(path, notebook("Percent beta.", "`value is ${base * 10}`"));
      await rendered(preview, 3, 1, 2);
      assert((await page()).includes("value is 420"), "the code edit is not in the page");
      assertEquals(preview.stats.kernelStarts, 1);
    } finally {
      await preview.stop();
    }
    assertEquals(await childKernels(), []);
  }));

/**
 * A cell whose console output ("late-line", a string its source does not hold: the page shows
 * the source) comes after it returned: it prints when the kernel runs the
 * client's second flush probe (a silent execution that broadcasts a marker, see kernel.ts; the
 * first ends the cell's own execution), i.e. only when the client drains the kernel, as
 * `runNotebook` does after its last cell. A timer cannot make this deterministic: whether it
 * fires before or after the cell's quiet period is luck.
 */
const LATE_CELL = `{
  let probes = 0;
  const broadcast = Deno.jupyter.broadcast;
  Deno.jupyter.broadcast = (...args: Parameters<typeof broadcast>) => {
    if (args[0] === "deno_notebook_runner_flush" && ++probes === 2) console.log(["late", "line"].join("-"));
    return broadcast(...args);
  };
}
["on", "time"].join("-")`;

Deno.test("preview: output that comes after the last cell returned reaches the page and the cache", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "late.ipynb");
    const nb = notebook("Late alpha.", LATE_CELL);
    await save(path, nb);
    const preview = await Preview.start(path, { libDir: null, debounceMs: 50 });
    try {
      const page = async () => await (await fetch(preview.url)).text();
      await rendered(preview, 1, 3, 0);
      let body = await page();
      assert(body.includes("on-time"), body.slice(-2000));
      assert(body.includes("late-line"), "the late output is not in the page");
      // A markdown edit renders from the cache, which must hold the late output as well.
      await save(path, notebook("Late beta.", LATE_CELL));
      await rendered(preview, 2, 0, 3);
      body = await page();
      assert(body.includes("Late beta.") && body.includes("on-time"), body.slice(-2000));
      assert(body.includes("late-line"), "the cache lacks the late output");
    } finally {
      await preview.stop();
    }
  }));

Deno.test("preview: refresh() renders as a save does; a restart is asked for explicitly", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "refresh.ipynb");
    await save(path, notebook("Refresh.", "`value is ${base + 1}`"));
    const preview = await Preview.start(path, { libDir: null, debounceMs: 50 });
    try {
      await rendered(preview, 1, 3, 0);
      const pid = preview.stats.kernelPid;
      preview.refresh(); // nothing changed: nothing to render, the kernel stays
      await new Promise((done) => setTimeout(done, 200));
      await preview.idle();
      assertEquals([preview.stats.renders, preview.stats.kernelStarts], [1, 1]);
      assertEquals(preview.stats.kernelPid, pid);
      await save(path, notebook("Refresh.", "`value is ${base + 2}`"));
      preview.refresh(); // as the save's own event: one render of the changed cell
      await rendered(preview, 2, 1, 2);
      assertEquals(preview.stats.kernelStarts, 1);
      preview.refresh({ restart: true });
      await rendered(preview, 3, 3, 0);
      assertEquals(preview.stats.kernelStarts, 2);
      assert(preview.stats.last?.restarted, "the restart did not restart the kernel");
      // The page's Restart button does the same.
      const answer = await fetch(new URL("restart", preview.url), { method: "POST" });
      assertEquals(await answer.text(), "restarting\n");
      await rendered(preview, 4, 3, 0);
      assertEquals(preview.stats.kernelStarts, 3);
    } finally {
      await preview.stop();
    }
    assertEquals(await childKernels(), []);
  }));

Deno.test("preview session: the output cache is bounded by size, the oldest entries go first", async () => {
  const session = new CellSession({ cwd: Deno.cwd(), cacheLimit: 300_000 });
  /** One code cell that displays 100,000 characters of `fill`. */
  const version = (fill: string): Notebook => ({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      code(
        `await Deno.jupyter.display({ "text/plain": "${fill}".repeat(100_000) }, { raw: true });`,
      ),
    ],
  });
  try {
    const sizes: number[] = [];
    for (const fill of "abcdef") {
      const outcome = await session.render(version(fill), () => {});
      assertEquals(outcome.executed, 1);
      sizes.push(session.cacheSize);
    }
    assert(sizes[0] > 100_000, `a 100,000-character output cached as ${sizes[0]}`);
    assert(Math.max(...sizes) <= 300_000, `cache sizes: ${sizes.join(" ")}`);
    // The newest versions are still cached, the oldest were dropped and run again.
    assertEquals((await session.render(version("f"), () => {})).executed, 0);
    assertEquals((await session.render(version("e"), () => {})).executed, 0);
    assertEquals((await session.render(version("a"), () => {})).executed, 1);
  } finally {
    await session.close();
  }
  assertEquals(await childKernels(), []);
});
