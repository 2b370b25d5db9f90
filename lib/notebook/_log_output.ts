/**
 * `--log-output`: cells' output printed to the terminal as it arrives (papermill's option).
 * Stream text goes out line by line, each line prefixed with its cell (`[cell 5] `), stdout to
 * `out` and stderr to `err`; an unfinished line waits for its end or for the cell to end. Other
 * outputs are summarised in one line: type, MIME types and sizes. Private helper of `cli.ts`.
 *
 * @module
 */
import type { Message } from "./kernel.ts";

/** Where the log's lines go. */
export interface LogSinks {
  out: (line: string) => void;
  err: (line: string) => void;
}

function size(bytes: number): string {
  return bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 * 1024
    ? `${(bytes / 1024).toFixed(1)} kB`
    : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function byteLength(value: unknown): number {
  const text = typeof value === "string"
    ? value
    : Array.isArray(value) && value.every((v) => typeof v === "string")
    ? value.join("")
    : JSON.stringify(value) ?? "";
  return new TextEncoder().encode(text).length;
}

/** Prints the output messages of cells as they arrive. */
export class OutputLog {
  readonly #sinks: LogSinks;
  readonly #partial = new Map<string, string>();

  constructor(sinks: LogSinks) {
    this.#sinks = sinks;
  }

  /** Logs one iopub message of the cell at `cellIndex`. */
  message(cellIndex: number, m: Message): void {
    const prefix = `[cell ${cellIndex + 1}]`;
    const c = m.content as Record<string, unknown>;
    switch (m.header.msg_type) {
      case "stream": {
        const name = c.name === "stderr" ? "stderr" : "stdout";
        const key = `${cellIndex}:${name}`;
        const text = (this.#partial.get(key) ?? "") + String(c.text ?? "");
        const lines = text.split("\n");
        this.#partial.set(key, lines.pop()!);
        const sink = name === "stderr" ? this.#sinks.err : this.#sinks.out;
        for (const line of lines) sink(`${prefix} ${line}`);
        break;
      }
      case "display_data":
      case "execute_result":
      case "update_display_data": {
        this.flush(cellIndex);
        const data = (c.data ?? {}) as Record<string, unknown>;
        const parts = Object.entries(data).map(([mime, v]) => `${mime} ${size(byteLength(v))}`);
        this.#sinks.out(`${prefix} ${m.header.msg_type}: ${parts.join(", ") || "(empty)"}`);
        break;
      }
      case "error":
        this.flush(cellIndex);
        this.#sinks.err(`${prefix} error: ${c.ename}: ${c.evalue}`);
        break;
      case "clear_output":
        this.#sinks.out(`${prefix} clear_output${c.wait ? " (wait)" : ""}`);
        break;
    }
  }

  /** Prints the cell's unfinished stream lines (call when the cell ends). */
  flush(cellIndex: number): void {
    for (const name of ["stdout", "stderr"] as const) {
      const key = `${cellIndex}:${name}`;
      const rest = this.#partial.get(key);
      if (rest) {
        (name === "stderr" ? this.#sinks.err : this.#sinks.out)(`[cell ${cellIndex + 1}] ${rest}`);
      }
      this.#partial.delete(key);
    }
  }
}
