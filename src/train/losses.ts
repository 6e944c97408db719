/**
 * The loss registry. Each loss maps one task's logits on a batch to a scalar; the trainer adds
 * them up with the task weight times the loss weight (docs/domain.md, Samples and losses).
 *
 * Per-request losses avoid gather/segment kernels: a one-hot request membership matrix S [Q, B]
 * turns per-request sums into matmuls (S · v) and broadcasts back with S^T, which every tfjs
 * backend runs fast and differentiates exactly.
 */
import * as tf from '@tensorflow/tfjs';
import type { LossConfig } from '../config/experiment.js';

export interface LossInputs {
  logits: tf.Tensor1D;
  /** 0/1 labels of the task [B]. */
  labels: tf.Tensor1D;
  /** 1 where the row belongs to the task's sample space [B]. */
  mask: tf.Tensor1D;
  posWeight: number;
  /** Request membership [Q, B] (one-hot columns); present when the batch holds whole requests. */
  requests?: tf.Tensor2D;
  /** 1 for exposures [B]. */
  exposure?: tf.Tensor1D;
  /** Teacher scores by name [B]. */
  teacher?: Map<string, tf.Tensor1D>;
}

export type LossFn = (inputs: LossInputs, cfg: LossConfig) => tf.Scalar;

const sum = (t: tf.Tensor) => tf.sum(t) as tf.Scalar;
const safeDiv = (a: tf.Scalar, b: tf.Scalar) => tf.div(a, tf.maximum(b, 1)) as tf.Scalar;

/**
 * A loss and its gradient with respect to the logits, written out: `grad(dy)` runs the kernels
 * tfjs's tape would run to differentiate the loss, with the same operands (multiplication and
 * addition commute bit for bit), so the gradient has the same bits; `saved` are the tensors `grad`
 * reads, inputs included. Run as one custom op (taskLoss), the loss's forward kernels are not recorded
 * on the tape,
 * which spares the tape's copy of every saved input and its gradient bookkeeping: a third of the
 * tfjs kernels of a training step (docs/performance-log.md).
 */
export interface ExplicitLoss {
  value: tf.Scalar;
  grad: (dy: tf.Tensor) => tf.Tensor1D;
  saved: tf.Tensor[];
}

/**
 * Sigmoid cross-entropy with a positive weight, averaged over the rows the mask keeps, with its
 * gradient (z, y and mask [B]). stacked-objective.ts computes the same for all tasks at once, kernel
 * for kernel, and its test holds the two to the same bits.
 */
function pointwiseRows(z: tf.Tensor, y: tf.Tensor, mask: tf.Tensor, posWeight: number | tf.Tensor): { value: tf.Tensor; grad: (dL: tf.Tensor) => tf.Tensor; saved: tf.Tensor[] } {
  // pw * y * softplus(-z) + (1 - y) * softplus(z)
  const ypw = tf.mul(y, posWeight);
  const nz = tf.neg(z);
  const oneMinusY = tf.sub(1, y);
  const perRow = tf.add(tf.mul(ypw, tf.softplus(nz)), tf.mul(oneMinusY, tf.softplus(z)));
  const rows = tf.maximum(tf.sum(mask, -1), 1);
  const value = tf.div(tf.sum(tf.mul(perRow, mask), -1), rows);
  const grad = (dL: tf.Tensor): tf.Tensor => {
    // RealDiv's gradient, then Sum's (dL·1 on every row) and Multiply's (·mask): the row's dL.
    const dRow = tf.mul(tf.div(dL, rows), mask);
    // Add passes dRow to both terms; Multiply, Softplus (·sigmoid of its input) and Neg follow;
    // z's two gradients are added (two terms: either order gives the same bits).
    const viaNeg = tf.neg(tf.mul(tf.mul(dRow, ypw), tf.sigmoid(nz)));
    const direct = tf.mul(tf.mul(dRow, oneMinusY), tf.sigmoid(z));
    return tf.add(viaNeg, direct);
  };
  return { value, grad, saved: [ypw, nz, oneMinusY, rows, mask, z] };
}

/** The pointwise loss of one task, with its gradient. */
function pointwiseExplicit({ logits, labels, mask, posWeight }: LossInputs): ExplicitLoss {
  return pointwiseRows(logits, labels, mask, posWeight) as ExplicitLoss;
}

const pointwise: LossFn = (inputs) => pointwiseExplicit(inputs).value;

/**
 * Multi-positive list-wise loss: each positive i of a request competes with the request's
 * negatives only: -log(e^{z_i} / (e^{z_i} + sum_{j in N} e^{z_j})) = softplus(log sum_N e^{z_j} - z_i).
 * Requests without a positive or a negative add nothing; normalised by the positives that count.
 */
const listwise: LossFn = ({ logits: z, labels: y, mask, requests: S }) => {
  if (!S) throw new Error('list-wise loss needs batches of whole requests');
  const pos = tf.mul(y, mask);
  const neg = tf.mul(tf.sub(1, y), mask);
  const c = tf.max(z); // shift for stability; cancels exactly in the loss
  const negSum = tf.reshape(tf.matMul(S, tf.reshape(tf.mul(tf.exp(tf.sub(z, c)), neg), [-1, 1])), [-1]); // [Q]
  const hasNeg = tf.cast(tf.greater(tf.reshape(tf.matMul(S, tf.reshape(neg, [-1, 1])), [-1]), 0), 'float32'); // [Q]
  // Broadcast per-request values back to rows with S^T.
  const rowLogNeg = tf.reshape(tf.matMul(S, tf.reshape(tf.log(tf.add(negSum, 1e-30)), [-1, 1]), true), [-1]);
  const rowHasNeg = tf.reshape(tf.matMul(S, tf.reshape(hasNeg, [-1, 1]), true), [-1]);
  const counted = tf.mul(pos, rowHasNeg);
  const perRow = tf.softplus(tf.sub(tf.add(rowLogNeg, c), z));
  return safeDiv(sum(tf.mul(perRow, counted)), sum(counted));
};

/**
 * Distillation: the teacher's scores, normalised over a request's exposures, are soft labels for
 * the softmax of the student's logits / temperature over the same exposures.
 */
const distill: LossFn = ({ logits: z, requests: S, exposure, teacher }, cfg) => {
  if (cfg.type !== 'distill') throw new Error('distill loss misconfigured');
  if (!S || !exposure || !teacher) throw new Error('distillation needs whole requests, stages and teacher scores');
  const t = teacher.get(cfg.teacher);
  if (!t) throw new Error(`teacher score ${cfg.teacher} not loaded`);
  const col = (v: tf.Tensor) => tf.reshape(v, [-1, 1]);
  const back = (perReq: tf.Tensor) => tf.reshape(tf.matMul(S, tf.reshape(perReq, [-1, 1]), true), [-1]);
  const tw = tf.mul(t, exposure);
  const tSum = tf.reshape(tf.matMul(S, col(tw)), [-1]); // [Q]
  const target = tf.div(tw, tf.maximum(back(tSum), 1e-12)); // q_i, zero off exposures
  const zs = tf.div(z, cfg.temperature);
  const c = tf.max(zs);
  const e = tf.mul(tf.exp(tf.sub(zs, c)), exposure);
  const logZ = tf.add(tf.log(tf.add(tf.reshape(tf.matMul(S, col(e)), [-1]), 1e-30)), c); // [Q]
  const logSoftmax = tf.sub(zs, back(logZ));
  const perRow = tf.neg(tf.mul(target, logSoftmax));
  const requestsWithTeacher = sum(tf.cast(tf.greater(tSum, 0), 'float32'));
  return safeDiv(sum(perRow), requestsWithTeacher);
};

export const lossRegistry: Record<LossConfig['type'], LossFn> = { pointwise, listwise, distill };

/** The losses with a written-out gradient (the others are differentiated by the tape). */
const explicitLosses: Partial<Record<LossConfig['type'], (inputs: LossInputs, cfg: LossConfig) => ExplicitLoss>> = {
  pointwise: pointwiseExplicit,
};

/**
 * A loss of the logits, differentiable by the tape: one custom op when the loss has a written-out
 * gradient (same value, same gradient bits, far fewer recorded kernels), else the loss itself.
 * The op keeps what its gradient reads (its forward runs in a tidy scope, and so may the caller's)
 * and hands it to `keepAlive`, which the caller disposes after the gradient.
 */
export function taskLoss(inputs: LossInputs, cfg: LossConfig, keepAlive: tf.Tensor[]): tf.Scalar {
  const explicit = explicitLosses[cfg.type];
  if (explicit === undefined) return lossRegistry[cfg.type](inputs, cfg);
  const op = tf.customGrad((...args: unknown[]) => {
    const { value, grad, saved } = explicit({ ...inputs, logits: args[0] as tf.Tensor1D }, cfg);
    keepAlive.push(...saved.map((t) => tf.keep(t)));
    return { value, gradFunc: grad };
  }) as unknown as (z: tf.Tensor) => tf.Scalar;
  return op(inputs.logits);
}

/** Whether a loss needs batches made of whole requests. */
export function needsWholeRequests(cfg: LossConfig): boolean {
  return cfg.type !== 'pointwise';
}

/**
 * The objective of fixed task weights (tasks[k].weight = w_k, tasks[k].losses[l].weight = lw_kl),
 * total = Σ_k w_k · (Σ_l lw_kl · L_kl), with the same ops in
 * the same order as adding the terms one by one from 0 (so the same bits), as one op for the tape:
 * recorded op by op, each Add and Multiply kept copies of both inputs. The gradient of L_kl is
 * (dy·w_k)·lw_kl, as the tape's Multiply gradients compute it. Also returns each task's loss
 * Σ_l lw_kl · L_kl, kept (for reporting: no gradient flows through them).
 */
export function weightedObjective(terms: tf.Scalar[][], tasks: readonly { weight: number; losses: readonly { weight: number }[] }[]): { total: tf.Scalar; perTask: tf.Scalar[] } {
  const taskWeights = tasks.map((t) => t.weight);
  const lossWeights = tasks.map((t) => t.losses.map((l) => l.weight));
  const perTask: tf.Scalar[] = [];
  const op = tf.customGrad((...args: unknown[]) => {
    let next = 0;
    let total = tf.scalar(0);
    for (let k = 0; k < terms.length; k++) {
      let taskLoss = tf.scalar(0);
      for (let l = 0; l < terms[k]!.length; l++) taskLoss = tf.add(taskLoss, tf.mul(args[next++] as tf.Scalar, lossWeights[k]![l]!));
      perTask.push(tf.keep(taskLoss));
      total = tf.add(total, tf.mul(taskLoss, taskWeights[k]!));
    }
    return {
      value: total,
      gradFunc: (dy: tf.Tensor) => terms.flatMap((ls, k) => ls.map((_, l) => tf.mul(tf.mul(dy, taskWeights[k]!), lossWeights[k]![l]!))),
    };
  }) as unknown as (...losses: tf.Scalar[]) => tf.Scalar;
  const total = op(...terms.flat());
  return { total, perTask };
}

/** Whether every task's loss is one pointwise term (what the stacked objective computes: stacked-objective.ts). */
export function singlePointwiseTasks(tasks: readonly { losses: readonly LossConfig[] }[]): boolean {
  return tasks.every((t) => t.losses.length === 1 && t.losses[0]!.type === 'pointwise');
}
