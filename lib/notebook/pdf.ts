/**
 * PDF export of HTML reports (what nbconvert's `webpdf` does for Python users): the report is
 * opened in headless Chromium (Debian's, through lib/browser), laid out for print, and printed
 * with the DevTools protocol's `Page.printToPDF` once every plotly figure has drawn. Figures stay
 * vectors (plotly draws SVG, which Chromium prints as paths and text), and the report's print
 * styles keep a figure from being split across pages.
 *
 * @example
 * ```ts
 * import { printReportPdf } from "./pdf.ts";
 * await printReportPdf("reports/01_shapes.html", "reports/01_shapes.pdf");
 * ```
 * @module
 */
import { openPage } from "../browser/mod.ts";
import { writeFileAtomic } from "../util/atomic.ts";

/** A4 paper in inches, and its margins. */
const PAPER = { width: 8.27, height: 11.69, margin: 0.5 };
/** CSS pixels per inch. */
const CSS_DPI = 96;

/** Options for {@linkcode printReportPdf}. */
export interface PrintReportPdfOptions {
  /** Chromium executable (default: lib/browser's `findChromium`). */
  executablePath?: string;
  /** Time allowed for starting the browser, loading the page and drawing the figures (ms). */
  timeoutMs?: number;
}

/** What {@linkcode printReportPdf} printed. */
export interface PrintReportPdfResult {
  /** Size of the PDF in bytes. */
  bytes: number;
  /** Number of plotly figures that had drawn when the page was printed. */
  figures: number;
}

/**
 * Prints the HTML report `htmlPath` to `pdfPath` (A4), after every plotly figure has drawn. The
 * PDF is written atomically (temporary file, then rename): a failure leaves an older PDF as it
 * was. Throws, writing nothing, when the page reports an error, when a figure fails to draw, or
 * when the browser cannot be started.
 *
 * @example
 * ```ts
 * import { printReportPdf } from "./pdf.ts";
 * const { bytes, figures } = await printReportPdf("/tmp/r/run.html", "/tmp/r/run.pdf");
 * console.log(`${figures} figures, ${bytes} bytes`);
 * ```
 */
export async function printReportPdf(
  htmlPath: string,
  pdfPath: string,
  options: PrintReportPdfOptions = {},
): Promise<PrintReportPdfResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  // The viewport is as wide as the printed page's content, so that figures (which size
  // themselves to their container) are drawn at the width they are printed at.
  await using page = await openPage(htmlPath, {
    executablePath: options.executablePath,
    timeoutMs,
    media: "print",
    width: Math.floor((PAPER.width - 2 * PAPER.margin) * CSS_DPI),
    height: Math.floor((PAPER.height - 2 * PAPER.margin) * CSS_DPI),
  });
  let figures: number;
  try {
    figures = await page.evaluate<number>(
      `Promise.resolve(window.reportDrawn).then((n) => n ?? 0)`,
    );
  } catch (error) {
    throw new Error(
      `${htmlPath}: a figure did not draw, no PDF written: ${(error as Error).message}`,
    );
  }
  if (page.pageErrors.length > 0) {
    throw new Error(
      `${htmlPath}: the page failed, no PDF written:\n${page.pageErrors.join("\n")}`,
    );
  }
  const pdf = await page.printToPdf({
    paperWidth: PAPER.width,
    paperHeight: PAPER.height,
    margin: PAPER.margin,
  });
  await writeFileAtomic(pdfPath, pdf);
  return { bytes: pdf.length, figures };
}
