/**
 * The two per-step kernels of the sparse embedding tables: `lookup` gathers (and pools) a batch's
 * rows into the dense input matrix, `update` sums the input matrix's gradient per touched row and
 * applies the row-wise optimizer (lazy Adam, Adagrad or SGD) to those rows only.
 *
 * Two implementations plug in here: plain JavaScript, and the optional native addon (native/,
 * src/train/native-matmul.ts loads it), which spreads tables over threads and prefetches rows. A
 * step's sparse work is dominated by cache misses on randomly touched rows of large tables, which
 * JavaScript cannot hide. Both give the same bits: the addon repeats the JavaScript arithmetic
 * operation for operation (doubles where JavaScript computes in doubles, no fused multiply-adds),
 * and is used only after a self-check against the JavaScript kernels on random tables passes.
 */
import type { OptimizerConfig } from '../config/experiment.js';
import { loadNativeMatmul, nativeMatmulUnavailableReason } from '../train/native-matmul.js';
import { Rng } from '../base/rng.js';

/** The tables' data as the kernels see it. */
export interface TableData {
  weights: Float32Array;
  /** Adam first moment or Adagrad accumulator; null for SGD. */
  m: Float32Array | null;
  /** Adam second moment; null otherwise. */
  v: Float32Array | null;
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
  optimizer: OptimizerConfig;
  lrT: number;
  epsHat: number;
}

export interface SparseKernels {
  readonly name: 'js' | 'native';
  /** x[i, offset + d] for every table; x is [n, D] and zero-filled on entry. */
  lookup(tables: readonly TableData[], ids: readonly Int32Array[], n: number, x: Float32Array, D: number): void;
  /** Applies gradX ([n, D], the gradient of the lookup's x) to the rows the ids touch. */
  update(tables: readonly TableData[], ids: readonly Int32Array[], n: number, gradX: Float32Array, D: number, step: SparseStep): void;
}

/** The JavaScript kernels; they keep per-table working buffers, so use one instance per set of tables. */
export class JsSparseKernels implements SparseKernels {
  readonly name = 'js';
  /** Per table: row -> gradient slot (-1 = untouched), kept at -1 between steps. */
  private slot: Int32Array[] = [];
  private touched: Int32Array[] = [];
  private gradSums: Float32Array[] = [];

  lookup(tables: readonly TableData[], ids: readonly Int32Array[], n: number, x: Float32Array, D: number): void {
    for (let ti = 0; ti < tables.length; ti++) {
      const t = tables[ti]!;
      if (t.width === 1) gatherSingleIds(t.weights, ids[ti]!, n, x, D, t.offset, t.dim);
      else gatherLists(t.weights, ids[ti]!, n, t.width, t.mean, x, D, t.offset, t.dim);
    }
  }

  update(tables: readonly TableData[], ids: readonly Int32Array[], n: number, gradX: Float32Array, D: number, step: SparseStep): void {
    const o = step.optimizer;
    for (let ti = 0; ti < tables.length; ti++) {
      const t = tables[ti]!;
      const capacity = Math.min(n * t.width, t.rows);
      if (!this.slot[ti] || this.slot[ti]!.length < t.rows) this.slot[ti] = new Int32Array(t.rows).fill(-1);
      if (!this.touched[ti] || this.touched[ti]!.length < capacity) {
        this.touched[ti] = new Int32Array(capacity);
        this.gradSums[ti] = new Float32Array(capacity * t.dim);
      }
      const touched = this.touched[ti]!;
      const acc = this.gradSums[ti]!;
      const slot = this.slot[ti]!;
      const count =
        t.width === 1
          ? sumSingleIdGradients(ids[ti]!, n, gradX, D, t.offset, t.dim, slot, touched, acc)
          : sumListGradients(ids[ti]!, n, t.width, t.mean, gradX, D, t.offset, t.dim, slot, touched, acc);
      if (o.type === 'sgd') sgdRows(t.weights, touched, count, acc, t.dim, o.lr);
      else if (o.type === 'adagrad') adagradRows(t.weights, t.m!, touched, count, acc, t.dim, o.lr, o.epsilon);
      else lazyAdamRows(t.weights, t.m!, t.v!, touched, count, acc, t.dim, o.beta1, o.beta2, step.lrT, step.epsHat);
      for (let s = 0; s < count; s++) slot[touched[s]!] = -1;
    }
  }
}

/** The addon's embedding functions (native/src/addon.cc documents them). */
export interface NativeEmbeddingFunctions {
  embeddingLookup(weights: Float32Array[], ids: readonly Int32Array[], layout: Int32Array, n: number, x: Float32Array, D: number, threads?: number): void;
  embeddingUpdate(
    optimizer: number,
    hyper: Float64Array,
    weights: Float32Array[],
    m: (Float32Array | null)[],
    v: (Float32Array | null)[],
    ids: readonly Int32Array[],
    layout: Int32Array,
    n: number,
    gradX: Float32Array,
    D: number,
    threads?: number,
  ): void;
}

const OPTIMIZER_CODES = { sgd: 0, adagrad: 1, adam: 2 } as const;

/** The addon's kernels; stateless on this side (the addon keeps its working memory). */
export class NativeSparseKernels implements SparseKernels {
  readonly name = 'native';
  private readonly hyper = new Float64Array(6);
  constructor(
    readonly fns: NativeEmbeddingFunctions,
    /** Threads per call (results do not depend on it). */
    readonly threads: number,
  ) {}

  lookup(tables: readonly TableData[], ids: readonly Int32Array[], n: number, x: Float32Array, D: number): void {
    this.fns.embeddingLookup(tables.map((t) => t.weights), ids, layoutOf(tables), n, x, D, this.threads);
  }

  update(tables: readonly TableData[], ids: readonly Int32Array[], n: number, gradX: Float32Array, D: number, step: SparseStep): void {
    const o = step.optimizer;
    const h = this.hyper;
    h[0] = o.lr;
    h[1] = o.epsilon;
    h[2] = o.beta1;
    h[3] = o.beta2;
    h[4] = step.lrT;
    h[5] = step.epsHat;
    this.fns.embeddingUpdate(
      OPTIMIZER_CODES[o.type],
      h,
      tables.map((t) => t.weights),
      tables.map((t) => t.m),
      tables.map((t) => t.v),
      ids,
      layoutOf(tables),
      n,
      gradX,
      D,
      this.threads,
    );
  }
}

const layouts = new WeakMap<readonly TableData[], Int32Array>();
/** [rows, dim, width, offset, mean] per table, as the addon takes it (cached per tables array). */
function layoutOf(tables: readonly TableData[]): Int32Array {
  let layout = layouts.get(tables);
  if (layout === undefined) {
    layout = Int32Array.from(tables.flatMap((t) => [t.rows, t.dim, t.width, t.offset, t.mean ? 1 : 0]));
    layouts.set(tables, layout);
  }
  return layout;
}

let loaded: { fns: NativeEmbeddingFunctions; threads: number } | null | undefined;
let nativeReason = '';

/** The addon's embedding functions once per process, or null (the reason in nativeReason). */
function nativeEmbeddings(): { fns: NativeEmbeddingFunctions; threads: number } | null {
  if (loaded === undefined) loaded = loadNativeEmbeddings();
  return loaded;
}

/**
 * The kernels a new set of tables should use: the addon's when it is built, loads and passes the
 * self-check, else JavaScript. RESFLOW_NO_NATIVE=1 forces JavaScript.
 */
export function createSparseKernels(): SparseKernels {
  const native = nativeEmbeddings();
  return native === null ? new JsSparseKernels() : new NativeSparseKernels(native.fns, native.threads);
}

/** Which kernels createSparseKernels() gives, for logs and run.json: `native, 2 threads` or `js`. */
export function describeSparseKernels(): string {
  const native = nativeEmbeddings();
  return native === null ? 'js' : `native, ${native.threads} thread${native.threads === 1 ? '' : 's'}`;
}

/** Why createSparseKernels() gives the JavaScript kernels ('' when it gives the native ones). */
export function nativeEmbeddingsUnavailableReason(): string {
  nativeEmbeddings();
  return nativeReason;
}

function loadNativeEmbeddings(): { fns: NativeEmbeddingFunctions; threads: number } | null {
  const module = loadNativeMatmul();
  if (module === null) {
    nativeReason = `the native module is not available: ${nativeMatmulUnavailableReason()}`;
    return null;
  }
  const mod = module.exports as Partial<NativeEmbeddingFunctions>;
  if (typeof mod.embeddingLookup !== 'function' || typeof mod.embeddingUpdate !== 'function') {
    nativeReason = 'the native module predates the embedding kernels; rebuild with npm run prepare';
    return null;
  }
  const fns = mod as NativeEmbeddingFunctions;
  // The machine's threads (capped by the addon), as the matmul uses by default; tables are spread over them.
  const threads = module.info().threads;
  let problem: string | null;
  try {
    problem = compareKernels(new NativeSparseKernels(fns, threads), new JsSparseKernels());
  } catch (e) {
    problem = e instanceof Error ? e.message : String(e);
  }
  if (problem !== null) {
    nativeReason = `embedding self-check failed: ${problem}`;
    return null;
  }
  return { fns, threads };
}

/**
 * Runs both kernels on the same random tables (a single-id table, a mean-pooled and a sum-pooled
 * list table with padding, repeated ids) for a few steps of each optimizer, with enough ids to
 * take the addon's threaded path. Null when every output and every table agrees bit for bit;
 * otherwise what differed.
 */
export function compareKernels(a: SparseKernels, b: SparseKernels, seed = 7): string | null {
  const rng = new Rng(seed);
  const n = 600;
  const shapes = [
    { rows: 50, dim: 8, width: 1, mean: false },
    { rows: 300, dim: 5, width: 4, mean: true },
    { rows: 20, dim: 16, width: 3, mean: false },
  ];
  const base = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, initial_accumulator: 0.1 };
  const optimizers: OptimizerConfig[] = [
    { ...base, type: 'adam', lr: 0.01 },
    { ...base, type: 'adagrad', lr: 0.05 },
    { ...base, type: 'sgd', lr: 0.1 },
  ];
  for (const optimizer of optimizers) {
    let offset = 0;
    const make = (): TableData[] => {
      offset = 0;
      return shapes.map((s) => {
        const size = s.rows * s.dim;
        const t: TableData = {
          weights: new Float32Array(size),
          m: optimizer.type === 'sgd' ? null : new Float32Array(size),
          v: optimizer.type === 'adam' ? new Float32Array(size) : null,
          ...s,
          offset,
        };
        offset += s.dim;
        return t;
      });
    };
    const ta = make();
    const tb = make();
    const D = offset + 1;
    for (let k = 0; k < ta.length; k++) {
      for (let i = 0; i < ta[k]!.weights.length; i++) ta[k]!.weights[i] = tb[k]!.weights[i] = rng.next() - 0.5;
      if (ta[k]!.m) for (let i = 0; i < ta[k]!.m!.length; i++) ta[k]!.m![i] = tb[k]!.m![i] = optimizer.type === 'adagrad' ? optimizer.initial_accumulator : 0;
    }
    for (let stepNo = 1; stepNo <= 3; stepNo++) {
      const ids = shapes.map((s) => Int32Array.from({ length: n * s.width }, () => (rng.next() < 0.1 ? -1 : rng.int(s.rows))));
      const xa = new Float32Array(n * D);
      const xb = new Float32Array(n * D);
      a.lookup(ta, ids, n, xa, D);
      b.lookup(tb, ids, n, xb, D);
      const diff = firstDifference(xa, xb);
      if (diff >= 0) return `${optimizer.type} step ${stepNo}: lookups differ at ${diff} (${xa[diff]} vs ${xb[diff]})`;
      const gradX = Float32Array.from({ length: n * D }, () => (rng.next() - 0.5) * 0.1);
      const step = sparseStep(optimizer, stepNo);
      a.update(ta, ids, n, gradX, D, step);
      b.update(tb, ids, n, gradX, D, step);
      for (let k = 0; k < ta.length; k++) {
        for (const slot of ['weights', 'm', 'v'] as const) {
          const p = ta[k]![slot];
          const q = tb[k]![slot];
          if (p === null || q === null) continue;
          const at = firstDifference(p, q);
          if (at >= 0) return `${optimizer.type} step ${stepNo}: table ${k} ${slot} differ at ${at} (${p[at]} vs ${q[at]})`;
        }
      }
    }
  }
  return null;
}

function firstDifference(p: Float32Array, q: Float32Array): number {
  if (p.length !== q.length) return 0;
  for (let i = 0; i < p.length; i++) if (!Object.is(p[i], q[i])) return i;
  return -1;
}

/** The optimizer constants of global step `step` (1-based); lazy Adam's bias corrections use the global step, as TensorFlow's LazyAdam does. */
export function sparseStep(optimizer: OptimizerConfig, step: number): SparseStep {
  if (optimizer.type !== 'adam') return { optimizer, lrT: 0, epsHat: 0 };
  const c2 = Math.sqrt(1 - Math.pow(optimizer.beta2, step));
  return { optimizer, lrT: (optimizer.lr * c2) / (1 - Math.pow(optimizer.beta1, step)), epsHat: optimizer.epsilon * c2 };
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

function sgdRows(W: Float32Array, rows: Int32Array, count: number, grad: Float32Array, dim: number, lr: number): void {
  for (let s = 0; s < count; s++) {
    const base = rows[s]! * dim;
    const gs = s * dim;
    for (let d = 0; d < dim; d++) W[base + d]! -= lr * grad[gs + d]!;
  }
}

function adagradRows(W: Float32Array, A: Float32Array, rows: Int32Array, count: number, grad: Float32Array, dim: number, lr: number, eps: number): void {
  for (let s = 0; s < count; s++) {
    const base = rows[s]! * dim;
    const gs = s * dim;
    for (let d = 0; d < dim; d++) {
      const g = grad[gs + d]!;
      const i = base + d;
      A[i]! += g * g;
      W[i]! -= (lr * g) / (Math.sqrt(A[i]!) + eps);
    }
  }
}

/** Lazy Adam: moments of a row decay only on steps that touch it. */
function lazyAdamRows(W: Float32Array, M: Float32Array, V: Float32Array, rows: Int32Array, count: number, grad: Float32Array, dim: number, b1: number, b2: number, lrT: number, epsHat: number): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
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
