/**
 * tfjs's wasm Sigmoid kernel called straight on two heap buffers that are kept from call to call.
 * It is the very kernel tf.sigmoid runs on the wasm backend, so the probabilities are the same bits;
 * what goes is tfjs's dispatch and a tensor allocated, registered, read back and disposed per call:
 * ~0.15 ms of a 1,024-row scoring batch of ~5.5 ms (docs/performance-log.md, 2026-12-03 10:00).
 */
import * as tf from '@tensorflow/tfjs';
import { heapView, type WasmBackendLike } from './wasm-heap.js';

/** The parts of the wasm backend this file uses beyond wasm-heap.ts's. */
interface SigmoidBackend extends WasmBackendLike {
  wasm: WasmBackendLike['wasm'] & { _Sigmoid?: (xId: number, outId: number) => void };
  dataIdMap: { get(dataId: object): { id?: number; memoryOffset: number | null } | undefined };
}

/** An input and an output buffer of `size` floats, registered with the backend (not tfjs tensors). */
interface Buffers {
  backend: SigmoidBackend;
  size: number;
  x: tf.TensorInfo;
  y: tf.TensorInfo;
  xId: number;
  yId: number;
}

let kept: Buffers | null = null;

function buffersFor(be: SigmoidBackend, size: number): Buffers | null {
  if (kept !== null && kept.backend === be && kept.size === size && be.dataIdMap.get(kept.x.dataId) !== undefined && be.dataIdMap.get(kept.y.dataId) !== undefined) return kept;
  // A batch of another size (an eval's last) replaces the pair; a pair of a backend since replaced is dropped.
  if (kept !== null && kept.backend === be) {
    be.disposeData(kept.x.dataId, true);
    be.disposeData(kept.y.dataId, true);
  }
  kept = null;
  const x = be.makeOutput([size], 'float32');
  const y = be.makeOutput([size], 'float32');
  const xId = be.dataIdMap.get(x.dataId)?.id;
  const yId = be.dataIdMap.get(y.dataId)?.id;
  if (typeof xId !== 'number' || typeof yId !== 'number') {
    be.disposeData(x.dataId, true);
    be.disposeData(y.dataId, true);
    return null;
  }
  kept = { backend: be, size, x, y, xId, yId };
  return kept;
}

/**
 * sigmoid of `size` values that `fill` writes (into a view of the kernel's input: it must write
 * every element and allocate nothing in the wasm heap), as a new Float32Array; null when the active
 * backend is not wasm or its module does not export the kernel (then use tf.sigmoid).
 */
export function wasmSigmoid(size: number, fill: (values: Float32Array) => void): Float32Array | null {
  if (size === 0 || tf.getBackend() !== 'wasm') return null;
  const be = tf.backend() as unknown as SigmoidBackend;
  const kernel = be?.wasm?._Sigmoid;
  if (typeof kernel !== 'function' || typeof be.makeOutput !== 'function') return null;
  const bufs = buffersFor(be, size);
  if (bufs === null) return null;
  fill(heapView(be, bufs.x, size));
  kernel(bufs.xId, bufs.yId);
  // Views are taken after the call: nothing above allocates, but a view must not outlive a heap growth.
  return heapView(be, bufs.y, size).slice();
}

