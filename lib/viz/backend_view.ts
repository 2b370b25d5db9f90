/**
 * Selects the tfjs backend for a notebook and shows which one it got, with how many threads, what
 * runs its convolutions and why (an explicit choice, `TCONV_BACKEND`, or detection).
 *
 * @example
 * ```ts
 * import { selectAndShowBackend } from "./backend_view.ts";
 * await selectAndShowBackend("auto"); // "tfjs 4.22.0 on **wasm + oneDNN 2.6.3** (2 threads): …"
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import {
  type BackendPreference,
  nativeKernels,
  type NativePreference,
  startBackend,
} from "../backend/mod.ts";
import {
  type BackendChoice,
  backendThreads,
  chooseBackend,
  probeWebGpu,
} from "../backend/select.ts";
import { showMarkdown } from "./markdown.ts";
import { REPORT_FACTS_MIME } from "../util/report_facts.ts";

/** Options of {@linkcode selectAndShowBackend}. */
export interface SelectAndShowOptions {
  /**
   * Whether the wasm backend's convolutions run on oneDNN (default: `TCONV_NATIVE`, else where
   * it loads).
   */
  native?: NativePreference;
  /**
   * The notebook reads tensors synchronously (`dataSync`, `arraySync`): detection then skips
   * WebGPU, which cannot do that under Deno (see `chooseBackend`).
   */
  synchronousReads?: boolean;
}

/** What {@linkcode selectAndShowBackend} selected. */
export interface ShownBackend extends BackendChoice {
  /** The backend's name as shown, e.g. `"wasm + oneDNN 2.6.3"`. */
  name: string;
  /** The native library running the convolutions, e.g. `"oneDNN 2.6.3"`, or null. */
  native: string | null;
}

/**
 * Chooses a backend from a preference ("auto", "wasm", "cpu", "webgpu"; see `chooseBackend`),
 * initialises and selects it (a side effect on tfjs, for the whole process), displays one line
 * about it (also published as report facts for the report header) and returns the
 * choice, with the threads the backend actually runs on. `options.native` chooses whether the
 * wasm backend's convolutions run on oneDNN (default: `TCONV_NATIVE`, else where it loads); when
 * they do not, the line says why and how to get them. `options.synchronousReads` keeps detection
 * off WebGPU for notebooks that read tensors synchronously.
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
  const { native, synchronousReads } = options;
  const wanted = await chooseBackend(preference as BackendPreference, { synchronousReads });
  await startBackend(wanted.backend, { native });
  // Counted again now that it runs: an already running wasm backend keeps its threads.
  const threads = backendThreads(wanted.backend);
  const status = wanted.backend === "wasm" ? nativeKernels() : undefined;
  const library = status?.library ?? null;
  const name = library === null ? tf.getBackend() : `${tf.getBackend()} + ${library}`;
  const notice = status?.notice === undefined ? "" : `; convolutions on wasm: ${status.notice}`;
  const reason = wanted.reason + notice;
  // The adapter decides WebGPU's numbers; the report cache records it (asked once per process).
  const adapter = wanted.backend === "webgpu" ? (await probeWebGpu()).adapter : undefined;
  await showMarkdown(
    `tfjs ${tf.version.tfjs} on **${name}** (${threads} thread${threads === 1 ? "" : "s"}): ` +
      reason,
    {
      [REPORT_FACTS_MIME]: {
        backend: { backend: name, threads, reason, native: library, adapter },
      },
    },
  );
  return { ...wanted, threads, reason, name, native: library };
}
