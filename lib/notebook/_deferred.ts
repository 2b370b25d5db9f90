/**
 * Small promise helpers for the kernel client. Private.
 *
 * @module
 */

/** A promise with its resolve/reject exposed, and a flag telling whether it settled. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  readonly settled: boolean;
}

/** Creates a {@linkcode Deferred}. */
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

/** Resolves after `ms` milliseconds; the timer is cleared when `signal` aborts. */
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

/** Races `promise` against a timer; resolves `fallback` on timeout and always clears the timer. */
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
