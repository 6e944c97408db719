/**
 * A training step's forward and backward pass without tfjs's gradient tape, for the common case:
 * fixed task weights, one pointwise loss per task, and a model whose dense layers run as its native
 * training program (models/dense-program-train.ts). The gradient is then written out end to end:
 * the stacked objective's (stacked-objective.ts) feeds the program's backward pass directly, each
 * the arithmetic the tape would run, so the loss and every gradient have the tape's bits
 * (test/dense-program-train.test.ts trains both ways). What it spares is the tape's bookkeeping:
 * recording each kernel with its saved inputs, and walking the tape back (docs/performance-log.md).
 */
import * as tf from '@tensorflow/tfjs';
import { programParams, programPass } from '../models/dense-program-train.js';
import type { MultiTaskModel } from '../models/model.js';
import { stackedPointwiseObjective, type StackedTargets, type StackedTask } from './stacked-objective.js';

export interface ProgramStep {
  /** The objective, a scalar. */
  value: tf.Scalar;
  /** Each task's weighted loss, [T]. */
  perTask: tf.Tensor1D;
  /** The gradients of x, then of each trainable weight in order. */
  grads: tf.Tensor[];
}

/**
 * The step's pass, or null when the model has no training program, the native pass does not apply,
 * or a trainable weight lies outside the program.
 */
export function programStep(
  model: MultiTaskModel,
  x: tf.Tensor2D,
  targets: () => StackedTargets,
  tasks: readonly StackedTask[],
  trainable: readonly tf.Variable[],
): ProgramStep | null {
  const program = model.trainingProgram;
  if (!program) return null;
  const params = programParams(program);
  // A trainable weight outside the program needs the tape.
  if (!trainable.every((v) => params.includes(v))) return null;
  const pass = programPass(program, x);
  if (pass === null) return null;
  // Two tensors live between the passes (the logits and their gradient), disposed here rather than
  // by a tidy scope, whose bookkeeping over the step's outputs cost more than the objective's loops.
  let dz: tf.Tensor | null = null;
  try {
    const objective = stackedPointwiseObjective(pass.logits, targets(), tasks);
    // The tape starts from ones of the objective's shape: the total's gradient is 1.
    dz = tf.tensor2d(objective.grad(1), pass.logits.shape);
    const [gradX, ...paramGrads] = pass.backward(dz);
    const byWeight = new Map(params.map((v, i) => [v, paramGrads[i]!]));
    const grads = [gradX!, ...trainable.map((v) => byWeight.get(v)!)];
    tf.dispose(paramGrads.filter((g) => !grads.includes(g))); // a program weight that is not trainable
    return { value: tf.scalar(objective.total), perTask: tf.tensor1d(objective.perTask), grads };
  } finally {
    tf.dispose([pass.logits, ...(dz ? [dz] : [])]);
  }
}
