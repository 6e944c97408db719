/**
 * Optional native matmul for the `wasm` backend (native/README.md).
 *
 * The addon (addon.ts) holds a blocked single-precision GEMM (register-blocked AVX-512 / AVX2
 * micro-kernel, packing, K blocking, a small thread pool). This module registers it, through
 * overrides.ts, as the `wasm` backend's `BatchMatMul` and `_FusedMatMul` (native-matmul-kernel.ts),
 * with a dense layer's backward pass (native-dense-grad.ts) and large same-shape `Add`s
 * (native-add.ts); what they do not handle goes to the kernel that was registered before.
 *
 * Results match tfjs's own kernels to float rounding (a different summation order), and do not
 * depend on the thread count: each output element is always summed in the same order.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './native-api.js';
import { makeNativeMatmulKernel, type NativeMatmulState } from './native-matmul-kernel.js';
import { DENSE_GRAD, makeDenseGradKernel } from './native-dense-grad.js';
import { makeNativeAddKernel } from './native-add.js';
import { currentOwner, kernelOwner, overrideKernel, registeredKernel, restoreKernel } from './overrides.js';
import { MATMUL_KERNELS } from './wasm-heap.js';

/** The owner of the native kernels (overrides.ts). */
export const NATIVE_MATMUL = 'resflow native matmul';

const state: NativeMatmulState = { addon: null, threads: 1, stats: { calls: 0, fallbacks: 0, errors: 0, lastError: '' } };

/** Counts since the process started: calls run natively, calls passed to the previous kernel, native errors. */
export function nativeMatmulStats(): { calls: number; fallbacks: number; errors: number; lastError: string } {
  return { ...state.stats };
}

/** Whether `f` is one of the native matmul's kernel functions. */
export function isNativeMatmulKernel(f: tf.KernelFunc | undefined): boolean {
  return kernelOwner(f) === NATIVE_MATMUL;
}

/** Whether the native kernels are the registered wasm matmul kernels now. */
export function nativeMatmulRegistered(): boolean {
  return MATMUL_KERNELS.every((name) => isNativeMatmulKernel(registeredKernel(name, 'wasm')?.kernelFunc));
}

/**
 * Whether a dense layer's backward pass can run as the one native kernel DENSE_GRAD
 * (native-dense-grad.ts): the backend is wasm and the native kernels are its matmul kernels, so the
 * separate ops would have run the same GEMM calls.
 */
export function nativeDenseGradRegistered(): boolean {
  return tf.getBackend() === 'wasm' && currentOwner(DENSE_GRAD, 'wasm') === NATIVE_MATMUL && nativeMatmulRegistered();
}

/** Threads each native matmul may use (results do not depend on it). */
export function nativeMatmulThreads(): number {
  return state.threads;
}

/**
 * Registers the native kernels as the wasm backend's BatchMatMul, _FusedMatMul and (large same-shape) Add, and DENSE_GRAD, keeping the
 * kernels they replace (tfjs's, or resflow's transposing wrappers from wasm-kernels.ts) to fall
 * back to and to restore. Call it after registerWasmKernels(). Idempotent (a second call only
 * updates `threads`). Returns false, registering nothing, when the wasm kernels are not registered.
 * Works before or after the wasm backend is initialised (the replaced kernels' setupFunc is kept).
 */
export function registerNativeMatmulKernels(native: NativeAddon, opts: { threads?: number | null } = {}): boolean {
  const wanted = opts.threads ?? Math.min(os.availableParallelism(), native.info().maxThreads);
  if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`native matmul threads must be a positive integer, got ${wanted}`);
  if (MATMUL_KERNELS.some((name) => registeredKernel(name, 'wasm') === undefined)) return false;
  state.threads = Math.min(wanted, 64);
  state.addon = native;
  for (const name of MATMUL_KERNELS) overrideKernel(name, 'wasm', NATIVE_MATMUL, (prev) => makeNativeMatmulKernel(name, prev, state));
  overrideKernel(DENSE_GRAD, 'wasm', NATIVE_MATMUL, () => makeDenseGradKernel(state));
  if (native.addArrays !== undefined) overrideKernel('Add', 'wasm', NATIVE_MATMUL, (prev) => makeNativeAddKernel(prev, state));
  return true;
}

/**
 * Puts back the kernels that registerNativeMatmulKernels() replaced (where ours are still the
 * registered ones). Safe to call when nothing is registered.
 */
export function unregisterNativeMatmulKernels(): void {
  for (const name of MATMUL_KERNELS) restoreKernel(name, 'wasm', NATIVE_MATMUL);
  restoreKernel(DENSE_GRAD, 'wasm', NATIVE_MATMUL);
  restoreKernel('Add', 'wasm', NATIVE_MATMUL);
}
