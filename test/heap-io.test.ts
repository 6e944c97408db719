/**
 * The training step's copy-free input and input gradient on wasm (src/kernels/wasm-heap.ts): the
 * embedding lookup written straight into a tensor in the wasm heap, over memory that held other
 * values, gives lookup()'s bits; float32Values() views a tensor's bytes where dataSync() copies them.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { filledWasmTensor, float32Values } from '../src/kernels/wasm-heap.js';
import { buildBundle, disposeBundle } from '../src/models/bundle.js';
import { Rng } from '../src/base/rng.js';
import { benchConfig, randomBatch } from '../bench/reference-model.js';

before(async () => {
  await initBackend('wasm');
});

test('the lookup written into a wasm tensor over dirty memory gives lookup()\'s values, bit for bit (native and JavaScript kernels)', () => {
  for (const l2 of [0, 1e-6]) {
    const config = benchConfig(64);
    config.train.embedding_l2 = l2; // > 0: the JavaScript kernels (they apply it; embeddings.ts)
    const bundle = buildBundle(config);
    const { tables } = bundle;
    for (const [n, seed] of [[64, 1], [7, 2], [300, 3]] as const) {
      const batch = randomBatch(new Rng(seed), n);
      // Some ids absent (-1): their columns must come out zero whatever the memory held.
      for (let i = 0; i < n; i += 5) batch.ids[seed]![i] = -1;
      const expected = tables.lookup(batch);
      assert.ok(expected.some((v) => v !== 0) && expected.some((v) => v === 0));
      // Leave garbage where the next tensor will likely be allocated.
      tf.dispose(tf.fill([n, tables.inputDim], NaN));
      const x = filledWasmTensor([n, tables.inputDim], (v) => tables.lookupInto(batch, v));
      assert.ok(x !== null);
      assert.deepEqual(x.shape, [n, tables.inputDim]);
      const got = x.dataSync() as Float32Array;
      assert.equal(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(expected.buffer)), 0, `n=${n}`);
      // lookupInto over a dirty JavaScript array too.
      assert.deepEqual(tables.lookupInto(batch, new Float32Array(n * tables.inputDim).fill(7)), expected);
      x.dispose();
    }
    disposeBundle(bundle);
  }
});

test('float32Values views a wasm tensor\'s bytes (no copy); on cpu it is dataSync()', async () => {
  const t = tf.tensor2d([1.5, -2, 3, 0.25], [2, 2]);
  const view = float32Values(t);
  assert.deepEqual(Array.from(view), [1.5, -2, 3, 0.25]);
  assert.notEqual(view.buffer, (t.dataSync() as Float32Array).buffer, 'dataSync copies');
  assert.equal(float32Values(t).buffer, view.buffer, 'a view of the same heap');
  t.dispose();
  await tf.setBackend('cpu');
  try {
    assert.equal(filledWasmTensor([2], (v) => v.fill(1)), null);
    const c = tf.tensor1d([4, 5]);
    assert.deepEqual(Array.from(float32Values(c)), [4, 5]);
    c.dispose();
  } finally {
    await tf.setBackend('wasm');
  }
});
