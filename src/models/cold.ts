/**
 * COLD-style light MLP (README.md, "Models"): a pre-ranker that spends its compute budget on the
 * features that matter. `features` declares the subset it reads (the budget: only these are embedded,
 * read from the data and exported; run.json's cost records the input width and the scoring time), a
 * small shared MLP (`hidden`) reads their concatenation and each task has one logit on top.
 */
import { arr, int, str } from '../config/schema.js';
import { LogitLayer, Mlp, type StateUpdate } from './layers.js';
import { checkFeatureList, denseOptions } from './common.js';
import { defineModel, modelParams } from './model.js';

export const cold = defineModel({
  name: 'cold',
  schema: modelParams(
    {
      features: arr(str(), { minItems: 1, description: 'The features the model reads (its feature budget); absent: all of them.' }),
      hidden: arr(int({ min: 1 }), { default: [64, 32], description: 'Hidden sizes of the shared MLP.' }),
    },
    'COLD-style light MLP: a declared subset of the features, a small shared MLP, one logit per task.',
  ),
  inputs: (p) => p.features ?? null,
  checkFeatures(p, features, path, issues) {
    if (p.features) checkFeatureList(p.features, features, [...path, 'features'], issues);
  },
  build(p, inputDim, tasks, params) {
    const opts = denseOptions(p);
    const mlp = new Mlp(params, 'mlp', inputDim, p.hidden, opts, 0);
    const heads = tasks.map((t) => new LogitLayer(params, `logit_${t}`, mlp.outDim || inputDim));
    return {
      type: 'cold',
      forward(x, ctx) {
        const updates: StateUpdate[] = [];
        const h = mlp.apply(x, ctx, updates);
        const logits = heads.map((head) => head.apply(h));
        return { logits, own: logits, updates };
      },
    };
  },
});
