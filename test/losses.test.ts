import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { lossRegistry, taskLoss, weightedObjective, type LossInputs } from '../src/train/losses.js';
import type { LossConfig } from '../src/config/experiment.js';
import { Rng } from '../src/base/rng.js';
import { assertSameBits } from './helpers/bits.js';

before(async () => {
  await initBackend('wasm');
});

/** One-hot request membership [Q, B] from request ids. */
function membership(req: number[]): tf.Tensor2D {
  const qs = [...new Set(req)];
  return tf.tensor2d(qs.flatMap((q) => req.map((r) => (r === q ? 1 : 0))), [qs.length, req.length]);
}

function inputs(z: number[], y: number[], req: number[], extra: Partial<LossInputs> = {}): LossInputs {
  return { logits: tf.tensor1d(z), labels: tf.tensor1d(y), mask: tf.tensor1d(z.map(() => 1)), posWeight: 1, requests: membership(req), ...extra };
}

const listwise = (i: LossInputs) => lossRegistry.listwise(i, { type: 'listwise', weight: 1 }).dataSync()[0]!;

/** Hand computation of the multi-positive loss of docs/domain.md (Samples and losses), normalised by counted positives. */
function handListwise(z: number[], y: number[], req: number[]): number {
  let total = 0;
  let positives = 0;
  for (const q of new Set(req)) {
    const idx = req.map((r, i) => (r === q ? i : -1)).filter((i) => i >= 0);
    const neg = idx.filter((i) => y[i] === 0);
    const pos = idx.filter((i) => y[i] === 1);
    if (neg.length === 0 || pos.length === 0) continue;
    const negSum = neg.reduce((s, j) => s + Math.exp(z[j]!), 0);
    for (const i of pos) {
      total += -Math.log(Math.exp(z[i]!) / (Math.exp(z[i]!) + negSum));
      positives++;
    }
  }
  return positives ? total / positives : 0;
}

test('list-wise loss equals the hand computation', () => {
  // Request 7: positives 0 and 2, negatives 1 and 3. Positive i: -log(e^{z_i} / (e^{z_i} + e^{0.5} + e^{-1})).
  const z = [2, 0.5, 1, -1];
  const y = [1, 0, 1, 0];
  const byHand = (-Math.log(Math.exp(2) / (Math.exp(2) + Math.exp(0.5) + Math.exp(-1))) - Math.log(Math.exp(1) / (Math.exp(1) + Math.exp(0.5) + Math.exp(-1)))) / 2;
  assert.ok(Math.abs(listwise(inputs(z, y, [7, 7, 7, 7])) - byHand) < 1e-5);
  assert.ok(Math.abs(handListwise(z, y, [7, 7, 7, 7]) - byHand) < 1e-12);
});

test('positives never compete with each other', () => {
  // Raising another positive's logit leaves a positive's term unchanged: the loss of positive 0
  // only depends on z_0 and the negatives.
  const base = listwise(inputs([2, 0.5, 1, -1], [1, 0, 1, 0], [1, 1, 1, 1]));
  const other = listwise(inputs([2, 0.5, 5, -1], [1, 0, 1, 0], [1, 1, 1, 1]));
  const term = (zi: number) => -Math.log(Math.exp(zi) / (Math.exp(zi) + Math.exp(0.5) + Math.exp(-1)));
  assert.ok(Math.abs(base - (term(2) + term(1)) / 2) < 1e-5);
  assert.ok(Math.abs(other - (term(2) + term(5)) / 2) < 1e-5);
});

test('requests with no positive or no negative add nothing; masks exclude rows', () => {
  const z = [1, 2, 0.3, -0.2, 0.7, 1.5, -2];
  const y = [1, 1, 0, 0, 1, 0, 1];
  const req = [1, 1, 2, 2, 3, 3, 4]; // request 1: only positives; 2: only negatives; 3: both; 4: one positive
  const got = listwise(inputs(z, y, req));
  const only3 = -Math.log(Math.exp(0.7) / (Math.exp(0.7) + Math.exp(1.5)));
  assert.ok(Math.abs(got - only3) < 1e-5, `${got} vs ${only3}`);
  assert.ok(Math.abs(handListwise(z, y, req) - only3) < 1e-12);
  // masking out request 3's negative leaves no request that counts
  const masked = inputs(z, y, req, { mask: tf.tensor1d([1, 1, 1, 1, 1, 0, 1]) });
  assert.equal(listwise(masked), 0);
});

test('list-wise loss matches the hand computation on random batches and is stable for large logits', () => {
  let seed = 3;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let trial = 0; trial < 5; trial++) {
    const n = 40;
    const z = Array.from({ length: n }, () => (rnd() - 0.5) * 8);
    const y = Array.from({ length: n }, () => (rnd() < 0.3 ? 1 : 0));
    const req = Array.from({ length: n }, (_, i) => Math.floor(i / 7));
    assert.ok(Math.abs(listwise(inputs(z, y, req)) - handListwise(z, y, req)) < 1e-4);
  }
  const big = listwise(inputs([80, 60, 90], [1, 0, 0], [1, 1, 1]));
  assert.ok(Number.isFinite(big) && Math.abs(big - (Math.log(Math.exp(80 - 90) + Math.exp(60 - 90) + 1) - (80 - 90))) < 1e-3);
});

test('gradient of the list-wise loss matches finite differences', () => {
  const z0 = [0.3, -0.4, 1.1, 0.2, -0.9, 0.6, 0.05];
  const y = [1, 0, 1, 0, 0, 1, 0];
  const req = [1, 1, 1, 2, 2, 2, 2];
  const f = (z: tf.Tensor) => lossRegistry.listwise(inputs(z0, y, req, { logits: z as tf.Tensor1D }), { type: 'listwise', weight: 1 });
  const g = tf.grad(f)(tf.tensor1d(z0)).dataSync();
  const h = 1e-3;
  for (let i = 0; i < z0.length; i++) {
    const up = [...z0];
    const down = [...z0];
    up[i]! += h;
    down[i]! -= h;
    const numeric = (handListwise(up, y, req) - handListwise(down, y, req)) / (2 * h);
    assert.ok(Math.abs(g[i]! - numeric) < 2e-3, `d/dz${i}: ${g[i]} vs ${numeric}`);
  }
});

test('pointwise loss: weighted sigmoid cross-entropy over the task\'s rows', () => {
  const z = [0.5, -1, 2];
  const y = [1, 0, 0];
  const i = { ...inputs(z, y, [1, 1, 1]), posWeight: 3, mask: tf.tensor1d([1, 1, 0]) };
  const sp = (x: number) => Math.log1p(Math.exp(x));
  const byHand = (3 * sp(-0.5) + sp(-1)) / 2;
  assert.ok(Math.abs(lossRegistry.pointwise(i, { type: 'pointwise', weight: 1 }).dataSync()[0]! - byHand) < 1e-6);
});

test('pointwise loss as one op: the tape\'s value and gradient, bit for bit, and far fewer recorded kernels', async () => {
  // Logits past softplus's thresholds (|z| > ~13.9) both ways, exact zeros, masked rows, an empty
  // sample space, positive weights 1 and 3.5, and an upstream gradient that is not 1.
  const r = new Rng(7);
  const n = 257;
  const z = Array.from({ length: n }, (_, i) => (i % 17 === 0 ? (i % 2 ? 40 : -40) : i % 13 === 0 ? 0 : (r.next() - 0.5) * 24));
  const y = z.map(() => (r.next() < 0.3 ? 1 : 0));
  const partial = z.map((_, i) => (i % 5 === 0 ? 0 : 1));
  const cfg: LossConfig = { type: 'pointwise', weight: 1 };
  for (const [posWeight, mask, upstream] of [[1, partial, 1], [3.5, partial, 0.37], [1, z.map(() => 0), 2], [2, z.map(() => 1), -1.5]] as const) {
    const ins = (logits: tf.Tensor): LossInputs => ({ logits: logits as tf.Tensor1D, labels: tf.tensor1d(y), mask: tf.tensor1d([...mask]), posWeight });
    const zt = tf.variable(tf.tensor1d(z));
    const taped: { value: tf.Tensor; grads: tf.Tensor[] } = tf.engine().gradients((): tf.Scalar => tf.mul(lossRegistry.pointwise(ins(zt), cfg), upstream) as tf.Scalar, [zt], undefined, true);
    const keep: tf.Tensor[] = [];
    const asOp: { value: tf.Tensor; grads: tf.Tensor[] } = tf.engine().gradients((): tf.Scalar => tf.mul(taskLoss(ins(zt), cfg, keep), upstream) as tf.Scalar, [zt], undefined, true);
    const what = `pos_weight ${posWeight}, ${mask.filter((m) => m).length} rows in the sample space, upstream ${upstream}`;
    assertSameBits(asOp.value.dataSync() as Float32Array, taped.value.dataSync() as Float32Array, `loss, ${what}`);
    assertSameBits(asOp.grads[0]!.dataSync() as Float32Array, taped.grads[0]!.dataSync() as Float32Array, `gradient, ${what}`);
    // and it is the gradient: central differences on a few rows (in float64, of the float32 loss's formula)
    const g = asOp.grads[0]!.dataSync();
    const sp = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    const rows = Math.max(mask.reduce((a, b) => a + b, 0), 1);
    const loss = (zz: number[]) => (upstream * zz.reduce((s, v, i) => s + mask[i]! * (posWeight * y[i]! * sp(-v) + (1 - y[i]!) * sp(v)), 0)) / rows;
    for (const i of [1, 2, 3, 5, 17]) {
      const up = [...z], down = [...z];
      up[i]! += 1e-3;
      down[i]! -= 1e-3;
      const numeric = (loss(up) - loss(down)) / 2e-3;
      assert.ok(Math.abs(g[i]! - numeric) < 1e-4 * Math.max(1, Math.abs(numeric)), `d/dz${i}: ${g[i]} vs ${numeric} (${what})`);
    }
    tf.dispose([zt, taped.value, ...taped.grads, asOp.value, ...asOp.grads, ...keep]);
  }
  // The op records one tape node where the loss recorded one per kernel, each with copies of its inputs.
  const recorded = async (f: (z: tf.Tensor) => tf.Scalar) => {
    const zt = tf.variable(tf.tensor1d(z));
    const profile = await tf.profile(() => {
      const { value, grads } = tf.engine().gradients(() => f(zt), [zt], undefined, true);
      tf.dispose([value, ...grads]);
    });
    zt.dispose();
    return profile.kernels.filter((k) => k.name === 'Identity').length;
  };
  const ins = (logits: tf.Tensor): LossInputs => ({ logits: logits as tf.Tensor1D, labels: tf.tensor1d(y), mask: tf.tensor1d(partial), posWeight: 2 });
  const keep: tf.Tensor[] = [];
  const [viaTape, viaOp] = [await recorded((zt) => lossRegistry.pointwise(ins(zt), cfg)), await recorded((zt) => taskLoss(ins(zt), cfg, keep))];
  tf.dispose(keep);
  assert.ok(viaTape >= 10 && viaOp === 0, `tape copies: loss differentiated by the tape ${viaTape}, as one op ${viaOp}`);
});

test('fixed-weight objective as one op: the term-by-term sum\'s total, task losses and gradients, bit for bit', () => {
  // three tasks with one, two and three terms; weights that round in float32
  const values = [[0.6931472], [1.25, 0.3333333], [2.5e-3, 7.1, 0.0999]];
  const lossWeights = [[1], [0.3, 1.7], [0.1, 2, 0.45]];
  const taskWeights = [1, 0.37, 2.9];
  const vars = values.map((ls) => ls.map((v) => tf.variable(tf.scalar(v))));
  const termByTerm = tf.engine().gradients(
    () => {
      let total = tf.scalar(0);
      vars.forEach((ls, k) => {
        let taskLoss = tf.scalar(0);
        ls.forEach((L, l) => (taskLoss = tf.add(taskLoss, tf.mul(L, lossWeights[k]![l]!))));
        total = tf.add(total, tf.mul(taskLoss, taskWeights[k]!));
      });
      return tf.mul(total, 1.3) as tf.Scalar;
    },
    vars.flat(),
  );
  let perTask: tf.Scalar[] = [];
  const asOp = tf.engine().gradients(
    () => {
      const o = weightedObjective(vars as tf.Scalar[][], taskWeights.map((weight, k) => ({ weight, losses: lossWeights[k]!.map((w) => ({ weight: w })) })));
      perTask = o.perTask;
      return tf.mul(o.total, 1.3) as tf.Scalar;
    },
    vars.flat(),
  );
  assertSameBits(asOp.value.dataSync() as Float32Array, termByTerm.value.dataSync() as Float32Array, 'total');
  asOp.grads.forEach((g, i) => assertSameBits(g.dataSync() as Float32Array, termByTerm.grads[i]!.dataSync() as Float32Array, `gradient ${i}`));
  // task k's loss: Σ_l lw_kl · L_kl, by hand in float32
  perTask.forEach((t, k) => {
    const byHand = values[k]!.reduce((s, v, l) => Math.fround(s + Math.fround(Math.fround(v) * Math.fround(lossWeights[k]![l]!))), 0);
    assert.equal(t.dataSync()[0], byHand, `task ${k}`);
  });
  // and the gradients are the weights' products: 1.3 · w_k · lw_kl (float32, in that order)
  let i = 0;
  vars.forEach((ls, k) => ls.forEach((_, l) => assert.equal(asOp.grads[i++]!.dataSync()[0], Math.fround(Math.fround(Math.fround(1.3) * Math.fround(taskWeights[k]!)) * Math.fround(lossWeights[k]![l]!)))));
  tf.dispose([...vars.flat(), asOp.value, ...asOp.grads, termByTerm.value, ...termByTerm.grads, ...perTask]);
});

test('distillation: soft-label softmax cross-entropy over each request\'s exposures', () => {
  const z = [1, 0, -1, 2, 0.5];
  const teacher = [0.2, 0.6, 0.9, 0.3, 0.1];
  const exposure = [1, 1, 0, 1, 1]; // row 2 is not an exposure: ignored
  const req = [1, 1, 1, 2, 2];
  const T = 2;
  const cfg: LossConfig = { type: 'distill', weight: 1, teacher: 'ctr', temperature: T };
  const got = lossRegistry.distill(
    inputs(z, [0, 0, 0, 0, 0], req, { exposure: tf.tensor1d(exposure), teacher: new Map([['ctr', tf.tensor1d(teacher)]]) }),
    cfg,
  ).dataSync()[0]!;
  const ce = (rows: number[]) => {
    const tSum = rows.reduce((s, i) => s + teacher[i]!, 0);
    const logZ = Math.log(rows.reduce((s, i) => s + Math.exp(z[i]! / T), 0));
    return rows.reduce((s, i) => s - (teacher[i]! / tSum) * (z[i]! / T - logZ), 0);
  };
  const byHand = (ce([0, 1]) + ce([3, 4])) / 2;
  assert.ok(Math.abs(got - byHand) < 1e-5, `${got} vs ${byHand}`);
});
