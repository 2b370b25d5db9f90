/**
 * Turns iopub messages into nbformat 4 outputs, as a notebook frontend would. Private helper of
 * `runner.ts`.
 *
 * Messages are applied in arrival order, each to the cell whose execution caused it:
 * consecutive `stream` messages of the same name merge into one output (appended line by line,
 * never re-split, so a flood of messages costs time linear in its size); `display_data`,
 * `execute_result` and `error` append outputs; `update_display_data` replaces the data of every
 * output shown with the same `transient.display_id` (in any cell); `clear_output` empties the
 * cell, at once or, with `wait: true`, just before the cell's next output.
 *
 * A runaway stream is capped as Jupyter front ends cap output: past `streamLineLimit` lines
 * (default {@linkcode DEFAULT_STREAM_LINE_LIMIT}) a stream keeps its first and last half and one
 * line in between says how many lines were left out (a terminal log, `--log-output`, keeps
 * everything).
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

/** Lines a stream output keeps before it is capped (first and last half kept). */
export const DEFAULT_STREAM_LINE_LIMIT = 10_000;

/** The note that stands for the lines a capped stream left out. */
export function omittedNote(omitted: number, kept: number): string {
  return `… ${omitted} lines left out here: a stream keeps its first and last ${kept} lines ` +
    `(--log-output prints every line to the terminal) …\n`;
}

/** One stream output's lines, appended in place; past the limit, a head and a rolling tail. */
class StreamLines {
  readonly #head: string[] = [];
  #tail: string[] = [];
  #omitted = 0;
  #capped = false;
  readonly #keep: number;
  readonly output: StreamOutput;

  constructor(output: StreamOutput, limit: number) {
    this.output = output;
    this.#keep = Math.max(1, Math.floor(limit / 2));
    output.text = this.#head;
  }

  /** Whether the stream went past the limit. */
  get capped(): boolean {
    return this.#capped;
  }

  append(text: string): void {
    const parts = splitLines(text);
    if (parts.length === 0) return;
    const target = this.#capped ? this.#tail : this.#head;
    let i = 0;
    const last = target.length - 1;
    if (last >= 0 && !target[last].endsWith("\n")) {
      target[last] += parts[0]; // continues an unfinished line
      i = 1;
    }
    for (; i < parts.length; i++) target.push(parts[i]);
    const keep = this.#keep;
    if (!this.#capped && this.#head.length > 2 * keep) {
      this.#capped = true;
      this.#tail = this.#head.splice(keep);
    }
    if (this.#capped && this.#tail.length > 4 * keep) {
      // Trim in batches so that the work per appended line stays constant.
      const drop = this.#tail.length - keep;
      this.#omitted += drop;
      this.#tail = this.#tail.slice(drop);
    }
  }

  /** Writes the capped form (head, note, tail) into the output; no-op while under the limit. */
  sync(): void {
    if (!this.#capped) return;
    const keep = this.#keep;
    const extra = Math.max(0, this.#tail.length - keep);
    const omitted = this.#omitted + extra;
    const tail = extra ? this.#tail.slice(extra) : this.#tail;
    this.output.text = omitted === 0
      ? [...this.#head, ...tail]
      : [...this.#head, omittedNote(omitted, keep), ...tail];
  }
}

/** Options for {@linkcode OutputCollector}. */
export interface OutputCollectorOptions {
  /** Lines a stream output keeps before it is capped (default 10,000). */
  streamLineLimit?: number;
}

/** Collects outputs for a set of cells. */
export class OutputCollector {
  readonly #outputs = new Map<number, Output[]>();
  readonly #pendingClear = new Set<number>();
  readonly #displays = new Map<string, Set<DisplayOutput>>();
  readonly #streams = new WeakMap<StreamOutput, StreamLines>();
  readonly #capped = new Map<number, Set<StreamLines>>();
  readonly #limit: number;
  /** How many messages were applied. */
  applied = 0;

  /**
   * @example
   * ```ts
   * import { OutputCollector } from "./_outputs.ts";
   * const collector = new OutputCollector({ streamLineLimit: 1000 });
   * ```
   */
  constructor(options: OutputCollectorOptions = {}) {
    this.#limit = options.streamLineLimit ?? DEFAULT_STREAM_LINE_LIMIT;
  }

  /** The outputs of cell `cell` (live array; capped streams are brought up to date). */
  outputs(cell: number): Output[] {
    let list = this.#outputs.get(cell);
    if (!list) {
      list = [];
      this.#outputs.set(cell, list);
    }
    for (const s of this.#capped.get(cell) ?? []) s.sync();
    return list;
  }

  /** Adds an output directly (e.g. an error the runner made up: timeout, kernel death). */
  push(cell: number, output: Output): void {
    this.#beforeOutput(cell);
    this.#list(cell).push(output);
  }

  #beforeOutput(cell: number): void {
    if (this.#pendingClear.delete(cell)) this.#clear(cell);
  }

  #clear(cell: number): void {
    this.#list(cell).length = 0;
    this.#capped.delete(cell);
  }

  /** The live list without syncing capped streams (for appending). */
  #list(cell: number): Output[] {
    let list = this.#outputs.get(cell);
    if (!list) {
      list = [];
      this.#outputs.set(cell, list);
    }
    return list;
  }

  /** Applies one iopub message to cell `cell`. */
  apply(cell: number, message: Message): void {
    const c = message.content as Record<string, unknown>;
    switch (message.header.msg_type) {
      case "stream": {
        this.#beforeOutput(cell);
        const list = this.#list(cell);
        const name = c.name === "stderr" ? "stderr" : "stdout";
        const last = list.at(-1);
        let lines = last?.output_type === "stream" && last.name === name
          ? this.#streams.get(last)
          : undefined;
        if (!lines) {
          const out: StreamOutput = { output_type: "stream", name, text: [] };
          lines = new StreamLines(out, this.#limit);
          this.#streams.set(out, lines);
          list.push(out);
        }
        lines.append(textOf(c.text));
        if (lines.capped) {
          let set = this.#capped.get(cell);
          if (!set) this.#capped.set(cell, set = new Set());
          set.add(lines);
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
        this.#list(cell).push(out);
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
        this.#list(cell).push(out);
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
        this.#list(cell).push({
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
          this.#clear(cell);
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
