/**
 * Selects the tfjs backend for a notebook and shows which one it got, with how many threads and
 * why (an explicit choice, `TCONV_BACKEND`, or detection).
 *
 * @example
 * ```ts
 * import { showBackend } from "./backend_view.ts";
 * await showBackend("auto"); // "tfjs 4.22.0 on **wasm** (1 thread): …"
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { type BackendPreference, useBackend } from "../backend/mod.ts";
import { type BackendChoice, chooseBackend } from "../backend/select.ts";
import { showMarkdown } from "./markdown.ts";

/**
 * Chooses and initialises a backend from a preference ("auto", "wasm", "cpu", "webgpu"), displays
 * one line about it, and returns the choice.
 *
 * @example
 * ```ts
 * const { backend } = await showBackend("wasm");
 * ```
 */
export async function showBackend(preference: string): Promise<BackendChoice> {
  const choice = await chooseBackend(preference as BackendPreference);
  await useBackend(choice.backend);
  await showMarkdown(
    `tfjs ${tf.version.tfjs} on **${tf.getBackend()}** (${choice.threads} thread` +
      `${choice.threads === 1 ? "" : "s"}): ${choice.reason}`,
  );
  return choice;
}
