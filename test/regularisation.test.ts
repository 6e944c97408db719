/**
 * Regularisation, learning-rate schedules and multi-task loss balancing (README.md, "Regularisation
 * and schedules"): each update against arithmetic done here by hand on a small case, then CLI runs
 * on the tiny data with all of them on, and a resume after an interrupt that must end bit-identical.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { createSparseKernels, JsSparseKernels, sparseStep, type TableData } from '../src/kernels/sparse-kernels.js';
import { RowState } from '../src/kernels/row-state.js';
import type { ExperimentConfig, LrScheduleConfig, OptimizerConfig } from '../src/config/experiment.js';
import { loadConfig } from '../src/config/load.js';
import { decayWeights, setLearningRate } from '../src/train/dense-optimizer.js';
import { lrFactor, plateauDecays, LrScheduleCallback, type SchedulePoint } from '../src/train/lr-schedule.js';
import { gradnormStep, LossBalancer } from '../src/train/loss-balancing.js';
import { Interrupted } from '../src/base/errors.js';
import { trainRun } from '../src/app/train-run.js';
import { silentReporter } from '../src/app/reporter.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

before(async () => {
  await initBackend('wasm');
});

const adam: OptimizerConfig = { type: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, initial_accumulator: 0.1 };
const close = (a: number, b: number, what: string, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

// ---- embedding L2, lazy -------------------------------------------------------------------------

test('lazy Adam with embedding L2: the two touched rows get g + l2 x w, the others stay as they were', () => {
  // a 4 x 2 table; the batch of three examples touches rows 1 and 3 (row 3 twice)
  const w0 = [0.5, -0.25, 0.125, 0.75, -0.5, 0.25, 1.0, -1.0];
  const table: TableData = { weights: Float32Array.from(w0), state: new RowState(4, 2, 2), rows: 4, dim: 2, width: 1, mean: false, offset: 0 };
  const ids = [Int32Array.from([1, 3, 3])];
  const gradX = Float32Array.from([0.2, -0.4, 0.1, 0.3, 0.05, -0.15]);
  const l2 = 0.5;
  new JsSparseKernels().update([table], ids, 3, gradX, 2, sparseStep(adam, 1, adam.lr, l2));
  // by hand: row 1: g = (0.2 + 0.5 x 0.125, -0.4 + 0.5 x 0.75) = (0.2625, -0.025);
  //          row 3: g = (0.1 + 0.05 + 0.5 x 1.0, 0.3 - 0.15 + 0.5 x -1.0) = (0.65, -0.35)
  // step 1: m = 0.1 g, v = 0.001 g^2, w' = w - lr_t m / (sqrt(v) + eps_hat), lr_t = lr sqrt(0.001) / 0.1, eps_hat = eps sqrt(0.001)
  const g: Record<number, [number, number]> = { 1: [0.2625, -0.025], 3: [0.65, -0.35] };
  const lrT = (0.01 * Math.sqrt(0.001)) / 0.1;
  const epsHat = 1e-8 * Math.sqrt(0.001);
  for (let r = 0; r < 4; r++) for (let d = 0; d < 2; d++) {
    const i = r * 2 + d;
    if (!(r in g)) {
      assert.equal(table.weights[i], Math.fround(w0[i]!), `untouched row ${r} keeps its weight`);
      assert.equal(table.state!.slotOf[r], 0, `untouched row ${r} holds no state`);
      continue;
    }
    const gi = g[r]![d]!;
    const m = 0.1 * gi;
    const v = 0.001 * gi * gi;
    const st = table.state!.rowState(r);
    close(st[d]!, m, `m[${r},${d}]`);
    close(st[2 + d]!, v, `v[${r},${d}]`);
    close(table.weights[i]!, w0[i]! - (lrT * m) / (Math.sqrt(v) + epsHat), `w[${r},${d}]`);
  }
  // row 3, dim 1: the data gradient alone (0.15) would lower the weight; with the L2 term (-0.35) it moves toward 0
  assert.ok(table.weights[7]! > -1, `row 3 is pulled toward 0: ${table.weights[7]}`);
});

test('embedding L2 runs on the JavaScript kernels; the native ones refuse it rather than drop it, and take a scheduled rate as JS does', () => {
  assert.equal(createSparseKernels({ l2: 0.1 }).name, 'js');
  const preferred = createSparseKernels();
  if (preferred.name !== 'native') return;
  const t: TableData = { weights: new Float32Array(4), state: new RowState(2, 2, 2), rows: 2, dim: 2, width: 1, mean: false, offset: 0 };
  // a scheduled rate reaches both the same way
  const u = { ...t, weights: Float32Array.from([0.1, -0.2, 0.3, 0.4]), state: new RowState(2, 2, 2) };
  const w = { ...u, weights: Float32Array.from(u.weights), state: new RowState(2, 2, 2) };
  const grad = Float32Array.from([0.5, -0.25, 1, 2]);
  preferred.update([u], [Int32Array.from([1, 0])], 2, grad, 2, sparseStep(adam, 3, 0.0037));
  new JsSparseKernels().update([w], [Int32Array.from([1, 0])], 2, grad, 2, sparseStep(adam, 3, 0.0037));
  assert.deepEqual(u.weights, w.weights);
  assert.notDeepEqual(u.weights, Float32Array.from([0.1, -0.2, 0.3, 0.4]));
  assert.throws(() => preferred.update([t], [Int32Array.from([0])], 1, new Float32Array(2), 2, sparseStep(adam, 1, adam.lr, 0.1)), /embedding_l2/);
});

// ---- decoupled weight decay ---------------------------------------------------------------------

test('AdamW: weights shrink by 1 - lr x weight_decay, then take the Adam step that never saw the decay', () => {
  const lr = 0.1;
  const wd = 0.5;
  const w = tf.variable(tf.tensor1d([1, -2, 0.5]));
  const g = tf.tensor1d([0.5, 0.5, -1]);
  const opt = tf.train.adam(lr, 0.9, 0.999, 1e-8);
  decayWeights([w], [g], 1 - lr * wd);
  opt.applyGradients([{ name: w.name, tensor: g }]);
  // by hand: keep = 0.95; Adam's first step is lr g / (|g| + eps) = ±0.1 (bias-corrected m = g, v = g^2)
  const expected = [1 * 0.95 - 0.1, -2 * 0.95 - 0.1, 0.5 * 0.95 + 0.1];
  const got = w.dataSync();
  expected.forEach((e, i) => close(got[i]!, e, `w[${i}]`));
  tf.dispose([w, g]);
  opt.dispose();
});

test('setLearningRate reaches SGD (whose step keeps a scalar of the rate) and Adam alike', () => {
  for (const [k, opt] of [tf.train.sgd(1), tf.train.adam(1)].entries()) {
    const w = tf.variable(tf.tensor1d([1]));
    setLearningRate(opt, 0.25);
    opt.applyGradients([{ name: w.name, tensor: tf.tensor1d([2]) }]);
    // SGD: 1 - 0.25 x 2; Adam's first step: 1 - 0.25 x sign(2)
    close(w.dataSync()[0]!, k === 0 ? 0.5 : 0.75, opt.getClassName(), 1e-5);
    w.dispose();
    opt.dispose();
  }
});

// ---- schedules ----------------------------------------------------------------------------------

const schedule = (s: Partial<LrScheduleConfig>): LrScheduleConfig => ({ warmup_steps: 0, decay: 'none', min_factor: 0, total_steps: null, factor: 0.1, every: 1, unit: 'epoch', metric: 'auc', patience: 1, ...s });
const at = (p: Partial<SchedulePoint>): SchedulePoint => ({ step: 1, epoch: 0, epochs: 1, decays: 0, ...p });

test('warm-up, cosine, step and plateau factors at given points equal their closed forms', () => {
  const warm = schedule({ warmup_steps: 4 });
  assert.deepEqual([1, 2, 3, 4, 5, 100].map((step) => lrFactor(warm, at({ step }))), [0.25, 0.5, 0.75, 1, 1, 1]);

  const cosStep = schedule({ warmup_steps: 4, decay: 'cosine', unit: 'step', total_steps: 104, min_factor: 0.1 });
  close(lrFactor(cosStep, at({ step: 2 })), 0.5, 'warm-up part'); // 2/4 x cosine at p = 0 (1)
  close(lrFactor(cosStep, at({ step: 54 })), 0.1 + 0.9 * 0.5, 'halfway: cos(pi/2) = 0');
  close(lrFactor(cosStep, at({ step: 29 })), 0.1 + 0.45 * (1 + Math.cos(Math.PI / 4)), 'quarter way');
  close(lrFactor(cosStep, at({ step: 104 })), 0.1, 'the floor at the end');
  close(lrFactor(cosStep, at({ step: 500 })), 0.1, 'stays at the floor past the end');
  const cosEpoch = schedule({ decay: 'cosine', min_factor: 0.2 });
  close(lrFactor(cosEpoch, at({ epoch: 0, epochs: 5 })), 1, 'first epoch');
  close(lrFactor(cosEpoch, at({ epoch: 2, epochs: 5 })), 0.6, 'middle epoch: 0.2 + 0.8 / 2');
  close(lrFactor(cosEpoch, at({ epoch: 4, epochs: 5 })), 0.2, 'last epoch at the floor');

  const byEpoch = schedule({ decay: 'step', factor: 0.5, every: 2 });
  assert.deepEqual([0, 1, 2, 3, 4].map((epoch) => lrFactor(byEpoch, at({ epoch }))), [1, 1, 0.5, 0.5, 0.25]);
  const byStep = schedule({ decay: 'step', factor: 0.5, every: 10, unit: 'step' });
  assert.deepEqual([1, 10, 11, 21].map((step) => lrFactor(byStep, at({ step }))), [1, 1, 0.5, 0.25]);

  // plateau, patience 2: epochs 3 and 4 do not beat 0.7 -> one decay; 5 improves; 6 is one bad epoch
  const rows = [0.6, 0.7, 0.69, 0.68, 0.71, 0.7].map((v, e) => ({ epoch: e + 1, val_ctr_auc: v }));
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => plateauDecays(rows.slice(0, n), 'val_ctr_auc', true, 2)), [0, 0, 0, 1, 1, 1]);
  assert.equal(plateauDecays(rows, 'val_ctr_auc', false, 1), 5, 'lower is better, patience 1: every epoch after the first (none is below 0.6) decays');
  close(lrFactor(schedule({ decay: 'plateau', factor: 0.1 }), at({ decays: 2 })), 0.01, 'two plateau decays');
});

test('the schedule callback sets the factor before each step, at epoch starts, and writes the last step\'s rate', () => {
  const config = loadConfig(writeFile(tempDir(), 'exp.yaml', tinyConfigYaml()), { overrides: ['train.lr_schedule={warmup_steps: 2, decay: step, factor: 0.5}'] }).config;
  const set: number[] = [];
  const target = { history: [], learningRate: NaN, setLearningRateFactor: (f: number) => void set.push(f) };
  Object.defineProperty(target, 'learningRate', { get: () => 0.001 * set[set.length - 1]! });
  const cb = new LrScheduleCallback(config as ExperimentConfig, target);
  cb.onTrainBegin({ epochs: 2, startEpoch: 0, startStep: 0 });
  cb.onEpochBegin({ epoch: 0 });
  for (let s = 1; s <= 3; s++) cb.onBatchEnd({ globalStep: s, epoch: 0 });
  const row: Record<string, number> = {};
  cb.onEpochEnd({ row, history: [] } as never);
  cb.onEpochBegin({ epoch: 1 });
  cb.onBatchEnd({ globalStep: 4, epoch: 1 });
  // step 1: 1/2 warm-up; step 2: 1; steps 3, 4: 1; epoch 2 (steps 4, 5): 0.5
  assert.deepEqual(set, [0.5, 0.5, 1, 1, 1, 0.5, 0.5]);
  close(row.lr!, 0.001, 'lr column: the rate step 3 ran with');

  // plateau watches the history column early stopping would (val_ctr_auc), and a resumed run replays it
  const plateau = loadConfig(writeFile(tempDir(), 'exp.yaml', tinyConfigYaml()), { overrides: ['train.lr_schedule={decay: plateau, factor: 0.5, patience: 1}'] }).config as ExperimentConfig;
  const history = [{ epoch: 1, val_ctr_auc: 0.6 }, { epoch: 2, val_ctr_auc: 0.59 }];
  const seen: number[] = [];
  const p = new LrScheduleCallback(plateau, { history: [], learningRate: 1, setLearningRateFactor: (f: number) => void seen.push(f) });
  p.onTrainBegin({ epochs: 3, startEpoch: 0, startStep: 0 });
  p.onEpochEnd({ row: {}, history: history.slice(0, 1) } as never);
  p.onEpochBegin({ epoch: 1 });
  p.onEpochEnd({ row: {}, history } as never);
  p.onEpochBegin({ epoch: 2 });
  const resumed: number[] = [];
  new LrScheduleCallback(plateau, { history, learningRate: 1, setLearningRateFactor: (f: number) => void resumed.push(f) }).onTrainBegin({ epochs: 3, startEpoch: 2, startStep: 40 });
  assert.deepEqual(seen, [1, 1, 0.5]);
  assert.deepEqual(resumed, [0.5]);
});

// ---- loss balancing -----------------------------------------------------------------------------

function balancingConfig(mode: string): ExperimentConfig {
  return loadConfig(writeFile(tempDir(), 'exp.yaml', tinyConfigYaml()), { overrides: [`train.loss_balancing=${mode}`] }).config as ExperimentConfig;
}

test('uncertainty weighting: d total / d s_t = -exp(-s_t) L_t + 1', () => {
  const b = new LossBalancer(balancingConfig('uncertainty'));
  b.restore({ logVars: [0.3, -0.7] });
  const L = [2, 0.5];
  const { value, grads } = tf.variableGrads(() => b.combine(L.map((l) => tf.scalar(l))), b.variables);
  close(value.dataSync()[0]!, Math.exp(-0.3) * 2 + 0.3 + Math.exp(0.7) * 0.5 - 0.7, 'combined loss');
  close(grads[b.variables[0]!.name]!.dataSync()[0]!, -Math.exp(-0.3) * 2 + 1, 'ds_0');
  close(grads[b.variables[1]!.name]!.dataSync()[0]!, -Math.exp(0.7) * 0.5 + 1, 'ds_1');
  assert.deepEqual(Object.keys(b.historyColumns()), ['log_var_ctr', 'log_var_ctcvr']);
});

test('GradNorm: one weight update on two tasks with known gradient norms', () => {
  // w = (1, 1), |grad L_t| = (2, 1) -> G = (2, 1), mean 1.5; loss ratios (0.5, 0.9) / mean 0.7 =
  // (5/7, 9/7); alpha 1 -> targets (15/14, 27/14); sign(G - target) = (+, -), so the gradient in w is
  // (+2, -1); lr 0.1 -> (0.8, 1.1); renormalised to sum 2 -> (16/19, 22/19)
  const w = gradnormStep([1, 1], [2, 1], [0.5, 0.9], [1, 1], 1, 0.1);
  close(w[0]!, 16 / 19, 'w_0', 1e-12);
  close(w[1]!, 22 / 19, 'w_1', 1e-12);
  // alpha 0: every target is the mean (1.5), same signs here
  assert.deepEqual(gradnormStep([1, 1], [2, 1], [0.5, 0.9], [1, 1], 0, 0.1), w);
  // with equal norms and equal loss ratios nothing moves but the renormalisation
  const b = new LossBalancer(balancingConfig('gradnorm'));
  b.updateWeights([0.4, 0.1], [1, 1]);
  b.updateWeights([0.4, 0.1], [1, 1]);
  assert.deepEqual(b.historyColumns(), { weight_ctr: 1, weight_ctcvr: 1 });
  assert.deepEqual(b.state(), { weights: [1, 1], initialLosses: [0.4, 0.1] });
});

// ---- the CLI with everything on; resume bit-identical -------------------------------------------

const allOn = (balancing: string, decay: string) =>
  tinyConfigYaml().replace(
    'train: { epochs: 1, batch_size: 256 }',
    `train:
  epochs: 2
  batch_size: 512
  optimizer: { type: adam, lr: 0.003, weight_decay: 0.01 }
  embedding_l2: 0.001
  lr_schedule: { warmup_steps: 5, decay: ${decay}, factor: 0.5, patience: 1, unit: step, every: 7, total_steps: 40 }
  loss_balancing: ${balancing}
  gradnorm_alpha: 1`,
  );

test('CLI: a tiny run with L2, weight decay, warm-up + plateau and uncertainty weighting finishes and records them', () => {
  const dir = tempDir();
  const r = cli(['-q', 'train', writeFile(dir, 'exp.yaml', allOn('uncertainty', 'plateau')), '--runs-dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  const run = r.stdout.trim().split('\n').pop()!;
  const history = readFileSync(path.join(run, 'history.csv'), 'utf8').trim().split('\n');
  const header = history[0]!.split(',');
  for (const c of ['lr', 'log_var_ctr', 'log_var_ctcvr']) assert.ok(header.includes(c), `history has ${c}: ${header.join(',')}`);
  assert.equal(history.length, 3);
  const lr = history.slice(1).map((l) => Number(l.split(',')[header.indexOf('lr')]));
  assert.ok(lr[0]! > 0 && lr[0]! <= 0.003, `lr ${lr[0]}`);
  const info = JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as { backend: string; training: Record<string, unknown> };
  assert.match(info.backend, /embeddings: js \(train\.embedding_l2 is on/);
  assert.deepEqual(info.training, {
    embedding_l2: 0.001,
    weight_decay: 0.01,
    lr_schedule: { warmup_steps: 5, decay: 'plateau', min_factor: 0, total_steps: 40, factor: 0.5, every: 7, unit: 'step', metric: 'auc', patience: 1 },
    loss_balancing: 'uncertainty',
  });
});

for (const [balancing, decay] of [
  ['uncertainty', 'cosine'],
  ['gradnorm', 'step'],
] as const) {
  test(`resume after an interrupt is bit-identical (${balancing}, warm-up + ${decay}, L2, weight decay)`, async () => {
    const dir = tempDir();
    // no eval split: the comparison is of training (the model files and history.csv)
    const load = () => loadConfig(writeFile(dir, 'exp.yaml', allOn(balancing, decay).replace(/^ {2}eval: .*\n/m, ''))).config;
    const whole = await trainRun({ config: load(), runsDir: path.join(dir, 'a') }, { backend: 'wasm' }, silentReporter);
    let steps = 0;
    let started = '';
    await assert.rejects(
      trainRun({ config: load(), runsDir: path.join(dir, 'b') }, { backend: 'wasm', stopRequested: () => ++steps >= 30, onRunStarted: (r) => (started = r.dir) }, silentReporter),
      Interrupted,
    );
    const resumed = await trainRun({ resume: started }, { backend: 'wasm' }, silentReporter);
    const read = (run: string, f: string) => readFileSync(path.join(run, f));
    for (const f of ['model/weights.bin', 'model/embeddings.bin']) assert.ok(read(whole.run.dir, f).equals(read(resumed.run.dir, f)), f);
    const noSeconds = (run: string) => read(run, 'history.csv').toString().split('\n').map((l) => l.split(',').filter((_, i) => i !== 3).join(','));
    assert.deepEqual(noSeconds(resumed.run.dir), noSeconds(whole.run.dir));
    assert.ok(noSeconds(whole.run.dir)[0]!.includes(balancing === 'gradnorm' ? 'weight_ctr' : 'log_var_ctr'));
  });
}
