/**
 * Parameter schemas of every model in the registry, kept apart from the tfjs builders so that
 * `config check` and `config schema` work without loading TensorFlow.js.
 * A new model adds its schema here and its builder in registry.ts (a test checks they match).
 */
import { arr, bool, int, num, obj, oneOf, type ObjectSchema } from '../config/schema.js';

const common = {
  embedding_dim: int({ min: 1, default: 16, description: 'Embedding size of every field unless the feature sets `dim`.' }),
  activation: oneOf(['relu', 'prelu'], { default: 'relu' }),
  batch_norm: bool({ default: false, description: 'Batch normalisation after each hidden layer (training-mode statistics, moving averages at inference).' }),
  dropout: num({ min: 0, max: 0.95, default: 0 }),
};

const moeFields = {
  experts: int({ min: 1, default: 4, description: 'Number of expert MLPs.' }),
  expert_hidden: arr(int({ min: 1 }), { minItems: 1, default: [128], description: 'Hidden sizes of every expert MLP.' }),
  hidden: arr(int({ min: 1 }), { default: [64], description: 'Task tower layers above the mixture.' }),
};

export function modelParamSchemas(): Record<string, ObjectSchema> {
  return {
    resflow: obj(
      {
        ...common,
        hidden: arr(int({ min: 1 }), { minItems: 1, default: [128, 64], description: 'Hidden sizes of every task tower.' }),
        residual: oneOf(['both', 'feature', 'logit', 'none'], {
          default: 'both',
          description: 'Residual links between adjacent task towers: features (per layer), logits, both, or none (independent towers).',
        }),
      },
      { description: 'ResFlow (KDD 2024): one tower per task with residual links from the previous task.' },
    ),
    shared_bottom: obj(
      {
        ...common,
        bottom: arr(int({ min: 1 }), { minItems: 1, default: [128], description: 'Shared bottom layers.' }),
        hidden: arr(int({ min: 1 }), { default: [64], description: 'Task tower layers above the bottom.' }),
      },
      { description: 'Shared-Bottom: shared layers, then a small tower per task.' },
    ),
    omoe: obj(
      { ...common, ...moeFields },
      { description: 'OMoE: expert MLPs mixed by one softmax gate shared by all tasks, then a tower per task.' },
    ),
    mmoe: obj(
      { ...common, ...moeFields },
      { description: 'MMoE (Ma et al., KDD 2018): expert MLPs mixed by one softmax gate per task, then a tower per task.' },
    ),
    ple: obj(
      {
        ...common,
        levels: int({ min: 1, default: 2, description: 'Extraction layers (CGC layers); 1 gives a CGC model.' }),
        shared_experts: int({ min: 0, default: 2, description: 'Shared experts per level.' }),
        task_experts: int({ min: 1, default: 2, description: 'Experts of each task per level.' }),
        expert_hidden: arr(int({ min: 1 }), { minItems: 1, default: [128], description: 'Hidden sizes of every expert MLP.' }),
        hidden: arr(int({ min: 1 }), { default: [64], description: 'Task tower layers above the last level.' }),
      },
      {
        description:
          'PLE (Tang et al., RecSys 2020): stacked CGC layers; task gates over the task\'s own and the shared experts, a shared gate over all experts feeding the next level; towers per task.',
      },
    ),
    esmm: obj(
      {
        ...common,
        hidden: arr(int({ min: 1 }), { default: [128, 64], description: 'Hidden sizes of the CTR and the CVR tower.' }),
      },
      {
        description:
          'ESMM (Ma et al., SIGIR 2018): CTR and CVR towers, pCTCVR = pCTR x pCVR; needs exactly two tasks in the order CTR, CTCVR (both over all exposures).',
      },
    ),
    aitm: obj(
      {
        ...common,
        hidden: arr(int({ min: 1 }), { default: [128, 64], description: 'Hidden sizes of every task tower.' }),
        attention_dim: int({ min: 1, default: 32, description: 'Width of the query, key and value projections of the AIT module.' }),
        calibration_weight: num({
          min: 0,
          default: 0.3,
          description: 'Weight of the label-constraint loss mean(max(p_k - p_{k-1}, 0)) (the paper used 0.6); 0 turns it off.',
        }),
      },
      {
        description:
          'AITM (Xi et al., KDD 2021): a tower per task; for later tasks an attention module mixes the tower output with information transferred from the previous task; calibration loss keeps later funnel steps below earlier ones.',
      },
    ),
  };
}
