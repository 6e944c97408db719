import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config/load.js';
import type { ExperimentConfig } from '../src/config/experiment.js';
import { UsageError } from '../src/base/errors.js';
import type { MetricRecord } from '../src/metrics/registry.js';
import { CallbackList, type EpochEndLogs, type TrainerCallback } from '../src/train/callbacks.js';
import { EarlyStopping, monitorFor, type EarlyStoppingState } from '../src/train/early-stopping.js';
import { historyKey, validationColumns, validationMetrics } from '../src/eval/validation.js';
import { tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const config = (overrides: string[] = []): ExperimentConfig => loadConfig(writeFile(tempDir(), 'exp.yaml', tinyConfigYaml()), { overrides }).config;

function epochLogs(epoch: number, validation: MetricRecord[]): EpochEndLogs {
  const sums = { samples: 0, steps: 0, loss: 0, tasks: [], extra: 0, seconds: 0 };
  return { epoch, epochs: 10, sums, seconds: 0, row: {}, history: [], validation, improved: true };
}

/** Runs EarlyStopping over one watched value per epoch; returns each epoch's verdict, where it stopped and whether it restored. */
function runEarlyStopping(cfg: ExperimentConfig, metric: string, values: number[], patience: number, record: (v: number) => MetricRecord) {
  const state: EarlyStoppingState = { best: null, bestEpoch: null, badEpochs: 0 };
  let restored = 0;
  const lines: string[] = [];
  const es = new EarlyStopping({ monitor: monitorFor(cfg, metric), patience, state: () => state, restoreBest: () => restored++, log: (l) => lines.push(l) });
  const list = new CallbackList([es]);
  const improved: boolean[] = [];
  let epoch = 0;
  return (async () => {
    for (; epoch < values.length; epoch++) {
      const logs = epochLogs(epoch, [record(values[epoch]!)]);
      await list.epochEnd(logs);
      improved.push(logs.improved);
      if (list.control.stop) {
        epoch++;
        break;
      }
    }
    await list.trainEnd({ history: [], epoch });
    return { improved, stoppedAfter: epoch, state, restored, lines, key: es.key };
  })();
}

test('EarlyStopping on gauc (higher is better, from the registry): stops after `patience` epochs without improvement and restores the best', async () => {
  const cfg = config();
  const r = await runEarlyStopping(cfg, 'gauc', [0.6, 0.7, 0.65, 0.64, 0.9], 2, (value) => ({ name: 'gauc', task: 'ctr', split: 'validation', value }));
  assert.deepEqual(r.improved, [true, true, false, false]);
  assert.equal(r.stoppedAfter, 4);
  assert.deepEqual(r.state, { best: 0.7, bestEpoch: 2, badEpochs: 2 });
  assert.equal(r.restored, 1);
  assert.equal(r.key, 'val_ctr_gauc');
  assert.deepEqual(r.lines, ['early stopping: val_ctr_gauc has not improved for 2 epoch(s); keeping epoch 2']);
});

test('EarlyStopping on logloss (lower is better): an improvement resets the count; no restore when the last epoch is the best', async () => {
  const cfg = config();
  const r = await runEarlyStopping(cfg, 'logloss', [0.5, 0.4, 0.45, 0.3], 2, (value) => ({ name: 'logloss', task: 'ctr', split: 'validation', value }));
  assert.deepEqual(r.improved, [true, true, false, true]);
  assert.equal(r.stoppedAfter, 4);
  assert.deepEqual(r.state, { best: 0.3, bestEpoch: 4, badEpochs: 0 });
  assert.equal(r.restored, 0);
  assert.deepEqual(r.lines, []);
});

test('EarlyStopping watches the named task, and the fused ranking at the first K (macro) for wrecall and ash', () => {
  const cfg = config();
  assert.equal(monitorFor(cfg, 'auc', 'ctcvr').task, 'ctcvr');
  assert.equal(monitorFor(cfg, 'recall', 'ctcvr').k, cfg.eval.ks[0]);
  const w = monitorFor(cfg, 'wrecall', 'ctcvr');
  assert.deepEqual(w, { metric: 'wrecall', task: 'fused', k: cfg.eval.ks[0], variant: 'macro', higherIsBetter: true });
  assert.equal(monitorFor(cfg, 'logloss').higherIsBetter, false);
  assert.throws(() => monitorFor(cfg, 'accuracy'), UsageError);
});

test('a missing watched record counts as no improvement after the first epoch (as before)', async () => {
  const cfg = config();
  const r = await runEarlyStopping(cfg, 'ash', [1, 2, 3], 2, (value) => ({ name: 'auc', task: 'ctr', split: 'validation', value }));
  assert.deepEqual(r.improved, [true, false, false]);
});

test('CallbackList calls hooks in list order and stops when a callback asks', async () => {
  const calls: string[] = [];
  const cb = (name: string): TrainerCallback => ({
    onTrainBegin: () => void calls.push(`${name}.trainBegin`),
    onEpochBegin: ({ epoch }) => void calls.push(`${name}.epochBegin ${epoch}`),
    onBatchEnd: ({ stepInEpoch }) => void calls.push(`${name}.batchEnd ${stepInEpoch}`),
    onEpochEnd: (_logs, control) => {
      calls.push(`${name}.epochEnd`);
      if (name === 'b') control.stop = true;
    },
    onTrainEnd: () => void calls.push(`${name}.trainEnd`),
    onTrainAbort: () => void calls.push(`${name}.abort`),
  });
  const list = new CallbackList([cb('a'), cb('b')]);
  await list.trainBegin({ epochs: 1, trainRows: 0, startEpoch: 0, startStep: 0 });
  await list.epochBegin({ epoch: 0, epochs: 1, trainRows: 0 });
  const sums = { samples: 0, steps: 0, loss: 0, tasks: [], extra: 0, seconds: 0 };
  await list.batchEnd({ epoch: 0, stepInEpoch: 1, globalStep: 1, rowsRead: 0, loss: { total: 0, perTask: [], extra: 0 }, sums });
  assert.equal(list.control.stop, false);
  await list.epochEnd(epochLogs(0, []));
  assert.equal(list.control.stop, true);
  await list.trainEnd({ history: [], epoch: 1 });
  list.trainAbort(new Error('x'));
  assert.deepEqual(calls, ['a.trainBegin', 'b.trainBegin', 'a.epochBegin 0', 'b.epochBegin 0', 'a.batchEnd 1', 'b.batchEnd 1', 'a.epochEnd', 'b.epochEnd', 'a.trainEnd', 'b.trainEnd', 'a.abort', 'b.abort']);
});

test('validation computes auc and logloss, plus the early-stopping metric; history columns go task by task, fused last', () => {
  assert.deepEqual(validationMetrics(config()), ['auc', 'logloss']);
  const cfg = config();
  const watching = (metric: string): ExperimentConfig => ({ ...cfg, train: { ...cfg.train, early_stopping: { metric: metric as 'auc', patience: 1 } } });
  assert.deepEqual(validationMetrics(watching('logloss')), ['auc', 'logloss']);
  const withGauc = watching('gauc');
  assert.deepEqual(validationMetrics(withGauc), ['auc', 'logloss', 'gauc']);
  const rec = (name: string, task: string, value: number, k?: number, variant?: 'macro' | 'micro'): MetricRecord => ({ name, task, split: 'validation', value, k, variant });
  const cols = validationColumns(cfg, [rec('auc', 'ctr', 1), rec('auc', 'ctcvr', 2), rec('wrecall', 'fused', 5, 10, 'macro'), rec('logloss', 'ctr', 3), rec('logloss', 'ctcvr', 4)]);
  assert.deepEqual(Object.entries(cols), [
    ['val_ctr_auc', 1],
    ['val_ctr_logloss', 3],
    ['val_ctcvr_auc', 2],
    ['val_ctcvr_logloss', 4],
    ['val_fused_wrecall@10_macro', 5],
  ]);
  assert.equal(historyKey({ name: 'ash', task: 'fused', k: 32, variant: 'micro' }), 'val_fused_ash@32_micro');
});
