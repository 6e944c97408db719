/**
 * Embedding tables shared by all tasks, held as plain Float32Arrays and updated sparsely.
 *
 * The forward pass gathers (and pools) the rows a batch uses into one dense input matrix for the
 * tfjs model; the backward pass takes the gradient of that matrix, sums it per touched row and
 * updates only those rows with a row-wise lazy optimizer. A step therefore costs the same whatever
 * the vocabulary size, and no tfjs gather/scatter kernels are needed. The loops themselves are
 * the kernels of kernels/sparse-kernels.ts (JavaScript, or the native addon when it is built).
 */
import type { EmbeddingOptimizerConfig } from '../config/experiment.js';
import type { SparseFeature, FeaturePlan, EncodedBatch } from '../data/encode.js';
import type { Rng } from '../base/rng.js';
import { sparseStep, createSparseKernels, type SparseKernels, type TableData } from '../kernels/sparse-kernels.js';

export interface SparseTable extends TableData {
  feature: SparseFeature;
}

export class EmbeddingTables {
  readonly tables: SparseTable[];
  readonly numericCount: number;
  private readonly numericNames: string[];
  readonly inputDim: number;
  private step = 0;
  readonly kernels: SparseKernels;
  /** The learning rate of the next update: optimizer.lr unless a schedule sets it (train/lr-schedule.ts). */
  learningRate: number;

  constructor(
    plan: FeaturePlan,
    rng: Rng,
    readonly optimizer: EmbeddingOptimizerConfig,
    kernels?: SparseKernels,
    /** train.embedding_l2 (0: off); only the JavaScript kernels apply it, so they are the default then. */
    readonly l2 = 0,
  ) {
    this.kernels = kernels ?? createSparseKernels({ l2 });
    this.tables = plan.sparse.map((f) => {
      const size = f.tableSize * f.dim;
      const weights = new Float32Array(size);
      for (let i = 0; i < size; i++) weights[i] = (rng.next() * 2 - 1) * 0.05;
      const needsM = optimizer.type !== 'sgd';
      return {
        feature: f,
        rows: f.tableSize,
        dim: f.dim,
        width: f.width,
        mean: f.pooling === 'mean',
        offset: 0,
        weights,
        m: needsM ? new Float32Array(size).fill(optimizer.type === 'adagrad' ? optimizer.initial_accumulator : 0) : null,
        v: optimizer.type === 'adam' ? new Float32Array(size) : null,
      };
    });
    this.learningRate = optimizer.lr;
    this.numericCount = plan.numeric.length;
    this.numericNames = plan.numeric.map((f) => f.name);
    let off = 0;
    for (const t of this.tables) {
      t.offset = off;
      off += t.dim;
    }
    this.inputDim = off + this.numericCount;
  }

  /** Each feature's columns in the input matrix: pooled embeddings in plan order, then numerics. */
  layout(): { name: string; offset: number; width: number }[] {
    const numericFrom = this.inputDim - this.numericCount;
    return [
      ...this.tables.map((t) => ({ name: t.feature.name, offset: t.offset, width: t.dim })),
      ...this.numericNames.map((name, j) => ({ name, offset: numericFrom + j, width: 1 })),
    ];
  }

  get steps(): number {
    return this.step;
  }
  set steps(s: number) {
    this.step = s;
  }

  /** Builds the [n, inputDim] input matrix for rows of a batch: pooled embeddings then numerics. */
  lookup(batch: EncodedBatch): Float32Array {
    const n = batch.length;
    const D = this.inputDim;
    const x = new Float32Array(n * D);
    this.kernels.lookup(this.tables, batch.ids, n, x, D);
    const nc = this.numericCount;
    if (nc > 0) {
      const off = D - nc;
      for (let i = 0; i < n; i++) for (let j = 0; j < nc; j++) x[i * D + off + j] = batch.numeric[i * nc + j]!;
    }
    return x;
  }

  /** Applies the gradient of the input matrix to the rows the batch touched. */
  applyGradients(batch: EncodedBatch, gradX: Float32Array): void {
    this.step++;
    this.kernels.update(this.tables, batch.ids, batch.length, gradX, this.inputDim, sparseStep(this.optimizer, this.step, this.learningRate, this.l2));
  }
}
