/**
 * A display that updates in place: the first `update` shows a bundle in the current cell with a
 * fresh `display_id`, later ones replace it (Jupyter's `update_display_data`), so a progress bar
 * or a live chart is one output, not thousands. Outside Jupyter it prints the text/plain part.
 *
 * @example
 * ```ts
 * import { LiveDisplay } from "./live.ts";
 * const live = new LiveDisplay();
 * await live.update({ "text/plain": "epoch 1" });
 * await live.update({ "text/plain": "epoch 2" }); // replaces the first
 * ```
 * @module
 */
import { inJupyter, type MimeBundle } from "./plotly.ts";

let counter = 0;

/** One in-place display (see the module doc). */
export class LiveDisplay {
  /** The Jupyter display_id. */
  readonly id = `live-${Date.now().toString(36)}-${(counter++).toString(36)}`;
  #shown = false;

  /** Shows `bundle`, or replaces what this display showed before. */
  async update(bundle: MimeBundle): Promise<void> {
    if (!inJupyter()) {
      console.log(String(bundle["text/plain"] ?? ""));
      return;
    }
    await Deno.jupyter.display(bundle, {
      raw: true,
      display_id: this.id,
      ...(this.#shown ? { update: true } : {}),
    });
    this.#shown = true;
  }
}
