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

/** Sigmoid cross-entropy with a positive weight, averaged over the task's rows. */
const pointwise: LossFn = ({ logits: z, labels: y, mask, posWeight }) => {
  // pw * y * softplus(-z) + (1 - y) * softplus(z)
  const perRow = tf.add(tf.mul(tf.mul(y, posWeight), tf.softplus(tf.neg(z))), tf.mul(tf.sub(1, y), tf.softplus(z)));
  return safeDiv(sum(tf.mul(perRow, mask)), sum(mask));
};

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

/** Whether a loss needs batches made of whole requests. */
export function needsWholeRequests(cfg: LossConfig): boolean {
  return cfg.type !== 'pointwise';
}
