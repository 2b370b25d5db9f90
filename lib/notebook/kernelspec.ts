/**
 * The Jupyter kernelspec of this project's notebooks (`deno`): where Jupyter looks for it, and
 * installing, removing and inspecting it (`deno task kernel install | uninstall | status`).
 *
 * The spec this module writes runs the Deno that installs it (its absolute path) and asks
 * frontends to interrupt by message (`"interrupt_mode": "message"`): with the default, signal
 * mode, Jupyter stops a cell with SIGINT, which hangs or kills the Deno 2.9 kernel. It runs the
 * wasm kernels on one thread (`TCONV_THREADS=1`: a Stop inside a multi-threaded one can lock its
 * pool) and leaves oneDNN's pool (`TCONV_NATIVE_THREADS`) at every core: a Stop cannot land
 * inside an FFI call.
 *
 * Directories follow jupyter_core: `JUPYTER_PATH` entries, then the user data directory
 * (`JUPYTER_DATA_DIR`, else `$XDG_DATA_HOME/jupyter` or `~/.local/share/jupyter` on Linux,
 * `~/Library/Jupyter` on macOS, `%APPDATA%\jupyter` on Windows), then the system directories
 * (`/usr/local/share/jupyter`, `/usr/share/jupyter`; `%PROGRAMDATA%\jupyter`). The first
 * directory holding `kernels/deno/kernel.json` wins, as in jupyter_client.
 *
 * @example
 * ```ts
 * import { installKernelSpec, kernelSpecStatus } from "./kernelspec.ts";
 * const dir = await installKernelSpec({ dataDir: "/tmp/jupyter" });
 * const status = await kernelSpecStatus({ env: { JUPYTER_DATA_DIR: "/tmp/jupyter" } });
 * console.log(dir, status.found?.spec.interrupt_mode); // "/tmp/jupyter/kernels/deno" "message"
 * ```
 * @module
 */
import { isAbsolute, join } from "node:path";
import { exists } from "../util/fs.ts";
import {
  NATIVE_THREADS_ENV_VAR,
  nativeThreadCount,
  THREADS_ENV_VAR,
  wasmThreadCount,
} from "../util/backend_rules.ts";

/** Name of the kernelspec the notebooks ask for (`metadata.kernelspec.name`). */
export const KERNEL_NAME = "deno";
/** The Deno version this project is pinned to (README: `npx -y deno@2.9.6`). */
export const PINNED_DENO = "2.9.6";
/** Files of a kernelspec besides kernel.json that `deno jupyter --install` writes. */
const LOGOS = ["logo-32x32.png", "logo-64x64.png", "logo-svg.svg"];

/** The content of a kernel.json. */
export interface KernelSpec {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode?: "signal" | "message";
  env?: Record<string, string>;
  metadata?: Record<string, unknown>;
}

/** A directory Jupyter searches, and why. */
export interface DataDir {
  path: string;
  /** `JUPYTER_PATH`, `user` (with `JUPYTER_DATA_DIR` when that set it) or `system`. */
  source: string;
}

/** Environment lookups; the process environment by default. */
export type Env = Record<string, string | undefined>;

function processEnv(): Env {
  return Deno.env.toObject();
}

function home(env: Env): string {
  const h = env.HOME ?? env.USERPROFILE;
  if (!h) throw new Error("cannot find the home directory: neither HOME nor USERPROFILE is set");
  return h;
}

/**
 * The user's Jupyter data directory, as jupyter_core's `jupyter_data_dir()` computes it.
 *
 * @example
 * ```ts
 * import { userDataDir } from "./kernelspec.ts";
 * userDataDir({ HOME: "/home/ada" }, "linux"); // "/home/ada/.local/share/jupyter"
 * ```
 */
export function userDataDir(env: Env = processEnv(), os: string = Deno.build.os): string {
  if (env.JUPYTER_DATA_DIR) return env.JUPYTER_DATA_DIR;
  if (os === "windows") {
    return join(env.APPDATA ?? join(home(env), "AppData", "Roaming"), "jupyter");
  }
  if (os === "darwin") return join(home(env), "Library", "Jupyter");
  return join(env.XDG_DATA_HOME || join(home(env), ".local", "share"), "jupyter");
}

/**
 * Jupyter's data path in search order (jupyter_core's `jupyter_path()`, without the Python
 * environment's own `sys.prefix` directory, which does not exist for a Deno project).
 *
 * @example
 * ```ts
 * import { jupyterDataPath } from "./kernelspec.ts";
 * jupyterDataPath({ HOME: "/home/ada" }, "linux").map((d) => d.path);
 * // ["/home/ada/.local/share/jupyter", "/usr/local/share/jupyter", "/usr/share/jupyter"]
 * ```
 */
export function jupyterDataPath(env: Env = processEnv(), os: string = Deno.build.os): DataDir[] {
  const sep = os === "windows" ? ";" : ":";
  const dirs: DataDir[] = (env.JUPYTER_PATH ?? "").split(sep).filter(Boolean)
    .map((path) => ({ path, source: "JUPYTER_PATH" }));
  dirs.push({
    path: userDataDir(env, os),
    source: env.JUPYTER_DATA_DIR ? "user (JUPYTER_DATA_DIR)" : "user",
  });
  const system = os === "windows"
    ? [join(env.PROGRAMDATA ?? "C:\\ProgramData", "jupyter")]
    : ["/usr/local/share/jupyter", "/usr/share/jupyter"];
  for (const path of system) dirs.push({ path, source: "system" });
  return dirs;
}

/**
 * The kernelspec this project installs: the Deno at `denoPath` (absolute) running the kernel,
 * interrupted by message.
 *
 * @example
 * ```ts
 * import { buildKernelSpec } from "./kernelspec.ts";
 * buildKernelSpec("/usr/bin/deno", "2.9.6").argv;
 * // ["/usr/bin/deno", "jupyter", "--kernel", "--conn", "{connection_file}"]
 * ```
 */
export function buildKernelSpec(
  denoPath: string,
  denoVersion: string,
  threads: number | "auto" = INTERACTIVE_THREADS,
  nativeThreads: number | "auto" = "auto",
): KernelSpec {
  if (!isAbsolute(denoPath)) {
    throw new Error(`the kernel's Deno must be an absolute path, got "${denoPath}"`);
  }
  checkThreads(threads);
  checkThreads(nativeThreads, "nativeThreads");
  const env: Record<string, string> = {};
  if (threads !== "auto") env[THREADS_ENV_VAR] = String(threads);
  if (nativeThreads !== "auto") env[NATIVE_THREADS_ENV_VAR] = String(nativeThreads);
  return {
    argv: [denoPath, "jupyter", "--kernel", "--conn", "{connection_file}"],
    display_name: "Deno",
    language: "typescript",
    // Frontends then send interrupt_request instead of SIGINT, which the Deno kernel does not
    // survive (see the module documentation).
    interrupt_mode: "message",
    // A Stop that lands inside a kernel of the multi-threaded wasm build leaves its thread pool
    // locked, and the next parallel kernel hangs forever (measured: 2 of 3 Stops without oneDNN
    // at 2 threads, 1 of 18 with oneDNN; 0 of 20 at 1 thread). Interactive kernels therefore
    // run wasm on one thread unless the person installs with --threads. oneDNN's pool
    // (TCONV_NATIVE_THREADS) keeps every core: a Stop cannot land inside an FFI call.
    ...(Object.keys(env).length === 0 ? {} : { env }),
    metadata: {
      deno_version: denoVersion,
      installed_by: "deno task kernel install",
    },
  };
}

/**
 * Threads an interactive kernel computes on by default (`TCONV_THREADS` in the spec's `env`): one,
 * because a Stop can leave the multi-threaded wasm build's thread pool locked.
 */
export const INTERACTIVE_THREADS = 1;

/**
 * Throws, naming `what`, when `threads` is neither "auto" nor an integer from 1 to 8 (the largest
 * pool of tfjs-wasm and of oneDNN here).
 *
 * @example
 * ```ts
 * checkThreads(2); // fine
 * checkThreads(0, "nativeThreads"); // RangeError: nativeThreads must be "auto" or an integer from 1 to 8, got 0
 * ```
 */
export function checkThreads(threads: number | "auto", what = "threads"): void {
  if (threads !== "auto" && !(Number.isInteger(threads) && threads >= 1 && threads <= 8)) {
    throw new RangeError(`${what} must be "auto" or an integer from 1 to 8, got ${threads}`);
  }
}

/** One pool's size as a kernel started from a spec gets it. */
export interface PoolThreads {
  /** The variable that sets it (`TCONV_THREADS`, `TCONV_NATIVE_THREADS`). */
  variable: string;
  /** Its value in the spec's `env`, or undefined when the spec leaves it to the environment. */
  set?: string;
  /** The pool's size: the spec's value, else every core (at most 8); null for a bad value. */
  count: number | null;
}

/**
 * The two thread pools a kernel started from `spec` computes on: tfjs-wasm's (`TCONV_THREADS`)
 * and oneDNN's (`TCONV_NATIVE_THREADS`), each from the spec's `env`, else every one of `cpus`
 * cores (at most 8; the kernel may inherit the variable from Jupyter's environment instead).
 *
 * @example
 * ```ts
 * import { kernelThreads } from "./kernelspec.ts";
 * const spec = { argv: ["deno"], display_name: "Deno", language: "typescript" };
 * kernelThreads({ ...spec, env: { TCONV_THREADS: "1" } }, 2).map((p) => p.count); // [1, 2]
 * ```
 */
export function kernelThreads(spec: KernelSpec, cpus: number): PoolThreads[] {
  const pool = (variable: string, rule: (t: string | undefined, c: number) => number) => {
    const set = spec.env?.[variable];
    let count: number | null;
    try {
      count = rule(set, cpus);
    } catch {
      count = null;
    }
    return set === undefined ? { variable, count } : { variable, set, count };
  };
  return [pool(THREADS_ENV_VAR, wasmThreadCount), pool(NATIVE_THREADS_ENV_VAR, nativeThreadCount)];
}

/** Options for {@linkcode installKernelSpec}. */
export interface InstallOptions {
  /** Jupyter data directory to install into (the spec goes to `<dataDir>/kernels/deno`). */
  dataDir: string;
  /** The Deno the kernel runs (default: `Deno.execPath()`, the one running this). */
  denoPath?: string;
  /**
   * `TCONV_THREADS` of the kernel (default {@linkcode INTERACTIVE_THREADS}); "auto" leaves it to
   * the environment (every core), at the risk of a Stop hanging the kernel.
   */
  threads?: number | "auto";
  /**
   * `TCONV_NATIVE_THREADS` of the kernel, oneDNN's pool (default "auto": not written, so every
   * core unless Jupyter's environment sets it).
   */
  nativeThreads?: number | "auto";
}

/**
 * The version `deno --version` prints for the executable at `denoPath`, or `null` when it does
 * not run.
 *
 * @example
 * ```ts
 * import { denoVersion } from "./kernelspec.ts";
 * console.log(await denoVersion(Deno.execPath())); // e.g. "2.9.6"
 * ```
 */
export async function denoVersion(denoPath: string): Promise<string | null> {
  try {
    const out = await new Deno.Command(denoPath, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).match(/^deno (\S+)/m)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Deno's own logos, as `deno jupyter --install` writes them (it ignores JUPYTER_DATA_DIR). */
async function denoLogos(denoPath: string): Promise<Map<string, Uint8Array>> {
  const logos = new Map<string, Uint8Array>();
  const tmp = await Deno.makeTempDir({ prefix: "deno-kernelspec-" });
  try {
    const out = await new Deno.Command(denoPath, {
      args: ["jupyter", "--install", "--force", "--name", KERNEL_NAME],
      env: { XDG_DATA_HOME: tmp, HOME: tmp, APPDATA: tmp },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) return logos;
    const dir = await findFile(tmp, "kernel.json");
    if (!dir) return logos;
    for (const name of LOGOS) {
      try {
        logos.set(name, await Deno.readFile(join(dir, name)));
      } catch {
        // a Deno without this logo: leave it out
      }
    }
  } catch {
    // no logos: the spec works without them
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return logos;
}

/** The directory under `root` that holds `name` (depth-first), or `null`. */
async function findFile(root: string, name: string): Promise<string | null> {
  for await (const entry of Deno.readDir(root)) {
    const path = join(root, entry.name);
    if (entry.isFile && entry.name === name) return root;
    if (entry.isDirectory) {
      const found = await findFile(path, name);
      if (found) return found;
    }
  }
  return null;
}

/**
 * Installs the `deno` kernelspec into `<dataDir>/kernels/deno`, replacing one that is there.
 * The new spec is written into a temporary directory next to it and renamed into place, so a
 * failure leaves the old spec as it was. Returns the spec's directory.
 *
 * @example
 * ```ts
 * import { installKernelSpec } from "./kernelspec.ts";
 * console.log(await installKernelSpec({ dataDir: "/tmp/jupyter" })); // "/tmp/jupyter/kernels/deno"
 * ```
 */
export async function installKernelSpec(options: InstallOptions): Promise<string> {
  const denoPath = options.denoPath ?? Deno.execPath();
  const version = await denoVersion(denoPath);
  if (!version) throw new Error(`"${denoPath} --version" failed: that is not a working Deno`);
  const spec = buildKernelSpec(denoPath, version, options.threads, options.nativeThreads);
  const kernels = join(options.dataDir, "kernels");
  const target = join(kernels, KERNEL_NAME);
  await Deno.mkdir(kernels, { recursive: true });
  // Beside kernels/, not in it: Jupyter would list a half-written spec there as a kernel.
  const tmp = await Deno.makeTempDir({
    dir: options.dataDir,
    prefix: `.kernelspec-${KERNEL_NAME}-new-`,
  });
  let old: string | null = null;
  try {
    await Deno.writeTextFile(join(tmp, "kernel.json"), JSON.stringify(spec, null, 2) + "\n");
    for (const [name, bytes] of await denoLogos(denoPath)) {
      await Deno.writeFile(join(tmp, name), bytes);
    }
    await Deno.chmod(tmp, 0o755).catch(() => {}); // makeTempDir made it private
    if (await exists(target)) {
      old = `${tmp}-old`;
      await Deno.rename(target, old);
    }
    try {
      await Deno.rename(tmp, target);
    } catch (e) {
      if (old) await Deno.rename(old, target); // put the previous spec back
      old = null;
      throw e;
    }
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`could not install the kernelspec into ${target}: ${errorText(e)}`);
  }
  if (old) await Deno.remove(old, { recursive: true }).catch(() => {});
  return target;
}

/**
 * Removes `<dataDir>/kernels/deno`. Returns false when there was none.
 *
 * @example
 * ```ts
 * import { uninstallKernelSpec } from "./kernelspec.ts";
 * await uninstallKernelSpec("/tmp/jupyter"); // true when it was installed
 * ```
 */
export async function uninstallKernelSpec(dataDir: string): Promise<boolean> {
  const target = join(dataDir, "kernels", KERNEL_NAME);
  if (!(await exists(target))) return false;
  // Rename first, so that Jupyter never sees a half-removed spec.
  const gone = join(
    dataDir,
    `.kernelspec-${KERNEL_NAME}-removed-${crypto.randomUUID().slice(0, 8)}`,
  );
  await Deno.rename(target, gone);
  await Deno.remove(gone, { recursive: true });
  return true;
}

/** A kernelspec found on Jupyter's data path. */
export interface FoundSpec {
  /** The spec's directory. */
  dir: string;
  /** The data directory it was found in, and why that directory is searched. */
  dataDir: DataDir;
  spec: KernelSpec;
}

/** What {@linkcode kernelSpecStatus} found out. */
export interface KernelSpecStatus {
  /** The directories searched, in order. */
  path: DataDir[];
  /** The spec Jupyter would use, or null when none is installed. */
  found: FoundSpec | null;
  /** Specs of the same name further down the path, which `found` hides. */
  shadowed: FoundSpec[];
  /** Specs that exist but could not be read (path and error). */
  unreadable: { dir: string; error: string }[];
  /** Version printed by the spec's `argv[0] --version`, or null when it does not run. */
  denoVersion: string | null;
  /** Problems that make the spec hang or misbehave, each with the command that fixes it. */
  warnings: string[];
}

/**
 * Finds the kernelspec Jupyter would use for the notebooks and checks it: the Deno it runs (and
 * its version) and its interrupt mode.
 *
 * @example
 * ```ts
 * import { kernelSpecStatus } from "./kernelspec.ts";
 * const status = await kernelSpecStatus();
 * for (const w of status.warnings) console.error(`WARNING: ${w}`);
 * ```
 */
export async function kernelSpecStatus(
  options: { env?: Env; os?: string } = {},
): Promise<KernelSpecStatus> {
  const path = jupyterDataPath(options.env ?? processEnv(), options.os ?? Deno.build.os);
  const specs: FoundSpec[] = [];
  const unreadable: { dir: string; error: string }[] = [];
  for (const dataDir of path) {
    const dir = join(dataDir.path, "kernels", KERNEL_NAME);
    let text: string;
    try {
      text = await Deno.readTextFile(join(dir, "kernel.json"));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) unreadable.push({ dir, error: errorText(e) });
      continue;
    }
    try {
      const spec = JSON.parse(text);
      if (!Array.isArray(spec?.argv) || spec.argv.length === 0) {
        throw new Error('it has no "argv" list');
      }
      specs.push({ dir, dataDir, spec });
    } catch (e) {
      unreadable.push({ dir, error: `kernel.json is not a valid kernelspec: ${errorText(e)}` });
    }
  }
  const [found = null, ...shadowed] = specs;
  const warnings: string[] = [];
  let version: string | null = null;
  if (found) {
    const fix = fixCommand(found);
    const deno = found.spec.argv[0];
    version = await denoVersion(deno);
    if (found.spec.interrupt_mode !== "message") {
      warnings.push(
        `the kernelspec in ${found.dir} has ${
          found.spec.interrupt_mode
            ? `"interrupt_mode": "${found.spec.interrupt_mode}"`
            : 'no "interrupt_mode"'
        }, so Jupyter frontends interrupt (Stop) with SIGINT, which leaves the Deno ${PINNED_DENO} ` +
          `kernel hung or dead; every variable and trained model is lost. Fix: ${fix}`,
      );
    }
    if (version === null) {
      warnings.push(`its Deno, ${deno}, does not run ("${deno} --version" failed). Fix: ${fix}`);
    } else if (version !== PINNED_DENO) {
      warnings.push(
        `its Deno, ${deno}, is ${version}, not the pinned ${PINNED_DENO}. Fix: run the install ` +
          `with Deno ${PINNED_DENO}: npx -y deno@${PINNED_DENO} task kernel install`,
      );
    }
    if (found.spec.argv.slice(1, 3).join(" ") !== "jupyter --kernel") {
      warnings.push(
        `its argv (${JSON.stringify(found.spec.argv)}) does not start the Deno kernel. Fix: ${fix}`,
      );
    }
  } else if (unreadable.length) {
    warnings.push(
      `${unreadable[0].dir}: ${unreadable[0].error}. Fix: deno task kernel install`,
    );
  }
  return { path, found, shadowed, unreadable, denoVersion: version, warnings };
}

/** The install command that replaces `found` where it is. */
function fixCommand(found: FoundSpec): string {
  const { dataDir } = found;
  if (dataDir.source.startsWith("user")) {
    return dataDir.source === "user"
      ? "deno task kernel install"
      : `JUPYTER_DATA_DIR=${dataDir.path} deno task kernel install`;
  }
  const share = join("share", "jupyter");
  if (dataDir.path.endsWith(share)) {
    return `deno task kernel install --prefix ${dataDir.path.slice(0, -share.length - 1)}`;
  }
  return `JUPYTER_DATA_DIR=${dataDir.path} deno task kernel install`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
