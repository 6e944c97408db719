/**
 * The two per-step kernels of the sparse embedding tables: `lookup` gathers (and pools) a batch's
 * rows into the dense input matrix, `update` sums the input matrix's gradient per touched row and
 * applies the row-wise optimizer (lazy Adam, Adagrad or SGD) to those rows only.
 *
 * Two implementations plug in here: plain JavaScript, and the optional native addon (native/,
 * addon.ts loads it), which spreads tables over threads and prefetches rows. A
 * step's sparse work is dominated by cache misses on randomly touched rows of large tables, which
 * JavaScript cannot hide. Both give the same bits: the addon repeats the JavaScript arithmetic
 * operation for operation (doubles where JavaScript computes in doubles, no fused multiply-adds),
 * and is used only after a self-check against the JavaScript kernels on random tables passes.
 */
import { addonUnavailableReason, loadAddon } from './addon.js';
import { compareKernels } from './sparse-check.js';
import type { SparseKernels } from './sparse-api.js';
import { JsSparseKernels } from './sparse-js.js';
import { NativeSparseKernels, type NativeEmbeddingFunctions } from './sparse-native.js';

export { sparseStep, type SparseKernels, type SparseStep, type TableData } from './sparse-api.js';
export { compareKernels } from './sparse-check.js';
export { JsSparseKernels } from './sparse-js.js';
export { NativeSparseKernels, type NativeEmbeddingFunctions } from './sparse-native.js';

interface LoadedNative {
  fns: NativeEmbeddingFunctions;
  /** The addon's default: the machine's threads, capped by the addon. */
  threads: number;
  maxThreads: number;
}
let loaded: LoadedNative | null | undefined;
let nativeReason = '';
/** runtime.threads (or a sweep launcher's grant), set by initBackend; null: the addon's default. */
let requestedThreads: number | null = null;

/** The addon's embedding functions once per process, or null (the reason in nativeReason). */
function nativeEmbeddings(): LoadedNative | null {
  if (loaded === undefined) loaded = loadNativeEmbeddings();
  return loaded;
}

/**
 * Bounds the threads of the kernels createSparseKernels() makes from now on (README.md, "Sweeps":
 * runtime.threads bounds every thread pool, so trials packed on one machine do not oversubscribe
 * it); null gives the addon's default. Results do not depend on it (the kernels split work by table).
 */
export function setSparseThreads(threads: number | null): void {
  requestedThreads = threads;
}

function threadsOf(native: LoadedNative): number {
  return requestedThreads === null ? native.threads : Math.max(1, Math.min(requestedThreads, native.maxThreads));
}

/**
 * The kernels a new set of tables should use: the addon's when it is built, loads and passes the
 * self-check, else JavaScript. RESFLOW_NO_NATIVE=1 forces JavaScript, and so does an L2 term
 * (train.embedding_l2), which only the JavaScript kernels apply.
 */
export function createSparseKernels(opts: { l2?: number } = {}): SparseKernels {
  if (opts.l2) return new JsSparseKernels();
  const native = nativeEmbeddings();
  return native === null ? new JsSparseKernels() : new NativeSparseKernels(native.fns, threadsOf(native));
}

/** Which kernels createSparseKernels() gives, for logs and run.json: `native, 2 threads` or `js`. */
export function describeSparseKernels(opts: { l2?: number } = {}): string {
  if (opts.l2) return 'js (train.embedding_l2 is on; the native kernels have no L2 term)';
  const native = nativeEmbeddings();
  if (native === null) return 'js';
  const n = threadsOf(native);
  return `native, ${n} thread${n === 1 ? '' : 's'}`;
}

/** Why createSparseKernels() gives the JavaScript kernels ('' when it gives the native ones). */
export function nativeEmbeddingsUnavailableReason(): string {
  nativeEmbeddings();
  return nativeReason;
}

function loadNativeEmbeddings(): LoadedNative | null {
  const addon = loadAddon();
  if (addon === null) {
    nativeReason = `the native module is not available: ${addonUnavailableReason()}`;
    return null;
  }
  const { embeddingLookup, embeddingUpdateLazy } = addon;
  if (embeddingLookup === undefined || embeddingUpdateLazy === undefined) {
    nativeReason = 'the native module predates the embedding kernels with lazily allocated optimizer state; rebuild with npm run prepare';
    return null;
  }
  const fns: NativeEmbeddingFunctions = { embeddingLookup, embeddingUpdateLazy };
  // The machine's threads (capped by the addon), as the matmul uses by default; tables are spread over them.
  const { threads, maxThreads } = addon.info();
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
  return { fns, threads, maxThreads };
}
