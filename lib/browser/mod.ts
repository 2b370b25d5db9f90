/**
 * A minimal headless-Chromium driver, speaking the Chrome DevTools Protocol over Deno's built-in
 * WebSocket (no npm dependency, no browser download). It lives in lib/ because a command line uses
 * it: `deno task run … --pdf` prints reports to PDF with it (lib/notebook/pdf.ts); the tests use it
 * to check that reports draw in a real browser.
 *
 * {@linkcode openPage} starts a fresh Chromium (temporary profile, no background networking),
 * loads a file or URL, and records what went wrong while the page ran: uncaught exceptions,
 * `console.error` messages and network requests. It evaluates JavaScript, takes screenshots and
 * prints to PDF. Closing the page stops the browser and removes its profile, also when something
 * failed on the way.
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
import { CdpConnection, type CdpEvent } from "./_cdp.ts";
import { type ChromiumProcess, launchChromium } from "./_launch.ts";
import { base64ToBytes } from "../util/bytes.ts";
import { delay, withTimeout } from "../util/async.ts";

export { CHROMIUM_FLAGS } from "./_launch.ts";

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
  /** Resource type as Chromium reports it (`Document`, `Image`, `Script`, …). */
  type: string;
  /** Error text of a failed request, e.g. `net::ERR_NAME_NOT_RESOLVED`. */
  error?: string;
}

/** Options for {@linkcode Page.screenshot}. */
export interface ScreenshotOptions {
  /** Capture the whole document instead of the viewport only (default true). */
  fullPage?: boolean;
}

/** Options for {@linkcode Page.printToPdf}; lengths in inches (CDP's `Page.printToPDF`). */
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
  const chromium = await launchChromium(executable, { timeoutMs, width, height });
  let cdp: CdpConnection | undefined;
  try {
    cdp = await CdpConnection.connect(chromium.wsUrl, timeoutMs);
    const page = await ChromiumPage.create(cdp, chromium, url, {
      width,
      height,
      timeoutMs,
      media: options.media ?? "screen",
    });
    return page;
  } catch (error) {
    cdp?.close();
    await chromium.stop(500);
    throw error;
  }
}

class ChromiumPage implements Page {
  readonly pageErrors: string[] = [];
  readonly consoleErrors: string[] = [];
  readonly requests: RequestRecord[] = [];
  readonly failedRequests: string[] = [];
  #byId = new Map<string, RequestRecord>();
  #closed?: Promise<void>;
  readonly browserPid: number;
  readonly userDataDir: string;

  private constructor(
    readonly url: string,
    private readonly cdp: CdpConnection,
    private readonly chromium: ChromiumProcess,
    private readonly sessionId: string,
  ) {
    this.browserPid = chromium.pid;
    this.userDataDir = chromium.userDataDir;
  }

  static async create(
    cdp: CdpConnection,
    chromium: ChromiumProcess,
    url: string,
    options: { width: number; height: number; timeoutMs: number; media: string },
  ): Promise<ChromiumPage> {
    const { targetId } = await cdp.send<{ targetId: string }>("Target.createTarget", {
      url: "about:blank",
    });
    const { sessionId } = await cdp.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new ChromiumPage(url, cdp, chromium, sessionId);
    cdp.on((event) => {
      if (event.sessionId === sessionId) page.#onEvent(event);
    });
    const send = (method: string, params: Record<string, unknown> = {}) =>
      cdp.send(method, params, sessionId);
    await Promise.all([
      send("Page.enable"),
      send("Runtime.enable"),
      send("Log.enable"),
      send("Network.enable"),
      send("Emulation.setDeviceMetricsOverride", {
        width: options.width,
        height: options.height,
        deviceScaleFactor: 1,
        mobile: false,
      }),
      send("Emulation.setEmulatedMedia", { media: options.media }),
    ]);
    const loaded = cdp.waitForEvent(
      (event) => event.sessionId === sessionId && event.method === "Page.loadEventFired",
      options.timeoutMs,
    );
    const navigation = await send("Page.navigate", { url });
    if (typeof navigation.errorText === "string" && navigation.errorText !== "") {
      loaded.catch(() => {});
      throw new Error(`cannot load ${url}: ${navigation.errorText}`);
    }
    await loaded;
    return page;
  }

  async evaluate<T = unknown>(expression: string): Promise<T> {
    const reply = await this.cdp.send<{
      result: { value?: unknown; description?: string; type: string };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    }>("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    }, this.sessionId);
    if (reply.exceptionDetails) {
      const details = reply.exceptionDetails;
      throw new Error(`evaluate failed: ${details.exception?.description ?? details.text}`);
    }
    return reply.result.value as T;
  }

  async waitFor(expression: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) {
        throw new Error(`waitFor: ${expression} still false after ${timeoutMs} ms`);
      }
      await delay(50);
    }
  }

  async screenshot(path: string, options: ScreenshotOptions = {}): Promise<void> {
    const params: Record<string, unknown> = { format: "png" };
    if (options.fullPage ?? true) {
      const metrics = await this.cdp.send<{ cssContentSize: { width: number; height: number } }>(
        "Page.getLayoutMetrics",
        {},
        this.sessionId,
      );
      const { width, height } = metrics.cssContentSize;
      params.captureBeyondViewport = true;
      params.clip = { x: 0, y: 0, width: Math.ceil(width), height: Math.ceil(height), scale: 1 };
    }
    const { data } = await this.cdp.send<{ data: string }>(
      "Page.captureScreenshot",
      params,
      this.sessionId,
    );
    await Deno.writeFile(path, base64ToBytes(data));
  }

  async printToPdf(options: PrintToPdfOptions = {}): Promise<Uint8Array> {
    const margin = options.margin ?? 0.5;
    const { data } = await this.cdp.send<{ data: string }>("Page.printToPDF", {
      paperWidth: options.paperWidth ?? 8.27,
      paperHeight: options.paperHeight ?? 11.69,
      marginTop: margin,
      marginBottom: margin,
      marginLeft: margin,
      marginRight: margin,
      printBackground: true,
      preferCSSPageSize: false,
    }, this.sessionId);
    return base64ToBytes(data);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await withTimeout(this.cdp.send("Browser.close"), 2000, undefined);
      } catch {
        // the browser may already be gone
      }
      this.cdp.close();
      await this.chromium.stop();
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onEvent({ method, params }: CdpEvent): void {
    switch (method) {
      case "Runtime.exceptionThrown": {
        const details = params.exceptionDetails as {
          text?: string;
          exception?: { description?: string; value?: unknown };
        };
        const exception = details.exception;
        this.pageErrors.push(
          exception?.description ?? String(exception?.value ?? details.text ?? "error"),
        );
        break;
      }
      case "Runtime.consoleAPICalled": {
        if (params.type !== "error" && params.type !== "assert") break;
        const args = (params.args as { value?: unknown; description?: string }[]) ?? [];
        this.consoleErrors.push(
          args.map((arg) => arg.description ?? String(arg.value)).join(" "),
        );
        break;
      }
      case "Log.entryAdded": {
        const entry = params.entry as { level: string; text: string; url?: string };
        if (entry.level === "error") {
          this.consoleErrors.push(entry.url ? `${entry.text} (${entry.url})` : entry.text);
        }
        break;
      }
      case "Network.requestWillBeSent": {
        const request = params.request as { url: string };
        const url = request.url.startsWith("data:") ? request.url.slice(0, 64) : request.url;
        const record: RequestRecord = { url, type: String(params.type ?? "Other") };
        this.requests.push(record);
        this.#byId.set(String(params.requestId), record);
        break;
      }
      case "Network.loadingFailed": {
        const record = this.#byId.get(String(params.requestId));
        const error = String(params.errorText ?? "failed");
        if (record) record.error = error;
        this.failedRequests.push(`${record?.url ?? "(unknown request)"}: ${error}`);
        break;
      }
    }
  }
}
