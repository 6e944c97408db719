/**
 * The run-folder API (src/runs/): the CSV writer and reader agree on quoting, and every reader
 * rejects a malformed file with a DataError that names the file and what was expected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../src/base/errors.js';
import { replaceFolderAtomic, writeAtomic } from '../src/runs/atomic.js';
import { hasCheckpoint, readCheckpointState, writeCheckpointState, type CheckpointState } from '../src/runs/checkpoint.js';
import { parseCsv, toCsv } from '../src/runs/csv.js';
import { readHistory, writeHistory, type HistoryRow } from '../src/runs/history.js';
import { RUN_FILES, runPath } from '../src/runs/layout.js';
import { finiteRecords, readMetrics, writeMetricFiles } from '../src/runs/metrics-files.js';
import { readRunInfo } from '../src/runs/run-info.js';
import { cli, tempDir } from './helpers/fixtures.js';

/** Asserts that `fn` throws a DataError whose message names `file` and matches `what`. */
function throwsDataError(fn: () => unknown, file: string, what: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DataError, `expected a DataError, got ${String(err)}`);
    assert.ok(err.message.includes(file), `the message names ${file}: ${err.message}`);
    assert.match(err.message, what);
    return true;
  });
}

test('CSV: the reader undoes the writer\'s quoting (commas, quotes, line breaks, CRLF)', () => {
  const rows = [
    { a: 'plain', b: 'with, comma', c: 'say "hi"' },
    { a: 'two\nlines', b: '', c: 1.5 },
    { a: 7, c: '"' },
  ];
  const text = toCsv(rows);
  assert.deepEqual(parseCsv(text), [
    ['a', 'b', 'c'],
    ['plain', 'with, comma', 'say "hi"'],
    ['two\nlines', '', '1.5000000'],
    ['7', '', '"'],
  ]);
  assert.deepEqual(parseCsv('x,y\r\n1,"a,b"\r\n'), [['x', 'y'], ['1', 'a,b']], 'CRLF line ends');
  assert.deepEqual(parseCsv('x,y\n\n1,2\n'), [['x', 'y'], ['1', '2']], 'blank lines are skipped');
  assert.throws(() => parseCsv('a\n"open'), /not closed/);
});

test('history.csv round-trips through writeHistory/readHistory, with a column that needs quoting', () => {
  const run = tempDir('resflow-runs-');
  // a task name with a comma and a quote makes column names that the writer must quote
  const rows: HistoryRow[] = [
    { epoch: 1, steps: 5, train_loss: 0.5, 'train_a,"b"_loss': 0.25 },
    { epoch: 2, steps: 10, train_loss: 0.375, 'train_a,"b"_loss': 0.125, val_ctr_auc: 0.625 },
  ];
  writeHistory(run, rows);
  assert.match(readFileSync(runPath(run, 'history'), 'utf8').split('\n')[0]!, /^epoch,steps,train_loss,"train_a,""b""_loss",val_ctr_auc$/);
  const h = readHistory(run)!;
  assert.deepEqual(h.columns, ['epoch', 'steps', 'train_loss', 'train_a,"b"_loss', 'val_ctr_auc']);
  assert.equal(h.rows.length, 2);
  assert.deepEqual(h.rows[1], rows[1]);
  assert.equal(h.rows[0]!['train_a,"b"_loss'], 0.25);
  assert.ok(Number.isNaN(h.rows[0]!['val_ctr_auc']!), 'an epoch without a value reads as NaN');
  assert.equal(readHistory(tempDir('resflow-runs-')), null, 'no history.csv: null');
});

test('a malformed history.csv is a DataError naming the file, line and column', () => {
  const run = tempDir('resflow-runs-');
  const file = runPath(run, 'history');
  writeFileSync(file, 'epoch,train_loss\n1,0.5\n2,oops\n');
  throwsDataError(() => readHistory(run), file, /line 3, column `train_loss`: expected a number, found `oops`/);
  writeFileSync(file, 'epoch,train_loss\n1,0.5,9\n');
  throwsDataError(() => readHistory(run), file, /line 2 has 3 cells, expected 2/);
  writeFileSync(file, 'epoch,train_loss\n1,"0.5\n');
  throwsDataError(() => readHistory(run), file, /not valid CSV/);
});

test('metrics.json: written with its CSV and Markdown; null values kept; malformed files are DataErrors naming the file', () => {
  const run = tempDir('resflow-runs-');
  const records = [
    { name: 'auc', task: 'ctr', split: 'eval', value: 0.75 },
    { name: 'gauc', task: 'ctr', split: 'eval', value: null },
    { name: 'wrecall', task: 'fused', split: 'eval', k: 10, variant: 'macro' as const, value: 0.5 },
  ];
  writeMetricFiles(run, records, '# md\n');
  assert.deepEqual(readMetrics(run), records);
  assert.deepEqual(finiteRecords(readMetrics(run)).map((r) => r.name), ['auc', 'wrecall']);
  assert.equal(readFileSync(runPath(run, 'metricsCsv'), 'utf8'), 'split,name,task,k,variant,value\neval,auc,ctr,,,0.75000000\neval,gauc,ctr,,,\neval,wrecall,fused,10,macro,0.50000000\n');
  assert.equal(readFileSync(runPath(run, 'metricsMd'), 'utf8'), '# md\n');
  assert.deepEqual(readMetrics(tempDir('resflow-runs-')), [], 'no metrics.json: no records');

  const file = runPath(run, 'metricsJson');
  writeFileSync(file, JSON.stringify({ auc: 0.7 }));
  throwsDataError(() => readMetrics(run), file, /expected a list of metric records/);
  writeFileSync(file, JSON.stringify([{ name: 'auc', task: 'ctr', value: 0.7 }]));
  throwsDataError(() => readMetrics(run), file, /record 1: `split` should be a string/);
  writeFileSync(file, JSON.stringify([{ name: 'auc', task: 'ctr', split: 'eval', value: '0.7' }]));
  throwsDataError(() => readMetrics(run), file, /record 1: `value` should be a number/);
  writeFileSync(file, '[{"name": "auc",');
  throwsDataError(() => readMetrics(run), file, /unreadable/);
});

test('compare on a run with a malformed metrics.json exits 2 and names the file', () => {
  const exp = path.join(tempDir('resflow-runs-'), 'abl');
  const run = path.join(exp, '20260101-000001-aaaaaaaa');
  mkdirSync(run, { recursive: true });
  writeFileSync(path.join(run, RUN_FILES.config), 'name: abl\nruntime:\n  seed: 1\n');
  writeFileSync(path.join(run, RUN_FILES.info), JSON.stringify({ experiment: 'abl', version: '20260101-000001-aaaaaaaa', status: 'completed', seed: 1 }));
  writeFileSync(path.join(run, RUN_FILES.metricsJson), JSON.stringify([{ metric: 'auc', value: 0.7 }]));
  const r = cli(['-q', 'compare', exp, '--no-plots']);
  assert.equal(r.code, 2, r.stderr);
  assert.ok(r.stderr.includes(path.join(run, 'metrics.json')), r.stderr);
  assert.match(r.stderr, /`name` should be a string/);
});

test('run.json: a folder without one is not a run; a malformed one is a DataError naming it', () => {
  const run = tempDir('resflow-runs-');
  throwsDataError(() => readRunInfo(run), run, /not a run folder \(no run\.json\)/);
  const file = runPath(run, 'info');
  writeFileSync(file, JSON.stringify({ experiment: 'x', version: 'v', status: 'done' }));
  throwsDataError(() => readRunInfo(run), file, /`status` should be one of running, completed, failed, interrupted/);
  writeFileSync(file, JSON.stringify({ experiment: 'x', version: 'v', status: 'completed', seed: 1 }));
  assert.equal(readRunInfo(run).status, 'completed');
});

test('checkpoint state round-trips; a malformed one is a DataError', () => {
  const run = tempDir('resflow-runs-');
  assert.equal(hasCheckpoint(run), false);
  mkdirSync(runPath(run, 'checkpoint'));
  const state: CheckpointState = {
    epoch: 1,
    stepInEpoch: 3,
    globalStep: 13,
    history: [{ epoch: 1, train_loss: 0.5 }],
    best: null,
    bestEpoch: null,
    badEpochs: 0,
    epochSums: { samples: 30, steps: 3, loss: 1.5, tasks: [1, 0.5], extra: 0, seconds: 0.2 },
  };
  writeCheckpointState(run, state);
  assert.equal(hasCheckpoint(run), true);
  assert.deepEqual(readCheckpointState(run), state);
  const file = path.join(runPath(run, 'checkpoint'), 'state.json');
  writeFileSync(file, JSON.stringify({ ...state, globalStep: '13' }));
  throwsDataError(() => readCheckpointState(run), file, /`globalStep` should be a number/);
});

test('atomic writes leave no temporary files; a folder is replaced whole', () => {
  const dir = tempDir('resflow-runs-');
  writeAtomic(path.join(dir, 'a.txt'), 'one');
  writeAtomic(path.join(dir, 'a.txt'), 'two');
  const model = path.join(dir, 'model');
  replaceFolderAtomic(model, (tmp) => writeFileSync(path.join(tmp, 'old.bin'), 'x'));
  replaceFolderAtomic(model, (tmp) => writeFileSync(path.join(tmp, 'new.bin'), 'y'));
  assert.deepEqual(readdirSync(dir).sort(), ['a.txt', 'model']);
  assert.equal(readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'two');
  assert.deepEqual(readdirSync(model), ['new.bin']);
  assert.ok(!existsSync(`${model}.old-${process.pid}`));
});
