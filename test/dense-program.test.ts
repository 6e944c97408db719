/**
 * The native scoring pass (src/models/dense-program.ts): the GEMM's residual epilogue, ResFlow's
 * scoring program against its tfjs forward pass bit for bit (every residual mode, two and three
 * tasks, dropout off when scoring), which models get no program, predict() taking the native path with the same probabilities, and the dense
 * FLOP count of bench/reference-model.ts worked out by hand. Skipped, with the reason, without the addon.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { sgemmHasResidual } from '../src/kernels/native-api.js';
import { nativeMatmulRegistered, nativeMatmulStats } from '../src/kernels/native-matmul.js';
import { buildBundle, disposeBundle, predict } from '../src/models/bundle.js';
import { nativeScoring, runDenseProgram } from '../src/models/dense-program.js';
import { Rng } from '../src/base/rng.js';
import { linear, linearReluUnfused } from '../src/models/layers.js';
import { benchConfig, denseFlopsPerSample, randomBatch } from '../bench/reference-model.js';
import { resflowBundle, THREE_TASKS } from './helpers/resflow.js';
import { assertSameBits, randomFloats } from './helpers/bits.js';

const native = loadAddon();
const skip = native === null ? `native addon not available: ${addonUnavailableReason()}` : !sgemmHasResidual(native) ? 'native addon predates the residual epilogue' : false;

before(async () => {
  await initBackend('wasm');
});

const random = randomFloats;
const sameBits = assertSameBits;

test('native sgemm residual: act(A·B + bias) + R, the bits of separate adds, on every path', { skip }, () => {
  const { sgemm } = native!;
  let seed = 10;
  for (const [M, N, K] of [[1024, 256, 320], [37, 23, 29], [1, 300, 40], [300, 1, 40], [5, 7, 0]] as const) {
    const A = random(M * K, seed++);
    const B = random(K * N, seed++);
    const bias = random(N, seed++);
    const R = random(M * N, seed++);
    for (const activation of [0, 1]) {
      const fused = new Float32Array(M * N);
      sgemm(false, false, M, N, K, A, B, fused, 1, bias, activation);
      const expected = fused.map((c, i) => c + R[i]!);
      for (const threads of [1, 2]) {
        const C = new Float32Array(M * N).fill(NaN);
        sgemm(false, false, M, N, K, A, B, C, threads, bias, activation, R);
        sameBits(C, expected, `M=${M} N=${N} K=${K} act=${activation} threads=${threads}`);
      }
    }
    // Residual alone (no bias, no activation) also applies.
    const plain = new Float32Array(M * N);
    sgemm(false, false, M, N, K, A, B, plain, 1);
    const C = new Float32Array(M * N);
    sgemm(false, false, M, N, K, A, B, C, 1, null, 0, R);
    sameBits(C, plain.map((c, i) => c + R[i]!), `residual only, M=${M} N=${N} K=${K}`);
  }
  const big = new Float32Array(8);
  assert.throws(() => sgemm(false, false, 2, 2, 3, new Float32Array(6), new Float32Array(6), big.subarray(0, 4), 1, null, 0, big.subarray(2, 6)), /C must not overlap the residual/);
  assert.throws(() => sgemm(false, false, 2, 2, 3, new Float32Array(6), new Float32Array(6), new Float32Array(4), 1, null, 0, new Float32Array(3)), /residual has 3 elements, needs at least 4/);
});

test('ResFlow scoring program: the logits of the tfjs forward pass, bit for bit', { skip }, () => {
  assert.ok(nativeMatmulRegistered(), 'the wasm backend runs the native matmul');
  let seed = 50;
  for (const residual of ['both', 'feature', 'logit', 'none']) {
    for (const tasks of [undefined, THREE_TASKS]) {
      const bundle = resflowBundle({ residual, dropout: 0.3 }, tasks);
      // Non-zero biases, so that the bias is part of what is compared.
      for (const [name, v] of bundle.params.variables) if (name.endsWith('/bias')) v.assign(tf.tensor(random(v.size, seed++), v.shape));
      const program = bundle.model.scoringProgram!;
      assert.ok(program, `resflow ${residual} has a scoring program`);
      assert.equal(program.logits.length, bundle.taskNames.length);
      for (const n of [1, 33, 300]) {
        const x = random(n * bundle.tables.inputDim, seed++);
        const expected = tf.tidy(() => bundle.model.forward(tf.tensor2d(x, [n, bundle.tables.inputDim]), { training: false, dropoutSeed: 0 }).logits.map((z) => Float32Array.from(z.dataSync())));
        const got = runDenseProgram(program, native!, x, n)!;
        got.forEach((z, k) => sameBits(z, expected[k]!, `residual ${residual}, ${bundle.taskNames.length} tasks, n ${n}, task ${k}`));
      }
      disposeBundle(bundle);
    }
  }
});

test('models with batch norm or prelu get no scoring program', () => {
  for (const model of [{ batch_norm: true }, { activation: 'prelu' }]) {
    const b = resflowBundle(model);
    assert.equal(b.model.scoringProgram, null, JSON.stringify(model));
    disposeBundle(b);
  }
});

test('predict() takes the native path and gives the probabilities of the tfjs path', { skip }, async () => {
  const config = benchConfig(64);
  config.model = { ...config.model, hidden: [16, 8] } as typeof config.model;
  const bundle = buildBundle(config);
  assert.notEqual(nativeScoring(), null);
  const batch = randomBatch(new Rng(8), 97);
  const calls = nativeMatmulStats().calls;
  const viaProgram = await predict(bundle, batch);
  assert.equal(nativeMatmulStats().calls, calls, 'no tfjs matmul ran: the program did the work');
  const program = bundle.model.scoringProgram;
  bundle.model.scoringProgram = null;
  const viaTfjs = await predict(bundle, batch);
  assert.ok(nativeMatmulStats().calls > calls, 'the tfjs path ran its matmuls');
  bundle.model.scoringProgram = program;
  assert.equal(viaProgram.length, 2);
  viaProgram.forEach((p, k) => {
    assert.equal(p.length, 97);
    assert.ok(p.every((v) => v > 0 && v < 1));
    sameBits(p, viaTfjs[k]!, `task ${k}`);
  });
  disposeBundle(bundle);
});

test('dense FLOPs per sample of the reference model, by hand', () => {
  // Two towers 320 -> 256 -> 128 -> 1: forward 2·(320·256 + 256·128 + 128·1) per tower.
  const fwd = 2 * 2 * (320 * 256 + 256 * 128 + 128);
  const bias = 2 * 2 * (256 + 128 + 1);
  const vars = new Map<string, { shape: number[] }>();
  for (const t of ['ctr', 'ctcvr']) {
    vars.set(`tower_${t}/dense_0/kernel`, { shape: [320, 256] });
    vars.set(`tower_${t}/dense_0/bias`, { shape: [256] });
    vars.set(`tower_${t}/dense_1/kernel`, { shape: [256, 128] });
    vars.set(`tower_${t}/dense_1/bias`, { shape: [128] });
    vars.set(`tower_${t}/logit/kernel`, { shape: [128, 1] });
    vars.set(`tower_${t}/logit/bias`, { shape: [1] });
  }
  assert.deepEqual(denseFlopsPerSample(vars), { score: fwd, train: 3 * fwd + bias });
  assert.equal(fwd, 459_264);
  assert.equal(3 * fwd + bias, 1_379_332);
  // The bench's own bundle counts the same.
  const bundle = buildBundle(benchConfig(64));
  assert.deepEqual(denseFlopsPerSample(bundle.params.variables), { score: fwd, train: 3 * fwd + bias });
  disposeBundle(bundle);
});

test('training forward: the fused relu(x·W + b) kernel gives the values and gradients of the separate kernels, bit for bit', { skip }, () => {
  let seed = 300;
  for (const [n, k, m] of [[64, 40, 24], [300, 33, 7], [1, 5, 3]] as const) {
    const x = tf.tensor2d(random(n * k, seed++), [n, k]);
    const W = tf.tensor2d(random(k * m, seed++), [k, m]);
    const b = tf.tensor1d(random(m, seed++));
    const r = tf.tensor2d(random(n * m, seed++), [n, m]);
    const run = (f: (x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D) => {
      let y: Float32Array | null = null;
      const loss = (xx: tf.Tensor, WW: tf.Tensor, bb: tf.Tensor) => {
        const out = f(xx as tf.Tensor2D, WW as tf.Tensor2D, bb as tf.Tensor1D);
        y = Float32Array.from(out.dataSync());
        return tf.sum(tf.mul(out, r));
      };
      const { value, grads } = tf.valueAndGrads(loss)([x, W, b]);
      const res = [y!, Float32Array.from(value.dataSync()), ...grads.map((t) => Float32Array.from(t.dataSync()))];
      tf.dispose([value, ...grads]);
      return res;
    };
    const kernels = nativeMatmulStats().calls;
    const fused = run((a, w, c) => linear(a, w, c, 'relu'));
    assert.ok(nativeMatmulStats().calls > kernels, 'the native matmul ran');
    const separate = run(linearReluUnfused);
    ['output', 'loss', 'dx', 'dW', 'db'].forEach((what, i) => sameBits(fused[i]!, separate[i]!, `n=${n} k=${k} m=${m}: ${what}`));
    tf.dispose([x, W, b, r]);
  }
});
