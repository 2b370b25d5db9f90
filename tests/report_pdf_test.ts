// Reports printed to PDF in headless Chromium (lib/notebook/pdf.ts), read back with pdf.js.
import { assert, assertEquals, assertGreater, assertRejects } from "@std/assert";
import { join } from "node:path";
import { getDocument, OPS } from "pdfjs-dist/legacy/build/pdf.mjs";
import { renderReport, type ReportHeader, writeReportAtomic } from "../lib/notebook/html.ts";
import type { Notebook, Output } from "../lib/notebook/nbformat.ts";
import { printReportPdf } from "../lib/notebook/pdf.ts";
import { withTempDir } from "./_data_helpers.ts";
import { figureBundle, heatmap, lineChart } from "../lib/viz/plotly.ts";

const HEADER: ReportHeader = {
  notebook: "figures.ipynb",
  parameters: {},
  dataset: "none",
  date: "2026-11-28T06:00:00Z",
  runSeconds: 1,
  status: "ok",
};

/** A notebook of `n` cells, each drawing one 420-pixel line chart and one small heatmap. */
function figuresNotebook(n: number): Notebook {
  const cells = Array.from({ length: n }, (_, i) => {
    const outputs: Output[] = [
      lineChart([{ name: "loss", y: [3, 2, 1.5, 1.2] }], {
        title: `figure ${i + 1} top`,
        xTitle: `figure ${i + 1} bottom`,
      }),
      heatmap([[1, 2], [3, 4]], { title: `heat ${i + 1}` }),
    ].map((figure) => ({
      output_type: "display_data",
      metadata: {},
      data: figureBundle(figure, { embedPlotly: false }),
    }));
    return {
      cell_type: "code" as const,
      source: `show(figure${i + 1})`,
      metadata: {},
      execution_count: i + 1,
      outputs,
    };
  });
  return { nbformat: 4, nbformat_minor: 5, metadata: {}, cells };
}

interface PdfPage {
  text: string;
  paths: number;
  /** Width and height of every raster image painted on the page. */
  images: [number, number][];
}

async function readPdf(bytes: Uint8Array): Promise<PdfPage[]> {
  const task = getDocument({ data: bytes.slice() });
  const doc = await task.promise;
  try {
    const pages: PdfPage[] = [];
    for (let i = 1; i <= doc.numPages; i++) {
      const page = await doc.getPage(i);
      const ops = await page.getOperatorList();
      const images: [number, number][] = [];
      let paths = 0;
      ops.fnArray.forEach((fn: number, k: number) => {
        if (fn === OPS.constructPath) paths++;
        if (fn === OPS.paintImageXObject || fn === OPS.paintInlineImageXObject) {
          const [, width, height] = ops.argsArray[k] as [unknown, number, number];
          images.push([width, height]);
        }
      });
      const content = await page.getTextContent();
      const text = content.items.map((item) => "str" in item ? item.str : "").join(" ");
      pages.push({ text, paths, images });
    }
    return pages;
  } finally {
    await task.destroy();
  }
}

Deno.test({
  name: "printReportPdf: a valid PDF, figures as vector paths and text, none split across pages",
  fn: () =>
    withTempDir(async (dir) => {
      const html = join(dir, "figures.html");
      await writeReportAtomic(html, renderReport(figuresNotebook(5), HEADER));
      const pdfPath = join(dir, "figures.pdf");
      const { figures, bytes } = await printReportPdf(html, pdfPath);
      assertEquals(figures, 10);
      const pdf = await Deno.readFile(pdfPath);
      assertEquals(bytes, pdf.length);
      assertEquals(new TextDecoder().decode(pdf.subarray(0, 5)), "%PDF-");
      const pages = await readPdf(pdf);
      assertGreater(pages.length, 2, "ten figures take more than two A4 pages");
      for (let i = 1; i <= 5; i++) {
        // Plotly's titles and tick labels are PDF text, and its lines are PDF paths: vectors.
        const top = pages.findIndex((p) => p.text.includes(`figure ${i} top`));
        const bottom = pages.findIndex((p) => p.text.includes(`figure ${i} bottom`));
        assert(top >= 0 && bottom >= 0, `figure ${i}'s titles are not text in the PDF`);
        // A figure starts and ends on the same page: no page break splits it.
        assertEquals(top, bottom, `figure ${i} is split across pages ${top + 1} and ${bottom + 1}`);
      }
      assertGreater(pages.reduce((n, p) => n + p.paths, 0), 100);
      // The only raster images are the heatmaps' cells (2×2 pixels, scaled up by the viewer),
      // not pictures of whole figures.
      const images = pages.flatMap((p) => p.images);
      assertEquals(images.length, 5);
      for (const [width, height] of images) {
        assert(width * height <= 16, `${width}×${height} image`);
      }
    }),
});

Deno.test({
  name: "printReportPdf: written atomically; a failing page leaves the old PDF and no temp file",
  fn: () =>
    withTempDir(async (dir) => {
      const pdfPath = join(dir, "report.pdf");
      await Deno.writeTextFile(pdfPath, "old pdf");
      const broken = join(dir, "broken.html");
      await Deno.writeTextFile(
        broken,
        `<!DOCTYPE html><title>broken</title><script>throw new Error("figure code broke");</script>`,
      );
      await assertRejects(() => printReportPdf(broken, pdfPath), Error, "figure code broke");
      assertEquals(await Deno.readTextFile(pdfPath), "old pdf");
      const failing = join(dir, "failing.html");
      await Deno.writeTextFile(
        failing,
        `<!DOCTYPE html><title>failing</title>
<script>window.reportDrawn = Promise.reject(new Error("Plotly.newPlot failed"));</script>`,
      );
      await assertRejects(() => printReportPdf(failing, pdfPath), Error, "a figure did not draw");
      assertEquals(await Deno.readTextFile(pdfPath), "old pdf");

      const good = join(dir, "good.html");
      await writeReportAtomic(good, renderReport(figuresNotebook(1), HEADER));
      await printReportPdf(good, pdfPath);
      const pdf = await Deno.readFile(pdfPath);
      assertEquals(new TextDecoder().decode(pdf.subarray(0, 5)), "%PDF-");
      const names = [];
      for await (const entry of Deno.readDir(dir)) names.push(entry.name);
      assertEquals(names.sort(), ["broken.html", "failing.html", "good.html", "report.pdf"]);
    }),
});
