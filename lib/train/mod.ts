/**
 * Training: PyTorch's SGD, the side-by-side training loop with checkpoints and resume, metrics,
 * and checkpoint files in tfjs's model format.
 *
 * @example
 * ```ts
 * import { train } from "./mod.ts";
 * const results = await train({ arms, data, hyper: { epochs: 2, batchSize: 64, lr: 0.01 } });
 * ```
 * @module
 */
export * from "./sgd.ts";
export * from "./metrics.ts";
export * from "./stats.ts";
export * from "./verdict.ts";
export * from "./checkpoint.ts";
export * from "./gradient_check.ts";
export * from "./trainer.ts";
export * from "./experiment.ts";
