/** Running the same tfjs computation on two backends, for kernel tests. */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

export interface BackendResult {
  shape: number[];
  dtype: tf.DataType;
  /** A copy of the output's values (float32 holds every int32 value these tests use exactly). */
  values: Float32Array;
}

/** Runs f on one backend and returns copies of its outputs; asserts it leaves no tensors behind. */
export async function runOn(backend: 'wasm' | 'cpu', f: () => tf.Tensor | tf.Tensor[]): Promise<BackendResult[]> {
  assert.equal(await tf.setBackend(backend), true);
  const before = tf.memory().numTensors;
  const outs = tf.tidy(() => {
    const r = f();
    return Array.isArray(r) ? r : [r];
  });
  const res = outs.map((t) => ({ shape: t.shape, dtype: t.dtype, values: Float32Array.from(t.dataSync()) }));
  tf.dispose(outs);
  assert.equal(tf.memory().numTensors, before, `tensors leaked on ${backend}`);
  return res;
}
