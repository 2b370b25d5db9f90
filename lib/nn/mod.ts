/**
 * Neural-network building blocks: PyTorch-faithful convolution layers, their output-size
 * formulas, PyTorch's default initialisation, the convolution matrix and the stride-1
 * equivalence of transposed and ordinary convolutions.
 *
 * @example
 * ```ts
 * import { Conv2d, convOutputSize } from "./mod.ts";
 * convOutputSize(5, { kernelSize: 3, padding: 1 }); // 5
 * const conv = new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1 });
 * ```
 * @module
 */
export * from "./shapes.ts";
export * from "./init.ts";
export * from "./conv.ts";
export * from "./conv_matrix.ts";
export * from "./equivalence.ts";
export * from "./reference.ts";
export * from "./shape_grid.ts";
export * from "./layers.ts";
export * from "./densenet.ts";
export * from "./torch_state.ts";
export type { Size2 } from "./_pair.ts";
