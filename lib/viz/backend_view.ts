/**
 * Shows which tfjs backend a notebook runs on, with how many threads, what runs its convolutions
 * and why (an explicit choice, `TCONV_BACKEND`, or detection). The choice itself is made by
 * `selectBackend` (lib/backend/start.ts); this module only displays it.
 *
 * @example
 * ```ts
 * import { selectAndShowBackend } from "./backend_view.ts";
 * await selectAndShowBackend("auto"); // "tfjs 4.22.0 on **wasm + oneDNN 2.6.3** (2 threads): …"
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { selectBackend, type SelectBackendOptions, type SelectedBackend } from "../backend/mod.ts";
import { showMarkdown } from "./markdown.ts";
import { REPORT_FACTS_MIME, threadsShown } from "../util/report_facts.ts";

/**
 * Options of {@linkcode selectAndShowBackend}: `native` (`"auto"`, `"on"`, `"off"`) and
 * `synchronousReads`, as `selectBackend` takes them.
 */
export type SelectAndShowOptions = SelectBackendOptions;

/** What {@linkcode selectAndShowBackend} selected, as `selectBackend` describes it. */
export type ShownBackend = SelectedBackend;

/**
 * Chooses and starts a backend with `selectBackend` (a side effect on tfjs, for the whole
 * process), displays one line about it (also published as report facts for the report header)
 * and returns the choice. When the wasm backend's convolutions do not run on oneDNN, the line
 * says why and how to get them.
 *
 * @example
 * ```ts
 * const { backend, name } = await selectAndShowBackend("wasm"); // "wasm", "wasm + oneDNN 2.6.3"
 * await selectAndShowBackend("auto", { synchronousReads: true }); // never WebGPU by detection
 * ```
 */
export async function selectAndShowBackend(
  preference: string,
  options: SelectAndShowOptions = {},
): Promise<ShownBackend> {
  const selected = await selectBackend(preference, options);
  const { name, threads, reason, native, nativeThreads, adapter } = selected;
  await showMarkdown(
    `tfjs ${tf.version.tfjs} on **${name}** (${threadsShown(threads, nativeThreads, native)}): ` +
      reason,
    {
      [REPORT_FACTS_MIME]: {
        backend: { backend: name, threads, reason, native, nativeThreads, adapter },
      },
    },
  );
  return selected;
}
