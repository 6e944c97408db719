/**
 * The metrics of one evaluation as functions of request weights, for the bootstrap over requests
 * (docs/domain.md, Comparing runs: "Bootstrap over requests"). A resample draws requests with
 * replacement; request u drawn c_u times is the data set in which u's rows appear c_u times (each
 * copy its own request). Every metric is recomputed over that data set from parts computed once:
 *
 * - Recall@K, WR@K, ASH@K (macro): sum_u c_u r_u / sum_u c_u over requests with a positive total,
 *   r_u the request's top-K share; micro: sum_u c_u top_u / sum_u c_u tot_u.
 * - online@K: sum_u c_u v_u / sum_u c_u over requests with an exposure, v_u their expected purchases.
 * - LogLoss: sum_u c_u L_u / sum_u c_u n_u, L_u the request's summed loss over n_u rows.
 * - AUC: the tie-aware Mann–Whitney sum with every row weighted by its request's c_u (a copied
 *   positive/negative pair counts c_u c_v times), over the rows sorted once.
 * - gAUC: per group (request or user), that weighted AUC; groups weighted by their weighted row
 *   count, skipped when a class has weight 0 (by request: a request's AUC is unchanged by copying,
 *   its weight is c_u times its rows).
 *
 * With every c_u = 1 each function gives the record evaluateMetrics writes (to float rounding).
 * Without request ids, AUC and LogLoss resample rows (each row its own unit) and the other metrics,
 * which need requests, have no interval.
 */
import { LOGLOSS_EPS } from './classification.js';
import { simulatedPurchasesPerRequest } from './online.js';
import { countGroups, partitionByGroup, perRequestTopK, rankWithinGroups, sortRowsByScore, type LabelArray, type RankedGroups, type ScoreArray } from './ranking.js';
import type { EvalInput } from './registry.js';

/** One metric record's value as a function of unit counts. */
export interface ResampledMetric {
  name: string;
  task: string;
  k?: number;
  variant?: 'macro' | 'micro';
  /** The metric over the data set in which unit u appears `counts[u]` times. */
  at(counts: Uint32Array): number;
}

export interface RequestResampling {
  /** Number of units drawn from: requests (dense ids 0..R-1), or rows without request ids. */
  units: number;
  unit: 'request' | 'row';
  metrics: ResampledMetric[];
}

/** Weighted mean sum_u c_u x_u / sum_u c_u over units with `use[u]`. */
function weightedMean(x: Float64Array, use: Uint8Array | null): (c: Uint32Array) => number {
  return (c) => {
    let s = 0;
    let n = 0;
    for (let u = 0; u < x.length; u++) {
      if (use && !use[u]) continue;
      s += c[u]! * x[u]!;
      n += c[u]!;
    }
    return n > 0 ? s / n : NaN;
  };
}

/** Ratio sum_u c_u a_u / sum_u c_u b_u. */
function weightedRatio(a: Float64Array, b: Float64Array): (c: Uint32Array) => number {
  return (c) => {
    let s = 0;
    let t = 0;
    for (let u = 0; u < a.length; u++) {
      s += c[u]! * a[u]!;
      t += c[u]! * b[u]!;
    }
    return t > 0 ? s / t : NaN;
  };
}

/** The macro (and, with `micro`, the micro) functions of one K's per-request top and totals. */
function topKFunctions(top: Float64Array, tot: Float64Array): { macro: (c: Uint32Array) => number; micro: (c: Uint32Array) => number } {
  const share = new Float64Array(tot.length);
  const use = new Uint8Array(tot.length);
  for (let u = 0; u < tot.length; u++) if (tot[u]! > 0) (share[u] = top[u]! / tot[u]!), (use[u] = 1);
  return { macro: weightedMean(share, use), micro: weightedRatio(top, tot) };
}

/**
 * Rows in ascending score order, cut into runs of equal scores; `unitOf` per sorted position and
 * the label as 0/1. NaN in the sample space makes AUC NaN (as aucFromSorted).
 */
interface SortedRuns {
  unitOf: Int32Array;
  positive: Uint8Array;
  /** runStart[r] .. runStart[r + 1]: one run of equal scores; length runs + 1. */
  runStart: Int32Array;
  hasNaN: boolean;
}

function sortedRuns(order: Int32Array, s: number, e: number, scores: ScoreArray, labels: LabelArray, unit: (row: number) => number): SortedRuns {
  const m = e - s;
  const unitOf = new Int32Array(m);
  const positive = new Uint8Array(m);
  const starts: number[] = [];
  for (let j = 0; j < m; j++) {
    const row = order[s + j]!;
    unitOf[j] = unit(row);
    positive[j] = labels[row]! > 0 ? 1 : 0;
    if (j === 0 || scores[row] !== scores[order[s + j - 1]!]) starts.push(j);
  }
  starts.push(m);
  return { unitOf, positive, runStart: Int32Array.from(starts), hasNaN: m > 0 && scores[order[s]!] !== scores[order[s]!] };
}

/** Weighted tie-aware AUC of sorted runs, and the weights of each class. */
function weightedAuc(r: SortedRuns, c: Uint32Array): { auc: number; pos: number; neg: number } {
  let negBelow = 0;
  let num = 0;
  let P = 0;
  const { unitOf, positive, runStart } = r;
  for (let k = 0; k + 1 < runStart.length; k++) {
    let p = 0;
    let q = 0;
    for (let j = runStart[k]!; j < runStart[k + 1]!; j++) {
      const w = c[unitOf[j]!]!;
      if (positive[j]) p += w;
      else q += w;
    }
    num += p * (negBelow + 0.5 * q);
    negBelow += q;
    P += p;
  }
  const N = negBelow;
  return { auc: P > 0 && N > 0 && !r.hasNaN ? num / (P * N) : NaN, pos: P, neg: N };
}

/** The request (or row) resampling of an evaluation's metrics: the same metrics, tasks and Ks as evaluateMetrics(input). */
export function requestResampling(input: EvalInput): RequestResampling {
  const requests = input.requests;
  const units = requests ? countGroups(requests) : input.tasks.length ? (input.probs[input.tasks[0]!]?.length ?? 0) : 0;
  const unit = requests ? (row: number) => requests[row]! : (row: number) => row;
  const metrics: ResampledMetric[] = [];
  let ranking: RankedGroups | undefined;
  const fusedRanking = (): RankedGroups | null => {
    if (!input.fused || !requests) return null;
    ranking ??= rankWithinGroups(input.fused, requests);
    return ranking;
  };
  const wanted = [...new Set(input.metrics)];
  for (const name of wanted) {
    if (name === 'auc') {
      for (const task of input.tasks) {
        const probs = input.probs[task]!;
        const order = sortRowsByScore(probs, { mask: input.masks?.[task] });
        const runs = sortedRuns(order, 0, order.length, probs, input.labels[task]!, unit);
        metrics.push({ name, task, at: (c) => weightedAuc(runs, c).auc });
      }
    } else if (name === 'logloss') {
      for (const task of input.tasks) {
        const probs = input.probs[task]!;
        const labels = input.labels[task]!;
        const mask = input.masks?.[task];
        const loss = new Float64Array(units);
        const rows = new Float64Array(units);
        for (let i = 0; i < probs.length; i++) {
          if (mask && !mask[i]) continue;
          let p = probs[i]!;
          p = p < LOGLOSS_EPS ? LOGLOSS_EPS : p > 1 - LOGLOSS_EPS ? 1 - LOGLOSS_EPS : p;
          loss[unit(i)] -= labels[i]! > 0 ? Math.log(p) : Math.log(1 - p);
          rows[unit(i)]++;
        }
        metrics.push({ name, task, at: weightedRatio(loss, rows) });
      }
    } else if (name === 'gauc') {
      const groups = (input.gaucGroup ?? 'request') === 'user' ? input.users : requests;
      if (!groups) continue;
      const G = countGroups(groups);
      for (const task of input.tasks) {
        const probs = input.probs[task]!;
        const part = partitionByGroup(sortRowsByScore(probs, { mask: input.masks?.[task] }), groups, G);
        const perGroup: SortedRuns[] = [];
        for (let g = 0; g < G; g++) {
          const s = part.groupStart[g]!;
          const e = part.groupStart[g + 1]!;
          if (e > s) perGroup.push(sortedRuns(part.order, s, e, probs, input.labels[task]!, unit));
        }
        metrics.push({
          name,
          task,
          at: (c) => {
            let sum = 0;
            let weight = 0;
            for (const r of perGroup) {
              const a = weightedAuc(r, c);
              if (a.pos === 0 || a.neg === 0) continue;
              sum += (a.pos + a.neg) * a.auc;
              weight += a.pos + a.neg;
            }
            return weight > 0 ? sum / weight : NaN;
          },
        });
      }
    } else if (name === 'recall') {
      const ranked = fusedRanking();
      if (!ranked) continue;
      for (const task of input.tasks) {
        const { top, tot } = perRequestTopK(ranked, input.labels[task]!, true, input.ks);
        input.ks.forEach((k, i) => metrics.push({ name, task, k, at: topKFunctions(top[i]!, tot).macro }));
      }
    } else if (name === 'wrecall' || name === 'ash') {
      const ranked = fusedRanking();
      const w = name === 'wrecall' ? input.itemWeights : input.ashTargets;
      if (!ranked || !w) continue;
      const { top, tot } = perRequestTopK(ranked, w, name === 'ash', input.ks);
      input.ks.forEach((k, i) => {
        const f = topKFunctions(top[i]!, tot);
        metrics.push({ name, task: 'fused', k, variant: 'macro', at: f.macro }, { name, task: 'fused', k, variant: 'micro', at: f.micro });
      });
    } else if (name === 'online') {
      const ranked = fusedRanking();
      if (!ranked || !input.online) continue;
      const { values, counted } = simulatedPurchasesPerRequest(ranked, input.online, input.ks);
      input.ks.forEach((k, i) => metrics.push({ name, task: 'fused', k, at: weightedMean(values[i]!, counted) }));
    }
  }
  return { units, unit: requests ? 'request' : 'row', metrics };
}
