/**
 * The parts of tfjs-backend-wasm's BackendWasm that resflow's wasm kernels use, and views of
 * tensors' bytes in the wasm heap (the native kernels read and write tensors there, without copies).
 */
import * as tf from '@tensorflow/tfjs';

export interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number | null } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Whether a tensor's data can be viewed (it lives in the wasm heap at a float-aligned offset). */
export function viewable(be: WasmBackendLike, t: tf.TensorInfo): boolean {
  const offset = be.dataIdMap.get(t.dataId)?.memoryOffset;
  return typeof offset === 'number' && Number.isInteger(offset) && offset >= 0 && offset % 4 === 0;
}

/**
 * A Float32Array over a tensor's bytes in the wasm heap. Derive views only after the last
 * allocation of the kernel: growing wasm memory detaches the old ArrayBuffer.
 */
export function heapView(be: WasmBackendLike, t: tf.TensorInfo, size: number): Float32Array {
  const buffer = be.wasm.HEAPU8.buffer;
  const offset = be.dataIdMap.get(t.dataId)?.memoryOffset;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset % 4 !== 0) {
    throw new Error(`native matmul: tensor has no usable wasm memory offset (${String(offset)})`);
  }
  if (offset + size * 4 > buffer.byteLength) {
    throw new Error(`native matmul: tensor [${t.shape}] at ${offset} runs past the wasm heap (${buffer.byteLength} bytes)`);
  }
  return new Float32Array(buffer, offset, size);
}

/**
 * A Float32Array over a float32 tensor's data where it lives in the wasm backend's heap (writes go
 * to the tensor), or null when the active backend is not wasm or the tensor is not there. Take it
 * after the last allocation of the caller: a growing wasm heap detaches older views.
 */
export function wasmFloat32View(t: tf.Tensor): Float32Array | null {
  if (tf.getBackend() !== 'wasm' || t.dtype !== 'float32' || t.isDisposed) return null;
  const be = tf.backend() as unknown as WasmBackendLike;
  if (be?.wasm?.HEAPU8 === undefined || !viewable(be, t)) return null;
  return heapView(be, t, t.size);
}

/**
 * A float32 tensor's values: on `wasm` a view of its bytes in the heap (no copy; valid until the next
 * allocation in the heap or the tensor's disposal, so take it where it is read), elsewhere dataSync()
 * (after readTensors() on webgpu, read-back.ts).
 */
export function float32Values(t: tf.Tensor): Float32Array {
  return wasmFloat32View(t) ?? (t.dataSync() as Float32Array);
}

/**
 * A new float32 tensor of `shape` whose values `fill` writes straight into the wasm heap (no
 * JavaScript array to allocate and copy in), or null when the active backend is not wasm. `fill`
 * must write every element and must not allocate tensors (a growing heap would detach its view).
 */
export function filledWasmTensor(shape: number[], fill: (values: Float32Array) => void): tf.Tensor | null {
  return filledWasmTensors([shape], ([values]) => fill(values!))?.[0] ?? null;
}

/**
 * filledWasmTensor for several tensors: all are allocated before `fill` gets their views, so no
 * allocation detaches them. If `fill` throws, the tensors are disposed.
 */
export function filledWasmTensors(shapes: number[][], fill: (values: Float32Array[]) => void): tf.Tensor[] | null {
  if (tf.getBackend() !== 'wasm') return null;
  const be = tf.backend() as unknown as WasmBackendLike;
  if (be?.wasm?.HEAPU8 === undefined || typeof be.makeOutput !== 'function') return null;
  const infos = shapes.map((shape) => be.makeOutput(shape, 'float32'));
  const tensors = infos.map((info) => tf.engine().makeTensorFromTensorInfo(info));
  try {
    fill(infos.map((info, i) => heapView(be, info, sizeOf(shapes[i]!))));
  } catch (e) {
    tf.dispose(tensors);
    throw e;
  }
  return tensors;
}

/** The wasm backend's matmul kernels, which the transposing wrappers and the native matmul replace. */
export const MATMUL_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;
export type MatMulKernel = (typeof MATMUL_KERNELS)[number];
