import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configDiff, flattenConfig } from '../src/report/config-diff.js';
import { logGamma, mean, pairedTTest, regularizedIncompleteBeta, sampleStd, studentTCdf, tTwoSidedP } from '../src/report/statistics.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------
// Fake run folders with known values
// ---------------------------------------------------------------------------------------------

interface FakeRun {
  version: string;
  residual: string;
  seed: number;
  status?: string;
  description?: string;
  /** ctr auc, ctr logloss, fused wrecall@10 macro; absent: no metrics.json */
  metrics?: { auc: number; logloss: number; wrecall: number; validAuc?: number };
}

/**
 * Group both (seeds 1, 2, 3) and group none (seeds 1, 2, 3), a single run `feature` (seed 1), and a
 * failed run `logit`. Hand-computed:
 * - auc: both 0.70, 0.72, 0.74 -> mean 0.72, std 0.02; none 0.69, 0.70, 0.73 -> mean 0.706667,
 *   std sqrt(0.00086667 / 2) = 0.0208167; feature 0.75 (best).
 *   paired none - both = (-0.01, -0.02, -0.01): t = -4, df = 2, p = 1 - 4/sqrt(18) = 0.0571910.
 * - logloss (lower is better): both 0.30, 0.28, 0.29 -> mean 0.29 (best); none 0.31, 0.291, 0.302;
 *   feature 0.35. paired none - both = (0.01, 0.011, 0.012): t = 0.011 / (0.001 / sqrt 3) = 19.0526,
 *   p = 1 - t / sqrt(2 + t^2) = 0.0027406 < 0.05.
 */
const FAKE_RUNS: FakeRun[] = [
  { version: '20260101-000001-aaaaaaaa', residual: 'both', seed: 1, metrics: { auc: 0.7, logloss: 0.3, wrecall: 0.5, validAuc: 0.6 } },
  { version: '20260101-000002-bbbbbbbb', residual: 'none', seed: 1, metrics: { auc: 0.69, logloss: 0.31, wrecall: 0.45 } },
  { version: '20260101-000003-cccccccc', residual: 'both', seed: 2, metrics: { auc: 0.72, logloss: 0.28, wrecall: 0.52 } },
  { version: '20260101-000004-dddddddd', residual: 'none', seed: 2, metrics: { auc: 0.7, logloss: 0.291, wrecall: 0.46 } },
  { version: '20260101-000005-eeeeeeee', residual: 'both', seed: 3, metrics: { auc: 0.74, logloss: 0.29, wrecall: 0.54 } },
  { version: '20260101-000006-ffffffff', residual: 'none', seed: 3, metrics: { auc: 0.73, logloss: 0.302, wrecall: 0.47 } },
  { version: '20260101-000007-00000000', residual: 'feature', seed: 1, metrics: { auc: 0.75, logloss: 0.35, wrecall: 0.4 } },
  { version: '20260101-000008-11111111', residual: 'logit', seed: 1, status: 'failed' },
];

function configYaml(r: FakeRun): string {
  return `# Resolved config (fake)
name: abl
description: ${r.description ?? 'fake ablation'}
model:
  type: resflow
  hidden: [16, 8]
  residual: ${r.residual}
tasks:
  - { name: ctr, label: click }
  - { name: ctcvr, label: purchase }
train:
  epochs: 2
runtime:
  backend: auto
  seed: ${r.seed}
`;
}

function writeFakeRun(expDir: string, r: FakeRun): string {
  const dir = path.join(expDir, r.version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.yaml'), configYaml(r));
  const info = {
    experiment: 'abl',
    version: r.version,
    status: r.status ?? 'completed',
    created: '2026-01-01T00:00:00.000Z',
    updated: '2026-01-01T00:00:01.000Z',
    seed: r.seed,
    backend: 'cpu',
    config_hash: r.version.slice(-8),
    git_commit: null,
    versions: { resflow: '0.1.0' },
    timings: { train_seconds: 1 },
    progress: { epoch: 2, step_in_epoch: 0, global_step: 10 },
    cost: { dense_parameters: 100, embedding_parameters: 1000 },
  };
  writeFileSync(path.join(dir, 'run.json'), JSON.stringify(info, null, 2));
  const h = [
    'epoch,steps,samples,seconds,train_loss,train_ctr_loss,train_ctcvr_loss,val_ctr_auc,val_ctr_logloss,val_ctcvr_auc,val_ctcvr_logloss',
    `1,5,1000,0.5,0.45,0.34,0.11,0.55,0.33,0.52,0.08`,
  ];
  if (r.status !== 'failed') h.push(`2,10,1000,0.5,0.40,0.31,0.09,0.60,0.31,0.56,0.07`);
  writeFileSync(path.join(dir, 'history.csv'), h.join('\n') + '\n');
  if (r.metrics) {
    const m = r.metrics;
    const records: Record<string, unknown>[] = [
      { name: 'auc', task: 'ctr', split: 'eval', value: m.auc },
      { name: 'logloss', task: 'ctr', split: 'eval', value: m.logloss },
      { name: 'wrecall', task: 'fused', k: 10, split: 'eval', value: m.wrecall, variant: 'macro' },
    ];
    if (m.validAuc !== undefined) records.push({ name: 'auc', task: 'ctr', split: 'valid', value: m.validAuc });
    writeFileSync(path.join(dir, 'metrics.json'), JSON.stringify(records, null, 2));
  }
  return dir;
}

function fakeExperiment(): string {
  const root = tempDir('resflow-compare-');
  const expDir = path.join(root, 'abl');
  for (const r of FAKE_RUNS) writeFakeRun(expDir, r);
  return expDir;
}

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b} (tolerance ${tol})`);

/** A small RFC 4180 reader: quoted cells may hold commas and doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  for (const line of text.trim().split('\n')) {
    const cells: string[] = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i]!;
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') (cur += '"', i++);
        else if (ch === '"') quoted = false;
        else cur += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ',') (cells.push(cur), (cur = ''));
      else cur += ch;
    }
    cells.push(cur);
    rows.push(cells);
  }
  return rows;
}

interface JsonCell {
  mean: number;
  std: number | null;
  n: number;
  values: number[];
  best: boolean;
  mark: string | null;
  p_value?: number | null;
  pairs?: number;
  significant?: boolean;
}
interface JsonRow {
  label: string;
  status: string;
  excluded: boolean;
  reference: boolean;
  n: number;
  seeds: number[];
  metrics: Record<string, JsonCell>;
}
interface JsonOut {
  splits: string[];
  reference: string;
  config_differences: Record<string, string[]>;
  columns: { key: string; name: string; task: string; higher_is_better: boolean }[];
  rows: JsonRow[];
  baseline?: { passed: boolean; checks: { row: string; ok: boolean }[] };
}

function compareJson(args: string[]): JsonOut {
  const r = cli(['-q', 'compare', ...args, '--format', 'json', '--no-plots']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as JsonOut;
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

test('Student t CDF matches known values', () => {
  close(tTwoSidedP(2.262, 9), 0.05, 2e-4);
  close(tTwoSidedP(1.96, 1e6), 0.05, 2e-4);
  close(tTwoSidedP(1.96, 1e9), 0.0499958, 1e-6); // the normal limit
  close(tTwoSidedP(12.706, 1), 0.05, 1e-4);
  close(tTwoSidedP(3.169, 10), 0.01, 1e-4);
  close(tTwoSidedP(1, 1), 0.5, 1e-12); // Cauchy: P(|T| > 1) = 1/2
  close(tTwoSidedP(2, 2), 1 - 2 / Math.sqrt(6), 1e-12); // df 2 has a closed form
  close(studentTCdf(0, 5), 0.5, 1e-15);
  close(studentTCdf(2.262, 9), 0.975, 1e-4);
  close(studentTCdf(-2.262, 9), 0.025, 1e-4);
  close(studentTCdf(-1.96, 1e6) + studentTCdf(1.96, 1e6), 1, 1e-12);
  assert.equal(tTwoSidedP(Infinity, 3), 0);
  assert.ok(Number.isNaN(tTwoSidedP(1, 0)));
  close(regularizedIncompleteBeta(0.3, 2, 3), 0.3483, 1e-12);
  close(logGamma(10), Math.log(362880), 1e-12);
  close(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-12);
});

test('mean, sample std and the paired t-test against hand computations', () => {
  close(mean([0.69, 0.7, 0.73]), 0.7066667, 1e-7);
  close(sampleStd([0.69, 0.7, 0.73]), Math.sqrt(0.00086667 / 2), 1e-6);
  close(sampleStd([0.7, 0.72, 0.74]), 0.02, 1e-12);
  assert.ok(Number.isNaN(sampleStd([1])));
  const t = pairedTTest([0.69, 0.7, 0.73], [0.7, 0.72, 0.74]);
  assert.equal(t.n, 3);
  assert.equal(t.df, 2);
  close(t.t, -4, 1e-9);
  close(t.p, 1 - 4 / Math.sqrt(18), 1e-9);
  assert.ok(Number.isNaN(pairedTTest([1], [2]).p), 'one pair: n/a');
  assert.equal(pairedTTest([1, 2], [1, 2]).p, 1, 'no difference at all: p = 1');
  assert.equal(pairedTTest([2, 3], [1, 2]).p, 0, 'a constant nonzero difference: p = 0');
});

test('config flattening and differences', () => {
  const a = flattenConfig({ name: 'x', description: 'a', model: { residual: 'both', hidden: [16, 8] }, tasks: [{ name: 'ctr', pos_weight: 1 }], runtime: { seed: 1 } });
  assert.deepEqual(a, {
    name: 'x',
    description: 'a',
    'model.residual': 'both',
    'model.hidden': '[16,8]',
    'tasks[0].name': 'ctr',
    'tasks[0].pos_weight': '1',
    'runtime.seed': '1',
  });
  const b = flattenConfig({ name: 'y', description: 'b', model: { residual: 'none', hidden: [16, 8] }, tasks: [{ name: 'ctr', pos_weight: 5 }], runtime: { seed: 1 } });
  assert.deepEqual(configDiff([a, b]), ['model.residual', 'tasks[0].pos_weight']);
});

// ---------------------------------------------------------------------------------------------
// The command on fake runs
// ---------------------------------------------------------------------------------------------

test('compare: seed groups, best values, config differences and p-values (json)', () => {
  const exp = fakeExperiment();
  const out = compareJson([exp]);
  assert.deepEqual(out.splits, ['eval']);
  assert.deepEqual(Object.keys(out.config_differences), ['model.residual', 'runtime.seed']);
  assert.deepEqual(out.config_differences['model.residual'], ['both', 'none', 'feature', 'logit']);
  assert.deepEqual(
    out.rows.map((r) => r.label),
    ['model.residual=both', 'model.residual=none', 'model.residual=feature', 'abl/20260101-000008-11111111'],
  );
  const [both, none, feature, failed] = out.rows as [JsonRow, JsonRow, JsonRow, JsonRow];
  assert.equal(out.reference, 'model.residual=both');
  assert.deepEqual([both.n, none.n, feature.n], [3, 3, 1]);
  assert.deepEqual(both.seeds, [1, 2, 3]);

  // mean and sample std of the groups
  close(both.metrics['ctr auc']!.mean, 0.72, 1e-12);
  close(both.metrics['ctr auc']!.std!, 0.02, 1e-12);
  close(none.metrics['ctr auc']!.mean, 0.7066667, 1e-7);
  close(none.metrics['ctr auc']!.std!, 0.0208167, 1e-7);
  assert.equal(feature.metrics['ctr auc']!.std, null);

  // best: highest auc (feature), lowest logloss (both)
  assert.deepEqual(
    out.rows.filter((r) => !r.excluded).map((r) => r.metrics['ctr auc']!.best),
    [false, false, true],
  );
  assert.deepEqual(
    out.rows.filter((r) => !r.excluded).map((r) => r.metrics['ctr logloss']!.best),
    [true, false, false],
  );
  assert.ok(out.columns.find((c) => c.key === 'ctr logloss')!.higher_is_better === false);

  // paired t-test of none against both (paired by seed)
  const pAuc = none.metrics['ctr auc']!;
  assert.equal(pAuc.pairs, 3);
  close(pAuc.p_value!, 1 - 4 / Math.sqrt(18), 1e-6);
  assert.equal(pAuc.significant, false);
  const tLog = 0.011 / (0.001 / Math.sqrt(3));
  close(none.metrics['ctr logloss']!.p_value!, 1 - tLog / Math.sqrt(2 + tLog * tLog), 1e-6);
  assert.equal(none.metrics['ctr logloss']!.significant, true);
  // feature shares only seed 1 with both: one pair, n/a
  assert.equal(feature.metrics['ctr auc']!.pairs, 1);
  assert.equal(feature.metrics['ctr auc']!.p_value, null);
  assert.equal(both.metrics['ctr auc']!.p_value, undefined);

  // the failed run is listed but left out
  assert.equal(failed.status, 'failed');
  assert.equal(failed.excluded, true);
  assert.deepEqual(failed.metrics, {});
});

test('compare: text table marks significant, tied and untested leaders; md and csv outputs', () => {
  const exp = fakeExperiment();
  const r = cli(['-q', 'compare', exp, '--no-plots', '--all']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(r.stdout, /config differences.*\n\s+model\.residual\s+both \| none \| feature \| logit\n\s+runtime\.seed\s+1 \| 2 \| 3/);
  assert.doesNotMatch(r.stdout, /^\s+description/m);
  const row = (label: string) => lines.find((l) => l.startsWith(label))!;
  // auc: feature (one run) leads but shares one seed with the runner-up: untested
  assert.match(row('model.residual=feature'), /0\.7500\?/);
  assert.match(row('model.residual=both'), /0\.7200 ± 0\.0200 /);
  // logloss: both beats none, p = 0.0027406 and wrecall p = 0.00916; Holm over these 2 leader
  // tests: 0.0054812 and 0.00916, both < 0.05
  assert.match(row('model.residual=both'), /0\.2900 ± 0\.0100\*/);
  assert.match(row('model.residual=both'), /0\.5200 ± 0\.0200\*/);
  assert.doesNotMatch(row('model.residual=none'), /\d[*=?]/);
  assert.match(row('abl/20260101-000008-11111111'), /failed/);
  assert.match(r.stdout, /^\* best, and better than the runner-up: paired t-test by seed, Holm-adjusted p < 0\.05$/m);
  assert.match(r.stdout, /^= tied for best/m);
  assert.match(r.stdout, /^\? best value, untested/m);
  assert.match(r.stdout, /^correction: Holm–Bonferroni across the 2 leader tests of this table/m);
  // p-value table, Holm-adjusted over none's 3 tests (feature's are n/a): logloss 3 · 0.0027406 =
  // 0.0082218 (significant), wrecall 2 · 0.00916 = 0.0183, auc 0.0572 (not)
  const pLine = lines.filter((l) => l.startsWith('model.residual=none')).at(-1)!;
  assert.match(pLine, /0\.0572 /);
  assert.match(pLine, /0\.0082\*/);
  assert.match(pLine, /0\.0183\*/);

  const md = cli(['-q', 'compare', exp, '--no-plots', '--format', 'md', '--all']);
  assert.equal(md.code, 0, md.stderr);
  assert.match(md.stdout, /\| group \| n \| seeds \| status \| ctr auc \| ctr logloss \| fused wrecall@10 \(macro\) \|/);
  assert.match(md.stdout, /\| model\.residual=feature \| 1 \| 1 \| completed \| 0\.7500\? \|/);
  assert.match(md.stdout, /^- \\\* best, and better than the runner-up/m);

  const csv = cli(['-q', 'compare', exp, '--no-plots', '--format', 'csv']);
  assert.equal(csv.code, 0, csv.stderr);
  const rows = parseCsv(csv.stdout);
  const head = rows[0]!;
  assert.equal(rows.length, 5);
  assert.ok(rows.every((r) => r.length === head.length), 'every csv line has as many cells as the header');
  const col = (name: string) => head.indexOf(name);
  assert.ok(col('ctr auc') > 0 && col('ctr auc std') > 0 && col('ctr auc p') > 0 && col('ctr logloss') > 0, 'csv keeps every metric');
  const tLog = 0.011 / (0.001 / Math.sqrt(3));
  close(Number(rows[2]![col('ctr logloss p adj')]), 3 * (1 - tLog / Math.sqrt(2 + tLog * tLog)), 1e-9);
  assert.equal(rows[1]![col('ctr logloss mark')], 'significant');
  // t interval of both's auc: 0.72 ± t(0.975, 2) · 0.02 / sqrt 3, t = 4.302653
  close(Number(rows[1]![col('ctr auc ci low')]), 0.72 - (4.302653 * 0.02) / Math.sqrt(3), 1e-6);
  close(Number(rows[1]![col('ctr auc')]), 0.72, 1e-7);
  close(Number(rows[2]![col('ctr auc std')]), 0.0208167, 1e-7);
  assert.equal(rows[4]![col('status')], 'failed');
  assert.equal(rows[1]![col('runtime.seed')], '1, 2, 3');
});

test('compare: the compact default fits 120 columns; leaders not significant after correction are tied', () => {
  const exp = fakeExperiment();
  const r = cli(['-q', 'compare', exp, '--no-plots']);
  assert.equal(r.code, 0, r.stderr);
  const long = r.stdout.split('\n').filter((l) => l.length > 120);
  assert.deepEqual(long, [], 'every line fits 120 columns');
  // compact: ctr auc and fused wrecall@10 (macro), no logloss
  assert.match(r.stdout, /ctr\s+fused\s*\n.*auc\s+wrecall@10 \(macro\)/);
  assert.doesNotMatch(r.stdout, /logloss\s/);
  // only both and none: auc 0.72 against 0.7067, p = 0.0572 -> tied
  const dirs = readdirSync(exp).sort().slice(0, 6).map((d) => path.join(exp, d));
  const two = cli(['-q', 'compare', ...dirs, '--no-plots', '--metrics', 'auc']);
  assert.equal(two.code, 0, two.stderr);
  const line = (label: string) => two.stdout.split('\n').find((l) => l.startsWith(label))!;
  assert.match(line('model.residual=both'), /0\.7200 ± 0\.0200=/);
  assert.match(line('model.residual=none'), /0\.7067 ± 0\.0208=/);
  const js = compareJson([...dirs, '--metrics', 'auc,logloss']);
  assert.equal((js as unknown as { correction: string }).correction, 'holm');
  assert.deepEqual(js.rows.map((x) => x.metrics['ctr auc']!.mark), ['tied', 'tied']);
  assert.deepEqual(js.rows.map((x) => x.metrics['ctr logloss']!.mark), ['significant', null]);
  // Holm over the 2 leader tests: auc 0.0572 stays, logloss 2 · 0.0027406
  const lead = (js.columns.find((c) => c.key === 'ctr logloss') as unknown as { leader_test: { p_adjusted: number; effect_size_dz: number; wilcoxon_p: number } }).leader_test;
  const tLog = 0.011 / (0.001 / Math.sqrt(3));
  close(lead.p_adjusted, 2 * (1 - tLog / Math.sqrt(2 + tLog * tLog)), 1e-9);
  close(lead.effect_size_dz, -11, 1e-9); // both - none = (-0.01, -0.011, -0.012)
  close(lead.wilcoxon_p, 0.25, 1e-12); // exact, n = 3: the smallest two-sided p is 2 / 8
  const none = cli(['-q', 'compare', ...dirs, '--no-plots', '--correction', 'none', '--format', 'json']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal((JSON.parse(none.stdout) as { correction: string }).correction, 'none');
  const bad = cli(['-q', 'compare', exp, '--no-plots', '--correction', 'bonferroni']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--correction bonferroni: expected one of holm, none/);
});

test('compare: --split, --metrics, --reference and --no-group', () => {
  const exp = fakeExperiment();
  const two = compareJson([exp, '--split', 'eval,valid', '--metrics', 'auc']);
  assert.deepEqual(
    two.columns.map((c) => c.key),
    ['eval: ctr auc', 'valid: ctr auc'],
  );
  close(two.rows[0]!.metrics['valid: ctr auc']!.mean, 0.6, 1e-12);
  assert.equal(two.rows[0]!.metrics['valid: ctr auc']!.n, 1);

  const ref = compareJson([exp, '--reference', 'model.residual=none']);
  assert.equal(ref.reference, 'model.residual=none');
  close(ref.rows[0]!.metrics['ctr auc']!.p_value!, 1 - 4 / Math.sqrt(18), 1e-6);

  const flat = compareJson([exp, '--no-group']);
  assert.equal(flat.rows.length, 8);
  assert.ok(flat.rows.every((r) => r.n <= 1));
  assert.equal(flat.rows[0]!.label, 'model.residual=both, runtime.seed=1');

  // single runs as arguments, with an experiment folder mixed in: no duplicates
  const dirs = readdirSync(exp).sort();
  const some = compareJson([path.join(exp, dirs[0]!), path.join(exp, dirs[1]!)]);
  assert.deepEqual(
    some.rows.map((r) => r.label),
    ['model.residual=both', 'model.residual=none'],
  );

  const bad = cli(['-q', 'compare', exp, '--reference', 'nope', '--no-plots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--reference nope/);
  const noSplit = cli(['-q', 'compare', exp, '--split', 'test', '--no-plots']);
  assert.equal(noSplit.code, 2);
  assert.match(noSplit.stderr, /split `test`.*eval, valid/);
  const neither = cli(['-q', 'compare', path.dirname(exp), '--no-plots']);
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /neither a run folder/);
  const missing = cli(['-q', 'compare', path.join(exp, 'no-such-run'), '--no-plots']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no-such-run/);
});

test('compare --baseline: passes, fails with exit 1, unmatched entries exit 2', () => {
  const exp = fakeExperiment();
  const dir = tempDir();
  const pass = writeFile(
    dir,
    'pass.yaml',
    `- { name: auc, task: ctr, split: eval, min: 0.70 }
- { name: logloss, task: ctr, max: 0.36 }
- { name: wrecall, task: fused, k: 10, variant: macro, value: 0.47, tolerance: 0.08 }
`,
  );
  const ok = cli(['-q', 'compare', exp, '--no-plots', '--baseline', pass]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /baseline .*pass\.yaml: 9 of 9 checks passed/);

  const fail = writeFile(dir, 'fail.json', JSON.stringify([{ name: 'auc', task: 'ctr', min: 0.71 }, { name: 'logloss', task: 'ctr', max: 0.3 }]));
  const bad = cli(['-q', 'compare', exp, '--no-plots', '--baseline', fail]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /FAIL model\.residual=none: eval: ctr auc = 0\.7067, expected >= 0\.71/);
  assert.match(bad.stdout, /FAIL model\.residual=none: eval: ctr logloss = 0\.3010, expected <= 0\.3/);
  assert.match(bad.stdout, /FAIL model\.residual=feature: eval: ctr logloss = 0\.3500, expected <= 0\.3/);
  assert.doesNotMatch(bad.stdout, /FAIL model\.residual=both/);
  assert.match(bad.stderr, /3 of 6 checks failed/);

  // json keeps stdout parsable and names the violations on stderr
  const js = cli(['-q', 'compare', exp, '--no-plots', '--format', 'json', '--baseline', fail]);
  assert.equal(js.code, 1);
  const parsed = JSON.parse(js.stdout) as JsonOut;
  assert.equal(parsed.baseline!.passed, false);
  assert.equal(parsed.baseline!.checks.filter((c) => !c.ok).length, 3);
  assert.match(js.stderr, /baseline: FAIL model\.residual=none: eval: ctr auc/);

  const unmatched = writeFile(dir, 'unmatched.yaml', '- { name: auc, task: cvr, min: 0.5 }\n');
  const u = cli(['-q', 'compare', exp, '--no-plots', '--baseline', unmatched]);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /entry 1 \(auc cvr split eval\) matches no metric/);

  const malformed = writeFile(dir, 'malformed.yaml', '- { name: auc, task: ctr, minimum: 0.5 }\n');
  const m = cli(['-q', 'compare', exp, '--no-plots', '--baseline', malformed]);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /unknown key `minimum`/);
});

test('compare writes SVG plots and a self-contained report.html', () => {
  const exp = fakeExperiment();
  const out = path.join(tempDir(), 'plots');
  const r = cli(['-q', 'compare', exp, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const files = readdirSync(out).sort();
  for (const f of ['metric-auc.svg', 'metric-logloss.svg', 'metric-wrecall.svg', 'curves.svg', 'report.html']) assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
  assert.ok(!files.includes('tradeoff.svg'), 'no run records a scoring cost: no quality-vs-latency chart');
  for (const f of files.filter((f) => f.endsWith('.svg'))) {
    const svg = readFileSync(path.join(out, f), 'utf8');
    assert.match(svg, /^<svg/);
    assert.match(svg, /<\/svg>\s*$/);
  }
  // one training-curves chart: a line per row (4 rows, the failed one included), a panel per series
  const curve = readFileSync(path.join(out, 'curves.svg'), 'utf8');
  assert.match(curve, /training curves/);
  assert.match(curve, /validation ctr AUC/);
  assert.match(curve, /train ctcvr loss/);
  for (const label of ['model.residual=both', 'model.residual=none', 'model.residual=feature']) assert.ok(curve.includes(label), label);
  // dot and interval, not bars: no bar path is cut above zero
  const auc = readFileSync(path.join(out, 'metric-auc.svg'), 'utf8');
  assert.match(auc, /95% t interval/);
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.equal((html.match(/<svg/g) ?? []).length, files.filter((f) => f.endsWith('.svg')).length);
  assert.match(html, /<div class="scroll"><table>/);
  assert.match(html, /Holm–Bonferroni across the 2 leader tests/);
  assert.match(html, /model\.residual=both/);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<link/i);
  assert.doesNotMatch(html, /(?:href|src)\s*=\s*["']?(?:https?:)?\/\//i);
  assert.doesNotMatch(html, /@import|url\((?!#)/);

  // default output folder: <experiment>/compare; compare skips it when reading the experiment
  const d = cli(['-q', 'compare', exp, '--metrics', 'auc']);
  assert.equal(d.code, 0, d.stderr);
  assert.ok(existsSync(path.join(exp, 'compare', 'report.html')));
  const again = compareJson([exp]);
  assert.equal(again.rows.length, 4);
});

test('compare end to end: two real quick runs', () => {
  const dir = tempDir();
  const runs = path.join(dir, 'runs');
  const config = writeFile(dir, 'exp.yaml', tinyConfigYaml());
  for (const seed of [1, 2]) {
    const r = cli(['-q', 'train', config, '--runs-dir', runs, '--set', `runtime.seed=${seed}`, '--backend', 'wasm']);
    assert.equal(r.code, 0, r.stderr);
  }
  const exp = path.join(runs, 'test');
  const out = compareJson([exp, '--metrics', 'auc,logloss']);
  assert.deepEqual(Object.keys(out.config_differences), ['runtime.seed']);
  assert.equal(out.rows.length, 1);
  assert.equal(out.rows[0]!.label, 'test');
  assert.equal(out.rows[0]!.n, 2);
  assert.deepEqual(out.rows[0]!.seeds, [1, 2]);
  const auc = out.rows[0]!.metrics['ctr auc']!;
  close(auc.mean, mean(auc.values), 1e-12);
  close(auc.std!, sampleStd(auc.values), 1e-12);
  // `--metrics cost` names the scoring-cost column (run.json), not a metric record
  const scoring = readdirSync(exp).filter((d) => d !== 'compare').map((d) => (JSON.parse(readFileSync(path.join(exp, d, 'run.json'), 'utf8')) as { cost: { scoring_us_per_1000: number } }).cost.scoring_us_per_1000);
  for (const metrics of ['auc,cost', 'cost']) {
    const withCost = compareJson([exp, '--metrics', metrics]);
    assert.deepEqual(withCost.columns.map((c) => c.key), [...(metrics === 'cost' ? [] : ['ctr auc', 'ctcvr auc']), 'cost µs/1000']);
    close(withCost.rows[0]!.metrics['cost µs/1000']!.mean, mean(scoring), 1e-9);
  }

  const table = cli(['-q', 'compare', exp, '--no-group', '--metrics', 'auc']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /runtime\.seed=1/);
  assert.match(table.stdout, /runtime\.seed=2/);
  assert.match(table.stdout, /0\.\d{4}[?]/, 'one run per row: the leader is untested');
  assert.ok(existsSync(path.join(exp, 'compare', 'report.html')));
  const written = readdirSync(path.join(exp, 'compare'));
  assert.ok(written.includes('curves.svg') && written.includes('tradeoff.svg'), written.join(', '));
  assert.match(readFileSync(path.join(exp, 'compare', 'tradeoff.svg'), 'utf8'), /Pareto front/);
});

test('rows are labelled by the configs\' descriptions when those tell them apart', () => {
  const root = tempDir('resflow-compare-');
  const expDir = path.join(root, 'abl');
  writeFakeRun(expDir, { ...FAKE_RUNS[0]!, description: 'with residuals' });
  writeFakeRun(expDir, { ...FAKE_RUNS[1]!, description: 'independent towers' });
  const r = cli(['compare', expDir, '--no-plots']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^with residuals\s/m);
  assert.match(r.stdout, /^independent towers\s/m);
});
