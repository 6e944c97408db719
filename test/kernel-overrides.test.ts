/**
 * The kernel-override mechanism (src/kernels/overrides.ts): restoring gives back the kernel that
 * was registered before, owners stack, and registering twice is harmless. Runs on a made-up
 * backend name, so the real backends' kernels are not touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { currentOwner, kernelOwner, overrideKernel, registeredKernel, restoreKernel } from '../src/kernels/overrides.js';

const BACKEND = 'resflow-overrides-test';
const original: tf.KernelFunc = () => ({ dataId: {}, shape: [], dtype: 'float32' });
const setupFunc = (): void => {};
tf.registerKernel({ kernelName: 'Probe', backendName: BACKEND, kernelFunc: original, setupFunc });

test('override, then restore, gives back the original kernel', () => {
  const replacement: tf.KernelFunc = () => ({ dataId: {}, shape: [1], dtype: 'float32' });
  let seen: tf.KernelConfig | undefined;
  overrideKernel('Probe', BACKEND, 'a', (previous) => {
    seen = previous;
    return replacement;
  });
  assert.equal(seen?.kernelFunc, original, 'make() gets the kernel it replaces');
  const now = registeredKernel('Probe', BACKEND)!;
  assert.equal(now.kernelFunc, replacement);
  assert.equal(now.setupFunc, setupFunc, 'the replaced kernel\'s setupFunc is kept');
  assert.equal(currentOwner('Probe', BACKEND), 'a');
  assert.equal(kernelOwner(replacement), 'a');
  assert.equal(kernelOwner(original), null);
  restoreKernel('Probe', BACKEND, 'a');
  assert.equal(registeredKernel('Probe', BACKEND)!.kernelFunc, original);
  assert.equal(currentOwner('Probe', BACKEND), null);
  restoreKernel('Probe', BACKEND, 'a'); // a second restore is harmless
  assert.equal(registeredKernel('Probe', BACKEND)!.kernelFunc, original);
});

test('owners stack: each restore puts back what that owner replaced; a repeated override is a no-op', () => {
  const fa: tf.KernelFunc = () => ({ dataId: {}, shape: [2], dtype: 'float32' });
  const fb: tf.KernelFunc = () => ({ dataId: {}, shape: [3], dtype: 'float32' });
  overrideKernel('Probe', BACKEND, 'a', () => fa);
  let below: tf.KernelFunc | undefined;
  overrideKernel('Probe', BACKEND, 'b', (previous) => {
    below = previous?.kernelFunc;
    return fb;
  });
  assert.equal(below, fa);
  let called = false;
  overrideKernel('Probe', BACKEND, 'b', () => {
    called = true;
    return fa;
  });
  assert.equal(called, false, 'b is registered already');
  assert.equal(registeredKernel('Probe', BACKEND)!.kernelFunc, fb);
  restoreKernel('Probe', BACKEND, 'b');
  assert.equal(registeredKernel('Probe', BACKEND)!.kernelFunc, fa);
  restoreKernel('Probe', BACKEND, 'a');
  assert.equal(registeredKernel('Probe', BACKEND)!.kernelFunc, original);
});

test('a kernel added where none was registered is removed again on restore', () => {
  const added: tf.KernelFunc = () => ({ dataId: {}, shape: [4], dtype: 'float32' });
  assert.equal(registeredKernel('Absent', BACKEND), undefined);
  overrideKernel('Absent', BACKEND, 'a', (previous) => {
    assert.equal(previous, undefined);
    return added;
  });
  assert.equal(registeredKernel('Absent', BACKEND)!.kernelFunc, added);
  restoreKernel('Absent', BACKEND, 'a');
  assert.equal(registeredKernel('Absent', BACKEND), undefined);
});

test('wasm Identity shares the input bytes (no copy), counts references, and is restored on unregister', async () => {
  const { initBackend } = await import('../src/kernels/backend.js');
  const { registerWasmKernels, unregisterWasmKernels } = await import('../src/kernels/wasm-kernels.js');
  const { wasmFloat32View } = await import('../src/kernels/wasm-heap.js');
  await initBackend('wasm');
  assert.equal(currentOwner('Identity', 'wasm'), 'resflow wasm shared Identity');
  const bytes0 = tf.memory().numBytes;
  const x = tf.tensor1d([1.5, -2, 3.25]);
  const y = tf.clone(x); // tfjs's Identity kernel
  assert.equal(wasmFloat32View(y)!.byteOffset, wasmFloat32View(x)!.byteOffset, 'same bytes in the wasm heap');
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1.5, -2, 3.25], 'the clone outlives the original');
  y.dispose();
  assert.equal(tf.memory().numBytes, bytes0);
  // The gradient tape's saved copies go through it too: a gradient is unchanged.
  const w = tf.variable(tf.tensor2d([[0.5, -1], [2, 0.25]]));
  const g = tf.grad((a: tf.Tensor) => tf.sum(tf.relu(tf.matMul(a as tf.Tensor2D, w))))(tf.tensor2d([[1, 2], [3, -4]]));
  // d/da sum(relu(a·w)) = 1[a·w > 0]·wᵀ; a·w = [[4.5, -0.5], [-6.5, -4]]: only (0,0) is positive.
  assert.deepEqual(Array.from(g.dataSync()), [0.5, 2, 0, 0]);
  tf.dispose([w, g]);
  unregisterWasmKernels();
  assert.equal(currentOwner('Identity', 'wasm'), null, "tfjs's copying Identity is back");
  const a = tf.tensor1d([7]);
  const b = tf.clone(a);
  assert.notEqual(wasmFloat32View(b)!.byteOffset, wasmFloat32View(a)!.byteOffset);
  tf.dispose([a, b]);
  registerWasmKernels();
});
