/**
 * The shared library of the notebooks: layers and shape formulas (`nn`), plotting (`viz`) and the
 * tfjs set-up (`backend`). Notebooks import from here.
 *
 * @example
 * ```ts
 * import { convTransposeOutputSize, ConvTranspose2d, heatmap, show, tf } from "../lib/mod.ts";
 * ```
 * @module
 */
export * from "./backend/mod.ts";
export * from "./nn/mod.ts";
export * from "./viz/mod.ts";
