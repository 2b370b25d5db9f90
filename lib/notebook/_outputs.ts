/**
 * Turns iopub messages into nbformat 4 outputs, as a notebook frontend would. Private helper of
 * `runner.ts`.
 *
 * Messages are applied in arrival order, each to the cell whose execution caused it:
 * consecutive `stream` messages of the same name merge into one output; `display_data`,
 * `execute_result` and `error` append outputs; `update_display_data` replaces the data of every
 * output shown with the same `transient.display_id` (in any cell); `clear_output` empties the
 * cell, at once or, with `wait: true`, just before the cell's next output.
 *
 * @module
 */
import type { Message } from "./_protocol.ts";
import type { MimeBundle, Output, StreamOutput } from "./nbformat.ts";

type DisplayOutput = Extract<Output, { data: MimeBundle }>;

/** Splits text into lines that keep their "\n", as Jupyter stores multiline strings. */
export function splitLines(text: string): string[] {
  const lines = text.match(/[^\n]*\n|[^\n]+$/g);
  return lines ?? [];
}

function textOf(value: unknown): string {
  if (Array.isArray(value)) return value.join("");
  return typeof value === "string" ? value : String(value ?? "");
}

/** Normalizes a MIME bundle: text values become line lists; JSON values stay objects. */
function bundle(data: unknown): MimeBundle {
  const out: MimeBundle = {};
  if (!data || typeof data !== "object") return out;
  for (const [mime, value] of Object.entries(data as Record<string, unknown>)) {
    const isJson = mime === "application/json" || mime.endsWith("+json");
    out[mime] = !isJson && typeof value === "string" ? splitLines(value) : value;
  }
  return out;
}

function metadataOf(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value)
    ? value as Record<string, unknown>
    : {};
}

/** Collects outputs for a set of cells. */
export class OutputCollector {
  readonly #outputs = new Map<number, Output[]>();
  readonly #pendingClear = new Set<number>();
  readonly #displays = new Map<string, Set<DisplayOutput>>();
  /** How many messages were applied. */
  applied = 0;

  /** The outputs of cell `cell` (live array). */
  outputs(cell: number): Output[] {
    let list = this.#outputs.get(cell);
    if (!list) {
      list = [];
      this.#outputs.set(cell, list);
    }
    return list;
  }

  /** Adds an output directly (e.g. an error the runner made up: timeout, kernel death). */
  push(cell: number, output: Output): void {
    this.#beforeOutput(cell);
    this.outputs(cell).push(output);
  }

  #beforeOutput(cell: number): void {
    if (this.#pendingClear.delete(cell)) this.outputs(cell).length = 0;
  }

  /** Applies one iopub message to cell `cell`. */
  apply(cell: number, message: Message): void {
    const c = message.content as Record<string, unknown>;
    switch (message.header.msg_type) {
      case "stream": {
        this.#beforeOutput(cell);
        const list = this.outputs(cell);
        const name = c.name === "stderr" ? "stderr" : "stdout";
        const last = list.at(-1);
        const text = textOf(c.text);
        if (last?.output_type === "stream" && last.name === name) {
          (last as StreamOutput).text = splitLines(textOf(last.text) + text);
        } else {
          list.push({ output_type: "stream", name, text: splitLines(text) });
        }
        break;
      }
      case "display_data": {
        this.#beforeOutput(cell);
        const out: DisplayOutput = {
          output_type: "display_data",
          data: bundle(c.data),
          metadata: metadataOf(c.metadata),
        };
        this.outputs(cell).push(out);
        this.#remember(c, out);
        break;
      }
      case "execute_result": {
        this.#beforeOutput(cell);
        const out: DisplayOutput = {
          output_type: "execute_result",
          execution_count: typeof c.execution_count === "number" ? c.execution_count : null,
          data: bundle(c.data),
          metadata: metadataOf(c.metadata),
        };
        this.outputs(cell).push(out);
        this.#remember(c, out);
        break;
      }
      case "update_display_data": {
        const id = this.#displayId(c);
        for (const out of (id && this.#displays.get(id)) || []) {
          out.data = bundle(c.data);
          out.metadata = metadataOf(c.metadata);
        }
        break;
      }
      case "error":
        this.#beforeOutput(cell);
        this.outputs(cell).push({
          output_type: "error",
          ename: textOf(c.ename),
          evalue: textOf(c.evalue),
          traceback: Array.isArray(c.traceback) ? c.traceback.map(textOf) : [],
        });
        break;
      case "clear_output":
        if (c.wait) this.#pendingClear.add(cell);
        else {
          this.#pendingClear.delete(cell);
          this.outputs(cell).length = 0;
        }
        break;
      default:
        return; // status, execute_input, comm messages, ...: not outputs
    }
    this.applied++;
  }

  #displayId(content: Record<string, unknown>): string | undefined {
    const transient = content.transient as Record<string, unknown> | undefined;
    const id = transient?.display_id;
    return typeof id === "string" && id !== "" ? id : undefined;
  }

  #remember(content: Record<string, unknown>, out: DisplayOutput): void {
    const id = this.#displayId(content);
    if (!id) return;
    let set = this.#displays.get(id);
    if (!set) {
      set = new Set();
      this.#displays.set(id, set);
    }
    set.add(out);
  }
}
