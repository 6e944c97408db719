import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { cli, repoRoot, tempDir, tinyDir } from './helpers/fixtures.js';
import { inspectFile } from '../src/data/inspect.js';
import { writeTable } from '../src/data/write.js';

const samples = path.resolve(repoRoot, '../shared/real-samples');
// The real samples live beside the repository (CI and the project machines); elsewhere these tests skip.
const needSamples = { skip: existsSync(samples) ? false : `real samples not found at ${samples}` };

test('data import turns the AliExpress sample into Parquet that inspect reads, with renames', needSamples, async () => {
  const dir = tempDir();
  const out = path.join(dir, 'ae.parquet');
  const r = cli(['data', 'import', path.join(samples, 'aliexpress/train.csv'), '--out', out, '--rename', 'search_id=request_id', '--rename', 'conversion=purchase']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*ae\.parquet: 100 rows/);
  const report = await inspectFile(out);
  assert.equal(report.rows, 100);
  assert.equal(report.roles.request, 'request_id');
  assert.equal(report.roles.labels.purchase, 'purchase');
  // Independent count of distinct search ids and clicks from the CSV itself.
  const lines = readFileSync(path.join(samples, 'aliexpress/train.csv'), 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  const rows = lines.slice(1).map((l) => l.split(','));
  const col = (n: string) => rows.map((r) => r[header.indexOf(n)]!);
  assert.equal(report.requests, new Set(col('search_id')).size);
  const clicks = col('click').filter((v) => Number(v) === 1).length;
  assert.equal(report.labelRates.find((l) => l.label === 'click' && l.stage === 'exposure')!.positives, clicks);
  const insp = cli(['data', 'inspect', out]);
  assert.equal(insp.code, 0, insp.stderr);
  assert.match(insp.stdout, /exposure\s+100/);
});

test('data import: a rename of a column the CSV lacks is an error naming it; a missing file exits 2', needSamples, () => {
  const dir = tempDir();
  const r = cli(['data', 'import', path.join(samples, 'ali-ccp/train.csv'), '--out', path.join(dir, 'x.parquet'), '--rename', 'search_id=request_id']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--rename names column `search_id`, which the CSV does not have/);
  assert.equal(cli(['data', 'import', '/nonexistent.csv', '--out', path.join(dir, 'y.parquet')]).code, 2);
  assert.ok(!existsSync(path.join(dir, 'x.parquet')));
});

test('data inspect on the tiny funnel prints stage counts and label rates; counts add up', async () => {
  const r = cli(['data', 'inspect', path.join(tinyDir, 'train.parquet')]);
  assert.equal(r.code, 0, r.stderr);
  for (const s of ['exposure', 'ranking_candidate', 'prerank_candidate']) assert.match(r.stdout, new RegExp(s));
  assert.match(r.stdout, /label nesting: ok/);
  const report = await inspectFile(path.join(tinyDir, 'train.parquet'));
  assert.equal(report.stages.reduce((s, x) => s + x.rows, 0), report.rows);
  assert.equal(report.violations.length, 0);
});

test('data inspect reports label-nesting violations', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'bad.parquet');
  await writeTable(file, [
    { name: 'request_id', type: 'int64' },
    { name: 'stage', type: 'string' },
    { name: 'click', type: 'int8' },
    { name: 'purchase', type: 'int8' },
  ], [{ length: 4, columns: { request_id: Float64Array.from([1, 1, 2, 2]), stage: ['exposure', 'prerank_candidate', 'exposure', 'exposure'], click: Int8Array.from([0, 1, 1, 0]), purchase: Int8Array.from([1, 0, 1, 0]) } }]);
  const report = await inspectFile(file);
  assert.deepEqual(report.violations.sort((a, b) => a.rule.localeCompare(b.rule)), [
    { rule: 'click on an unexposed row', rows: 1 },
    { rule: 'purchase without click', rows: 1 },
  ]);
});

test('the Ali-CCP reference config trains on data imported from the real sample', needSamples, () => {
  const dir = tempDir();
  for (const [src, dst] of [['train', 'train'], ['val', 'valid'], ['test', 'test']]) {
    const r = cli(['-q', 'data', 'import', path.join(samples, `ali-ccp/${src}.csv`), '--out', path.join(dir, `${dst}.parquet`)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const r = cli(['-q', 'train', 'configs/resflow-ali-ccp.yaml', '--runs-dir', dir, '--set', `data.train=${dir}/train.parquet`, '--set', `data.validation=${dir}/valid.parquet`, '--set', `data.eval=${dir}/test.parquet`]);
  assert.equal(r.code, 0, r.stderr);
  const run = r.stdout.trim().split('\n').pop()!;
  const metrics = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as { name: string; task: string; value: number }[];
  assert.deepEqual(metrics.filter((m) => m.name === 'auc').map((m) => m.task), ['ctr', 'ctcvr']);
  const cfg = readFileSync(path.join(run, 'config.yaml'), 'utf8');
  assert.match(cfg, /pos_weight: 500/);
});

test('data synth writes train/valid/eval that inspect reads; same seed, same data', () => {
  const a = tempDir();
  const b = tempDir();
  const r1 = cli(['-q', 'data', 'synth', '--preset', 'tiny', '--seed', '3', '--out', a]);
  const r2 = cli(['-q', 'data', 'synth', '--preset', 'tiny', '--seed', '3', '--out', b]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  for (const f of ['train.parquet', 'valid.parquet', 'eval.parquet']) {
    assert.ok(readFileSync(path.join(a, f)).equals(readFileSync(path.join(b, f))), `${f} identical`);
  }
  const insp = cli(['data', 'inspect', path.join(a, 'train.parquet')]);
  assert.equal(insp.code, 0);
  assert.match(insp.stdout, /rows per stage/);
  assert.equal(cli(['data', 'synth', '--preset', 'huge', '--out', a]).code, 2);
});
