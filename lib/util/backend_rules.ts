/**
 * The rules that decide, from outside a run, which backend it computes on: the preferences and
 * their environment variables (`TCONV_BACKEND`, `TCONV_NATIVE`, `TCONV_THREADS`,
 * `TCONV_NATIVE_THREADS`), which one wins, and the thread counts of the wasm backend and of
 * oneDNN's OpenMP pool. lib/backend applies them (`select.ts`, `start.ts`,
 * `wasm/`); lib/notebook's report cache predicts from them, without loading tfjs, whether a run
 * now would compute on something else than a recorded one ({@linkcode predictBackend}). They live
 * here, below both, so that neither restates them.
 *
 * Detection (a WebGPU adapter, whether oneDNN loads) is not a rule: lib/backend does it, and a
 * run's own record stays the authority for it.
 *
 * @example
 * ```ts
 * import { backendWanted, wasmThreadCount } from "./backend_rules.ts";
 * backendWanted("auto", () => "cpu"); // { preference: "cpu", source: "environment" }
 * wasmThreadCount(undefined, 16); // 8
 * nativeThreadCount(undefined, 2); // 2, whatever TCONV_THREADS says
 * ```
 * @module
 */

/** The environment variable read when no explicit backend is given. */
export const BACKEND_ENV_VAR = "TCONV_BACKEND";
/** The environment variable read when no explicit `native` preference is given. */
export const NATIVE_ENV_VAR = "TCONV_NATIVE";
/** Environment variable that sets the wasm backend's thread count (default: every core). */
export const THREADS_ENV_VAR = "TCONV_THREADS";
/**
 * Environment variable that sets the size of oneDNN's OpenMP pool (default: every core), apart
 * from `TCONV_THREADS`: an interactive kernel keeps wasm on one thread (a Stop inside a
 * multi-threaded wasm kernel can lock its pool) while oneDNN, which a Stop cannot interrupt,
 * computes on every core.
 */
export const NATIVE_THREADS_ENV_VAR = "TCONV_NATIVE_THREADS";

/** Every accepted backend preference; `"auto"` means "decide for me". */
export const BACKEND_PREFERENCES = ["auto", "cpu", "wasm", "webgpu"] as const;
/** A backend preference from {@linkcode BACKEND_PREFERENCES}. */
export type BackendPreference = typeof BACKEND_PREFERENCES[number];
/** A backend that can actually be selected. */
export type ConcreteBackend = Exclude<BackendPreference, "auto">;

/** Every accepted preference for the wasm backend's native (oneDNN) convolutions. */
export const NATIVE_PREFERENCES = ["auto", "on", "off"] as const;
/** A native preference from {@linkcode NATIVE_PREFERENCES}. */
export type NativePreference = typeof NATIVE_PREFERENCES[number];

/** Emscripten starts at most this many threads for tfjs-wasm (its pool size). */
export const MAX_WASM_THREADS = 8;

/** Where a backend preference came from. */
export type PreferenceSource = "argument" | "environment" | "auto";

/**
 * `text` (trimmed, any case) as one of `choices`, or a `RangeError` naming `origin` (a parameter
 * or variable name), the valid values and the text given.
 *
 * @example
 * ```ts
 * parsePreference(" WASM ", BACKEND_PREFERENCES, "backend"); // "wasm"
 * parsePreference("tpu", BACKEND_PREFERENCES, "backend");
 * // RangeError: backend must be one of auto, cpu, wasm, webgpu, got "tpu"
 * ```
 */
export function parsePreference<const T extends string>(
  text: string,
  choices: readonly T[],
  origin: string,
): T {
  const normalised = text.trim().toLowerCase();
  if (!(choices as readonly string[]).includes(normalised)) {
    throw new RangeError(
      `${origin} must be one of ${choices.join(", ")}, got ${JSON.stringify(text)}`,
    );
  }
  return normalised as T;
}

/**
 * The backend preference in effect: `preference` (a notebook's `backend` parameter, a flag) unless
 * it is undefined, empty or `"auto"`; then `TCONV_BACKEND` (its value from `env`, read only then)
 * unless unset, empty or `"auto"`; else `"auto"` (detection decides). Unknown names are refused,
 * naming `backend` or the variable.
 *
 * @example
 * ```ts
 * backendWanted("wasm", () => "cpu"); // { preference: "wasm", source: "argument" }
 * backendWanted(undefined, () => undefined); // { preference: "auto", source: "auto" }
 * ```
 */
export function backendWanted(
  preference: string | undefined,
  env: () => string | undefined,
): { preference: BackendPreference; source: PreferenceSource } {
  if (preference !== undefined && preference.trim() !== "") {
    const asked = parsePreference(preference, BACKEND_PREFERENCES, "backend");
    if (asked !== "auto") return { preference: asked, source: "argument" };
  }
  const text = env();
  if (text !== undefined && text.trim() !== "") {
    const fromEnv = parsePreference(text, BACKEND_PREFERENCES, BACKEND_ENV_VAR);
    if (fromEnv !== "auto") return { preference: fromEnv, source: "environment" };
  }
  return { preference: "auto", source: "auto" };
}

/**
 * The native preference in effect: `preference` when it is `"on"` or `"off"`, else
 * `TCONV_NATIVE` (from `env`) unless unset or empty, else `"auto"`. Unknown values are refused,
 * naming `native` or the variable.
 *
 * @example
 * ```ts
 * nativeWanted("auto", () => "off"); // "off"
 * nativeWanted("on", () => "off"); // "on"
 * ```
 */
export function nativeWanted(
  preference: string | undefined,
  env: () => string | undefined,
): NativePreference {
  const asked = preference === undefined
    ? undefined
    : parsePreference(preference, NATIVE_PREFERENCES, "native");
  if (asked === "on" || asked === "off") return asked;
  const text = env();
  if (text === undefined || text.trim() === "") return "auto";
  return parsePreference(text, NATIVE_PREFERENCES, NATIVE_ENV_VAR);
}

/**
 * Threads the wasm backend runs on: `TCONV_THREADS` (its text) when set, an integer from 1 to
 * {@linkcode MAX_WASM_THREADS}; else `cpus` logical cores, at most that many. Anything else in the
 * variable is refused, naming it.
 *
 * @example
 * ```ts
 * wasmThreadCount("2", 16); // 2
 * wasmThreadCount("", 4); // 4
 * wasmThreadCount("many", 4); // RangeError: TCONV_THREADS must be an integer from 1 to 8, got "many"
 * ```
 */
export function wasmThreadCount(text: string | undefined, cpus: number): number {
  return threadCount(text, cpus, THREADS_ENV_VAR);
}

/**
 * Threads of oneDNN's OpenMP pool (the native kernels): `TCONV_NATIVE_THREADS` (its text) when
 * set, an integer from 1 to {@linkcode MAX_WASM_THREADS}; else `cpus` logical cores, at most that
 * many. Independent of `TCONV_THREADS`, which sizes the wasm backend's pool only. Anything else in
 * the variable is refused, naming it.
 *
 * @example
 * ```ts
 * nativeThreadCount(undefined, 2); // 2
 * nativeThreadCount("1", 16); // 1
 * nativeThreadCount("0", 2); // RangeError: TCONV_NATIVE_THREADS must be an integer from 1 to 8, got "0"
 * ```
 */
export function nativeThreadCount(text: string | undefined, cpus: number): number {
  return threadCount(text, cpus, NATIVE_THREADS_ENV_VAR);
}

function threadCount(text: string | undefined, cpus: number, variable: string): number {
  const trimmed = text?.trim();
  if (trimmed) {
    const n = Number(trimmed);
    if (!/^\d+$/.test(trimmed) || n < 1 || n > MAX_WASM_THREADS) {
      throw new RangeError(
        `${variable} must be an integer from 1 to ${MAX_WASM_THREADS}, got ${
          JSON.stringify(trimmed)
        }`,
      );
    }
    return n;
  }
  return Math.max(1, Math.min(MAX_WASM_THREADS, cpus || 1));
}

/** A run's backend as its report records it (lib/notebook/cache.ts's `RecordedBackend`). */
export interface BackendRecord {
  /** As shown, e.g. `"wasm + oneDNN 2.6.3"`, `"webgpu"`, `"cpu"`. */
  name: string;
  /** Threads it computed on (for wasm: the wasm backend's pool). */
  threads?: number;
  /** The native library running the convolutions, e.g. `"oneDNN 2.6.3"`, or null. */
  native?: string | null;
  /**
   * Threads of the native library's pool; absent in records made before it had its own count
   * (it was then `threads`).
   */
  nativeThreads?: number;
}

/** What {@linkcode predictBackend} compares. */
export interface PredictionInputs {
  /** Parameters in effect for the run now (`backend` and `native` are read). */
  parameters: Record<string, unknown>;
  /** `TCONV_*` variables when the recorded run started. */
  before: Record<string, string>;
  /** `TCONV_*` variables now. */
  now: Record<string, string>;
  /** Logical cores now. */
  cpus: number;
}

const CONCRETE: readonly string[] = ["cpu", "wasm", "webgpu"];

/**
 * A rule's answer; where it refuses a value (the run will fail and say why), the variable's own
 * word, so that a change of it still counts as a change.
 */
function ruleOrWord(rule: () => string, variable: string | undefined): string {
  try {
    return rule();
  } catch {
    return variable?.trim().toLowerCase() || "auto";
  }
}

function text(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function backendAsked(parameters: Record<string, unknown>, env: Record<string, string>): string {
  return ruleOrWord(
    () => backendWanted(text(parameters.backend), () => env[BACKEND_ENV_VAR]).preference,
    env[BACKEND_ENV_VAR],
  );
}

function nativeAsked(parameters: Record<string, unknown>, env: Record<string, string>): string {
  return ruleOrWord(
    () => nativeWanted(text(parameters.native), () => env[NATIVE_ENV_VAR]),
    env[NATIVE_ENV_VAR],
  );
}

function shown(name: string, threads: number | undefined): string {
  return threads === undefined ? name : `${name}, ${threads} thread${threads === 1 ? "" : "s"}`;
}

/**
 * Whether a run now would predictably compute on something else than `recorded`, from what
 * decides it outside the run (the `backend` and `native` parameters, the `TCONV_*` variables, the
 * number of cores): `"wasm + oneDNN 2.6.3 → wasm"`, or undefined when it would be the same or
 * only detection can tell.
 *
 * @example
 * ```ts
 * predictBackend({ name: "wasm + oneDNN 2.6.3", native: "oneDNN 2.6.3" }, {
 *   parameters: { native: "auto" },
 *   before: {},
 *   now: { TCONV_NATIVE: "off" },
 *   cpus: 2,
 * }); // "wasm + oneDNN 2.6.3 → wasm"
 * ```
 */
export function predictBackend(
  recorded: BackendRecord,
  inputs: PredictionInputs,
): string | undefined {
  const { parameters, before, now, cpus } = inputs;
  const base = recorded.name.split(" + ")[0].trim();
  const wantedBefore = backendAsked(parameters, before);
  const wantedNow = backendAsked(parameters, now);
  let name: string;
  if (wantedNow === wantedBefore) name = base;
  else if (CONCRETE.includes(wantedNow)) name = wantedNow;
  else return `${recorded.name} → detected anew (${wantedBefore} → ${wantedNow})`;
  if (name === "wasm") {
    const nativeNow = nativeAsked(parameters, now);
    const nativeBefore = nativeAsked(parameters, before);
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
  let threads: number | undefined;
  if (recorded.threads !== undefined) {
    // An invalid TCONV_THREADS fails the run, which then says so: no prediction.
    threads = name.startsWith("wasm")
      ? ruleOrNone(() => wasmThreadCount(now[THREADS_ENV_VAR], cpus))
      : 1;
  }
  const oldThreads = recorded.threads;
  // oneDNN splits its sums by thread, so its pool size changes a run's rounding: a change of it
  // is a change of backend. Records made before it had its own count ran it on `threads`.
  const oldNative = recorded.nativeThreads ?? recorded.threads;
  const nativeNow = recorded.native && name === `wasm + ${recorded.native}` &&
      oldNative !== undefined
    ? ruleOrNone(() => nativeThreadCount(now[NATIVE_THREADS_ENV_VAR], cpus))
    : undefined;
  // Named apart only where the pools differ in size: else "2 → 4 threads" says it for both.
  const together = oldNative === oldThreads && nativeNow === threads;
  const pool = nativeNow !== undefined && nativeNow !== oldNative && !together
    ? `; ${recorded.native} ${oldNative} → ${nativeNow} thread${nativeNow === 1 ? "" : "s"}`
    : "";
  if (name === recorded.name && (threads === undefined || threads === oldThreads)) {
    return pool ? `${recorded.name}${pool}` : undefined;
  }
  return (threads === oldThreads
    ? `${recorded.name} → ${name}`
    : `${shown(recorded.name, oldThreads)} → ${shown(name, threads)}`) + pool;
}

function ruleOrNone(rule: () => number): number | undefined {
  try {
    return rule();
  } catch {
    return undefined;
  }
}
