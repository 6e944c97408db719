import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { cli, repoRoot, tempDir, trainTiny } from './helpers/fixtures.js';

const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['--version']).status === 0);

interface Rec { name: string; task: string; k?: number; split: string; value: number; variant?: string }


test('eval --save-predictions: an independent program recomputes AUC, WR@K and ASH@K to 1e-6', { skip: python ? false : 'no python3' }, () => {
  const dir = tempDir();
  const run = trainTiny(dir);
  const preds = path.join(dir, 'p.csv');
  const r = cli(['-q', 'eval', run, '--save-predictions', preds]);
  assert.equal(r.code, 0, r.stderr);
  const metrics = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
  const py = spawnSync(python!, [path.join(repoRoot, 'test/independent/recompute_metrics.py'), preds, 'ctr:click,ctcvr:purchase', '10,50', 'purchase', 'all_purchase'], { encoding: 'utf8' });
  assert.equal(py.status, 0, py.stderr);
  const ind = JSON.parse(py.stdout) as { auc: Record<string, number>; wrecall: Record<string, { macro: number; micro: number }>; ash: Record<string, { macro: number; micro: number }> };
  const get = (name: string, task: string, k?: number, variant?: string) => metrics.find((m) => m.split === 'eval' && m.name === name && m.task === task && m.k === k && m.variant === variant)!.value;
  for (const t of ['ctr', 'ctcvr']) assert.ok(Math.abs(get('auc', t) - ind.auc[t]!) < 1e-6, `auc ${t}: ${get('auc', t)} vs ${ind.auc[t]}`);
  for (const k of [10, 50]) {
    for (const v of ['macro', 'micro'] as const) {
      assert.ok(Math.abs(get('wrecall', 'fused', k, v) - ind.wrecall[k]![v]) < 1e-6, `wrecall@${k} ${v}`);
      assert.ok(Math.abs(get('ash', 'fused', k, v) - ind.ash[k]![v]) < 1e-6, `ash@${k} ${v}`);
    }
  }
  // One prediction row per input row, with the data's own request ids.
  const lines = readFileSync(preds, 'utf8').trim().split('\n');
  assert.equal(lines.length - 1, 9004);
  assert.match(lines[0]!, /^row,request,stage,click,purchase,all_click,all_purchase,exposure,p_ctr,p_ctcvr,fused$/);
});

test('eval --fusion re-fuses without retraining; per-task metrics stay, fused ones change as computed', () => {
  const dir = tempDir();
  const run = trainTiny(dir);
  const before = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
  const weightsBefore = readFileSync(path.join(run, 'model/weights.bin'));
  const r = cli(['-q', 'eval', run, '--fusion', 'multiplicative:ctr=1,ctcvr=3', '--split', 'eval-mult', '--save-predictions', path.join(dir, 'm.csv')]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readFileSync(path.join(run, 'model/weights.bin')).equals(weightsBefore), 'model untouched');
  const after = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
  const pick = (recs: Rec[], split: string, name: string, task: string) => recs.find((m) => m.split === split && m.name === name && m.task === task)!.value;
  assert.equal(pick(after, 'eval-mult', 'auc', 'ctr'), pick(before, 'eval', 'auc', 'ctr'));
  assert.ok(after.some((m) => m.split === 'eval'), 'other splits are kept');
  // fused = p_ctr^1 * p_ctcvr^3 in the saved predictions
  const [header, ...rows] = readFileSync(path.join(dir, 'm.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  const col = (n: string) => header!.indexOf(n);
  for (const row of rows.slice(0, 50)) {
    const expected = Number(row[col('p_ctr')]) * Number(row[col('p_ctcvr')]) ** 3;
    assert.ok(Math.abs(Number(row[col('fused')]) - expected) < 1e-6 * Math.max(1, expected));
  }
  const bad = cli(['eval', run, '--fusion', 'additive:cvr=1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no task named `cvr`/);
});

test('eval writes oracle metrics and online references on synthetic data; the oracle bounds AUC', () => {
  const dir = tempDir();
  const run = trainTiny(dir);
  const m = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
  const v = (split: string, name: string, task: string, k?: number) => m.find((r) => r.split === split && r.name === name && r.task === task && r.k === k)?.value;
  assert.ok(v('eval-oracle', 'auc', 'ctr')! > v('eval', 'auc', 'ctr')!);
  assert.ok(v('eval-oracle', 'online', 'oracle', 10)! >= v('eval', 'online', 'fused', 10)!);
  assert.ok(v('eval-oracle', 'online', 'logged')! > 0);
  assert.ok(existsSync(path.join(run, 'metrics.md')));
  assert.match(readFileSync(path.join(run, 'metrics.md'), 'utf8'), /### eval-oracle/);
});

test('eval --fusion-grid reports WR@K and ASH@K per setting and writes fusion-grid.csv', () => {
  const dir = tempDir();
  const run = trainTiny(dir);
  const r = cli(['eval', run, '--fusion-grid', '0,1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /multiplicative\s+ctr=1,ctcvr=0/);
  const csv = readFileSync(path.join(run, 'fusion-grid.csv'), 'utf8').trim().split('\n');
  // weights (0,1), (1,0), (1,1) in both modes: every task is swept, proportional settings kept once
  assert.equal(csv.length, 1 + 6);
  assert.match(r.stdout, /additive\s+ctr=0,ctcvr=1/);
  assert.match(csv[0]!, /wrecall@10_macro.*ash@10_macro/);
});
