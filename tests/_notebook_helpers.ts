/**
 * Shared helpers for the notebook runner tests: finding kernel processes, validating notebooks
 * against the nbformat 4 JSON schema, reading fixtures, stripping ANSI colours.
 *
 * @module
 */
import AjvDraft04 from "ajv-draft-04";
import { fileURLToPath } from "node:url";
import type { CodeCell, Notebook, Output } from "../lib/notebook/nbformat.ts";

/** Folder of the test fixtures. */
export const FIXTURES: string = fileURLToPath(new URL("./fixtures/", import.meta.url));

/** Reads a fixture notebook. */
export async function fixture(name: string): Promise<Notebook> {
  return JSON.parse(await Deno.readTextFile(FIXTURES + name));
}

/** A code cell with `source` and, optionally, tags. */
export function codeCell(source: string | string[], tags?: string[]): CodeCell {
  return {
    cell_type: "code",
    source,
    metadata: tags ? { tags } : {},
    outputs: [],
    execution_count: null,
  };
}

/** A notebook of these cells. */
export function notebookOf(...cells: CodeCell[]): Notebook {
  return { nbformat: 4, nbformat_minor: 5, metadata: {}, cells };
}

/** Removes ANSI escape sequences (the Deno kernel colours `text/plain` results). */
export function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "");
}

/** Text of a multiline string. */
export function text(value: unknown): string {
  return stripAnsi(Array.isArray(value) ? value.join("") : String(value ?? ""));
}

/** A compact, comparable form of an output: [type, name-or-mime, text]. */
export function summarize(output: Output): [string, string, string] {
  switch (output.output_type) {
    case "stream":
      return ["stream", output.name, text(output.text)];
    case "error":
      return ["error", output.ename, output.evalue];
    default: {
      const mime = Object.keys(output.data)[0] ?? "";
      return [output.output_type, mime, text(output.data[mime])];
    }
  }
}

/** Process ids of running processes whose command line contains `pattern`. */
export async function pgrep(pattern: string): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", "--", pattern], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number)
    .filter((pid) => pid !== Deno.pid);
}

/** Kernel processes that are children of this test process. */
export async function childKernels(): Promise<number[]> {
  const out = await new Deno.Command("pgrep", {
    args: ["-P", String(Deno.pid), "-f", "jupyter --kernel"],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

/** Whether a process id is running (Linux: /proc, zombies count as gone). */
export function processRunning(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

const SCHEMA_DIR = "/usr/lib/python3/dist-packages/nbformat/v4";

/** Path of the newest nbformat v4 schema shipped by Debian's python3-nbformat. */
export function newestSchemaPath(): string {
  let best: { minor: number; path: string } | undefined;
  try {
    for (const e of Deno.readDirSync(SCHEMA_DIR)) {
      const m = /^nbformat\.v4(?:\.(\d+))?\.schema\.json$/.exec(e.name);
      if (!m) continue;
      const minor = m[1] === undefined ? -1 : Number(m[1]);
      if (!best || minor > best.minor) best = { minor, path: `${SCHEMA_DIR}/${e.name}` };
    }
  } catch {
    // reported below
  }
  if (!best) {
    throw new Error(
      `no nbformat v4 schema in ${SCHEMA_DIR}: install Debian's python3-nbformat ` +
        "(deno run -A tests/setup.ts does it)",
    );
  }
  return best.path;
}

// The package is CommonJS: at run time the default import is the class (with itself as
// `.default`), while its types describe the module namespace; `.default` works for both.
const Ajv = AjvDraft04.default;
let validator: ((nb: unknown) => boolean) & { errors?: unknown } | undefined;

/** Validates a notebook against the newest nbformat 4 schema; throws with the errors. */
export function assertValidNotebook(nb: unknown, label = "notebook"): void {
  if (!validator) {
    const schema = JSON.parse(Deno.readTextFileSync(newestSchemaPath()));
    const ajv = new Ajv({ allErrors: true, strict: false });
    validator = ajv.compile(schema);
  }
  const validate = validator!;
  if (!validate(nb)) {
    const errors = JSON.stringify(validate.errors, null, 1);
    throw new Error(`${label} is not valid nbformat 4: ${errors}`);
  }
}

/**
 * Writes an executable into `dir` that starts the Deno kernel behind a forger on its iopub
 * channel (tests/fixtures/forging_kernel.ts: "FORGE_ME" in an output becomes "FORGED!!" and the
 * message keeps its old signature); pass its path as the kernel's `denoPath`.
 */
export async function forgingKernel(dir: string): Promise<string> {
  const path = `${dir}/forging-kernel`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A "${FIXTURES}forging_kernel.ts" "$@"\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}
