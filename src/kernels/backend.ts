/**
 * Backend selection for TensorFlow.js, and the kernels that make the `wasm` backend usable for
 * training (docs/domain.md, Facts about the platform).
 *
 * - `tensorflow`: `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`. Both are optional and
 *   usually absent (they download libtensorflow at install time), so they are only ever loaded by a
 *   dynamic `import()` of a module name held in a variable.
 * - `wasm`: `@tensorflow/tfjs-backend-wasm` (XNNPACK, SIMD). In Node it runs one thread: tfjs
 *   reports no multithread support when `IS_NODE` is set, and the threaded binary's Blob-URL
 *   workers cannot start in Node's worker_threads.
 * - `webgpu`: @tensorflow/tfjs-backend-webgpu on Dawn (webgpu.ts); `auto` takes it only for a
 *   hardware adapter.
 * - `cpu`: the pure-JS backend, always there, about 25x slower than `wasm`.
 *
 * The wasm backend gets resflow's kernels (wasm-kernels.ts) and, when the addon loads, the native
 * matmul (native-matmul.ts).
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import { quietly } from './tf-quiet.js';
import { addonUnavailableReason, loadAddon } from './addon.js';
import { nativeMatmulThreads, registerNativeMatmulKernels } from './native-matmul.js';
import { setSparseThreads } from './sparse-kernels.js';
import { registerWasmKernels } from './wasm-kernels.js';
import { activateWebgpu, describeAdapter, webgpuUnavailable, type WebgpuAdapterRecord } from './webgpu.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

export interface BackendInfo {
  name: BackendName;
  /** e.g. "wasm (tfjs 4.22.0, simd, 1 thread)" or "tensorflow (@tensorflow/tfjs-node-gpu, GPU)". */
  detail: string;
  threads: number;
  /** The WebGPU adapter, on `webgpu` (run.json's `gpu_adapter`). */
  adapter?: WebgpuAdapterRecord;
}

export interface BackendOptions {
  /** Threads wanted; null/undefined lets the backend choose. */
  threads?: number | null;
}

const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

/** The optional native packages, tried in this order. */
const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.split('\n').find((l) => l.trim() !== '') ?? msg;
  return line.trim();
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
// webgpu, wasm and cpu
// ---------------------------------------------------------------------------------------------

/** `webgpu` (webgpu.ts); `allowSoftware` false for `auto`. A string says why it is not available. */
async function startWebgpu(allowSoftware: boolean): Promise<BackendInfo | string> {
  const r = await activateWebgpu(allowSoftware);
  if (!r.ok) return r.reason;
  return { name: 'webgpu', detail: `webgpu (tfjs ${tf.version_core}, adapter ${describeAdapter(r.adapter)})`, threads: 1, adapter: r.adapter };
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
  // Optional native GEMM for BatchMatMul/_FusedMatMul (native-matmul.ts); falls back to the
  // kernels registered above when it is not built or does not load.
  const native = loadAddon();
  const nativeOn = native !== null && registerNativeMatmulKernels(native, { threads });
  if (nativeOn) {
    const n = nativeMatmulThreads();
    notes.push(`native matmul ${native.info().simd}, ${n} thread${n === 1 ? '' : 's'}`);
  } else {
    log.debug(`native matmul not used: ${addonUnavailableReason() || 'wasm matmul kernels missing'}`);
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
 * tfjs-node loads, else `webgpu` on a hardware adapter, else `wasm`, else `cpu`. Asking for `tensorflow` when neither package loads
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
  setSparseThreads(threads); // the embedding kernels made from now on use these threads
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
    case 'webgpu': {
      const r = await startWebgpu(true);
      if (typeof r === 'string') throw webgpuUnavailable(r);
      info = r;
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
      const gpu = await startWebgpu(false);
      if (typeof gpu !== 'string') {
        info = gpu;
        break;
      }
      log.debug(`backend auto: webgpu skipped (${gpu})`);
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
