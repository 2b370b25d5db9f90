/**
 * The `text/html` of notebook outputs in a real headless Chromium, one after another in one page
 * as the classic Notebook shows them (each output's HTML inserted in order, its scripts run): the
 * check that the plotly.js the outputs embed defines `Plotly` and draws every figure, offline;
 * and {@linkcode showInFrontend}, outputs inserted as JupyterLab and VS Code insert them.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { join } from "node:path";
import { openPage, type Page } from "../lib/browser/mod.ts";

/** What the page showed. */
export interface DrawnOutputs {
  /** Figures drawn (`.plotly-graph-div` elements holding plotly's SVG). */
  figures: number;
  /** Trace types the page's `Plotly` knows, sorted. */
  traceTypes: string[];
}

/**
 * Opens `htmls` (outputs' `text/html`) in one page; waits until every figure is drawn; asserts
 * no page error, no console error and no request beyond the page itself.
 */
export async function drawHtmlOutputs(htmls: string[]): Promise<DrawnOutputs> {
  const dir = await Deno.makeTempDir({ prefix: "plotly_page_" });
  try {
    const path = join(dir, "outputs.html");
    await Deno.writeTextFile(
      path,
      `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>\n` +
        htmls.map((h) => `<div class="output">\n${h}\n</div>`).join("\n") + "\n</body></html>\n",
    );
    await using page = await openPage(path);
    await page.waitFor(
      `document.querySelectorAll(".plotly-graph-div").length > 0 &&
        [...document.querySelectorAll(".plotly-graph-div")].every((d) => d.querySelector("svg.main-svg"))`,
      60_000,
    );
    assertEquals(page.pageErrors, []);
    assertEquals(page.consoleErrors, []);
    const requests = page.requests.filter((r) => r.url !== page.url && !r.url.startsWith("data:"));
    assertEquals(requests, [], "the outputs made requests besides their own page");
    assertEquals(page.failedRequests, []);
    return {
      figures: await page.evaluate(`document.querySelectorAll(".plotly-graph-div").length`),
      traceTypes: await page.evaluate(`Object.keys(window.Plotly.PlotSchema.get().traces).sort()`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A blank page (no plotly.js) that shows `bundles`' text/html one after another as JupyterLab
 * and VS Code do: each inserted with innerHTML into its own output element, then, when
 * `trusted`, every script element replaced by a copy so that it runs (untrusted: none runs).
 * The caller closes the page.
 */
export async function showInFrontend(
  bundles: Record<string, unknown>[],
  trusted = true,
): Promise<Page> {
  const dir = await Deno.makeTempDir({ prefix: "explorer_page_" });
  const path = `${dir}/blank.html`;
  await Deno.writeTextFile(
    path,
    `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>`,
  );
  const page = await openPage(path);
  await Deno.remove(dir, { recursive: true });
  // nbformat may hold a text as a list of lines.
  const htmls = bundles.map((b) => [b["text/html"]].flat().join(""));
  await page.evaluate(`(() => {
    for (const html of ${JSON.stringify(htmls)}) {
      const output = document.createElement("div");
      output.className = "output";
      output.innerHTML = html;
      document.body.appendChild(output);
      if (!${trusted}) continue;
      for (const old of output.querySelectorAll("script")) {
        const script = document.createElement("script");
        for (const a of old.attributes) script.setAttribute(a.name, a.value);
        script.textContent = old.textContent;
        old.replaceWith(script);
      }
    }
  })()`);
  return page;
}
