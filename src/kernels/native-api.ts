/**
 * The typed interface of the native addon (native/src/addon.cc): every function it exports, with
 * its arguments. src/kernels/addon.ts loads the addon and hands out this interface, never the raw
 * module object.
 */

/** What the addon's info() returns. */
export interface NativeInfo {
  /** Instruction set of the micro-kernel: 'avx512', 'avx2', 'avx', 'sse', 'neon' or 'generic'. */
  simd: string;
  vectorBytes: number;
  /** Micro-kernel rows x columns. */
  mr: number;
  nr: number;
  /** Largest K and M blocks. */
  kc: number;
  mc: number;
  /** Most threads one call may use. */
  maxThreads: number;
  /** Threads the machine has (capped at maxThreads): the default for sgemm. */
  threads: number;
  hardwareThreads: number;
  compiler: string;
  version: string;
}

/**
 * C[M,N] = op(A)·op(B), row-major; op transposes when its flag is set. A holds M*K floats ([M,K],
 * or [K,M] when transA), B K*N ([K,N] or [N,K]); C (M*N floats, written in place) must not overlap
 * them. Views into wasm memory are fine. Throws on bad arguments.
 */
export type SgemmFn = (transA: boolean, transB: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array, C: Float32Array, ...rest: ProductOptions) => void;

/**
 * The optional last arguments of a product: threads, then its epilogue. bias is added to every row
 * of C (N floats), or null; activation is applied after it (0 none, 1 relu); residual is added to
 * C after the activation (M*N floats, C's layout), or null. Only builds whose info().version is 3 or
 * later read the residual (older ones ignore it): check with sgemmHasResidual().
 */
export type ProductOptions = [threads?: number, bias?: Float32Array | null, activation?: number, residual?: Float32Array | null];

/** Whether this build's sgemm reads its `residual` argument (native version 3 on). */
export function sgemmHasResidual(native: { info(): NativeInfo }): boolean {
  return Number(native.info().version) >= 3;
}

/**
 * Gathers (and pools) the rows of every table that `ids` name into x ([n, D]); `layout` is
 * [rows, dim, width, offset, mean] per table (native/src/addon.cc documents the arguments).
 */
export type EmbeddingLookupFn = (weights: Float32Array[], ids: readonly Int32Array[], layout: Int32Array, n: number, x: Float32Array, D: number, threads?: number) => void;

/**
 * embeddingLookup into x, fused with the product that reads it: C = act(x·W + bias) + residual as
 * sgemm computes it (W is [D, N]), x written row block by row block just before the product reads
 * it while the next block's table rows are fetched (native/README.md). x and C get the same bits as
 * embeddingLookup then sgemm. Columns of x that no table covers (numeric features) are read as they
 * are. Version 6 on.
 */
export type EmbeddingSgemmFn = (weights: Float32Array[], ids: readonly Int32Array[], layout: Int32Array, n: number, x: Float32Array, D: number, W: Float32Array, N: number, C: Float32Array, ...rest: ProductOptions) => void;

/**
 * Sums gradX per touched row and applies the row-wise optimizer (0 SGD, 1 Adagrad, 2 lazy Adam;
 * hyper = [lr, epsilon, beta1, beta2, lrT, epsHat]) to those rows of weights and to their state:
 * m and v by slot, slotOf (row -> 1 + slot, 0: none) and used (slots in use per table, updated in
 * place), as kernels/row-state.ts keeps them; a touched row without state takes the next slot.
 */
export type EmbeddingUpdateFn = (
  optimizer: number,
  hyper: Float64Array,
  weights: Float32Array[],
  m: (Float32Array | null)[] | null,
  v: (Float32Array | null)[] | null,
  slotOf: Int32Array[] | null,
  used: Int32Array | null,
  ids: readonly Int32Array[],
  layout: Int32Array,
  n: number,
  gradX: Float32Array,
  D: number,
  threads?: number,
) => void;

/** tfjs's Adam update of one variable in place; constants are the eight float32 scalars of native/src/adam.cc. */
export type AdamStepFn = (value: Float32Array, m: Float32Array, v: Float32Array, grad: Float32Array, constants: Float32Array, threads?: number) => void;

/**
 * The gradient of a relu output y: dz = dy * step(y), as tfjs's Step (NaN where y is NaN), Cast and
 * Multiply kernels give it, in one pass over length(y) floats; dz may be dy itself, never y.
 * Version 4 on.
 */
export type ReluBackwardFn = (dy: Float32Array, y: Float32Array, dz: Float32Array, threads?: number) => void;

/** out = a + b element-wise over length(a) floats, on up to `threads` threads (same bits); out may be a or b. Version 5 on. */
export type AddArraysFn = (a: Float32Array, b: Float32Array, out: Float32Array, threads?: number) => void;

/**
 * madvise(MADV_HUGEPAGE) on the whole 2 MiB pages inside an ArrayBuffer's memory: offset is the
 * bytes from its start to its first 2 MiB boundary, bytes how many from there were advised (0 where
 * none fits or the system takes no such advice). Version 7 on.
 */
export type AdviseHugePagesFn = (buffer: ArrayBuffer) => { offset: number; bytes: number };

/** Every function the addon exports. The later kernels are absent from builds that predate them. */
export interface NativeAddon {
  sgemm: SgemmFn;
  info(): NativeInfo;
  embeddingLookup?: EmbeddingLookupFn;
  /** Version 3 on (version 2's `embeddingUpdate` took eagerly allocated state and is not used). */
  embeddingUpdateLazy?: EmbeddingUpdateFn;
  adamStep?: AdamStepFn;
  /** Version 4 on. */
  reluBackward?: ReluBackwardFn;
  /** Version 5 on. */
  addArrays?: AddArraysFn;
  /** Version 6 on. */
  embeddingSgemm?: EmbeddingSgemmFn;
  /** Version 7 on. */
  adviseHugePages?: AdviseHugePagesFn;
  /** The .node file it was loaded from. */
  readonly path: string;
}
