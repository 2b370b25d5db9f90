/**
 * A headless-Chromium page for reports and their checks, driven with puppeteer-core (pinned in
 * deno.json) and the system's Chromium — Debian's `chromium` package; nothing is downloaded. It
 * lives in lib/ because a command line uses it: `deno task run … --pdf` prints reports to PDF
 * with it (lib/notebook/pdf.ts); the tests use it to check that reports draw in a real browser.
 *
 * {@linkcode openPage} starts a fresh Chromium (temporary profile, no background networking),
 * loads a file or URL, and records what happened while the page ran: uncaught exceptions,
 * `console.error` messages and every network request. It evaluates JavaScript, takes screenshots
 * and prints to PDF. Closing the page stops the browser and removes its profile, also when
 * something failed on the way.
 *
 * @example
 * ```ts
 * import { openPage } from "./mod.ts";
 * await using page = await openPage("reports/run.html");
 * console.log(await page.evaluate<string>("document.title"), page.pageErrors);
 * await page.screenshot("/tmp/run.png");
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import puppeteer, { type Browser, type Page as PuppeteerPage } from "puppeteer-core";
import { delay, withTimeout } from "../util/async.ts";

/**
 * Flags every launch adds to puppeteer's own (which already start headless, with a fresh
 * profile and without extensions, default apps or crash reporting).
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** Options for {@linkcode openPage}. */
export interface OpenPageOptions {
  /** Chromium executable; defaults to {@linkcode findChromium}'s answer. */
  executablePath?: string;
  /** Viewport width in CSS pixels (default 1280). */
  width?: number;
  /** Viewport height in CSS pixels (default 900). */
  height?: number;
  /** Time allowed for starting the browser, each protocol command and the page load (ms). */
  timeoutMs?: number;
  /** CSS media type the page is laid out for (default `"screen"`); `"print"` before printing. */
  media?: "screen" | "print";
}

/** A request the page made, and how it ended. */
export interface RequestRecord {
  /** Requested URL (`data:` URLs are shortened to their first 64 characters). */
  url: string;
  /** Resource type as puppeteer reports it (`document`, `image`, `script`, …). */
  type: string;
  /** Error text of a failed request, e.g. `net::ERR_NAME_NOT_RESOLVED`. */
  error?: string;
}

/** Options for {@linkcode Page.screenshot}. */
export interface ScreenshotOptions {
  /** Capture the whole document instead of the viewport only (default true). */
  fullPage?: boolean;
}

/** Options for {@linkcode Page.printToPdf}; lengths in inches. */
export interface PrintToPdfOptions {
  /** Paper width (default 8.27, A4). */
  paperWidth?: number;
  /** Paper height (default 11.69, A4). */
  paperHeight?: number;
  /** Margin on every side (default 0.5). */
  margin?: number;
}

/** An open page in a headless Chromium of its own. */
export interface Page {
  /** The URL that was loaded. */
  readonly url: string;
  /** Process id of the page's browser. */
  readonly browserPid: number;
  /** The browser's temporary profile directory (gone once the page is closed). */
  readonly userDataDir: string;
  /** Uncaught exceptions and unhandled promise rejections thrown by the page. */
  readonly pageErrors: string[];
  /** `console.error` messages and errors the browser logged (e.g. failed resource loads). */
  readonly consoleErrors: string[];
  /** Every network request the page made (including `file:` and `data:` ones). */
  readonly requests: RequestRecord[];
  /** Requests that failed, formatted as `"<url>: <error>"`. */
  readonly failedRequests: string[];
  /**
   * Evaluates a JavaScript expression in the page and returns its value (serialized as JSON;
   * promises are awaited). A thrown exception becomes a rejected promise here.
   */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Polls until `expression` is truthy in the page; rejects after `timeoutMs` (default 10 s). */
  waitFor(expression: string, timeoutMs?: number): Promise<void>;
  /** Saves a PNG screenshot to `path`. */
  screenshot(path: string, options?: ScreenshotOptions): Promise<void>;
  /** Prints the page (its `@media print` styles, backgrounds included) and returns the PDF. */
  printToPdf(options?: PrintToPdfOptions): Promise<Uint8Array>;
  /** Closes the browser and removes its temporary profile; safe to call more than once. */
  close(): Promise<void>;
  /** Same as {@linkcode Page.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const CANDIDATES = [
  "/usr/lib/chromium/chromium", // Debian's binary behind the /usr/bin/chromium wrapper script
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome-stable",
  "/usr/bin/google-chrome",
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
];

/**
 * Finds a Chromium executable: `$CHROMIUM_PATH` if set, else the first of the usual install
 * locations that exists (Debian's `/usr/lib/chromium/chromium` is preferred over the
 * `/usr/bin/chromium` wrapper, which adds flags of its own). Returns `undefined` if none exists.
 *
 * @example
 * ```ts
 * import { findChromium } from "./mod.ts";
 * if (findChromium() === undefined) console.log("install chromium: apt-get install -y chromium");
 * ```
 */
export function findChromium(): string | undefined {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("CHROMIUM_PATH");
  } catch {
    // no env permission: fall through to the usual locations
  }
  if (fromEnv) return fromEnv;
  return CANDIDATES.find((path) => existsSync(path));
}

/**
 * Turns a file path (relative to the working directory or absolute) or a URL into a URL.
 *
 * @example
 * ```ts
 * import { toUrl } from "./mod.ts";
 * toUrl("/tmp/a b.html"); // "file:///tmp/a%20b.html"
 * toUrl("https://example.com/"); // unchanged
 * ```
 */
export function toUrl(fileOrUrl: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(fileOrUrl) && !/^[a-z]:[\\/]/i.test(fileOrUrl)) {
    return fileOrUrl;
  }
  return pathToFileURL(resolve(fileOrUrl)).href;
}

/**
 * Starts a headless Chromium, opens `fileOrUrl` in it and waits for the page's load event.
 * The browser runs with {@linkcode CHROMIUM_FLAGS} and a fresh temporary profile; call
 * {@linkcode Page.close} (or use `await using`) to stop it and remove the profile. If opening
 * fails, the browser is stopped and the profile removed before the error is thrown.
 *
 * @example
 * ```ts
 * import { openPage } from "./mod.ts";
 * const page = await openPage("data:text/html,<h1>hi</h1>");
 * try {
 *   console.log(await page.evaluate("document.querySelector('h1').textContent")); // "hi"
 * } finally {
 *   await page.close();
 * }
 * ```
 */
export async function openPage(fileOrUrl: string, options: OpenPageOptions = {}): Promise<Page> {
  const executable = options.executablePath ?? findChromium();
  if (!executable) {
    throw new Error(
      "no Chromium found: install it (apt-get install -y chromium) or set CHROMIUM_PATH",
    );
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  const width = options.width ?? 1280;
  const height = options.height ?? 900;
  const url = toUrl(fileOrUrl);
  const userDataDir = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  let browser: Browser | undefined;
  try {
    browser = await puppeteer.launch({
      executablePath: executable,
      headless: true,
      userDataDir,
      args: [...CHROMIUM_FLAGS, `--window-size=${width},${height}`],
      defaultViewport: { width, height, deviceScaleFactor: 1 },
      timeout: timeoutMs,
      protocolTimeout: timeoutMs,
      // Chromium is stopped by close(); signals reach this process's own handlers.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const [page] = await browser.pages();
    const opened = new ChromiumPage(url, browser, page, userDataDir);
    page.setDefaultTimeout(timeoutMs);
    await page.emulateMediaType(options.media ?? "screen");
    try {
      await page.goto(url, { waitUntil: "load", timeout: timeoutMs });
    } catch (error) {
      throw new Error(`cannot load ${url}: ${(error as Error).message}`);
    }
    return opened;
  } catch (error) {
    await stopBrowser(browser, userDataDir);
    throw error;
  }
}

class ChromiumPage implements Page {
  readonly pageErrors: string[] = [];
  readonly consoleErrors: string[] = [];
  readonly requests: RequestRecord[] = [];
  readonly failedRequests: string[] = [];
  readonly browserPid: number;
  #closed?: Promise<void>;

  constructor(
    readonly url: string,
    private readonly browser: Browser,
    private readonly page: PuppeteerPage,
    readonly userDataDir: string,
  ) {
    this.browserPid = browser.process()?.pid ?? -1;
    const records = new Map<unknown, RequestRecord>();
    page.on("pageerror", (error) => {
      this.pageErrors.push(error instanceof Error ? error.stack ?? error.message : String(error));
    });
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "assert") {
        const where = message.location()?.url;
        const text = message.text();
        this.consoleErrors.push(where && !text.includes(where) ? `${text} (${where})` : text);
      }
    });
    page.on("request", (request) => {
      const full = request.url();
      const record = {
        url: full.startsWith("data:") ? full.slice(0, 64) : full,
        type: request.resourceType(),
      };
      records.set(request, record);
      this.requests.push(record);
    });
    page.on("requestfailed", (request) => {
      const error = request.failure()?.errorText ?? "failed";
      const record = records.get(request);
      if (record) record.error = error;
      this.failedRequests.push(`${record?.url ?? request.url()}: ${error}`);
    });
  }

  evaluate<T = unknown>(expression: string): Promise<T> {
    return this.page.evaluate(expression) as Promise<T>;
  }

  async waitFor(expression: string, timeoutMs = 10_000): Promise<void> {
    try {
      await this.page.waitForFunction(expression, { timeout: timeoutMs, polling: 50 });
    } catch (error) {
      throw new Error(
        `waitFor: ${expression} still false after ${timeoutMs} ms (${(error as Error).message})`,
      );
    }
  }

  async screenshot(path: string, options: ScreenshotOptions = {}): Promise<void> {
    await this.page.screenshot({ path, type: "png", fullPage: options.fullPage ?? true });
  }

  printToPdf(options: PrintToPdfOptions = {}): Promise<Uint8Array> {
    const margin = `${options.margin ?? 0.5}in`;
    return this.page.pdf({
      width: `${options.paperWidth ?? 8.27}in`,
      height: `${options.paperHeight ?? 11.69}in`,
      margin: { top: margin, bottom: margin, left: margin, right: margin },
      printBackground: true,
      preferCSSPageSize: false,
    });
  }

  close(): Promise<void> {
    this.#closed ??= stopBrowser(this.browser, this.userDataDir);
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Closes the browser (killing it if it does not exit in time) and removes its profile. */
async function stopBrowser(browser: Browser | undefined, userDataDir: string): Promise<void> {
  if (browser) {
    const process = browser.process();
    try {
      await withTimeout(browser.close().catch(() => {}), 5000, undefined);
    } catch {
      // the browser may already be gone
    }
    if (process && process.exitCode === null && process.signalCode === null) {
      process.kill("SIGKILL");
      await new Promise((done) => process.once("exit", done));
    }
  }
  // Helper processes may still be writing into the profile for a moment after the browser exits.
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await Deno.remove(userDataDir, { recursive: true });
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      await delay(100);
    }
  }
}
