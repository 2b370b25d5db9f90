import { tf } from "../backend/tf.ts";

/** The tf.Variables behind a model's trainable weights (what gradients are taken against). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** tf.Variable name (unique per process) → stable weight name (`lowconv/kernel`). */
export function variableToWeightName(model: tf.LayersModel): Map<string, string> {
  return new Map(
    model.trainableWeights.map((w) => [(w.read() as tf.Variable).name, w.originalName]),
  );
}
