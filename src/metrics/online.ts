/**
 * Simulated online outcome: a pre-ranker's top K of each request is replayed through the simulated
 * downstream funnel (data/funnel.ts): the ranking stage orders the chosen set by the teacher's CTCVR
 * and shows as many items as the request really showed, at positions 1..E; the outcome is the
 * expected number of purchases, sum of relevance_ctr x positionBias(position) x relevance_cvr.
 * Only meaningful on data that carries the true relevances (the synthetic funnel).
 */
import { replayRankingStage, type FunnelTruth } from '../data/funnel.js';
import type { RankedGroups, ScoreArray } from './rank-sort.js';

export interface OnlineInputs extends FunnelTruth {
  teacherCtcvr: ScoreArray;
  relevanceCtr: ScoreArray;
  relevanceCvr: ScoreArray;
  /** 1 for rows that were exposures in the log: E per request = its number of exposures. */
  exposed: Uint8Array;
}

/**
 * Replays the ranking stage for each request with at least one exposure, in group order, calling
 * `onRequest` with its group id and its expected purchases for each K (in the order given).
 */
function replayRequests(ranked: RankedGroups, inputs: OnlineInputs, ks: readonly number[], onRequest: (g: number, values: number[]) => void): void {
  const G = ranked.groupStart.length - 1;
  for (let g = 0; g < G; g++) {
    const start = ranked.groupStart[g]!;
    const end = ranked.groupStart[g + 1]!;
    let E = 0;
    for (let r = start; r < end; r++) E += inputs.exposed[ranked.order[r]!]!;
    if (E === 0) continue;
    onRequest(
      g,
      ks.map((k) => replayRankingStage(inputs, Array.from(ranked.order.subarray(start, Math.min(end, start + k))), E)),
    );
  }
}

/**
 * Expected purchases of each request (indexed by group id) for each K, in the order given, and
 * which requests count (those with at least one exposure; the others hold 0).
 */
export function simulatedPurchasesPerRequest(ranked: RankedGroups, inputs: OnlineInputs, ks: readonly number[]): { values: Float64Array[]; counted: Uint8Array } {
  const G = ranked.groupStart.length - 1;
  const values = ks.map(() => new Float64Array(G));
  const counted = new Uint8Array(G);
  replayRequests(ranked, inputs, ks, (g, v) => {
    counted[g] = 1;
    v.forEach((x, ki) => (values[ki]![g] = x));
  });
  return { values, counted };
}

/** Mean expected purchases per request (requests with at least one exposure), for each K. */
export function simulatedPurchasesAtK(ranked: RankedGroups, inputs: OnlineInputs, ks: readonly number[]): { k: number; value: number }[] {
  const acc = new OnlineAccumulator(ks);
  acc.add(ranked, inputs);
  return acc.result();
}

/** The sums of simulatedPurchasesAtK, group after group over several rankings (metrics/stream.ts). */
export class OnlineAccumulator {
  private readonly sums: number[];
  private requests = 0;

  constructor(private readonly ks: readonly number[]) {
    this.sums = ks.map(() => 0);
  }

  add(ranked: RankedGroups, inputs: OnlineInputs): void {
    replayRequests(ranked, inputs, this.ks, (_, v) => {
      this.requests++;
      v.forEach((x, ki) => (this.sums[ki]! += x));
    });
  }

  result(): { k: number; value: number }[] {
    return this.ks.map((k, ki) => ({ k, value: this.requests ? this.sums[ki]! / this.requests : NaN }));
  }
}
