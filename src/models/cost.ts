/**
 * What a model costs: parameter counts and the time to score candidates with its dense part.
 *
 * `scoringMicrosPer1000` times the dense multi-task network only: forward passes in inference mode
 * over random input rows of the model's input width, up to the logits read back to the host. It
 * leaves out the embedding lookup and pooling (done outside tfjs), the sigmoid, score fusion and
 * any data reading, so it compares model architectures, not end-to-end serving latency.
 * Numbers depend on the tfjs backend in use (wasm runs one thread in Node).
 */
import * as tf from '@tensorflow/tfjs';
import { readTensors } from '../kernels/read-back.js';
import type { ModelBundle } from './bundle.js';
import type { ParamStore } from './layers.js';
import type { MultiTaskModel } from './registry.js';

export interface ParameterCountOptions {
  /** Also count non-trainable state (batch-norm moving averages). Default false. */
  includeNonTrainable?: boolean;
}

/** Number of scalar parameters of the dense model (trainable only unless asked otherwise). */
export function countParameters(params: ParamStore, opts: ParameterCountOptions = {}): number {
  const vars = opts.includeNonTrainable ? [...params.variables.values()] : params.trainable;
  return vars.reduce((n, v) => n + v.size, 0);
}

export interface ScoringTimeOptions {
  /** Timed batches (default 20). */
  batches?: number;
  /** Rows per batch (default 1000). */
  rows?: number;
  /** Untimed batches first, so kernels are compiled and memory is allocated (default 3). */
  warmup?: number;
  /** Seed of the random input rows (default 1). */
  seed?: number;
}

export interface ScoringTimes {
  /** Median over the timed batches, in microseconds per 1,000 rows. */
  medianMicrosPer1000: number;
  /** Every timed batch, in microseconds per 1,000 rows, in the order run. */
  samples: number[];
  rows: number;
  backend: string;
}

function isBundle(x: ModelBundle | MultiTaskModel): x is ModelBundle {
  return 'model' in x && 'params' in x;
}

/** Times the dense forward pass; see the module comment for what is and is not included. */
export async function scoringTimes(target: ModelBundle | MultiTaskModel, inputDim?: number, opts: ScoringTimeOptions = {}): Promise<ScoringTimes> {
  const model = isBundle(target) ? target.model : target;
  const dim = inputDim ?? (isBundle(target) ? target.tables.inputDim : undefined);
  if (dim === undefined) throw new Error('scoringTimes: inputDim is needed when timing a bare model');
  const batches = opts.batches ?? 20;
  const rows = opts.rows ?? 1000;
  const warmup = opts.warmup ?? 3;
  if (batches < 1 || rows < 1) throw new Error('scoringTimes: batches and rows must be >= 1');
  const x = tf.randomNormal([rows, dim], 0, 1, 'float32', opts.seed ?? 1) as tf.Tensor2D;
  const once = async () => {
    const logits = tf.tidy(() => model.forward(x, { training: false, dropoutSeed: 0 }).logits);
    await readTensors(logits); // webgpu reads asynchronously (kernels/read-back.ts)
    for (const z of logits) z.dataSync(); // wait for the backend and read back, as scoring would
    tf.dispose(logits);
  };
  try {
    for (let i = 0; i < warmup; i++) await once();
    const samples: number[] = [];
    for (let i = 0; i < batches; i++) {
      const t0 = process.hrtime.bigint();
      await once();
      const micros = Number(process.hrtime.bigint() - t0) / 1000;
      samples.push((micros * 1000) / rows);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    return { medianMicrosPer1000: median, samples, rows, backend: tf.getBackend() };
  } finally {
    x.dispose();
  }
}

/**
 * Median microseconds to score 1,000 candidates with the dense part of a model (inference mode;
 * embedding lookup excluded). `inputDim` may be omitted for a bundle (its tables' input width).
 */
export async function scoringMicrosPer1000(target: ModelBundle | MultiTaskModel, inputDim?: number, opts: ScoringTimeOptions = {}): Promise<number> {
  return (await scoringTimes(target, inputDim, opts)).medianMicrosPer1000;
}
