import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { webgpuAdapter } from '../src/kernels/webgpu.js';
import { initBackend } from '../src/kernels/backend.js';
import { registerWasmKernels, wasmMatMulPatched } from '../src/kernels/wasm-kernels.js';
import { UsageError } from '../src/base/errors.js';
import { Rng } from '../src/base/rng.js';
import { runOn, type BackendResult } from './helpers/backends.js';

const TOL = 1e-5;

/** Seeded uniform [0, 1) draws from the project's generator. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** Uniform values in [-0.5, 0.5): keeps float32 round-off of the sums well under TOL. */
function randomValues(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() - 0.5;
  return out;
}

function randomInts(n: number, lo: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor(r() * (hi - lo));
  return out;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}



function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs f on wasm and on cpu and asserts equal shapes and values within TOL. */
async function compare(label: string, f: () => tf.Tensor | tf.Tensor[]): Promise<BackendResult[]> {
  const w = await runOn('wasm', f);
  const c = await runOn('cpu', f);
  assert.equal(w.length, c.length, label);
  for (let i = 0; i < w.length; i++) {
    assert.deepEqual(w[i].shape, c[i].shape, `${label}: output ${i} shape`);
    const d = maxAbsDiff(w[i].values, c[i].values);
    assert.ok(d <= TOL, `${label}: output ${i} max abs diff ${d} > ${TOL}`);
  }
  return w;
}

test('setup: wasm backend with resflow kernels', async () => {
  const info = await initBackend('wasm');
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  registerWasmKernels(); // idempotent
  registerWasmKernels();
  assert.ok(tf.getKernel('UnsortedSegmentSum', 'wasm'));
});

test('UnsortedSegmentSum on wasm matches cpu (float32, int32, trailing dims, dropped ids)', async () => {
  const cases: { xShape: number[]; n: number; dtype: 'float32' | 'int32' }[] = [
    { xShape: [10], n: 4, dtype: 'float32' },
    { xShape: [50, 3], n: 7, dtype: 'float32' },
    { xShape: [20, 2, 3], n: 5, dtype: 'float32' },
    { xShape: [300, 16], n: 40, dtype: 'float32' },
    { xShape: [30, 4], n: 6, dtype: 'int32' },
    { xShape: [1, 5], n: 3, dtype: 'float32' },
  ];
  let seed = 1;
  for (const { xShape, n, dtype } of cases) {
    const rows = xShape[0];
    const xv =
      dtype === 'float32' ? randomValues(size(xShape), seed++) : randomInts(size(xShape), -1000, 1000, seed++);
    // ids in [-1, n]: -1 and n fall outside and are dropped by both backends
    const ids = randomInts(rows, -1, n + 1, seed++);
    const [w] = await compare(`USS x=[${xShape}] n=${n} ${dtype}`, () =>
      tf.unsortedSegmentSum(tf.tensor(xv, xShape, dtype), tf.tensor1d(ids, 'int32'), n),
    );
    assert.deepEqual(w.shape, [n, ...xShape.slice(1)]);
    assert.equal(w.dtype, dtype);
  }
});

test('UnsortedSegmentSum on wasm: rank-2 segment ids equal the flattened rank-1 case', async () => {
  const xv = randomValues(6 * 5 * 3, 11);
  const ids = randomInts(30, 0, 7, 12);
  const [a] = await runOn('wasm', () =>
    tf.unsortedSegmentSum(tf.tensor3d(xv, [6, 5, 3]), tf.tensor2d(ids, [6, 5], 'int32') as unknown as tf.Tensor1D, 7),
  );
  const [b] = await runOn('cpu', () =>
    tf.unsortedSegmentSum(tf.tensor2d(xv, [30, 3]), tf.tensor1d(ids, 'int32'), 7),
  );
  assert.deepEqual(a.shape, [7, 3]);
  assert.ok(maxAbsDiff(a.values, b.values) <= TOL);
});

test('gradient of tf.gather on a [1000, 16] table with repeated indices: wasm matches cpu', async () => {
  const table = randomValues(1000 * 16, 21);
  const idx = randomInts(600, 0, 1000, 22);
  idx.set([7, 7, 7, 999, 0, 0], 0); // make sure of repeats and both ends
  const weights = randomValues(600 * 16, 23);
  const [g] = await compare('gather grad', () =>
    tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(idx, 'int32')), tf.tensor2d(weights, [600, 16]))))(
      tf.tensor2d(table, [1000, 16]),
    ),
  );
  assert.deepEqual(g.shape, [1000, 16]);
  // row 7 was gathered at least three times
  const row7 = g.values.slice(7 * 16, 8 * 16);
  assert.ok(row7.some((v) => v !== 0));

  // 2-D indices and a gather along axis 1
  const idx2 = randomInts(4 * 6, 0, 50, 24);
  const w2 = randomValues(8 * 4 * 6 * 3, 25);
  await compare('gather grad, axis 1, 2-D indices', () =>
    tf.grad((t: tf.Tensor) =>
      tf.sum(tf.mul(tf.gather(t, tf.tensor2d(idx2, [4, 6], 'int32'), 1), tf.tensor4d(w2, [8, 4, 6, 3]))),
    )(tf.tensor3d(randomValues(8 * 50 * 3, 26), [8, 50, 3])),
  );
});

test('matMul on wasm matches cpu for all transpose combinations, batched and broadcast', async () => {
  const combos: [boolean, boolean][] = [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ];
  let seed = 100;
  const shapesFor = (batch: number[], m: number, k: number, n: number, ta: boolean, tb: boolean) => ({
    a: [...batch, ...(ta ? [k, m] : [m, k])],
    b: [...batch, ...(tb ? [n, k] : [k, n])],
  });
  for (const batch of [[], [1], [4], [2, 3]]) {
    for (const [ta, tb] of combos) {
      const { a, b } = shapesFor(batch, 33, 17, 29, ta, tb);
      const av = randomValues(size(a), seed++);
      const bv = randomValues(size(b), seed++);
      const [r] = await compare(`matMul a=[${a}] b=[${b}] tA=${ta} tB=${tb}`, () =>
        tf.matMul(tf.tensor(av, a), tf.tensor(bv, b), ta, tb),
      );
      assert.deepEqual(r.shape, [...batch, 33, 29]);
    }
  }
  // the shape from the brief: [1024, 256] x [128, 256]^T
  const big1 = randomValues(1024 * 256, seed++);
  const big2 = randomValues(128 * 256, seed++);
  await compare('matMul [1024,256]x[128,256]^T', () =>
    tf.matMul(tf.tensor2d(big1, [1024, 256]), tf.tensor2d(big2, [128, 256]), false, true),
  );
  // broadcasting a rank-3 batch against a rank-2 matrix
  const p = randomValues(3 * 16 * 8, seed++);
  const q = randomValues(12 * 8, seed++);
  await compare('matMul broadcast [3,16,8]x[12,8]^T', () =>
    tf.matMul(tf.tensor3d(p, [3, 16, 8]), tf.tensor2d(q, [12, 8]), false, true),
  );
});

test('Dense-layer gradients (transposed matmuls) on wasm match cpu', async () => {
  const x = randomValues(256 * 64, 201);
  const w = randomValues(64 * 32, 202);
  const bias = randomValues(32, 203);
  const r = randomValues(256 * 32, 204);
  for (const activation of ['linear', 'relu'] as const) {
    await compare(`dense grads ${activation}`, () => {
      const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.fused.matMul({ a: xt as tf.Tensor2D, b: wt as tf.Tensor2D, bias: bt, activation }),
            tf.tensor2d(r, [256, 32]),
          ),
        );
      return tf.grads(f)([tf.tensor2d(x, [256, 64]), tf.tensor2d(w, [64, 32]), tf.tensor1d(bias)]);
    });
  }
});

test('fused matMul on wasm matches cpu: transposes, bias, relu and prelu', async () => {
  let seed = 300;
  for (const [ta, tb] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as [boolean, boolean][]) {
    const a = ta ? [24, 40] : [40, 24];
    const b = tb ? [20, 24] : [24, 20];
    const av = randomValues(size(a), seed++);
    const bv = randomValues(size(b), seed++);
    const biasV = randomValues(20, seed++);
    const alpha = randomValues(20, seed++);
    for (const activation of ['linear', 'relu', 'prelu'] as const) {
      await compare(`fused tA=${ta} tB=${tb} ${activation}`, () =>
        tf.fused.matMul({
          a: tf.tensor2d(av, a as [number, number]),
          b: tf.tensor2d(bv, b as [number, number]),
          transposeA: ta,
          transposeB: tb,
          bias: tf.tensor1d(biasV),
          activation,
          preluActivationWeights: activation === 'prelu' ? tf.tensor1d(alpha) : undefined,
        }),
      );
    }
  }
});

test('transposed matMul on wasm frees its temporary buffers', async () => {
  assert.equal(await tf.setBackend('wasm'), true);
  const a = tf.tensor2d(randomValues(64 * 32, 401), [64, 32]);
  const b = tf.tensor2d(randomValues(48 * 32, 402), [48, 32]);
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const before = backend.numDataIds();
  const run = (f: () => tf.Tensor): void => {
    tf.tidy(() => {
      f().dataSync();
    });
  };
  for (let i = 0; i < 3; i++) run(() => tf.matMul(a, b, false, true));
  run(() => tf.matMul(a, a, true, false));
  run(() => tf.matMul(a, tf.transpose(a), true, true));
  assert.equal(backend.numDataIds(), before);
  tf.dispose([a, b]);
});

// Its speed against tfjs's own kernel is a benchmark's to say, not a timed test's: bench/kernels.ts
// prints both, per shape (README.md, "Backends").
test('the transposed-matmul wrapper can be removed and put back, and gives the original kernel\'s products', async () => {
  assert.equal(await tf.setBackend('wasm'), true);
  assert.equal(wasmMatMulPatched(), true);
  const a = tf.tensor2d(randomValues(512 * 256, 501), [512, 256]);
  const b = tf.tensor2d(randomValues(128 * 256, 502), [128, 256]);
  const product = (): number[] => {
    const p = tf.matMul(a, b, false, true);
    const values = Array.from(p.dataSync());
    p.dispose();
    return values;
  };
  const patchedValues = product();
  registerWasmKernels({ transposedMatMul: false });
  try {
    assert.equal(wasmMatMulPatched(), false);
    assert.ok(tf.getKernel('UnsortedSegmentSum', 'wasm'), 'UnsortedSegmentSum stays registered');
    assert.ok(maxAbsDiff(product(), patchedValues) <= TOL);
  } finally {
    registerWasmKernels();
    tf.dispose([a, b]);
  }
  assert.equal(wasmMatMulPatched(), true);
});

// `auto` takes webgpu before wasm on a hardware adapter (README.md, "Backends")
const hardwareGpu = await webgpuAdapter().then((r) => r.ok && !r.adapter.software);

test("initBackend('auto') picks wasm here (tfjs-node absent) and runs an op", { skip: hardwareGpu ? 'a hardware WebGPU adapter is here: auto takes webgpu' : false }, async () => {
  const info = await initBackend('auto');
  assert.equal(info.name, 'wasm');
  assert.match(info.detail, /^wasm \(tfjs \d+\.\d+\.\d+/);
  assert.equal(info.threads, 1);
  assert.equal(tf.getBackend(), 'wasm');
  const y = tf.add(tf.tensor1d([1, 2, 3]), tf.tensor1d([10, 20, 30]));
  assert.deepEqual(Array.from(await y.data()), [11, 22, 33]);
  tf.dispose(y);
  // idempotent
  assert.deepEqual(await initBackend('auto'), info);
  assert.equal(tf.getBackend(), 'wasm');
});

test("initBackend('tensorflow') throws a clear UsageError when tfjs-node is absent", async () => {
  const before = tf.getBackend();
  await assert.rejects(initBackend('tensorflow'), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, /@tensorflow\/tfjs-node-gpu: /);
    assert.match(e.message, /@tensorflow\/tfjs-node: /);
    assert.match(e.message, /npm install @tensorflow\/tfjs-node-gpu/);
    assert.match(e.message, /CUDA/);
    return true;
  });
  // a second try says the same and leaves the current backend alone
  await assert.rejects(initBackend('tensorflow'), UsageError);
  assert.equal(tf.getBackend(), before);
});

test("initBackend('cpu') works, and switching back to wasm works", async () => {
  const info = await initBackend('cpu');
  assert.equal(info.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  const y = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([1, 0, 0, 1], [2, 2]), false, true);
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4]);
  tf.dispose(y);
  const again = await initBackend('wasm');
  assert.equal(again.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

test('initBackend rejects an unknown backend name', async () => {
  await assert.rejects(initBackend('webgl' as never), UsageError);
});
