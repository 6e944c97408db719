/**
 * Bad settings of the regularisation, schedule and loss-balancing keys (README.md, "Regularisation
 * and schedules"): each exits 2 with one line naming the file, line and key, before any run folder
 * exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const cases: { name: string; train: string; message: RegExp }[] = [
  { name: 'plateau without a validation split', train: 'lr_schedule: { decay: plateau }', message: /exp\.yaml:\d+: train\.lr_schedule: the plateau schedule needs data\.validation/ },
  { name: 'cosine by step without total_steps', train: 'lr_schedule: { decay: cosine, unit: step }', message: /exp\.yaml:\d+: train\.lr_schedule\.total_steps: cosine by step needs the number of steps/ },
  { name: 'plateau on an unknown task', train: 'lr_schedule: { decay: plateau, task: cvr }', message: /exp\.yaml:\d+: train\.lr_schedule\.task: no task named `cvr`; tasks: ctr, ctcvr/ },
  { name: 'a negative embedding L2', train: 'embedding_l2: -0.1', message: /exp\.yaml:\d+: train\.embedding_l2: .*0/ },
  { name: 'an unknown balancing', train: 'loss_balancing: kendall', message: /exp\.yaml:\d+: train\.loss_balancing: .*fixed.*uncertainty.*gradnorm/ },
  { name: 'weight decay on the embedding optimizer', train: 'embedding_optimizer: { weight_decay: 0.1 }', message: /exp\.yaml:\d+: train\.embedding_optimizer\.weight_decay/ },
];

for (const c of cases) {
  test(`config: ${c.name} exits 2 naming the key`, () => {
    const dir = tempDir();
    let yaml = tinyConfigYaml().replace('train: { epochs: 1, batch_size: 256 }', `train:\n  epochs: 1\n  ${c.train}`);
    if (c.name.startsWith('plateau without')) yaml = yaml.replace(/^ {2}validation: .*\n/m, '');
    const r = cli(['-q', 'train', writeFile(dir, 'exp.yaml', yaml), '--runs-dir', path.join(dir, 'runs')]);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, c.message);
    assert.equal(existsSync(path.join(dir, 'runs')), false, 'no run folder');
  });
}
