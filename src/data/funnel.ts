/**
 * The downstream funnel after pre-ranking, as the synthetic data simulates it: the ranking stage orders
 * the candidates it receives by the teacher's CTCVR (highest first, ties: lower row first) and shows the
 * top E at positions 1..E, where a shown item is examined with probability positionBias(position).
 * The generator (synth-request.ts) draws its exposures with this ordering, and the simulated online
 * metric (metrics/online.ts) replays a pre-ranker's choice through it, so both use this one module.
 */

/** Examination probability of display position p (1-based): 1 / log2(p + 1); 0 below position 1. */
export function positionBias(position: number): number {
  return position >= 1 ? 1 / Math.log2(position + 1) : 0;
}

/**
 * Sorts row indices (in place) into the ranking stage's order: teacherCtcvr[offset + row] highest
 * first, ties by the lower row.
 */
export function orderByTeacher(rows: number[], teacherCtcvr: ArrayLike<number>, offset = 0): number[] {
  return rows.sort((a, b) => teacherCtcvr[offset + b]! - teacherCtcvr[offset + a]! || a - b);
}

/** The truth a replay needs, indexed by row. */
export interface FunnelTruth {
  teacherCtcvr: ArrayLike<number>;
  relevanceCtr: ArrayLike<number>;
  relevanceCvr: ArrayLike<number>;
}

/**
 * Expected purchases when the ranking stage receives `chosen` (distinct row indices; reordered in
 * place) and shows `exposures` of them: sum over shown of relevance_ctr * positionBias(position) *
 * relevance_cvr.
 */
export function replayRankingStage(truth: FunnelTruth, chosen: number[], exposures: number): number {
  orderByTeacher(chosen, truth.teacherCtcvr);
  const shown = Math.min(exposures, chosen.length);
  let sum = 0;
  for (let k = 0; k < shown; k++) {
    const j = chosen[k]!;
    sum += truth.relevanceCtr[j]! * positionBias(k + 1) * truth.relevanceCvr[j]!;
  }
  return sum;
}

/**
 * Simulated online outcome of one request: replayRankingStage over the request's rows, with `chosen`
 * given as indices into them. Duplicate indices count once; an index outside the arrays is an error.
 */
export function expectedPurchases(
  teacherCtcvr: ArrayLike<number>,
  relevanceCtr: ArrayLike<number>,
  relevanceCvr: ArrayLike<number>,
  chosen: ArrayLike<number>,
  exposures: number,
): number {
  const n = teacherCtcvr.length;
  if (relevanceCtr.length !== n || relevanceCvr.length !== n) {
    throw new RangeError('expectedPurchases: teacherCtcvr, relevanceCtr and relevanceCvr must have the same length');
  }
  const seen = new Set<number>();
  const idx: number[] = [];
  for (let i = 0; i < chosen.length; i++) {
    const j = chosen[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= n) throw new RangeError(`expectedPurchases: chosen index ${j} is outside 0..${n - 1}`);
    if (!seen.has(j)) {
      seen.add(j);
      idx.push(j);
    }
  }
  return replayRankingStage({ teacherCtcvr, relevanceCtr, relevanceCvr }, idx, Math.max(0, Math.floor(exposures)));
}
