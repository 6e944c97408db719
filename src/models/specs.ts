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
  };
}
