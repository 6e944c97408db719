/**
 * The backward pass of a dense layer y = act(x·W + b) as one wasm kernel, `ResflowDenseGrad`, run by
 * the native addon: inputs dy [B, out], x [B, in], W [in, out] and, for a relu layer, its output y;
 * outputs dx [B, in], dW [in, out] and db [out].
 *
 * It does what src/models/layers.ts's gradient does with tfjs ops without it, with the same native GEMM calls
 * on the same operands (so the same bits): dz = dy·step(y) (tfjs's Step, Cast and Multiply kernels;
 * the addon's reluBackward, or the same product in JavaScript for builds before version 4), then
 * dx = dz·Wᵀ, dW = xᵀ·dz (dzᵀ·x for a one-wide layer) and db = ones[1, B]·dz, as the native matmul
 * kernel (native-matmul-kernel.ts) runs them for tf.matMul. What goes away is tfjs around them: per
 * relu layer the Step, Cast (a copy) and Multiply kernels, the mask and dz as full-size tensors,
 * three matmul dispatches with their Reshapes, and the ones tensor (src/kernels/README.md).
 */
import type * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './native-api.js';
import type { NativeMatmulState } from './native-matmul-kernel.js';
import { heapView, sizeOf, type WasmBackendLike } from './wasm-heap.js';

/** The kernel's name in tfjs's registry (registered for `wasm` with the native matmul). */
export const DENSE_GRAD = 'ResflowDenseGrad';

let scratch = new Float32Array(0);
let ones = new Float32Array(0);

/** dz = dy·step(y) where the addon lacks reluBackward: the same float32 products. */
function reluBackwardJs(dy: Float32Array, y: Float32Array, dz: Float32Array): void {
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    dz[i] = dy[i]! * (v > 0 ? 1 : v !== v ? NaN : 0);
  }
}

/** dz = dy·step(y), natively when the build has it (on up to `threads` threads from version 5; the same bits). */
export function reluBackward(native: NativeAddon | null, dy: Float32Array, y: Float32Array, dz: Float32Array, threads = 1): void {
  if (native?.reluBackward !== undefined) native.reluBackward(dy, y, dz, threads);
  else reluBackwardJs(dy, y, dz);
}

/**
 * A dense layer's three gradient products from dz [B, out], its input x [B, in] and W [in, out], as
 * tf.matMul runs them on the native matmul: dx = dz·Wᵀ, dW = xᵀ·dz (dzᵀ·x, a row, for a one-wide
 * layer) and db = ones[1, B]·dz (skipped when db is null: a layer without a bias). With `dxPlus`
 * (not overlapping dx: the addon refuses it), dx = dz·Wᵀ + dxPlus, the add done by the GEMM as it stores each tile: the same
 * float add as a separate pass (addArrays), without reading dx back.
 */
export function denseLayerGrads(native: NativeAddon, threads: number, B: number, inDim: number, outDim: number, dz: Float32Array, x: Float32Array, W: Float32Array, dx: Float32Array, dW: Float32Array, db: Float32Array | null, dxPlus: Float32Array | null = null): void {
  if (ones.length < B) ones = new Float32Array(B).fill(1);
  native.sgemm(false, true, B, inDim, outDim, dz, W, dx, threads, null, 0, dxPlus);
  if (outDim === 1) native.sgemm(true, false, 1, inDim, B, dz, x, dW, threads);
  else native.sgemm(true, false, inDim, outDim, B, x, dz, dW, threads);
  if (db !== null) native.sgemm(false, false, 1, outDim, B, ones, dz, db, threads);
}

/** The kernel function over the native matmul's state (its addon and thread count). */
export function makeDenseGradKernel(state: NativeMatmulState): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const native = state.addon;
    if (native === null) throw new Error(`${DENSE_GRAD}: the native addon is not loaded`);
    const { dy, x, W, y } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo; W: tf.TensorInfo; y?: tf.TensorInfo };
    const [B, inDim] = x.shape as [number, number];
    const outDim = W.shape[1]!;
    if (x.shape.length !== 2 || W.shape.length !== 2 || W.shape[0] !== inDim || sizeOf(dy.shape) !== B * outDim || (y !== undefined && sizeOf(y.shape) !== B * outDim)) {
      throw new Error(`${DENSE_GRAD}: shapes do not match: dy [${dy.shape}], x [${x.shape}], W [${W.shape}]${y ? `, y [${y.shape}]` : ''}`);
    }
    for (const t of [dy, x, W, ...(y ? [y] : [])]) if (t.dtype !== 'float32') throw new Error(`${DENSE_GRAD}: float32 tensors only, got ${t.dtype}`);
    const be = backend as unknown as WasmBackendLike;
    const dxOut = be.makeOutput([B, inDim], 'float32');
    const dWOut = be.makeOutput([inDim, outDim], 'float32');
    const dbOut = be.makeOutput([outDim], 'float32');
    try {
      // Heap views only after the last allocation (a growing wasm memory detaches older ones).
      const dyV = heapView(be, dy, B * outDim);
      const xV = heapView(be, x, B * inDim);
      const WV = heapView(be, W, inDim * outDim);
      let dz = dyV;
      if (y !== undefined) {
        if (scratch.length < B * outDim) scratch = new Float32Array(B * outDim);
        dz = scratch.subarray(0, B * outDim);
        reluBackward(native, dyV, heapView(be, y, B * outDim), dz, state.threads);
      }
      denseLayerGrads(native, state.threads, B, inDim, outDim, dz, xV, WV, heapView(be, dxOut, B * inDim), heapView(be, dWOut, inDim * outDim), heapView(be, dbOut, outDim));
    } catch (e) {
      for (const o of [dxOut, dWOut, dbOut]) be.disposeData(o.dataId, true);
      throw e;
    }
    return [dxOut, dWOut, dbOut];
  };
}
