/**
 * The stacked objective (src/train/stacked-objective.ts) against the path it stands for: taskLoss's
 * pointwise op per task, weightedObjective, and tfjs's tape differentiating them, bit for bit; and
 * against the formula in float64, as an independent check of what both compute.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { singlePointwiseTasks, taskLoss, weightedObjective } from '../src/train/losses.js';
import { stackedPointwiseObjective } from '../src/train/stacked-objective.js';
import { Rng } from '../src/base/rng.js';
import { assertSameBits } from './helpers/bits.js';

before(async () => {
  await initBackend('wasm');
});

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));

test('stacked objective: the per-task pointwise ops and fixed-weight objective\'s total, task losses and logit gradients, bit for bit', () => {
  // 1, 2 and 3 tasks; logits past softplus's thresholds, zeros, masked rows, one task with an empty
  // sample space, pos_weight and weights that round in float32, an upstream gradient that is not 1
  for (const T of [1, 2, 3]) {
    for (const n of [1, 257, 1024]) {
      const r = new Rng(100 * T + n);
      const z = Array.from({ length: T * n }, (_, i) => (i % 17 === 0 ? (i % 2 ? 40 : -40) : i % 13 === 0 ? 0 : (r.next() - 0.5) * 24));
      const y = z.map(() => (r.next() < 0.3 ? 1 : 0));
      const mask = z.map((_, i) => (T === 3 && i >= 2 * n ? 0 : r.next() < 0.8 ? 1 : 0));
      const tasks = Array.from({ length: T }, (_, k) => ({ weight: [1.3, 0.37, 2.9][k]!, pos_weight: [1, 3.5, 1.1][k]!, losses: [{ type: 'pointwise' as const, weight: [0.7, 0.3, 0.45][k]! }] }));
      assert.ok(singlePointwiseTasks(tasks));
      const row = (a: number[], k: number) => tf.tensor1d(a.slice(k * n, (k + 1) * n));
      const zt = tf.variable(tf.tensor2d(z, [T, n]));
      const keep: tf.Tensor[] = [];
      let perTaskTape: tf.Scalar[] = [];
      const tape = tf.engine().gradients(
        () => {
          // (one task: a reshape, as the training program does; tfjs cannot differentiate a one-output Unpack)
          const logits = T === 1 ? [tf.reshape(zt, [n]) as tf.Tensor1D] : (tf.unstack(zt) as tf.Tensor1D[]);
          const terms = tasks.map((t, k) => [taskLoss({ logits: logits[k]!, labels: row(y, k), mask: row(mask, k), posWeight: t.pos_weight }, t.losses[0]!, keep)]);
          const o = weightedObjective(terms, tasks);
          perTaskTape = o.perTask;
          return tf.mul(o.total, 1.3) as tf.Scalar;
        },
        [zt],
      );
      const o = stackedPointwiseObjective(zt, { labels: Float32Array.from(y), masks: Float32Array.from(mask) }, tasks);
      const what = `${T} task(s), ${n} rows`;
      // the tape's value is total·1.3 (Multiply), and the total's gradient it hands on is 1·1.3
      assertSameBits(Float32Array.of(Math.fround(o.total * Math.fround(1.3))), tape.value.dataSync() as Float32Array, `total, ${what}`);
      assertSameBits(o.grad(Math.fround(1.3)), tape.grads[0]!.dataSync() as Float32Array, `logit gradients, ${what}`);
      assertSameBits(o.perTask, Float32Array.from(perTaskTape.map((t) => t.dataSync()[0]!)), `task losses, ${what}`);

      // Independently, in float64: L_k = Σ_i m·(pw·y·softplus(−z) + (1 − y)·softplus(z)) / max(Σ m, 1),
      // total = Σ_k w_k·lw_k·L_k; ∂total/∂z = w·lw·m·((1 − y)·σ(z) − pw·y·σ(−z)) / max(Σ m, 1)
      let total = 0;
      const dz = new Float64Array(T * n);
      tasks.forEach((t, k) => {
        let loss = 0;
        let rows = 0;
        for (let i = k * n; i < (k + 1) * n; i++) {
          loss += mask[i]! * (t.pos_weight * y[i]! * softplus(-z[i]!) + (1 - y[i]!) * softplus(z[i]!));
          rows += mask[i]!;
        }
        rows = Math.max(rows, 1);
        const scale = t.weight * t.losses[0]!.weight;
        assert.ok(Math.abs(o.perTask[k]! - (t.losses[0]!.weight * loss) / rows) <= 1e-5 * (1 + Math.abs(loss / rows)), `task ${k} loss in float64, ${what}`);
        total += (scale * loss) / rows;
        for (let i = k * n; i < (k + 1) * n; i++) dz[i] = (scale * mask[i]! * ((1 - y[i]!) * sigmoid(z[i]!) - t.pos_weight * y[i]! * sigmoid(-z[i]!))) / rows;
      });
      assert.ok(Math.abs(o.total - total) <= 1e-5 * (1 + Math.abs(total)), `total ${o.total} vs ${total} in float64, ${what}`);
      const g = o.grad(1);
      dz.forEach((d, i) => assert.ok(Math.abs(g[i]! - d) <= 1e-6 + 1e-5 * Math.abs(d), `gradient ${i}: ${g[i]} vs ${d} in float64, ${what}`));
      tf.dispose([zt, tape.value, ...tape.grads, ...perTaskTape, ...keep]);
    }
  }
  assert.equal(singlePointwiseTasks([{ losses: [{ type: 'pointwise', weight: 1 }, { type: 'pointwise', weight: 2 }] }]), false);
  assert.equal(singlePointwiseTasks([{ losses: [{ type: 'listwise', weight: 1 }] }]), false);
});

/** The stacked objective and the per-task ops under the tape on the same rows: [total, task losses, logit gradients] each. */
function bothWays(z: number[], y: number[], T: number): [Float32Array[], Float32Array[]] {
  const n = z.length / T;
  const tasks = Array.from({ length: T }, (_, k) => ({ weight: 0.8 + k, pos_weight: 2.5, losses: [{ type: 'pointwise' as const, weight: 1.1 }] }));
  const mask = z.map(() => 1);
  const zt = tf.variable(tf.tensor2d(z, [T, n]));
  const keep: tf.Tensor[] = [];
  let perTask: tf.Scalar[] = [];
  const tape = tf.engine().gradients(() => {
    const logits = tf.unstack(zt) as tf.Tensor1D[];
    const o = weightedObjective(tasks.map((t, k) => [taskLoss({ logits: logits[k]!, labels: tf.tensor1d(y.slice(k * n, (k + 1) * n)), mask: tf.tensor1d(mask.slice(k * n, (k + 1) * n)), posWeight: t.pos_weight }, t.losses[0]!, keep)]), tasks);
    perTask = o.perTask;
    return o.total;
  }, [zt]);
  const o = stackedPointwiseObjective(zt, { labels: Float32Array.from(y), masks: Float32Array.from(mask) }, tasks);
  const out: [Float32Array[], Float32Array[]] = [
    [Float32Array.of(o.total), o.perTask, o.grad(1)],
    [tape.value.dataSync() as Float32Array, Float32Array.from(perTask.map((t) => t.dataSync()[0]!)), tape.grads[0]!.dataSync() as Float32Array],
  ];
  tf.dispose([zt, tape.value, ...tape.grads, ...perTask, ...keep]);
  return out;
}

test('stacked objective: labels other than 0 and 1, and infinite logits, take both sides of softplus and sigmoid, with the tape\'s bits', () => {
  const r = new Rng(77);
  const z = Array.from({ length: 2 * 41 }, () => (r.next() - 0.5) * 20);
  // soft labels: both terms of a row count
  const soft = z.map((_, i) => [0, 1, 0.5, 0.25][i % 4]!);
  // an infinite logit on the side its row reads: the loss is infinite, the gradient finite
  const inf = [...z];
  inf[3] = Infinity;
  inf[50] = -Infinity;
  const hard = z.map((_, i) => (i === 50 || i % 5 === 0 ? 1 : 0));
  for (const [zs, ys, what] of [[z, soft, 'soft labels'], [inf, hard, 'infinite logits']] as const) {
    const [stacked, tape] = bothWays([...zs], [...ys], 2);
    stacked.forEach((a, i) => assertSameBits(a, tape[i]!, `${what}: ${['total', 'task losses', 'logit gradients'][i]}`));
  }
  // on the side a row does not read, ∞ makes the tape's 0·softplus(∞) NaN, and so the stacked loss
  const nan = [...z];
  nan[0] = Infinity;
  const [stacked, tape] = bothWays(nan, z.map((_, i) => (i === 0 ? 1 : 0)), 2);
  assert.ok(Number.isNaN(tape[0]![0]!) && Number.isNaN(stacked[0]![0]!), 'a NaN loss both ways');
});

test('stacked objective: logits and targets of different shapes are refused', () => {
  const z = tf.zeros([2, 3]) as tf.Tensor2D;
  const task = { weight: 1, pos_weight: 1, losses: [{ weight: 1 }] };
  assert.throws(() => stackedPointwiseObjective(z, { labels: new Float32Array(6), masks: new Float32Array(6) }, [task]), /logits \[2, 3\] for 1 tasks/);
  assert.throws(() => stackedPointwiseObjective(z, { labels: new Float32Array(5), masks: new Float32Array(6) }, [task, task]), /5 labels/);
  z.dispose();
});
