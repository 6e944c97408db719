/**
 * The bootstrap over requests for a single run (docs/domain.md, Comparing runs): each metric as a
 * function of request counts is checked against recomputing the metric on the resampled data set
 * itself (requests copied, evaluateMetrics on the copy); the percentile interval against a second,
 * straightforward implementation (same seed, identical numbers) and against the normal-theory
 * interval of a mean; determinism; and `resflow eval --bootstrap` end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Rng } from '../src/base/rng.js';
import { evaluateRun, loadTrainedRun } from '../src/app/evaluate-run.js';
import { silentReporter } from '../src/app/reporter.js';
import { evaluateMetrics, type EvalInput, type MetricRecord } from '../src/metrics/registry.js';
import { requestResampling } from '../src/metrics/resample.js';
import { withRequestIntervals } from '../src/report/request-intervals.js';
import { bootstrapIntervals, mean, sampleStd } from '../src/report/statistics.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const key = (r: { name: string; task: string; k?: number; variant?: string }) => `${r.name}|${r.task}|${r.k ?? ''}|${r.variant ?? ''}`;

/** A small evaluation with everything the metrics read: pools of 3-12 rows, tied scores, masks, users, weights, targets, online inputs. */
function smallInput(seed: number, requests = 30, gaucGroup: 'request' | 'user' = 'request'): EvalInput {
  const rng = new Rng(seed);
  const req: number[] = [];
  for (let q = 0; q < requests; q++) for (let i = 0, m = 3 + rng.int(10); i < m; i++) req.push(q);
  const n = req.length;
  const f32 = (f: () => number) => Float32Array.from({ length: n }, f);
  const u8 = (p: number) => Uint8Array.from({ length: n }, () => (rng.next() < p ? 1 : 0));
  // scores rounded to tenths: many ties, inside and across requests
  const ctr = f32(() => Math.round(rng.next() * 10) / 10);
  const ctcvr = f32(() => Math.round(rng.next() * 10) / 10);
  const exposed = u8(0.5);
  return {
    split: 'eval',
    metrics: ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash', 'online'],
    ks: [2, 5, 50],
    tasks: ['ctr', 'ctcvr'],
    probs: { ctr, ctcvr },
    labels: { ctr: u8(0.3), ctcvr: u8(0.15) },
    masks: { ctr: exposed, ctcvr: exposed },
    fused: Float64Array.from(ctr, (p, i) => p + 2 * ctcvr[i]!),
    requests: Int32Array.from(req),
    users: Int32Array.from(req, (q) => q % 7),
    gaucGroup,
    itemWeights: Float64Array.from({ length: n }, () => (rng.next() < 0.2 ? 1 + rng.int(3) : 0)),
    ashTargets: u8(0.25),
    online: { teacherCtcvr: f32(() => rng.next()), relevanceCtr: f32(() => rng.next()), relevanceCvr: f32(() => rng.next() * 0.2), exposed },
  };
}

/** The data set in which request q appears counts[q] times, each copy a request of its own (users kept). */
function expand(input: EvalInput, counts: Uint32Array): EvalInput {
  const rows: number[] = [];
  const req: number[] = [];
  let next = 0;
  for (let q = 0; q < counts.length; q++) {
    for (let c = 0; c < counts[q]!; c++, next++) {
      input.requests!.forEach((r, i) => {
        if (r === q) rows.push(i), req.push(next);
      });
    }
  }
  type Column = Float32Array | Float64Array | Uint8Array | Int8Array | Int32Array;
  const pick = <T extends Column>(a: T): T => new (a.constructor as new (xs: number[]) => T)(rows.map((i) => a[i]!));
  const per = <T extends Column>(o: Readonly<Record<string, T | undefined>>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, pick(v!)]));
  const on = input.online!;
  return {
    ...input,
    probs: per(input.probs) as Record<string, Float32Array>,
    labels: per(input.labels) as Record<string, Uint8Array>,
    masks: per(input.masks!) as Record<string, Uint8Array>,
    fused: pick(input.fused as Float64Array),
    requests: Int32Array.from(req),
    users: pick(input.users!),
    itemWeights: pick(input.itemWeights as Float64Array),
    ashTargets: pick(input.ashTargets as Uint8Array),
    online: { teacherCtcvr: pick(on.teacherCtcvr as Float32Array), relevanceCtr: pick(on.relevanceCtr as Float32Array), relevanceCvr: pick(on.relevanceCvr as Float32Array), exposed: pick(on.exposed) },
  };
}

test('every metric as a function of request counts equals the metric recomputed on the resampled data set', () => {
  for (const group of ['request', 'user'] as const) {
    const input = smallInput(5, 30, group);
    const { units, unit, metrics } = requestResampling(input);
    assert.equal(units, 30);
    assert.equal(unit, 'request');
    const records = evaluateMetrics(input);
    assert.deepEqual(metrics.map(key).sort(), records.map(key).sort(), 'one function per record');
    // all counts 1: the records themselves
    const ones = new Uint32Array(units).fill(1);
    for (const r of records) {
      const m = metrics.find((x) => key(x) === key(r))!;
      assert.ok(Math.abs(m.at(ones) - r.value) <= 1e-12, `${key(r)} at ones: ${m.at(ones)} != ${r.value}`);
    }
    // resamples drawn with replacement: requests missing, doubled, tripled
    const rng = new Rng(11);
    for (let b = 0; b < 8; b++) {
      const counts = new Uint32Array(units);
      for (let i = 0; i < units; i++) counts[rng.int(units)]!++;
      const recomputed = evaluateMetrics(expand(input, counts));
      for (const r of recomputed) {
        const got = metrics.find((x) => key(x) === key(r))!.at(counts);
        if (Number.isNaN(r.value)) assert.ok(Number.isNaN(got), `${key(r)}: NaN expected`);
        else assert.ok(Math.abs(got - r.value) <= 1e-12, `gauc by ${group}, resample ${b}, ${key(r)}: ${got} != ${r.value}`);
      }
    }
  }
});

test('without request ids AUC and LogLoss resample rows; the @K metrics have no interval', () => {
  const input = { ...smallInput(2), metrics: ['auc', 'logloss'], requests: undefined, fused: undefined };
  const { units, unit, metrics } = requestResampling(input);
  assert.equal(unit, 'row');
  assert.equal(units, input.probs['ctr']!.length);
  assert.deepEqual(metrics.map(key), ['auc|ctr||', 'auc|ctcvr||', 'logloss|ctr||', 'logloss|ctcvr||']);
});

/** Type-7 quantile, written out again: h = (N - 1) p, x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]). */
function quantile7(sorted: number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const i = Math.floor(h);
  return i + 1 < sorted.length ? sorted[i]! + (h - i) * (sorted[i + 1]! - sorted[i]!) : sorted[i]!;
}

test('percentile bootstrap: a second, straightforward implementation with the same seed gives identical numbers', () => {
  // 10 requests of 8 candidates, |T| of 1, 2 or 4 all-scenario targets: every ASH@4 share is a
  // multiple of 1/4, so every sum is exact whatever its order and both implementations agree bit for bit
  const rng = new Rng(3);
  const req: number[] = [];
  const targets: number[] = [];
  const scores: number[] = [];
  for (let q = 0; q < 10; q++) {
    const t = [1, 2, 4][rng.int(3)]!;
    for (let i = 0; i < 8; i++) req.push(q), targets.push(i < t ? 1 : 0), scores.push(rng.next());
  }
  const input: EvalInput = {
    split: 'eval', metrics: ['ash'], ks: [4], tasks: [],
    probs: {}, labels: {}, fused: Float64Array.from(scores), requests: Int32Array.from(req), ashTargets: Uint8Array.from(targets),
  };
  const macro = requestResampling(input).metrics.find((m) => m.variant === 'macro')!;
  const [ci] = bootstrapIntervals(10, [macro.at], { resamples: 200, seed: 9 });

  // straightforward: each request's share by sorting its pool, then resample the shares themselves
  const share: number[] = [];
  for (let q = 0; q < 10; q++) {
    const rows = req.flatMap((r, i) => (r === q ? [i] : [])).sort((a, b) => scores[b]! - scores[a]! || a - b);
    share.push(rows.slice(0, 4).filter((i) => targets[i]).length / rows.filter((i) => targets[i]).length);
  }
  const draws = new Rng(9, 0xb007); // the stream the module documents
  const means: number[] = [];
  for (let b = 0; b < 200; b++) {
    const picked = Array.from({ length: 10 }, () => share[draws.int(10)]!);
    means.push(picked.reduce((s, x) => s + x, 0) / 10);
  }
  means.sort((a, b) => a - b);
  // the bounds at p = (1 - level) / 2 and (1 + level) / 2 as the module computes them (0.025 and 0.975 but for rounding)
  assert.equal(ci!.low, quantile7(means, (1 - 0.95) / 2));
  assert.equal(ci!.high, quantile7(means, (1 + 0.95) / 2));
  assert.ok(ci!.low < ci!.high);
});

test('the bootstrap interval of a mean of per-request values approaches the normal-theory interval mean ± 1.96 s/√n', () => {
  // 2,000 requests with a continuous per-request value: the online outcome at K = 3
  const input = { ...smallInput(8, 2000), metrics: ['online'], ks: [3] };
  const { units, metrics } = requestResampling(input);
  const f = metrics[0]!;
  // the per-request values, read off one request at a time (counts e_q: only request q)
  const values: number[] = [];
  const e = new Uint32Array(units);
  for (let q = 0; q < units; q++) {
    e[q] = 1;
    const v = f.at(e);
    if (!Number.isNaN(v)) values.push(v);
    e[q] = 0;
  }
  const m = mean(values);
  const se = sampleStd(values) / Math.sqrt(values.length);
  // Tolerance per bound, in units of se. With B resamples, the 2.5% / 97.5% sample quantiles have a
  // Monte Carlo standard deviation of sqrt(p (1 - p) / B) / phi(1.96) se = 0.060 se (B = 2000); the
  // plug-in variance (n rather than n - 1) shrinks the interval by a factor sqrt((n - 1)/n) (< 0.001 se
  // here); skewness g moves a percentile bound by about g (1.96^2 - 1) / (6 sqrt n) se (< 0.03 se for
  // |g| < 3 and n ~ 1,900). 4 Monte Carlo standard deviations plus those: 0.3 se.
  const tol = 0.3 * se;
  for (const seed of [1, 2, 3]) {
    const [ci] = bootstrapIntervals(units, [f.at], { resamples: 2000, seed });
    assert.ok(Math.abs(ci!.low - (m - 1.96 * se)) <= tol, `seed ${seed}: low ${ci!.low} vs ${m - 1.96 * se} (tolerance ${tol})`);
    assert.ok(Math.abs(ci!.high - (m + 1.96 * se)) <= tol, `seed ${seed}: high ${ci!.high} vs ${m + 1.96 * se} (tolerance ${tol})`);
  }
  assert.ok(Math.abs(m - evaluateMetrics(input)[0]!.value) < 1e-12, 'the values are the ones the metric averages');
});

test('intervals on the records: seeded, deterministic, bracketing the value; the records otherwise unchanged', () => {
  const input = smallInput(4, 60);
  const records = evaluateMetrics(input);
  const a = withRequestIntervals(input, records, { resamples: 300, seed: 42 });
  const b = withRequestIntervals(input, records, { resamples: 300, seed: 42 });
  const c = withRequestIntervals(input, records, { resamples: 300, seed: 43 });
  assert.deepEqual(a, b, 'same seed, same intervals');
  assert.notDeepEqual(a, c, 'another seed, other draws');
  a.forEach((r, i) => {
    const { ci_low, ci_high, ci_resamples, ci_seed, ...rest } = r;
    assert.deepEqual(rest, records[i], 'value and support unchanged');
    assert.equal(ci_resamples, 300);
    assert.equal(ci_seed, 42);
    if (Number.isFinite(r.value)) assert.ok(ci_low! <= ci_high!, key(r));
  });
  // a 95% interval of a smooth statistic holds its own estimate
  const auc = a.find((r) => r.name === 'auc' && r.task === 'ctr')!;
  assert.ok(auc.ci_low! < auc.value && auc.value < auc.ci_high!);
});

test('resflow eval --bootstrap records ci_low/ci_high; without it metrics.json stays byte for byte; compare shows a single run\'s interval', async () => {
  const dir = tempDir();
  const cfg = writeFile(dir, 'exp.yaml', tinyConfigYaml());
  const t = cli(['-q', 'train', cfg, '--runs-dir', dir]);
  assert.equal(t.code, 0, t.stderr);
  const run = t.stdout.trim().split('\n').pop()!;
  const file = path.join(run, 'metrics.json');
  const before = readFileSync(file);
  await evaluateRun(await loadTrainedRun(run, silentReporter), { split: 'eval' }, silentReporter);
  assert.ok(readFileSync(file).equals(before), 'eval without --bootstrap writes the same bytes');

  const bad = cli(['eval', run, '--bootstrap-seed', '3']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--bootstrap-seed needs --bootstrap/);

  const r = cli(['-q', 'eval', run, '--bootstrap', '200']);
  assert.equal(r.code, 0, r.stderr);
  const old = JSON.parse(before.toString()) as MetricRecord[];
  const now = JSON.parse(readFileSync(file, 'utf8')) as (MetricRecord & { ci_low: number | null })[];
  assert.equal(now.length, old.length);
  now.forEach((x, i) => {
    assert.equal(x.value, old[i]!.value, key(x));
    if (x.split === 'eval') {
      assert.equal(x.ci_resamples, 200);
      assert.equal(x.ci_seed, 42, 'the run\'s runtime.seed');
      if (x.value !== null) assert.ok(x.ci_low !== null && x.ci_low <= x.ci_high!, key(x));
    } else assert.equal(x.ci_resamples, undefined, 'the oracle gets none');
  });
  assert.match(readFileSync(path.join(run, 'metrics.csv'), 'utf8'), /^split,name,task,k,variant,value,ci_low,ci_high\n/);

  const cmp = cli(['compare', run, '--format', 'json']);
  assert.equal(cmp.code, 0, cmp.stderr);
  const row = (JSON.parse(cmp.stdout) as { rows: { metrics: Record<string, { mean: number; ci_low: number; ci_high: number; ci_method?: string }> }[] }).rows[0]!;
  const auc = row.metrics['ctr auc']!;
  const rec = now.find((x) => x.split === 'eval' && x.name === 'auc' && x.task === 'ctr')!;
  assert.deepEqual([auc.ci_low, auc.ci_high, auc.ci_method], [rec.ci_low, rec.ci_high, 'bootstrap']);
  const text = cli(['compare', run]);
  assert.ok(text.stdout.includes(`${rec.value.toFixed(4)} [${rec.ci_low!.toFixed(4)}, ${rec.ci_high!.toFixed(4)}]`), text.stdout);
  assert.match(text.stdout, /single runs: value \[95% bootstrap interval over requests/);
});
