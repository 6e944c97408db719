/**
 * Backend selection for TensorFlow.js, and the kernels that make the `wasm` backend usable for
 * training (DESIGN.md §9).
 *
 * - `tensorflow`: `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`. Both are optional and
 *   usually absent (they download libtensorflow at install time), so they are only ever loaded by a
 *   dynamic `import()` of a module name held in a variable.
 * - `wasm`: `@tensorflow/tfjs-backend-wasm` (XNNPACK, SIMD). In Node it runs one thread: tfjs
 *   reports no multithread support when `IS_NODE` is set, and the threaded binary's Blob-URL
 *   workers cannot start in Node's worker_threads.
 * - `cpu`: the pure-JS backend, always there, about 25x slower than `wasm`.
 *
 * The wasm backend of tfjs 4.22 has two gaps that are filled here through tfjs's kernel registry:
 * no `UnsortedSegmentSum` kernel (needed by the gradient of `tf.gather`), and a matmul with a
 * transposed input that falls off XNNPACK onto a naive loop (about 10-15x slower than transposing
 * explicitly and then running the untransposed XNNPACK path).
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import { quietlySync } from './tf-quiet.js';
import {
  isNativeMatmulKernel,
  loadNativeMatmul,
  nativeMatmulThreads,
  nativeMatmulUnavailableReason,
  registerNativeMatmulKernels,
  unregisterNativeMatmulKernels,
} from './native-matmul.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  name: BackendName;
  /** e.g. "wasm (tfjs 4.22.0, simd, 1 thread)" or "tensorflow (@tensorflow/tfjs-node-gpu, GPU)". */
  detail: string;
  threads: number;
}

export interface BackendOptions {
  /** Threads wanted; null/undefined lets the backend choose. */
  threads?: number | null;
}

const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** The optional native packages, tried in this order. */
const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

// ---------------------------------------------------------------------------------------------
// Console noise
// ---------------------------------------------------------------------------------------------

/**
 * Runs `f` with tfjs's PROD flag set, which silences its advisory console.warn calls
 * ("Platform node has already been set", "kernel ... is already registered", URL flag overrides)
 * while leaving thrown errors untouched. The previous value is restored afterwards, so warnings
 * from the user's own later calls still show. Never wrap tf.setBackend in it: tfjs reports a
 * backend that fails to initialise through the same warn(), and that is a real error.
 */
async function quietly<T>(f: () => Promise<T> | T): Promise<T> {
  const env = tf.env();
  const prev = env.getBool('PROD');
  env.set('PROD', true);
  try {
    return await f();
  } finally {
    env.set('PROD', prev);
  }
}


function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.split('\n').find((l) => l.trim() !== '') ?? msg;
  return line.trim();
}

// ---------------------------------------------------------------------------------------------
// wasm kernels
// ---------------------------------------------------------------------------------------------

/** The parts of tfjs-backend-wasm's BackendWasm that the JS kernels below use. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * UnsortedSegmentSum on wasm, in JS on the wasm heap: out[s, ...] = sum of x[i, ...] over i with
 * segmentIds[i] == s. segmentIds may have any rank r, with x.shape[:r] == segmentIds.shape; the
 * output is [numSegments, ...x.shape[r:]]. Ids outside [0, numSegments) are dropped (TensorFlow's
 * rule for negative ids). float32 and int32 data (int32 wraps like TensorFlow's).
 */
const unsortedSegmentSumWasm: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = Number((attrs as { numSegments: number }).numSegments);
  const be = backend as WasmBackendLike;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm, resflow) supports float32 and int32 data, got ${x.dtype}`);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm, resflow) needs int32 segmentIds, got ${segmentIds.dtype}`);
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  const idRank = segmentIds.shape.length;
  for (let i = 0; i < idRank; i++) {
    if (x.shape[i] !== segmentIds.shape[i]) {
      throw new Error(
        `UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
      );
    }
  }
  const innerShape = x.shape.slice(idRank);
  const inner = sizeOf(innerShape);
  const n = sizeOf(segmentIds.shape);
  // Allocate first: allocation may grow the wasm memory, which detaches earlier heap views.
  const out = be.makeOutput([numSegments, ...innerShape], x.dtype);
  const outVals = be.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const xVals = be.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = be.typedArrayFromHeap(segmentIds) as Int32Array;
  outVals.fill(0);
  if (inner === 1) {
    for (let i = 0; i < n; i++) {
      const s = ids[i];
      if (s >= 0 && s < numSegments) outVals[s] += xVals[i];
    }
  } else {
    for (let i = 0; i < n; i++) {
      const s = ids[i];
      if (s < 0 || s >= numSegments) continue;
      const o = s * inner;
      const xi = i * inner;
      for (let j = 0; j < inner; j++) outVals[o + j] += xVals[xi + j];
    }
  }
  return out;
};

/** Kernel functions installed by this module, so that registration is idempotent. */
const ours = new WeakSet<tf.KernelFunc>();
/** The wasm kernels replaced by wrappers, for `unregisterWasmKernels()`. */
const originals = new Map<string, tf.KernelConfig>();

function lookupKernel(name: string, backendName: string): tf.KernelConfig | undefined {
  return (tf.getKernel(name, backendName) as tf.KernelConfig | undefined) ?? undefined;
}

/**
 * Wraps a wasm matmul kernel (BatchMatMul or _FusedMatMul) so that a transposed input is
 * transposed explicitly (wasm Transpose kernel) and the original kernel then runs untransposed.
 * tfjs-backend-wasm only takes its XNNPACK path when neither input is transposed and both batch
 * sizes are 1; anything else runs a naive blocked loop. With batch > 1 the loop runs either way
 * (and transposing would not help), so those calls are passed through unchanged.
 */
function wrapTransposedMatMul(orig: tf.KernelConfig): tf.KernelConfig {
  const origFunc = orig.kernelFunc;
  const kernelFunc: tf.KernelFunc = (args) => {
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    const transposeA = attrs.transposeA === true;
    const transposeB = attrs.transposeB === true;
    if (!transposeA && !transposeB) return origFunc(args);
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      a.shape.length < 2 ||
      b.shape.length < 2 ||
      sizeOf(a.shape.slice(0, -2)) !== 1 ||
      sizeOf(b.shape.slice(0, -2)) !== 1
    ) {
      return origFunc(args);
    }
    const transposeKernel = lookupKernel('Transpose', 'wasm');
    if (transposeKernel === undefined) return origFunc(args);
    const be = args.backend as WasmBackendLike;
    const swapLastTwo = (t: tf.TensorInfo): tf.TensorInfo => {
      const r = t.shape.length;
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      return transposeKernel.kernelFunc({ inputs: { x: t }, backend: args.backend, attrs: { perm } }) as tf.TensorInfo;
    };
    const temps: tf.TensorInfo[] = [];
    try {
      let a2 = a;
      let b2 = b;
      if (transposeA) temps.push((a2 = swapLastTwo(a)));
      if (transposeB) temps.push((b2 = swapLastTwo(b)));
      return origFunc({
        inputs: { ...args.inputs, a: a2, b: b2 },
        backend: args.backend,
        attrs: { ...args.attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of temps) be.disposeData(t.dataId);
    }
  };
  ours.add(kernelFunc);
  return { ...orig, kernelFunc };
}

const MATMUL_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;

function restoreMatMulKernels(): void {
  for (const [name, orig] of originals) {
    const current = lookupKernel(name, 'wasm');
    if (current !== undefined && ours.has(current.kernelFunc)) tf.unregisterKernel(name, 'wasm');
    if (lookupKernel(name, 'wasm') === undefined) tf.registerKernel(orig);
  }
  originals.clear();
}

/**
 * Registers resflow's wasm kernels: UnsortedSegmentSum (unless tfjs already has one) and the
 * transposed-matmul wrappers around BatchMatMul and _FusedMatMul. Idempotent; works before or
 * after the wasm backend is initialised. `transposedMatMul: false` (for benchmarks) registers
 * only UnsortedSegmentSum and puts tfjs's own matmul kernels back.
 */
export function registerWasmKernels(opts: { transposedMatMul?: boolean } = {}): void {
  quietlySync(() => {
    if (lookupKernel('UnsortedSegmentSum', 'wasm') === undefined) {
      const kernelFunc = unsortedSegmentSumWasm;
      ours.add(kernelFunc);
      tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc });
    }
    if (opts.transposedMatMul === false) {
      unregisterNativeMatmulKernels();
      restoreMatMulKernels();
      return;
    }
    for (const name of MATMUL_KERNELS) {
      const current = lookupKernel(name, 'wasm');
      if (current === undefined || ours.has(current.kernelFunc) || isNativeMatmulKernel(current.kernelFunc)) continue;
      originals.set(name, current);
      tf.unregisterKernel(name, 'wasm');
      tf.registerKernel(wrapTransposedMatMul(current));
    }
  });
}

/** Undoes `registerWasmKernels()` (for benchmarks and tests): restores tfjs's own kernels. */
export function unregisterWasmKernels(): void {
  quietlySync(() => {
    const uss = lookupKernel('UnsortedSegmentSum', 'wasm');
    if (uss !== undefined && ours.has(uss.kernelFunc)) tf.unregisterKernel('UnsortedSegmentSum', 'wasm');
    unregisterNativeMatmulKernels();
    restoreMatMulKernels();
  });
}

/** Whether the transposed-matmul wrappers are the registered wasm matmul kernels now. */
export function wasmMatMulPatched(): boolean {
  return MATMUL_KERNELS.every((name) => {
    const k = lookupKernel(name, 'wasm');
    return k !== undefined && (ours.has(k.kernelFunc) || isNativeMatmulKernel(k.kernelFunc));
  });
}

// ---------------------------------------------------------------------------------------------
// tensorflow (tfjs-node)
// ---------------------------------------------------------------------------------------------

interface TensorflowProbe {
  ok: boolean;
  /** The package that loaded, when ok. */
  pkg?: string;
  /** One line per package tried and why it failed. */
  failures: string[];
}

let tensorflowProbe: Promise<TensorflowProbe> | null = null;

/** Loads tfjs-node-gpu, else tfjs-node, once per process; remembers the outcome. */
function probeTensorflow(threads: number | null): Promise<TensorflowProbe> {
  tensorflowProbe ??= (async () => {
    // libtensorflow reads these when it starts: keep its INFO/WARNING log lines (CPU feature
    // guard, cuda_dso_loader chatter) off stderr, and pass the thread count on. A value the user
    // set is left alone.
    process.env['TF_CPP_MIN_LOG_LEVEL'] ??= '2';
    if (threads != null) {
      process.env['TF_NUM_INTRAOP_THREADS'] ??= String(threads);
      process.env['TF_NUM_INTEROP_THREADS'] ??= '1';
    }
    const failures: string[] = [];
    for (const pkg of TFJS_NODE_PACKAGES) {
      const moduleName: string = pkg; // a variable, so TypeScript does not resolve it
      try {
        await quietly(() => import(moduleName));
      } catch (e) {
        failures.push(`${pkg}: ${firstLine(e)}`);
        continue;
      }
      if (tf.findBackendFactory('tensorflow') == null) {
        failures.push(`${pkg}: loaded, but it registered no 'tensorflow' backend`);
        continue;
      }
      return { ok: true, pkg, failures };
    }
    return { ok: false, failures };
  })();
  return tensorflowProbe;
}

function tensorflowUnavailable(failures: string[]): UsageError {
  return new UsageError(
    [
      `backend 'tensorflow' is not available: neither ${TFJS_NODE_PACKAGES.join(' nor ')} could be loaded.`,
      ...failures.map((f) => `  ${f}`),
      'To use it, install one of them in this project:',
      '  npm install @tensorflow/tfjs-node-gpu   (NVIDIA GPU; needs CUDA 11.2 and cuDNN 8.1)',
      '  npm install @tensorflow/tfjs-node       (CPU)',
      'Both download libtensorflow (2.9.1) from storage.googleapis.com while installing, so the',
      "machine must reach that host. Otherwise set runtime.backend to 'wasm' (or 'auto').",
    ].join('\n'),
  );
}

async function activateTensorflow(threads: number | null): Promise<BackendInfo | TensorflowProbe> {
  const probe = await probeTensorflow(threads);
  if (!probe.ok) return probe;
  let ok = false;
  try {
    ok = await tf.setBackend('tensorflow');
  } catch (e) {
    return { ok: false, failures: [...probe.failures, `${probe.pkg}: backend failed to start: ${firstLine(e)}`] };
  }
  if (!ok) {
    return { ok: false, failures: [...probe.failures, `${probe.pkg}: backend failed to start (see the error above)`] };
  }
  await tf.ready();
  const be = tf.backend() as { isUsingGpuDevice?: boolean; isGPUPackage?: boolean };
  const device = be.isUsingGpuDevice === true ? 'GPU' : probe.pkg?.endsWith('-gpu') ? 'CPU, no GPU device found' : 'CPU';
  const fromEnv = Number(process.env['TF_NUM_INTRAOP_THREADS']);
  const nThreads = threads ?? (Number.isInteger(fromEnv) ? fromEnv : 0);
  return {
    name: 'tensorflow',
    detail: `tensorflow (${probe.pkg}, ${device})`,
    threads: nThreads > 0 ? nThreads : os.availableParallelism(),
  };
}

// ---------------------------------------------------------------------------------------------
// wasm and cpu
// ---------------------------------------------------------------------------------------------

async function activateWasm(threads: number | null): Promise<BackendInfo | null> {
  registerWasmKernels();
  if (tf.getBackend() !== 'wasm') {
    // Only takes effect before the wasm backend's first initialisation. The single-threaded
    // binary (the one Node gets) caps the XNNPACK pool at 1 thread whatever is asked.
    if (threads != null) tfwasm.setThreadsCount(threads);
    const ok = await tf.setBackend('wasm');
    if (!ok) return null;
  }
  await tf.ready();
  let actual = 1;
  try {
    actual = tfwasm.getThreadsCount();
  } catch {
    actual = 1;
  }
  if (actual < 1) actual = 1;
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const notes = [`tfjs ${tf.version_core}`, simd ? 'simd' : 'no simd', `${actual} thread${actual === 1 ? '' : 's'}`];
  // Optional native GEMM for BatchMatMul/_FusedMatMul (src/train/native-matmul.ts); falls back
  // to the kernels registered above when it is not built or does not load.
  const native = loadNativeMatmul();
  const nativeOn = native !== null && registerNativeMatmulKernels(native, { threads });
  if (nativeOn) {
    const n = nativeMatmulThreads();
    notes.push(`native matmul ${native.info().simd}, ${n} thread${n === 1 ? '' : 's'}`);
  } else {
    log.debug(`native matmul not used: ${nativeMatmulUnavailableReason() || 'wasm matmul kernels missing'}`);
    if (threads != null && threads !== actual) notes.push(`${threads} requested; wasm in Node runs one`);
  }
  return { name: 'wasm', detail: `wasm (${notes.join(', ')})`, threads: actual };
}

async function activateCpu(): Promise<BackendInfo> {
  if (tf.getBackend() !== 'cpu') {
    const ok = await tf.setBackend('cpu');
    if (!ok) throw new Error("tfjs could not start its 'cpu' backend");
  }
  await tf.ready();
  // The cpu backend prints "Hi, looks like you are running TensorFlow.js in Node.js ... install
  // our node backend" on its first write in Node; resflow has already said which backend it
  // chose and why, so skip that advert (it is keyed on this flag and nothing else).
  const cpu = tf.backend() as { firstUse?: boolean };
  if (cpu.firstUse === true) cpu.firstUse = false;
  return { name: 'cpu', detail: `cpu (tfjs ${tf.version_core}, pure JS)`, threads: 1 };
}

// ---------------------------------------------------------------------------------------------
// initBackend
// ---------------------------------------------------------------------------------------------

/** What the last successful call chose, keyed by what it was asked for. */
const chosen = new Map<string, BackendInfo>();

/**
 * Selects and initialises the tfjs backend. `auto` takes `tensorflow` when tfjs-node-gpu or
 * tfjs-node loads, else `wasm`, else `cpu`. Asking for `tensorflow` when neither package loads
 * throws a UsageError that says what was tried, why it failed and how to install it. Safe to call
 * repeatedly (a repeated request returns the same answer without re-initialising); a call with a
 * different request switches the global tfjs backend.
 */
export async function initBackend(
  requested: 'auto' | BackendName,
  opts: BackendOptions = {},
): Promise<BackendInfo> {
  if (requested !== 'auto' && !BACKEND_NAMES.includes(requested)) {
    throw new UsageError(`unknown backend '${String(requested)}' (expected auto, ${BACKEND_NAMES.join(', ')})`);
  }
  const threads = opts.threads ?? null;
  if (threads != null && (!Number.isInteger(threads) || threads < 1)) {
    throw new UsageError(`threads must be a positive integer, got ${threads}`);
  }
  const key = `${requested}/${threads ?? ''}`;
  const prev = chosen.get(key);
  if (prev !== undefined && tf.getBackend() === prev.name) return prev;

  let info: BackendInfo | null = null;
  switch (requested) {
    case 'tensorflow': {
      const r = await activateTensorflow(threads);
      if ('name' in r) info = r;
      else throw tensorflowUnavailable(r.failures);
      break;
    }
    case 'wasm':
      info = await activateWasm(threads);
      if (info === null) throw new Error("tfjs could not start its 'wasm' backend (see the error above)");
      break;
    case 'cpu':
      info = await activateCpu();
      break;
    case 'auto': {
      const r = await activateTensorflow(threads);
      if ('name' in r) {
        info = r;
        break;
      }
      log.debug(`backend auto: tensorflow skipped (${r.failures.join('; ')})`);
      info = await activateWasm(threads);
      if (info === null) {
        log.warn("backend auto: tfjs could not start 'wasm'; falling back to the much slower 'cpu'");
        info = await activateCpu();
      }
      break;
    }
  }
  chosen.set(key, info);
  return info;
}
