/**
 * Reading tensors back to the CPU on every backend. tfjs-webgpu cannot read a GPU tensor
 * synchronously in Node (README.md, "Backends"), so code about to call dataSync() awaits
 * readTensors() first: on `webgpu` it reads the tensors asynchronously, which leaves their values
 * cached for dataSync(); on every other backend it does nothing (their dataSync() is synchronous).
 */
import * as tf from '@tensorflow/tfjs';

export async function readTensors(tensors: Iterable<tf.Tensor | null | undefined>): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  const pending: Promise<unknown>[] = [];
  for (const t of tensors) if (t != null && !t.isDisposed) pending.push(t.data());
  await Promise.all(pending);
}
