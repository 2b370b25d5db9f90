/**
 * Selects the tfjs backend for a notebook and shows which one it got, with how many threads and
 * why (an explicit choice, `TCONV_BACKEND`, or detection).
 *
 * @example
 * ```ts
 * import { showBackend } from "./backend_view.ts";
 * await showBackend("auto"); // "tfjs 4.22.0 on **wasm** (2 threads): …"
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { type BackendPreference, useBackend } from "../backend/mod.ts";
import { type BackendChoice, backendThreads, chooseBackend } from "../backend/select.ts";
import { BACKEND_MIME, showMarkdown } from "./markdown.ts";

/**
 * Chooses and initialises a backend from a preference ("auto", "wasm", "cpu", "webgpu"), displays
 * one line about it (also published as {@linkcode BACKEND_MIME} for the report header), and
 * returns the choice, with the threads the backend actually runs on.
 *
 * @example
 * ```ts
 * const { backend } = await showBackend("wasm");
 * ```
 */
export async function showBackend(preference: string): Promise<BackendChoice> {
  const wanted = await chooseBackend(preference as BackendPreference);
  await useBackend(wanted.backend);
  // Counted again now that it runs: an already running wasm backend keeps its threads.
  const threads = backendThreads(wanted.backend);
  const choice = { ...wanted, threads };
  await showMarkdown(
    `tfjs ${tf.version.tfjs} on **${tf.getBackend()}** (${threads} thread` +
      `${threads === 1 ? "" : "s"}): ${choice.reason}`,
    { [BACKEND_MIME]: { backend: tf.getBackend(), threads, reason: choice.reason } },
  );
  return choice;
}
