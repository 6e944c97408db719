/**
 * The statistics of `resflow compare` (docs/domain.md, Comparing runs): mean, sample standard
 * deviation, t-based confidence intervals over seeds, the paired t-test and the Wilcoxon signed-rank
 * test (exact for n <= 20), Holm–Bonferroni adjustment, Cohen's d_z, and a seeded percentile
 * bootstrap over requests. The Student t distribution comes from the regularized incomplete beta
 * function. Nothing here reads files or knows about runs.
 */
import { Rng } from '../base/rng.js';

/** p-values below this are marked as significant. */
export const SIGNIFICANCE = 0.05;

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (denominator n - 1); NaN for fewer than 2 values. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz, as in Numerical Recipes). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const TINY = 1e-300;
  const EPS = 1e-15;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1_000_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1]. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0) || Number.isNaN(x)) return NaN;
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  const front = Math.exp(lnFront);
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** P(T <= t) for Student's t distribution with `df` degrees of freedom (df > 0, not necessarily whole). */
export function studentTCdf(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** Two-sided p-value of a t statistic: P(|T| >= |t|). */
export function tTwoSidedP(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (!Number.isFinite(t)) return 0;
  return Math.min(1, regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5));
}

export interface PairedTTest {
  /** Number of pairs. */
  n: number;
  /** Mean of a - b. */
  meanDiff: number;
  t: number;
  df: number;
  /** Two-sided p-value; NaN (n/a) with fewer than 2 pairs. */
  p: number;
}

/**
 * Paired t-test of a against b (same length, pairs by position). Differences all equal: p = 1 when
 * they are 0, else p = 0 (t is infinite).
 */
export function pairedTTest(a: readonly number[], b: readonly number[]): PairedTTest {
  if (a.length !== b.length) throw new RangeError(`paired t-test: ${a.length} values against ${b.length}`);
  const d = a.map((x, i) => x - b[i]!);
  const n = d.length;
  const md = mean(d);
  if (n < 2) return { n, meanDiff: md, t: NaN, df: n - 1, p: NaN };
  const sd = sampleStd(d);
  const df = n - 1;
  if (sd === 0 || sd < Math.abs(md) * 1e-14) {
    if (md === 0) return { n, meanDiff: 0, t: NaN, df, p: 1 };
    return { n, meanDiff: md, t: md > 0 ? Infinity : -Infinity, df, p: 0 };
  }
  const t = md / (sd / Math.sqrt(n));
  return { n, meanDiff: md, t, df, p: tTwoSidedP(t, df) };
}

/** The quantile of Student's t: the t with P(T <= t) = p (0 < p < 1), by bisection on the CDF. */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) return NaN;
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface Interval {
  low: number;
  high: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** How it was computed: `t` (over seeds) or `bootstrap` (over requests). */
  method: 't' | 'bootstrap';
}

/** t-based confidence interval of the mean: mean ± t_{(1+level)/2, n-1} · s / √n; NaN bounds with fewer than 2 values. */
export function tInterval(xs: readonly number[], level = 0.95): Interval {
  const n = xs.length;
  if (n < 2) return { low: NaN, high: NaN, level, method: 't' };
  const m = mean(xs);
  const half = tQuantile((1 + level) / 2, n - 1) * (sampleStd(xs) / Math.sqrt(n));
  return { low: m - half, high: m + half, level, method: 't' };
}

/** Cohen's d_z for paired values: mean(a - b) / sd(a - b); NaN with fewer than 2 pairs or sd 0. */
export function cohenDz(a: readonly number[], b: readonly number[]): number {
  const d = a.map((x, i) => x - b[i]!);
  const sd = sampleStd(d);
  return d.length < 2 || !(sd > 0) ? NaN : mean(d) / sd;
}

export interface WilcoxonTest {
  /** Pairs with a nonzero difference (zeros are dropped, Wilcoxon's rule). */
  n: number;
  /** Sum of the ranks of |d| over positive differences. */
  wPlus: number;
  /** Two-sided p-value; NaN when no difference is nonzero. */
  p: number;
  exact: boolean;
}

/** Midranks (1-based, ties share their mean rank) of values. */
function midranks(xs: readonly number[]): number[] {
  const idx = xs.map((_, i) => i).sort((i, j) => xs[i]! - xs[j]!);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && xs[idx[j + 1]!] === xs[idx[i]!]) j++;
    for (let k = i; k <= j; k++) r[idx[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Largest n for which the Wilcoxon p-value is exact (all 2^n sign assignments, counted by dynamic programming). */
export const WILCOXON_EXACT_MAX = 20;

/**
 * Wilcoxon signed-rank test of a against b (paired by position). For n <= 20 nonzero differences
 * the p-value is exact: the null distribution of W+ over the 2^n equally likely sign assignments of
 * the (mid)ranks, so ties are handled exactly; above, the normal approximation with tie correction
 * and continuity correction. Two-sided p = min(1, 2 · min(P(W+ <= w), P(W+ >= w))).
 */
export function wilcoxonSignedRank(a: readonly number[], b: readonly number[]): WilcoxonTest {
  if (a.length !== b.length) throw new RangeError(`Wilcoxon test: ${a.length} values against ${b.length}`);
  const d = a.map((x, i) => x - b[i]!).filter((x) => x !== 0);
  const n = d.length;
  if (n === 0) return { n, wPlus: 0, p: NaN, exact: true };
  const ranks = midranks(d.map(Math.abs));
  let wPlus = 0;
  d.forEach((x, i) => (x > 0 ? (wPlus += ranks[i]!) : 0));
  if (n <= WILCOXON_EXACT_MAX) {
    // doubled ranks are integers (midranks are multiples of 1/2)
    const r2 = ranks.map((r) => Math.round(2 * r));
    const total = r2.reduce((s, x) => s + x, 0);
    let dist = new Float64Array(total + 1);
    dist[0] = 1;
    for (const r of r2) {
      const next = new Float64Array(total + 1);
      for (let s = 0; s <= total; s++) {
        if (dist[s] === 0) continue;
        next[s] += dist[s]!;
        next[s + r] += dist[s]!;
      }
      dist = next;
    }
    const w2 = Math.round(2 * wPlus);
    let le = 0;
    let ge = 0;
    for (let s = 0; s <= total; s++) {
      if (s <= w2) le += dist[s]!;
      if (s >= w2) ge += dist[s]!;
    }
    const all = 2 ** n;
    return { n, wPlus, p: Math.min(1, (2 * Math.min(le, ge)) / all), exact: true };
  }
  const mu = (n * (n + 1)) / 4;
  const counts = new Map<number, number>();
  for (const r of ranks) counts.set(r, (counts.get(r) ?? 0) + 1);
  let tie = 0;
  for (const t of counts.values()) tie += t * t * t - t;
  const sigma = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24 - tie / 48);
  const z = (Math.abs(wPlus - mu) - 0.5) / sigma;
  return { n, wPlus, p: Math.min(1, 2 * normalUpperTail(Math.max(0, z))), exact: false };
}

/** P(Z >= z) for a standard normal Z. */
export function normalUpperTail(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** Complementary error function (a Chebyshev-fitted rational approximation; relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/**
 * Holm–Bonferroni adjusted p-values (step-down): with the m finite p-values sorted ascending,
 * adj_(i) = max_{j <= i} min(1, (m - j + 1) · p_(j)). NaN stays NaN and does not count in m.
 * Rejecting where adj < alpha controls the family-wise error rate at alpha.
 */
export function holmAdjust(ps: readonly number[]): number[] {
  const idx = ps.map((_, i) => i).filter((i) => Number.isFinite(ps[i]!)).sort((i, j) => ps[i]! - ps[j]!);
  const m = idx.length;
  const out = ps.map(() => NaN);
  let running = 0;
  idx.forEach((i, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * ps[i]!));
    out[i] = running;
  });
  return out;
}

/** Resamples of the bootstrap over requests when none is asked for (`resflow eval --bootstrap`). */
export const DEFAULT_RESAMPLES = 1000;

export interface BootstrapOptions {
  /** Number of resamples B. */
  resamples: number;
  /** Seed of the Rng (base/rng.ts) that draws the resamples: same seed, same intervals. */
  seed: number;
  /** Confidence level (default 0.95). */
  level?: number;
}

/**
 * Percentile bootstrap intervals of several statistics over the same resamples: `resamples` draws of
 * n units with replacement (unit u drawn c_u times; Rng stream 0xb007 of the seed), each statistic
 * evaluated on every draw's counts; the interval is the type-7 quantiles (1 - level)/2 and
 * (1 + level)/2 of a statistic's finite values (a draw where it is undefined, e.g. an AUC without a
 * positive, is left out). NaN bounds for no units or no finite value.
 */
export function bootstrapIntervals(n: number, statistics: readonly ((counts: Uint32Array) => number)[], opts: BootstrapOptions): Interval[] {
  const level = opts.level ?? 0.95;
  const none = (): Interval => ({ low: NaN, high: NaN, level, method: 'bootstrap' });
  if (n === 0 || opts.resamples < 1) return statistics.map(none);
  const rng = new Rng(opts.seed, 0xb007);
  const counts = new Uint32Array(n);
  const stats = statistics.map(() => [] as number[]);
  for (let b = 0; b < opts.resamples; b++) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[rng.int(n)]!++;
    statistics.forEach((f, j) => {
      const v = f(counts);
      if (Number.isFinite(v)) stats[j]!.push(v);
    });
  }
  return stats.map((xs) => {
    xs.sort((x, y) => x - y);
    return { low: quantileSorted(xs, (1 - level) / 2), high: quantileSorted(xs, (1 + level) / 2), level, method: 'bootstrap' };
  });
}

/** The percentile bootstrap interval of one statistic (bootstrapIntervals). */
export function bootstrapInterval(n: number, statistic: (counts: Uint32Array) => number, opts: BootstrapOptions): Interval {
  return bootstrapIntervals(n, [statistic], opts)[0]!;
}

/** Linear-interpolation quantile (type 7) of ascending values. */
export function quantileSorted(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const h = (xs.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(xs.length - 1, lo + 1);
  return xs[lo]! + (h - lo) * (xs[hi]! - xs[lo]!);
}
