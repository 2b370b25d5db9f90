/**
 * Backend set-up for tfjs.
 *
 * @example
 * ```ts
 * import { tf, useBackend } from "./mod.ts";
 * await useBackend("cpu");
 * tf.getBackend(); // "cpu"
 * ```
 * @module
 */
import { tf } from "./tf.ts";

export { tf };

/** Backends this project can select. */
export const BACKENDS = ["cpu"] as const;

/** A backend name from {@linkcode BACKENDS}. */
export type BackendName = typeof BACKENDS[number];

/**
 * Selects a tfjs backend and waits until it is ready. Unknown names are refused with the list of
 * valid ones.
 *
 * @example
 * ```ts
 * await useBackend("cpu");
 * ```
 */
export async function useBackend(name: BackendName = "cpu"): Promise<BackendName> {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new RangeError(
      `backend must be one of ${BACKENDS.join(", ")}, got ${JSON.stringify(name)}`,
    );
  }
  if (!(await tf.setBackend(name))) throw new Error(`tfjs backend "${name}" failed to initialise`);
  await tf.ready();
  return name;
}
