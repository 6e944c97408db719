/**
 * The native backward pass of a dense layer (src/kernels/native-dense-grad.ts): the relu mask
 * (native and JavaScript) against tfjs's Step/Cast/Multiply on special values, a layer's gradients
 * with the kernel against tfjs's separate kernels bit for bit and against a double-precision
 * reference, and a whole ResFlow model's gradients with and without it. Skipped, with the reason,
 * without the addon.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { NATIVE_MATMUL, nativeDenseGradRegistered, nativeMatmulThreads, registerNativeMatmulKernels } from '../src/kernels/native-matmul.js';
import { DENSE_GRAD, reluBackward } from '../src/kernels/native-dense-grad.js';
import { restoreKernel } from '../src/kernels/overrides.js';
import { buildBundle, disposeBundle } from '../src/models/bundle.js';
import { linear } from '../src/models/layers.js';
import { Rng } from '../src/base/rng.js';
import { benchConfig, randomBatch } from '../bench/reference-model.js';
import { assertSameBits, randomFloats } from './helpers/bits.js';

const native = loadAddon();
const skip = native === null ? `native addon not available: ${addonUnavailableReason()}` : false;

before(async () => {
  await initBackend('wasm');
});

const random = randomFloats;
const sameBits = assertSameBits;

/** Runs f with the dense-gradient kernel unregistered (tfjs's separate kernels), then registers it again. */
function withoutKernel<T>(f: () => T): T {
  restoreKernel(DENSE_GRAD, 'wasm', NATIVE_MATMUL);
  assert.equal(nativeDenseGradRegistered(), false);
  try {
    return f();
  } finally {
    registerNativeMatmulKernels(native!, { threads: nativeMatmulThreads() });
  }
}

/** The names of the kernels f runs. */
async function kernelNames(f: () => void): Promise<Set<string>> {
  const prof = await tf.profile(() => f());
  return new Set(prof.kernels.map((k) => k.name));
}

test('relu backward: dy where y > 0, a signed zero where y <= 0, NaN where y is NaN; native and JavaScript equal tfjs bit for bit', { skip }, () => {
  const y = new Float32Array([NaN, -0, 0, 1, -1, Infinity, -Infinity, 1e-45, -1e-45, 3, 2]);
  const dy = new Float32Array([1, -2, 3, 4, -5, 6, 7, -8, 9, Infinity, NaN]);
  // Worked by hand: dy·1 where y > 0, dy·0 (sign of dy) elsewhere, NaN from a NaN y or dy.
  const expected = [NaN, -0, 0, 4, -0, 6, 0, -8, 0, Infinity, NaN];
  const tfjs = tf.tidy(() => tf.mul(tf.tensor1d(dy), tf.cast(tf.step(tf.tensor1d(y)), 'float32')).dataSync() as Float32Array);
  // A build before version 4 has no reluBackward: reluBackward(native, ...) then runs the JavaScript loop too.
  assert.equal(native!.reluBackward !== undefined, Number(native!.info().version) >= 4);
  for (const [what, addon] of [['native', native], ['JavaScript', null]] as const) {
    const dz = new Float32Array(y.length).fill(123);
    reluBackward(addon, dy, y, dz);
    expected.forEach((e, i) => assert.ok(Object.is(dz[i], e), `${what}: element ${i}: ${dz[i]} vs ${e}`));
    expected.forEach((_, i) => assert.ok(Object.is(dz[i], tfjs[i]), `${what} vs tfjs: element ${i}`));
  }
  // Random values (and dz = dy in place), against tfjs.
  const n = 100_003;
  const yr = random(n, 1).map((v, i) => (i % 97 === 0 ? 0 : v));
  const dyr = random(n, 2);
  const ref = tf.tidy(() => tf.mul(tf.tensor1d(dyr), tf.cast(tf.step(tf.tensor1d(yr)), 'float32')).dataSync() as Float32Array);
  const out = new Float32Array(n);
  reluBackward(native, dyr, yr, out);
  sameBits(out, ref, 'native, random');
  for (const threads of [2, 3]) {
    reluBackward(native, dyr, yr, out.fill(0), threads); // 100,003 floats in 2 or 3 ranges
    sameBits(out, ref, `native, random, ${threads} threads`);
  }
  reluBackward(null, dyr, yr, out.fill(0));
  sameBits(out, ref, 'JavaScript, random');
  const inPlace = Float32Array.from(dyr);
  reluBackward(native, inPlace, yr, inPlace);
  sameBits(inPlace, ref, 'native, in place');
  if (native!.reluBackward !== undefined) {
    assert.throws(() => native!.reluBackward!(dyr, yr, yr), /overlap/);
    assert.throws(() => native!.reluBackward!(dyr.subarray(1), yr, out), /needs at least/);
  }
});

test('dense layer backward: the native kernel gives the separate kernels\' gradients bit for bit, and the right ones', { skip }, async () => {
  let seed = 100;
  for (const [n, k, m] of [[64, 40, 24], [300, 33, 7], [1, 5, 3], [129, 17, 1], [1024, 320, 256]] as const) {
    const x = tf.tensor2d(random(n * k, seed++), [n, k]);
    const W = tf.tensor2d(random(k * m, seed++), [k, m]);
    const b = tf.tensor1d(random(m, seed++));
    const r = tf.tensor2d(random(n * m, seed++), [n, m]);
    for (const act of ['relu', 'linear'] as const) {
      const run = () => {
        const { value, grads } = tf.valueAndGrads((xx: tf.Tensor, WW: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear(xx as tf.Tensor2D, WW as tf.Tensor2D, bb as tf.Tensor1D, act), r)))([x, W, b]);
        const res = [value, ...grads].map((t) => Float32Array.from(t.dataSync()));
        tf.dispose([value, ...grads]);
        return res;
      };
      assert.ok(nativeDenseGradRegistered());
      assert.ok((await kernelNames(run)).has(DENSE_GRAD), 'the native kernel ran');
      const withKernel = run();
      const separate = withoutKernel(run);
      assert.ok(!(await kernelNames(() => withoutKernel(run))).has(DENSE_GRAD));
      ['loss', 'dx', 'dW', 'db'].forEach((what, i) => sameBits(withKernel[i]!, separate[i]!, `n=${n} k=${k} m=${m} ${act}: ${what}`));

      // Against double precision: dz = r where the layer's output is > 0 (all of r when linear), dx = dz·Wᵀ, dW = xᵀ·dz, db = column sums.
      if (n * k * m > 2_000_000) continue;
      const [xv, Wv, rv] = [x, W, r].map((t) => t.dataSync() as Float32Array) as [Float32Array, Float32Array, Float32Array];
      const yv = tf.tidy(() => linear(x, W, b, act).dataSync() as Float32Array);
      const dz = Float64Array.from(rv, (v, i) => (act === 'linear' || yv[i]! > 0 ? v : 0));
      // Float32 sums of n terms: within 64 units of float32 rounding (2^-18) of the sum of the terms' magnitudes.
      const check = (got: number, terms: number[], what: string) => {
        const want = terms.reduce((s, v) => s + v, 0);
        const tol = 2 ** -18 * terms.reduce((s, v) => s + Math.abs(v), 0);
        assert.ok(Math.abs(got - want) <= tol, `n=${n} k=${k} m=${m} ${act}: ${what}: ${got} vs ${want} (tolerance ${tol})`);
      };
      for (let i = 0; i < n; i += 7) for (let p = 0; p < k; p++) check(withKernel[1]![i * k + p]!, Array.from({ length: m }, (_, j) => dz[i * m + j]! * Wv[p * m + j]!), `dx[${i},${p}]`);
      for (let p = 0; p < k; p++) for (let j = 0; j < m; j++) check(withKernel[2]![p * m + j]!, Array.from({ length: n }, (_, i) => xv[i * k + p]! * dz[i * m + j]!), `dW[${p},${j}]`);
      for (let j = 0; j < m; j++) check(withKernel[3]![j]!, Array.from({ length: n }, (_, i) => dz[i * m + j]!), `db[${j}]`);
    }
    tf.dispose([x, W, b, r]);
  }
});

test('a ResFlow model\'s gradients (residual towers, logit layers) are the same bits with the native backward and without', { skip }, () => {
  const config = benchConfig(96);
  (config.model as Record<string, unknown>)['hidden'] = [48, 24];
  const bundle = buildBundle(config);
  const batch = randomBatch(new Rng(5), 96);
  const run = () =>
    tf.tidy(() => {
      const x = tf.tensor2d(bundle.tables.lookup(batch), [96, bundle.tables.inputDim]);
      const vars = bundle.params.trainable;
      const { value, grads } = tf.variableGrads(() => {
        const out = bundle.model.forward(x, { training: true, dropoutSeed: 0 });
        return tf.sum(tf.addN(out.logits.map((z, t) => tf.mul(tf.sigmoid(z), t + 1))));
      }, vars);
      return [value, ...vars.map((v) => grads[v.name]!)].map((t) => Float32Array.from(t.dataSync()));
    });
  const withKernel = run();
  const separate = withoutKernel(run);
  assert.ok(withKernel.length > 10);
  withKernel.forEach((g, i) => sameBits(g, separate[i]!, `output ${i}`));
  disposeBundle(bundle);
});
