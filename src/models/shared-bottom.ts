/** Shared-Bottom: shared layers, then a small tower per task. */
import { arr, int } from '../config/schema.js';
import { LogitLayer, Mlp, type StateUpdate } from './layers.js';
import { denseOptions } from './common.js';
import { defineModel, modelParams } from './model.js';

export const sharedBottom = defineModel({
  name: 'shared_bottom',
  schema: modelParams(
    {
      bottom: arr(int({ min: 1 }), { minItems: 1, default: [128], description: 'Shared bottom layers.' }),
      hidden: arr(int({ min: 1 }), { default: [64], description: 'Task tower layers above the bottom.' }),
    },
    'Shared-Bottom: shared layers, then a small tower per task.',
  ),
  build(p, inputDim, tasks, params) {
    const opts = denseOptions(p);
    const bottom = new Mlp(params, 'bottom', inputDim, p.bottom, opts, 0);
    const towers = tasks.map((t, k) => {
      const mlp = new Mlp(params, `tower_${t}`, bottom.outDim, p.hidden, opts, 1000 * (k + 1));
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
  },
});
