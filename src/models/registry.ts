/**
 * The model registry. Each entry builds a multi-task model over the concatenated field embeddings
 * (and numeric features). Parameter schemas live in specs.ts; a test checks both lists match.
 * ResFlow and Shared-Bottom are defined here; OMoE, MMoE and PLE in moe.ts, ESMM in esmm.ts,
 * AITM in aitm.ts (shared pieces in common.ts; parameter counts and scoring time in cost.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../config/experiment.js';
import { DenseBlock, LogitLayer, Mlp, type ForwardContext, type ParamStore, type StateUpdate } from './layers.js';
import { denseOptions } from './common.js';
import { mmoe, omoe, ple } from './moe.js';
import { esmm } from './esmm.js';
import { aitm } from './aitm.js';

export interface ForwardResult {
  /** One logit tensor [batch] per task, in config order; p_k = sigmoid(z_k). */
  logits: tf.Tensor1D[];
  /** Each task's own logit before any residual from earlier tasks (for inspection and tests). */
  own: tf.Tensor1D[];
  updates: StateUpdate[];
  /**
   * An extra training loss the model defines on its own outputs, already weighted (e.g. AITM's
   * calibration term), returned only when `ctx.training`. The trainer adds it to the total loss.
   */
  extraLoss?: tf.Scalar;
  /** Named intermediate tensors for inspection and tests (gate weights [B, experts], attention weights). */
  aux?: Record<string, tf.Tensor>;
}

export interface MultiTaskModel {
  readonly type: string;
  forward(x: tf.Tensor2D, ctx: ForwardContext): ForwardResult;
}

export type ModelBuilder = (cfg: ModelConfig, inputDim: number, tasks: string[], params: ParamStore) => MultiTaskModel;

/**
 * ResFlow: one tower per task; for k >= 2, o_k^l = f_k^l(o_k^{l-1}) + o_{k-1}^l (feature residual,
 * after activation and normalisation) and z_k = g_k(o_k^L) + z_{k-1} (logit residual).
 */
const resflow: ModelBuilder = (cfg, inputDim, tasks, params) => {
  const hidden = cfg.hidden as number[];
  const residual = cfg.residual as 'both' | 'feature' | 'logit' | 'none';
  const featureRes = residual === 'both' || residual === 'feature';
  const logitRes = residual === 'both' || residual === 'logit';
  const opts = denseOptions(cfg);
  const towers = tasks.map((t, k) => {
    const layers: DenseBlock[] = [];
    let d = inputDim;
    hidden.forEach((size, l) => {
      layers.push(new DenseBlock(params, `tower_${t}/dense_${l}`, d, size, opts, 1000 * k + l));
      d = size;
    });
    return { layers, head: new LogitLayer(params, `tower_${t}/logit`, d) };
  });
  return {
    type: 'resflow',
    forward(x, ctx) {
      const updates: StateUpdate[] = [];
      const logits: tf.Tensor1D[] = [];
      const own: tf.Tensor1D[] = [];
      let prevOutputs: tf.Tensor2D[] | null = null;
      towers.forEach((tower, k) => {
        const outputs: tf.Tensor2D[] = [];
        let h = x;
        tower.layers.forEach((layer, l) => {
          h = layer.apply(h, ctx, updates);
          if (featureRes && prevOutputs) h = tf.add(h, prevOutputs[l]!) as tf.Tensor2D;
          outputs.push(h);
        });
        const z = tower.head.apply(h);
        own.push(z);
        logits.push(logitRes && k > 0 ? (tf.add(z, logits[k - 1]!) as tf.Tensor1D) : z);
        prevOutputs = outputs;
      });
      return { logits, own, updates };
    },
  };
};

/** Shared-Bottom: shared layers, then a small tower per task. */
const sharedBottom: ModelBuilder = (cfg, inputDim, tasks, params) => {
  const opts = denseOptions(cfg);
  const bottom = new Mlp(params, 'bottom', inputDim, cfg.bottom as number[], opts, 0);
  const towers = tasks.map((t, k) => {
    const mlp = new Mlp(params, `tower_${t}`, bottom.outDim, cfg.hidden as number[], opts, 1000 * (k + 1));
    return { mlp, head: new LogitLayer(params, `tower_${t}/logit`, mlp.outDim || bottom.outDim) };
  });
  return {
    type: 'shared_bottom',
    forward(x, ctx) {
      const updates: StateUpdate[] = [];
      const shared = bottom.apply(x, ctx, updates);
      const logits = towers.map((t) => t.head.apply(t.mlp.apply(shared, ctx, updates)));
      return { logits, own: logits, updates };
    },
  };
};

export const modelRegistry: Record<string, ModelBuilder> = {
  resflow,
  shared_bottom: sharedBottom,
  omoe,
  mmoe,
  ple,
  esmm,
  aitm,
};
