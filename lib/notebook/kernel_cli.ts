/**
 * `deno task kernel install | uninstall | status`: the Jupyter kernelspec the notebooks use
 * (see `kernelspec.ts`).
 *
 * ```sh
 * deno task kernel install [--user | --prefix PREFIX] [--threads N|auto] [--native-threads N|auto]
 * deno task kernel uninstall [--user | --prefix PREFIX]
 * deno task kernel status
 * ```
 *
 * Exit codes: 0 done (status: the spec is installed and fine), 1 failed (status: not installed
 * or with a warning), 2 usage error.
 *
 * @example
 * ```ts
 * import { main } from "./kernel_cli.ts";
 * const code = await main(["status"]);
 * ```
 * @module
 */
import { join } from "node:path";
import { UsageError } from "../util/cli_args.ts";
import {
  checkThreads,
  installKernelSpec,
  INTERACTIVE_THREADS,
  KERNEL_NAME,
  kernelSpecStatus,
  kernelThreads,
  PINNED_DENO,
  uninstallKernelSpec,
  userDataDir,
} from "./kernelspec.ts";

const USAGE = `usage: deno task kernel <command> [options]

commands:
  install     install the "${KERNEL_NAME}" Jupyter kernelspec: this Deno (${Deno.execPath()}),
              interrupted by message ("interrupt_mode": "message"); replaces one already there
  uninstall   remove it
  status      which "${KERNEL_NAME}" kernelspec Jupyter would use, its Deno, interrupt mode and
              threads (wasm's and oneDNN's)

options (install, uninstall):
  --user            the user's Jupyter data directory (default; JUPYTER_DATA_DIR when set,
                    else ~/.local/share/jupyter on Linux, honouring XDG_DATA_HOME)
  --prefix PREFIX   PREFIX/share/jupyter (e.g. a virtual environment's or /usr/local)
  --threads N|auto  install only: the kernel's TCONV_THREADS (default ${INTERACTIVE_THREADS}: a Stop
                    inside a multi-threaded wasm kernel can leave its thread pool locked and
                    hang the kernel; "auto" uses every core and takes that risk)
  --native-threads N|auto
                    install only: the kernel's TCONV_NATIVE_THREADS, oneDNN's pool (default
                    "auto": every core, at most 8; a Stop cannot land inside oneDNN)
  -h, --help        this text

exit codes: 0 done (status: installed and fine), 1 failed (status: missing or a warning),
2 usage error`;

interface Args {
  command: "install" | "uninstall" | "status" | "help";
  dataDir?: string;
  prefix?: string;
  threads?: number | "auto";
  nativeThreads?: number | "auto";
}

/** `--threads`' or `--native-threads`' value, or a usage error naming the flag. */
function threadsFlag(flag: string, value: string | undefined): number | "auto" {
  const threads = value === "auto" ? "auto" : /^\d+$/.test(value ?? "") ? Number(value) : NaN;
  try {
    checkThreads(threads);
  } catch {
    throw new UsageError(`${flag} needs "auto" or an integer from 1 to 8, got "${value}"`);
  }
  return threads;
}

function parse(argv: string[]): Args {
  if (argv.includes("-h") || argv.includes("--help")) return { command: "help" };
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError("missing command: install, uninstall or status");
  if (command !== "install" && command !== "uninstall" && command !== "status") {
    throw new UsageError(`unknown command "${command}": expected install, uninstall or status`);
  }
  let user = false;
  let prefix: string | undefined;
  let threads: number | "auto" | undefined;
  let nativeThreads: number | "auto" | undefined;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (command === "status") throw new UsageError(`status takes no arguments, got "${arg}"`);
    if (arg === "--user") {
      user = true;
    } else if (arg === "--prefix" || arg.startsWith("--prefix=")) {
      const value = arg === "--prefix" ? rest[++i] : arg.slice("--prefix=".length);
      if (!value || value.startsWith("-")) {
        throw new UsageError("--prefix needs a directory, e.g. --prefix /usr/local");
      }
      prefix = value;
    } else if (command === "install" && (arg === "--threads" || arg.startsWith("--threads="))) {
      threads = threadsFlag(
        "--threads",
        arg === "--threads" ? rest[++i] : arg.slice("--threads=".length),
      );
    } else if (
      command === "install" && (arg === "--native-threads" || arg.startsWith("--native-threads="))
    ) {
      nativeThreads = threadsFlag(
        "--native-threads",
        arg === "--native-threads" ? rest[++i] : arg.slice("--native-threads=".length),
      );
    } else {
      throw new UsageError(
        `unknown argument "${arg}" for ${command}: expected --user, --prefix${
          command === "install" ? ", --threads or --native-threads" : ""
        }`,
      );
    }
  }
  if (user && prefix !== undefined) {
    throw new UsageError("--user and --prefix exclude each other: give one");
  }
  const dataDir = prefix !== undefined ? join(prefix, "share", "jupyter") : userDataDir();
  return { command, dataDir, prefix, threads, nativeThreads };
}

async function status(): Promise<number> {
  const s = await kernelSpecStatus();
  if (!s.found) {
    console.log(`No "${KERNEL_NAME}" kernelspec is installed. Searched, in order:`);
    for (const d of s.path) console.log(`  ${join(d.path, "kernels")}  (${d.source})`);
    for (const w of s.warnings) console.error(`WARNING: ${w}`);
    console.log("Install it with: deno task kernel install");
    return 1;
  }
  const { found } = s;
  const deno = found.spec.argv[0];
  const version = s.denoVersion === null
    ? "does not run"
    : s.denoVersion === PINNED_DENO
    ? `${s.denoVersion}, the pinned version`
    : `${s.denoVersion}, differs from the pinned ${PINNED_DENO}`;
  console.log(`kernelspec "${KERNEL_NAME}": ${join(found.dir, "kernel.json")}`);
  console.log(`  found in:       ${found.dataDir.path} (${found.dataDir.source})`);
  console.log(`  Deno:           ${deno} (${version})`);
  console.log(`  interrupt mode: ${found.spec.interrupt_mode ?? "signal (not set)"}`);
  // Each pool on its own line: wasm's (one thread keeps a Stop from locking it) and oneDNN's.
  const [wasm, native] = kernelThreads(found.spec, navigator.hardwareConcurrency);
  const count = (p: typeof wasm) =>
    p.count === null ? `invalid (${JSON.stringify(p.set)})` : p.count;
  const origin = (p: typeof wasm, unset: string) =>
    p.set === undefined ? `${p.variable} not set: ${unset}` : `${p.variable}=${p.set}`;
  console.log(
    `  wasm threads:   ${count(wasm)} (${
      origin(wasm, "every core, at most 8; a Stop inside a wasm kernel can hang the kernel")
    })`,
  );
  console.log(`  oneDNN threads: ${count(native)} (${origin(native, "every core, at most 8")})`);
  for (const other of s.shadowed) {
    console.log(`  also installed, hidden by the one above: ${other.dir}`);
  }
  for (const u of s.unreadable) console.log(`  unreadable: ${u.dir}: ${u.error}`);
  for (const w of s.warnings) console.error(`\nWARNING: ${w}`);
  return s.warnings.length ? 1 : 0;
}

/**
 * Runs the command line `argv`; returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./kernel_cli.ts";
 * Deno.exit(await main(["install", "--prefix", "/tmp/venv"]));
 * ```
 */
export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  try {
    switch (args.command) {
      case "help":
        console.log(USAGE);
        return 0;
      case "status":
        return await status();
      case "install": {
        const threads = args.threads ?? INTERACTIVE_THREADS;
        const nativeThreads = args.nativeThreads ?? "auto";
        const dir = await installKernelSpec({ dataDir: args.dataDir!, threads, nativeThreads });
        console.log(
          `Installed the "${KERNEL_NAME}" kernelspec in ${dir}: ${Deno.execPath()} ` +
            `(${Deno.version.deno}), "interrupt_mode": "message", ` +
            (threads === "auto" ? "wasm on every core" : `TCONV_THREADS=${threads}`) + ", " +
            (nativeThreads === "auto"
              ? "oneDNN on every core."
              : `TCONV_NATIVE_THREADS=${nativeThreads}.`),
        );
        const s = await kernelSpecStatus();
        if (s.found && s.found.dir !== dir) {
          if (args.prefix === undefined) {
            console.error(
              `WARNING: Jupyter will not use it: ${s.found.dir} comes first on its data path ` +
                `(${s.found.dataDir.source}). Remove that one or install there.`,
            );
            return 1;
          }
          // A prefix is searched when it is the prefix of the Python environment running
          // Jupyter, before or after the user directory depending on JUPYTER_PREFER_ENV_PATH.
          console.log(
            `Note: outside that environment, Jupyter finds ${s.found.dir} first ` +
              `(${s.found.dataDir.source}).`,
          );
        }
        return 0;
      }
      case "uninstall": {
        const dir = join(args.dataDir!, "kernels", KERNEL_NAME);
        if (!(await uninstallKernelSpec(args.dataDir!))) {
          console.error(`error: no "${KERNEL_NAME}" kernelspec in ${dir}`);
          return 1;
        }
        console.log(`Removed ${dir}.`);
        const s = await kernelSpecStatus();
        if (s.found) console.log(`Jupyter now finds the one in ${s.found.dir}.`);
        return 0;
      }
    }
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
