import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import type { ExperimentConfig, OptimizerConfig } from '../src/config/experiment.js';
import { buildBundle, disposeBundle, type ModelBundle } from '../src/models/bundle.js';
import { EmbeddingTables } from '../src/models/embeddings.js';
import { createSparseKernels, JsSparseKernels, type SparseKernels } from '../src/kernels/sparse-kernels.js';
import { Rng } from '../src/base/rng.js';
import type { EncodedBatch, FeaturePlan } from '../src/data/encode.js';
import { Trainer } from '../src/train/trainer.js';
import { runCallbacks } from '../src/train/run-callbacks.js';
import { nativeMatmulRegistered } from '../src/kernels/native-matmul.js';
import { RunFolder } from '../src/runs/folder.js';
import { scoreSplit } from '../src/eval/score.js';
import { auc } from '../src/metrics/classification.js';
import { Interrupted } from '../src/base/errors.js';
import { tempDir, tinyConfigYaml, writeFile, cli } from './helpers/fixtures.js';

before(async () => {
  await initBackend('wasm');
});

function config(extra = '', overrides: string[] = []): ExperimentConfig {
  const dir = tempDir();
  return loadExperiment(writeFile(dir, 'exp.yaml', tinyConfigYaml(extra)), { overrides }).config;
}

/** Gradient of one task's logit sum with respect to every trainable weight, by name. */
function gradsOfTaskLogit(residual: string, task: number): Map<string, number> {
  const bundle = buildBundle(config('', [`model.residual=${residual}`]));
  const x = tf.randomNormal([8, bundle.tables.inputDim], 0, 1, 'float32', 3) as tf.Tensor2D;
  const vars = bundle.params.trainable;
  const { grads } = tf.engine().gradients(() => tf.sum(bundle.model.forward(x, { training: true, dropoutSeed: 0 }).logits[task]!) as tf.Scalar, vars, undefined, true);
  const out = new Map<string, number>();
  vars.forEach((v, i) => out.set(bundle.params.logicalName(v.name), grads[i] ? tf.sum(tf.abs(grads[i]!)).dataSync()[0]! : 0));
  disposeBundle(bundle);
  return out;
}

test('residual none: the second task sends no gradient into the first tower', () => {
  const g = gradsOfTaskLogit('none', 1);
  const first = [...g].filter(([n]) => n.startsWith('tower_ctr/'));
  assert.ok(first.length > 0);
  for (const [n, v] of first) assert.equal(v, 0, n);
  assert.ok([...g].filter(([n]) => n.startsWith('tower_ctcvr/')).every(([, v]) => v > 0));
});

test('residual feature/logit/both: the second task trains the first tower too', () => {
  for (const mode of ['feature', 'logit', 'both']) {
    const g = gradsOfTaskLogit(mode, 1);
    const firstTower = [...g].filter(([n]) => n.startsWith('tower_ctr/dense_0/kernel'));
    assert.ok(firstTower[0]![1] > 0, `${mode}: first tower gets gradient`);
  }
  // feature residual alone does not reach the first task's logit layer; the logit residual does
  assert.equal(gradsOfTaskLogit('feature', 1).get('tower_ctr/logit/kernel'), 0);
  assert.ok(gradsOfTaskLogit('logit', 1).get('tower_ctr/logit/kernel')! > 0);
});

test('residual logit: second logit minus first equals the second tower\'s own output', () => {
  for (const mode of ['logit', 'both']) {
    const bundle = buildBundle(config('', [`model.residual=${mode}`]));
    const x = tf.randomNormal([16, bundle.tables.inputDim], 0, 1, 'float32', 5) as tf.Tensor2D;
    const out = bundle.model.forward(x, { training: false, dropoutSeed: 0 });
    const diff = tf.sub(out.logits[1]!, out.logits[0]!).dataSync();
    const own = out.own[1]!.dataSync();
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(diff[i]! - own[i]!) < 1e-5, `${mode} row ${i}`);
    // and the first task has no residual input
    assert.deepEqual(Array.from(out.logits[0]!.dataSync()), Array.from(out.own[0]!.dataSync()));
    disposeBundle(bundle);
  }
  const none = buildBundle(config('', ['model.residual=none']));
  const x = tf.randomNormal([4, none.tables.inputDim], 0, 1, 'float32', 5) as tf.Tensor2D;
  const out = none.model.forward(x, { training: false, dropoutSeed: 0 });
  assert.deepEqual(Array.from(out.logits[1]!.dataSync()), Array.from(out.own[1]!.dataSync()));
  disposeBundle(none);
});

// ---- sparse optimizers against dense references ------------------------------------------------

const plan: FeaturePlan = {
  sparse: [{ name: 'f', column: 'f', kind: 'categorical', tableSize: 6, width: 1, pooling: 'sum', dim: 3, toRow: () => 0 }],
  numeric: [],
};
/** The sparse kernels to check: JavaScript, and the native ones when they are built. */
const kernelSets = (): SparseKernels[] => {
  const preferred = createSparseKernels();
  return preferred.name === 'js' ? [preferred] : [new JsSparseKernels(), preferred];
};
const opt = (type: OptimizerConfig['type']): OptimizerConfig => ({ type, lr: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, initial_accumulator: 0.1 });
const batchOf = (ids: number[]): EncodedBatch => ({
  length: ids.length,
  ids: [Int32Array.from(ids)],
  numeric: new Float32Array(0),
  labels: new Map(),
  stage: new Uint8Array(ids.length),
  request: null,
  user: null,
  teacher: new Map(),
  truth: new Map(),
});

test('sparse SGD and Adagrad equal a dense update with summed duplicate gradients; untouched rows stay', () => {
  for (const kernels of kernelSets()) for (const type of ['sgd', 'adagrad'] as const) {
    const t = new EmbeddingTables(plan, new Rng(1), opt(type), kernels);
    const w0 = Float32Array.from(t.tables[0]!.weights);
    const acc = new Float64Array(18).fill(0.1);
    const dense = Float64Array.from(w0);
    const rng = new Rng(9);
    for (let step = 0; step < 5; step++) {
      const ids = [1, 3, 1, 4]; // row 1 twice, rows 0, 2, 5 never
      const g = Float32Array.from({ length: 12 }, () => rng.normal());
      t.applyGradients(batchOf(ids), g);
      const rowGrad = new Float64Array(18);
      ids.forEach((r, i) => { for (let d = 0; d < 3; d++) rowGrad[r * 3 + d]! += g[i * 3 + d]!; });
      const touched = new Set(ids);
      for (let r = 0; r < 6; r++) for (let d = 0; d < 3; d++) {
        if (!touched.has(r)) continue;
        const i = r * 3 + d;
        if (type === 'sgd') dense[i]! -= 0.1 * rowGrad[i]!;
        else {
          acc[i]! += rowGrad[i]! * rowGrad[i]!;
          dense[i]! -= (0.1 * rowGrad[i]!) / (Math.sqrt(acc[i]!) + 1e-8);
        }
      }
    }
    const w = t.tables[0]!.weights;
    for (let i = 0; i < 18; i++) assert.ok(Math.abs(w[i]! - dense[i]!) < 1e-5, `${kernels.name} ${type} weight ${i}: ${w[i]} vs ${dense[i]}`);
    for (const r of [0, 2, 5]) for (let d = 0; d < 3; d++) assert.equal(w[r * 3 + d], w0[r * 3 + d]);
  }
});

test('sparse lazy Adam equals tfjs dense Adam when every row is touched, and skips untouched rows', () => {
  for (const kernels of kernelSets()) lazyAdamAgainstDense(kernels);
});

function lazyAdamAgainstDense(kernels: SparseKernels): void {
  const t = new EmbeddingTables(plan, new Rng(2), opt('adam'), kernels);
  const v = tf.variable(tf.tensor2d(Float32Array.from(t.tables[0]!.weights), [6, 3]));
  const adam = tf.train.adam(0.1, 0.9, 0.999, 1e-8);
  const rng = new Rng(4);
  for (let step = 0; step < 6; step++) {
    const ids = [0, 1, 2, 3, 4, 5, 2];
    const g = Float32Array.from({ length: ids.length * 3 }, () => rng.normal());
    t.applyGradients(batchOf(ids), g);
    const rowGrad = new Float32Array(18);
    ids.forEach((r, i) => { for (let d = 0; d < 3; d++) rowGrad[r * 3 + d]! += g[i * 3 + d]!; });
    adam.applyGradients([{ name: v.name, tensor: tf.tensor2d(rowGrad, [6, 3]) }]);
  }
  const dense = v.dataSync();
  const w = t.tables[0]!.weights;
  for (let i = 0; i < 18; i++) assert.ok(Math.abs(w[i]! - dense[i]!) < 1e-5, `${kernels.name} weight ${i}: ${w[i]} vs ${dense[i]}`);
  const before = Float32Array.from(w);
  t.applyGradients(batchOf([1]), Float32Array.from([1, 1, 1]));
  for (let i = 0; i < 18; i++) if (i < 3 || i >= 6) assert.equal(w[i], before[i], `${kernels.name} row ${Math.floor(i / 3)} untouched`);
  v.dispose();
}

test('mean pooling spreads a list row\'s gradient over its ids; padding gets nothing', () => {
  const listPlan: FeaturePlan = { sparse: [{ ...plan.sparse[0]!, kind: 'list', width: 3, pooling: 'mean' }], numeric: [] };
  for (const kernels of kernelSets()) {
    const t = new EmbeddingTables(listPlan, new Rng(1), opt('sgd'), kernels);
    const w0 = Float32Array.from(t.tables[0]!.weights);
    const b = { ...batchOf([2, 4, -1]), length: 1 }; // one example with a list of three ids
    const x = t.lookup(b);
    for (let d = 0; d < 3; d++) assert.ok(Math.abs(x[d]! - (w0[6 + d]! + w0[12 + d]!) / 2) < 1e-7, kernels.name);
    t.applyGradients(b, Float32Array.from([1, 2, 3]));
    for (let d = 0; d < 3; d++) {
      assert.ok(Math.abs(t.tables[0]!.weights[6 + d]! - (w0[6 + d]! - 0.1 * (d + 1) / 2)) < 1e-7, kernels.name);
      assert.ok(Math.abs(t.tables[0]!.weights[12 + d]! - (w0[12 + d]! - 0.1 * (d + 1) / 2)) < 1e-7, kernels.name);
    }
  }
});

// ---- learning, determinism, resume ------------------------------------------------------------

/** Trains with the run folder's callbacks (history, model, checkpoint on stop, early stopping). */
function fit(bundle: ModelBundle, run: RunFolder, stopRequested: () => boolean, resume = false): Promise<unknown> {
  const trainer = new Trainer(bundle, run);
  return trainer.fit({ resume, callbacks: runCallbacks(trainer, { stopRequested }) });
}

async function trainRun(cfg: ExperimentConfig, stopAt?: number): Promise<RunFolder> {
  const run = RunFolder.create(tempDir(), cfg);
  const bundle = buildBundle(cfg);
  let steps = 0;
  try {
    await fit(bundle, run, () => stopAt !== undefined && ++steps >= stopAt);
  } finally {
    disposeBundle(bundle);
  }
  return run;
}

test('learning: on the tiny funnel the ctr AUC on eval is clearly above 0.5', async () => {
  const cfg = config('', ['train.epochs=3', 'train.optimizer.lr=0.002']);
  const bundle = buildBundle(cfg);
  const run = RunFolder.create(tempDir(), cfg);
  await fit(bundle, run, () => false);
  const scored = await scoreSplit(bundle, 'eval');
  const exposures = scored.rows.labels.get('exposure')!;
  const a = auc(scored.probs.ctr!, scored.rows.labels.get('click')!, exposures);
  assert.ok(a > 0.57, `ctr AUC ${a}`);
  const history = readFileSync(run.path('history.csv'), 'utf8').trim().split('\n');
  assert.equal(history.length, 4);
  assert.match(history[0]!, /val_ctr_auc/);
  disposeBundle(bundle);
});

test('interrupt then resume ends exactly where an uninterrupted run ends', async () => {
  const cfg = config('', ['train.epochs=2', 'model.dropout=0.1', 'model.batch_norm=true']);
  const full = await trainRun(cfg);
  let interrupted: RunFolder | undefined;
  await assert.rejects(async () => {
    const run = RunFolder.create(tempDir(), cfg);
    interrupted = run;
    const bundle = buildBundle(cfg);
    let steps = 0;
    try {
      await fit(bundle, run, () => ++steps >= 37); // mid second epoch
    } finally {
      disposeBundle(bundle);
    }
  }, Interrupted);
  assert.equal(RunFolder.open(interrupted!.dir).info.status, 'interrupted');
  const resumedBundle = buildBundle(cfg);
  await fit(resumedBundle, interrupted!, () => false, true);
  disposeBundle(resumedBundle);
  assert.equal(readFileSync(interrupted!.path('model/weights.bin')).compare(readFileSync(full.path('model/weights.bin'))), 0, 'dense weights identical');
  const { existsSync } = await import('node:fs');
  assert.ok(!existsSync(interrupted!.path('checkpoint')), 'the stale checkpoint is removed once the run completes');
  assert.equal(readFileSync(interrupted!.path('model/embeddings.bin')).compare(readFileSync(full.path('model/embeddings.bin'))), 0, 'embeddings identical');
  const strip = (csv: string) => csv.split('\n').map((l) => l.split(',').filter((_, i) => i !== 3).join(',')).join('\n'); // drop seconds
  assert.equal(strip(readFileSync(interrupted!.path('history.csv'), 'utf8')), strip(readFileSync(full.path('history.csv'), 'utf8')));
});

test('CLI: train twice gives identical metrics.json; a non-finite loss fails the run with a clear error', () => {
  const dir = tempDir();
  const cfgFile = writeFile(dir, 'exp.yaml', tinyConfigYaml());
  const a = cli(['-q', 'train', cfgFile, '--runs-dir', dir]);
  const b = cli(['-q', 'train', cfgFile, '--runs-dir', dir]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const runA = a.stdout.trim().split('\n').pop()!;
  const runB = b.stdout.trim().split('\n').pop()!;
  assert.notEqual(runA, runB);
  const metrics = readFileSync(`${runA}/metrics.json`, 'utf8');
  assert.equal(metrics, readFileSync(`${runB}/metrics.json`, 'utf8'));
  const records = JSON.parse(metrics) as { name: string; task: string }[];
  assert.ok(records.some((r) => r.name === 'auc' && r.task === 'ctr'));
  assert.equal(JSON.parse(readFileSync(`${runA}/run.json`, 'utf8')).status, 'completed');

  const bad = cli(['train', cfgFile, '--runs-dir', dir, '--set', 'train.optimizer={type: sgd, lr: 1e30}']);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /the loss became (NaN|Infinity)/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
  const failedDir = bad.stderr.match(/run folder: (\S+)/)![1]!;
  const info = JSON.parse(readFileSync(`${failedDir}/run.json`, 'utf8'));
  assert.equal(info.status, 'failed');
  assert.match(info.error, /loss became/);
});

test('linear (explicit gradient) equals tfjs\'s default gradient of x·W + b', async () => {
  const { linear } = await import('../src/models/layers.js');
  for (const [B, i, o] of [[7, 5, 3], [16, 4, 1], [32, 3, 9]] as const) {
    const x = tf.randomNormal([B, i], 0, 1, 'float32', 1) as tf.Tensor2D;
    const W = tf.randomNormal([i, o], 0, 1, 'float32', 2) as tf.Tensor2D;
    const b = tf.randomNormal([o], 0, 1, 'float32', 3) as tf.Tensor1D;
    const dy = tf.randomNormal([B, o], 0, 1, 'float32', 4);
    const viaLinear = tf.grads((a: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(linear(a as tf.Tensor2D, w as tf.Tensor2D, c as tf.Tensor1D), dy)))([x, W, b]);
    const viaDefault = tf.grads((a: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.matMul(a, w), c), dy)))([x, W, b]);
    viaLinear.forEach((g, k) => assert.ok(tf.max(tf.abs(tf.sub(g, viaDefault[k]!))).dataSync()[0]! < 1e-5, `shape ${B}x${i}x${o}, input ${k}`));
  }
});

test('linear: scoring (fused kernel) and training (explicit gradient) give the same values, with and without relu', async () => {
  const { linear } = await import('../src/models/layers.js');
  for (const [B, i, o] of [[1024, 320, 256], [7, 5, 3], [16, 4, 1]] as const) {
    const x = tf.randomNormal([B, i], 0, 1, 'float32', 5) as tf.Tensor2D;
    const W = tf.randomNormal([i, o], 0, 0.1, 'float32', 6) as tf.Tensor2D;
    const b = tf.randomNormal([o], 0, 1, 'float32', 7) as tf.Tensor1D;
    for (const activation of ['linear', 'relu'] as const) {
      const scored = linear(x, W, b, activation).dataSync();
      // Inside a gradient tape the explicit-gradient path runs; capture its forward value.
      let trained: Float32Array | null = null;
      tf.grads((a: tf.Tensor) => {
        const y = linear(a as tf.Tensor2D, W, b, activation);
        trained = y.dataSync() as Float32Array;
        return tf.sum(y);
      })([x]);
      const reference = tf.tidy(() => {
        const z = tf.add(tf.matMul(x, W), b);
        return (activation === 'relu' ? tf.relu(z) : z).dataSync();
      });
      let worst = 0;
      for (let k = 0; k < scored.length; k++) {
        assert.equal(trained![k], reference[k], `training path, ${B}x${i}x${o} ${activation}, element ${k}`);
        worst = Math.max(worst, Math.abs(scored[k]! - reference[k]!));
      }
      // Identical with the native matmul (same operations); XNNPACK's fused kernel adds the bias
      // inside its sums, so allow float rounding there.
      assert.ok(worst < 1e-5, `scoring path, ${B}x${i}x${o} ${activation}: differs by ${worst}`);
      if (nativeMatmulRegistered()) assert.equal(worst, 0, `native scoring path, ${B}x${i}x${o} ${activation}`);
      if (activation === 'relu') assert.ok(Array.from(scored).every((v) => v >= 0));
    }
  }
});

test('CLI: a data error (missing column) exits 2 before any run folder is made', async () => {
  const { existsSync } = await import('node:fs');
  const dir = tempDir();
  const cfgFile = writeFile(dir, 'exp.yaml', tinyConfigYaml().replace('{ name: item_id, buckets: 5000 }', '{ name: item_idx, buckets: 5000 }'));
  const r = cli(['train', cfgFile, '--runs-dir', `${dir}/runs`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /train\.parquet: missing column `item_idx` \(feature item_idx\)/);
  assert.ok(!existsSync(`${dir}/runs`), 'no run folder for a config that cannot run');
});

test('early stopping on a registry metric other than auc/logloss (gauc): validation adds its column and training stops by its values', async () => {
  const base = config('', ['train.epochs=4', 'train.optimizer.lr=0.05']);
  // The config schema's enum is narrower; the trainer takes any registry metric.
  const cfg: ExperimentConfig = { ...base, train: { ...base.train, early_stopping: { metric: 'gauc' as 'auc', task: 'ctcvr', patience: 1 } } };
  const run = RunFolder.create(tempDir(), cfg);
  const bundle = buildBundle(cfg);
  await fit(bundle, run, () => false);
  disposeBundle(bundle);
  const [header, ...rows] = readFileSync(run.path('history.csv'), 'utf8').trim().split('\n');
  const cols = header!.split(',');
  assert.deepEqual(cols.filter((c) => c.startsWith('val_')), ['val_ctr_auc', 'val_ctr_logloss', 'val_ctr_gauc', 'val_ctcvr_auc', 'val_ctcvr_logloss', 'val_ctcvr_gauc']);
  const g = rows.map((r) => Number(r.split(',')[cols.indexOf('val_ctcvr_gauc')]));
  assert.ok(g.every((v) => v > 0 && v < 1), String(g));
  // With patience 1, training ends at the first epoch that does not beat the best so far (or after 4).
  let expected = g.length;
  for (let e = 1, best = g[0]!; e < g.length; e++) {
    if (!(g[e]! > best)) {
      expected = e + 1;
      break;
    }
    best = g[e]!;
  }
  assert.equal(rows.length, expected);
});

test("Trainer.step's parts (what bench/profile-step.ts times) called one by one give exactly step()'s weights and losses", async () => {
  const { BatchEncoder, encodedBatches, openSplit } = await import('../src/data/encode.js');
  const cfg = config('', ['model.dropout=0.1', 'model.batch_norm=true', 'train.grad_clip=1']);
  const [a, b] = [buildBundle(cfg), buildBundle(cfg)];
  const batches: EncodedBatch[] = [];
  for await (const mb of encodedBatches(cfg, new BatchEncoder(cfg, a.plan), await openSplit(cfg, 'train'), 256)) if (batches.push(mb) >= 4) break;
  const whole = new Trainer(a, RunFolder.create(tempDir(), cfg));
  const parts = new Trainer(b, RunFolder.create(tempDir(), cfg));
  for (const mb of batches) {
    const expected = await whole.step(mb);
    const pass = await parts.forwardBackward(mb, parts.embed(mb));
    const dense = await parts.denseUpdate(pass);
    parts.sparseUpdate(mb, pass);
    parts.finishStep(pass, dense);
    assert.deepEqual(pass.losses, expected);
  }
  a.params.trainable.forEach((v, i) => assert.deepEqual(v.dataSync(), b.params.trainable[i]!.dataSync(), v.name));
  a.tables.tables.forEach((t, i) => assert.deepEqual(t.weights, b.tables.tables[i]!.weights));
  disposeBundle(a);
  disposeBundle(b);
});
