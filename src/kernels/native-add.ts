/**
 * The native element-wise add as the wasm backend's Add kernel, for float32 tensors of one shape
 * (no broadcasting) large enough to split over the addon's threads: a ResFlow training step adds
 * five [batch, width] tensors (feature residuals; the backward pass summing the gradients of a
 * tensor two layers read), ~1 ms of single-threaded wasm on the reference model. One float32
 * addition per element either way, so the same bits; anything else goes to the kernel it replaced.
 */
import type * as tf from '@tensorflow/tfjs';
import type { NativeMatmulState } from './native-matmul-kernel.js';
import { heapView, sizeOf, viewable, type WasmBackendLike } from './wasm-heap.js';

/** Below this many elements the replaced kernel adds (a native call and a worker cost more). */
export const NATIVE_ADD_MIN_SIZE = 32768;

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The Add kernel function over the native matmul's state (its addon and thread count); `prev` takes what it does not handle. */
export function makeNativeAddKernel(prev: tf.KernelConfig | undefined, state: NativeMatmulState): tf.KernelFunc {
  return (args) => {
    const native = state.addon;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const be = args.backend as unknown as WasmBackendLike;
    const n = sizeOf(a.shape);
    if (native?.addArrays === undefined || n < NATIVE_ADD_MIN_SIZE || a.dtype !== 'float32' || b.dtype !== 'float32' || !sameShape(a.shape, b.shape) || !viewable(be, a) || !viewable(be, b)) {
      if (prev === undefined) throw new Error('native add: no previous Add kernel to fall back to');
      return prev.kernelFunc(args);
    }
    // The one allocation; the heap views are taken after it.
    const out = be.makeOutput([...a.shape], 'float32');
    try {
      native.addArrays(heapView(be, a, n), heapView(be, b, n), heapView(be, out, n), state.threads);
    } catch (e) {
      be.disposeData(out.dataId, true);
      throw e;
    }
    return out;
  };
}
