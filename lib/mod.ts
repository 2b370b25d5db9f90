/**
 * The shared library of the notebooks: tfjs set-up (`backend`), layers, models and shape formulas
 * (`nn`), datasets (`data`), training (`train`) and plotting (`viz`). Notebooks import from here.
 *
 * @example
 * ```ts
 * import { convTransposeOutputSize, ConvTranspose2d, heatmap, show, tf } from "../lib/mod.ts";
 * ```
 * @module
 */
export * from "./backend/mod.ts";
export * from "./nn/mod.ts";
export * from "./data/mod.ts";
export * from "./train/mod.ts";
export * from "./viz/mod.ts";
