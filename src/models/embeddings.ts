/**
 * Embedding tables shared by all tasks, held as plain Float32Arrays and updated sparsely.
 *
 * The forward pass gathers (and pools) the rows a batch uses into one dense input matrix for the
 * tfjs model; the backward pass takes the gradient of that matrix, sums it per touched row and
 * updates only those rows with a row-wise lazy optimizer. A step therefore costs the same whatever
 * the vocabulary size, and no tfjs gather/scatter kernels are needed.
 */
import type { OptimizerConfig } from '../config/experiment.js';
import type { SparseFeature, FeaturePlan, EncodedBatch } from '../data/encode.js';
import type { Rng } from '../rng.js';

export interface SparseTable {
  feature: SparseFeature;
  rows: number;
  dim: number;
  weights: Float32Array;
  /** Optimizer slots: Adam first/second moments, or the Adagrad accumulator in `m`. */
  m: Float32Array | null;
  v: Float32Array | null;
}

export class EmbeddingTables {
  readonly tables: SparseTable[];
  readonly numericCount: number;
  readonly inputDim: number;
  /** Column offset of each table in the input matrix. */
  readonly offsets: number[];
  private readonly slot: Int32Array[];
  private step = 0;

  constructor(plan: FeaturePlan, rng: Rng, readonly optimizer: OptimizerConfig) {
    this.tables = plan.sparse.map((f) => {
      const size = f.tableSize * f.dim;
      const weights = new Float32Array(size);
      for (let i = 0; i < size; i++) weights[i] = (rng.next() * 2 - 1) * 0.05;
      const needsM = optimizer.type !== 'sgd';
      return {
        feature: f,
        rows: f.tableSize,
        dim: f.dim,
        weights,
        m: needsM ? new Float32Array(size).fill(optimizer.type === 'adagrad' ? optimizer.initial_accumulator : 0) : null,
        v: optimizer.type === 'adam' ? new Float32Array(size) : null,
      };
    });
    this.numericCount = plan.numeric.length;
    this.offsets = [];
    let off = 0;
    for (const t of this.tables) {
      this.offsets.push(off);
      off += t.dim;
    }
    this.inputDim = off + this.numericCount;
    // Per table, a row -> gradient-slot marker reused every step (-1 = untouched).
    this.slot = this.tables.map((t) => new Int32Array(t.rows).fill(-1));
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
    for (let ti = 0; ti < this.tables.length; ti++) {
      const t = this.tables[ti]!;
      const ids = batch.ids[ti]!;
      const w = t.feature.width;
      const dim = t.dim;
      const off = this.offsets[ti]!;
      const weights = t.weights;
      const mean = t.feature.pooling === 'mean';
      if (w === 1) {
        // Single-id features: a plain copy loop (subarray views per row cost more than the copy).
        for (let i = 0; i < n; i++) {
          const row = ids[i]!;
          if (row < 0) continue;
          const src = row * dim;
          const dst = i * D + off;
          for (let d = 0; d < dim; d++) x[dst + d] = weights[src + d]!;
        }
        continue;
      }
      for (let i = 0; i < n; i++) {
        const base = i * D + off;
        let count = 0;
        for (let j = 0; j < w; j++) {
          const row = ids[i * w + j]!;
          if (row < 0) continue;
          count++;
          const src = row * dim;
          for (let d = 0; d < dim; d++) x[base + d]! += weights[src + d]!;
        }
        if (mean && count > 1) {
          const inv = 1 / count;
          for (let d = 0; d < dim; d++) x[base + d]! *= inv;
        }
      }
    }
    const nc = this.numericCount;
    if (nc > 0) {
      const off = D - nc;
      for (let i = 0; i < n; i++) for (let j = 0; j < nc; j++) x[i * D + off + j] = batch.numeric[i * nc + j]!;
    }
    return x;
  }

  /** Per table, reusable buffers for the rows a step touched and their summed gradients. */
  private touched: Int32Array[] = [];
  private gradSums: Float32Array[] = [];

  /** Applies the gradient of the input matrix to the rows the batch touched. */
  applyGradients(batch: EncodedBatch, gradX: Float32Array): void {
    this.step++;
    const n = batch.length;
    const D = this.inputDim;
    for (let ti = 0; ti < this.tables.length; ti++) {
      const t = this.tables[ti]!;
      const ids = batch.ids[ti]!;
      const w = t.feature.width;
      const dim = t.dim;
      const off = this.offsets[ti]!;
      const slot = this.slot[ti]!;
      const capacity = Math.min(n * w, t.rows);
      if (!this.touched[ti] || this.touched[ti]!.length < capacity) {
        this.touched[ti] = new Int32Array(capacity);
        this.gradSums[ti] = new Float32Array(capacity * dim);
      }
      const touched = this.touched[ti]!;
      const acc = this.gradSums[ti]!;
      const mean = t.feature.pooling === 'mean';
      let count = 0;
      // Sum gradients per distinct row (duplicates within a batch add up).
      for (let i = 0; i < n; i++) {
        let present = 1;
        if (w > 1) {
          present = 0;
          for (let j = 0; j < w; j++) if (ids[i * w + j]! >= 0) present++;
          if (present === 0) continue;
        }
        const scale = mean ? 1 / present : 1;
        const g = i * D + off;
        for (let j = 0; j < w; j++) {
          const row = ids[i * w + j]!;
          if (row < 0) continue;
          let s = slot[row]!;
          if (s < 0) {
            s = count++;
            slot[row] = s;
            touched[s] = row;
            const a = s * dim;
            for (let d = 0; d < dim; d++) acc[a + d] = gradX[g + d]! * scale;
          } else {
            const a = s * dim;
            for (let d = 0; d < dim; d++) acc[a + d]! += gradX[g + d]! * scale;
          }
        }
      }
      this.updateRows(t, touched, count, acc);
      for (let s = 0; s < count; s++) slot[touched[s]!] = -1;
    }
  }

  private updateRows(t: SparseTable, rows: Int32Array, count: number, grad: Float32Array): void {
    const o = this.optimizer;
    const dim = t.dim;
    const W = t.weights;
    if (o.type === 'sgd') {
      for (let s = 0; s < count; s++) {
        const base = rows[s]! * dim;
        for (let d = 0; d < dim; d++) W[base + d]! -= o.lr * grad[s * dim + d]!;
      }
    } else if (o.type === 'adagrad') {
      const A = t.m!;
      for (let s = 0; s < count; s++) {
        const base = rows[s]! * dim;
        for (let d = 0; d < dim; d++) {
          const g = grad[s * dim + d]!;
          A[base + d]! += g * g;
          W[base + d]! -= (o.lr * g) / (Math.sqrt(A[base + d]!) + o.epsilon);
        }
      }
    } else {
      // Lazy Adam: moments of a row decay only on steps that touch it; bias correction uses the
      // global step, as TensorFlow's LazyAdam does.
      const M = t.m!;
      const V = t.v!;
      const b1 = o.beta1;
      const b2 = o.beta2;
      const c1 = 1 - b1;
      const c2 = 1 - b2;
      const lrT = (o.lr * Math.sqrt(1 - Math.pow(b2, this.step))) / (1 - Math.pow(b1, this.step));
      const epsHat = o.epsilon * Math.sqrt(1 - Math.pow(b2, this.step));
      for (let s = 0; s < count; s++) {
        const base = rows[s]! * dim;
        const gs = s * dim;
        for (let d = 0; d < dim; d++) {
          const g = grad[gs + d]!;
          const i = base + d;
          const m = b1 * M[i]! + c1 * g;
          const v = b2 * V[i]! + c2 * g * g;
          M[i] = m;
          V[i] = v;
          W[i] = W[i]! - (lrT * m) / (Math.sqrt(v) + epsHat);
        }
      }
    }
  }
}
