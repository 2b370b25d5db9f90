/**
 * `deno task data:cifar10`: downloads, verifies and installs CIFAR-10 into `data/`.
 *
 * ```text
 * deno task data:cifar10 [--url URL] [--md5 HEX] [--dir DIR] [--file ARCHIVE] [--keep-archive]
 * ```
 *
 * - `--url`: download address (default the official one);
 * - `--md5`: expected MD5 of the archive (default the published c32a1d4ab5d03f1284b67883e8d87530);
 * - `--dir`: data folder (default the project's `data/`);
 * - `--file`: install from a local copy of `cifar-10-binary.tar.gz` instead of downloading;
 * - `--keep-archive`: keep the verified archive after extraction.
 *
 * Interrupt it at any time (Ctrl-C): the next run resumes the download.
 *
 * @example
 * ```sh
 * deno run -A lib/data/cli.ts --dir /tmp/data
 * ```
 * @module
 */
import { parseCommandLine, UsageError } from "../util/cli_args.ts";
import { resolve } from "node:path";
import { CIFAR10_MD5, CIFAR10_URL, downloadCifar10 } from "./download.ts";
import { DEFAULT_DATA_DIR } from "./cifar10.ts";

const USAGE =
  `usage: deno task data:cifar10 [--url URL] [--md5 HEX] [--dir DIR] [--file ARCHIVE] [--keep-archive]

  --url URL        download address (default ${CIFAR10_URL})
  --md5 HEX        expected MD5 of the archive (default ${CIFAR10_MD5})
  --dir DIR        data folder (default ${DEFAULT_DATA_DIR})
  --file ARCHIVE   install from a local cifar-10-binary.tar.gz instead of downloading
  --keep-archive   keep the verified archive after extraction`;

/**
 * Runs the command with `args`; returns the exit code (0 done, 1 failed, 2 bad usage).
 *
 * @example
 * ```ts
 * const code = await main(["--dir", "/tmp/data"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseCommandLine({
      args,
      options: {
        url: { type: "string" },
        md5: { type: "string" },
        dir: { type: "string" },
        file: { type: "string" },
        "keep-archive": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.md5 !== undefined && !/^[0-9a-fA-F]{32}$/.test(values.md5)) {
    console.error(`--md5 must be 32 hexadecimal digits, got ${JSON.stringify(values.md5)}`);
    return 2;
  }
  const dataDir = values.dir ? resolve(values.dir) : DEFAULT_DATA_DIR;
  const onInterrupt = () => {
    console.error(
      `\ninterrupted: nothing incomplete was installed; run the command again to resume the download`,
    );
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    await downloadCifar10({
      url: values.url,
      md5: values.md5,
      dataDir,
      archive: values.file ? resolve(values.file) : undefined,
      keepArchive: values["keep-archive"],
    });
    return 0;
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
