/** OMoE: expert MLPs mixed by one softmax gate shared by all tasks, then a tower per task (moe.ts). */
import { defineModel } from './model.js';
import { buildMixtureOfExperts, moeParams } from './moe.js';

export const omoe = defineModel({
  name: 'omoe',
  schema: moeParams('OMoE: expert MLPs mixed by one softmax gate shared by all tasks, then a tower per task.'),
  build: (p, inputDim, tasks, params) => buildMixtureOfExperts('omoe', p, inputDim, tasks, params),
});
