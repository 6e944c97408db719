/**
 * Truth columns (issue 15, point 5): a mapped truth column missing from the data is an error naming
 * the column and the file, like any other mapped column, before a run folder exists; the oracle is
 * computed for each task whose label has a truth column, and ASH@K's oracle ranks by the truth of the
 * ASH target, so an ASMOL-style run (its exposure task has no truth) still gets one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../src/base/errors.js';
import { loadConfig } from '../src/config/load.js';
import { openSplit } from '../src/data/encode.js';
import { oracleRecords } from '../src/eval/evaluate.js';
import type { EncodedBatch } from '../src/data/encode.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

test('a misspelled truth column exits 2 naming the column and the file; no run folder is left', async () => {
  const dir = tempDir();
  const cfg = writeFile(dir, 'exp.yaml', tinyConfigYaml().replace('purchase: p_purchase', 'purchase: p_purchse'));
  const { config } = loadConfig(cfg);
  await assert.rejects(openSplit(config, 'eval'), (e: unknown) => e instanceof DataError && /eval\.parquet: missing column `p_purchse` \(truth purchase\); the file has: .*p_purchase/.test(e.message));
  // training does not read truth (it is checked before the run starts all the same)
  await openSplit(config, 'train', undefined, { truth: false });
  const r = cli(['train', cfg, '--runs-dir', dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /train\.parquet: missing column `p_purchse` \(truth purchase\)/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(!existsSync(path.join(dir, 'test')) || readdirSync(path.join(dir, 'test')).length === 0, 'no run folder');
});

/** Rows of two requests with labels, truth for some labels only. */
function rows(truth: Record<string, number[]>): EncodedBatch {
  const u8 = (a: number[]) => Uint8Array.from(a);
  return {
    length: 6,
    ids: [],
    numeric: new Float32Array(0),
    labels: new Map([
      ['exposure', u8([1, 1, 0, 1, 0, 0])],
      ['all_click', u8([1, 0, 1, 0, 1, 0])],
      ['all_purchase', u8([0, 0, 1, 0, 1, 0])],
    ]),
    stage: u8([0, 0, 1, 0, 1, 2]),
    request: Int32Array.from([0, 0, 0, 1, 1, 1]),
    user: null,
    teacher: new Map(),
    truth: new Map(Object.entries(truth).map(([k, v]) => [k, Float32Array.from(v)])),
  };
}

test('the oracle per task: tasks with a truth column get their metrics, and ASH@K ranks by the target\'s truth', () => {
  const dir = tempDir();
  const cfg = writeFile(
    dir,
    'asmol.yaml',
    tinyConfigYaml()
      .replace(/tasks:\n(.*\n){2}/, 'tasks:\n  - { name: exposure, label: exposure, sample_space: [exposure, ranking_candidate, prerank_candidate] }\n  - { name: click, label: all_click, sample_space: [exposure, ranking_candidate, prerank_candidate] }\n  - { name: buy, label: all_purchase, sample_space: [exposure, ranking_candidate, prerank_candidate] }\n')
      .concat('eval: { metrics: [auc, logloss, recall, ash], ks: [1, 2] }\n'),
  );
  const { config } = loadConfig(cfg);
  assert.deepEqual(config.tasks.map((t) => t.name), ['exposure', 'click', 'buy']);
  // no truth for `exposure`: per-task records for click and buy, none for exposure; no fused recall
  const recs = oracleRecords(config, rows({ all_click: [0.9, 0.1, 0.8, 0.2, 0.7, 0.3], all_purchase: [0.1, 0.2, 0.9, 0.3, 0.8, 0.1] }), 'eval-oracle');
  const has = (name: string, task: string) => recs.some((r) => r.name === name && r.task === task);
  assert.ok(has('auc', 'click') && has('auc', 'buy') && has('logloss', 'buy'));
  assert.ok(!has('auc', 'exposure'));
  assert.ok(!recs.some((r) => r.name === 'recall'), 'recall needs the fused ranking of every task');
  assert.equal(recs.find((r) => r.name === 'auc' && r.task === 'click')!.value, 1);
  // ASH@1 by the truth of all_purchase: request 0 ranks row 2 first (a purchase), request 1 row 4
  const ash = (k: number, v: string) => recs.find((r) => r.name === 'ash' && r.k === k && r.variant === v)?.value;
  assert.equal(ash(1, 'macro'), 1);
  assert.equal(ash(2, 'micro'), 1);
  // without the target's truth there is no ASH oracle; with no truth at all, no oracle records
  assert.ok(!oracleRecords(config, rows({ all_click: [0.9, 0.1, 0.8, 0.2, 0.7, 0.3] }), 's').some((r) => r.name === 'ash'));
  assert.deepEqual(oracleRecords(config, rows({}), 's'), []);
  // with truth for every task, the fused oracle as before: recall is there too
  const quick = loadConfig(writeFile(dir, 'q.yaml', tinyConfigYaml('eval: { metrics: [auc, recall], ks: [1] }\n').replace(/tasks:\n(.*\n){2}/, 'tasks:\n  - { name: click, label: all_click }\n  - { name: buy, label: all_purchase }\n'))).config;
  const full = oracleRecords(quick, rows({ all_click: [0.9, 0.1, 0.8, 0.2, 0.7, 0.3], all_purchase: [0.1, 0.2, 0.9, 0.3, 0.8, 0.1] }), 's');
  assert.ok(full.some((r) => r.name === 'recall' && r.task === 'buy'));
});
