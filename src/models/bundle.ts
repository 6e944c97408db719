/**
 * A model bundle: everything needed to score rows: the feature plan, the embedding tables and the
 * dense multi-task model from the registry, built deterministically from the config and seed.
 */
import * as tf from '@tensorflow/tfjs';
import type { ExperimentConfig } from '../config/experiment.js';
import { buildFeaturePlan, type EncodedBatch, type FeaturePlan } from '../data/encode.js';
import { EmbeddingTables } from './embeddings.js';
import { ParamStore } from './layers.js';
import { modelDescriptor, MODEL_NAMES, type MultiTaskModel } from './registry.js';
import { Rng } from '../base/rng.js';
import { UsageError } from '../base/errors.js';
import { nativeScoring, runDenseProgram, programInput, type DenseProgram } from './dense-program.js';
import type { NativeAddon } from '../kernels/native-api.js';
import { readTensors } from '../kernels/read-back.js';
import { filledWasmTensor } from '../kernels/wasm-heap.js';
import { wasmSigmoid } from '../kernels/wasm-sigmoid.js';

export interface ModelBundle {
  config: ExperimentConfig;
  plan: FeaturePlan;
  tables: EmbeddingTables;
  params: ParamStore;
  model: MultiTaskModel;
  taskNames: string[];
}

export function buildBundle(config: ExperimentConfig): ModelBundle {
  const descriptor = modelDescriptor(config.model.type);
  if (!descriptor) throw new UsageError(`model.type: unknown model \`${config.model.type}\`; known: ${MODEL_NAMES.join(', ')}`);
  // A model that reads a subset of the features (cold.ts) gets only those embedded.
  const plan = buildFeaturePlan(config, descriptor.inputs(config.model));
  // Separate streams so that adding a feature does not change the dense initialisation.
  const tables = new EmbeddingTables(plan, new Rng(config.runtime.seed, 1), config.train.embedding_optimizer ?? config.train.optimizer, undefined, config.train.embedding_l2);
  const params = new ParamStore(new Rng(config.runtime.seed, 2));
  const taskNames = config.tasks.map((t) => t.name);
  const model = descriptor.build(config.model, tables.inputDim, taskNames, params, tables.layout());
  return { config, plan, tables, params, model, taskNames };
}

/**
 * Scores rows: one probability array per task, in task order. With the native matmul on, a model with
 * a scoring program runs it natively (dense-program.ts: the same logits, bit for bit); the sigmoid
 * stays tfjs's kernel, so the probabilities are the same bits too. Other backends read the
 * probabilities back asynchronously (webgpu cannot read synchronously in Node).
 */
export async function predict(bundle: ModelBundle, batch: EncodedBatch): Promise<Float32Array[]> {
  const program = bundle.model.scoringProgram;
  const native = program ? nativeScoring() : null;
  const logits = native !== null ? runProgram(bundle, program!, native, batch) : null;
  if (logits !== null) {
    // One sigmoid over every task's logits (element-wise: the same bits as one per task): tfjs's
    // wasm kernel called straight on reused heap buffers (kernels/wasm-sigmoid.ts), or, a wasm
    // module without the kernel's export, tf.sigmoid. Not inside tf.tidy: tidy walks a returned
    // typed array key by key looking for tensors (0.3 ms for 2,048 values, more than the sigmoid).
    const n = batch.length;
    const fill = (v: Float32Array) => logits.forEach((l, k) => v.set(l, k * n));
    const probs = wasmSigmoid(n * logits.length, fill);
    if (probs !== null) return logits.map((_, k) => probs.subarray(k * n, (k + 1) * n));
    const z = filledWasmTensor([n * logits.length], fill)!;
    const s = tf.sigmoid(z);
    try {
      const p = s.dataSync() as Float32Array;
      return logits.map((_, k) => p.subarray(k * n, (k + 1) * n));
    } finally {
      tf.dispose([z, s]);
    }
  }
  const probs = tf.tidy(() => {
    const input = tf.tensor2d(bundle.tables.lookup(batch), [batch.length, bundle.tables.inputDim]);
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

/** The scoring program on a batch: its embedding lookup done inside the first layers' product where the addon can. */
function runProgram(bundle: ModelBundle, program: DenseProgram, native: NativeAddon, batch: EncodedBatch): Float32Array[] | null {
  const x = programInput(program, batch.length);
  const lookup = native.embeddingSgemm !== undefined ? bundle.tables.deferredLookup(batch, x) : null;
  if (lookup === null) bundle.tables.lookupInto(batch, x);
  return runDenseProgram(program, native, x, batch.length, lookup);
}

export function disposeBundle(bundle: ModelBundle): void {
  bundle.params.dispose();
}
