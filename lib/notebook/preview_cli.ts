/**
 * Command line of the live preview (`preview.ts`):
 *
 * ```sh
 * deno task preview <notebook> [--port N] [-p name=value ...] [-f params.yaml] [--timeout S]
 * ```
 *
 * Prints the address to open, then one line per render; Ctrl-C stops the server and the
 * kernel. Exit code 0 after Ctrl-C, 2 for a usage, notebook or parameter error (nothing ran).
 *
 * @example
 * ```ts
 * import { main } from "./preview_cli.ts";
 * Deno.exit(await main(["notebooks/01_shapes.ipynb", "--port", "8123"]));
 * ```
 * @module
 */
import { parseCommandLine, UsageError } from "../util/cli_args.ts";
import { NotebookFileError } from "./nbformat.ts";
import { ParameterError, splitParameterArg } from "./parameters.ts";
import { Preview } from "./preview.ts";

/**
 * Usage text.
 *
 * @example
 * ```ts
 * import { PREVIEW_USAGE } from "./preview_cli.ts";
 * console.log(PREVIEW_USAGE);
 * ```
 */
export const PREVIEW_USAGE = `Usage:
  deno task preview <notebook> [--port N] [-p name=value ...] [-f params.yaml] [options]

Runs the notebook, serves its report on http://127.0.0.1:N/ and renders it again when the
notebook or lib/ changes; open pages reload by themselves. Ctrl-C stops it.

Options:
  --port N               Port to serve on (default: a free one).
  -p, --param name=value Override a parameter of the cell tagged "parameters" (repeatable).
  -f, --parameters-file FILE
                         Parameters from a JSON or YAML file (repeatable; -p wins).
  --timeout SECONDS      Time limit per cell (default: none).
  --no-input             Leave code cells' source out of the report.
  -h, --help             Show this help.`;

/** Parsed command line of `deno task preview`. */
interface PreviewArgs {
  notebook: string;
  port: number;
  params: string[];
  paramFiles: string[];
  timeoutSeconds?: number;
  noInput: boolean;
}

function parse(args: string[]): PreviewArgs | "help" {
  const parsed = parseCommandLine({
    args,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      param: { type: "string", short: "p", multiple: true },
      "parameters-file": { type: "string", short: "f", multiple: true },
      timeout: { type: "string" },
      "no-input": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const { values, positionals } = parsed;
  if (values.help) return "help";
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "missing the notebook to preview"
        : `expected one notebook, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port expects a port number (0 to 65535), got "${values.port}"`);
  }
  let timeoutSeconds: number | undefined;
  if (values.timeout !== undefined) {
    timeoutSeconds = Number(values.timeout);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
      throw new UsageError(
        `--timeout expects a positive number of seconds, got "${values.timeout}"`,
      );
    }
  }
  const params = values.param ?? [];
  for (const p of params) splitParameterArg(p); // syntax now, types against the notebook later
  return {
    notebook: positionals[0],
    port,
    params,
    paramFiles: values["parameters-file"] ?? [],
    timeoutSeconds,
    noInput: values["no-input"] ?? false,
  };
}

/**
 * Runs the preview until SIGINT or SIGTERM and returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./preview_cli.ts";
 * const code = await main(["--help"]); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let preview: Preview;
  try {
    const parsed = parse(args);
    if (parsed === "help") {
      console.log(PREVIEW_USAGE);
      return 0;
    }
    const time = () => new Date().toTimeString().slice(0, 8);
    preview = await Preview.start(parsed.notebook, {
      port: parsed.port,
      params: parsed.params,
      paramFiles: parsed.paramFiles,
      cellTimeoutMs: parsed.timeoutSeconds === undefined ? undefined : parsed.timeoutSeconds * 1000,
      noInput: parsed.noInput,
      log: (line) => console.log(`${time()} ${line}`),
    });
    console.log(`Preview of ${parsed.notebook} at ${preview.url} (Ctrl-C stops)`);
  } catch (e) {
    if (e instanceof UsageError || e instanceof NotebookFileError) {
      console.error(`error: ${e.message}\n\n${PREVIEW_USAGE}`);
      return 2;
    }
    if (e instanceof ParameterError) {
      console.error(`error: bad parameters: ${e.message}`);
      return 2;
    }
    if (e instanceof Deno.errors.AddrInUse) {
      console.error(`error: the port is taken (${e.message}); choose another with --port`);
      return 2;
    }
    throw e;
  }
  const { promise: signalled, resolve } = Promise.withResolvers<Deno.Signal>();
  const onInt = () => resolve("SIGINT");
  const onTerm = () => resolve("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  const term = Deno.build.os !== "windows"; // no SIGTERM listeners there
  if (term) Deno.addSignalListener("SIGTERM", onTerm);
  const signal = await signalled;
  console.log(`${signal}: stopping the server and the kernel`);
  await preview.stop();
  Deno.removeSignalListener("SIGINT", onInt);
  if (term) Deno.removeSignalListener("SIGTERM", onTerm);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
