/**
 * Predicts, without loading tfjs, whether a notebook run now would compute on another backend
 * than the one its report records, from what decides it outside the run: the notebook's `backend`
 * and `native` parameters, then `TCONV_BACKEND`, `TCONV_NATIVE`, `TCONV_THREADS`, and the number
 * of cores (lib/backend's documented rules, restated here so that the runner stays free of tfjs).
 * Only what the environment decides is predicted; detection (a WebGPU adapter, whether oneDNN
 * loads) is not, and the run's own record stays the authority for it.
 *
 * @module
 */
import type { RecordedBackend } from "./cache.ts";

/** What the prediction compares. */
export interface PredictionInputs {
  /** Parameters in effect for the run now. */
  parameters: Record<string, unknown>;
  /** `TCONV_*` variables when the recorded run started. */
  before: Record<string, string>;
  /** `TCONV_*` variables now. */
  now: Record<string, string>;
  /** Logical cores now. */
  cpus: number;
}

const CONCRETE = ["cpu", "wasm", "webgpu"];
const MAX_WASM_THREADS = 8;

function word(v: unknown): string {
  return typeof v === "string" ? v.trim().toLowerCase() : "";
}

/** The backend asked for: a concrete `backend` parameter, else `TCONV_BACKEND`, else "auto". */
function backendWanted(parameters: Record<string, unknown>, env: Record<string, string>): string {
  const p = word(parameters.backend);
  if (CONCRETE.includes(p)) return p;
  return word(env.TCONV_BACKEND) || "auto";
}

/** Native convolutions asked for: `native` "on"/"off", else `TCONV_NATIVE`, else "auto". */
function nativeWanted(parameters: Record<string, unknown>, env: Record<string, string>): string {
  const p = word(parameters.native);
  if (p === "on" || p === "off") return p;
  return word(env.TCONV_NATIVE) || "auto";
}

function wasmThreads(env: Record<string, string>, cpus: number): number | undefined {
  const text = env.TCONV_THREADS?.trim();
  if (text) return /^\d+$/.test(text) ? Number(text) : undefined; // invalid: the run says so
  return Math.max(1, Math.min(MAX_WASM_THREADS, cpus || 1));
}

function shown(name: string, threads: number | undefined): string {
  return threads === undefined ? name : `${name}, ${threads} thread${threads === 1 ? "" : "s"}`;
}

/**
 * `"wasm + oneDNN 2.6.3 → wasm"` when a run now would predictably compute on something else than
 * `recorded`, else undefined (the same, or not predictable).
 */
export function predictBackend(
  recorded: RecordedBackend,
  inputs: PredictionInputs,
): string | undefined {
  const { parameters, before, now, cpus } = inputs;
  const base = recorded.name.split(" + ")[0].trim();
  const wantedBefore = backendWanted(parameters, before);
  const wantedNow = backendWanted(parameters, now);
  let name: string;
  if (wantedNow === wantedBefore) name = base;
  else if (CONCRETE.includes(wantedNow)) name = wantedNow;
  else return `${recorded.name} → detected anew (${wantedBefore} → ${wantedNow})`;
  if (name === "wasm") {
    const nativeNow = nativeWanted(parameters, now);
    const nativeBefore = nativeWanted(parameters, before);
    if (nativeNow === "off") {
      // Off is certain; a library that loaded before is then not used.
    } else if (base === "wasm" && nativeNow === nativeBefore && recorded.native) {
      name = `wasm + ${recorded.native}`;
    } else if (base === "wasm" && nativeNow === nativeBefore) {
      // Did not load before under the same preference: detection decides, as before.
    } else {
      // On or auto after off (or another backend before): oneDNN where it loads.
      name = recorded.native ? `wasm + ${recorded.native}` : "wasm + oneDNN (where it loads)";
      if (name === recorded.name) return undefined;
    }
  }
  const threads = recorded.threads === undefined
    ? undefined
    : name.startsWith("wasm")
    ? wasmThreads(now, cpus)
    : 1;
  const oldThreads = recorded.threads;
  if (name === recorded.name && (threads === undefined || threads === oldThreads)) return undefined;
  return threads === oldThreads
    ? `${recorded.name} → ${name}`
    : `${shown(recorded.name, oldThreads)} → ${shown(name, threads)}`;
}
