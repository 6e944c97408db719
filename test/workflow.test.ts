import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cli, tempDir } from './helpers/fixtures.js';

// The smoke run of the whole flow on the tiny fixture: the four residual ablations train, compare
// puts them side by side with their config differences and plots, and eval re-scores one of them.
test('workflow: ablations train, compare, eval', () => {
  const runs = tempDir();
  const dirs: string[] = [];
  for (const mode of ['both', 'feature', 'logit', 'none']) {
    const r = cli(['-q', 'train', `configs/ablation/residual-${mode}.yaml`, '--runs-dir', runs, '--set', 'train.epochs=1']);
    assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
    dirs.push(r.stdout.trim().split('\n').pop()!);
  }
  const exp = path.join(runs, 'quickstart-ablation');
  assert.equal(readdirSync(exp).filter((d) => existsSync(path.join(exp, d, 'run.json'))).length, 4);

  const cmp = cli(['compare', exp, '--format', 'md', '--metrics', 'auc,wrecall@10']);
  assert.equal(cmp.code, 0, cmp.stderr);
  for (const mode of ['both', 'feature', 'logit', 'none']) assert.match(cmp.stdout, new RegExp(`residual=${mode}`));
  assert.match(cmp.stdout, /model\.residual/); // the only config key that differs
  assert.ok(existsSync(path.join(exp, 'compare', 'report.html')));
  assert.ok(readdirSync(path.join(exp, 'compare')).some((f) => f.endsWith('.svg')));

  const ev = cli(['-q', 'eval', dirs[0]!, '--data', 'datasets/tiny/valid.parquet', '--split', 'valid']);
  assert.equal(ev.code, 0, ev.stderr);
  const metrics = JSON.parse(readFileSync(path.join(dirs[0]!, 'metrics.json'), 'utf8')) as { split: string; name: string }[];
  assert.ok(metrics.some((m) => m.split === 'valid' && m.name === 'auc'));
  assert.ok(metrics.some((m) => m.split === 'eval' && m.name === 'auc'), 'the eval split from training is kept');
});
