/**
 * Stochastic gradient descent exactly as PyTorch's `torch.optim.SGD` (dampening 0, no Nesterov):
 *
 * ```
 * g = grad + weightDecay · w
 * buf = momentum · buf + g        (buf = g at the first step)
 * w = w − lr · buf
 * ```
 *
 * The momentum buffers are plain tensors the optimizer owns; {@linkcode SGD.state} and
 * {@linkcode SGD.loadState} move them in and out of checkpoints. On the wasm backend with the
 * native kernels active, each parameter is updated in one pass over the heap with the same bits
 * as the tensor path (`_fused_sgd.ts`); otherwise by tfjs ops.
 *
 * @example
 * ```ts
 * import { SGD } from "./sgd.ts";
 * const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
 * const opt = new SGD(variables, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
 * opt.step(grads); // grads: { [variable.name]: tf.Tensor }, as tf.variableGrads returns them
 * ```
 * @module
 */
import { tf } from "../backend/tf.ts";
import { fusedSgdActive, fusedSgdStep } from "./_fused_sgd.ts";

/** Hyperparameters of {@linkcode SGD}. */
export interface SGDOptions {
  /** Learning rate (> 0). */
  lr: number;
  /** Momentum in [0, 1) (default 0). */
  momentum?: number;
  /** L2 weight decay (≥ 0, default 0), added to the gradient as PyTorch does. */
  weightDecay?: number;
}

/**
 * PyTorch's SGD over a list of variables.
 *
 * @example
 * ```ts
 * const opt = new SGD(vars, { lr: 0.1, momentum: 0.9 });
 * ```
 */
export class SGD {
  /** Current learning rate (a schedule may change it between steps). */
  lr: number;
  /** Momentum. */
  readonly momentum: number;
  /** Weight decay. */
  readonly weightDecay: number;
  /** Number of steps taken. */
  steps = 0;
  readonly #vars: tf.Variable[];
  #buffers = new Map<string, tf.Tensor>();

  constructor(variables: tf.Variable[], options: SGDOptions) {
    const { lr, momentum = 0, weightDecay = 0 } = options;
    if (!(Number.isFinite(lr) && lr > 0)) {
      throw new RangeError(`lr must be a positive number, got ${lr}`);
    }
    if (!(momentum >= 0 && momentum < 1)) {
      throw new RangeError(`momentum must be in [0, 1), got ${momentum}`);
    }
    if (!(weightDecay >= 0 && Number.isFinite(weightDecay))) {
      throw new RangeError(`weightDecay must be a non-negative number, got ${weightDecay}`);
    }
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.#vars = variables;
  }

  /**
   * Applies one update from gradients keyed by variable name (as `tf.variableGrads` returns
   * them). Gradients are not disposed.
   */
  step(grads: Record<string, tf.Tensor>): void {
    for (const v of this.#vars) {
      if (!grads[v.name]) throw new Error(`no gradient for variable "${v.name}"`);
    }
    // On wasm with the native kernels: one pass per parameter, the same bits (see _fused_sgd.ts).
    if (fusedSgdActive()) {
      this.#fusedStep(grads);
      return;
    }
    for (const v of this.#vars) {
      const grad = grads[v.name];
      const next = tf.tidy(() => {
        const w: tf.Tensor = v;
        const g = this.weightDecay > 0 ? grad.add(w.mul(this.weightDecay)) : grad;
        let direction = g;
        if (this.momentum > 0) {
          const prev = this.#buffers.get(v.name);
          const buf = prev ? prev.mul(this.momentum).add(g) : g.clone();
          prev?.dispose();
          this.#buffers.set(v.name, tf.keep(buf));
          direction = buf;
        }
        return w.sub(direction.mul(this.lr));
      });
      v.assign(next);
      next.dispose();
    }
    this.steps++;
  }

  #fusedStep(grads: Record<string, tf.Tensor>): void {
    const attrs = { lr: this.lr, momentum: this.momentum, weightDecay: this.weightDecay };
    for (const v of this.#vars) {
      const prev = this.momentum > 0 ? this.#buffers.get(v.name) : undefined;
      const [next, buf] = fusedSgdStep(v, grads[v.name], prev, attrs);
      if (buf !== undefined) {
        prev?.dispose();
        this.#buffers.set(v.name, tf.keep(buf));
      }
      v.assign(next);
      next.dispose();
    }
    this.steps++;
  }

  /** The momentum buffers by variable name (the optimizer keeps owning them) and the step count. */
  state(): { steps: number; buffers: Map<string, tf.Tensor> } {
    return { steps: this.steps, buffers: this.#buffers };
  }

  /** Replaces the state with copies of the given buffers (e.g. read from a checkpoint). */
  loadState(state: { steps: number; buffers: Map<string, tf.Tensor> }): void {
    this.dispose();
    this.steps = state.steps;
    for (const [name, t] of state.buffers) this.#buffers.set(name, tf.keep(t.clone()));
  }

  /** Frees the momentum buffers. */
  dispose(): void {
    for (const t of this.#buffers.values()) t.dispose();
    this.#buffers.clear();
  }
}
