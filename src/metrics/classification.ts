/**
 * Classification metrics over typed arrays: AUC, gAUC and LogLoss (docs/domain.md, Metrics).
 *
 * A row is positive when its label is > 0, negative otherwise. `mask` (1 = row belongs to the
 * task's sample space) restricts every metric to those rows; absent means all rows.
 *
 * AUC is the exact, tie-aware Mann–Whitney statistic: rows are sorted once by score (radix sort,
 * see ranking.ts) and walked run by run; a run of r equal scores holding p positives and q
 * negatives adds `p * (negatives below the run + q / 2)`, i.e. every tied positive/negative pair
 * counts 1/2, which equals the average-rank formula. AUC = that sum / (P * N).
 */
import { countGroups, partitionByGroup, sortRowsByScore, type LabelArray, type RankedGroups, type ScoreArray } from './rank-sort.js';

export interface GaucResult {
  /** Mean of per-group AUC weighted by the group's row count (rows in the mask); NaN when no group is used. */
  value: number;
  /** Groups with both classes: the ones averaged over. */
  groupsUsed: number;
  /** Groups with at least one row (in the mask) but a single class. */
  groupsSkipped: number;
}

export const LOGLOSS_EPS = 1e-7;

function checkLength(what: string, a: { length: number }, n: number): void {
  if (a.length !== n) throw new RangeError(`${what} has ${a.length} rows, scores have ${n}`);
}

/**
 * AUC of `order[s..e)` (row indices sorted by ascending score): returns NaN when a class is
 * missing or a NaN score is present (NaN sorts first).
 */
function aucOfRun(order: Int32Array, s: number, e: number, scores: ScoreArray, labels: LabelArray): { auc: number; pos: number; neg: number } {
  const hasNaN = e > s && scores[order[s]] !== scores[order[s]];
  let negBelow = 0;
  let num = 0;
  let P = 0;
  let i = s;
  while (i < e) {
    const v = scores[order[i]];
    let p = 0;
    let q = 0;
    let j = i;
    do {
      if (labels[order[j]] > 0) p++;
      else q++;
      j++;
    } while (j < e && scores[order[j]] === v);
    num += p * (negBelow + 0.5 * q);
    negBelow += q;
    P += p;
    i = j;
  }
  const N = negBelow;
  return { auc: P > 0 && N > 0 && !hasNaN ? num / (P * N) : NaN, pos: P, neg: N };
}

/** AUC from rows already sorted by ascending score (the output of `sortRowsByScore`). */
export function aucFromSorted(order: Int32Array, scores: ScoreArray, labels: LabelArray): number {
  return aucOfRun(order, 0, order.length, scores, labels).auc;
}

/**
 * gAUC from rows partitioned by group, ascending score inside each group
 * (`partitionByGroup(sortRowsByScore(scores, { mask }), groups)`).
 */
export function gaucFromPartition(part: RankedGroups, scores: ScoreArray, labels: LabelArray): GaucResult {
  const acc = new GaucAccumulator();
  acc.add(part, scores, labels);
  return acc.result();
}

/**
 * gAUC's sums, group after group: `add` may be called for several partitions in turn (the streaming
 * evaluation, metrics/stream.ts, adds each block of whole requests); the result is the same as one
 * partition holding all those groups in that order.
 */
export class GaucAccumulator {
  private sum = 0;
  private weight = 0;
  private used = 0;
  private skipped = 0;

  add(part: RankedGroups, scores: ScoreArray, labels: LabelArray): void {
    const { order, groupStart } = part;
    for (let g = 0; g + 1 < groupStart.length; g++) {
      const s = groupStart[g];
      const e = groupStart[g + 1];
      if (e === s) continue;
      const r = aucOfRun(order, s, e, scores, labels);
      if (r.pos === 0 || r.neg === 0) {
        this.skipped++;
        continue;
      }
      this.used++;
      this.sum += (e - s) * r.auc; // NaN (a NaN score) propagates to the result
      this.weight += e - s;
    }
  }

  result(): GaucResult {
    return { value: this.used > 0 ? this.sum / this.weight : NaN, groupsUsed: this.used, groupsSkipped: this.skipped };
  }
}

/**
 * Exact tie-aware AUC (Mann–Whitney, average ranks) of `scores` against `labels` over the rows in
 * `mask`. NaN when only one class is present (or a score is NaN). O(n log n): one radix sort.
 */
export function auc(scores: ScoreArray, labels: LabelArray, mask?: Uint8Array): number {
  checkLength('labels', labels, scores.length);
  const order = sortRowsByScore(scores, { mask });
  return aucFromSorted(order, scores, labels);
}

/**
 * gAUC: AUC per group (`groups` = dense ids 0..G-1, rows of a group need not be contiguous),
 * skipping groups with a single class, averaged with weights = the group's row count (rows in
 * `mask`). One sort by score plus one counting-sort pass by group: O(n log n) overall.
 */
export function gauc(scores: ScoreArray, labels: LabelArray, groups: Int32Array, mask?: Uint8Array): GaucResult {
  checkLength('labels', labels, scores.length);
  checkLength('groups', groups, scores.length);
  const G = countGroups(groups);
  const part = partitionByGroup(sortRowsByScore(scores, { mask }), groups, G);
  return gaucFromPartition(part, scores, labels);
}

/**
 * LogLoss: mean over the rows in `mask` of `-(y log p + (1 - y) log(1 - p))`, y = (label > 0),
 * p clipped to [1e-7, 1 - 1e-7]. NaN when the mask is empty or a probability is NaN.
 */
export function logloss(probs: ScoreArray, labels: LabelArray, mask?: Uint8Array): number {
  const n = probs.length;
  checkLength('labels', labels, n);
  if (mask !== undefined) checkLength('mask', mask, n);
  const lo = LOGLOSS_EPS;
  const hi = 1 - LOGLOSS_EPS;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    let p = probs[i];
    p = p < lo ? lo : p > hi ? hi : p; // NaN stays NaN
    sum -= labels[i] > 0 ? Math.log(p) : Math.log(1 - p);
    count++;
  }
  return count > 0 ? sum / count : NaN;
}
