/**
 * The sparse embedding kernels in plain JavaScript: the reference the native ones must match bit
 * for bit, and what runs when the addon is not there.
 */
import { reserveState, type SparseKernels, type SparseStep, type TableData } from './sparse-api.js';

/** The JavaScript kernels; they keep per-table working buffers, so use one instance per set of tables. */
export class JsSparseKernels implements SparseKernels {
  readonly name = 'js';
  /** Row -> place in `touched` (-1 = untouched), kept at -1 between tables; one for all tables (they are worked one by one). */
  private slot = new Int32Array(0);
  private touched: Int32Array[] = [];
  private gradSums: Float32Array[] = [];

  lookup(tables: readonly TableData[], ids: readonly Int32Array[], n: number, x: Float32Array, D: number): void {
    x.fill(0, 0, n * D); // the gathers below add pooled lists into zeros and skip absent ids
    for (let ti = 0; ti < tables.length; ti++) {
      const t = tables[ti]!;
      if (t.width === 1) gatherSingleIds(t.weights, ids[ti]!, n, x, D, t.offset, t.dim);
      else gatherLists(t.weights, ids[ti]!, n, t.width, t.mean, x, D, t.offset, t.dim);
    }
  }

  update(tables: readonly TableData[], ids: readonly Int32Array[], n: number, gradX: Float32Array, D: number, step: SparseStep): void {
    const o = step.optimizer;
    reserveState(tables, n);
    const maxRows = tables.reduce((m, t) => Math.max(m, t.rows), 0);
    if (this.slot.length < maxRows) this.slot = new Int32Array(maxRows).fill(-1);
    const slot = this.slot;
    for (let ti = 0; ti < tables.length; ti++) {
      const t = tables[ti]!;
      const capacity = Math.min(n * t.width, t.rows);
      if (!this.touched[ti] || this.touched[ti]!.length < capacity) {
        this.touched[ti] = new Int32Array(capacity);
        this.gradSums[ti] = new Float32Array(capacity * t.dim);
      }
      const touched = this.touched[ti]!;
      const acc = this.gradSums[ti]!;
      const count =
        t.width === 1
          ? sumSingleIdGradients(ids[ti]!, n, gradX, D, t.offset, t.dim, slot, touched, acc)
          : sumListGradients(ids[ti]!, n, t.width, t.mean, gradX, D, t.offset, t.dim, slot, touched, acc);
      if (step.l2 !== 0) addL2(t.weights, touched, count, acc, t.dim, step.l2);
      const st = t.state;
      if (o.type === 'sgd') sgdRows(t.weights, touched, count, acc, t.dim, step.lr);
      else if (o.type === 'adagrad') st!.used = adagradRows(t.weights, st!.slotOf, st!.used, st!.m, touched, count, acc, t.dim, step.lr, o.epsilon);
      else st!.used = lazyAdamRows(t.weights, st!.slotOf, st!.used, st!.m, st!.v!, touched, count, acc, t.dim, o.beta1, o.beta2, step.lrT, step.epsHat);
      for (let s = 0; s < count; s++) slot[touched[s]!] = -1;
    }
  }
}

// The JavaScript kernels. The hot loops live in small functions over typed arrays: V8 optimises
// these several times better than the same loops inside one large method (0.5 ms against 2.7 ms
// per step for the sums). native/src/embeddings.cc mirrors each expression; change both together.

/** Copies each row's embedding into its columns [off, off + dim) of the input matrix x. */
function gatherSingleIds(weights: Float32Array, ids: Int32Array, n: number, x: Float32Array, D: number, off: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const row = ids[i]!;
    if (row < 0) continue;
    const src = row * dim;
    const dst = i * D + off;
    for (let d = 0; d < dim; d++) x[dst + d] = weights[src + d]!;
  }
}

/** Pools (sum or mean) each row's list of `w` embeddings (-1 pads) into the input matrix. */
function gatherLists(weights: Float32Array, ids: Int32Array, n: number, w: number, mean: boolean, x: Float32Array, D: number, off: number, dim: number): void {
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

/**
 * Sums the gradient rows of single-id features per distinct table row. `slot` maps a table row to
 * its place in `touched`/`acc` (-1 = not yet touched); returns the number of distinct rows.
 */
function sumSingleIdGradients(ids: Int32Array, n: number, gradX: Float32Array, D: number, off: number, dim: number, slot: Int32Array, touched: Int32Array, acc: Float32Array): number {
  let count = 0;
  for (let i = 0; i < n; i++) {
    const row = ids[i]!;
    if (row < 0) continue;
    const g = i * D + off;
    let s = slot[row]!;
    if (s < 0) {
      s = count++;
      slot[row] = s;
      touched[s] = row;
      const a = s * dim;
      for (let d = 0; d < dim; d++) acc[a + d] = gradX[g + d]!;
    } else {
      const a = s * dim;
      for (let d = 0; d < dim; d++) acc[a + d]! += gradX[g + d]!;
    }
  }
  return count;
}

/** As sumSingleIdGradients for lists of `w` ids per row (-1 pads); mean pooling splits a row's gradient. */
function sumListGradients(ids: Int32Array, n: number, w: number, mean: boolean, gradX: Float32Array, D: number, off: number, dim: number, slot: Int32Array, touched: Int32Array, acc: Float32Array): number {
  let count = 0;
  for (let i = 0; i < n; i++) {
    let present = 0;
    for (let j = 0; j < w; j++) if (ids[i * w + j]! >= 0) present++;
    if (present === 0) continue;
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
  return count;
}

/**
 * Lazy L2 (train.embedding_l2): the gradient of (l2 / 2) x |row|^2 added to each touched row's
 * summed gradient, rounded to float32 as the sums are; rows the batch does not touch are left alone.
 */
function addL2(W: Float32Array, rows: Int32Array, count: number, grad: Float32Array, dim: number, l2: number): void {
  for (let s = 0; s < count; s++) {
    const base = rows[s]! * dim;
    const gs = s * dim;
    for (let d = 0; d < dim; d++) grad[gs + d]! += l2 * W[base + d]!;
  }
}

function sgdRows(W: Float32Array, rows: Int32Array, count: number, grad: Float32Array, dim: number, lr: number): void {
  for (let s = 0; s < count; s++) {
    const base = rows[s]! * dim;
    const gs = s * dim;
    for (let d = 0; d < dim; d++) W[base + d]! -= lr * grad[gs + d]!;
  }
}

// The optimizers with state (row-state.ts): `slotOf` maps a row to 1 + its slot in A / M / V (0: none
// yet, then the row takes slot `used`, already initialised by RowState.reserve); they return the
// slots now in use.

function adagradRows(W: Float32Array, slotOf: Int32Array, used: number, A: Float32Array, rows: Int32Array, count: number, grad: Float32Array, dim: number, lr: number, eps: number): number {
  for (let s = 0; s < count; s++) {
    const row = rows[s]!;
    const base = row * dim;
    let k = slotOf[row]!;
    if (k === 0) slotOf[row] = k = ++used;
    const sb = (k - 1) * dim;
    const gs = s * dim;
    for (let d = 0; d < dim; d++) {
      const g = grad[gs + d]!;
      const i = base + d;
      const a = sb + d;
      A[a]! += g * g;
      W[i]! -= (lr * g) / (Math.sqrt(A[a]!) + eps);
    }
  }
  return used;
}

/** Lazy Adam: moments of a row decay only on steps that touch it. */
function lazyAdamRows(W: Float32Array, slotOf: Int32Array, used: number, M: Float32Array, V: Float32Array, rows: Int32Array, count: number, grad: Float32Array, dim: number, b1: number, b2: number, lrT: number, epsHat: number): number {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  for (let s = 0; s < count; s++) {
    const row = rows[s]!;
    const base = row * dim;
    let k = slotOf[row]!;
    // a new slot's moments are zero and not read: reading a never-touched page first costs a second fault on the write (embeddings.cc)
    const fresh = k === 0;
    if (fresh) slotOf[row] = k = ++used;
    const sb = (k - 1) * dim;
    const gs = s * dim;
    for (let d = 0; d < dim; d++) {
      const g = grad[gs + d]!;
      const i = base + d;
      const a = sb + d;
      const m = b1 * (fresh ? 0 : M[a]!) + c1 * g;
      const v = b2 * (fresh ? 0 : V[a]!) + c2 * g * g;
      M[a] = m;
      V[a] = v;
      W[i] = W[i]! - (lrT * m) / (Math.sqrt(v) + epsHat);
    }
  }
  return used;
}
