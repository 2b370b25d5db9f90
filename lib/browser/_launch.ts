// Starts and stops a headless Chromium process (private to lib/browser/mod.ts).
import { delay } from "../util/async.ts";

/** Flags every launch uses, besides the fresh profile directory and the DevTools port. */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** A running Chromium with its DevTools endpoint. */
export interface ChromiumProcess {
  /** `ws://127.0.0.1:<port>/devtools/browser/<id>`. */
  wsUrl: string;
  /** Operating-system process id. */
  pid: number;
  /** The temporary profile directory (removed by `stop`). */
  userDataDir: string;
  /** Stops the process (SIGTERM, then SIGKILL after `graceMs`) and removes its profile. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Launches Chromium with {@linkcode CHROMIUM_FLAGS}, a new temporary `--user-data-dir` and
 * `--remote-debugging-port=0`, and waits for the "DevTools listening on ws://…" line on stderr.
 * On any failure the process is killed and the profile removed before the error is thrown.
 */
export async function launchChromium(
  executable: string,
  options: { timeoutMs: number; width: number; height: number },
): Promise<ChromiumProcess> {
  const userDataDir = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(executable, {
      args: [
        ...CHROMIUM_FLAGS,
        `--user-data-dir=${userDataDir}`,
        "--remote-debugging-port=0",
        `--window-size=${options.width},${options.height}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    await removeDir(userDataDir);
    throw new Error(`cannot start ${executable}: ${error}`);
  }

  let tail = "";
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let announce: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => announce = resolve);
  // Keep reading stderr for the process's whole life so that its pipe never fills up.
  const drained = (async () => {
    const lines = child.stderr.pipeThrough(new TextDecoderStream());
    for await (const text of lines) {
      tail = (tail + text).slice(-8000);
      const match = tail.match(/DevTools listening on (ws:\/\/\S+)/);
      if (match) announce(match[1]);
    }
  })().catch(() => {});

  let stopped: Promise<void> | undefined;
  const stop = (graceMs = 3000): Promise<void> => {
    stopped ??= (async () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
        const timer = setTimeout(() => {
          try {
            if (!exited) child.kill("SIGKILL");
          } catch {
            // already gone
          }
        }, graceMs);
        await status;
        clearTimeout(timer);
      } else {
        await status;
      }
      await drained;
      await removeDir(userDataDir);
    })();
    return stopped;
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const wsUrl = await Promise.race([
      listening,
      status.then((s) => {
        throw new Error(`chromium exited with code ${s.code} before DevTools was ready`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`chromium did not start within ${options.timeoutMs} ms`)),
          options.timeoutMs,
        );
      }),
    ]);
    return { wsUrl, pid: child.pid, userDataDir, stop };
  } catch (error) {
    await stop(500);
    throw new Error(`${(error as Error).message}\n--- chromium stderr ---\n${tail}`);
  } finally {
    clearTimeout(timer);
  }
}

async function removeDir(dir: string): Promise<void> {
  // Helper processes may still be writing into the profile for a moment after the browser exits.
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      await delay(100);
    }
  }
}
