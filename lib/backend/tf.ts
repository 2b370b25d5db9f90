/**
 * The project's handle on TensorFlow.js. Every module of lib/ imports `tf` from here, so the
 * settings below are in force before the first tensor exists.
 *
 * tfjs believes it runs in Node.js under Deno and, on first use of its CPU backend, prints
 * "Hi, looks like you are running TensorFlow.js in Node.js…" through its warning channel, which
 * would land in notebook outputs. Production mode silences that channel (and skips tfjs's debug
 * checks, which are off by default anyway).
 *
 * The backward pass frees each intermediate gradient as soon as it has been used
 * (`_frugal_backward.ts`), which tfjs itself only does when the whole gradient is done.
 *
 * @example
 * ```ts
 * import { tf } from "./tf.ts";
 * tf.tensor([1, 2, 3]).print();
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { installFrugalBackward } from "./_frugal_backward.ts";

tf.enableProdMode();
// Gradients and saved tensors are freed as the backward pass goes, not all at its end (about
// half the peak memory of a DenseNet training step; see _frugal_backward.ts).
installFrugalBackward();

export { tf };
