/**
 * Two-tower (README.md, "Models"): a user/query tower and an item tower, each an MLP over its own
 * features (every feature in exactly one tower, set in the config), then per task one linear output
 * vector on each side; the task's logit is their dot product plus a bias, z_t = u_t · v_t + b_t.
 * The item side depends on the item only, so serving can precompute it; the bias shifts every
 * candidate alike and leaves the ranking to the dot product.
 */
import * as tf from '@tensorflow/tfjs';
import { arr, int, obj, str } from '../config/schema.js';
import { ConfigError } from '../base/errors.js';
import { Mlp, linear, type StateUpdate } from './layers.js';
import { checkFeatureList, columnRuns, denseOptions, SeedBases, selectColumns } from './common.js';
import { defineModel, modelParams } from './model.js';

const tower = (side: string) =>
  obj(
    {
      features: arr(str(), { minItems: 1, description: `Features the ${side} tower reads (names under features).` }),
      hidden: arr(int({ min: 1 }), { default: [64, 32], description: `Hidden sizes of the ${side} tower.` }),
    },
    { required: ['features'], description: `The ${side} tower.` },
  );

/** The two sides, in the order their parameters are named and built. */
export const TOWERS = ['user_tower', 'item_tower'] as const;

export const twoTower = defineModel({
  name: 'two_tower',
  schema: modelParams(
    {
      user_tower: tower('user/query'),
      item_tower: tower('item'),
      output_dim: int({ min: 1, default: 32, description: 'Length of each task\'s user and item vectors (their dot product is the logit).' }),
    },
    'Two-tower: a user/query tower and an item tower; per task the logit is the dot product of their output vectors plus a bias.',
  ),
  checkFeatures(p, features, path, issues) {
    for (const side of TOWERS) checkFeatureList(p[side].features, features, [...path, side, 'features'], issues);
    const user = p.user_tower.features;
    p.item_tower.features.forEach((f, i) => {
      if (user.includes(f)) issues.push({ path: [...path, 'item_tower', 'features', i], message: `feature \`${f}\` is in both towers; every feature goes to exactly one` });
    });
    const missing = features.filter((f) => !user.includes(f) && !p.item_tower.features.includes(f));
    if (missing.length) {
      issues.push({ path: [...path, 'item_tower', 'features'], message: `${missing.map((f) => `\`${f}\``).join(', ')} ${missing.length > 1 ? 'are' : 'is'} in neither tower; add each to model.user_tower.features or model.item_tower.features` });
    }
  },
  build(p, _inputDim, tasks, params, layout) {
    if (!layout) throw new ConfigError('model.type two_tower: the model needs the input layout (which columns are which feature)');
    const opts = denseOptions(p);
    const seeds = new SeedBases();
    const sides = TOWERS.map((side) => {
      const runs = columnRuns(layout, p[side].features);
      const inDim = runs.reduce((s, [a, b]) => s + b - a, 0);
      const mlp = new Mlp(params, side, inDim, p[side].hidden, opts, seeds.take());
      const reprDim = mlp.outDim || inDim;
      const heads = tasks.map((t) => ({ W: params.matrix(`${side}/out_${t}/kernel`, reprDim, p.output_dim), b: params.constant(`${side}/out_${t}/bias`, [p.output_dim], 0) }));
      return { side, runs, mlp, heads };
    });
    const bias = tasks.map((t) => params.constant(`score_${t}/bias`, [1], 0));
    return {
      type: 'two_tower',
      forward(x, ctx) {
        const updates: StateUpdate[] = [];
        const [user, item] = sides.map((s) => {
          const h = s.mlp.apply(selectColumns(x, s.runs), ctx, updates);
          return s.heads.map((o) => linear(h, o.W as tf.Tensor2D, o.b as tf.Tensor1D));
        }) as [tf.Tensor2D[], tf.Tensor2D[]];
        const logits = tasks.map((_, k) => tf.add(tf.sum(tf.mul(user[k]!, item[k]!), 1), bias[k]!) as tf.Tensor1D);
        const aux: Record<string, tf.Tensor> = {};
        tasks.forEach((t, k) => ((aux[`user_${t}`] = user[k]!), (aux[`item_${t}`] = item[k]!)));
        return { logits, own: logits, updates, aux };
      },
    };
  },
});
