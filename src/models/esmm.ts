/**
 * ESMM (Ma et al., SIGIR 2018): a CTR tower and a CVR tower over the shared input;
 * pCTCVR = pCTR x pCVR, so both losses (CTR and CTCVR) are taken over all exposures and the CVR
 * tower is trained through the product, never on clicked rows alone.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../base/errors.js';
import { arr, int } from '../config/schema.js';
import type { StateUpdate } from './layers.js';
import { denseOptions, SeedBases, Tower } from './common.js';
import { defineModel, modelParams } from './model.js';

/** log(e^a + e^b), exact and smooth (both branches agree, with equal derivatives, at a = b). */
function logAddExp(a: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor1D {
  const aBig = tf.greaterEqual(a, b);
  const hi = tf.where(aBig, a, b);
  const lo = tf.where(aBig, b, a);
  return tf.add(hi, tf.softplus(tf.sub(lo, hi))) as tf.Tensor1D;
}

/**
 * logit(sigmoid(z1) * sigmoid(z2)), computed in log space so it stays finite and accurate for any
 * finite logits, including p -> 1 (where 1 - p1 p2 would cancel) and p -> 0:
 *   log(p1 p2)     = -softplus(-z1) - softplus(-z2)
 *   log(1 - p1 p2) = log((1 - p1) + p1 (1 - p2)) = logaddexp(-softplus(z1), -softplus(-z1) - softplus(z2))
 * No subtraction of nearly equal probabilities happens anywhere.
 */
export function logitOfProduct(z1: tf.Tensor1D, z2: tf.Tensor1D): tf.Tensor1D {
  const logP1 = tf.neg(tf.softplus(tf.neg(z1)));
  const logP2 = tf.neg(tf.softplus(tf.neg(z2)));
  const log1mP1 = tf.neg(tf.softplus(z1)) as tf.Tensor1D;
  const logP1Times1mP2 = tf.sub(logP1, tf.softplus(z2)) as tf.Tensor1D;
  return tf.sub(tf.add(logP1, logP2), logAddExp(log1mP1, logP1Times1mP2)) as tf.Tensor1D;
}

/**
 * Parameters: `hidden` ([128, 64]) for both towers. Tasks: exactly two, in the order CTR, CTCVR.
 * Names: `tower_ctr/...`, `tower_cvr/...`. logits = [z_ctr, logit(pCTR pCVR)]; own = [z_ctr, z_cvr].
 */
export const esmm = defineModel({
  name: 'esmm',
  schema: modelParams(
    { hidden: arr(int({ min: 1 }), { default: [128, 64], description: 'Hidden sizes of the CTR and the CVR tower.' }) },
    'ESMM (Ma et al., SIGIR 2018): CTR and CVR towers, pCTCVR = pCTR x pCVR; needs exactly two tasks in the order CTR, CTCVR (both over all exposures).',
  ),
  build(p, inputDim, tasks, params) {
    if (tasks.length !== 2) {
      throw new ConfigError(
        `model.type: esmm needs exactly 2 tasks in the order CTR, CTCVR (pCTCVR = pCTR x pCVR), found ${tasks.length}${tasks.length ? ` (${tasks.join(', ')})` : ''}`,
      );
    }
    const opts = denseOptions(p);
    const seeds = new SeedBases();
    const hidden = p.hidden;
    const ctr = new Tower(params, 'tower_ctr', inputDim, hidden, opts, seeds.take());
    const cvr = new Tower(params, 'tower_cvr', inputDim, hidden, opts, seeds.take());
    return {
      type: 'esmm',
      forward(x, ctx) {
        const updates: StateUpdate[] = [];
        const zCtr = ctr.apply(x, ctx, updates);
        const zCvr = cvr.apply(x, ctx, updates);
        return { logits: [zCtr, logitOfProduct(zCtr, zCvr)], own: [zCtr, zCvr], updates };
      },
    };
  },
});
