/**
 * ResFlow (KDD 2024): one tower per task; for k >= 2, o_k^l = f_k^l(o_k^{l-1}) + o_{k-1}^l (feature
 * residual, after activation and normalisation) and z_k = g_k(o_k^L) + z_{k-1} (logit residual).
 */
import * as tf from '@tensorflow/tfjs';
import { arr, int, oneOf } from '../config/schema.js';
import { DenseBlock, LogitLayer, type StateUpdate } from './layers.js';
import { denseOptions } from './common.js';
import { defineModel, modelParams } from './model.js';
import { ProgramBuilder, type DenseProgram } from './dense-program.js';

export const resflow = defineModel({
  name: 'resflow',
  schema: modelParams(
    {
      hidden: arr(int({ min: 1 }), { minItems: 1, default: [128, 64], description: 'Hidden sizes of every task tower.' }),
      residual: oneOf(['both', 'feature', 'logit', 'none'], {
        default: 'both',
        description: 'Residual links between adjacent task towers: features (per layer), logits, both, or none (independent towers).',
      }),
    },
    'ResFlow (KDD 2024): one tower per task with residual links from the previous task.',
  ),
  build(p, inputDim, tasks, params) {
    const featureRes = p.residual === 'both' || p.residual === 'feature';
    const logitRes = p.residual === 'both' || p.residual === 'logit';
    const opts = denseOptions(p);
    const towers = tasks.map((t, k) => {
      const layers: DenseBlock[] = [];
      let d = inputDim;
      p.hidden.forEach((size, l) => {
        layers.push(new DenseBlock(params, `tower_${t}/dense_${l}`, d, size, opts, 1000 * k + l));
        d = size;
      });
      return { layers, head: new LogitLayer(params, `tower_${t}/logit`, d) };
    });
    // The same computation for scoring, as dense-program ops (null if a block is more than act(x·W + b)).
    const scoringProgram = ((): DenseProgram | null => {
      const pb = new ProgramBuilder(inputDim);
      const logits: number[] = [];
      let prev: number[] | null = null;
      for (const [k, tower] of towers.entries()) {
        const outs: number[] = [];
        let h = 0;
        for (const [l, layer] of tower.layers.entries()) {
          const op = layer.scoringOp(h, featureRes && prev ? prev[l]! : null);
          if (op === null) return null;
          h = pb.add(op);
          outs.push(h);
        }
        logits.push(pb.add(tower.head.scoringOp(h, logitRes && k > 0 ? logits[k - 1]! : null)));
        prev = outs;
      }
      return pb.build(logits);
    })();
    return {
      type: 'resflow',
      scoringProgram,
      // Dropout is the only difference between training and scoring a program's layers.
      trainingProgram: opts.dropout > 0 ? null : scoringProgram,
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
  },
});
