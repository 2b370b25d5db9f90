/**
 * The command lines' shared first step: `node:util`'s `parseArgs`, with its errors (an unknown
 * option, a missing value) turned into the {@linkcode UsageError} that every CLI of this project
 * prints with its usage text and exit code 2.
 *
 * @example
 * ```ts
 * import { parseCommandLine, UsageError } from "./cli_args.ts";
 * try {
 *   parseCommandLine({ args: ["--nope"], options: { out: { type: "string" } } });
 * } catch (e) {
 *   console.log(e instanceof UsageError, (e as Error).message); // true, Unknown option '--nope'…
 * }
 * ```
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * A mistake in how a command was asked for (an unknown option, a missing argument, `--pdf`
 * without Chromium): the command line prints it with the usage text, exit code 2.
 */
export class UsageError extends Error {
  /**
   * @example
   * ```ts
   * import { UsageError } from "./cli_args.ts";
   * throw new UsageError("missing notebook path");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * `parseArgs(config)`, throwing `error(message)` (default: a {@linkcode UsageError}) for what
 * `parseArgs` refuses.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./cli_args.ts";
 * const { values, positionals } = parseCommandLine({
 *   args: ["a.ipynb", "-o", "out"],
 *   allowPositionals: true,
 *   options: { out: { type: "string", short: "o" } },
 * });
 * console.log(values.out, positionals); // "out" ["a.ipynb"]
 * ```
 */
export function parseCommandLine<T extends ParseArgsConfig>(
  config: T,
  error: (message: string) => Error = (message) => new UsageError(message),
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw error(e instanceof Error ? e.message : String(e));
  }
}
