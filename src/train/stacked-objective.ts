/**
 * The training objective of the common case, fixed task weights and one pointwise loss per task,
 * computed for all tasks at once on their logits stacked [T, B], in plain loops over float32 arrays
 * rather than as some thirty tfjs kernels (docs/performance-log.md: each cost ~20 µs of engine
 * overhead in a training step, for 2,048 numbers).
 *
 * The value and the gradient are those of the per-task path, bit for bit: taskLoss's pointwise op
 * per task, then weightedObjective, differentiated by the tape (test/stacked-objective.test.ts).
 * Every step below is the same float32 operation as the kernel it replaces, in the same order:
 * - element-wise kernels are IEEE float32 operations, which Math.fround of the double result gives
 *   exactly for +, −, ×, ÷ (a double holds the float operands' exact product and sum well enough to
 *   round once);
 * - a Sum adds a row in order from 0, one float32 addition at a time, as the backend's Sum does;
 * - softplus and sigmoid are the backend's own kernels (their approximations are the backend's:
 *   no formula here would give their bits), on the side of z each row reads (activations).
 */
import * as tf from '@tensorflow/tfjs';

const f = Math.fround;

/** Each task's labels and sample-space mask, stacked [T, B] in task order (row k: task k). */
export interface StackedTargets {
  labels: Float32Array;
  masks: Float32Array;
}

/** The per-task numbers the objective reads. */
export interface StackedTask {
  weight: number;
  pos_weight: number;
  losses: readonly { weight: number }[];
}

export interface StackedObjective {
  /** Σ_k w_k · lw_k · L_k, the value the tape's objective has. */
  total: number;
  /** Each task's weighted loss lw_k · L_k. */
  perTask: Float32Array;
  /** The logits' gradient [T · B] when the total's gradient is dy: what the tape would give. */
  grad(dy: number): Float32Array;
}

/**
 * Softplus and sigmoid of −z and of z, by the backend's kernels, as the loss reads them. A row with a
 * label of 1 reads only the −z side (its (1 − y) = 0 multiplies the other), a row labelled 0 only the
 * z side (y·pw = ±0 does): so when every label is 0 or 1 and every logit finite, the kernels run once,
 * on z with the sign of each row's side. The side a row does not read may then hold any finite
 * number that is not negative: ±0 times it is the zero ±0 times the true value gives, so the bits are
 * those of both sides computed (the test compares the two paths); an infinite logit would make
 * 0·∞ = NaN there, so non-finite logits and other labels get both sides.
 */
function activations(z: tf.Tensor2D, labels: Float32Array): { spNeg: Float32Array; spPos: Float32Array; sgNeg: Float32Array; sgPos: Float32Array } {
  const zs = z.dataSync() as Float32Array;
  let oneSided = true;
  for (let i = 0; i < zs.length && oneSided; i++) oneSided = Number.isFinite(zs[i]!) && (labels[i] === 0 || labels[i] === 1);
  if (!oneSided) {
    const outs = tf.tidy(() => {
      const nz = tf.neg(z);
      return [tf.softplus(nz), tf.softplus(z), tf.sigmoid(nz), tf.sigmoid(z)];
    });
    const [spNeg, spPos, sgNeg, sgPos] = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
    return { spNeg: spNeg!, spPos: spPos!, sgNeg: sgNeg!, sgPos: sgPos! };
  }
  const u = new Float32Array(zs.length);
  for (let i = 0; i < u.length; i++) u[i] = labels[i] === 1 ? -zs[i]! : zs[i]!;
  const outs = tf.tidy(() => {
    const ut = tf.tensor(u, z.shape);
    return [tf.softplus(ut), tf.sigmoid(ut)];
  });
  const [sp, sg] = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  // Each row's side holds its value; the side it does not read holds the same number, which is as
  // good as 1 there: finite and not negative (softplus > +0 or +0, sigmoid in [+0, 1]).
  return { spNeg: sp!, spPos: sp!, sgNeg: sg!, sgPos: sg! };
}

/**
 * pw·y·softplus(−z) + (1 − y)·softplus(z), averaged per task over the rows its mask keeps (at least
 * 1), each task's mean times its loss weight, the total weighted by the task weights: the objective
 * and its gradient, with the per-task path's kernels written out in their order (the comments name them).
 */
export function stackedPointwiseObjective(z: tf.Tensor2D, { labels, masks }: StackedTargets, tasks: readonly StackedTask[]): StackedObjective {
  const [T, B] = z.shape;
  if (T !== tasks.length || labels.length !== T * B || masks.length !== T * B) throw new Error(`stacked objective: logits [${T}, ${B}] for ${tasks.length} tasks and ${labels.length} labels`);
  const { spNeg, spPos, sgNeg, sgPos } = activations(z, labels);
  const rows = new Float32Array(T);
  const perTask = new Float32Array(T);
  let total = 0;
  for (let t = 0; t < T; t++) {
    const pw = f(tasks[t]!.pos_weight);
    let maskSum = 0;
    let lossSum = 0;
    for (let i = t * B; i < (t + 1) * B; i++) {
      const y = labels[i]!;
      const m = masks[i]!;
      // Multiply(y, pw), Sub(1, y); Add(Multiply(ypw, Softplus(Neg z)), Multiply(1 − y, Softplus z))
      const perRow = f(f(f(y * pw) * spNeg[i]!) + f(f(1 - y) * spPos[i]!));
      maskSum = f(maskSum + m); // Sum(mask)
      lossSum = f(lossSum + f(perRow * m)); // Sum(Multiply(perRow, mask))
    }
    rows[t] = Math.max(maskSum, 1); // Maximum(·, 1)
    const loss = f(lossSum / rows[t]!); // RealDiv
    perTask[t] = f(0 + f(loss * f(tasks[t]!.losses[0]!.weight))); // weightedObjective: 0 + L·lw
    total = f(total + f(perTask[t]! * f(tasks[t]!.weight))); // Sum over tasks of (task loss)·w, from 0
  }
  return {
    total,
    perTask,
    grad(dy: number): Float32Array {
      const dz = new Float32Array(T * B);
      for (let t = 0; t < T; t++) {
        // weightedObjective's gradient (dy·w)·lw, then RealDiv's (÷ rows): the task's dL per row
        const perLoss = f(f(f(f(dy) * f(tasks[t]!.weight)) * f(tasks[t]!.losses[0]!.weight)) / rows[t]!);
        gradientRows(dz, labels, masks, sgNeg, sgPos, t * B, (t + 1) * B, perLoss, f(tasks[t]!.pos_weight));
      }
      return dz;
    },
  };
}

/** The pointwise loss's gradient for rows [from, to) of one task whose dL is perLoss (a loop of its own: V8 optimises it whole). */
function gradientRows(dz: Float32Array, labels: Float32Array, masks: Float32Array, sgNeg: Float32Array, sgPos: Float32Array, from: number, to: number, perLoss: number, pw: number): void {
  for (let i = from; i < to; i++) {
    const y = labels[i]!;
    const dRow = f(perLoss * masks[i]!); // Sum's and Multiply's gradients: dL·mask
    // Neg(Multiply(Multiply(dRow, ypw), Sigmoid(Neg z))) + Multiply(Multiply(dRow, 1 − y), Sigmoid z)
    dz[i] = f(-f(f(dRow * f(y * pw)) * sgNeg[i]!) + f(f(dRow * f(1 - y)) * sgPos[i]!));
  }
}
