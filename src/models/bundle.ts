/**
 * A model bundle: everything needed to score rows: the feature plan, the embedding tables and the
 * dense multi-task model from the registry, built deterministically from the config and seed.
 */
import * as tf from '@tensorflow/tfjs';
import type { ExperimentConfig } from '../config/experiment.js';
import { buildFeaturePlan, type EncodedBatch, type FeaturePlan } from '../data/encode.js';
import { EmbeddingTables } from './embeddings.js';
import { ParamStore } from './layers.js';
import { modelRegistry, type MultiTaskModel } from './registry.js';
import { Rng } from '../base/rng.js';
import { UsageError } from '../base/errors.js';
import { readTensors } from '../kernels/read-back.js';

export interface ModelBundle {
  config: ExperimentConfig;
  plan: FeaturePlan;
  tables: EmbeddingTables;
  params: ParamStore;
  model: MultiTaskModel;
  taskNames: string[];
}

export function buildBundle(config: ExperimentConfig): ModelBundle {
  const plan = buildFeaturePlan(config);
  const builder = modelRegistry[config.model.type];
  if (!builder) throw new UsageError(`model.type: unknown model \`${config.model.type}\`; known: ${Object.keys(modelRegistry).join(', ')}`);
  // Separate streams so that adding a feature does not change the dense initialisation.
  const tables = new EmbeddingTables(plan, new Rng(config.runtime.seed, 1), config.train.embedding_optimizer ?? config.train.optimizer, undefined, config.train.embedding_l2);
  const params = new ParamStore(new Rng(config.runtime.seed, 2));
  const taskNames = config.tasks.map((t) => t.name);
  const model = builder(config.model, tables.inputDim, taskNames, params);
  return { config, plan, tables, params, model, taskNames };
}

/** Scores rows: one probability array per task, in task order. */
export async function predict(bundle: ModelBundle, batch: EncodedBatch): Promise<Float32Array[]> {
  const x = bundle.tables.lookup(batch);
  const probs = tf.tidy(() => {
    const input = tf.tensor2d(x, [batch.length, bundle.tables.inputDim]);
    const { logits } = bundle.model.forward(input, { training: false, dropoutSeed: 0 });
    return logits.map((z) => tf.sigmoid(z));
  });
  try {
    await readTensors(probs);
    return probs.map((p) => p.dataSync() as Float32Array);
  } finally {
    tf.dispose(probs);
  }
}

export function disposeBundle(bundle: ModelBundle): void {
  bundle.params.dispose();
}
