import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulatedPurchasesAtK } from '../src/metrics/online.js';
import { rankWithinGroups } from '../src/metrics/ranking.js';
import { expectedPurchases, orderByTeacher, positionBias, replayRankingStage } from '../src/data/funnel.js';
import { Rng } from '../src/base/rng.js';

test('online outcome by hand: top-2 of a request replayed through the ranking stage', () => {
  // One request, 4 candidates; the model ranks rows 2 > 0 > 3 > 1; K = 2 chooses rows 2 and 0.
  // The ranking stage orders them by teacher CTCVR (row 0: 0.5 > row 2: 0.1) and shows E = 2 items
  // (rows 0 and 1 were the logged exposures): 0.2*1*0.5 + 0.4*bias(2)*0.25.
  const scores = Float64Array.from([0.8, 0.1, 0.9, 0.3]);
  const groups = Int32Array.from([0, 0, 0, 0]);
  const inputs = {
    teacherCtcvr: Float32Array.from([0.5, 0.9, 0.1, 0.2]),
    relevanceCtr: Float32Array.from([0.2, 0.3, 0.4, 0.1]),
    relevanceCvr: Float32Array.from([0.5, 0.5, 0.25, 0.5]),
    exposed: Uint8Array.from([1, 1, 0, 0]),
  };
  const [r] = simulatedPurchasesAtK(rankWithinGroups(scores, groups), inputs, [2]);
  assert.ok(Math.abs(r!.value - (0.2 * 1 * 0.5 + 0.4 * positionBias(2) * 0.25)) < 1e-7);
});

test('online outcome agrees with the synthetic funnel\'s own replay on random requests', () => {
  const rng = new Rng(11);
  const n = 600;
  const groups = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 30));
  const scores = Float64Array.from({ length: n }, () => Math.round(rng.next() * 50) / 50); // ties
  const inputs = {
    teacherCtcvr: Float32Array.from({ length: n }, () => rng.next()),
    relevanceCtr: Float32Array.from({ length: n }, () => rng.next() * 0.2),
    relevanceCvr: Float32Array.from({ length: n }, () => rng.next() * 0.3),
    exposed: Uint8Array.from({ length: n }, (_, i) => (i % 30 < 6 ? 1 : 0)),
  };
  for (const k of [1, 5, 10, 40]) {
    const [got] = simulatedPurchasesAtK(rankWithinGroups(scores, groups), inputs, [k]);
    let sum = 0;
    for (let g = 0; g < 20; g++) {
      const idx = Array.from({ length: 30 }, (_, j) => j);
      const off = g * 30;
      // top K by score, ties by row order, as indices within the request
      const chosen = idx.sort((a, b) => scores[off + b]! - scores[off + a]! || a - b).slice(0, k);
      const sub = (a: Float32Array) => a.subarray(off, off + 30);
      sum += expectedPurchases(sub(inputs.teacherCtcvr), sub(inputs.relevanceCtr), sub(inputs.relevanceCvr), chosen, 6);
    }
    assert.ok(Math.abs(got!.value - sum / 20) < 1e-9, `K=${k}: ${got!.value} vs ${sum / 20}`);
  }
});

test('funnel: orderByTeacher ranks by teacher CTCVR at an offset, ties by lower row; replay sums the shown', () => {
  const teacher = Float32Array.from([9, 0.3, 0.5, 0.3, 0.1]); // row 0 is another request's
  assert.deepEqual(orderByTeacher([3, 0, 2, 1], teacher, 1), [1, 0, 2, 3]);
  const truth = { teacherCtcvr: teacher.subarray(1), relevanceCtr: [0.1, 0.2, 0.3, 0.4], relevanceCvr: [0.5, 0.5, 0.5, 0.5] };
  const got = replayRankingStage(truth, [3, 0, 1], 2);
  assert.equal(got, 0.2 * 1 * 0.5 + 0.1 * positionBias(2) * 0.5); // rows 1 then 0 shown; row 3 not
  assert.equal(replayRankingStage(truth, [], 3), 0);
});
