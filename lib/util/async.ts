/**
 * Small promise helpers: a deferred promise, a cancellable delay, and a timeout race that always
 * clears its timer. Used by the kernel client, the browser client and the downloader.
 *
 * @example
 * ```ts
 * import { delay, withTimeout } from "./async.ts";
 * await delay(10);
 * await withTimeout(new Promise(() => {}), 10, "timed out"); // "timed out"
 * ```
 * @module
 */

/** A promise with its resolve/reject exposed, and a flag telling whether it settled. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  readonly settled: boolean;
}

/**
 * Creates a {@linkcode Deferred}.
 *
 * @example
 * ```ts
 * const d = deferred<number>();
 * d.resolve(1);
 * await d.promise; // 1
 * ```
 */
export function deferred<T>(): Deferred<T> {
  let settled = false;
  let res!: (value: T) => void;
  let rej!: (reason: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    res = resolve;
    rej = reject;
  });
  return {
    promise,
    resolve(value) {
      if (settled) return;
      settled = true;
      res(value);
    },
    reject(reason) {
      if (settled) return;
      settled = true;
      rej(reason);
    },
    get settled() {
      return settled;
    },
  };
}

/**
 * Resolves after `ms` milliseconds; the timer is cleared when `signal` aborts.
 *
 * @example
 * ```ts
 * await delay(50);
 * ```
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const id = setTimeout(done, ms);
    function done() {
      clearTimeout(id);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Races `promise` against a timer; resolves `fallback` on timeout and always clears the timer.
 *
 * @example
 * ```ts
 * await withTimeout(fetchSomething(), 2000, undefined);
 * ```
 */
export async function withTimeout<T, F>(
  promise: Promise<T>,
  ms: number,
  fallback: F,
): Promise<T | F> {
  let id: ReturnType<typeof setTimeout> | undefined;
  const timer = new Promise<F>((resolve) => {
    id = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, timer]);
  } finally {
    clearTimeout(id);
  }
}
