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
import { nativeTraining, programForward } from '../src/models/dense-program-train.js';
import { Trainer } from '../src/train/trainer.js';
import { RunFolder } from '../src/runs/folder.js';
import { Rng } from '../src/base/rng.js';
import { benchConfig, randomBatch } from '../bench/reference-model.js';
import { resflowBundle, THREE_TASKS } from './helpers/resflow.js';
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
        for (const tasks of [undefined, THREE_TASKS]) {
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
  const weightsAfter = async (useProgram: boolean): Promise<Float32Array[]> => {
    const config = benchConfig(300);
    config.model = { ...config.model, hidden: [40, 12] } as typeof config.model;
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
});

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
