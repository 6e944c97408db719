/**
 * The dense optimizer (src/train/dense-optimizer.ts): Adam's step run natively must leave the
 * weights and moments tfjs's Adam leaves, bit for bit. Skipped, with the reason, without the addon.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { compareWithTfjsAdam, makeDenseOptimizer, NativeStepAdam } from '../src/train/dense-optimizer.js';
import { loadAddon, addonUnavailableReason, type AdamStepFn } from '../src/kernels/addon.js';

before(async () => {
  await initBackend('wasm');
});

const adamStep = loadAddon()?.adamStep;
const skip = adamStep === undefined ? `native adamStep not available: ${addonUnavailableReason() || 'old build'}` : false;
const adamConfig = { type: 'adam' as const, lr: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, initial_accumulator: 0.1 };

test('native Adam step leaves tfjs Adam\'s bits on the benchmark model\'s shapes, on 1 to 3 threads', { skip }, () => {
  // 320 x 256 and 256 x 128 are split over the threads (native/src/parallel_for.h), the rest not
  for (const threads of [1, 2, 3]) {
    const onThreads: AdamStepFn = (value, m, v, grad, c) => adamStep!(value, m, v, grad, c, threads);
    assert.equal(compareWithTfjsAdam(onThreads, [[320, 256], [256], [256, 128], [128], [128, 1], [1]]), null, `${threads} threads`);
  }
});

test('the comparison catches a step that rounds differently (the same formula in double precision)', { skip }, () => {
  const inDouble: AdamStepFn = (value, m, v, grad, c) => {
    for (let i = 0; i < value.length; i++) {
      const g = grad[i]!;
      m[i] = m[i]! * c[0]! + g * c[1]!;
      v[i] = v[i]! * c[2]! + g * g * c[3]!;
      value[i] = ((m[i]! / c[4]!) / (Math.sqrt(v[i]! / c[5]!) + c[6]!)) * c[7]! + value[i]!;
    }
  };
  assert.match(compareWithTfjsAdam(inDouble) ?? '', /variable \d differs at \d+/);
});

test('makeDenseOptimizer runs Adam natively on wasm; the state saves and restores as tfjs\'s does', { skip }, async () => {
  const opt = makeDenseOptimizer(adamConfig);
  assert.ok(opt instanceof NativeStepAdam);
  const w = tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, 'dense-opt-test/w');
  for (let s = 0; s < 4; s++) opt.applyGradients([{ name: w.name, tensor: tf.tensor2d([[0.1, -0.2], [0.3, s]]) }]);
  assert.equal(opt.counts.native, 4);
  // The same state layout as tfjs's Adam: iterations, then m and v per variable.
  const weights = await opt.getWeights();
  assert.deepEqual(weights.map((x) => x.name), ['iter', 'dense-opt-test/w/m', 'dense-opt-test/w/v']);
  const reference = tf.train.adam(adamConfig.lr, adamConfig.beta1, adamConfig.beta2, adamConfig.epsilon);
  const w2 = tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, 'dense-opt-test/w2');
  for (let s = 0; s < 4; s++) reference.applyGradients([{ name: w2.name, tensor: tf.tensor2d([[0.1, -0.2], [0.3, s]]) }]);
  assert.deepEqual(Array.from(w.dataSync()), Array.from(w2.dataSync()));
  const refWeights = await reference.getWeights();
  for (let k = 1; k < 3; k++) assert.deepEqual(Array.from(weights[k]!.tensor.dataSync()), Array.from(refWeights[k]!.tensor.dataSync()));
});
