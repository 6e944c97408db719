import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config/load.js';
import { Interrupted } from '../src/base/errors.js';
import { RunFolder } from '../src/runs/folder.js';
import { trainRun } from '../src/app/train-run.js';
import { evaluateRun, loadTrainedRun } from '../src/app/evaluate-run.js';
import { silentReporter, type Reporter } from '../src/app/reporter.js';
import { tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

/** A reporter that records what it is told. */
function recorder(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentReporter, lines, out: (l) => lines.push(`out: ${l}`), info: (l) => lines.push(l) };
}

test('trainRun: stop requested -> Interrupted with a checkpoint; resume completes; evaluateRun re-scores to the same records', async () => {
  const dir = tempDir();
  const config = loadConfig(writeFile(dir, 'exp.yaml', tinyConfigYaml()), { overrides: ['train.epochs=2'] }).config;
  let steps = 0;
  let started: RunFolder | undefined;
  await assert.rejects(
    trainRun({ config, runsDir: dir }, { backend: 'wasm', stopRequested: () => ++steps >= 5, onRunStarted: (r) => (started = r) }, silentReporter),
    Interrupted,
  );
  assert.equal(RunFolder.open(started!.dir).info.status, 'interrupted');
  const rep = recorder();
  const done = await trainRun({ resume: started!.dir }, { backend: 'wasm' }, rep);
  assert.equal(done.run.dir, started!.dir);
  assert.equal(done.history.length, 2);
  assert.equal(RunFolder.open(done.run.dir).info.status, 'completed');
  assert.ok(done.cost.dense_parameters > 0);
  assert.ok(rep.lines.some((l) => l.startsWith('  validation: ctr_auc ')), rep.lines.join('\n'));
  assert.ok(rep.lines.includes(`run folder: ${done.run.dir}`));
  const written = JSON.parse(readFileSync(done.run.path('metrics.json'), 'utf8')) as { split: string }[];
  assert.deepEqual(
    done.evaluation!.records,
    written.filter((r) => r.split === 'eval'),
  );

  const loaded = await loadTrainedRun(done.run.dir, silentReporter, { backend: 'wasm' });
  const again = await evaluateRun(loaded, { split: 'eval', fusionGrid: [0, 1] }, rep);
  assert.deepEqual(again.records, done.evaluation!.records);
  // weights (0,1), (1,0), (1,1) in both modes: proportional settings are one setting
  assert.equal(again.fusionGrid!.length, 6);
  assert.ok(rep.lines.some((l) => l.startsWith('out: fusion grid on eval (6 settings')));
});
