/**
 * Evaluation at many K: `eval.ks` as a range, and WR@K / ASH@K / Recall@K over many K from one
 * ranking per request, equal to computing each K on its own (a second method in the test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config/load.js';
import { evaluateMetrics } from '../src/metrics/registry.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

test('eval.ks accepts a range { from, to, step }; an empty or huge range exits 2 naming eval.ks', () => {
  const dir = tempDir();
  const file = writeFile(dir, 'r.yaml', tinyConfigYaml('eval: { ks: { from: 10, to: 45, step: 10 } }\n'));
  assert.deepEqual(loadConfig(file).config.eval.ks, [10, 20, 30, 40]);
  const one = writeFile(dir, 'one.yaml', tinyConfigYaml('eval: { ks: { from: 5, to: 7 } }\n'));
  assert.deepEqual(loadConfig(one).config.eval.ks, [5, 6, 7], 'step defaults to 1');
  assert.deepEqual(loadConfig(writeFile(dir, 'l.yaml', tinyConfigYaml())).config.eval.ks, [10, 50], 'the default list is unchanged');
  const empty = writeFile(dir, 'empty.yaml', tinyConfigYaml('eval: { ks: { from: 50, to: 10 } }\n'));
  const r = cli(['config', 'check', empty]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /empty\.yaml.*eval\.ks.*from 50 is above to 10/s);
  const huge = writeFile(dir, 'huge.yaml', tinyConfigYaml('eval: { ks: { from: 1, to: 5000 } }\n'));
  const h = cli(['config', 'check', huge]);
  assert.equal(h.code, 2);
  assert.match(h.stderr, /eval\.ks.*5000 values of K; at most 1000/s);
  const bad = writeFile(dir, 'bad.yaml', tinyConfigYaml('eval: { ks: { from: 0, to: 10 } }\n'));
  assert.equal(cli(['config', 'check', bad]).code, 2);
});

test('@K metrics over 100 Ks from one ranking equal each K computed on its own', () => {
  // 40 requests of 3..60 candidates, a deterministic pseudo-random score and labels
  const rows: { req: number; score: number; click: number; buy: number; all: number }[] = [];
  let x = 12345;
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let q = 0; q < 40; q++) {
    const size = 3 + Math.floor(rnd() * 58);
    for (let i = 0; i < size; i++) {
      const click = rnd() < 0.2 ? 1 : 0;
      rows.push({ req: q, score: Math.round(rnd() * 50) / 50, click, buy: click && rnd() < 0.4 ? 1 : 0, all: rnd() < 0.1 ? 1 : 0 });
    }
  }
  const n = rows.length;
  const input = (ks: number[]) => ({
    split: 'eval',
    metrics: ['recall', 'wrecall', 'ash'],
    ks,
    tasks: ['ctr'],
    probs: { ctr: Float32Array.from(rows, (r) => r.score) },
    labels: { ctr: Uint8Array.from(rows, (r) => r.click) },
    fused: Float64Array.from(rows, (r) => r.score),
    requests: Int32Array.from(rows, (r) => r.req),
    itemWeights: Float64Array.from(rows, (r) => r.click + 2 * r.buy),
    ashTargets: Uint8Array.from(rows, (r) => r.all),
  });
  const ks = Array.from({ length: 100 }, (_, i) => i + 1);
  const all = evaluateMetrics(input(ks));
  assert.equal(all.length, 100 * (1 + 2 + 2));
  for (const k of ks) {
    const single = evaluateMetrics(input([k]));
    for (const rec of single) {
      const same = all.find((r) => r.name === rec.name && r.k === k && r.variant === rec.variant && r.task === rec.task)!;
      assert.deepEqual(same, rec, `${rec.name}@${k} ${rec.variant ?? ''}`);
    }
  }
  assert.ok(n > 500);
  // support: requests with a positive and positive rows, the same at every K
  const ash = all.filter((r) => r.name === 'ash');
  const targets = rows.filter((r) => r.all > 0).length;
  const reqs = new Set(rows.filter((r) => r.all > 0).map((r) => r.req)).size;
  assert.ok(ash.every((r) => r.n_positives === targets && r.n_requests === reqs));
});
