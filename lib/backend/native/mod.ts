/**
 * Native convolution kernels for the wasm backend: oneDNN (Debian/Ubuntu: `libdnnl2`) computes
 * `Conv2D`, `Conv2DBackpropInput` (also `tf.conv2dTranspose`) and `Conv2DBackpropFilter` on the
 * tensors in tfjs-wasm's heap, through Deno's FFI, with its AVX-512/AVX2 kernels where tfjs-wasm
 * has 128-bit SIMD (see `_conv_kernels.ts`). With them come oneDNN's batch normalization
 * (`batch_norm.ts`, for `BatchNorm2d`), `LeakyRelu`, `Relu` and their gradients, `Add`,
 * `AvgPoolGrad`, `Sum` and `BatchMatMul` (`_eltwise.ts`, `_pooling.ts`, `_gemm.ts`), and the
 * convolution of a list of pieces with its bias and LeakyReLU inside (`conv_pieces.ts`, for the
 * DenseNet's blocks); every other kernel stays tfjs-wasm's.
 *
 * The data-movement kernels `Concat`, `SplitV` and `Slice` (a dense block's concatenations and
 * their gradients) run on oneDNN too (its concatenation primitive, and reorders between strided
 * views of the heap; see `_copy_kernels.ts`); small copies stay JavaScript's. They are exact,
 * and self-checked bit for bit at start-up with the convolutions.
 *
 * `useBackend("wasm")` (../mod.ts) calls {@linkcode startNativeKernels} once: unless
 * **`TCONV_NATIVE=off`**, it loads the library, sizes OpenMP's pool (oneDNN's threads) to
 * **`TCONV_NATIVE_THREADS`** (default every core, at most 8; {@linkcode nativeThreadsWanted}),
 * apart from the wasm backend's `TCONV_THREADS`, installs the kernels and runs a start-up self-check (small convolutions
 * compared with the wasm kernels). When the library is missing, not 2.x or fails the check, the
 * wasm kernels stay and {@linkcode nativeKernels} carries a one-line notice saying how to get it;
 * `TCONV_NATIVE=on` turns that into an error.
 *
 * The two thread pools take turns: tfjs runs one kernel at a time, and a kernel returns only when
 * its pool is done, so oneDNN's OpenMP threads and tfjs-wasm's pthreads never compute at once.
 *
 * @example
 * ```ts
 * import { useBackend } from "../mod.ts";
 * import { nativeKernels } from "./mod.ts";
 * await useBackend("wasm");
 * nativeKernels().library; // "oneDNN 2.6.3", or null with a notice
 * ```
 * @module
 */
import { tf } from "../tf.ts";
import { initialisedWasmBackend, type KernelSwap, swapWasmKernels } from "../kernel_swap.ts";
import { acceptDilations } from "../conv_grad.ts";
import {
  NATIVE_ENV_VAR,
  NATIVE_PREFERENCES,
  NATIVE_THREADS_ENV_VAR,
  type NativePreference,
  nativeThreadCount,
  parsePreference,
} from "../../util/backend_rules.ts";
import { type Dnnl, openDnnl } from "./_dnnl.ts";
import { envValue } from "../../util/env.ts";
import { openMpMaxThreads, setOpenMpThreads } from "./_openmp.ts";
import {
  ConvPlans,
  type FilterFlip,
  type FilterLayout,
  nativeConvKernels,
} from "./_conv_kernels.ts";
// Data movement (Concat, SplitV, Slice) on oneDNN: a separate swap, installed after the
// convolutions' and undone with them.
import { CopyPlans, copySelfCheck, nativeCopyKernels } from "./_copy_kernels.ts";

export { type FilterFlip, type FilterLayout, flipFilter } from "./_conv_kernels.ts";

// --- Native kernels beyond the convolutions (batch normalization…), installed with them. ---
import { nativeBatchNormKernels } from "./_batch_norm.ts";
import { leakyReluGradNative, nativeEltwiseKernels, reluGradNative } from "./_eltwise.ts";
import { nativePoolingKernels } from "./_pooling.ts";
import { nativeGemmKernels } from "./_gemm.ts";
import { nativeConvPiecesKernels } from "./_conv_pieces.ts";
type Kernels = [string, tf.KernelFunc][];
type Grads = [string, (original: tf.GradConfig) => tf.GradConfig][];
/** One family of kernels beyond the convolutions, each with its own swap. */
interface Family {
  name: string;
  /** Makes the kernels (their primitives and memories), once per process. */
  make(d: Dnnl, fallback: (name: string) => tf.KernelFunc): Kernels;
  grads: Grads;
  /** The kernels once made; null when they could not be, with the reason in `failure`. */
  kernels?: Kernels | null;
  failure?: string;
  swap?: KernelSwap;
}
const families: Family[] = [
  { name: "batch normalization", make: (d) => nativeBatchNormKernels(d), grads: [] },
  {
    name: "eltwise",
    make: nativeEltwiseKernels,
    grads: [[tf.LeakyRelu, leakyReluGradNative], [tf.Relu, reluGradNative]],
  },
  { name: "pooling", make: nativePoolingKernels, grads: [] },
  { name: "gemm", make: nativeGemmKernels, grads: [] },
  { name: "convolution pieces", make: (d) => nativeConvPiecesKernels(d), grads: [] },
];
/**
 * Installs the kernels beyond the convolutions. Each family is made once (a later enable reuses
 * its primitives, as the convolutions' plans are reused); a family that cannot be made is left out
 * (its wasm kernels run) and named in {@linkcode NativeStatus.leftOut}.
 */
function installOtherKernels(d: Dnnl): void {
  for (const f of families) {
    if (f.kernels === undefined) {
      const fallback = (name: string) => {
        const config = f.swap?.replaced(name);
        if (config === undefined) throw new Error(`no wasm kernel to fall back to for ${name}`);
        return config.kernelFunc;
      };
      try {
        f.kernels = f.make(d, fallback);
      } catch (e) {
        f.kernels = null;
        f.failure = noticeOf(e);
      }
    }
    if (f.kernels) f.swap ??= swapWasmKernels(f.kernels, f.grads);
  }
}
/** The families that could not be made, with why; empty when all run natively. */
function leftOutFamilies(): string[] {
  return families.filter((f) => f.kernels === null).map((f) => `${f.name}: ${f.failure}`);
}
function uninstallOtherKernels(): void {
  // In the reverse order of installation, so that each swap restores what it replaced.
  for (const f of [...families].reverse()) {
    f.swap?.restore();
    f.swap = undefined;
  }
}
// --- end of the kernels beyond the convolutions ---

// The variable, its values and their parsing are the backend rules' (lib/util), which the report
// cache also reads; re-exported here, where the native kernels are chosen.
export {
  NATIVE_ENV_VAR,
  NATIVE_PREFERENCES,
  type NativePreference,
} from "../../util/backend_rules.ts";

/**
 * Threads oneDNN's OpenMP pool will have: `TCONV_NATIVE_THREADS` when set (an integer from 1 to
 * 8), else every logical core, at most 8 (`nativeThreadCount` in lib/util/backend_rules.ts).
 * Independent of `TCONV_THREADS`: a Stop cannot land inside an FFI call (V8's termination takes
 * effect in JavaScript only), so oneDNN's pool is safe at full size where the wasm pool is not.
 * Throws, naming the variable, for anything else in it.
 *
 * @example
 * ```ts
 * nativeThreadsWanted(); // 2 on a 2-core machine, also with TCONV_THREADS=1
 * ```
 */
export function nativeThreadsWanted(): number {
  const text = envValue(NATIVE_THREADS_ENV_VAR);
  return nativeThreadCount(text, navigator.hardwareConcurrency);
}

/** What runs the convolutions of the wasm backend. */
export interface NativeStatus {
  /** Whether the native kernels are installed. */
  active: boolean;
  /** The library in use, e.g. `"oneDNN 2.6.3"`; null when the wasm kernels run. */
  library: string | null;
  /**
   * Threads of the library's pool (0 when inactive), as OpenMP reports it after sizing
   * (`omp_get_max_threads`).
   */
  threads: number;
  /** Why the native kernels are not in use, in one line; absent when they are. */
  notice?: string;
  /**
   * Kernel families beyond the convolutions (batch normalization, eltwise, pooling, gemm,
   * convolution pieces) that
   * could not be made on this library, each with the reason; their wasm kernels run. Absent when
   * none was left out.
   */
  leftOut?: string[];
}

let dnnl: Dnnl | undefined;
/** Plans by filter layout, so that switching layouts back and forth keeps each one's primitives. */
const plansByLayout = new Map<FilterLayout, ConvPlans>();
let swap: KernelSwap | undefined;
let copyPlans: CopyPlans | undefined;
let copySwap: KernelSwap | undefined;
let status: NativeStatus = { active: false, library: null, threads: 0, notice: "not started" };
let started = false;
/** What {@linkcode startNativeKernels} decided, and from where; undefined until it has. */
let decision: { origin: string; active: boolean } | undefined;

/**
 * The native kernels' state.
 *
 * @example
 * ```ts
 * const { active, library, notice } = nativeKernels();
 * ```
 */
export function nativeKernels(): NativeStatus {
  return { ...status };
}

/**
 * `text` as a native preference (trimmed, any case), or a `RangeError` naming `origin` (a
 * parameter or variable name) and the valid values: where a notebook's `native` parameter and
 * `TCONV_NATIVE` are both read.
 *
 * @example
 * ```ts
 * parseNativePreference(" Off "); // "off"
 * parseNativePreference("maybe"); // RangeError: native must be one of auto, on, off, got "maybe"
 * ```
 */
export function parseNativePreference(text: string, origin = "native"): NativePreference {
  return parsePreference(text, NATIVE_PREFERENCES, origin);
}

/**
 * `TCONV_NATIVE` as a preference (`auto` when unset or empty). Throws naming the variable and the
 * valid values for anything else.
 *
 * @example
 * ```ts
 * nativePreference(); // "auto"
 * ```
 */
export function nativePreference(): NativePreference {
  const text = envValue(NATIVE_ENV_VAR);
  if (!text?.trim()) return "auto";
  return parseNativePreference(text, NATIVE_ENV_VAR);
}

/**
 * Decides once per process, when the wasm backend first starts, whether the native kernels run
 * (see the module doc); later calls return the state. `"on"` or `"off"` wins; `"auto"` or none
 * defers to {@linkcode nativePreference} (`TCONV_NATIVE`), as `"auto"` backends defer to
 * `TCONV_BACKEND`. A later `"on"` or `"off"` that the decision contradicts is an error rather
 * than silently ignored: the kernels cannot change under a running process (restart it).
 *
 * @example
 * ```ts
 * await startWasm();
 * startNativeKernels(nativeThreadsWanted()); // { active: true, library: "oneDNN 2.6.3", threads: 2 }
 * startNativeKernels(2, "off"); // Error: … decided when the wasm backend started …
 * ```
 */
export function startNativeKernels(threads: number, preference?: string): NativeStatus {
  const asked = preference === undefined ? undefined : parseNativePreference(preference);
  if (started) {
    if (decision !== undefined && (asked === "on" || asked === "off")) {
      const active = decision.active;
      if ((asked === "on") !== active) {
        throw new Error(
          `native = "${asked}", but this process decided when the wasm backend started ` +
            `(${decision.origin}): the native kernels are ${active ? "on" : "off"}; restart ` +
            "it (in Jupyter: restart the kernel) to change that",
        );
      }
    }
    return nativeKernels();
  }
  // "auto" defers to the environment, as the backend preference does; an explicit "on" or "off"
  // (e.g. a notebook parameter) wins over it.
  const explicit = asked === "on" || asked === "off";
  const wanted = explicit ? asked : nativePreference();
  // Where the choice came from, for the messages.
  const origin = explicit ? `native = "${wanted}"` : `${NATIVE_ENV_VAR}=${wanted}`;
  started = true;
  if (wanted === "off") {
    status = { active: false, library: null, threads: 0, notice: `native kernels off (${origin})` };
    decision = { origin, active: false };
    return nativeKernels();
  }
  const result = enableNativeKernels(threads);
  decision = { origin, active: result.active };
  if (!result.active && wanted === "on") throw new Error(`${origin}, but ${result.notice}`);
  return result;
}

/** Options of {@linkcode enableNativeKernels}. */
export interface NativeKernelOptions {
  /**
   * Prepares the filter of the stride-1 input gradient (default {@linkcode flipFilter}). Only for
   * tests of the self-check: a variant that gets the flip wrong must leave the wasm kernels.
   */
  flip?: FilterFlip;
  /**
   * The filter layout oneDNN computes on: `"any"` (default, its fastest) or `"hwio"` (tfjs's
   * layout, slower; for `bench/native_conv.ts --hwio`).
   */
  filterLayout?: FilterLayout;
}

/**
 * Loads oneDNN (once), sizes its pool to `threads`, installs the native kernels for the
 * initialised wasm backend and checks them against the kernels they replace (see
 * {@linkcode SELF_CHECK_CASES}). Never throws: a failure leaves the wasm kernels in place and is
 * reported in the returned notice, naming the kernel and case that failed. While the kernels are
 * installed it returns their state unchanged: `options` apply after {@linkcode disableNativeKernels}.
 *
 * @example
 * ```ts
 * const { active, notice } = enableNativeKernels(2);
 * ```
 */
export function enableNativeKernels(
  threads: number,
  options: NativeKernelOptions = {},
): NativeStatus {
  if (swap !== undefined) return nativeKernels();
  const backend = initialisedWasmBackend();
  if (backend === undefined) {
    throw new Error('native kernels need the wasm backend initialised: useBackend("wasm") first');
  }
  const layout = options.filterLayout ?? "any";
  let plans: ConvPlans;
  try {
    dnnl ??= openDnnl();
    plans = plansByLayout.get(layout) ?? new ConvPlans(dnnl, 256, layout);
    plansByLayout.set(layout, plans);
  } catch (e) {
    status = { active: false, library: null, threads: 0, notice: noticeOf(e) };
    return nativeKernels();
  }
  // Before oneDNN's first parallel region (the self-check below), which starts OpenMP's pool.
  setOpenMpThreads(threads);
  const pool = openMpMaxThreads() ?? threads;
  const kernels = nativeConvKernels(plans, (name) => {
    const config = swap?.replaced(name);
    if (config === undefined) throw new Error(`no wasm kernel to fall back to for ${name}`);
    return config.kernelFunc;
  }, { flip: options.flip });
  swap = swapWasmKernels(kernels, []);
  for (const [name, func] of kernels) {
    if (name !== tf.Conv2D) acceptDilations(func);
  }
  // The copy kernels (Concat, SplitV, Slice), falling back to the kernels they replace.
  try {
    copyPlans ??= new CopyPlans(dnnl);
    const copyKernels = nativeCopyKernels(copyPlans, (name) => {
      const config = copySwap?.replaced(name);
      if (config === undefined) throw new Error(`no wasm kernel to fall back to for ${name}`);
      return config.kernelFunc;
    });
    copySwap = swapWasmKernels(copyKernels, []);
  } catch (e) {
    disableNativeKernels();
    status = { active: false, library: null, threads: 0, notice: noticeOf(e) };
    return nativeKernels();
  }
  const library = `oneDNN ${dnnl.version}`;
  installOtherKernels(dnnl);
  try {
    selfCheck(backend, swap);
    copySelfCheck(backend, copySwap);
  } catch (e) {
    disableNativeKernels();
    status = {
      active: false,
      library: null,
      threads: 0,
      notice: `${library} failed its self-check (${noticeOf(e)}); the wasm kernels run`,
    };
    return nativeKernels();
  }
  const leftOut = leftOutFamilies();
  status = { active: true, library, threads: pool, ...(leftOut.length ? { leftOut } : {}) };
  return nativeKernels();
}

/**
 * Puts the wasm kernels back (the native ones stay loaded for a later
 * {@linkcode enableNativeKernels}).
 *
 * @example
 * ```ts
 * disableNativeKernels();
 * nativeKernels().active; // false
 * ```
 */
export function disableNativeKernels(): void {
  started = true;
  copySwap?.restore();
  copySwap = undefined;
  swap?.restore();
  swap = undefined;
  uninstallOtherKernels();
  status = { active: false, library: null, threads: 0, notice: "native kernels switched off" };
}

/**
 * The implementation oneDNN picked for each convolution shape run so far (`DNNL_VERBOSE`'s
 * names), keyed by kind and shape (prefixed `hwio|` for the `filterLayout: "hwio"` plans).
 *
 * @example
 * ```ts
 * [...nativeImplementations().values()]; // ["brg:avx512_core", ...]
 * ```
 */
export function nativeImplementations(): Map<string, string> {
  return new Map(
    [...plansByLayout].flatMap(([layout, p]) =>
      [...p.implementations()].map(([k, v]) => [layout === "any" ? k : `${layout}|${k}`, v])
    ),
  );
}

function noticeOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** One geometry of the start-up self-check. */
export interface SelfCheckCase {
  /** What the case covers, as the notice names it. */
  label: string;
  /** Input shape, NHWC. */
  x: [number, number, number, number];
  /** Filter shape, `[kh, kw, in, out]`. */
  filter: [number, number, number, number];
  strides: number;
  dilations: number;
  pad: "same" | "valid";
}

/**
 * The self-check's geometries, each run through all three kernels: stride 2 (oneDNN's backward
 * primitives), stride 1 (the input gradient, and so `ConvTranspose2d`'s forward pass, on the
 * flipped filter: most of the DenseNet) and dilation 2 (the flipped route with gaps). Odd and
 * non-square sizes, so that a transposed axis or a missing flip changes the result.
 *
 * @example
 * ```ts
 * SELF_CHECK_CASES.map((c) => c.label); // ["stride 2", "stride 1 (flipped filter)", "dilation 2"]
 * ```
 */
export const SELF_CHECK_CASES: readonly SelfCheckCase[] = [
  {
    label: "stride 2",
    x: [2, 7, 6, 3],
    filter: [3, 3, 3, 4],
    strides: 2,
    dilations: 1,
    pad: "same",
  },
  {
    label: "stride 1 (flipped filter)",
    x: [2, 6, 5, 3],
    filter: [3, 2, 3, 4],
    strides: 1,
    dilations: 1,
    pad: "same",
  },
  {
    label: "dilation 2",
    x: [1, 8, 7, 2],
    filter: [3, 3, 2, 3],
    strides: 1,
    dilations: 2,
    pad: "valid",
  },
];

/**
 * Runs each native kernel on every {@linkcode SELF_CHECK_CASES} geometry (random values) and
 * compares it with the kernel it replaced; throws, naming the kernel and the case, on a difference
 * above float32 rounding.
 */
function selfCheck(backend: tf.KernelBackend, kernels: KernelSwap): void {
  const made: tf.TensorInfo[] = [];
  const tensor = (shape: number[], seed: number): tf.TensorInfo => {
    const values = new Float32Array(shape.reduce((a, b) => a * b));
    let s = seed;
    for (let i = 0; i < values.length; i++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      values[i] = s / 1073741824 - 1;
    }
    const info = { dataId: backend.write(values, shape, "float32"), shape, dtype: "float32" };
    made.push(info as tf.TensorInfo);
    return info as tf.TensorInfo;
  };
  try {
    for (const [at, c] of SELF_CHECK_CASES.entries()) {
      const info = tf.backend_util.computeConv2DInfo(
        c.x,
        c.filter,
        c.strides,
        c.dilations,
        c.pad,
      );
      const dyShape = [c.x[0], info.outHeight, info.outWidth, c.filter[3]];
      const x = tensor(c.x, 3 * at + 1), filter = tensor(c.filter, 3 * at + 2);
      const dy = tensor(dyShape, 3 * at + 3);
      const common = {
        strides: [c.strides, c.strides],
        pad: c.pad,
        dataFormat: "NHWC",
        dilations: [c.dilations, c.dilations],
      };
      const runs: [string, tf.NamedTensorInfoMap, tf.NamedAttrMap][] = [
        [tf.Conv2D, { x, filter }, common],
        [tf.Conv2DBackpropInput, { dy, filter }, { ...common, inputShape: c.x }],
        [tf.Conv2DBackpropFilter, { x, dy }, { ...common, filterShape: c.filter }],
      ];
      for (const [name, inputs, attrs] of runs) {
        const run = (func: tf.KernelFunc) => {
          const out = func({ inputs, attrs, backend }) as tf.TensorInfo;
          made.push(out);
          return backend.readSync(out.dataId) as Float32Array;
        };
        const native = run(tf.getKernel(name, "wasm")!.kernelFunc);
        const reference = run(kernels.replaced(name)!.kernelFunc);
        let diff = 0, scale = 1;
        for (let i = 0; i < reference.length; i++) {
          diff = Math.max(diff, Math.abs(native[i] - reference[i]));
          scale = Math.max(scale, Math.abs(reference[i]));
        }
        if (!(diff <= 1e-5 * scale) || native.length !== reference.length) {
          throw new Error(
            `${name} at ${c.label} differs from the wasm kernel by ${diff.toPrecision(3)} ` +
              `(largest value ${scale.toPrecision(3)})`,
          );
        }
      }
    }
  } finally {
    for (const info of made) backend.disposeData(info.dataId);
  }
}
