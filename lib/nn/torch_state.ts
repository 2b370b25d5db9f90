/**
 * PyTorch state-dict names for the layers of a model built from this library, and loading of
 * weights given in PyTorch's names and layouts. Used to check the DenseNet against PyTorch and to
 * import weights trained there.
 *
 * Names: `lowconv`, `denseblock1_conv2` → `denseblock1.conv2`, `transition1_bn` →
 * `transitionLayer1.bn`, `pre_classifier`… (the article's module names).
 *
 * @example
 * ```ts
 * import { loadTorchStateDict } from "./torch_state.ts";
 * loadTorchStateDict(model, (name, shape) => stateDict[name]); // Float32Array in PyTorch layout
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { Conv2d, ConvTranspose2d, loadTorchWeights } from "./conv.ts";
import { BatchNorm2d } from "./layers.ts";

/**
 * The PyTorch module path of a layer name: `denseblock1_conv2` → `denseblock1.conv2`,
 * `transition2_bn` → `transitionLayer2.bn`; other names are kept.
 *
 * @example
 * ```ts
 * torchModuleName("transition1_conv"); // "transitionLayer1.conv"
 * ```
 */
export function torchModuleName(layerName: string): string {
  return layerName
    .replace(/^denseblock(\d+)_/, "denseblock$1.")
    .replace(/^transition(\d+)_/, "transitionLayer$1.");
}

/** Supplies one PyTorch tensor (flat, row-major, PyTorch layout) by state-dict name and shape. */
export type TorchTensorSource = (name: string, shape: number[]) => ArrayLike<number> | undefined;

/**
 * Sets every weight of `model` from PyTorch-named, PyTorch-layout tensors: convolutions
 * (`.weight`, `.bias`), BatchNorm (`.weight`, `.bias`, `.running_mean`, `.running_var`) and dense
 * layers (`.weight` `[out, in]`, `.bias`). A tensor the source does not supply is an error naming it.
 * Returns the names that were loaded.
 *
 * @example
 * ```ts
 * const names = loadTorchStateDict(model, (name, shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)));
 * ```
 */
export function loadTorchStateDict(model: tf.LayersModel, source: TorchTensorSource): string[] {
  const loaded: string[] = [];
  const get = (name: string, shape: number[]) => {
    const v = source(name, shape);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!v) throw new RangeError(`missing PyTorch tensor "${name}" of shape [${shape.join(", ")}]`);
    if (v.length !== size) {
      throw new RangeError(`PyTorch tensor "${name}" has ${v.length} values, expected ${size}`);
    }
    loaded.push(name);
    return tf.tensor(Array.from(v), shape);
  };
  for (const layer of model.layers) {
    const prefix = torchModuleName(layer.name);
    if (layer instanceof Conv2d || layer instanceof ConvTranspose2d) {
      const weight = get(`${prefix}.weight`, layer.torchWeightShape());
      const bias = layer.geometry.bias
        ? get(`${prefix}.bias`, [layer.geometry.outChannels])
        : undefined;
      loadTorchWeights(layer, bias ? { weight, bias } : { weight });
      tf.dispose([weight, bias!]);
    } else if (layer instanceof BatchNorm2d) {
      const c = [layer.numFeatures];
      const ts = ["weight", "bias", "running_mean", "running_var"].map((s) =>
        get(`${prefix}.${s}`, c)
      );
      layer.setWeights(ts);
      tf.dispose(ts);
    } else if (layer.getClassName() === "Dense") {
      const [kernel] = layer.getWeights();
      const [inF, outF] = kernel.shape;
      const w = get(`${prefix}.weight`, [outF, inF]);
      const ts = [
        w.transpose(),
        ...(layer.getWeights().length > 1 ? [get(`${prefix}.bias`, [outF])] : []),
      ];
      layer.setWeights(ts);
      tf.dispose([w, ...ts]);
    } else if (layer.getWeights().length > 0) {
      throw new RangeError(
        `no PyTorch mapping for layer "${layer.name}" (${layer.getClassName()})`,
      );
    }
  }
  return loaded;
}
