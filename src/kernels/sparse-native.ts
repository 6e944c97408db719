/**
 * The sparse embedding kernels of the native addon, which spreads tables over threads and
 * prefetches rows; they repeat the JavaScript arithmetic (sparse-js.ts) operation for operation.
 */
import type { NativeAddon } from './native-api.js';
import { reserveState, type SparseKernels, type SparseStep, type TableData } from './sparse-api.js';

/** The addon's embedding functions (native/src/addon.cc documents them). */
export type NativeEmbeddingFunctions = Required<Pick<NativeAddon, 'embeddingLookup' | 'embeddingUpdateLazy'>>;

const OPTIMIZER_CODES = { sgd: 0, adagrad: 1, adam: 2 } as const;

/** The addon's kernels; stateless on this side (the addon keeps its working memory). */
export class NativeSparseKernels implements SparseKernels {
  readonly name = 'native';
  private readonly hyper = new Float64Array(6);
  private used = new Int32Array(0);
  constructor(
    readonly fns: NativeEmbeddingFunctions,
    /** Threads per call (results do not depend on it). */
    readonly threads: number,
  ) {}

  lookup(tables: readonly TableData[], ids: readonly Int32Array[], n: number, x: Float32Array, D: number): void {
    const a = lookupArguments(tables, ids);
    this.fns.embeddingLookup(a.weights, a.ids, a.layout, n, x, D, this.threads);
  }

  update(tables: readonly TableData[], ids: readonly Int32Array[], n: number, gradX: Float32Array, D: number, step: SparseStep): void {
    const o = step.optimizer;
    // The addon has no L2 term: tables with train.embedding_l2 on get the JavaScript kernels (createSparseKernels).
    if (step.l2 !== 0) throw new Error('the native embedding kernels do not apply train.embedding_l2');
    const h = this.hyper;
    h[0] = step.lr;
    h[1] = o.epsilon;
    h[2] = o.beta1;
    h[3] = o.beta2;
    h[4] = step.lrT;
    h[5] = step.epsHat;
    const stateful = o.type !== 'sgd';
    if (stateful) {
      reserveState(tables, n);
      if (this.used.length !== tables.length) this.used = new Int32Array(tables.length);
      tables.forEach((t, i) => (this.used[i] = t.state!.used));
    }
    try {
      this.fns.embeddingUpdateLazy(
        OPTIMIZER_CODES[o.type],
        h,
        tables.map((t) => t.weights),
        stateful ? tables.map((t) => t.state!.m) : null,
        stateful ? tables.map((t) => t.state!.v) : null,
        stateful ? tables.map((t) => t.state!.slotOf) : null,
        stateful ? this.used : null,
        ids,
        layoutOf(tables),
        n,
        gradX,
        D,
        this.threads,
      );
    } finally {
      if (stateful) tables.forEach((t, i) => (t.state!.used = this.used[i]!));
    }
  }
}

/** What the addon's lookups (embeddingLookup, embeddingSgemm) take first: the tables and the batch's ids. */
export interface NativeLookupArguments {
  weights: Float32Array[];
  ids: readonly Int32Array[];
  layout: Int32Array;
}

export function lookupArguments(tables: readonly TableData[], ids: readonly Int32Array[]): NativeLookupArguments {
  return { weights: tables.map((t) => t.weights), ids, layout: layoutOf(tables) };
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
