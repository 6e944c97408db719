/**
 * AITM (Xi et al., KDD 2021, "Modeling the Sequential Dependence among Audience Multi-step
 * Conversions with Multi-task Learning in Targeted Display Advertising").
 *
 * Tasks in funnel order (e.g. CTR, then CTCVR). Each task k has a tower q_k = MLP_k(x). Task 1's
 * representation is z_1 = q_1. For k >= 2 the Adaptive Information Transfer module mixes q_k with
 * the information transferred from the previous task, p_{k-1} = h_{k-1}(z_{k-1}) (one dense layer
 * to the tower width, the model's activation):
 *   items u in {p_{k-1}, q_k};  w_u = softmax_u( <Q u, K u> / sqrt(d) );  z_k = sum_u w_u V u
 * with Q, K, V linear maps (no bias, as in the authors' code) to d = `attention_dim`.
 * Each task's logit is a linear layer on z_k.
 *
 * Behavioural calibration (the paper's label constraint): while training the model returns
 * extraLoss = calibration_weight * sum_{k>=2} mean_rows max(p_k - p_{k-1}, 0), penalising a later
 * step of the funnel scored above an earlier one. The paper uses weight 0.6; the default here is 0.3.
 */
import * as tf from '@tensorflow/tfjs';
import { arr, int, num } from '../config/schema.js';
import { DenseBlock, LogitLayer, Mlp, type DenseOptions, type ForwardContext, type ParamStore, type StateUpdate } from './layers.js';
import { denseOptions, SeedBases } from './common.js';
import { defineModel, modelParams } from './model.js';

class AitModule {
  readonly transfer: DenseBlock;
  private readonly Q: tf.Variable;
  private readonly K: tf.Variable;
  private readonly V: tf.Variable;
  constructor(
    params: ParamStore,
    name: string,
    prevDim: number,
    towerDim: number,
    readonly dim: number,
    opts: DenseOptions,
    seedBase: number,
  ) {
    this.transfer = new DenseBlock(params, `${name}/transfer`, prevDim, towerDim, opts, seedBase);
    this.Q = params.matrix(`${name}/query/kernel`, towerDim, dim);
    this.K = params.matrix(`${name}/key/kernel`, towerDim, dim);
    this.V = params.matrix(`${name}/value/kernel`, towerDim, dim);
  }

  /** Returns z_k [B, dim] and the attention weights [B, 2] (column 0: transferred p, column 1: own q). */
  apply(prev: tf.Tensor2D, q: tf.Tensor2D, ctx: ForwardContext, updates: StateUpdate[]): { z: tf.Tensor2D; weights: tf.Tensor2D } {
    const p = this.transfer.apply(prev, ctx, updates);
    const score = (u: tf.Tensor2D) => tf.sum(tf.mul(tf.matMul(u, this.Q), tf.matMul(u, this.K)), 1, true); // [B, 1]
    const scale = 1 / Math.sqrt(this.dim);
    const weights = tf.softmax(tf.mul(tf.concat([score(p), score(q)], 1), scale)) as tf.Tensor2D; // [B, 2]
    const wp = tf.slice(weights, [0, 0], [-1, 1]);
    const wq = tf.slice(weights, [0, 1], [-1, 1]);
    const z = tf.add(tf.mul(wp, tf.matMul(p, this.V)), tf.mul(wq, tf.matMul(q, this.V))) as tf.Tensor2D;
    return { z, weights };
  }
}

/**
 * Parameters: `hidden` ([128, 64], every task tower), `attention_dim` (32), `calibration_weight` (0.3).
 * Names: `tower_<task>/dense_<l>/*`, `tower_<task>/logit/*`, and for k >= 2
 * `ait_<task>/transfer/*` (h_{k-1}), `ait_<task>/{query,key,value}/kernel`.
 * `aux` holds each AIT module's attention weights as `ait_<task>` [B, 2].
 */
export const aitm = defineModel({
  name: 'aitm',
  schema: modelParams(
    {
      hidden: arr(int({ min: 1 }), { default: [128, 64], description: 'Hidden sizes of every task tower.' }),
      attention_dim: int({ min: 1, default: 32, description: 'Width of the query, key and value projections of the AIT module.' }),
      calibration_weight: num({
        min: 0,
        default: 0.3,
        description: 'Weight of the label-constraint loss mean(max(p_k - p_{k-1}, 0)) (the paper used 0.6); 0 turns it off.',
      }),
    },
    'AITM (Xi et al., KDD 2021): a tower per task; for later tasks an attention module mixes the tower output with information transferred from the previous task; calibration loss keeps later funnel steps below earlier ones.',
  ),
  build(p, inputDim, tasks, params) {
    const opts = denseOptions(p);
    const seeds = new SeedBases();
    const hidden = p.hidden;
    const dim = p.attention_dim;
    const calibration = p.calibration_weight;
    const bodies = tasks.map((t) => new Mlp(params, `tower_${t}`, inputDim, hidden, opts, seeds.take()));
    const towerDim = bodies[0]!.outDim || inputDim;
    const aits = tasks.map((t, k) => (k === 0 ? null : new AitModule(params, `ait_${t}`, k === 1 ? towerDim : dim, towerDim, dim, opts, seeds.take())));
    // Task 1's logit reads q_1; task k >= 2's reads the AIT output z_k.
    const heads = tasks.map((t, k) => new LogitLayer(params, `tower_${t}/logit`, k === 0 ? towerDim : dim));
    return {
      type: 'aitm',
      forward(x, ctx) {
        const updates: StateUpdate[] = [];
        const aux: Record<string, tf.Tensor> = {};
        const logits: tf.Tensor1D[] = [];
        let prev: tf.Tensor2D | null = null;
        bodies.forEach((body, k) => {
          const q = body.apply(x, ctx, updates);
          let z = q;
          const ait = aits[k];
          if (ait && prev) {
            const out = ait.apply(prev, q, ctx, updates);
            z = out.z;
            aux[`ait_${tasks[k]}`] = out.weights;
          }
          logits.push(heads[k]!.apply(z));
          prev = z;
        });
        let extraLoss: tf.Scalar | undefined;
        if (ctx.training && calibration > 0 && logits.length > 1) {
          const probs = logits.map((z) => tf.sigmoid(z));
          const terms = probs.slice(1).map((p, i) => tf.mean(tf.relu(tf.sub(p, probs[i]!))));
          extraLoss = tf.mul(tf.addN(terms), calibration) as tf.Scalar;
        }
        return { logits, own: logits, updates, aux, ...(extraLoss ? { extraLoss } : {}) };
      },
    };
  },
});
