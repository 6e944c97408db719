/**
 * The statistics of `resflow compare` against values computed independently: published table values
 * (Student t quantiles), enumeration of all sign assignments (Wilcoxon), a worked example done by hand
 * (Holm), and a direct computation of the bootstrap distribution's ingredients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootstrapInterval,
  cohenDz,
  holmAdjust,
  mean,
  normalUpperTail,
  quantileSorted,
  sampleStd,
  tInterval,
  tQuantile,
  wilcoxonSignedRank,
} from '../src/report/statistics.js';

const close = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} != ${b} (tolerance ${tol})`);

test('Student t quantiles match the published two-sided 95% and 99% table to 4 digits', () => {
  // t_{0.975, df} and t_{0.995, df} as printed in standard t tables (3 decimals, rounded)
  const t975: [number, number][] = [[1, 12.706], [2, 4.303], [3, 3.182], [4, 2.776], [5, 2.571], [9, 2.262], [10, 2.228], [20, 2.086], [30, 2.042], [120, 1.98]];
  for (const [df, v] of t975) close(tQuantile(0.975, df), v, 5e-4, `t(0.975, ${df})`);
  const t995: [number, number][] = [[1, 63.657], [2, 9.925], [5, 4.032], [10, 3.169], [30, 2.75]];
  for (const [df, v] of t995) close(tQuantile(0.995, df), v, 5e-4, `t(0.995, ${df})`);
  // closed forms: df 1 is Cauchy (tan), df 2 has t = (2p - 1) / sqrt(2 p (1 - p))
  close(tQuantile(0.9, 1), Math.tan(Math.PI * 0.4), 1e-9);
  const p = 0.8;
  close(tQuantile(p, 2), (2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 1e-9);
  close(tQuantile(0.025, 7), -tQuantile(0.975, 7), 1e-12);
  assert.equal(tQuantile(0.5, 3), 0);
  assert.ok(Number.isNaN(tQuantile(1, 3)));
});

test('t interval of the mean over seeds', () => {
  const xs = [0.7, 0.72, 0.74]; // mean 0.72, s 0.02, n 3: half width 4.303 * 0.02 / sqrt 3
  const ci = tInterval(xs);
  close(ci.low, 0.72 - (4.3027 * 0.02) / Math.sqrt(3), 1e-5);
  close(ci.high, 0.72 + (4.3027 * 0.02) / Math.sqrt(3), 1e-5);
  assert.equal(ci.method, 't');
  assert.ok(Number.isNaN(tInterval([0.7]).low), 'one seed: no interval');
});

/** The exact two-sided p-value by listing all 2^n sign assignments of the ranks of |d|. */
function enumeratedWilcoxonP(d: number[]): number {
  const nz = d.filter((x) => x !== 0);
  const abs = nz.map(Math.abs);
  // midranks, computed here by counting rather than by sorting
  const rank = abs.map((x) => abs.filter((y) => y < x).length + (abs.filter((y) => y === x).length + 1) / 2);
  const w = nz.reduce((s, x, i) => s + (x > 0 ? rank[i]! : 0), 0);
  let le = 0;
  let ge = 0;
  const n = nz.length;
  for (let mask = 0; mask < 1 << n; mask++) {
    let s = 0;
    for (let i = 0; i < n; i++) if (mask & (1 << i)) s += rank[i]!;
    if (s <= w + 1e-9) le++;
    if (s >= w - 1e-9) ge++;
  }
  return Math.min(1, (2 * Math.min(le, ge)) / 2 ** n);
}

test('Wilcoxon signed-rank: exact p-values equal the enumeration of all sign assignments (with ties and zeros)', () => {
  const cases: [number[], number[]][] = [
    [[0.71, 0.73, 0.69, 0.75, 0.7], [0.7, 0.7, 0.7, 0.7, 0.7]],
    [[1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 0]],
    [[1, -1, 2, -2, 3, 0, 4, 4, -5, 6], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], // ties in |d| and a zero
    [[0.3, -0.1, 0.2, 0.25, -0.05, 0.4, 0.1, 0.15, -0.2, 0.35, 0.05, 0.3], new Array(12).fill(0)],
  ];
  for (const [a, b] of cases) {
    const w = wilcoxonSignedRank(a, b);
    assert.equal(w.exact, true);
    close(w.p, enumeratedWilcoxonP(a.map((x, i) => x - b[i]!)), 1e-12, `case ${a.join(',')}`);
  }
  // all 8 differences positive: p = 2 / 2^8
  close(wilcoxonSignedRank([1, 2, 3, 4, 5, 6, 7, 8], new Array(8).fill(0)).p, 2 / 256, 1e-15);
  // textbook value: n = 10, W+ = 8 has a two-sided exact p of 0.0488 (tables: critical value 8 at 0.05)
  const d10 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((r) => (r === 3 || r === 5 ? r : -r)); // W+ = 3 + 5 = 8
  const w10 = wilcoxonSignedRank(d10, new Array(10).fill(0));
  assert.equal(w10.wPlus, 8);
  close(w10.p, 0.048828125, 1e-12);
  assert.ok(Number.isNaN(wilcoxonSignedRank([1, 2], [1, 2]).p), 'no nonzero difference: n/a');
  // above 20 pairs: the normal approximation, close to the exact value
  const big = Array.from({ length: 25 }, (_, i) => (i % 3 === 0 ? -(i + 1) : i + 1));
  const approx = wilcoxonSignedRank(big, new Array(25).fill(0));
  assert.equal(approx.exact, false);
  close(normalUpperTail(1.959964), 0.025, 1e-6);
  assert.ok(approx.p > 0 && approx.p < 1);
});

test('Holm–Bonferroni on a worked example', () => {
  // p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06,
  // 0.04·1 = 0.04 -> monotone 0.06. Adjusted in input order: 0.03, 0.06, 0.06, 0.02.
  const adj = holmAdjust([0.01, 0.04, 0.03, 0.005]);
  [0.03, 0.06, 0.06, 0.02].forEach((v, i) => close(adj[i]!, v, 1e-15));
  const withNa = holmAdjust([0.2, NaN, 0.01]);
  close(withNa[0]!, 0.2, 1e-15);
  assert.ok(Number.isNaN(withNa[1]!));
  close(withNa[2]!, 0.02, 1e-15);
  assert.deepEqual(holmAdjust([0.6, 0.9]), [1, 1]);
});

test("Cohen's d_z: mean difference over the difference's standard deviation", () => {
  // d = (0.01, 0.011, 0.012): mean 0.011, sd 0.001 -> 11
  close(cohenDz([0.31, 0.291, 0.302], [0.3, 0.28, 0.29]), 11, 1e-9);
  assert.ok(Number.isNaN(cohenDz([1], [0])));
});

test('bootstrap interval: seeded, brackets the estimate, and degenerate data gives a point', () => {
  const values = Array.from({ length: 200 }, (_, i) => (i % 5) / 4); // mean 0.5
  const stat = (c: Uint32Array) => {
    let s = 0;
    let n = 0;
    c.forEach((k, i) => ((s += k * values[i]!), (n += k)));
    return s / n;
  };
  const a = bootstrapInterval(values.length, stat, { resamples: 400, seed: 7 });
  const b = bootstrapInterval(values.length, stat, { resamples: 400, seed: 7 });
  assert.deepEqual(a, b, 'same seed, same interval');
  assert.ok(a.low < 0.5 && a.high > 0.5);
  // the percentile interval of a mean is close to mean ± 1.96 sd/sqrt(n)
  const se = sampleStd(values) / Math.sqrt(values.length);
  close(a.high - a.low, 2 * 1.96 * se, 0.3 * 2 * 1.96 * se);
  const flat = bootstrapInterval(10, () => 0.25, { resamples: 50, seed: 1 });
  assert.deepEqual([flat.low, flat.high], [0.25, 0.25]);
  close(quantileSorted([1, 2, 3, 4], 0.5), 2.5, 1e-15);
  close(mean([1, 2, 3]), 2, 0);
});
