/**
 * Each task's targets on a batch as the losses take them: its 0/1 labels and the mask of its sample
 * space (docs/domain.md, Samples and losses): one [B] pair of tensors per task, made when first
 * asked for, or all tasks stacked [T, B] in float32 arrays (the stacked objective,
 * stacked-objective.ts). Tensors made here go into `keepAlive`, which the trainer disposes after the
 * step. Also the request membership the per-request losses take.
 */
import * as tf from '@tensorflow/tfjs';
import { labelKey, type ExperimentConfig } from '../config/experiment.js';
import type { EncodedBatch } from '../data/encode.js';
import { sampleSpaceMask } from '../eval/evaluate.js';
import type { StackedTargets } from './stacked-objective.js';

export class TaskTargets {
  private readonly single = new Map<number, { labels: tf.Tensor1D; mask: tf.Tensor1D }>();

  constructor(
    private readonly config: ExperimentConfig,
    private readonly mb: EncodedBatch,
    private readonly keepAlive: tf.Tensor[],
  ) {}

  /** Kept past the tidy scope it may be made in (the tape's forward pass), until the trainer disposes keepAlive. */
  private kept<T extends tf.Tensor>(t: T): T {
    this.keepAlive.push(tf.keep(t));
    return t;
  }

  private labels(k: number): Uint8Array {
    return this.mb.labels.get(labelKey(this.config.tasks[k]!.label))!;
  }

  /** Task k's labels and mask, [B] each. */
  task(k: number): { labels: tf.Tensor1D; mask: tf.Tensor1D } {
    let t = this.single.get(k);
    if (t === undefined) {
      t = { labels: this.kept(tf.tensor1d(Float32Array.from(this.labels(k)))), mask: this.kept(tf.tensor1d(Float32Array.from(sampleSpaceMask(this.config, this.mb, k)))) };
      this.single.set(k, t);
    }
    return t;
  }

  /** Every task's labels and mask in task order, [T, B] each as float32 arrays (the same values as task(k)'s rows). */
  stacked(): StackedTargets {
    const T = this.config.tasks.length;
    const B = this.mb.length;
    const labels = new Float32Array(T * B);
    const masks = new Float32Array(T * B);
    for (let k = 0; k < T; k++) {
      labels.set(this.labels(k), k * B);
      masks.set(sampleSpaceMask(this.config, this.mb, k), k * B);
    }
    return { labels, masks };
  }
}

/** One-hot request membership [Q, B] for per-request losses. */
export function membership(request: Int32Array): { matrix: Float32Array; q: number } {
  const index = new Map<number, number>();
  for (const r of request) if (!index.has(r)) index.set(r, index.size);
  const q = index.size;
  const b = request.length;
  const matrix = new Float32Array(q * b);
  for (let i = 0; i < b; i++) matrix[index.get(request[i]!)! * b + i] = 1;
  return { matrix, q };
}
