/**
 * Eval never loses what it had (issue 15, points 4, 5 and 7): `eval --fusion` and `eval --set eval.*`
 * write a named variant beside the run's own records, which stay byte for byte; the variant's records
 * say which fusion and settings produced them; the fusion grid sweeps every task and holds no two
 * proportional settings, at full precision.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, UsageError } from '../src/base/errors.js';
import { evaluateRun, evalVariant, loadTrainedRun, variantSplit } from '../src/app/evaluate-run.js';
import { silentReporter } from '../src/app/reporter.js';
import { fusionSettings, gridWeights } from '../src/eval/fusion-grid.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

interface Rec { name: string; task: string; k?: number; split: string; value: number; variant?: string; fusion?: string; settings?: Record<string, unknown> }

const records = (run: string) => JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
const own = (recs: Rec[]) => JSON.stringify(recs.filter((r) => r.split === 'eval' || r.split === 'eval-oracle'));

/** No two weight vectors are scalar multiples of each other (u_i v_j = u_j v_i for all i, j). */
function assertNoMultiples(ws: number[][]): void {
  for (let a = 0; a < ws.length; a++) {
    for (let b = a + 1; b < ws.length; b++) {
      const u = ws[a]!;
      const v = ws[b]!;
      const proportional = u.every((_, i) => u.every((__, j) => Math.abs(u[i]! * v[j]! - u[j]! * v[i]!) < 1e-12));
      assert.ok(!proportional, `${u} and ${v} are scalar multiples`);
    }
  }
}

test('fusion grid: every task swept, the second task alone included, no two settings proportional (2 and 3 tasks)', () => {
  const values = [0, 0.25, 0.5, 1, 2, 4];
  const two = gridWeights(2, values);
  assert.ok(two.some((w) => w[0] === 0 && w[1] === 1), 'the second task alone');
  assert.ok(two.some((w) => w[0] === 1 && w[1] === 0), 'the first task alone');
  assert.ok(!two.some((w) => w.every((x) => x === 0)), 'no all-zero setting');
  assertNoMultiples(two);
  // ratios 0/1, 1/0 and every ratio of two positive values: 1/16 .. 16 in powers of two = 9, so 11
  assert.equal(two.length, 11);
  const three = gridWeights(3, values);
  for (const alone of [[1, 0, 0], [0, 1, 0], [0, 0, 1]]) assert.ok(three.some((w) => w.join() === alone.join()), `${alone} alone`);
  assertNoMultiples(three);
  for (const w of three) assert.equal(Math.max(...w), 1);
  // every combination of the values is a multiple of one setting
  for (const a of values) for (const b of values) for (const c of values) {
    if (a + b + c === 0) continue;
    const m = Math.max(a, b, c);
    assert.ok(three.some((w) => Math.abs(w[0]! - a / m) < 1e-15 && Math.abs(w[1]! - b / m) < 1e-15 && Math.abs(w[2]! - c / m) < 1e-15), `${a},${b},${c}`);
  }
  const settings = fusionSettings(['ctr', 'ctcvr'], [0, 1]);
  assert.deepEqual(settings.map((s) => `${s.mode}:${Object.values(s.weights).join(',')}`), ['additive:0,1', 'additive:1,0', 'additive:1,1', 'multiplicative:0,1', 'multiplicative:1,0', 'multiplicative:1,1']);
});

test('eval --fusion and --set eval.* write a named variant; the run\'s own records stay byte for byte', async () => {
  const dir = tempDir();
  const cfg = writeFile(dir, 'exp.yaml', tinyConfigYaml());
  const t = cli(['-q', 'train', cfg, '--runs-dir', dir]);
  assert.equal(t.code, 0, t.stderr);
  const run = t.stdout.trim().split('\n').pop()!;
  const before = records(run);
  const configBefore = readFileSync(path.join(run, 'config.yaml'));

  const r = cli(['-q', 'eval', run, '--fusion', 'multiplicative:ctcvr=3', '--set', 'eval.ks=[5,20]', '--set', 'eval.label_weights.purchase=2']);
  assert.equal(r.code, 0, r.stderr);
  const after = records(run);
  assert.equal(own(after), own(before), 'the run\'s own eval records are unchanged');
  assert.ok(readFileSync(path.join(run, 'config.yaml')).equals(configBefore));
  const name = 'eval@fusion=multiplicative:ctr=1;ctcvr=3@ks=[5;20]@label_weights.purchase=2';
  const variant = after.filter((x) => x.split === name);
  assert.ok(variant.length > 0, `split ${name}: ${[...new Set(after.map((x) => x.split))].join(', ')}`);
  for (const x of variant) {
    assert.equal(x.fusion, 'multiplicative:ctr=1,ctcvr=3');
    assert.deepEqual(x.settings, { 'eval.ks': [5, 20], 'eval.label_weights.purchase': 2 });
  }
  assert.deepEqual([...new Set(variant.filter((x) => x.k !== undefined).map((x) => x.k))], [5, 20]);
  // per-task AUC does not depend on the fusion; the fused metrics do
  const v = (recs: Rec[], split: string, n: string, task: string, k?: number, variantName?: string) => recs.find((x) => x.split === split && x.name === n && x.task === task && x.k === k && x.variant === variantName)!.value;
  assert.equal(v(after, name, 'auc', 'ctcvr'), v(before, 'eval', 'auc', 'ctcvr'));
  assert.ok(after.some((x) => x.split === `eval-oracle@${name.slice(5)}` && x.fusion === 'multiplicative:ctr=1,ctcvr=3'), 'the oracle beside it, marked the same');
  assert.match(readFileSync(path.join(run, 'metrics.csv'), 'utf8'), /^split,name,task,k,variant,value,fusion,settings\n/);

  // a fusion alone (through the use case, as the command calls it): another variant, the first kept
  const loaded = await loadTrainedRun(run, silentReporter, { backend: 'wasm' });
  const fusion = { mode: 'additive' as const, weights: { ctr: 1, ctcvr: 2 } };
  const fv = evalVariant(loaded.bundle.config, fusion)!;
  await evaluateRun(loaded, { split: variantSplit('eval', fv), oracleSplit: variantSplit('eval-oracle', fv), variant: fv, fusion }, silentReporter);
  const third = records(run);
  assert.equal(own(third), own(before));
  assert.ok(third.some((x) => x.split === 'eval@fusion=additive:ctr=1;ctcvr=2' && x.fusion === 'additive:ctr=1,ctcvr=2' && x.settings === undefined));
  assert.equal(JSON.stringify(third.filter((x) => x.split === name)), JSON.stringify(variant));

  // a variant may not write over the run's own records; --set takes only eval.* keys, checked by the schema
  const onto = cli(['eval', run, '--fusion', 'additive:ctr=1,ctcvr=2', '--split', 'eval']);
  assert.equal(onto.code, 2);
  assert.match(onto.stderr, /--split eval: .*metrics\.json holds records of the run's own evaluation there/);
  await assert.rejects(evaluateRun(loaded, { split: 'eval', variant: fv, fusion }, silentReporter), (e: unknown) => e instanceof UsageError && /^--split eval: .*own evaluation/.test(e.message));
  await assert.rejects(loadTrainedRun(run, silentReporter, { evalSettings: ['train.epochs=3'] }), (e: unknown) => e instanceof UsageError && /--set train\.epochs=3: eval changes only eval\.\* settings/.test(e.message));
  await assert.rejects(loadTrainedRun(run, silentReporter, { evalSettings: ['eval.ash_target=all_clicks'] }), (e: unknown) => e instanceof ConfigError && /eval\.ash_target/.test(e.message));
  assert.equal(own(records(run)), own(before), 'refused commands change nothing');

  // the grid at full precision: a weight of 1/3 is written with all its digits
  await evaluateRun(loaded, { split: 'eval-grid', fusionGrid: [1, 3] }, silentReporter);
  const csv = readFileSync(path.join(run, 'fusion-grid.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 1 + 2 * 3);
  assert.ok(csv.some((l) => l.includes('ctr=0.3333333333333333,ctcvr=1')), csv.join('\n'));
  const header = csv[0]!.split(',');
  const cells = csv.slice(1).map((l) => l.match(/^\w+,"[^"]*",(.*)$/)![1]!.split(','));
  const wr = header.indexOf('wrecall@10_macro') - 2;
  assert.ok(cells.some((c) => c[wr]!.replace(/^0\./, '').length > 8), `full precision: ${cells.map((c) => c[wr]).join(' ')}`);
  assert.equal(own(records(run)), own(before));
});
