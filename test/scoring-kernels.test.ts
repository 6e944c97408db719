/**
 * The scoring pass's own kernels: the lookup inside the first layers' product (the addon's
 * embeddingSgemm, native/src/embeddings.cc) and tfjs's wasm sigmoid kernel called without tfjs's
 * dispatch (src/kernels/wasm-sigmoid.ts): each gives the bits of the calls it replaces. The addon's
 * tests skip, with the reason, without it.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { lookupArguments } from '../src/kernels/sparse-native.js';
import type { TableData } from '../src/kernels/sparse-api.js';
import { wasmSigmoid } from '../src/kernels/wasm-sigmoid.js';
import { Rng } from '../src/base/rng.js';
import { assertSameBits, randomFloats } from './helpers/bits.js';

const native = loadAddon();
const skip = native === null ? `native addon not available: ${addonUnavailableReason()}` : native.embeddingSgemm === undefined ? 'native addon predates embeddingSgemm (version 6)' : false;

before(async () => {
  await initBackend('wasm');
});

/** 20 single-id tables of 1,000 x 16, a mean-pooled list of 5 (dim 8) and a sum-pooled list of 3 (dim 4), then 2 numeric columns. */
function tablesAndIds(rng: Rng, n: number): { tables: TableData[]; ids: Int32Array[]; D: number } {
  const shapes = [...Array.from({ length: 20 }, () => ({ rows: 1_000, dim: 16, width: 1, mean: false })), { rows: 500, dim: 8, width: 5, mean: true }, { rows: 30, dim: 4, width: 3, mean: false }];
  let offset = 0;
  const tables = shapes.map((s) => {
    const t: TableData = { ...s, offset, state: null, weights: Float32Array.from({ length: s.rows * s.dim }, () => rng.next() - 0.5) };
    offset += s.dim;
    return t;
  });
  // Some ids absent (-1): their columns are zeros, or left out of a list's pool.
  const ids = tables.map((t) => Int32Array.from({ length: n * t.width }, () => (rng.next() < 0.05 ? -1 : rng.int(t.rows))));
  return { tables, ids, D: offset + 2 };
}

test('embeddingSgemm gives the bits of embeddingLookup then sgemm: row counts, widths, threads and epilogues', { skip }, () => {
  const { embeddingSgemm, embeddingLookup, sgemm } = native!;
  let seed = 1;
  // 1 and 5 rows on 2 threads split the columns (rows written before the product); N = 1 is the
  // matrix-vector path; 1,024 and 1,500 rows take several row blocks, with a partial last one.
  for (const n of [1, 5, 13, 97, 1024, 1500]) {
    const { tables, ids, D } = tablesAndIds(new Rng(seed++), n);
    const args = lookupArguments(tables, ids);
    const numeric = randomFloats(n * 2, seed++);
    for (const N of [1, 7, 77, 256]) {
      const W = randomFloats(D * N, seed++);
      const bias = randomFloats(N, seed++);
      const R = randomFloats(n * N, seed++);
      for (const threads of [1, 2]) {
        for (const [b, act, res] of [[null, 0, null], [bias, 1, null], [bias, 1, R]] as const) {
          const what = `n ${n}, N ${N}, ${threads} thread(s), ${b ? 'bias' : 'no bias'}, act ${act}, ${res ? 'residual' : 'no residual'}`;
          // x's table columns start as NaN: every one must be written; the numeric ones are read as they are.
          const x1 = new Float32Array(n * D).fill(NaN);
          const x2 = new Float32Array(n * D).fill(NaN);
          for (let i = 0; i < n; i++) for (const x of [x1, x2]) x.set(numeric.subarray(2 * i, 2 * i + 2), i * D + D - 2);
          const c1 = new Float32Array(n * N);
          const c2 = new Float32Array(n * N);
          embeddingLookup!(args.weights, args.ids, args.layout, n, x1, D, threads);
          sgemm(false, false, n, N, D, x1, W, c1, threads, b, act, res);
          embeddingSgemm!(args.weights, args.ids, args.layout, n, x2, D, W, N, c2, threads, b, act, res);
          assertSameBits(x2, x1, `x: ${what}`);
          assertSameBits(c2, c1, `C: ${what}`);
          assert.ok(x2.every((v) => !Number.isNaN(v)), `every column of x written: ${what}`);
        }
      }
    }
  }
});

test('embeddingSgemm refuses overlapping or bad arguments before writing anything', { skip }, () => {
  const { embeddingSgemm } = native!;
  const n = 16;
  const { tables, ids, D } = tablesAndIds(new Rng(3), n);
  const a = lookupArguments(tables, ids);
  const N = 8;
  const heap = new Float32Array(n * D + D * N + n * N);
  const x = heap.subarray(0, n * D);
  const W = heap.subarray(n * D, n * D + D * N).fill(0.5);
  const C = heap.subarray(n * D + D * N).fill(7);
  const untouched = () => {
    assert.ok(x.every((v) => v === 0), 'x untouched');
    assert.ok(C.every((v) => v === 7), 'C untouched');
  };
  assert.throws(() => embeddingSgemm!(a.weights, a.ids, a.layout, n, heap.subarray(1, n * D + 1), D, W, N, C), /x, W and C must not overlap/);
  assert.throws(() => embeddingSgemm!(a.weights, a.ids, a.layout, n, x, D, W, N, C, 1, x.subarray(0, N)), /bias and the residual must not overlap x/);
  assert.throws(() => embeddingSgemm!(a.weights, a.ids, a.layout, n, x, D, W, N, C, 1, null, 1, x.subarray(0, n * N)), /bias and the residual must not overlap x/);
  assert.throws(() => embeddingSgemm!(a.weights, a.ids, a.layout, n, x, D, W, N + 1, C), /W has \d+ elements, needs at least \d+/);
  const bad = ids.map((v) => Int32Array.from(v));
  bad[2]![5] = 1_000;
  assert.throws(() => embeddingSgemm!(a.weights, bad, a.layout, n, x, D, W, N, C), /ids\[2\]\[5\] is 1000, outside \[-1, 1000\)/);
  untouched();
});

/** Signed zeros, subnormals, the cut-offs, infinities and NaN, a spread of logits, small values, and arbitrary bit patterns. */
function sigmoidInputs(seed: number): Float32Array {
  const special = [0, -0, 1e-45, -1e-45, 1e-30, 0.5, -0.5, 15, -15, 16.6, -16.6, 17, -17, 87, -87, 88.7, -88.7, 89, -89, 103, -103, 104, -104, 1e30, -1e30, Infinity, -Infinity, NaN];
  const r = new Rng(seed);
  const bits = new Uint32Array(Array.from({ length: 20_000 }, () => Math.floor(r.next() * 2 ** 32)));
  return Float32Array.from([...special, ...Array.from({ length: 20_000 }, () => (r.next() - 0.5) * 60), ...Array.from({ length: 2_000 }, () => (r.next() - 0.5) * 1e-3), ...new Float32Array(bits.buffer)]);
}

/** tf.sigmoid on the wasm backend. */
function tfSigmoid(values: Float32Array): Float32Array {
  const t = tf.tensor1d(values);
  const s = tf.sigmoid(t);
  const out = s.dataSync() as Float32Array;
  tf.dispose([t, s]);
  return out;
}

test('wasmSigmoid gives tf.sigmoid\'s bits, and reuses its heap buffers', () => {
  const values = sigmoidInputs(11);
  const want = tfSigmoid(values);
  const be = tf.backend() as unknown as { numDataIds(): number };
  const got = wasmSigmoid(values.length, (v) => v.set(values));
  assert.ok(got !== null, 'the wasm backend exports its Sigmoid kernel');
  assertSameBits(got, want, 'sigmoid');
  // The same size again: no new buffers; the result is a copy the next call does not touch.
  const ids = be.numDataIds();
  const again = wasmSigmoid(values.length, (v) => v.fill(0));
  assert.equal(be.numDataIds(), ids);
  assert.ok(again!.every((v) => v === 0.5));
  assertSameBits(got, want, 'an earlier result stays as it was');
  // Another size replaces the pair instead of adding one.
  const few = wasmSigmoid(3, (v) => v.set([0, 100, -100]));
  assert.deepEqual(Array.from(few!), [0.5, 1, 0]);
  assert.equal(be.numDataIds(), ids);
});
