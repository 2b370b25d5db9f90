/**
 * Frees memory during tfjs's backward pass. tfjs 4.22 keeps every intermediate gradient (the
 * `dy` of each recorded operation) and every tensor saved for the backward pass until the whole
 * gradient computation ends, so the backward pass of the DenseNet holds the gradients of all its
 * activations at once: at batch 64 the live tensor bytes peaked at 1.4 GB, at the very end of
 * the backward pass. Each `dy` is read by exactly one operation (the one that produced its
 * tensor) and each saved tensor by its own operation's gradient, so both can go as soon as that
 * operation's gradient has been computed. This module wraps every recorded gradient function so
 * that, when the next operation's gradient starts (tfjs evaluates all input gradients of one
 * operation before moving on), the previous operation's `dy`s and saved tensors are disposed,
 * except any tensor that a gradient returned as is. Values are unchanged: only disposal moves
 * earlier. Higher-order gradients (a tape recording while gradients run) are left alone.
 *
 * @example
 * ```ts
 * import { installFrugalBackward } from "./_frugal_backward.ts";
 * const uninstall = installFrugalBackward();
 * ```
 * @module
 */
// Straight from tfjs: tf.ts installs this module, so importing tf.ts here would be a cycle.
import * as tf from "@tensorflow/tfjs";

type Thunks = Record<string, () => tf.Tensor>;

interface TapeNode {
  saved?: tf.Tensor[];
  gradient?: (dys: tf.Tensor[]) => Thunks;
}

/** The parts of tfjs's engine this module hooks (tfjs-core 4.22 `Engine`). */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  addTapeNode: (...args: unknown[]) => void;
  gradients: (...args: unknown[]) => unknown;
}

/** What the last processed operation left to free, and what must survive. */
interface Pending {
  tensors: tf.Tensor[];
  returned: Set<tf.Tensor>;
}

/**
 * Installs the early disposal (see the module doc) on tfjs's engine; returns a function that
 * restores the original behaviour. Installing twice is a no-op that returns the same restorer.
 *
 * @example
 * ```ts
 * const uninstall = installFrugalBackward();
 * uninstall();
 * ```
 */
export function installFrugalBackward(): () => void {
  const engine = tf.engine() as unknown as EngineInternals & { [INSTALLED]?: () => void };
  if (engine[INSTALLED]) return engine[INSTALLED];
  const addTapeNode = engine.addTapeNode, gradients = engine.gradients;
  let pending: Pending | undefined;
  // Gradients returned by some operation's gradient function during this backward pass, and
  // those returned twice (the same object for two inputs would sit in two places of tfjs's map).
  let returned = new Set<tf.Tensor>(), twice = new Set<tf.Tensor>();
  const flush = () => {
    if (!pending) return;
    for (const t of pending.tensors) {
      if (!pending.returned.has(t) && !twice.has(t)) t.dispose();
    }
    pending = undefined;
  };
  engine.gradients = function (this: EngineInternals, ...args: unknown[]) {
    flush();
    returned = new Set();
    twice = new Set();
    try {
      return gradients.apply(this, args);
    } finally {
      flush();
      returned = new Set();
      twice = new Set();
    }
  };
  engine.addTapeNode = function (this: EngineInternals, ...args: unknown[]) {
    addTapeNode.apply(this, args);
    const tape = this.state.activeTape;
    const node = tape?.[tape.length - 1];
    const gradient = node?.gradient;
    if (!node || !gradient) return;
    node.gradient = (dys: tf.Tensor[]) => {
      // Only first-order gradients: with a tape recording, the dys may be needed again.
      if (this.state.gradientDepth > 0) return gradient(dys);
      flush();
      const mine: Pending = { tensors: [...dys, ...(node.saved ?? [])], returned: new Set() };
      pending = mine;
      const thunks = gradient(dys);
      const wrapped: Thunks = {};
      for (const [name, thunk] of Object.entries(thunks)) {
        wrapped[name] = () => {
          const dx = thunk();
          mine.returned.add(dx);
          if (returned.has(dx)) twice.add(dx);
          returned.add(dx);
          return dx;
        };
      }
      return wrapped;
    };
  };
  const uninstall = () => {
    flush();
    engine.addTapeNode = addTapeNode;
    engine.gradients = gradients;
    delete engine[INSTALLED];
  };
  engine[INSTALLED] = uninstall;
  return uninstall;
}

const INSTALLED = Symbol("frugalBackward");
