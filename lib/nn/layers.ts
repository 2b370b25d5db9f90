/**
 * The remaining PyTorch layers the article's DenseNet needs, with PyTorch's semantics:
 * `BatchNorm2d` (momentum 0.1, eps 1e-5, biased batch variance for normalising and unbiased for
 * the running estimate, weight 1 and bias 0 at start), `linear` (PyTorch's default
 * initialisation) and `FlattenCHW` (flattens in PyTorch's channel-major order, so a `Linear`
 * weight maps one to one).
 *
 * @example
 * ```ts
 * import { BatchNorm2d } from "./layers.ts";
 * const bn = new BatchNorm2d({ numFeatures: 64 });
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import {
  type BatchNormTraining,
  nativeBatchNormActive,
  nativeBatchNormInference,
  nativeBatchNormTraining,
  runningAverages,
} from "../backend/native/batch_norm.ts";
import { checkInt } from "./shapes.ts";
import { torchUniform, torchUniformBound } from "./init.ts";

/** Arguments of {@linkcode BatchNorm2d}. */
export interface BatchNorm2dArgs {
  /** Channels (last dimension, NHWC). */
  numFeatures: number;
  /** Added to the variance (PyTorch default 1e-5). */
  eps?: number;
  /** Weight of the new batch statistic in the running averages (PyTorch default 0.1). */
  momentum?: number;
  /** Layer name. */
  name?: string;
}

/**
 * `nn.BatchNorm2d` on NHWC tensors. In training (`apply(x, { training: true })`) it normalises
 * with the batch mean and biased variance over batch, height and width, and updates the running
 * averages as PyTorch does: `running = (1 − momentum)·running + momentum·batch`, with the
 * unbiased variance `n/(n−1)·var`. Otherwise it normalises with the running averages. Training
 * mode has a closed-form gradient for x, weight and bias (see `batchNormTraining`). On the wasm
 * backend with the native kernels, both modes and the gradient are oneDNN's batch normalization,
 * one call each (`../backend/native/batch_norm.ts`); the running averages are updated the same way.
 *
 * @example
 * ```ts
 * const bn = new BatchNorm2d({ numFeatures: 3 });
 * const y = bn.apply(tf.randomNormal([4, 8, 8, 3]), { training: true }) as tf.Tensor;
 * ```
 */
export class BatchNorm2d extends tf.layers.Layer {
  /** tfjs serialization name. */
  static className = "BatchNorm2d";
  /** Channels. */
  readonly numFeatures: number;
  /** Variance fuzz. */
  readonly eps: number;
  /** Running-average momentum (PyTorch's convention). */
  readonly momentum: number;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;
  private runningMean?: tf.LayerVariable;
  private runningVar?: tf.LayerVariable;

  constructor(args: BatchNorm2dArgs) {
    super({ name: args.name });
    this.numFeatures = checkInt("numFeatures", args.numFeatures, 1);
    this.eps = args.eps ?? 1e-5;
    this.momentum = args.momentum ?? 0.1;
    if (!(this.eps > 0)) throw new RangeError(`eps must be positive, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(`momentum must be in [0, 1], got ${this.momentum}`);
    }
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape[shape.length - 1] !== this.numFeatures) {
      throw new RangeError(
        `BatchNorm2d "${this.name}" expects ${this.numFeatures} channels (last dimension), ` +
          `got input shape [${shape.map((d) => d ?? "?").join(", ")}]`,
      );
    }
    const c = [this.numFeatures];
    this.gamma = this.addWeight("weight", c, "float32", tf.initializers.ones());
    this.beta = this.addWeight("bias", c, "float32", tf.initializers.zeros());
    this.runningMean = this.addWeight(
      "running_mean",
      c,
      "float32",
      tf.initializers.zeros(),
      undefined,
      false,
    );
    this.runningVar = this.addWeight(
      "running_var",
      c,
      "float32",
      tf.initializers.ones(),
      undefined,
      false,
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const gamma = this.gamma!.read(), beta = this.beta!.read();
    const native = nativeBatchNormActive(x);
    if (!kwargs?.training && native) {
      const [mean, variance] = [this.runningMean!.read(), this.runningVar!.read()];
      return nativeBatchNormInference(x, gamma, beta, mean, variance, this.eps);
    }
    if (!kwargs?.training) {
      // x·scale + shift with per-channel scale and shift: two passes, where tfjs-wasm's
      // FusedBatchNorm kernel measured 5–15× slower than one broadcast multiply.
      return tf.tidy(() => {
        const scale = tf.mul(gamma, tf.rsqrt(tf.add(this.runningVar!.read(), this.eps)));
        const shift = tf.sub(beta, tf.mul(this.runningMean!.read(), scale));
        return tf.add(tf.mul(x, scale), shift);
      });
    }
    const n = x.size / this.numFeatures;
    // On wasm with the native kernels, oneDNN's batch normalization (./../backend/native/).
    const normalise = native ? nativeBatchNormTraining : batchNormTraining;
    // A named scope, so that tf.profile lists the forward pass as "BatchNorm2d" (its time
    // includes the kernels inside it, which are listed too) rather than "unnamed scope".
    return tf.tidy("BatchNorm2d", () =>
      normalise(x, gamma, beta, this.eps, (mean, variance) => {
        // Running averages are state, not part of the loss; batchNormTraining calls this outside
        // the gradient tape.
        const m = this.momentum;
        if (native) {
          // The same values in one kernel instead of seven (../backend/native/batch_norm.ts).
          const [rm, rv] = [this.runningMean!.read(), this.runningVar!.read()];
          const [newMean, newVar] = runningAverages(rm, rv, mean, variance, m, n);
          this.runningMean!.write(newMean);
          this.runningVar!.write(newVar);
          return;
        }
        const unbiased = n > 1 ? variance.mul(n / (n - 1)) : variance;
        this.runningMean!.write(this.runningMean!.read().mul(1 - m).add(mean.mul(m)));
        this.runningVar!.write(this.runningVar!.read().mul(1 - m).add(unbiased.mul(m)));
      }));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numFeatures: this.numFeatures,
      eps: this.eps,
      momentum: this.momentum,
    };
  }
}

/**
 * Training-mode batch normalisation over every axis but the last, `y = γ·x̂ + β` with
 * `x̂ = (x − mean)/√(var + eps)` and the batch mean and biased variance, with the closed-form
 * gradient: autograd through `tf.moments` and `tf.batchNorm` costs about 15 passes over the
 * activation, this 8. With `n` elements per channel and sums over them: `dβ = Σdy`,
 * `dγ = Σ dy·x̂`, `dx = (γ/(n·√(var + eps)))·(n·dy − Σdy − x̂·Σ dy·x̂)`. Only elementwise ops
 * against `[C]` vectors and sums: tfjs-wasm's `FusedBatchNorm` kernel takes several times as long
 * as a broadcast multiply. `gamma` and `beta` are inputs of the custom gradient so that
 * `tf.variableGrads` reaches the variables behind them. `onMoments` gets the batch mean and
 * variance (`[C]`, disposed afterwards; the values `tf.moments` gives) inside a tidy and outside
 * the tape, for running averages.
 */
const batchNormTraining: BatchNormTraining = (x, gamma, beta, eps, onMoments) => {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const n = x.size / x.shape[x.rank - 1];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    // The forward runs inside a tidy with the tape off: only y and what `save` keeps survive.
    // Mean, centring and variance are tf.moments' own ops, so the running stats are unchanged.
    const mean = tf.mean(xIn, axes);
    const centred = tf.sub(xIn, mean);
    const variance = tf.mean(tf.square(centred), axes);
    onMoments(mean, variance);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    // x rather than x − mean is saved: x is alive anyway, and re-centring costs one pass.
    save([xIn, mean, invStd, g]);
    return {
      value: tf.add(tf.mul(centred, tf.mul(g, invStd)), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, mu, is, gs] = saved;
          const c = tf.sub(xs, mu);
          const sumDy = tf.sum(dy, axes);
          const sumDyXhat = tf.mul(tf.sum(tf.mul(dy, c), axes), is);
          // dx = γ·invstd·(dy − Σdy/n − (x − mean)·invstd·Σ(dy·x̂)/n)
          const slope = tf.mul(is, tf.div(sumDyXhat, n));
          const inner = tf.sub(tf.sub(dy, tf.mul(c, slope)), tf.div(sumDy, n));
          return [tf.mul(inner, tf.mul(gs, is)), sumDyXhat, sumDy];
        }),
    };
  });
  return f(x, gamma, beta);
};

/**
 * Flattens NHWC activations in PyTorch's `[C, H, W]` order (as `x.view(n, -1)` on NCHW does), so
 * that the following `Linear` layer's weights correspond one to one with PyTorch's.
 *
 * @example
 * ```ts
 * new FlattenCHW().apply(tf.zeros([2, 4, 4, 64])); // shape [2, 1024]
 * ```
 */
export class FlattenCHW extends tf.layers.Layer {
  /** tfjs serialization name. */
  static className = "FlattenCHW";

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0], s.slice(1).reduce((a, b) => (a ?? 0) * (b ?? 0), 1)];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => x.transpose([0, 3, 1, 2]).reshape([x.shape[0], -1]));
  }
}

/**
 * PyTorch's `nn.Linear(inFeatures, outFeatures)` as a tfjs dense layer: weight and bias uniform
 * in ±1/√inFeatures. The tfjs kernel is `[in, out]`, the transpose of PyTorch's weight.
 *
 * @example
 * ```ts
 * const fc = linear({ inFeatures: 1024, outFeatures: 512, name: "pre_classifier" });
 * ```
 */
export function linear(
  args: { inFeatures: number; outFeatures: number; bias?: boolean; seed?: number; name?: string },
): tf.layers.Layer {
  const bound = torchUniformBound(checkInt("inFeatures", args.inFeatures, 1));
  return tf.layers.dense({
    units: checkInt("outFeatures", args.outFeatures, 1),
    inputDim: args.inFeatures,
    useBias: args.bias ?? true,
    kernelInitializer: torchUniform(bound, args.seed),
    biasInitializer: torchUniform(bound, args.seed === undefined ? undefined : args.seed + 1),
    name: args.name,
  });
}

tf.serialization.registerClass(BatchNorm2d);
tf.serialization.registerClass(FlattenCHW);
