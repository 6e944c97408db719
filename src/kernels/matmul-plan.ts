/**
 * How the native matmul lays out a tfjs matmul: the product's dimensions and, per output batch,
 * which batch of each operand it multiplies (numpy broadcasting, as far as tfjs's kernels agree
 * with it), and how a bias or PReLU weights broadcast over the output's rows.
 */
import type * as tf from '@tensorflow/tfjs';
import { sizeOf } from './wasm-heap.js';

/** numpy broadcast of two shapes, or null when they do not broadcast. */
function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out[i] = x === 1 ? y : x;
  }
  return out;
}

export interface Plan {
  M: number;
  N: number;
  K: number;
  /** Output batch size, and per output batch the batch of a and of b (null: the same index). */
  batch: number;
  batchA: number;
  batchB: number;
  indexA: Int32Array | null;
  indexB: Int32Array | null;
  outShape: number[];
}

/**
 * Per output batch (row-major over `outer`), the flat batch index of an operand with outer shape
 * `shape` under numpy broadcasting; null when that is the identity.
 */
function batchIndex(outer: readonly number[], shape: readonly number[], batch: number): Int32Array | null {
  const R = outer.length;
  const aligned = [...new Array<number>(R - shape.length).fill(1), ...shape];
  const strides = new Array<number>(R);
  let s = 1;
  for (let i = R - 1; i >= 0; i--) {
    strides[i] = aligned[i] === 1 ? 0 : s;
    s *= aligned[i]!;
  }
  const out = broadcastOffsets(outer, strides, new Int32Array(batch));
  return out.every((v, b) => v === b) ? null : out;
}

/**
 * Fills `out` with the offsets of a broadcast view's elements in row-major order over `dims`: a
 * mixed-radix counter that adds each dimension's stride (0 where the operand is broadcast).
 */
function broadcastOffsets<T extends Int32Array | Float64Array>(dims: readonly number[], strides: readonly number[], out: T): T {
  const idx = new Array<number>(dims.length).fill(0);
  let base = 0;
  for (let r = 0; r < out.length; r++) {
    out[r] = base;
    for (let d = dims.length - 1; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < dims[d]!) break;
      base -= strides[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * The product's dimensions, or null when the native path does not take it: non-float32 inputs,
 * rank < 2, mismatched inner dimensions (the previous kernel then throws tfjs's own error), or
 * batch dimensions whose numpy broadcast differs from what tfjs's kernels compute (they index
 * flattened batches as bi % batchA; e.g. [3,1] against [1,2] differs, [2,3] against [3] does not).
 */
export function plan(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): Plan | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const Ka = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (Ka !== Kb) return null;
  if (![M, N, Ka].every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 31)) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outer = broadcastShapes(outerA, outerB);
  if (outer === null) return null;
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const batch = sizeOf(outer);
  const plain = { M, N, K: Ka, batch, batchA, batchB, indexA: null, indexB: null, outShape: [...outer, M, N] };
  if (batch <= 1 || ((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1))) {
    return {
      ...plain,
      indexA: batchA === 1 && batch > 1 ? new Int32Array(batch) : null,
      indexB: batchB === 1 && batch > 1 ? new Int32Array(batch) : null,
    };
  }
  const indexA = batchIndex(outer, outerA, batch);
  const indexB = batchIndex(outer, outerB, batch);
  for (let i = 0; i < batch; i++) {
    if ((indexA ? indexA[i]! : i) !== i % batchA || (indexB ? indexB[i]! : i) !== i % batchB) return null;
  }
  return { ...plain, indexA, indexB };
}


/** Per output row, an operand's offset, and its step along the last dimension. */
export interface BroadcastRows {
  rowBase: Int32Array | Float64Array;
  step: number;
}

/**
 * For an operand broadcast against `outShape` (numpy rules, operand rank <= output rank): per
 * output row (all dimensions but the last), the operand's offset, and its step along the last
 * dimension (0 or 1). Null when it does not broadcast.
 */
export function broadcastRows(outShape: readonly number[], opShape: readonly number[]): BroadcastRows | null {
  const R = outShape.length;
  if (opShape.length > R) return null;
  const aligned = [...new Array<number>(R - opShape.length).fill(1), ...opShape];
  for (let i = 0; i < R; i++) if (aligned[i] !== 1 && aligned[i] !== outShape[i]) return null;
  const strides = new Array<number>(R);
  let s = 1;
  for (let i = R - 1; i >= 0; i--) {
    strides[i] = aligned[i] === 1 ? 0 : s;
    s *= aligned[i]!;
  }
  const N = outShape[R - 1]!;
  const rows = N === 0 ? 0 : sizeOf(outShape) / N;
  // Offsets over the leading R-1 dimensions (the rows).
  const lead = outShape.slice(0, Math.max(0, R - 1));
  const rowBase = broadcastOffsets(lead, strides.slice(0, lead.length), s < 2 ** 31 ? new Int32Array(rows) : new Float64Array(rows));
  return { rowBase, step: strides[R - 1]! };
}

/** Whether a bias of this shape is one value per output column, the same for every row ([N], [1, N], ...). */
export function isRowVector(shape: readonly number[], N: number): boolean {
  return shape.length >= 1 && shape[shape.length - 1] === N && shape.every((d, i) => i === shape.length - 1 || d === 1);
}
