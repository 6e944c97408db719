/**
 * The model registry: shapes, gradients reaching every weight, each model's defining structure
 * (ESMM's product, AITM's transfer and calibration, PLE = CGC, MMoE/OMoE gates), cost helpers, and
 * one CLI training epoch per config in configs/models/.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import type { ExperimentConfig } from '../src/config/experiment.js';
import { buildBundle, disposeBundle, type ModelBundle } from '../src/models/bundle.js';
import type { ForwardResult } from '../src/models/registry.js';
import { modelRegistry } from '../src/models/registry.js';
import { logitOfProduct } from '../src/models/esmm.js';
import { countParameters, scoringMicrosPer1000, scoringTimes } from '../src/models/cost.js';
import { ConfigError } from '../src/base/errors.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

before(async () => {
  await initBackend('wasm');
});

/** Small settings per model, so the unit tests run in milliseconds. */
const SMALL: Record<string, Record<string, unknown>> = {
  resflow: { hidden: [8, 6] },
  shared_bottom: { bottom: [8], hidden: [6] },
  omoe: { experts: 3, expert_hidden: [8], hidden: [6] },
  mmoe: { experts: 3, expert_hidden: [8], hidden: [6] },
  ple: { levels: 2, shared_experts: 2, task_experts: 2, expert_hidden: [8], hidden: [6] },
  esmm: { hidden: [8, 6] },
  aitm: { hidden: [8, 6], attention_dim: 5 },
  two_tower: {
    user_tower: { features: ['user_id', 'query_category', 'user_recent_categories'], hidden: [8] },
    item_tower: { features: ['item_id', 'item_category', 'item_hist_ctr'], hidden: [8, 6] },
    output_dim: 5,
  },
  cold: { features: ['query_category', 'item_id', 'item_hist_ctr'], hidden: [8, 6] },
};
const MODELS = Object.keys(SMALL);

const THREE_TASKS = `  - { name: ctr, label: click }
  - { name: ctcvr, label: purchase }
  - { name: actr, label: all_click }
`;

function configFor(type: string, model: Record<string, unknown> = {}, tasks?: string): ExperimentConfig {
  const section = { type, embedding_dim: 4, activation: 'prelu', ...SMALL[type], ...model };
  let yaml = tinyConfigYaml().replace(/^model: .*$/m, `model: ${JSON.stringify(section)}`);
  if (tasks) yaml = yaml.replace(/^tasks:\n(?: {2}- .*\n)+/m, `tasks:\n${tasks}`);
  return loadExperiment(writeFile(tempDir(), 'exp.yaml', yaml)).config;
}

function bundleFor(type: string, model: Record<string, unknown> = {}, tasks?: string): ModelBundle {
  return buildBundle(configFor(type, model, tasks));
}

const input = (b: ModelBundle, rows = 16, seed = 3) => tf.randomNormal([rows, b.tables.inputDim], 0, 1, 'float32', seed) as tf.Tensor2D;
const infer = (b: ModelBundle, x: tf.Tensor2D): ForwardResult => b.model.forward(x, { training: false, dropoutSeed: 0 });
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const maxAbsDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const param = (b: ModelBundle, name: string) => {
  const v = b.params.variables.get(name);
  assert.ok(v, `parameter ${name} exists`);
  return v;
};

/** Sum of |gradient| per trainable parameter (by logical name) of a scalar built from the forward pass. */
function gradNorms(b: ModelBundle, x: tf.Tensor2D, objective: (out: ForwardResult) => tf.Scalar): Map<string, number> {
  const vars = b.params.trainable;
  const { value, grads } = tf.engine().gradients(() => objective(b.model.forward(x, { training: true, dropoutSeed: 0 })), vars, undefined, true);
  const out = new Map<string, number>();
  vars.forEach((v, i) => out.set(b.params.logicalName(v.name), grads[i] ? tf.sum(tf.abs(grads[i]!)).dataSync()[0]! : 0));
  tf.dispose([value, ...grads]);
  return out;
}

// ---- every model -------------------------------------------------------------------------------

test('the registry holds every model', () => {
  assert.deepEqual(Object.keys(modelRegistry).sort(), [...MODELS].sort());
});

test('every model: one finite [B] logit per task in config order, in inference and training (batch norm, dropout)', () => {
  for (const type of MODELS) {
    for (const tasks of type === 'esmm' ? [undefined] : [undefined, THREE_TASKS]) {
      const n = tasks ? 3 : 2;
      for (const extra of [{}, { batch_norm: true, dropout: 0.2, activation: 'relu' }]) {
        const b = bundleFor(type, extra, tasks);
        const x = input(b, 12);
        for (const training of [false, true]) {
          const out = b.model.forward(x, { training, dropoutSeed: 7 });
          assert.equal(out.logits.length, n, `${type}: ${n} logits`);
          assert.equal(out.own.length, n, `${type}: ${n} own logits`);
          for (const z of [...out.logits, ...out.own]) {
            assert.deepEqual(z.shape, [12], `${type} shape`);
            assert.ok(values(z).every(Number.isFinite), `${type} finite`);
          }
          if (training && extra.batch_norm) assert.ok(out.updates.length > 0, `${type}: batch-norm moving averages updated`);
          tf.dispose([...out.updates.map((u) => u[1])]);
        }
        assert.equal(b.model.type, type);
        disposeBundle(b);
      }
    }
  }
});

test('every model: every trainable parameter gets a non-zero gradient from the sum of the task logits', () => {
  for (const type of MODELS) {
    const b = bundleFor(type);
    const g = gradNorms(b, input(b), (out) => tf.addN(out.logits.map((z) => tf.sum(z))) as tf.Scalar);
    assert.ok(g.size > 0);
    for (const [name, v] of g) assert.ok(v > 0, `${type}: ${name} gets no gradient`);
    disposeBundle(b);
  }
});

test('every model: parameter names are unique, readable paths', () => {
  for (const type of MODELS) {
    const b = bundleFor(type);
    const names = [...b.params.variables.keys()];
    assert.equal(new Set(names).size, names.length);
    for (const n of names) assert.match(n, /^[a-z][a-z0-9_]*(\/[a-z][a-z0-9_]*)+$/, `${type}: ${n}`);
    disposeBundle(b);
  }
  const mmoe = bundleFor('mmoe');
  for (const n of ['expert_0/dense_0/kernel', 'expert_2/dense_0/prelu_alpha', 'gate_ctr/kernel', 'gate_ctcvr/bias', 'tower_ctr/dense_0/kernel', 'tower_ctcvr/logit/kernel']) param(mmoe, n);
  disposeBundle(mmoe);
  const ple = bundleFor('ple');
  for (const n of ['level_0/expert_shared_1/dense_0/kernel', 'level_1/expert_ctcvr_0/dense_0/kernel', 'level_0/gate_ctr/kernel', 'level_0/gate_shared/kernel', 'tower_ctcvr/logit/bias']) param(ple, n);
  assert.equal(ple.params.variables.has('level_1/gate_shared/kernel'), false, 'no shared gate after the last level');
  disposeBundle(ple);
});

// ---- OMoE / MMoE -------------------------------------------------------------------------------

test('MMoE: one gate per task, each a softmax over the experts (rows sum to 1); the gates differ', () => {
  const b = bundleFor('mmoe');
  const out = infer(b, input(b));
  assert.deepEqual(Object.keys(out.aux!).sort(), ['gate_ctcvr', 'gate_ctr']);
  for (const g of Object.values(out.aux!)) {
    assert.deepEqual(g.shape, [16, 3]);
    const v = values(g);
    assert.ok(v.every((w) => w >= 0 && w <= 1));
    for (const s of values(tf.sum(g, 1))) assert.ok(Math.abs(s - 1) < 1e-5, `row sums to ${s}`);
  }
  assert.ok(maxAbsDiff(values(out.aux!.gate_ctr!), values(out.aux!.gate_ctcvr!)) > 1e-4, 'per-task gates are separate');
  disposeBundle(b);
});

test('OMoE: a single gate shared by all tasks', () => {
  const b = bundleFor('omoe', {}, THREE_TASKS);
  const gates = [...b.params.variables.keys()].filter((n) => n.includes('gate'));
  assert.deepEqual(gates.sort(), ['gate/bias', 'gate/kernel']);
  const out = infer(b, input(b));
  assert.deepEqual(Object.keys(out.aux!), ['gate']);
  for (const s of values(tf.sum(out.aux!.gate!, 1))) assert.ok(Math.abs(s - 1) < 1e-5);
  // The tasks see the same mixture, so with identical towers they would agree: copy tower weights.
  for (const [n, v] of b.params.variables) if (n.startsWith('tower_ctr/')) param(b, n.replace('tower_ctr/', 'tower_actr/')).assign(v);
  const again = infer(b, input(b));
  assert.deepEqual(values(again.logits[2]!), values(again.logits[0]!));
  disposeBundle(b);
});

// ---- PLE ---------------------------------------------------------------------------------------

/** A hand-written PLE/CGC forward pass (relu, no batch norm, no dropout) reading weights by name. */
function handPle(b: ModelBundle, x: tf.Tensor2D, tasks: string[], levels: number, nShared: number, nTask: number, expertLayers: number, towerLayers: number): tf.Tensor1D[] {
  const W = (n: string) => param(b, n) as tf.Tensor;
  const mlp = (h: tf.Tensor, name: string, layers: number) => {
    for (let j = 0; j < layers; j++) h = tf.relu(tf.add(tf.matMul(h as tf.Tensor2D, W(`${name}/dense_${j}/kernel`) as tf.Tensor2D), W(`${name}/dense_${j}/bias`)));
    return h;
  };
  const gate = (h: tf.Tensor, name: string) => tf.softmax(tf.add(tf.matMul(h as tf.Tensor2D, W(`${name}/kernel`) as tf.Tensor2D), W(`${name}/bias`)));
  const mix = (g: tf.Tensor, experts: tf.Tensor[]) => {
    let acc: tf.Tensor = tf.zerosLike(experts[0]!);
    experts.forEach((e, i) => (acc = tf.add(acc, tf.mul(tf.slice(g, [0, i], [-1, 1]), e))));
    return acc;
  };
  let taskIn: tf.Tensor[] = tasks.map(() => x);
  let sharedIn: tf.Tensor = x;
  for (let l = 0; l < levels; l++) {
    const shared = Array.from({ length: nShared }, (_, i) => mlp(sharedIn, `level_${l}/expert_shared_${i}`, expertLayers));
    const own = tasks.map((t, k) => Array.from({ length: nTask }, (_, i) => mlp(taskIn[k]!, `level_${l}/expert_${t}_${i}`, expertLayers)));
    const next = tasks.map((t, k) => mix(gate(taskIn[k]!, `level_${l}/gate_${t}`), [...own[k]!, ...shared]));
    if (l < levels - 1) sharedIn = mix(gate(sharedIn, `level_${l}/gate_shared`), [...own.flat(), ...shared]);
    taskIn = next;
  }
  return tasks.map((t, k) => {
    const h = mlp(taskIn[k]!, `tower_${t}`, towerLayers);
    return tf.reshape(tf.add(tf.matMul(h as tf.Tensor2D, W(`tower_${t}/logit/kernel`) as tf.Tensor2D), W(`tower_${t}/logit/bias`)), [-1]) as tf.Tensor1D;
  });
}

test('PLE with one level is a CGC: matches a hand-written CGC on the same weights, and has no shared gate', () => {
  const cgc = { levels: 1, shared_experts: 2, task_experts: 3, expert_hidden: [8, 5], hidden: [6], activation: 'relu' };
  const b = bundleFor('ple', cgc);
  assert.equal([...b.params.variables.keys()].some((n) => n.includes('gate_shared')), false);
  const x = input(b, 20);
  const out = infer(b, x);
  const hand = handPle(b, x, ['ctr', 'ctcvr'], 1, 2, 3, 2, 1);
  out.logits.forEach((z, k) => assert.ok(maxAbsDiff(values(z), values(hand[k]!)) < 1e-5, `task ${k}`));
  // task gates weigh the task's own experts and the shared ones: 3 + 2
  assert.deepEqual(out.aux!['level_0/gate_ctr']!.shape, [20, 5]);
  disposeBundle(b);
});

test('PLE with two levels: the shared gate of level 0 feeds level 1 (hand-written reference)', () => {
  const b = bundleFor('ple', { levels: 2, shared_experts: 2, task_experts: 1, expert_hidden: [7], hidden: [], activation: 'relu' }, THREE_TASKS);
  const x = input(b, 10);
  const out = infer(b, x);
  const hand = handPle(b, x, ['ctr', 'ctcvr', 'actr'], 2, 2, 1, 1, 0);
  out.logits.forEach((z, k) => assert.ok(maxAbsDiff(values(z), values(hand[k]!)) < 1e-5, `task ${k}`));
  assert.deepEqual(out.aux!['level_0/gate_shared']!.shape, [10, 3 * 1 + 2]);
  for (const g of Object.values(out.aux!)) for (const s of values(tf.sum(g, 1))) assert.ok(Math.abs(s - 1) < 1e-5);
  disposeBundle(b);
});

// ---- ESMM --------------------------------------------------------------------------------------

/** log(sigmoid(z)) and logit(p1 p2) in float64 for reference. */
const softplus = (v: number) => (v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
function refLogitOfProduct(z1: number, z2: number): number {
  const logP = -softplus(-z1) - softplus(-z2);
  const a = -softplus(z1);
  const b = -softplus(-z1) - softplus(z2);
  const m = Math.max(a, b);
  return logP - (m + Math.log1p(Math.exp(Math.min(a, b) - m)));
}

test('ESMM: logit(pCTR x pCVR) is exact and finite for extreme logits, with finite gradients', () => {
  const pairs = [
    [0, 0], [2, -3], [-7, 4], [15, 15], [30, 30], [40, 40], [100, 100], [88, -88], [-88, 88], [-100, -100],
    [60, 1e-3], [1e-3, 60], [-30, -30], [20, -0.5], [0.3, 25],
  ];
  const z1 = tf.tensor1d(pairs.map((p) => p[0]!));
  const z2 = tf.tensor1d(pairs.map((p) => p[1]!));
  const z = values(logitOfProduct(z1, z2));
  pairs.forEach(([a, b], i) => {
    assert.ok(Number.isFinite(z[i]!), `(${a}, ${b}) finite`);
    const prod = sigmoid(a!) * sigmoid(b!);
    assert.ok(Math.abs(sigmoid(z[i]!) - prod) < 1e-6, `(${a}, ${b}): sigmoid ${sigmoid(z[i]!)} vs product ${prod}`);
    const ref = refLogitOfProduct(a!, b!);
    assert.ok(Math.abs(z[i]! - ref) <= 1e-5 * Math.max(1, Math.abs(ref)), `(${a}, ${b}): logit ${z[i]} vs ${ref}`);
  });
  const g = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(logitOfProduct(u as tf.Tensor1D, v as tf.Tensor1D)))([z1, z2]);
  for (const t of g) assert.ok(values(t).every(Number.isFinite), 'finite gradients');
});

test('ESMM: sigmoid(z_ctcvr) = sigmoid(z_ctr) x sigmoid(own CVR logit), also with the towers pushed to extremes', () => {
  const b = bundleFor('esmm');
  const x = input(b, 32);
  for (const [bCtr, bCvr] of [[0, 0], [40, 40], [-40, 40], [40, -40], [-40, -40], [12, 9]]) {
    param(b, 'tower_ctr/logit/bias').assign(tf.tensor1d([bCtr!]));
    param(b, 'tower_cvr/logit/bias').assign(tf.tensor1d([bCvr!]));
    const out = infer(b, x);
    const zCtr = values(out.logits[0]!);
    const zCtcvr = values(out.logits[1]!);
    assert.deepEqual(values(out.own[0]!), zCtr, 'the CTR logit is the CTR tower\'s own');
    const zCvr = values(out.own[1]!);
    zCtcvr.forEach((z, i) => {
      assert.ok(Number.isFinite(z));
      assert.ok(Math.abs(sigmoid(z) - sigmoid(zCtr[i]!) * sigmoid(zCvr[i]!)) < 1e-6, `bias (${bCtr}, ${bCvr}) row ${i}`);
    });
  }
  disposeBundle(b);
});

test('ESMM needs exactly two tasks: a clear config error naming model.type (CLI exit code 2)', () => {
  assert.throws(() => buildBundle(configFor('esmm', {}, THREE_TASKS)), (e: unknown) => e instanceof ConfigError && /model\.type: esmm needs exactly 2 tasks/.test(e.message));
  const dir = tempDir();
  const yaml = tinyConfigYaml().replace(/^model: .*$/m, 'model: { type: esmm, embedding_dim: 4, hidden: [4] }').replace(/^tasks:\n(?: {2}- .*\n)+/m, `tasks:\n${THREE_TASKS}`);
  const r = cli(['-q', 'train', writeFile(dir, 'esmm.yaml', yaml), '--runs-dir', dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /model\.type: esmm needs exactly 2 tasks.*found 3 \(ctr, ctcvr, actr\)/);
});

// ---- AITM --------------------------------------------------------------------------------------

test('AITM: the second task depends on the first tower through the transfer path, and only through it', () => {
  const b = bundleFor('aitm');
  const x = input(b, 24);
  const base = infer(b, x);
  const z1 = values(base.logits[0]!);
  const z2 = values(base.logits[1]!);
  const attention = base.aux!.ait_ctcvr!;
  assert.deepEqual(attention.shape, [24, 2]);
  for (const s of values(tf.sum(attention, 1))) assert.ok(Math.abs(s - 1) < 1e-5);

  const first = param(b, 'tower_ctr/dense_0/kernel');
  const saved = first.clone();
  const perturb = () => first.assign(tf.add(saved, tf.randomNormal(saved.shape, 0, 0.5, 'float32', 11)));

  // perturbing the first tower moves the second task's output
  perturb();
  assert.ok(maxAbsDiff(values(infer(b, x).logits[1]!), z2) > 1e-3, 'second output follows the first tower');
  first.assign(saved);
  // the second tower never feeds back into the first task
  const second = param(b, 'tower_ctcvr/dense_0/kernel');
  const saved2 = second.clone();
  second.assign(tf.mul(saved2, 3));
  assert.deepEqual(values(infer(b, x).logits[0]!), z1);
  second.assign(saved2);
  assert.deepEqual(values(infer(b, x).logits[1]!), z2, 'restored');

  // cut the transfer (h's weights to zero: p = act(0) = 0): the first tower no longer matters
  for (const n of ['ait_ctcvr/transfer/kernel', 'ait_ctcvr/transfer/bias']) {
    const v = param(b, n);
    v.assign(tf.zerosLike(v));
  }
  const cut = values(infer(b, x).logits[1]!);
  perturb();
  assert.deepEqual(values(infer(b, x).logits[1]!), cut, 'with the transfer cut, the first tower does not reach the second task');
  disposeBundle(b);
});

test('AITM: the calibration loss is weight x mean(max(p2 - p1, 0)) in training only; weight 0 turns it off', () => {
  const b = bundleFor('aitm', { calibration_weight: 0.3 });
  const x = input(b, 64);
  // push the second task above the first on some rows so the constraint is active
  param(b, 'tower_ctcvr/logit/bias').assign(tf.tensor1d([0.5]));
  const out = b.model.forward(x, { training: true, dropoutSeed: 0 });
  assert.ok(out.extraLoss, 'training returns extraLoss');
  const p1 = values(tf.sigmoid(out.logits[0]!));
  const p2 = values(tf.sigmoid(out.logits[1]!));
  const expected = (0.3 * p2.reduce((s, p, i) => s + Math.max(p - p1[i]!, 0), 0)) / p1.length;
  assert.ok(expected > 0);
  assert.ok(Math.abs(out.extraLoss.dataSync()[0]! - expected) < 1e-6, `${out.extraLoss.dataSync()[0]} vs ${expected}`);
  assert.equal(infer(b, x).extraLoss, undefined, 'no extra loss at inference');
  // its gradient reaches both towers
  const g = gradNorms(b, x, (o) => o.extraLoss!);
  assert.ok(g.get('tower_ctr/dense_0/kernel')! > 0 && g.get('tower_ctcvr/dense_0/kernel')! > 0);
  disposeBundle(b);
  const off = bundleFor('aitm', { calibration_weight: 0 });
  assert.equal(off.model.forward(input(off), { training: true, dropoutSeed: 0 }).extraLoss, undefined);
  disposeBundle(off);
  // three tasks chain the transfer: task 3 reads task 2's AIT output
  const three = bundleFor('aitm', {}, THREE_TASKS);
  param(three, 'ait_actr/transfer/kernel');
  assert.deepEqual(three.params.variables.get('ait_actr/transfer/kernel')!.shape, [5, 6]);
  disposeBundle(three);
});

// ---- cost --------------------------------------------------------------------------------------

test('cost: parameter counts match the architecture; scoring time is a positive median', async () => {
  const b = bundleFor('mmoe', { activation: 'relu', batch_norm: true });
  const d = b.tables.inputDim;
  // experts: 3 x (d*8 + 8 + bn gamma/beta 2*8); gates: 2 x (d*3 + 3); towers: 2 x (8*6 + 6 + 2*6 + 6 + 1)
  const trainable = 3 * (d * 8 + 8 + 16) + 2 * (d * 3 + 3) + 2 * (8 * 6 + 6 + 12 + 6 + 1);
  assert.equal(countParameters(b.params), trainable);
  assert.equal(countParameters(b.params, { includeNonTrainable: true }), trainable + 3 * 16 + 2 * 12);
  const t = await scoringTimes(b, undefined, { batches: 5, rows: 200, warmup: 1 });
  assert.equal(t.samples.length, 5);
  assert.ok(t.medianMicrosPer1000 > 0 && Number.isFinite(t.medianMicrosPer1000));
  const bare = await scoringMicrosPer1000(b.model, d, { batches: 3, rows: 100, warmup: 1 });
  assert.ok(bare > 0);
  await assert.rejects(() => scoringMicrosPer1000(b.model), /inputDim/);
  disposeBundle(b);
});

// ---- CLI: every config in configs/models/ trains -----------------------------------------------

for (const type of MODELS) {
  test(`CLI: configs/models/${type}.yaml trains one epoch`, () => {
    const dir = tempDir();
    const r = cli(['-q', 'train', `configs/models/${type}.yaml`, '--runs-dir', dir, '--set', 'train.epochs=1']);
    assert.equal(r.code, 0, r.stderr);
    const run = r.stdout.trim().split('\n').pop()!;
    assert.ok(run.includes(`models-${type}`), run);
    const metrics = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as { name: string; task: string; split: string; value: number }[];
    const aucs = metrics.filter((m) => m.name === 'auc' && m.split === 'eval');
    assert.equal(aucs.length, 2);
    for (const m of aucs) assert.ok(m.value > 0.5 && m.value < 1, `${type} ${m.task} auc ${m.value}`);
    assert.match(readFileSync(path.join(run, 'config.yaml'), 'utf8'), new RegExp(`type: ${type}`));
  });
}
