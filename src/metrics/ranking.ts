/**
 * Per-request ranking metrics (Recall@K, Weighted Recall@K, ASH@K), over rows ranked by rank-sort.ts.
 *
 * All @K metrics reduce to one computation over the ranked requests: with a per-row weight
 * `w_i >= 0`, per request q, `top_K(q) = sum of w over the first min(K, |q|) rows` and
 * `tot(q) = sum of w over q`; macro = mean of top_K(q) / tot(q) over requests with tot(q) > 0,
 * micro = sum_q top_K(q) / sum_q tot(q). Recall@K uses w = task label, ASH@K w = all-scenario
 * target, WR@K w = W_i (see itemWeights). K larger than a request's pool means the whole pool.
 * Every K is computed in the same pass over a request.
 */
import { rankWithinGroups, type LabelArray, type RankedGroups, type ScoreArray, type WeightArray } from './rank-sort.js';

export {
  countGroups,
  partitionByGroup,
  rankOf,
  rankWithinGroups,
  sortRowsByScore,
  type LabelArray,
  type RankedGroups,
  type ScoreArray,
  type WeightArray,
} from './rank-sort.js';

/** Per-K result of a metric that has a macro (per-request mean) and a micro (pooled) form. */
export interface MacroMicroAtK {
  k: number;
  /** Mean over counted requests of the per-request ratio; NaN when no request is counted. */
  macro: number;
  /** Sum over requests of the top-K part / sum over requests of the total; NaN when the total is 0. */
  micro: number;
}

export interface MacroMicroResult {
  /** One entry per K, in the order the Ks were given. */
  perK: MacroMicroAtK[];
  /** Requests with a positive total (weight, or |T|), the ones the macro mean is over. */
  requestsCounted: number;
  /** Requests with at least one row (in the mask). */
  requestsTotal: number;
  /** Rows with a positive weight (or label) over all requests. */
  positives: number;
}

export interface RecallResult {
  /** One entry per K, in the order the Ks were given; value NaN when no request has a positive. */
  perK: Array<{ k: number; value: number }>;
  /** Requests with at least one positive: the ones averaged over. */
  requestsCounted: number;
  /** Requests with at least one row (in the mask). */
  requestsTotal: number;
  /** Positive rows over all requests. */
  positives: number;
}

// ---------------------------------------------------------------------------------------------
// @K metrics

function checkKs(ks: readonly number[]): void {
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`K must be a positive integer, got ${k}`);
  }
}

export interface TopKSums {
  ks: number[];
  macro: Float64Array;
  micro: Float64Array;
  counted: number;
  total: number;
  positives: number;
}

/**
 * The shared @K pass. For every group with rows, walks its ranked rows once, accumulating the
 * weight and reading off the running sum at every K boundary. `binary`: weight = (value > 0 ? 1 : 0).
 * Groups may be added in several calls (the streaming evaluation, metrics/stream.ts, adds each block
 * of whole requests as it comes); the sums are the same as one call over all groups in that order.
 */
export class TopKAccumulator {
  private readonly ks: number[];
  private readonly slot: number[];
  private readonly kArr: Int32Array;
  private readonly cumAt: Float64Array;
  private readonly macroSum: Float64Array;
  private readonly topSum: Float64Array;
  private totSum = 0;
  private counted = 0;
  private total = 0;
  private positives = 0;

  constructor(
    ks: readonly number[],
    private readonly binary: boolean,
  ) {
    checkKs(ks);
    this.ks = [...ks];
    // Distinct Ks ascending; slot[i] maps ks[i] to its distinct position.
    const sorted = Array.from(new Set(ks)).sort((a, b) => a - b);
    this.slot = ks.map((k) => sorted.indexOf(k));
    this.kArr = Int32Array.from(sorted);
    this.cumAt = new Float64Array(sorted.length);
    this.macroSum = new Float64Array(sorted.length);
    this.topSum = new Float64Array(sorted.length);
  }

  add(ranked: RankedGroups, w: ArrayLike<number>): void {
    if (w.length !== ranked.numRows) {
      throw new RangeError(`weights/labels have ${w.length} rows, the ranking has ${ranked.numRows}`);
    }
    const { binary, kArr, cumAt, macroSum, topSum } = this;
    const nd = kArr.length;
    const { order, groupStart } = ranked;
    const G = groupStart.length - 1;
    for (let g = 0; g < G; g++) {
      const s = groupStart[g];
      const e = groupStart[g + 1];
      if (e === s) continue;
      this.total++;
      let cum = 0;
      let d = 0;
      for (let j = s; j < e; j++) {
        const v = w[order[j]];
        if (v > 0) this.positives++;
        cum += binary ? (v > 0 ? 1 : 0) : v;
        const pos = j - s + 1;
        while (d < nd && kArr[d] === pos) cumAt[d++] = cum;
      }
      while (d < nd) cumAt[d++] = cum; // K larger than the pool: the whole pool
      if (!(cum > 0)) continue;
      this.counted++;
      this.totSum += cum;
      for (let t = 0; t < nd; t++) {
        macroSum[t] += cumAt[t] / cum;
        topSum[t] += cumAt[t];
      }
    }
  }

  result(): TopKSums {
    const nk = this.ks.length;
    const macro = new Float64Array(nk);
    const micro = new Float64Array(nk);
    for (let i = 0; i < nk; i++) {
      const t = this.slot[i];
      macro[i] = this.counted > 0 ? this.macroSum[t] / this.counted : NaN;
      micro[i] = this.totSum > 0 ? this.topSum[t] / this.totSum : NaN;
    }
    return { ks: [...this.ks], macro, micro, counted: this.counted, total: this.total, positives: this.positives };
  }
}

/** Per request, the parts the @K means are made of (see perRequestTopK). */
export interface PerRequestTopK {
  /** tot(q): the request's total weight (0 for a request without rows or without a positive). */
  tot: Float64Array;
  /** One array per K, in the order given: top_K(q), the weight in the request's first K rows. */
  top: Float64Array[];
}

/**
 * The per-request parts of the @K metrics, indexed by group (request) id: macro = mean of top/tot
 * over requests with tot > 0, micro = sum top / sum tot (the same walk as the means above, each
 * request kept apart; the bootstrap over requests in metrics/resample.ts reweights them).
 */
export function perRequestTopK(ranked: RankedGroups, w: ArrayLike<number>, binary: boolean, ks: readonly number[]): PerRequestTopK {
  checkKs(ks);
  if (w.length !== ranked.numRows) {
    throw new RangeError(`weights/labels have ${w.length} rows, the ranking has ${ranked.numRows}`);
  }
  const sorted = Array.from(new Set(ks)).sort((a, b) => a - b);
  const kArr = Int32Array.from(sorted);
  const nd = sorted.length;
  const { order, groupStart } = ranked;
  const G = groupStart.length - 1;
  const tot = new Float64Array(G);
  const byDistinct = sorted.map(() => new Float64Array(G));
  for (let g = 0; g < G; g++) {
    const s = groupStart[g];
    const e = groupStart[g + 1];
    let cum = 0;
    let d = 0;
    for (let j = s; j < e; j++) {
      const v = w[order[j]];
      cum += binary ? (v > 0 ? 1 : 0) : v;
      const pos = j - s + 1;
      while (d < nd && kArr[d] === pos) byDistinct[d++]![g] = cum;
    }
    while (d < nd) byDistinct[d++]![g] = cum; // K larger than the pool: the whole pool
    tot[g] = cum > 0 ? cum : 0;
  }
  return { tot, top: ks.map((k) => byDistinct[sorted.indexOf(k)]!) };
}

function topKSums(ranked: RankedGroups, w: ArrayLike<number>, binary: boolean, ks: readonly number[]): TopKSums {
  const acc = new TopKAccumulator(ks, binary);
  acc.add(ranked, w);
  return acc.result();
}

export function toMacroMicro(r: TopKSums): MacroMicroResult {
  return {
    perK: r.ks.map((k, i) => ({ k, macro: r.macro[i], micro: r.micro[i] })),
    requestsCounted: r.counted,
    requestsTotal: r.total,
    positives: r.positives,
  };
}

/** Recall@K over an existing ranking (see recallAtK). */
export function recallFromRanking(ranked: RankedGroups, labels: LabelArray, ks: readonly number[]): RecallResult {
  return toRecall(topKSums(ranked, labels, true, ks));
}

/** Recall@K's result from the @K sums of binary labels. */
export function toRecall(r: TopKSums): RecallResult {
  return { perK: r.ks.map((k, i) => ({ k, value: r.macro[i] })), requestsCounted: r.counted, requestsTotal: r.total, positives: r.positives };
}

/** Weighted Recall@K over an existing ranking (see weightedRecallAtK). */
export function weightedRecallFromRanking(ranked: RankedGroups, itemWeights: WeightArray, ks: readonly number[]): MacroMicroResult {
  return toMacroMicro(topKSums(ranked, itemWeights, false, ks));
}

/** ASH@K over an existing ranking (see hitRateAtK). */
export function hitRateFromRanking(ranked: RankedGroups, targets: LabelArray, ks: readonly number[]): MacroMicroResult {
  return toMacroMicro(topKSums(ranked, targets, true, ks));
}

/**
 * Recall@K: per request, |top K by `scores` ∩ positives| / |positives|, averaged over requests with
 * at least one positive (label > 0). Rows outside `mask` are not in any pool.
 */
export function recallAtK(scores: ScoreArray, labels: LabelArray, groups: Int32Array, ks: readonly number[], mask?: Uint8Array): RecallResult {
  return recallFromRanking(rankWithinGroups(scores, groups, mask), labels, ks);
}

/**
 * Weighted Recall@K (WR@K): per request `sum_{topK} W / sum_q W`; macro = mean over requests with a
 * positive total weight, micro = `sum_q sum_{topK} W / sum_q sum W`. The project's reading of the
 * ResFlow paper, which gives no exact formula.
 */
export function weightedRecallAtK(
  scores: ScoreArray,
  itemWeights: WeightArray,
  groups: Int32Array,
  ks: readonly number[],
  mask?: Uint8Array,
): MacroMicroResult {
  return weightedRecallFromRanking(rankWithinGroups(scores, groups, mask), itemWeights, ks);
}

/**
 * ASH@K (All-Scenario Hitrate): per request with target set T (rows with target > 0),
 * |top K ∩ T| / |T|; macro = mean over requests with |T| > 0, micro = sum |topK ∩ T| / sum |T|.
 */
export function hitRateAtK(scores: ScoreArray, targets: LabelArray, groups: Int32Array, ks: readonly number[], mask?: Uint8Array): MacroMicroResult {
  return hitRateFromRanking(rankWithinGroups(scores, groups, mask), targets, ks);
}

/**
 * Item weights for WR@K: `W_i = sum_t w_t * y_{t,i}` over the labels named in `weights`
 * (label values are used as they are, so 0/1 labels give `sum of w_t over the labels the row has`).
 * Throws a RangeError naming a weight whose label is missing, or labels of different lengths.
 */
export function itemWeights(labelsByName: Readonly<Record<string, ArrayLike<number>>>, weights: Readonly<Record<string, number>>): Float64Array {
  const names = Object.keys(weights);
  const known = Object.keys(labelsByName);
  let n = -1;
  for (const name of known) {
    const len = labelsByName[name].length;
    if (n === -1) n = len;
    else if (len !== n) throw new RangeError(`label \`${name}\` has ${len} rows, \`${known[0]}\` has ${n}`);
  }
  for (const name of names) {
    if (!Object.prototype.hasOwnProperty.call(labelsByName, name)) {
      throw new RangeError(`item weight names label \`${name}\`, which is not given (labels: ${known.join(', ') || 'none'})`);
    }
    if (!Number.isFinite(weights[name])) throw new RangeError(`item weight for \`${name}\` must be a finite number, got ${weights[name]}`);
  }
  const W = new Float64Array(Math.max(n, 0));
  for (const name of names) {
    const w = weights[name];
    if (w === 0) continue;
    const y = labelsByName[name];
    for (let i = 0; i < W.length; i++) W[i] += w * y[i];
  }
  return W;
}
