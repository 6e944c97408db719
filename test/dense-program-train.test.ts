/**
 * The training pass as one native op (src/models/dense-program-train.ts): ResFlow's logits, loss
 * and every gradient (the input's and each weight's) against its tfjs forward pass under a gradient
 * tape, bit for bit, for every residual mode, two and three tasks, row counts on both sides of the
 * native Add's threshold and 1-2 threads; training steps through the Trainer with and without it
 * giving the same weights; and who gets no training program, and when it is not taken. Skipped, with the reason, without the addon.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { nativeMatmulStats, nativeMatmulThreads, registerNativeMatmulKernels, unregisterNativeMatmulKernels } from '../src/kernels/native-matmul.js';
import { NATIVE_ADD_MIN_SIZE } from '../src/kernels/native-add.js';
import { buildBundle, disposeBundle, type ModelBundle } from '../src/models/bundle.js';
import { nativeTraining, programForward, trainingLogits } from '../src/models/dense-program-train.js';
import { ProgramBuilder } from '../src/models/dense-program.js';
import { Trainer } from '../src/train/trainer.js';
import { RunFolder } from '../src/runs/folder.js';
import { Rng } from '../src/base/rng.js';
import { benchConfig, randomBatch } from '../bench/reference-model.js';
import type { ExperimentConfig } from '../src/config/experiment.js';
import { ONE_TASK, resflowBundle, THREE_TASKS } from './helpers/resflow.js';
import { assertSameBits, randomFloats } from './helpers/bits.js';

const native = loadAddon();
const skip = native === null ? `native addon not available: ${addonUnavailableReason()}` : native.addArrays === undefined ? `native build ${native.info().version} predates addArrays (version 5)` : false;

before(async () => {
  await initBackend('wasm');
});

/** A loss that gives every task's logits a different, non-trivial gradient: Σ_k Σ_i c_ki·softplus(z_ki). */
function lossOf(logits: tf.Tensor1D[], weights: tf.Tensor1D[]): tf.Scalar {
  return logits.reduce((total, z, k) => tf.add(total, tf.sum(tf.mul(tf.softplus(z), weights[k]!))), tf.scalar(0)) as tf.Scalar;
}

/** The loss, the logits and the gradients of x and of every trainable weight, as float arrays. */
function lossAndGradients(bundle: ModelBundle, x: tf.Tensor2D, weights: tf.Tensor1D[], viaProgram: boolean): Float32Array[] {
  return tf.tidy(() => {
    let logits: tf.Tensor1D[] = [];
    const { value, grads } = tf.engine().gradients(
      () => {
        const out = viaProgram ? programForward(bundle.model, x) : bundle.model.forward(x, { training: true, dropoutSeed: 0 });
        assert.ok(out !== null, 'the native training path applies');
        logits = out.logits.map((z) => tf.keep(z));
        return lossOf(out.logits, weights);
      },
      [x, ...bundle.params.trainable],
    );
    return [value, ...logits, ...grads].map((t) => Float32Array.from(t.dataSync()));
  });
}

test('ResFlow training program: logits, loss and every gradient of the tfjs pass, bit for bit', { skip }, () => {
  const threadsBefore = nativeMatmulThreads();
  let seed = 300;
  try {
    for (const threads of [1, 2]) {
      registerNativeMatmulKernels(native!, { threads });
      for (const residual of ['both', 'feature', 'logit', 'none']) {
        for (const tasks of [undefined, THREE_TASKS, ONE_TASK]) {
          // Width 48 on 700 rows: the residual adds and gradient sums of the first layer reach the native Add.
          const bundle = resflowBundle({ residual, hidden: [48, 9] }, tasks);
          for (const [name, v] of bundle.params.variables) if (name.endsWith('/bias')) v.assign(tf.tensor(randomFloats(v.size, seed++), v.shape));
          const T = bundle.taskNames.length;
          for (const n of [1, 37, 700]) {
            if (n === 700) assert.ok(n * 48 >= NATIVE_ADD_MIN_SIZE);
            const what = `${threads} threads, residual ${residual}, ${T} tasks, n ${n}`;
            const x = tf.tensor2d(randomFloats(n * bundle.tables.inputDim, seed++), [n, bundle.tables.inputDim]);
            const weights = Array.from({ length: T }, () => tf.tensor1d(randomFloats(n, seed++)));
            const viaTfjs = lossAndGradients(bundle, x, weights, false);
            const calls = nativeMatmulStats().calls;
            const viaProgram = lossAndGradients(bundle, x, weights, true);
            assert.equal(nativeMatmulStats().calls, calls, `${what}: no tfjs matmul ran`);
            assert.equal(viaProgram.length, 1 + T + 1 + bundle.params.trainable.length);
            viaProgram.forEach((a, i) => assertSameBits(a, viaTfjs[i]!, `${what}: output ${i}`));
            tf.dispose([x, ...weights]);
          }
          disposeBundle(bundle);
        }
      }
    }
  } finally {
    registerNativeMatmulKernels(native!, { threads: threadsBefore });
  }
});

test('Trainer steps through the training program give the weights of the tfjs pass, bit for bit', { skip }, async () => {
  // Two tasks with one pointwise loss each (the stacked objective), one task (the same), and one task
  // with two loss terms (the per-task objective over the program's logits).
  const variants: ((c: ExperimentConfig) => void)[] = [
    () => {},
    (c) => (c.tasks = c.tasks.slice(0, 1)),
    (c) => (c.tasks = [{ ...c.tasks[0]!, losses: [c.tasks[0]!.losses[0]!, { type: 'pointwise', weight: 0.5 }] }]),
  ];
  for (const variant of variants) await trainerMatchesTfjs(variant);
});

async function trainerMatchesTfjs(variant: (c: ExperimentConfig) => void): Promise<void> {
  const weightsAfter = async (useProgram: boolean): Promise<Float32Array[]> => {
    const config = benchConfig(300);
    config.model = { ...config.model, hidden: [40, 12] } as typeof config.model;
    variant(config);
    const bundle = buildBundle(config);
    if (!useProgram) bundle.model.trainingProgram = null;
    const trainer = new Trainer(bundle, RunFolder.create(mkdtempSync(path.join(tmpdir(), 'resflow-test-')), config));
    const rng = new Rng(5);
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) losses.push((await trainer.step(randomBatch(rng, 300))).total);
    const out = [Float32Array.from(losses), ...bundle.params.trainable.map((v) => Float32Array.from(v.dataSync())), Float32Array.from(bundle.tables.lookup(randomBatch(new Rng(9), 50)))];
    disposeBundle(bundle);
    return out;
  };
  const tfjs = await weightsAfter(false);
  const program = await weightsAfter(true);
  assert.equal(program.length, tfjs.length);
  program.forEach((a, i) => assertSameBits(a, tfjs[i]!, i === 0 ? 'losses' : i === program.length - 1 ? 'embeddings' : `weight ${i - 1}`));
}

test('no training program with dropout, batch norm or prelu', () => {
  for (const model of [{ dropout: 0.2 }, { batch_norm: true }, { activation: 'prelu' }]) {
    const b = resflowBundle(model);
    assert.equal(b.model.trainingProgram ?? null, null, JSON.stringify(model));
    disposeBundle(b);
  }
  const b = resflowBundle({});
  assert.ok(b.model.trainingProgram, 'plain ResFlow trains through its program');
  disposeBundle(b);
});

test('without the native kernels registered the training program is not taken (the tfjs pass runs)', { skip }, () => {
  const b = resflowBundle({});
  const x = tf.zeros([3, b.tables.inputDim]) as tf.Tensor2D;
  const threads = nativeMatmulThreads();
  try {
    assert.notEqual(programForward(b.model, x), null, 'taken with the native kernels');
    unregisterNativeMatmulKernels();
    assert.equal(nativeTraining(), null);
    assert.equal(programForward(b.model, x), null, 'not taken without them');
  } finally {
    registerNativeMatmulKernels(native!, { threads });
    tf.dispose(x);
    disposeBundle(b);
  }
});

test('a buffer read by three ops sums its three gradients (against a float64 backward pass by hand)', { skip }, () => {
  // x [n, 3] -> h = relu(x·W0 + b0) [n, 4]; three one-wide heads read h: zA = h·W1 + b1,
  // zB = h·W2 + b2, zC = h·W3 + b3 + zB. h's gradient has three terms: one lands in its own sum
  // array, the next two are added to it there.
  const n = 37;
  const r = new Rng(91);
  const vals = (k: number) => Array.from({ length: k }, () => r.next() - 0.5);
  const mk = (rows: number, cols: number) => tf.variable(tf.tensor2d(vals(rows * cols), [rows, cols]));
  const mkb = (cols: number) => tf.variable(tf.tensor1d(vals(cols)));
  const pb = new ProgramBuilder(3);
  const h = pb.add({ input: 0, W: mk(3, 4), b: mkb(4), relu: true, residual: null });
  const zA = pb.add({ input: h, W: mk(4, 1), b: mkb(1), relu: false, residual: null });
  const zB = pb.add({ input: h, W: mk(4, 1), b: mkb(1), relu: false, residual: null });
  const zC = pb.add({ input: h, W: mk(4, 1), b: mkb(1), relu: false, residual: zB });
  const program = pb.build([zA, zB, zC]);
  const params = program.ops.flatMap((op) => [op.W, op.b!]);
  const xs = vals(n * 3);
  const c = [vals(n), vals(n), vals(n)];
  const x = tf.tensor2d(xs, [n, 3]);
  const weights = c.map((w) => tf.tensor1d(w));
  const { value, grads } = tf.engine().gradients(
    () => {
      const logits = trainingLogits(program, x);
      assert.ok(logits !== null, 'the native training path applies');
      return logits.reduce((t, z, k) => tf.add(t, tf.sum(tf.mul(z, weights[k]!))), tf.scalar(0)) as tf.Scalar;
    },
    [x, ...params],
  );
  // the same in float64
  const P = params.map((p) => Array.from(p.dataSync()));
  const [W0, b0, W1, b1, W2, b2, W3, b3] = P as number[][];
  const pre = Array.from({ length: n * 4 }, (_, q) => b0![q % 4]! + [0, 1, 2].reduce((a, k) => a + xs[Math.floor(q / 4) * 3 + k]! * W0![k * 4 + (q % 4)]!, 0));
  const hv = pre.map((v) => Math.max(v, 0));
  const head = (W: number[], b: number[]) => Array.from({ length: n }, (_, i) => b[0]! + [0, 1, 2, 3].reduce((a, j) => a + hv[i * 4 + j]! * W[j]!, 0));
  const za = head(W1!, b1!), zb = head(W2!, b2!), zc = head(W3!, b3!).map((v, i) => v + zb[i]!);
  const loss = [za, zb, zc].reduce((t, z, k) => t + z.reduce((a, v, i) => a + v * c[k]![i]!, 0), 0);
  const dA = c[0]!, dB = c[1]!.map((v, i) => v + c[2]![i]!), dC = c[2]!;
  const dh = Array.from({ length: n * 4 }, (_, q) => { const i = Math.floor(q / 4), j = q % 4; return dA[i]! * W1![j]! + dB[i]! * W2![j]! + dC[i]! * W3![j]!; });
  const dpre = dh.map((v, q) => (pre[q]! > 0 ? v : 0));
  const dx = Array.from({ length: n * 3 }, (_, q) => { const i = Math.floor(q / 3), k = q % 3; return [0, 1, 2, 3].reduce((a, j) => a + dpre[i * 4 + j]! * W0![k * 4 + j]!, 0); });
  const dW0 = Array.from({ length: 12 }, (_, q) => { const k = Math.floor(q / 4), j = q % 4; let a = 0; for (let i = 0; i < n; i++) a += xs[i * 3 + k]! * dpre[i * 4 + j]!; return a; });
  const db0 = [0, 1, 2, 3].map((j) => { let a = 0; for (let i = 0; i < n; i++) a += dpre[i * 4 + j]!; return a; });
  const headGrads = (d: number[]) => [[0, 1, 2, 3].map((j) => d.reduce((a, v, i) => a + hv[i * 4 + j]! * v, 0)), [d.reduce((a, v) => a + v, 0)]];
  const expected = [[loss], dx, dW0, db0, ...headGrads(dA), ...headGrads(dB), ...headGrads(dC)];
  const got = [value, ...grads].map((t) => Array.from(t.dataSync()));
  const names = ['loss', 'dx', 'dW0', 'db0', 'dW1', 'db1', 'dW2', 'db2', 'dW3', 'db3'];
  expected.forEach((e, k) => {
    assert.equal(got[k]!.length, e.length, names[k]);
    e.forEach((v, i) => assert.ok(Math.abs(got[k]![i]! - v) <= 1e-5 * Math.max(1, Math.abs(v)), `${names[k]}[${i}]: ${got[k]![i]} vs ${v}`));
  });
  tf.dispose([x, value, ...grads, ...weights, ...params]);
});

