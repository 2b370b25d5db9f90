/**
 * Checkpoints of a model and its optimizer in TensorFlow.js's model artifact format, written so
 * that a crash never leaves a half-written checkpoint in place.
 *
 * A checkpoint is a folder with one subfolder per model (so that several models trained together
 * are saved at the same moment) and `meta.json`. Each model's subfolder holds:
 * - `model.json` + `weights.bin`: the tfjs "layers-model" artifacts (topology, weights manifest,
 *   weights), loadable with `tf.loadLayersModel` through {@linkcode fileHandler};
 * - `optimizer.json` + `optimizer.bin`: the SGD momentum buffers in the same weights format, keyed
 *   by the weight names of the model (`lowconv/kernel`…), and the step count.
 *
 * `meta.json` holds whatever the caller stores (epoch, metrics so far…).
 *
 * The folder is written under a temporary name and swapped into place with renames
 * (`replaceFolder`); a crash in between leaves either the old or the new checkpoint complete (the
 * old one, set aside as `.<name>.old-…` if the swap was interrupted, is found there and put back
 * in place when loaded).
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const models = [{ name: "conv", model, optimizer }];
 * await saveCheckpoint("runs/a/checkpoint", { models, meta: { epoch: 3 } });
 * const meta = await loadCheckpoint("runs/a/checkpoint", models);
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { replaceFolder, restoreSetAside, setAsideFolders } from "../util/fs.ts";
import type { SGD } from "./sgd.ts";
import { variableToWeightName } from "./_variables.ts";

function concat(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  return new Uint8Array(Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data);
}

function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * A tfjs IOHandler that saves and loads `model.json` + `weights.bin` in a folder.
 *
 * @example
 * ```ts
 * await model.save(fileHandler("out/model"));
 * const again = await tf.loadLayersModel(fileHandler("out/model"));
 * ```
 */
export function fileHandler(
  dir: string,
): Required<Pick<tf.io.IOHandler, "save" | "load">> {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await Deno.mkdir(dir, { recursive: true });
      const weights = concat(artifacts.weightData ?? new ArrayBuffer(0));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? "layers-model",
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs ?? [] }],
      };
      await Deno.writeFile(join(dir, "weights.bin"), weights);
      await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify(modelJson));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: "JSON",
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const json = JSON.parse(await Deno.readTextFile(join(dir, "model.json"))) as tf.io.ModelJSON;
      const specs = json.weightsManifest.flatMap((g) => g.weights);
      const weights = await Deno.readFile(join(dir, json.weightsManifest[0].paths[0]));
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        weightSpecs: specs,
        weightData: exactBuffer(weights),
      };
    },
  };
}

/** One model of a checkpoint, saved in its own subfolder. */
export interface CheckpointModel {
  /** Subfolder name (e.g. the arm's name: "conv"). */
  name: string;
  /** The model (all weights, including BatchNorm running statistics). */
  model: tf.LayersModel;
  /** The optimizer whose momentum buffers are saved (optional). */
  optimizer?: SGD;
}

/** What {@linkcode saveCheckpoint} stores: several models saved together, and metadata. */
export interface CheckpointContents {
  /** Models, each in `<dir>/<name>/`. */
  models: CheckpointModel[];
  /** Caller's metadata, stored as `meta.json`. */
  meta: unknown;
}

const SAFE_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Writes a checkpoint folder (see the module doc) holding every model, replacing any previous one
 * atomically: all models of a checkpoint always come from the same moment.
 *
 * @example
 * ```ts
 * await saveCheckpoint(dir, { models: [{ name: "conv", model, optimizer }], meta: { epoch: 1 } });
 * ```
 */
export async function saveCheckpoint(dir: string, contents: CheckpointContents): Promise<void> {
  const tmp = `${dir}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  try {
    for (const { name, model, optimizer } of contents.models) {
      if (!SAFE_NAME.test(name)) {
        throw new RangeError(`checkpoint model name "${name}" is not a safe folder name`);
      }
      const sub = join(tmp, name);
      await model.save(fileHandler(sub));
      if (optimizer) {
        const { steps, buffers } = optimizer.state();
        const names = variableToWeightName(model);
        const named = [...buffers].map(([varName, tensor]) => ({
          name: names.get(varName) ?? varName,
          tensor,
        }));
        const { data, specs } = await tf.io.encodeWeights(named);
        await Deno.writeFile(join(sub, "optimizer.bin"), concat(data));
        await Deno.writeTextFile(join(sub, "optimizer.json"), JSON.stringify({ steps, specs }));
      }
    }
    await Deno.writeTextFile(join(tmp, "meta.json"), JSON.stringify(contents.meta));
    await replaceFolder(tmp, dir, () => Promise.resolve(false));
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * The folder of the last complete checkpoint at `dir` (or the previous one set aside when a swap
 * was interrupted), or undefined when there is none.
 *
 * @example
 * ```ts
 * if (completeCheckpoint(dir)) await loadCheckpoint(dir, [{ name: "conv", model }]);
 * ```
 */
export function completeCheckpoint(dir: string): string | undefined {
  if (hasMeta(dir)) return dir;
  // A swap interrupted between its two renames leaves the previous checkpoint aside.
  return setAsideFolders(dir).find(hasMeta);
}

function hasMeta(dir: string): boolean {
  return existsSync(join(dir, "meta.json"));
}

/**
 * Loads a checkpoint into the given models (weights matched by name, momentum buffers into the
 * optimizers) and returns the stored metadata. A model the checkpoint lacks is an error, and so is
 * a missing optimizer state for a model given with an optimizer. A checkpoint an interrupted swap
 * left aside is first put back in place.
 *
 * @example
 * ```ts
 * const meta = await loadCheckpoint(dir, [{ name: "conv", model, optimizer }]) as { epoch: number };
 * ```
 */
export async function loadCheckpoint(dir: string, targets: CheckpointModel[]): Promise<unknown> {
  await restoreSetAside(dir, (d) => Promise.resolve(hasMeta(d)));
  const found = completeCheckpoint(dir);
  if (!found) throw new Error(`no complete checkpoint in ${dir}`);
  for (const { name, model, optimizer } of targets) {
    const sub = join(found, name);
    if (!existsSync(join(sub, "model.json"))) {
      throw new Error(`checkpoint ${found} has no model "${name}"`);
    }
    const artifacts = await fileHandler(sub).load();
    const weights = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
    try {
      model.loadWeights(weights, true);
    } finally {
      tf.dispose(Object.values(weights));
    }
    if (optimizer) {
      // Resuming without the momentum buffers would restart momentum from zero, and the resumed
      // run would no longer reproduce an uninterrupted one: refuse rather than drift silently.
      const missing = ["optimizer.json", "optimizer.bin"].filter((f) => !existsSync(join(sub, f)));
      if (missing.length > 0) {
        throw new Error(
          `checkpoint ${sub} has no optimizer state (${missing.join(", ")} missing): resuming ` +
            `would restart SGD momentum from zero. Restore the files, or start a new run in an ` +
            `empty runDir`,
        );
      }
      const { steps, specs } = JSON.parse(await Deno.readTextFile(join(sub, "optimizer.json")));
      const data = await Deno.readFile(join(sub, "optimizer.bin"));
      const byName = tf.io.decodeWeights(exactBuffer(data), specs);
      const varName = new Map(
        [...variableToWeightName(model)].map(([variable, weight]) => [weight, variable]),
      );
      const buffers = new Map<string, tf.Tensor>();
      for (const [weight, t] of Object.entries(byName)) {
        const v = varName.get(weight);
        if (!v) {
          throw new Error(`checkpoint ${sub}: optimizer state for unknown weight "${weight}"`);
        }
        buffers.set(v, t);
      }
      optimizer.loadState({ steps, buffers });
      tf.dispose([...buffers.values()]);
    }
  }
  return JSON.parse(await Deno.readTextFile(join(found, "meta.json")));
}
