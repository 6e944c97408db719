/** MMoE (Ma et al., KDD 2018): expert MLPs mixed by one softmax gate per task, then a tower per task (moe.ts). */
import { defineModel } from './model.js';
import { buildMixtureOfExperts, moeParams } from './moe.js';

export const mmoe = defineModel({
  name: 'mmoe',
  schema: moeParams('MMoE (Ma et al., KDD 2018): expert MLPs mixed by one softmax gate per task, then a tower per task.'),
  build: (p, inputDim, tasks, params) => buildMixtureOfExperts('mmoe', p, inputDim, tasks, params),
});
