/**
 * The kernels that make tfjs-backend-wasm (4.22) usable for training, filled in through tfjs's
 * kernel registry: it has no `UnsortedSegmentSum` kernel (needed by the gradient of `tf.gather`),
 * and its matmul with a transposed input falls off XNNPACK onto a naive loop (5-19x slower on the
 * Dense layers' gradient shapes than transposing explicitly and then running the untransposed
 * XNNPACK path; README.md, "Backends").
 */
import * as tf from '@tensorflow/tfjs';
import { currentOwner, overrideKernel, registeredKernel, restoreKernel } from './overrides.js';
import { NATIVE_MATMUL, unregisterNativeMatmulKernels } from './native-matmul.js';
import { MATMUL_KERNELS, sizeOf, type WasmBackendLike } from './wasm-heap.js';

/** Owners of the kernels registered here (overrides.ts). */
const SEGMENT_SUM = 'resflow wasm UnsortedSegmentSum';
const TRANSPOSED_MATMUL = 'resflow wasm transposed matmul';
const SHARED_IDENTITY = 'resflow wasm shared Identity';

/**
 * Identity on wasm without a copy: the output shares the input's bytes (one more reference, as the
 * wasm Reshape kernel does). tfjs's wasm Identity copies, and tfjs runs it for every tensor a
 * gradient saves for the backward pass (the inputs of each matmul, relu, sigmoid, ...): ~36 copies,
 * ~13 MB, per training step of the benchmark model (README.md, "Speed against PyTorch"). Sharing is
 * safe because tensors are immutable; the one in-place writer, the native Adam step
 * (src/train/dense-optimizer.ts), writes variables after tf.engine().gradients() has disposed
 * every tensor it saved.
 */
const sharedIdentityWasm: tf.KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') throw new Error('Identity (wasm, resflow): string tensors are not supported');
  (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

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

/**
 * Wraps a wasm matmul kernel (BatchMatMul or _FusedMatMul) so that a transposed input is
 * transposed explicitly (wasm Transpose kernel) and the original kernel then runs untransposed.
 * tfjs-backend-wasm only takes its XNNPACK path when neither input is transposed and both batch
 * sizes are 1; anything else runs a naive blocked loop. With batch > 1 the loop runs either way
 * (and transposing would not help), so those calls are passed through unchanged.
 */
function wrapTransposedMatMul(orig: tf.KernelConfig): tf.KernelFunc {
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
    const transposeKernel = registeredKernel('Transpose', 'wasm');
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
  return kernelFunc;
}

/**
 * Registers resflow's wasm kernels: UnsortedSegmentSum (unless tfjs already has one), the
 * copy-free Identity, and the transposed-matmul wrappers around BatchMatMul and _FusedMatMul. Idempotent; works before or
 * after the wasm backend is initialised. `transposedMatMul: false` (for benchmarks) registers
 * only UnsortedSegmentSum and puts tfjs's own matmul kernels back.
 */
export function registerWasmKernels(opts: { transposedMatMul?: boolean } = {}): void {
  if (registeredKernel('UnsortedSegmentSum', 'wasm') === undefined) {
    overrideKernel('UnsortedSegmentSum', 'wasm', SEGMENT_SUM, () => unsortedSegmentSumWasm);
  }
  if (currentOwner('Identity', 'wasm') !== SHARED_IDENTITY) overrideKernel('Identity', 'wasm', SHARED_IDENTITY, () => sharedIdentityWasm);
  if (opts.transposedMatMul === false) {
    unregisterNativeMatmulKernels();
    for (const name of MATMUL_KERNELS) restoreKernel(name, 'wasm', TRANSPOSED_MATMUL);
    return;
  }
  for (const name of MATMUL_KERNELS) {
    // Already resflow's (the wrapper, or the native kernel on top of it): leave it.
    if (registeredKernel(name, 'wasm') === undefined || currentOwner(name, 'wasm') !== null) continue;
    overrideKernel(name, 'wasm', TRANSPOSED_MATMUL, (orig) => wrapTransposedMatMul(orig!));
  }
}

/** Undoes `registerWasmKernels()` (for benchmarks and tests): restores tfjs's own kernels. */
export function unregisterWasmKernels(): void {
  restoreKernel('UnsortedSegmentSum', 'wasm', SEGMENT_SUM);
  restoreKernel('Identity', 'wasm', SHARED_IDENTITY);
  unregisterNativeMatmulKernels();
  for (const name of MATMUL_KERNELS) restoreKernel(name, 'wasm', TRANSPOSED_MATMUL);
}

/** Whether the transposed-matmul wrappers (or the native kernels) are the registered wasm matmul kernels now. */
export function wasmMatMulPatched(): boolean {
  return MATMUL_KERNELS.every((name) => {
    const owner = currentOwner(name, 'wasm');
    return owner === TRANSPOSED_MATMUL || owner === NATIVE_MATMUL;
  });
}
