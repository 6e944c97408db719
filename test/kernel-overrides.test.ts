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
