/** What the sparse embedding kernels (sparse-kernels.ts) take and do, whichever implementation runs. */
import type { EmbeddingOptimizerConfig } from '../config/experiment.js';
import type { RowState } from './row-state.js';

/** The tables' data as the kernels see it. */
export interface TableData {
  weights: Float32Array;
  /** The optimizer state (Adam's moments, Adagrad's accumulator), allocated per row on first touch; null for SGD. */
  state: RowState | null;
  rows: number;
  dim: number;
  /** Ids per example: 1 for a single-valued feature, the list length for a list feature. */
  width: number;
  /** List pooling. */
  mean: boolean;
  /** First column of this table in the input matrix. */
  offset: number;
}

/** The optimizer constants of one step; Adam's bias corrections are folded into lrT and epsHat. */
export interface SparseStep {
  optimizer: EmbeddingOptimizerConfig;
  /** This step's learning rate: optimizer.lr times the schedule's factor (train.lr_schedule). */
  lr: number;
  /** train.embedding_l2: adds l2 x row to each touched row's summed gradient; 0: off (the native kernels run only then). */
  l2: number;
  lrT: number;
  epsHat: number;
}

export interface SparseKernels {
  readonly name: 'js' | 'native';
  /** x[i, offset + d] for every table, zeros for absent ids; x is [n, D], any contents on entry (every table column is written). */
  lookup(tables: readonly TableData[], ids: readonly Int32Array[], n: number, x: Float32Array, D: number): void;
  /**
   * Applies gradX ([n, D], the gradient of the lookup's x) to the rows the ids touch; a touched row
   * without state gets the next slot of its table's RowState (reserveState() makes room first).
   */
  update(tables: readonly TableData[], ids: readonly Int32Array[], n: number, gradX: Float32Array, D: number, step: SparseStep): void;
}

/** The optimizer constants of global step `step` (1-based); lazy Adam's bias corrections use the global step, as TensorFlow's LazyAdam does. */
export function sparseStep(optimizer: EmbeddingOptimizerConfig, step: number, lr: number = optimizer.lr, l2 = 0): SparseStep {
  if (optimizer.type !== 'adam') return { optimizer, lr, l2, lrT: 0, epsHat: 0 };
  const c2 = Math.sqrt(1 - Math.pow(optimizer.beta2, step));
  return { optimizer, lr, l2, lrT: (lr * c2) / (1 - Math.pow(optimizer.beta1, step)), epsHat: optimizer.epsilon * c2 };
}

/** Makes room in every table's state for the rows a batch of n examples could touch for the first time. */
export function reserveState(tables: readonly TableData[], n: number): void {
  for (const t of tables) t.state?.reserve(n * t.width);
}
