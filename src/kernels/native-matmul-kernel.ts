/**
 * The native matmul's tfjs kernel function for the wasm backend's BatchMatMul and _FusedMatMul: it
 * runs the addon's GEMM directly on the tensors' bytes in the wasm heap (no copies). Anything it
 * does not handle (non-float32, a batch broadcast that tfjs flattens differently, a bias that does
 * not broadcast) goes to the kernel it replaced, and so does any failure.
 */
import type * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from './native-api.js';
import { broadcastRows, isRowVector, plan, type Plan } from './matmul-plan.js';
import { ACTIVATIONS, epilogue, type Activation } from './matmul-epilogue.js';
import { heapView, sizeOf, viewable, type MatMulKernel, type WasmBackendLike } from './wasm-heap.js';

/** What the kernels share: the addon and thread count of the last registration, and counts of what they did. */
export interface NativeMatmulState {
  addon: NativeAddon | null;
  threads: number;
  stats: { calls: number; fallbacks: number; errors: number; lastError: string };
}

/** C = act(op(A)·op(B) + bias) for every batch (batch dims of size 1 broadcast). */
function runGemm(
  native: NativeAddon,
  threads: number,
  p: Plan,
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
  transposeA: boolean,
  transposeB: boolean,
  bias: Float32Array | null = null,
  activation = 0,
): void {
  const { M, N, K } = p;
  if (p.batch === 1) {
    native.sgemm(transposeA, transposeB, M, N, K, A, B, C, threads, bias, activation);
    return;
  }
  const sa = M * K;
  const sb = K * N;
  const sc = M * N;
  for (let i = 0; i < p.batch; i++) {
    const ai = p.indexA ? p.indexA[i]! : i;
    const bi = p.indexB ? p.indexB[i]! : i;
    native.sgemm(
      transposeA,
      transposeB,
      M,
      N,
      K,
      A.subarray(ai * sa, ai * sa + sa),
      B.subarray(bi * sb, bi * sb + sb),
      C.subarray(i * sc, i * sc + sc),
      threads,
      bias,
      activation,
    );
  }
}


interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
  activation?: string;
  leakyreluAlpha?: number;
}

/**
 * The kernel function for `name`; `prev` (the kernel it replaces) takes what it does not handle.
 */
export function makeNativeMatmulKernel(name: MatMulKernel, prev: tf.KernelConfig | undefined, state: NativeMatmulState): tf.KernelFunc {
  const fused = name === '_FusedMatMul';
  const kernelFunc: tf.KernelFunc = (args) => {
    const native = state.addon;
    const { stats } = state;
    const fallback = () => {
      if (prev === undefined) throw new Error(`native matmul: no previous ${name} kernel to fall back to`);
      stats.fallbacks++;
      return prev.kernelFunc(args);
    };
    if (native === null) return fallback();
    const be = args.backend as unknown as WasmBackendLike;
    const inputs = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo | null; preluActivationWeights?: tf.TensorInfo | null };
    const attrs = (args.attrs ?? {}) as MatMulAttrs;
    const transposeA = attrs.transposeA === true;
    const transposeB = attrs.transposeB === true;
    const { a, b } = inputs;
    if (a == null || b == null || be?.wasm?.HEAPU8 === undefined || typeof be.makeOutput !== 'function') return fallback();
    const p = plan(a, b, transposeA, transposeB);
    if (p === null || !viewable(be, a) || !viewable(be, b)) return fallback();

    let act: Activation = 'linear';
    const bias = fused ? inputs.bias ?? null : null;
    const preluW = fused ? inputs.preluActivationWeights ?? null : null;
    let biasRows: ReturnType<typeof broadcastRows> = null;
    let preluRows: ReturnType<typeof broadcastRows> = null;
    if (fused) {
      const actName = attrs.activation ?? 'linear';
      if (!ACTIVATIONS.has(actName)) return fallback();
      act = actName as Activation;
      if (bias !== null) {
        if (bias.dtype !== 'float32' || !viewable(be, bias)) return fallback();
        biasRows = broadcastRows(p.outShape, bias.shape);
        if (biasRows === null) return fallback();
      }
      if (act === 'prelu') {
        if (preluW === null || preluW.dtype !== 'float32' || !viewable(be, preluW)) return fallback();
        preluRows = broadcastRows(p.outShape, preluW.shape);
        if (preluRows === null) return fallback();
      }
    }

    // The addon applies a per-column bias and relu itself, block by block while C is in cache;
    // other epilogues run in JS after the product.
    const nativeEpilogue = fused && (act === 'linear' || act === 'relu') && (bias === null || isRowVector(bias.shape, p.N));
    const sizeA = p.batchA * p.M * p.K;
    const sizeB = p.batchB * p.K * p.N;
    // The one allocation; every heap view is taken after it.
    const out = be.makeOutput(p.outShape, 'float32');
    try {
      const C = heapView(be, out, p.batch * p.M * p.N);
      const A = heapView(be, a, sizeA);
      const B = heapView(be, b, sizeB);
      if (nativeEpilogue) {
        const biasVals = bias !== null ? heapView(be, bias, p.N) : null;
        runGemm(native, state.threads, p, A, B, C, transposeA, transposeB, biasVals, act === 'relu' ? 1 : 0);
      } else runGemm(native, state.threads, p, A, B, C, transposeA, transposeB);
      if (fused && !nativeEpilogue && (bias !== null || act !== 'linear')) {
        epilogue(
          C,
          p.N,
          bias !== null ? { vals: heapView(be, bias, sizeOf(bias.shape)), rows: biasRows! } : null,
          act,
          preluW !== null && act === 'prelu' ? { vals: heapView(be, preluW, sizeOf(preluW.shape)), rows: preluRows! } : null,
          attrs.leakyreluAlpha ?? 0.2,
        );
      }
    } catch (e) {
      be.disposeData(out.dataId, true);
      stats.errors++;
      stats.lastError = e instanceof Error ? e.message : String(e);
      return fallback();
    }
    stats.calls++;
    return out;
  };
  return kernelFunc;
}
