import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auc, gauc, logloss } from '../src/metrics/classification.js';
import { fuseScores, parseFusionSpec } from '../src/metrics/fusion.js';
import {
  hitRateAtK,
  itemWeights,
  rankOf,
  rankWithinGroups,
  recallAtK,
  sortRowsByScore,
  weightedRecallAtK,
  type LabelArray,
  type ScoreArray,
} from '../src/metrics/ranking.js';
import { appliesToValidation, direction, evaluateMetrics, metricDefinition, METRIC_NAMES, METRIC_REGISTRY, type EvalInput } from '../src/metrics/registry.js';
import { METRIC_DECLARATIONS } from '../src/config/metrics.js';
import { DataError, UsageError } from '../src/base/errors.js';
import { Rng } from '../src/base/rng.js';

// ---------------------------------------------------------------------------------------------
// Helpers: seeded PRNG and brute-force reference implementations (no sorting tricks).

/** Seeded uniform [0, 1) draws from the project's generator. */
function mulberry32(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

function close(actual: number, expected: number, tol = 1e-9, what = ''): void {
  if (Number.isNaN(expected)) {
    assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
    return;
  }
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected}, got ${actual}`);
}

/** AUC by counting every positive/negative pair, ties as 1/2. */
function bruteAuc(scores: ArrayLike<number>, labels: ArrayLike<number>, rows: number[]): number {
  let num = 0;
  let pairs = 0;
  for (const i of rows) {
    if (!(labels[i] > 0)) continue;
    for (const j of rows) {
      if (labels[j] > 0) continue;
      pairs++;
      if (scores[i] > scores[j]) num += 1;
      else if (scores[i] === scores[j]) num += 0.5;
    }
  }
  return pairs > 0 ? num / pairs : NaN;
}

function rowsOf(n: number, mask?: Uint8Array): number[] {
  const rows: number[] = [];
  for (let i = 0; i < n; i++) if (mask === undefined || mask[i]) rows.push(i);
  return rows;
}

function bruteGauc(scores: ArrayLike<number>, labels: ArrayLike<number>, groups: Int32Array, mask?: Uint8Array) {
  const byGroup = new Map<number, number[]>();
  for (const i of rowsOf(scores.length, mask)) {
    const list = byGroup.get(groups[i]) ?? [];
    list.push(i);
    byGroup.set(groups[i], list);
  }
  let sum = 0;
  let w = 0;
  let used = 0;
  let skipped = 0;
  for (const rows of byGroup.values()) {
    const a = bruteAuc(scores, labels, rows);
    if (Number.isNaN(a)) {
      skipped++;
      continue;
    }
    used++;
    sum += rows.length * a;
    w += rows.length;
  }
  return { value: used ? sum / w : NaN, groupsUsed: used, groupsSkipped: skipped };
}

/** Per-request @K sums by sorting each request with a comparator: score desc, then row index asc. */
function bruteTopK(scores: ArrayLike<number>, w: ArrayLike<number>, groups: Int32Array, ks: number[], binary: boolean, mask?: Uint8Array) {
  const byGroup = new Map<number, number[]>();
  for (const i of rowsOf(scores.length, mask)) {
    const list = byGroup.get(groups[i]) ?? [];
    list.push(i);
    byGroup.set(groups[i], list);
  }
  const val = (i: number): number => (binary ? (w[i] > 0 ? 1 : 0) : w[i]);
  return ks.map((k) => {
    let macro = 0;
    let counted = 0;
    let top = 0;
    let tot = 0;
    for (const rows of byGroup.values()) {
      const sorted = [...rows].sort((a, b) => (scores[b] !== scores[a] ? scores[b] - scores[a] : a - b));
      const t = sorted.reduce((s, i) => s + val(i), 0);
      if (!(t > 0)) continue;
      const h = sorted.slice(0, k).reduce((s, i) => s + val(i), 0);
      counted++;
      macro += h / t;
      top += h;
      tot += t;
    }
    return { k, macro: counted ? macro / counted : NaN, micro: tot > 0 ? top / tot : NaN, counted };
  });
}

/** Random data with many ties: scores from a handful of values, groups scattered over the rows. */
function randomData(seed: number, n: number, G: number, f64 = false) {
  const rnd = mulberry32(seed);
  const levels = [0, 0.1, 0.25, 0.25, 0.5, 0.75, 0.9, 1];
  const scores = f64 ? new Float64Array(n) : new Float32Array(n);
  const labels = new Uint8Array(n);
  const groups = new Int32Array(n);
  const mask = new Uint8Array(n);
  const weights = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    scores[i] = levels[Math.floor(rnd() * levels.length)] + (rnd() < 0.3 ? rnd() * 0.01 : 0);
    labels[i] = rnd() < 0.15 + 0.3 * scores[i] ? 1 : 0;
    groups[i] = Math.floor(rnd() * G); // not contiguous; some groups may be empty
    mask[i] = rnd() < 0.7 ? 1 : 0;
    weights[i] = labels[i] ? (rnd() < 0.5 ? 1 : 2.5) : rnd() < 0.1 ? 0.5 : 0;
  }
  return { scores, labels, groups, mask, weights };
}

// ---------------------------------------------------------------------------------------------
// Sorting core

test('sortRowsByScore matches a comparator sort (Float32/Float64, special values, mask, both directions)', () => {
  const rnd = mulberry32(1);
  const specials = [NaN, -NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 5e-324, -5e-324, 1, -1, 3.5, 3.5];
  for (const f64 of [false, true]) {
    for (const descending of [false, true]) {
      const n = 4000;
      const buf = new Uint32Array(f64 ? 2 * n : n);
      for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 4294967296);
      const scores: ScoreArray = f64 ? new Float64Array(buf.buffer) : new Float32Array(buf.buffer);
      for (let i = 0; i < n; i += 7) scores[i] = specials[(i / 7) % specials.length];
      for (let i = 3; i < n; i += 11) scores[i] = scores[i - 3]; // exact duplicates
      const mask = new Uint8Array(n).map(() => (rnd() < 0.8 ? 1 : 0));
      for (const m of [undefined, mask]) {
        const got = Array.from(sortRowsByScore(scores, { mask: m, descending }));
        const key = (i: number): number => (Number.isNaN(scores[i]) ? -Infinity : scores[i]);
        const isNaNRow = (i: number): number => (Number.isNaN(scores[i]) ? 1 : 0);
        const want = rowsOf(n, m).sort((a, b) => {
          // NaN below -Infinity: compare "is NaN" first.
          const na = isNaNRow(a);
          const nb = isNaNRow(b);
          if (na !== nb) return descending ? na - nb : nb - na;
          const d = descending ? key(b) - key(a) : key(a) - key(b);
          return d !== 0 && !Number.isNaN(d) ? d : a - b;
        });
        assert.deepEqual(got, want, `f64=${f64} descending=${descending} mask=${m !== undefined}`);
      }
    }
  }
});

test('rankWithinGroups: groups in id order, best first, ties by lower row index; rankOf', () => {
  // Rows:    0    1    2    3    4    5
  // group:   1    0    1    0    1    2 (group 3 empty)
  // score:  0.5  0.2  0.5  0.9  0.7  0.1
  // group 0: rows 3 (0.9), 1 (0.2); group 1: row 4 (0.7), then 0 and 2 tie at 0.5 -> 0 before 2.
  const ranked = rankWithinGroups(new Float32Array([0.5, 0.2, 0.5, 0.9, 0.7, 0.1]), new Int32Array([1, 0, 1, 0, 1, 2]), undefined, 4);
  assert.deepEqual(Array.from(ranked.order), [3, 1, 4, 0, 2, 5]);
  assert.deepEqual(Array.from(ranked.groupStart), [0, 2, 5, 6, 6]);
  assert.deepEqual(Array.from(rankOf(ranked)), [1, 1, 2, 0, 0, 0]);
});

test('group ids must be dense and non-negative', () => {
  assert.throws(() => gauc(new Float32Array([1, 2]), new Uint8Array([0, 1]), new Int32Array([0, -1])), RangeError);
  assert.throws(() => gauc(new Float32Array([1, 2]), new Uint8Array([0, 1]), new Int32Array([0, 2 ** 30])), /dense/);
});

// ---------------------------------------------------------------------------------------------
// AUC, gAUC, LogLoss

test('auc: hand-worked values', () => {
  // Ranks 0.1->1, 0.35->2, 0.4->3, 0.8->4; positive rank sum 2+4=6; U = 6 - 2*3/2 = 3; AUC = 3/(2*2) = 0.75.
  assert.equal(auc(new Float32Array([0.1, 0.4, 0.35, 0.8]), new Uint8Array([0, 0, 1, 1])), 0.75);
  // Ties: 0.2->1, the three 0.5s share rank (2+3+4)/3 = 3; positive rank sum 3+3 = 6; U = 6 - 3 = 3; AUC = 3/4.
  assert.equal(auc(new Float64Array([0.5, 0.5, 0.5, 0.2]), new Int8Array([1, 0, 1, 0])), 0.75);
  // All tied: every pair counts 1/2.
  assert.equal(auc(new Float32Array([0.3, 0.3, 0.3]), new Float32Array([1, 0, 0])), 0.5);
  // -0 and +0 are the same score: one tied pair.
  assert.equal(auc(new Float64Array([-0, 0]), new Uint8Array([1, 0])), 0.5);
  // Mask drops row 2 (pos 0.35): left pos 0.8 vs neg 0.1, 0.4 -> AUC 1.
  assert.equal(auc(new Float32Array([0.1, 0.4, 0.35, 0.8]), new Uint8Array([0, 0, 1, 1]), new Uint8Array([1, 1, 0, 1])), 1);
  // Inverted ranking.
  assert.equal(auc(new Float32Array([0.9, 0.1]), new Uint8Array([0, 1])), 0);
});

test('auc: NaN with one class, an empty mask, or a NaN score', () => {
  assert.ok(Number.isNaN(auc(new Float32Array([0.1, 0.2]), new Uint8Array([1, 1]))));
  assert.ok(Number.isNaN(auc(new Float32Array([0.1, 0.2]), new Uint8Array([0, 0]))));
  assert.ok(Number.isNaN(auc(new Float32Array([0.1, 0.2]), new Uint8Array([0, 1]), new Uint8Array([0, 0]))));
  assert.ok(Number.isNaN(auc(new Float32Array(0), new Uint8Array(0))));
  assert.ok(Number.isNaN(auc(new Float64Array([0.1, NaN, 0.3]), new Uint8Array([0, 1, 1]))));
  assert.throws(() => auc(new Float32Array(3), new Uint8Array(2)), RangeError);
});

test('auc equals pair counting on random data with many ties', () => {
  for (let seed = 1; seed <= 12; seed++) {
    const f64 = seed % 2 === 0;
    const d = randomData(seed, 300 + seed * 37, 10, f64);
    close(auc(d.scores, d.labels), bruteAuc(d.scores, d.labels, rowsOf(d.scores.length)), 1e-12, `seed ${seed}`);
    close(auc(d.scores, d.labels, d.mask), bruteAuc(d.scores, d.labels, rowsOf(d.scores.length, d.mask)), 1e-12, `seed ${seed} mask`);
  }
});

test('gauc: hand-worked value, one-class groups skipped, weights = row counts, mask', () => {
  // group 0 = rows {0,3,5}: scores 0.2, 0.6, 0.4, labels 0,1,0 -> the positive beats both: AUC 1.
  // group 1 = rows {1,4,6,7}: pos 0.5 (row 1), 0.3 (row 6); neg 0.5 (row 4), 0.9 (row 7)
  //   pairs: 0.5 vs 0.5 -> 1/2, 0.5 vs 0.9 -> 0, 0.3 vs 0.5 -> 0, 0.3 vs 0.9 -> 0: AUC 0.5/4 = 0.125.
  // group 2 = row {2}: one class, skipped.
  // gAUC = (3*1 + 4*0.125) / 7 = 3.5/7 = 0.5.
  const scores = new Float32Array([0.2, 0.5, 0.7, 0.6, 0.5, 0.4, 0.3, 0.9]);
  const labels = new Uint8Array([0, 1, 1, 1, 0, 0, 1, 0]);
  const groups = new Int32Array([0, 1, 2, 0, 1, 0, 1, 1]);
  assert.deepEqual(gauc(scores, labels, groups), { value: 0.5, groupsUsed: 2, groupsSkipped: 1 });
  // Masking row 7 out: group 1 = pos 0.5, 0.3 vs neg 0.5 -> (1/2 + 0)/2 = 0.25 over 3 rows.
  // gAUC = (3*1 + 3*0.25) / 6 = 0.625.
  const mask = new Uint8Array([1, 1, 1, 1, 1, 1, 1, 0]);
  assert.deepEqual(gauc(scores, labels, groups, mask), { value: 0.625, groupsUsed: 2, groupsSkipped: 1 });
  // No group with both classes.
  const none = gauc(new Float32Array([0.1, 0.2]), new Uint8Array([0, 1]), new Int32Array([0, 1]));
  assert.ok(Number.isNaN(none.value));
  assert.equal(none.groupsSkipped, 2);
});

test('gauc equals per-group pair counting on random data', () => {
  for (let seed = 20; seed < 30; seed++) {
    const d = randomData(seed, 600, 25, seed % 2 === 1);
    for (const mask of [undefined, d.mask]) {
      const got = gauc(d.scores, d.labels, d.groups, mask);
      const want = bruteGauc(d.scores, d.labels, d.groups, mask);
      close(got.value, want.value, 1e-12, `seed ${seed}`);
      assert.equal(got.groupsUsed, want.groupsUsed);
      assert.equal(got.groupsSkipped, want.groupsSkipped);
    }
  }
});

test('logloss: hand-worked value with clipping and mask', () => {
  // -ln 0.9 = 0.1053605157, -ln 0.8 = 0.2231435513, p=0 clipped to 1e-7: -ln 1e-7 = 16.1180956510,
  // p=1 clipped to 1-1e-7: -ln(1-1e-7) = 1.0000000495e-7. Mean = 16.4465998184 / 4 = 4.1116499545.
  const probs = new Float64Array([0.9, 0.2, 0, 1]);
  const labels = new Uint8Array([1, 0, 1, 1]);
  close(logloss(probs, labels), 4.111649954482591, 1e-12);
  // Mask keeps rows 0 and 1: (0.1053605157 + 0.2231435513) / 2 = 0.1642520335.
  close(logloss(probs, labels, new Uint8Array([1, 1, 0, 0])), (0.10536051565782628 + 0.2231435513142097) / 2, 1e-12);
  assert.ok(Number.isNaN(logloss(probs, labels, new Uint8Array(4))));
});

// ---------------------------------------------------------------------------------------------
// @K metrics

test('recallAtK: hand-worked, ties by row index, requests without positives, K > pool', () => {
  // request 0 = rows 0..3, scores 0.5 0.5 0.5 0.2, labels 0 1 1 0; tie-break by row index -> order 0,1,2,3.
  //   @1: {0} -> 0/2; @2: {0,1} -> 1/2; @3 -> 2/2; @100 -> 2/2.
  // request 1 = rows 4,5, no positive: not counted.
  // request 2 = row 6, label 1: 1 for every K.
  // Recall@1 = (0+1)/2 = 0.5; @2 = (0.5+1)/2 = 0.75; @3 = 1; @100 = 1.
  const scores = new Float32Array([0.5, 0.5, 0.5, 0.2, 0.9, 0.1, 0.1]);
  const labels = new Uint8Array([0, 1, 1, 0, 0, 0, 1]);
  const groups = new Int32Array([0, 0, 0, 0, 1, 1, 2]);
  const r = recallAtK(scores, labels, groups, [2, 1, 100, 3]);
  assert.deepEqual(r.perK, [
    { k: 2, value: 0.75 },
    { k: 1, value: 0.5 },
    { k: 100, value: 1 },
    { k: 3, value: 1 },
  ]);
  assert.equal(r.requestsCounted, 2);
  assert.equal(r.requestsTotal, 3);
  // No request with a positive at all.
  const empty = recallAtK(scores, new Uint8Array(7), groups, [1]);
  assert.ok(Number.isNaN(empty.perK[0].value));
  assert.equal(empty.requestsCounted, 0);
  assert.throws(() => recallAtK(scores, labels, groups, [0]), RangeError);
  assert.throws(() => recallAtK(scores, labels, groups, [1.5]), RangeError);
});

test('recallAtK with a mask leaves masked rows out of the pool', () => {
  // request 0: rows 0 (0.9, neg, masked out), 1 (0.8, pos), 2 (0.7, pos). Pool = rows 1, 2.
  // @1 = 1/2 with the mask (row 1 is first); without it row 0 takes the only slot: 0/2.
  const scores = new Float64Array([0.9, 0.8, 0.7]);
  const labels = new Uint8Array([0, 1, 1]);
  const groups = new Int32Array([0, 0, 0]);
  assert.equal(recallAtK(scores, labels, groups, [1], new Uint8Array([0, 1, 1])).perK[0].value, 0.5);
  assert.equal(recallAtK(scores, labels, groups, [1]).perK[0].value, 0);
});

test('weightedRecallAtK: macro vs micro, hand-worked', () => {
  // request 0 = rows 0,2,4,6 (scattered), scores 0.9 0.8 0.7 0.6, W 0 2 1 1 (total 4):
  //   @1: 0/4 = 0; @2: 2/4 = 0.5.
  // request 1 = rows 1,3: scores 0.5 0.1, W 1 0 (total 1): @1 = @2 = 1.
  // request 2 = row 5, W 0: not counted.
  // macro@1 = (0 + 1)/2 = 0.5, micro@1 = (0 + 1)/(4 + 1) = 0.2
  // macro@2 = (0.5 + 1)/2 = 0.75, micro@2 = (2 + 1)/5 = 0.6; @10 (K > every pool) = 1 and 1.
  const scores = new Float64Array([0.9, 0.5, 0.8, 0.1, 0.7, 0.3, 0.6]);
  const W = new Float64Array([0, 1, 2, 0, 1, 0, 1]);
  const groups = new Int32Array([0, 1, 0, 1, 0, 2, 0]);
  const r = weightedRecallAtK(scores, W, groups, [1, 2, 10]);
  assert.deepEqual(r.perK, [
    { k: 1, macro: 0.5, micro: 0.2 },
    { k: 2, macro: 0.75, micro: 0.6 },
    { k: 10, macro: 1, micro: 1 },
  ]);
  assert.equal(r.requestsCounted, 2);
  assert.equal(r.requestsTotal, 3);
});

test('hitRateAtK (ASH): macro vs micro, hand-worked', () => {
  // request 0 = rows 0..4, scores 5 4 3 2 1, targets 0 1 1 1 0 (|T| = 3): @1 hits 0; @2 hits 1 (row 1).
  // request 1 = rows 5,6, scores 1 2 -> ranked 6, 5; targets 1 0 (|T| = 1): @1 hits 0; @2 hits 1.
  // macro@1 = 0, micro@1 = 0/4 = 0; macro@2 = (1/3 + 1)/2 = 2/3, micro@2 = (1 + 1)/4 = 0.5.
  const scores = new Float32Array([5, 4, 3, 2, 1, 1, 2]);
  const targets = new Uint8Array([0, 1, 1, 1, 0, 1, 0]);
  const groups = new Int32Array([0, 0, 0, 0, 0, 1, 1]);
  const r = hitRateAtK(scores, targets, groups, [1, 2]);
  assert.equal(r.perK[0].macro, 0);
  assert.equal(r.perK[0].micro, 0);
  close(r.perK[1].macro, 2 / 3, 1e-15);
  assert.equal(r.perK[1].micro, 0.5);
});

test('@K metrics equal a per-request comparator sort on random data', () => {
  const ks = [1, 3, 5, 20, 1000];
  for (let seed = 40; seed < 50; seed++) {
    const d = randomData(seed, 800, 60, seed % 2 === 0);
    for (const mask of [undefined, d.mask]) {
      const rec = recallAtK(d.scores, d.labels, d.groups, ks, mask);
      const wr = weightedRecallAtK(d.scores, d.weights, d.groups, ks, mask);
      const ash = hitRateAtK(d.scores, d.labels, d.groups, ks, mask);
      const bRec = bruteTopK(d.scores, d.labels, d.groups, ks, true, mask);
      const bWr = bruteTopK(d.scores, d.weights, d.groups, ks, false, mask);
      ks.forEach((k, i) => {
        close(rec.perK[i].value, bRec[i].macro, 1e-12, `recall@${k} seed ${seed}`);
        close(ash.perK[i].macro, bRec[i].macro, 1e-12, `ash macro@${k}`);
        close(ash.perK[i].micro, bRec[i].micro, 1e-12, `ash micro@${k}`);
        close(wr.perK[i].macro, bWr[i].macro, 1e-12, `wr macro@${k}`);
        close(wr.perK[i].micro, bWr[i].micro, 1e-12, `wr micro@${k}`);
      });
      assert.equal(rec.requestsCounted, bRec[0].counted);
      assert.equal(wr.requestsCounted, bWr[0].counted);
    }
  }
});

test('itemWeights: W_i = sum_t w_t y_{t,i}', () => {
  // purchase weight 1, click 0.5: row 0 (click+purchase) = 1.5, row 1 (click) = 0.5, row 2 = 0.
  const W = itemWeights({ click: new Uint8Array([1, 1, 0]), purchase: new Uint8Array([1, 0, 0]) }, { purchase: 1, click: 0.5 });
  assert.deepEqual(Array.from(W), [1.5, 0.5, 0]);
  assert.throws(() => itemWeights({ click: new Uint8Array(3) }, { purchase: 1 }), /purchase.*not given/);
  assert.throws(() => itemWeights({ a: new Uint8Array(3), b: new Uint8Array(2) }, { a: 1 }), RangeError);
});

// ---------------------------------------------------------------------------------------------
// Fusion

test('fuseScores: additive vs multiplicative, default weight 1, clipping', () => {
  const probs = { ctr: new Float32Array([0.5, 0.25]), ctcvr: new Float32Array([0.125, 0.5]) };
  // additive, ctr=1, ctcvr=2: 0.5 + 0.25 = 0.75; 0.25 + 1 = 1.25 -> row 1 first.
  assert.deepEqual(Array.from(fuseScores(probs, 'additive', { ctr: 1, ctcvr: 2 })), [0.75, 1.25]);
  // multiplicative, ctr=1, ctcvr=2: 0.5 * 0.125^2 = 0.0078125; 0.25 * 0.5^2 = 0.0625.
  const m = fuseScores(probs, 'multiplicative', { ctr: 1, ctcvr: 2 });
  close(m[0], 0.0078125, 1e-15);
  close(m[1], 0.0625, 1e-15);
  // Missing weights are 1: additive 0.625, 0.75; multiplicative 0.0625, 0.125.
  assert.deepEqual(Array.from(fuseScores(probs, 'additive', {})), [0.625, 0.75]);
  const m1 = fuseScores(probs, 'multiplicative', { ctcvr: 1 });
  close(m1[0], 0.0625, 1e-15);
  close(m1[1], 0.125, 1e-15);
  // Additive and multiplicative can rank differently: p = (0.9, 0.01) vs (0.3, 0.3).
  // additive: 0.91 > 0.6; multiplicative: 0.009 < 0.09.
  const two = { a: new Float64Array([0.9, 0.3]), b: new Float64Array([0.01, 0.3]) };
  const add = fuseScores(two, 'additive');
  const mul = fuseScores(two, 'multiplicative');
  assert.ok(add[0] > add[1]);
  assert.ok(mul[0] < mul[1]);
  // p = 0 is clipped to 1e-7 (so log is finite): 1e-7 * 0.5^2 = 2.5e-8.
  const z = fuseScores({ ctr: new Float64Array([0]), ctcvr: new Float64Array([0.5]) }, 'multiplicative', { ctcvr: 2 });
  close(z[0], 2.5e-8, 1e-20);
  assert.throws(() => fuseScores(probs, 'additive', { cvr: 1 }), (e: unknown) => e instanceof UsageError && /cvr/.test(e.message));
  assert.throws(() => fuseScores({ a: new Float32Array(2), b: new Float32Array(3) }, 'additive'), RangeError);
});

test('parseFusionSpec: valid specs', () => {
  assert.deepEqual(parseFusionSpec('additive:ctr=1,ctcvr=2'), { mode: 'additive', weights: { ctr: 1, ctcvr: 2 } });
  assert.deepEqual(parseFusionSpec('multiplicative'), { mode: 'multiplicative', weights: {} });
  assert.deepEqual(parseFusionSpec(' multiplicative : ctr = 0.5 , ctcvr=-1e-1 '), { mode: 'multiplicative', weights: { ctr: 0.5, ctcvr: -0.1 } });
});

test('parseFusionSpec: errors name the spec and what was expected', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /missing mode; expected additive or multiplicative/],
    ['sum:ctr=1', /unknown mode "sum"; expected additive or multiplicative/],
    ['mult:ctr=1', /did you mean multiplicative/],
    ['additive:', /expected TASK=WEIGHT/],
    ['additive:ctr', /"ctr" is not TASK=WEIGHT/],
    ['additive:=1', /no task name/],
    ['additive:ctr=', /no weight/],
    ['additive:ctr=abc', /weight "abc" for task "ctr" is not a finite number/],
    ['additive:ctr=Infinity', /not a finite number/],
    ['additive:ctr=1,,ctcvr=2', /empty TASK=WEIGHT pair/],
    ['additive:ctr=1,ctr=2', /task "ctr" is given twice/],
  ];
  for (const [spec, re] of cases) {
    assert.throws(
      () => parseFusionSpec(spec),
      (e: unknown) => e instanceof UsageError && e.exitCode === 2 && e.message.includes(`"${spec}"`) && re.test(e.message),
      `spec ${JSON.stringify(spec)}`,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Registry

function smallEval(): EvalInput {
  const d = randomData(99, 400, 30, false);
  const rnd = mulberry32(5);
  const p2 = new Float32Array(400).map(() => Math.round(rnd() * 20) / 20);
  const l2 = new Uint8Array(400).map((_, i) => (d.labels[i] && rnd() < 0.4 ? 1 : 0));
  const users = new Int32Array(400).map(() => Math.floor(rnd() * 12));
  const fused = fuseScores({ ctr: d.scores as Float32Array, ctcvr: p2 }, 'additive', { ctcvr: 2 });
  return {
    split: 'test',
    metrics: ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash'],
    ks: [5, 2],
    tasks: ['ctr', 'ctcvr'],
    probs: { ctr: d.scores, ctcvr: p2 },
    labels: { ctr: d.labels, ctcvr: l2 },
    masks: { ctr: d.mask },
    fused,
    requests: d.groups,
    users,
    itemWeights: d.weights,
    ashTargets: d.labels,
  };
}

test('registry: definitions cover every metric name with its properties', () => {
  assert.deepEqual(METRIC_NAMES, ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash', 'online']);
  for (const name of METRIC_NAMES) {
    const def = metricDefinition(name);
    assert.equal(def.name, name);
    assert.ok(def.description.length > 10);
  }
  assert.equal(METRIC_REGISTRY.logloss.higherIsBetter, false);
  assert.equal(METRIC_REGISTRY.auc.needsGroups, false);
  assert.equal(METRIC_REGISTRY.gauc.needsGroups, true);
  assert.equal(METRIC_REGISTRY.recall.hasK, true);
  assert.equal(METRIC_REGISTRY.auc.hasK, false);
  assert.deepEqual(METRIC_REGISTRY.ash.variants, ['macro', 'micro']);
  assert.throws(() => metricDefinition('ndcg'), (e: unknown) => e instanceof UsageError && /known metrics: auc, gauc/.test(e.message));
});

test('registry: each definition is its declaration (inputs, K, direction, validation) with an implementation', () => {
  for (const name of METRIC_NAMES) {
    const { compute, higherIsBetter, needsGroups, ...declared } = METRIC_REGISTRY[name];
    assert.deepEqual(declared, METRIC_DECLARATIONS[name], name);
    assert.equal(typeof compute, 'function');
    assert.equal(higherIsBetter, direction(name) === 'higher', name);
    assert.equal(needsGroups, declared.inputs.some((i) => i === 'requests' || i === 'groups'), name);
  }
  assert.equal(direction('logloss'), 'lower');
  assert.deepEqual(METRIC_NAMES.filter(appliesToValidation), ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash']);
  assert.deepEqual(METRIC_REGISTRY.wrecall.inputs, ['fused', 'requests', 'label_weights']);
});

test('evaluateMetrics: records in order, values equal the direct functions', () => {
  const input = smallEval();
  const recs = evaluateMetrics(input);
  // 3 per-task metrics x 2 tasks + recall 2 tasks x 2 Ks + (wrecall + ash) x 2 Ks x 2 variants.
  assert.equal(recs.length, 6 + 4 + 8);
  assert.ok(recs.every((r) => r.split === 'test'));
  const get = (name: string, task: string, k?: number, variant?: string) => {
    const found = recs.filter((r) => r.name === name && r.task === task && r.k === k && r.variant === variant);
    assert.equal(found.length, 1, `${name}/${task}/${k}/${variant}`);
    return found[0].value;
  };
  const { probs, labels, masks, fused, requests } = input;
  assert.equal(get('auc', 'ctr'), auc(probs.ctr, labels.ctr, masks!.ctr));
  assert.equal(get('auc', 'ctcvr'), auc(probs.ctcvr, labels.ctcvr));
  assert.equal(get('gauc', 'ctr'), gauc(probs.ctr, labels.ctr, requests!, masks!.ctr).value);
  assert.equal(get('logloss', 'ctcvr'), logloss(probs.ctcvr, labels.ctcvr));
  const rec = recallAtK(fused!, labels.ctcvr, requests!, [5, 2]);
  assert.equal(get('recall', 'ctcvr', 5), rec.perK[0].value);
  assert.equal(get('recall', 'ctcvr', 2), rec.perK[1].value);
  const wr = weightedRecallAtK(fused!, input.itemWeights!, requests!, [2]);
  assert.equal(get('wrecall', 'fused', 2, 'macro'), wr.perK[0].macro);
  assert.equal(get('wrecall', 'fused', 2, 'micro'), wr.perK[0].micro);
  const ash = hitRateAtK(fused!, input.ashTargets!, requests!, [5]);
  assert.equal(get('ash', 'fused', 5, 'micro'), ash.perK[0].micro);
  // Order: metric, then task, then K (as given), then macro before micro.
  assert.deepEqual(
    recs.slice(0, 8).map((r) => `${r.name}:${r.task}${r.k ? '@' + r.k : ''}`),
    ['auc:ctr', 'auc:ctcvr', 'gauc:ctr', 'gauc:ctcvr', 'logloss:ctr', 'logloss:ctcvr', 'recall:ctr@5', 'recall:ctr@2'],
  );
  assert.deepEqual(recs.slice(10, 12).map((r) => r.variant), ['macro', 'micro']);
  // Records without a K carry no `k` key; records without variants no `variant` key.
  assert.ok(!('k' in recs[0]) && !('variant' in recs[0]));
  assert.ok(!('variant' in recs[6]));
});

test('evaluateMetrics: gAUC by user, subsets of metrics, and clear errors for missing inputs', () => {
  const input = smallEval();
  const byUser = evaluateMetrics({ ...input, metrics: ['gauc', 'gauc'], gaucGroup: 'user' });
  assert.equal(byUser.length, 2);
  assert.equal(byUser[0].value, gauc(input.probs.ctr, input.labels.ctr, input.users!, input.masks!.ctr).value);
  assert.deepEqual(evaluateMetrics({ ...input, metrics: [] }), []);
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['recall'], requests: undefined }), (e: unknown) => e instanceof DataError && /request/.test(e.message));
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['ash'], fused: undefined }), (e: unknown) => e instanceof DataError && /fused/.test(e.message));
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['wrecall'], itemWeights: undefined }), DataError);
  // Declared inputs are checked before any metric is computed, naming the metric and where the input comes from.
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['auc', 'wrecall'], itemWeights: undefined }), /metric `wrecall` needs item weights \(eval\.label_weights\)/);
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['gauc'], gaucGroup: 'user', users: undefined }), /user/);
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['auc'], tasks: ['cvr'] }), /task `cvr`/);
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['bogus'] }), UsageError);
  assert.throws(() => evaluateMetrics({ ...input, ks: [0] }), RangeError);
  assert.throws(() => evaluateMetrics({ ...input, fused: new Float64Array(3) }), /fused has 3 rows/);
});

test('typed label variants behave the same (Uint8, Int8, Float32)', () => {
  const d = randomData(7, 300, 10);
  const l8 = d.labels;
  const li8 = Int8Array.from(l8);
  const lf = Float32Array.from(l8);
  const all: LabelArray[] = [l8, li8, lf];
  const a = all.map((l) => auc(d.scores, l));
  const g = all.map((l) => gauc(d.scores, l, d.groups).value);
  const r = all.map((l) => recallAtK(d.scores, l, d.groups, [3]).perK[0].value);
  assert.ok(a.every((x) => x === a[0]) && g.every((x) => x === g[0]) && r.every((x) => x === r[0]));
});
