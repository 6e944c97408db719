/**
 * Embedding tables shared by all tasks, held as plain Float32Arrays and updated sparsely.
 * The weights are allocated and initialised when the tables are built; the optimizer state is
 * allocated per row when an update first touches the row (kernels/row-state.ts), so rows no batch
 * touches cost 4 bytes each beyond their weights.
 *
 * The forward pass gathers (and pools) the rows a batch uses into one dense input matrix for the
 * tfjs model; the backward pass takes the gradient of that matrix, sums it per touched row and
 * updates only those rows with a row-wise lazy optimizer. A step therefore costs the same whatever
 * the vocabulary size, and no tfjs gather/scatter kernels are needed. The loops themselves are
 * the kernels of kernels/sparse-kernels.ts (JavaScript, or the native addon when it is built).
 */
import * as tf from '@tensorflow/tfjs';
import type { EmbeddingOptimizerConfig } from '../config/experiment.js';
import type { SparseFeature, FeaturePlan, EncodedBatch } from '../data/encode.js';
import type { Rng } from '../base/rng.js';
import { sparseStep, createSparseKernels, type SparseKernels, type TableData } from '../kernels/sparse-kernels.js';
import { RowState } from '../kernels/row-state.js';
import { allocateTableArrays } from '../kernels/table-memory.js';
import { lookupArguments, NativeSparseKernels, type NativeLookupArguments } from '../kernels/sparse-native.js';
import { filledWasmTensor } from '../kernels/wasm-heap.js';

export interface SparseTable extends TableData {
  feature: SparseFeature;
}

/** The memory of one table (README.md, "Sparse embeddings"; run.json's `embedding_memory`). */
export interface TableMemory {
  feature: string;
  rows: number;
  dim: number;
  /** rows × dim × 4, allocated and initialised when the table is built. */
  weights_bytes: number;
  /** The optimizer state's row index (4 bytes a row; 0 for SGD), allocated when the table is built. */
  index_bytes: number;
  /** Rows holding optimizer state (rows some update touched). */
  state_rows: number;
  /** Bytes the state arrays hold now (their capacity, which grows by half when full). */
  state_bytes: number;
  /** Bytes of state per touched row (dim × 4 × moments; 0 for SGD). */
  state_bytes_per_row: number;
}

export class EmbeddingTables {
  readonly tables: SparseTable[];
  readonly numericCount: number;
  private readonly numericNames: string[];
  readonly inputDim: number;
  private step = 0;
  readonly kernels: SparseKernels;
  /** Bytes of the weights advised for transparent huge pages (0: none; kernels/table-memory.ts). */
  readonly hugePageBytes: number;
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
    // Laid out for random row reads, large tables on huge pages (kernels/table-memory.ts).
    const memory = allocateTableArrays(plan.sparse.map((f) => f.tableSize * f.dim));
    this.hugePageBytes = memory.hugePageBytes;
    this.tables = plan.sparse.map((f, i) => {
      // Uniform in [-0.05, 0.05), row after row, table after table, from the one seeded stream.
      const weights = memory.arrays[i]!;
      rng.fillSymmetric(weights, 0.05);
      // The optimizer state is allocated row by row as updates touch rows (kernels/row-state.ts).
      const state =
        optimizer.type === 'sgd' ? null : new RowState(f.tableSize, f.dim, optimizer.type === 'adam' ? 2 : 1, optimizer.type === 'adagrad' ? optimizer.initial_accumulator : 0);
      return {
        feature: f,
        rows: f.tableSize,
        dim: f.dim,
        width: f.width,
        mean: f.pooling === 'mean',
        offset: 0,
        weights,
        state,
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
    return this.lookupInto(batch, new Float32Array(batch.length * this.inputDim));
  }

  /** lookup() as a [n, inputDim] tensor; on wasm written straight into the wasm heap (no array to allocate and copy in). */
  lookupTensor(batch: EncodedBatch): tf.Tensor2D {
    const shape: [number, number] = [batch.length, this.inputDim];
    return (filledWasmTensor(shape, (x) => this.lookupInto(batch, x)) ?? tf.tensor2d(this.lookup(batch), shape)) as tf.Tensor2D;
  }

  /** lookup() into `x` (at least n * inputDim floats, any contents; e.g. a tensor's bytes in the wasm heap); returns x. */
  lookupInto(batch: EncodedBatch, x: Float32Array): Float32Array {
    const n = batch.length;
    const D = this.inputDim;
    // The kernels write every table column (the native ones without zero-filling first: a fill
    // here would pull x's lines into this core's cache, only for the lookup's other threads to
    // take them back).
    this.kernels.lookup(this.tables, batch.ids, n, x, D);
    this.writeNumeric(batch, x);
    return x;
  }

  /**
   * For a product that looks the batch up itself as it reads x (the addon's embeddingSgemm, run by
   * models/dense-program.ts): x's numeric columns written, and the tables' lookup arguments. Null
   * with the JavaScript kernels: then call lookupInto.
   */
  deferredLookup(batch: EncodedBatch, x: Float32Array): NativeLookupArguments | null {
    if (!(this.kernels instanceof NativeSparseKernels)) return null;
    this.writeNumeric(batch, x);
    return lookupArguments(this.tables, batch.ids);
  }

  private writeNumeric(batch: EncodedBatch, x: Float32Array): void {
    const n = batch.length;
    const D = this.inputDim;
    const nc = this.numericCount;
    if (nc === 0) return;
    const off = D - nc;
    for (let i = 0; i < n; i++) for (let j = 0; j < nc; j++) x[i * D + off + j] = batch.numeric[i * nc + j]!;
  }

  /** What each table takes now. */
  memory(): TableMemory[] {
    return this.tables.map((t) => ({
      feature: t.feature.name,
      rows: t.rows,
      dim: t.dim,
      weights_bytes: t.weights.byteLength,
      index_bytes: t.state?.slotOf.byteLength ?? 0,
      state_rows: t.state?.used ?? 0,
      state_bytes: t.state ? t.state.bytes - t.state.slotOf.byteLength : 0,
      state_bytes_per_row: t.state?.bytesPerRow ?? 0,
    }));
  }

  /** Applies the gradient of the input matrix to the rows the batch touched. */
  applyGradients(batch: EncodedBatch, gradX: Float32Array): void {
    this.step++;
    this.kernels.update(this.tables, batch.ids, batch.length, gradX, this.inputDim, sparseStep(this.optimizer, this.step, this.learningRate, this.l2));
  }
}

const MiB = 2 ** 20;
function size(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/**
 * The memory of the tables as lines for the log at the start of training (README.md, "Sparse
 * embeddings"): a total (and the weights advised for huge pages), then per table its rows, dim,
 * weights, state index, the state allocated now and what a touched row adds.
 */
export function describeTableMemory(memory: TableMemory[], optimizer: EmbeddingOptimizerConfig['type'], hugePageBytes = 0): string[] {
  const sum = (f: (m: TableMemory) => number) => memory.reduce((s, m) => s + f(m), 0);
  const weights = sum((m) => m.weights_bytes);
  const index = sum((m) => m.index_bytes);
  const state = sum((m) => m.state_bytes);
  const most = sum((m) => m.rows * m.state_bytes_per_row);
  const head =
    optimizer === 'sgd'
      ? `embedding tables: ${memory.length}, weights ${size(weights)} (SGD: no optimizer state)`
      : `embedding tables: ${memory.length}, weights ${size(weights)}, ${optimizer} state index ${size(index)}, ${optimizer} state ${size(state)} allocated ` +
        `(grows with the rows training touches, by half when full: at most ${size(most)} if every row is touched)`;
  return [
    hugePageBytes > 0 ? `${head}; ${size(hugePageBytes)} of weights advised for huge pages` : head,
    ...memory.map(
      (m) =>
        `  ${m.feature}: ${m.rows.toLocaleString('en-US')} rows × ${m.dim}, weights ${size(m.weights_bytes)}` +
        (m.state_bytes_per_row === 0 ? '' : `, state index ${size(m.index_bytes)}, state ${size(m.state_bytes)} for ${m.state_rows.toLocaleString('en-US')} rows (+${m.state_bytes_per_row} B per touched row)`),
    ),
  ];
}

