/**
 * Environment reads and writes that need no `--allow-env`: without it, a variable reads as unset
 * and a write is skipped, so that the backend and its native kernels start with their defaults.
 *
 * @example
 * ```ts
 * import { envValue } from "./env.ts";
 * envValue("TCONV_NATIVE"); // "off", or undefined when unset or not allowed
 * ```
 * @module
 */

/**
 * The value of environment variable `name` as set, or undefined when it is unset or reading it
 * is not allowed.
 *
 * @example
 * ```ts
 * envValue("OMP_WAIT_POLICY"); // undefined unless set
 * ```
 */
export function envValue(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: as if unset
  }
}

/**
 * Sets environment variable `name` to `value`; does nothing when writing it is not allowed.
 *
 * @example
 * ```ts
 * trySetEnv("OMP_WAIT_POLICY", "PASSIVE");
 * ```
 */
export function trySetEnv(name: string, value: string): void {
  try {
    Deno.env.set(name, value);
  } catch {
    // no --allow-env: the library's default
  }
}
