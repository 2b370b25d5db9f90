/**
 * Datasets for the notebooks: the CIFAR-10 binary format and its reader, the downloader behind
 * `deno task data:cifar10`, the built-in synthetic shapes dataset, dataset selection with
 * class-balanced subsets, and seeded mini-batches with normalisation and augmentation.
 *
 * @example
 * ```ts
 * import { batches, loadDataset } from "./mod.ts";
 * const data = await loadDataset({ dataset: "auto", trainSize: 5000, testSize: 1000 });
 * for (const { x, y } of batches(data.train, { batchSize: 64, seed: 1, augment: true, normalize: data.stats })) {
 *   // x: float32 [64, 32, 32, 3], y: int32 [64]; disposed by the iterator at the next step
 * }
 * ```
 * @module
 */
export * from "./cifar10.ts";
export * from "./batches.ts";
export * from "./synthetic.ts";
export * from "./download.ts";
export * from "./dataset.ts";
